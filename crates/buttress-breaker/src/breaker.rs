//! The breaker handle: the plain API, shared by every clone and service.

use std::borrow::Borrow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use buttress_core::{
    Classification, Classify, Clock, DefaultClassifier, FastRandom, Listener, Listeners, Name,
    Outcome, Random, SharedClock, SharedRandom, TokioClock,
};

use crate::config::{BreakerConfig, ConfigError, OpenDuration, Rules, Window, nanos};
use crate::error::{CallError, Rejected};
use crate::event::BreakerEvent;
use crate::layer::CircuitBreakerLayer;
use crate::machine::{Machine, Refusal, Ticket, TicketKind, Transition, Verdict};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::snapshot::Snapshot;
use crate::state::State;

/// A circuit breaker. Cheap to clone; every clone shares one state.
///
/// ```
/// # tokio_test_block_on(async {
/// use buttress_breaker::{CircuitBreaker, State};
///
/// let breaker = CircuitBreaker::builder("embeddings")
///     .consecutive_failures(2)
///     .build()
///     .expect("valid config");
/// for _ in 0..2 {
///     let r: Result<(), _> = breaker.call(|| async { Err::<(), _>("upstream down") }).await;
///     assert!(r.unwrap_err().rejected().is_none()); // the call ran and failed
/// }
/// assert_eq!(breaker.state(), State::Open);
/// let r = breaker.call(|| async { Ok::<_, &str>(1) }).await;
/// assert!(r.unwrap_err().rejected().is_some()); // refused at once
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone)]
pub struct CircuitBreaker {
    shared: Arc<Shared>,
}

