//! The breaker handle: the plain API, shared by every clone and service.

use std::borrow::Borrow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use buttress_core::{
    Classification, Classify, Clock, DefaultClassifier, FastRandom, Listener, Listeners, Name,
    Outcome, Random, SharedClock, SharedRandom, Stopwatch, default_clock,
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
    /// Nanoseconds since the breaker was built, the machine's time.
    watch: Stopwatch,
    /// Whether a rule needs calls timed; changes with the rules.
    times_calls: AtomicBool,
    slow_nanos: AtomicU64,
    metrics: Metrics,
    listeners: Listeners<BreakerEvent>,
    /// Listeners of state changes only: the calls' own paths never look at
    /// them, so a status page that follows the breaker costs nothing there.
    transitions: Listeners<BreakerEvent>,
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
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, State};
    ///
    /// let breaker = CircuitBreaker::builder("db").consecutive_failures(3).build()?;
    /// assert_eq!(breaker.state(), State::Closed);
    /// # Ok::<(), buttress_breaker::ConfigError>(())
    /// ```
    pub fn builder(name: impl Into<String>) -> Builder {
        Builder::new(name)
    }

    /// A breaker with `config`.
    ///
    /// ```
    /// use buttress_breaker::{BreakerConfig, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::new("llm", BreakerConfig::llm())?;
    /// assert_eq!(breaker.name().as_str(), "llm");
    /// # Ok::<(), buttress_breaker::ConfigError>(())
    /// ```
    pub fn new(name: impl Into<String>, config: BreakerConfig) -> Result<Self, ConfigError> {
        Builder::new(name).config(config).build()
    }

    /// The breaker's name.
    ///
    /// ```
    /// use buttress_breaker::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::builder("vector-store").build()?;
    /// assert_eq!(breaker.name().as_str(), "vector-store");
    /// # Ok::<(), buttress_breaker::ConfigError>(())
    /// ```
    pub fn name(&self) -> &Name {
        &self.shared.name
    }

    /// The current state (one atomic load).
    ///
    /// An open breaker reports `Open` until the first call after its open
    /// period moves it to half-open.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_breaker::{CircuitBreaker, State};
    /// use buttress_core::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// let breaker = CircuitBreaker::builder("db")
    ///     .consecutive_failures(1)
    ///     .open_for(Duration::from_secs(10))
    ///     .clock(clock.clone())
    ///     .build()?;
    /// breaker.try_acquire()?.failure();
    /// assert_eq!(breaker.state(), State::Open);
    /// clock.advance(Duration::from_secs(10));
    /// assert_eq!(breaker.state(), State::Open); // until a call arrives
    /// let probe = breaker.try_acquire()?;
    /// assert_eq!(breaker.state(), State::HalfOpen);
    /// # drop(probe);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn state(&self) -> State {
        self.shared.machine.state()
    }

    /// A tower layer that puts this breaker in front of a service.
    ///
    /// ```
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use buttress_breaker::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::builder("upstream").build()?;
    /// let svc = breaker
    ///     .layer()
    ///     .layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x + 1) }));
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// assert_eq!(svc.oneshot(1).await.unwrap(), 2);
    /// # });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn layer(&self) -> CircuitBreakerLayer {
        CircuitBreakerLayer::new(self.clone())
    }

    #[inline]
    fn now(&self) -> u64 {
        self.shared.watch.nanos()
    }

    /// Asks to make one call: a [`Permit`] to record its outcome with, or a
    /// [`Rejected`] error at once.
    ///
    /// Dropping the permit without recording counts the call as ignored (and
    /// gives a half-open probe permit back). The permit borrows the breaker;
    /// [`try_acquire_owned`](Self::try_acquire_owned) gives one that does not.
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, State};
    ///
    /// let breaker = CircuitBreaker::builder("db").consecutive_failures(1).build()?;
    /// let permit = breaker.try_acquire()?;
    /// permit.failure(); // the call failed
    /// let rejected = breaker.try_acquire().unwrap_err();
    /// assert_eq!(rejected.state(), State::Open);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn try_acquire(&self) -> Result<Permit<&CircuitBreaker>, Rejected> {
        self.admit(|ticket| Permit::new(self, ticket))
    }

    /// Like [`try_acquire`](Self::try_acquire), but the permit holds its own
    /// handle to the breaker, so it can move into a `'static` task.
    ///
    /// ```
    /// use buttress_breaker::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::builder("db").build()?;
    /// let permit = breaker.try_acquire_owned()?;
    /// std::thread::spawn(move || permit.success()).join().unwrap();
    /// assert_eq!(breaker.snapshot().calls, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
        if self.shared.times_calls.load(Ordering::Relaxed) {
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
    ///
    /// ```
    /// use buttress_breaker::CircuitBreaker;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let breaker = CircuitBreaker::builder("db").build().unwrap();
    /// let rows = breaker.call(|| async { Ok::<_, std::io::Error>(vec![1, 2]) }).await;
    /// assert_eq!(rows.unwrap(), [1, 2]);
    /// # });
    /// ```
    pub async fn call<F, Fut, T, E>(&self, f: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_with(&DefaultClassifier, f).await
    }

    /// Runs `f` through the breaker, judging its result with `classifier`.
    ///
    /// ```
    /// use std::io::{Error, ErrorKind};
    /// use buttress_breaker::{CircuitBreaker, State};
    /// use buttress_core::{Classification, classify_fn};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let breaker = CircuitBreaker::builder("db").consecutive_failures(1).build().unwrap();
    /// // "Not found" is the caller's problem: it does not count against the database.
    /// let classifier = classify_fn(|r: &Result<(), Error>| match r {
    ///     Err(e) if e.kind() == ErrorKind::NotFound => Classification::IGNORED,
    ///     Err(_) => Classification::RETRYABLE_FAILURE,
    ///     Ok(_) => Classification::SUCCESS,
    /// });
    /// let r = breaker.call_with(&classifier, || async { Err(Error::from(ErrorKind::NotFound)) }).await;
    /// assert!(r.is_err());
    /// assert_eq!(breaker.state(), State::Closed);
    /// # });
    /// ```
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
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, State};
    ///
    /// let breaker = CircuitBreaker::builder("db").build()?;
    /// breaker.force_open();
    /// let rejected = breaker.try_acquire().unwrap_err();
    /// assert_eq!(rejected.state(), State::ForcedOpen);
    /// assert_eq!(rejected.retry_after(), None); // until someone resets it
    /// # Ok::<(), buttress_breaker::ConfigError>(())
    /// ```
    pub fn force_open(&self) {
        let change = self.shared.machine.force_open();
        self.publish(change);
    }

    /// Lets every call through and never trips, still counting outcomes.
    /// [`reset`](Self::reset) turns the breaker back on.
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, State};
    ///
    /// let breaker = CircuitBreaker::builder("db").consecutive_failures(1).build()?;
    /// breaker.disable();
    /// breaker.try_acquire()?.failure();
    /// assert_eq!(breaker.state(), State::Disabled); // counted, never tripped
    /// assert!(breaker.try_acquire().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn disable(&self) {
        let change = self.shared.machine.disable();
        self.publish(change);
    }

    /// Closes the breaker with empty counts and forgets past openings.
    /// Outcomes of calls admitted before the reset are dropped when they
    /// arrive.
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, State};
    ///
    /// let breaker = CircuitBreaker::builder("db").consecutive_failures(1).build()?;
    /// let before = breaker.try_acquire()?; // admitted before the reset
    /// breaker.force_open();
    /// breaker.reset();
    /// assert_eq!(breaker.state(), State::Closed);
    /// before.failure(); // dropped: it belongs to an earlier generation
    /// assert_eq!(breaker.state(), State::Closed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reset(&self) {
        let change = self.shared.machine.reset();
        self.publish(Some(change));
    }

    /// A picture of the breaker now, for health endpoints and tests.
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, State};
    ///
    /// let breaker = CircuitBreaker::builder("db").consecutive_failures(3).build()?;
    /// breaker.try_acquire()?.failure();
    /// let s = breaker.snapshot();
    /// assert_eq!((s.name.as_str(), s.state), ("db", State::Closed));
    /// assert_eq!(s.consecutive_failures, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn snapshot(&self) -> Snapshot {
        let m = self.shared.machine.snapshot(self.now());
        Snapshot::new(&self.shared.name, m)
    }

    /// The configuration in force: the one it was built with, or the last
    /// one [`reconfigure`](Self::reconfigure) accepted.
    ///
    /// ```
    /// use buttress_breaker::{BreakerConfig, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::new("llm", BreakerConfig::llm())?;
    /// assert_eq!(breaker.config(), BreakerConfig::llm());
    /// # Ok::<(), buttress_breaker::ConfigError>(())
    /// ```
    pub fn config(&self) -> BreakerConfig {
        self.shared.machine.rules().config.clone()
    }

    /// Puts a new configuration in force without losing state: an open
    /// breaker stays open for the period it already drew, probes already
    /// admitted still report, and the counts in the window are kept. The new
    /// thresholds judge the next outcome; a new open period or half-open
    /// permit count applies from the next opening.
    ///
    /// Refused whole, with nothing changed, when `config` is invalid or when
    /// it would change the window's shape ([`ConfigError::WindowChanged`]).
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, State};
    ///
    /// let breaker = CircuitBreaker::builder("db").consecutive_failures(5).build()?;
    /// breaker.try_acquire()?.failure();
    /// let mut stricter = breaker.config();
    /// stricter.consecutive_failures = Some(2);
    /// breaker.reconfigure(stricter)?;
    /// breaker.try_acquire()?.failure(); // the second in a row now trips it
    /// assert_eq!(breaker.state(), State::Open);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reconfigure(&self, config: BreakerConfig) -> Result<(), ConfigError> {
        let rules = Rules::new(&config)?;
        let (times, slow) = (rules.times_calls(), rules.slow_nanos);
        self.shared
            .machine
            .set_rules(rules)
            .map_err(|_| ConfigError::WindowChanged)?;
        self.shared.slow_nanos.store(slow, Ordering::Relaxed);
        self.shared.times_calls.store(times, Ordering::Relaxed);
        tracing::info!(breaker = %self.shared.name, "configuration changed");
        Ok(())
    }

    #[inline(always)]
    fn record(&self, ticket: Ticket, outcome: Outcome, retry_after: Option<Duration>, start: u64) {
        let mut end = NOT_TIMED;
        let mut slow = false;
        if start != NOT_TIMED && outcome != Outcome::Ignored {
            end = self.now();
            slow = end.saturating_sub(start) >= self.shared.slow_nanos.load(Ordering::Relaxed);
        }
        self.record_verdict(ticket, outcome, retry_after, slow, end);
    }

    /// Records a call whose duration the caller measured: slow when that
    /// duration reaches the slow-call threshold (and a rule needs it).
    fn record_measured(&self, ticket: Ticket, outcome: Outcome, elapsed: Duration) {
        let slow = self.shared.times_calls.load(Ordering::Relaxed)
            && outcome != Outcome::Ignored
            && nanos(elapsed) >= self.shared.slow_nanos.load(Ordering::Relaxed);
        self.record_verdict(ticket, outcome, None, slow, NOT_TIMED);
    }

    /// Records a verdict; `end` is the time already read, or `NOT_TIMED`.
    #[inline(always)]
    fn record_verdict(
        &self,
        ticket: Ticket,
        outcome: Outcome,
        retry_after: Option<Duration>,
        slow: bool,
        end: u64,
    ) {
        let shared = &*self.shared;
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
        if !(shared.listeners.is_empty() && shared.transitions.is_empty()) {
            let event = BreakerEvent::StateChanged {
                name: shared.name.clone(),
                from: t.from,
                to: t.to,
                reason: t.reason,
                open_for: t.open_for,
                generation: t.generation,
            };
            shared.listeners.emit(&event);
            shared.transitions.emit(&event);
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
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_breaker::CircuitBreaker;
    /// use buttress_core::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// let breaker = CircuitBreaker::builder("db")
    ///     .consecutive_failures(1)
    ///     .open_for(Duration::from_secs(5))
    ///     .clock(clock.clone())
    ///     .build()?;
    /// let permit = breaker.try_acquire()?;
    /// assert!(!permit.is_probe()); // closed: an ordinary call
    /// permit.failure();
    /// clock.advance(Duration::from_secs(5));
    /// let probe = breaker.try_acquire()?;
    /// assert!(probe.is_probe()); // half-open: its outcome decides the state
    /// probe.success();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_probe(&self) -> bool {
        self.ticket.kind() == TicketKind::Probe
    }

    /// Records a success.
    ///
    /// ```
    /// use buttress_breaker::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::builder("db").consecutive_failures(3).build()?;
    /// breaker.try_acquire()?.failure();
    /// breaker.try_acquire()?.failure();
    /// assert_eq!(breaker.snapshot().consecutive_failures, 2);
    /// breaker.try_acquire()?.success(); // the run of failures is broken
    /// assert_eq!(breaker.snapshot().consecutive_failures, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn success(self) {
        self.record(Outcome::Success);
    }

    /// Records a failure.
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, State};
    ///
    /// let breaker = CircuitBreaker::builder("db").consecutive_failures(2).build()?;
    /// breaker.try_acquire()?.failure();
    /// assert_eq!(breaker.state(), State::Closed);
    /// breaker.try_acquire()?.failure(); // the second in a row
    /// assert_eq!(breaker.state(), State::Open);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn failure(self) {
        self.record(Outcome::Failure);
    }

    /// Records an outcome.
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, Outcome, State};
    ///
    /// let breaker = CircuitBreaker::builder("db").consecutive_failures(1).build()?;
    /// // The caller gave up on the call: that says nothing about the database.
    /// breaker.try_acquire()?.record(Outcome::Ignored);
    /// assert_eq!(breaker.snapshot().calls, 0); // not counted
    /// breaker.try_acquire()?.record(Outcome::Failure);
    /// assert_eq!(breaker.state(), State::Open);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn record(self, outcome: Outcome) {
        self.finish(outcome, None, NOT_TIMED);
    }

    /// Records a full classification, including a `Retry-After` hint.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_breaker::{CircuitBreaker, Classification, State};
    /// use buttress_core::ManualClock;
    ///
    /// let breaker = CircuitBreaker::builder("api")
    ///     .consecutive_failures(5)
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// // A 503 with `Retry-After: 30`: the upstream said when to come back.
    /// let busy = Classification::RETRYABLE_FAILURE.with_retry_after(Some(Duration::from_secs(30)));
    /// breaker.try_acquire()?.record_classified(busy);
    /// assert_eq!(breaker.state(), State::Open); // at once, not after 5 failures
    /// let rejected = breaker.try_acquire().unwrap_err();
    /// assert_eq!(rejected.retry_after(), Some(Duration::from_secs(30)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn record_classified(self, c: Classification) {
        self.finish(c.outcome, c.retry_after, NOT_TIMED);
    }

    /// Classifies `result` with `classifier` and records it.
    ///
    /// ```
    /// use std::io::{Error, ErrorKind};
    /// use buttress_breaker::{CircuitBreaker, Classification, State};
    /// use buttress_core::classify_fn;
    ///
    /// // "Not found" is the caller's problem, not the database's.
    /// let classifier = classify_fn(|r: &Result<u32, Error>| match r {
    ///     Ok(_) => Classification::SUCCESS,
    ///     Err(e) if e.kind() == ErrorKind::NotFound => Classification::IGNORED,
    ///     Err(_) => Classification::RETRYABLE_FAILURE,
    /// });
    /// let breaker = CircuitBreaker::builder("db").consecutive_failures(1).build()?;
    ///
    /// let result: Result<u32, Error> = Err(ErrorKind::NotFound.into());
    /// breaker.try_acquire()?.record_result(&result, &classifier);
    /// assert_eq!(breaker.state(), State::Closed);
    ///
    /// let result: Result<u32, Error> = Err(ErrorKind::TimedOut.into());
    /// breaker.try_acquire()?.record_result(&result, &classifier);
    /// assert_eq!(breaker.state(), State::Open);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_breaker::{CircuitBreaker, Outcome, State};
    /// use buttress_core::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// let breaker = CircuitBreaker::builder("search")
    ///     .failure_rate(None)
    ///     .slow_calls(0.5, Duration::from_secs(1)) // half the calls taking 1 s or more
    ///     .count_window(2)
    ///     .minimum_calls(2)
    ///     .clock(clock.clone())
    ///     .build()?;
    /// for took in [Duration::from_millis(200), Duration::from_secs(3)] {
    ///     let permit = breaker.try_acquire()?;
    ///     clock.advance(took); // the call runs
    ///     permit.record_elapsed(Outcome::Success, took);
    /// }
    /// let s = breaker.snapshot();
    /// assert_eq!((s.calls, s.slow_calls), (2, 1));
    /// assert_eq!(s.state, State::Open); // every call succeeded, but one in two was slow
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn record_elapsed(mut self, outcome: Outcome, elapsed: Duration) {
        let ticket = std::mem::replace(&mut self.ticket, Ticket::SPENT);
        self.breaker
            .borrow()
            .record_measured(ticket, outcome, elapsed);
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
    transitions: Vec<Listener<BreakerEvent>>,
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
            clock: default_clock(),
            random: Arc::new(FastRandom),
            listeners: Vec::new(),
            transitions: Vec::new(),
            registry: None,
        }
    }

    buttress_core::setters! {
        /// Replaces the whole configuration (for example one loaded from a file
        /// or a preset such as [`BreakerConfig::llm`]).
        ///
        /// ```
        /// use buttress_breaker::{BreakerConfig, CircuitBreaker, State};
        ///
        /// let breaker = CircuitBreaker::builder("llm").config(BreakerConfig::llm()).build()?;
        /// for _ in 0..3 {
        ///     breaker.try_acquire()?.failure();
        /// }
        /// assert_eq!(breaker.state(), State::Open);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        config: BreakerConfig,
    }

    /// Trips after `n` failures in a row.
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, State};
    ///
    /// let breaker = CircuitBreaker::builder("db")
    ///     .consecutive_failures(2)
    ///     .failure_rate(None) // only the rule of failures in a row
    ///     .build()?;
    /// breaker.try_acquire()?.failure();
    /// breaker.try_acquire()?.success(); // a success starts the count again
    /// breaker.try_acquire()?.failure();
    /// assert_eq!(breaker.state(), State::Closed);
    /// breaker.try_acquire()?.failure();
    /// assert_eq!(breaker.state(), State::Open);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.config = self.config.consecutive_failures(n);
        self
    }

    /// Trips when the failure rate in the window reaches `threshold`;
    /// `None` turns the rule off.
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, State};
    ///
    /// let breaker = CircuitBreaker::builder("db")
    ///     .failure_rate(0.5)
    ///     .count_window(4)
    ///     .minimum_calls(4)
    ///     .build()?;
    /// breaker.try_acquire()?.success();
    /// breaker.try_acquire()?.success();
    /// breaker.try_acquire()?.failure();
    /// assert_eq!(breaker.state(), State::Closed);
    /// breaker.try_acquire()?.failure(); // 2 of the last 4 calls failed
    /// assert_eq!(breaker.state(), State::Open);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn failure_rate(mut self, threshold: impl Into<Option<f64>>) -> Self {
        self.config = self.config.failure_rate_threshold(threshold);
        self
    }

    /// Trips when the share of calls taking at least `duration` reaches
    /// `threshold`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_breaker::{CircuitBreaker, Outcome, State};
    /// use buttress_core::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// let breaker = CircuitBreaker::builder("search")
    ///     .failure_rate(None)
    ///     .slow_calls(0.5, Duration::from_secs(1))
    ///     .count_window(2)
    ///     .minimum_calls(2)
    ///     .clock(clock.clone())
    ///     .build()?;
    /// for _ in 0..2 {
    ///     let permit = breaker.try_acquire()?;
    ///     clock.advance(Duration::from_secs(2)); // the call takes 2 s
    ///     permit.record_elapsed(Outcome::Success, Duration::from_secs(2));
    /// }
    /// assert_eq!(breaker.state(), State::Open); // successful, but too slow
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn slow_calls(mut self, threshold: f64, duration: Duration) -> Self {
        self.config = self
            .config
            .slow_call_rate_threshold(threshold)
            .slow_call_duration(duration);
        self
    }

    /// Measures rates over the last `size` calls.
    ///
    /// ```
    /// use buttress_breaker::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::builder("db").count_window(10).minimum_calls(10).build()?;
    /// for _ in 0..12 {
    ///     breaker.try_acquire()?.success();
    /// }
    /// assert_eq!(breaker.snapshot().calls, 10); // the oldest calls left the window
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn count_window(mut self, size: u32) -> Self {
        self.config = self.config.window(Window::Count { size });
        self
    }

    /// Measures rates over the last `duration`, in `buckets` slices.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_breaker::CircuitBreaker;
    /// use buttress_core::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// let breaker = CircuitBreaker::builder("db")
    ///     .time_window(Duration::from_secs(10), 10)
    ///     .minimum_calls(5)
    ///     .clock(clock.clone())
    ///     .build()?;
    /// breaker.try_acquire()?.failure();
    /// assert_eq!(breaker.snapshot().calls, 1);
    /// clock.advance(Duration::from_secs(11));
    /// assert_eq!(breaker.snapshot().calls, 0); // aged out
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn time_window(mut self, duration: Duration, buckets: u32) -> Self {
        self.config = self.config.window(Window::Time { duration, buckets });
        self
    }

    /// Judges rates only once the window holds `n` calls.
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, State};
    ///
    /// let breaker = CircuitBreaker::builder("db")
    ///     .failure_rate(0.5)
    ///     .count_window(10)
    ///     .minimum_calls(3)
    ///     .build()?;
    /// breaker.try_acquire()?.failure();
    /// breaker.try_acquire()?.failure();
    /// assert_eq!(breaker.state(), State::Closed); // 100 % of 2 calls: too few to judge
    /// breaker.try_acquire()?.failure();
    /// assert_eq!(breaker.state(), State::Open);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn minimum_calls(mut self, n: u32) -> Self {
        self.config = self.config.minimum_calls(n);
        self
    }

    /// Stays open for `duration` each time.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_breaker::CircuitBreaker;
    /// use buttress_core::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// let breaker = CircuitBreaker::builder("db")
    ///     .consecutive_failures(1)
    ///     .open_for(Duration::from_secs(30))
    ///     .clock(clock.clone())
    ///     .build()?;
    /// breaker.try_acquire()?.failure();
    /// clock.advance(Duration::from_secs(10));
    /// let rejected = breaker.try_acquire().unwrap_err();
    /// assert_eq!(rejected.retry_after(), Some(Duration::from_secs(20)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_for(mut self, duration: Duration) -> Self {
        self.config = self.config.open(OpenDuration::Fixed { duration });
        self
    }

    /// Stays open `initial × multiplier^(n−1)` for the n-th opening in a
    /// row, at most `max`, shortened at random by up to `jitter`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_breaker::CircuitBreaker;
    /// use buttress_core::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// let breaker = CircuitBreaker::builder("db")
    ///     .consecutive_failures(1)
    ///     .half_open_permits(1)
    ///     .open_exponential(Duration::from_secs(1), 2.0, Duration::from_secs(60), 0.0)
    ///     .clock(clock.clone())
    ///     .build()?;
    /// breaker.try_acquire()?.failure(); // open for 1 s
    /// assert_eq!(breaker.try_acquire().unwrap_err().retry_after(), Some(Duration::from_secs(1)));
    /// clock.advance(Duration::from_secs(1));
    /// breaker.try_acquire()?.failure(); // the probe fails: open for 2 s
    /// assert_eq!(breaker.try_acquire().unwrap_err().retry_after(), Some(Duration::from_secs(2)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_exponential(
        mut self,
        initial: Duration,
        multiplier: f64,
        max: Duration,
        jitter: f64,
    ) -> Self {
        self.config = self.config.open(OpenDuration::Exponential {
            initial,
            multiplier,
            max,
            jitter,
        });
        self
    }

    /// Lets `n` probes through in half-open.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_breaker::{CircuitBreaker, State};
    /// use buttress_core::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// let breaker = CircuitBreaker::builder("db")
    ///     .consecutive_failures(1)
    ///     .open_for(Duration::from_secs(5))
    ///     .half_open_permits(2)
    ///     .clock(clock.clone())
    ///     .build()?;
    /// breaker.try_acquire()?.failure();
    /// clock.advance(Duration::from_secs(5));
    /// let (a, b) = (breaker.try_acquire()?, breaker.try_acquire()?);
    /// assert!(a.is_probe() && b.is_probe());
    /// assert!(breaker.try_acquire().is_err()); // a third caller waits
    /// a.success();
    /// b.success();
    /// assert_eq!(breaker.state(), State::Closed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn half_open_permits(mut self, n: u32) -> Self {
        self.config = self.config.half_open_permits(n);
        self
    }

    /// Reopens if the probes have not decided within `duration`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_breaker::{CircuitBreaker, State};
    /// use buttress_core::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// let breaker = CircuitBreaker::builder("db")
    ///     .consecutive_failures(1)
    ///     .open_for(Duration::from_secs(5))
    ///     .half_open_permits(1)
    ///     .max_half_open(Duration::from_secs(30))
    ///     .clock(clock.clone())
    ///     .build()?;
    /// breaker.try_acquire()?.failure();
    /// clock.advance(Duration::from_secs(5));
    /// let hung = breaker.try_acquire()?; // a probe that never answers
    /// clock.advance(Duration::from_secs(30));
    /// assert!(breaker.try_acquire().is_err());
    /// assert_eq!(breaker.state(), State::Open); // opened again
    /// # drop(hung);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_half_open(mut self, duration: Duration) -> Self {
        self.config = self.config.max_half_open(duration);
        self
    }

    /// Honours `Retry-After` hints up to `max` (`None` ignores them).
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_breaker::{CircuitBreaker, Classification};
    ///
    /// let breaker = CircuitBreaker::builder("api")
    ///     .retry_after_max(Some(Duration::from_secs(10)))
    ///     .build()?;
    /// // The upstream says "come back in 60 s": the breaker opens at once, for at most 10 s.
    /// let hint = Classification::RETRYABLE_FAILURE.with_retry_after(Some(Duration::from_secs(60)));
    /// breaker.try_acquire()?.record_classified(hint);
    /// let rejected = breaker.try_acquire().unwrap_err();
    /// assert!(rejected.retry_after() <= Some(Duration::from_secs(10)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retry_after_max(mut self, max: Option<Duration>) -> Self {
        self.config = self.config.retry_after_max(max);
        self
    }

    buttress_core::setters! {
        /// The clock (default: [`default_clock`](buttress_core::default_clock):
        /// the CPU's time-stamp counter, or tokio's clock under paused time).
        ///
        /// ```
        /// use std::time::Duration;
        /// use buttress_breaker::{CircuitBreaker, State};
        /// use buttress_core::ManualClock;
        ///
        /// let clock = ManualClock::new(); // time moves only when the test says so
        /// let breaker = CircuitBreaker::builder("db")
        ///     .consecutive_failures(1)
        ///     .open_for(Duration::from_secs(60))
        ///     .half_open_permits(1)
        ///     .clock(clock.clone())
        ///     .build()?;
        /// breaker.try_acquire()?.failure();
        /// clock.advance(Duration::from_secs(60));
        /// breaker.try_acquire()?.success();
        /// assert_eq!(breaker.state(), State::Closed);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        clock: shared Clock,
        /// The random source for jitter (default: a fast thread-local one).
        ///
        /// ```
        /// use std::time::Duration;
        /// use buttress_breaker::CircuitBreaker;
        /// use buttress_core::{FixedRandom, ManualClock};
        ///
        /// let breaker = CircuitBreaker::builder("db")
        ///     .consecutive_failures(1)
        ///     .open_exponential(Duration::from_secs(10), 2.0, Duration::from_secs(60), 0.5)
        ///     .random(FixedRandom::new([0.5])) // jitter removes 0.5 × 0.5 of the period
        ///     .clock(ManualClock::new())
        ///     .build()?;
        /// breaker.try_acquire()?.failure();
        /// let rejected = breaker.try_acquire().unwrap_err();
        /// assert_eq!(rejected.retry_after(), Some(Duration::from_millis(7500)));
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        random: shared Random,
    }

    /// Adds a listener for [`BreakerEvent`]s.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use buttress_breaker::{BreakerEvent, CircuitBreaker, State};
    ///
    /// let opened = Arc::new(Mutex::new(Vec::new()));
    /// let seen = Arc::clone(&opened);
    /// let breaker = CircuitBreaker::builder("db")
    ///     .consecutive_failures(1)
    ///     .on_event(move |e| {
    ///         if let BreakerEvent::StateChanged { to: State::Open, reason, .. } = e {
    ///             seen.lock().unwrap().push(*reason);
    ///         }
    ///     })
    ///     .build()?;
    /// breaker.try_acquire()?.failure();
    /// assert_eq!(opened.lock().unwrap().len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_event(mut self, f: impl Fn(&BreakerEvent) + Send + Sync + 'static) -> Self {
        self.listeners.push(Arc::new(f));
        self
    }

    /// Adds a listener for state changes only
    /// ([`BreakerEvent::StateChanged`]). Unlike [`on_event`](Self::on_event),
    /// it adds nothing to the path of an admitted or refused call: a
    /// dashboard that follows every breaker leaves their cost unchanged.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// use buttress_breaker::CircuitBreaker;
    ///
    /// let changes = Arc::new(AtomicU32::new(0));
    /// let seen = Arc::clone(&changes);
    /// let breaker = CircuitBreaker::builder("db")
    ///     .consecutive_failures(1)
    ///     .on_state_change(move |_| { seen.fetch_add(1, Ordering::Relaxed); })
    ///     .build()?;
    /// breaker.try_acquire()?.success(); // no event
    /// breaker.try_acquire()?.failure(); // closed → open
    /// assert_eq!(changes.load(Ordering::Relaxed), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_state_change(mut self, f: impl Fn(&BreakerEvent) + Send + Sync + 'static) -> Self {
        self.transitions.push(Arc::new(f));
        self
    }

    /// Registers the breaker in `registry` when it is built.
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, Registry};
    ///
    /// let registry = Registry::new();
    /// CircuitBreaker::builder("db").registry(&registry).build()?;
    /// assert!(registry.get("db").is_some());
    /// // A second breaker of the same name is refused.
    /// assert!(CircuitBreaker::builder("db").registry(&registry).build().is_err());
    /// # Ok::<(), buttress_breaker::ConfigError>(())
    /// ```
    pub fn registry(mut self, registry: &Registry) -> Self {
        self.registry = Some(registry.clone());
        self
    }

    /// Validates the configuration and builds the breaker.
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, ConfigError};
    ///
    /// assert!(CircuitBreaker::builder("db").build().is_ok());
    /// let e = CircuitBreaker::builder("db").half_open_permits(0).build().unwrap_err();
    /// assert_eq!(e, ConfigError::HalfOpenPermits(0));
    /// ```
    pub fn build(self) -> Result<CircuitBreaker, ConfigError> {
        let name = Name::new(&self.name).map_err(ConfigError::Name)?;
        let rules = Rules::new(&self.config)?;
        let breaker = CircuitBreaker {
            shared: Arc::new(Shared {
                metrics: Metrics::new(&name),
                times_calls: AtomicBool::new(rules.times_calls()),
                slow_nanos: AtomicU64::new(rules.slow_nanos),
                machine: Machine::new(rules, self.random),
                name,
                watch: Stopwatch::new(self.clock),
                listeners: Listeners::from_vec(self.listeners),
                transitions: Listeners::from_vec(self.transitions),
                publishing: std::sync::Mutex::new(()),
            }),
        };
        if let Some(registry) = self.registry {
            registry.register(&breaker)?;
        }
        Ok(breaker)
    }
}