struct Shared {
    name: Name,
    machine: Machine,
    clock: SharedClock,
    origin: Instant,
    times_calls: bool,
    slow_nanos: u64,
    metrics: Metrics,
    listeners: Listeners<BreakerEvent>,
    /// Orders the reports of transitions; see `publish`.
    publishing: std::sync::Mutex<()>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.shared.name)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl CircuitBreaker {
    /// Starts a builder with the default configuration.
    pub fn builder(name: impl Into<String>) -> Builder {
        Builder::new(name)
    }

    /// A breaker with `config`.
    pub fn new(name: impl Into<String>, config: BreakerConfig) -> Result<Self, ConfigError> {
        Builder::new(name).config(config).build()
    }

    /// The breaker's name.
    pub fn name(&self) -> &Name {
        &self.shared.name
    }

    /// The current state (one atomic load).
    ///
    /// An open breaker reports `Open` until the first call after its open
    /// period moves it to half-open.
    #[inline]
    pub fn state(&self) -> State {
        self.shared.machine.state()
    }

    /// A tower layer that puts this breaker in front of a service.
    pub fn layer(&self) -> CircuitBreakerLayer {
        CircuitBreakerLayer::new(self.clone())
    }

    #[inline]
    fn nanos_at(&self, t: Instant) -> u64 {
        nanos(t.saturating_duration_since(self.shared.origin))
    }

    #[inline]
    fn now(&self) -> u64 {
        self.nanos_at(self.shared.clock.now())
    }

    /// Asks to make one call: a [`Permit`] to record its outcome with, or a
    /// [`Rejected`] error at once.
    ///
    /// Dropping the permit without recording counts the call as ignored (and
    /// gives a half-open probe permit back). The permit borrows the breaker;
    /// [`try_acquire_owned`](Self::try_acquire_owned) gives one that does not.
    #[inline(always)]
    pub fn try_acquire(&self) -> Result<Permit<&CircuitBreaker>, Rejected> {
        self.admit(|ticket| Permit::new(self, ticket))
    }

    /// Like [`try_acquire`](Self::try_acquire), but the permit holds its own
    /// handle to the breaker, so it can move into a `'static` task.
    #[inline(always)]
    pub fn try_acquire_owned(&self) -> Result<Permit, Rejected> {
        self.admit(|ticket| Permit::new(self.clone(), ticket))
    }

    #[inline(always)]
    fn admit<P>(&self, permit: impl FnOnce(Ticket) -> P) -> Result<P, Rejected> {
        let shared = &*self.shared;
        let (admission, change) = shared.machine.acquire(|| self.now());
        match admission {
            Ok(ticket) => {
                let permit = permit(ticket);
                if change.is_some() {
                    // The permit exists before anything user-supplied runs
                    // (a tracing subscriber, a listener), so a panic there
                    // drops it and gives a probe permit back.
                    return Ok(self.publish_then(change, permit));
                }
                Ok(permit)
            }
            Err(refusal) => {
                if change.is_some() {
                    self.publish(change);
                }
                Err(self.refuse(refusal))
            }
        }
    }

    /// When a call starts, for the slow-call rule: the time now, or
    /// [`NOT_TIMED`] when no rule needs it (no clock read).
    #[inline(always)]
    pub(crate) fn start_timer(&self) -> u64 {
        if self.shared.times_calls {
            self.now()
        } else {
            NOT_TIMED
        }
    }

    #[cold]
    #[inline(never)]
    fn publish_then<P>(&self, change: Option<Transition>, permit: P) -> P {
        self.publish(change);
        permit
    }

    #[cold]
    fn refuse(&self, refusal: Refusal) -> Rejected {
        let shared = &*self.shared;
        shared.metrics.rejected();
        tracing::trace!(breaker = %shared.name, state = %refusal.state, "call rejected");
        if !shared.listeners.is_empty() {
            shared.listeners.emit(&BreakerEvent::Rejected {
                name: shared.name.clone(),
                state: refusal.state,
                retry_after: refusal.retry_after,
            });
        }
        Rejected::new(shared.name.clone(), refusal.state, refusal.retry_after)
    }

    /// Runs `f` through the breaker; every `Err` is a failure.
    ///
    /// If the returned future is dropped before `f`'s future completes, the
    /// call counts as ignored.
    pub async fn call<F, Fut, T, E>(&self, f: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_with(&DefaultClassifier, f).await
    }

    /// Runs `f` through the breaker, judging its result with `classifier`.
    pub async fn call_with<C, F, Fut, T, E>(&self, classifier: &C, f: F) -> Result<T, CallError<E>>
    where
        C: Classify<T, E>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let permit = self.try_acquire().map_err(CallError::Rejected)?;
        let start = self.start_timer();
        let result = f().await;
        let c = classifier.classify(&result);
        permit.finish(c.outcome, c.retry_after, start);
        result.map_err(CallError::Inner)
    }

    /// Opens the breaker until [`reset`](Self::reset): every call is
    /// rejected (for example to isolate a dependency during maintenance).
    pub fn force_open(&self) {
        let change = self.shared.machine.force_open();
        self.publish(change);
    }

    /// Lets every call through and never trips, still counting outcomes.
    /// [`reset`](Self::reset) turns the breaker back on.
    pub fn disable(&self) {
        let change = self.shared.machine.disable();
        self.publish(change);
    }

    /// Closes the breaker with empty counts and forgets past openings.
    /// Outcomes of calls admitted before the reset are dropped when they
    /// arrive.
    pub fn reset(&self) {
        let change = self.shared.machine.reset();
        self.publish(Some(change));
    }

    /// A picture of the breaker now, for health endpoints and tests.
    pub fn snapshot(&self) -> Snapshot {
        let m = self.shared.machine.snapshot(self.now());
        Snapshot::new(&self.shared.name, m)
    }

    #[inline(always)]
    fn record(&self, ticket: Ticket, outcome: Outcome, retry_after: Option<Duration>, start: u64) {
        let shared = &*self.shared;
        let mut end = NOT_TIMED;
        let mut slow = false;
        if start != NOT_TIMED && outcome != Outcome::Ignored {
            end = self.now();
            slow = end.saturating_sub(start) >= shared.slow_nanos;
        }
        let verdict = Verdict {
            outcome,
            slow,
            retry_after,
        };
        let recorded = shared.machine.record(ticket, verdict, || {
            if end != NOT_TIMED { end } else { self.now() }
        });
        shared.metrics.recorded(outcome, slow);
        if !shared.listeners.is_empty() {
            self.emit_recorded(ticket.kind(), outcome, slow, recorded.counted);
        }
        if recorded.change.is_some() {
            self.publish(recorded.change);
        }
    }

    #[cold]
    fn emit_recorded(&self, kind: TicketKind, outcome: Outcome, slow: bool, counted: bool) {
        self.shared.listeners.emit(&BreakerEvent::Recorded {
            name: self.shared.name.clone(),
            outcome,
            slow,
            probe: kind == TicketKind::Probe,
            stale: !counted,
        });
    }

    /// Reports a change of state: gauge, counter, tracing, listeners.
    #[cold]
    fn publish(&self, change: Option<Transition>) {
        let Some(t) = change else { return };
        let shared = &*self.shared;
        {
            // Transitions are reported after the machine's lock is released,
            // so two reports can race. Under this lock the gauge is set from
            // the state as it is now, so the last report always leaves the
            // current state, whatever order the reports ran in.
            let _order = shared
                .publishing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            shared
                .metrics
                .transition(t.from, t.to, shared.machine.state());
        }
        match t.to {
            State::Open | State::ForcedOpen => tracing::warn!(
                breaker = %shared.name, from = %t.from, to = %t.to, reason = %t.reason,
                open_for = ?t.open_for, generation = t.generation, "circuit breaker opened"
            ),
            _ => tracing::info!(
                breaker = %shared.name, from = %t.from, to = %t.to, reason = %t.reason,
                generation = t.generation, "circuit breaker changed state"
            ),
        }
        if !shared.listeners.is_empty() {
            shared.listeners.emit(&BreakerEvent::StateChanged {
                name: shared.name.clone(),
                from: t.from,
                to: t.to,
                reason: t.reason,
                open_for: t.open_for,
                generation: t.generation,
            });
        }
    }
}

/// Permission to make one call, from [`CircuitBreaker::try_acquire`]
/// (`Permit<&CircuitBreaker>`, borrowing the breaker) or
/// [`CircuitBreaker::try_acquire_owned`] (`Permit`, holding its own handle).
///
/// Record the outcome with one of the consuming methods. A permit dropped
/// without a record counts as ignored: a half-open probe gives its permit
/// back, so the breaker never waits for a call that will not report.
///
/// ```
/// use buttress_breaker::CircuitBreaker;
///
/// let breaker = CircuitBreaker::builder("db").build().unwrap();
/// match breaker.try_acquire() {
///     Ok(permit) => {
///         let result: Result<u32, std::io::Error> = Ok(42); // do the work
///         permit.record_result(&result, &buttress_core::DefaultClassifier);
///     }
///     Err(rejected) => println!("not now: {rejected}"),
/// }
/// ```
#[must_use = "a permit dropped without a record counts as ignored"]
pub struct Permit<B: Borrow<CircuitBreaker> = CircuitBreaker> {
    breaker: B,
    /// [`Ticket::SPENT`] once the outcome is recorded.
    ticket: Ticket,
}

/// The start time of a call that is not timed.
pub(crate) const NOT_TIMED: u64 = u64::MAX;

impl<B: Borrow<CircuitBreaker>> fmt::Debug for Permit<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.borrow().shared.name)
            .field("generation", &self.ticket.generation())
            .field("probe", &self.is_probe())
            .finish()
    }
}

impl<B: Borrow<CircuitBreaker>> Permit<B> {
    #[inline]
    fn new(breaker: B, ticket: Ticket) -> Self {
        Self { breaker, ticket }
    }

    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.ticket.kind() == TicketKind::Probe
    }

    /// Records a success.
    #[inline(always)]
    pub fn success(self) {
        self.record(Outcome::Success);
    }

    /// Records a failure.
    #[inline(always)]
    pub fn failure(self) {
        self.record(Outcome::Failure);
    }

    /// Records an outcome.
    #[inline(always)]
    pub fn record(self, outcome: Outcome) {
        self.finish(outcome, None, NOT_TIMED);
    }

    /// Records a full classification, including a `Retry-After` hint.
    #[inline(always)]
    pub fn record_classified(self, c: Classification) {
        self.finish(c.outcome, c.retry_after, NOT_TIMED);
    }

    /// Classifies `result` with `classifier` and records it.
    #[inline(always)]
    pub fn record_result<T, E, C: Classify<T, E> + ?Sized>(
        self,
        result: &Result<T, E>,
        classifier: &C,
    ) {
        let c = classifier.classify(result);
        self.record_classified(c);
    }

    /// Records an outcome and how long the call took, for the slow-call
    /// rule (the two-step API does not time calls itself; `call` and the
    /// tower service do).
    #[inline]
    pub fn record_elapsed(self, outcome: Outcome, elapsed: Duration) {
        let b = self.breaker.borrow();
        let start = if b.shared.times_calls {
            b.now().saturating_sub(nanos(elapsed))
        } else {
            NOT_TIMED
        };
        self.finish(outcome, None, start);
    }

    /// Records a verdict for a call that started at `start` (nanoseconds
    /// since the breaker's origin, or [`NOT_TIMED`]).
    #[inline(always)]
    pub(crate) fn finish(mut self, outcome: Outcome, retry_after: Option<Duration>, start: u64) {
        let ticket = std::mem::replace(&mut self.ticket, Ticket::SPENT);
        self.breaker
            .borrow()
            .record(ticket, outcome, retry_after, start);
    }
}

impl<B: Borrow<CircuitBreaker>> Drop for Permit<B> {
    #[inline(always)]
    fn drop(&mut self) {
        if self.ticket != Ticket::SPENT {
            self.breaker
                .borrow()
                .record(self.ticket, Outcome::Ignored, None, NOT_TIMED);
        }
    }
}

/// Builds a [`CircuitBreaker`]; every setter has a matching
/// [`BreakerConfig`] field.
///
/// ```
/// use std::time::Duration;
/// use buttress_breaker::CircuitBreaker;
///
/// let breaker = CircuitBreaker::builder("vector-store")
///     .failure_rate(0.5)
///     .count_window(50)
///     .minimum_calls(20)
///     .slow_calls(0.8, Duration::from_secs(2))
///     .open_exponential(Duration::from_secs(5), 2.0, Duration::from_secs(300), 0.2)
///     .half_open_permits(3)
///     .build()
///     .expect("valid config");
/// # drop(breaker);
/// ```
#[must_use]
pub struct Builder {
    name: String,
    config: BreakerConfig,
    clock: SharedClock,
    random: SharedRandom,
    listeners: Vec<Listener<BreakerEvent>>,
    registry: Option<Registry>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("clock", &self.clock)
            .field("listeners", &self.listeners.len())
            .finish_non_exhaustive()
    }
}

impl Builder {
    fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            config: BreakerConfig::default(),
            clock: Arc::new(TokioClock),
            random: Arc::new(FastRandom),
            listeners: Vec::new(),
            registry: None,
        }
    }

    /// Replaces the whole configuration (for example one loaded from a file
    /// or a preset such as [`BreakerConfig::llm`]).
    pub fn config(mut self, config: BreakerConfig) -> Self {
        self.config = config;
        self
    }

    /// Trips after `n` failures in a row.
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.config.consecutive_failures = Some(n);
        self
    }

    /// Trips when the failure rate in the window reaches `threshold`;
    /// `None` turns the rule off.
    pub fn failure_rate(mut self, threshold: impl Into<Option<f64>>) -> Self {
        self.config.failure_rate_threshold = threshold.into();
        self
    }

    /// Trips when the share of calls taking at least `duration` reaches
    /// `threshold`.
    pub fn slow_calls(mut self, threshold: f64, duration: Duration) -> Self {
        self.config.slow_call_rate_threshold = Some(threshold);
        self.config.slow_call_duration = duration;
        self
    }

    /// Measures rates over the last `size` calls.
    pub fn count_window(mut self, size: u32) -> Self {
        self.config.window = Window::Count { size };
        self
    }

    /// Measures rates over the last `duration`, in `buckets` slices.
    pub fn time_window(mut self, duration: Duration, buckets: u32) -> Self {
        self.config.window = Window::Time { duration, buckets };
        self
    }

    /// Judges rates only once the window holds `n` calls.
    pub fn minimum_calls(mut self, n: u32) -> Self {
        self.config.minimum_calls = n;
        self
    }

    /// Stays open for `duration` each time.
    pub fn open_for(mut self, duration: Duration) -> Self {
        self.config.open = OpenDuration::Fixed { duration };
        self
    }

    /// Stays open `initial × multiplier^(n−1)` for the n-th opening in a
    /// row, at most `max`, shortened at random by up to `jitter`.
    pub fn open_exponential(
        mut self,
        initial: Duration,
        multiplier: f64,
        max: Duration,
        jitter: f64,
    ) -> Self {
        self.config.open = OpenDuration::Exponential {
            initial,
            multiplier,
            max,
            jitter,
        };
        self
    }

    /// Lets `n` probes through in half-open.
    pub fn half_open_permits(mut self, n: u32) -> Self {
        self.config.half_open_permits = n;
        self
    }

    /// Reopens if the probes have not decided within `duration`.
    pub fn max_half_open(mut self, duration: Duration) -> Self {
        self.config.max_half_open = Some(duration);
        self
    }

    /// Honours `Retry-After` hints up to `max` (`None` ignores them).
    pub fn retry_after_max(mut self, max: Option<Duration>) -> Self {
        self.config.retry_after_max = max;
        self
    }

    /// The clock (default: tokio's `Instant`).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The random source for jitter (default: a fast thread-local one).
    pub fn random(mut self, random: impl Random) -> Self {
        self.random = Arc::new(random);
        self
    }

    /// Adds a listener for [`BreakerEvent`]s.
    pub fn on_event(mut self, f: impl Fn(&BreakerEvent) + Send + Sync + 'static) -> Self {
        self.listeners.push(Arc::new(f));
        self
    }

    /// Registers the breaker in `registry` when it is built.
    pub fn registry(mut self, registry: &Registry) -> Self {
        self.registry = Some(registry.clone());
        self
    }

    /// Validates the configuration and builds the breaker.
    pub fn build(self) -> Result<CircuitBreaker, ConfigError> {
        let name = Name::new(&self.name).map_err(ConfigError::Name)?;
        let rules = Rules::new(&self.config)?;
        let origin = self.clock.now();
        let breaker = CircuitBreaker {
            shared: Arc::new(Shared {
                metrics: Metrics::new(&name),
                times_calls: rules.times_calls(),
                slow_nanos: rules.slow_nanos,
                machine: Machine::new(rules, self.random),
                name,
                clock: self.clock,
                origin,
                listeners: Listeners::from_vec(self.listeners),
                publishing: std::sync::Mutex::new(()),
            }),
        };
        if let Some(registry) = self.registry {
            registry.register(&breaker)?;
        }
        Ok(breaker)
    }
}
