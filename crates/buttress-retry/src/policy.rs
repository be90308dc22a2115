//! The policy handle: rules, budget, clock, randomness, observability.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use buttress_core::{
    Classification, Clock, FastRandom, Listener, Listeners, Name, Outcome, Random, SharedClock,
    SharedRandom, TokioClock,
};

use crate::attempts::{Attempts, Decision, Rules, Stop};
use crate::budget::{RatioBudget, RetryBudget, Throttle};
use crate::config::{BudgetConfig, ConfigError, RetryConfig};
use crate::event::RetryEvent;
use crate::metrics::Metrics;

/// A retry policy. Cheap to clone; clones share the budget.
///
/// Use it with [`retry`](crate::retry) and [`retry_blocking`](crate::retry_blocking),
/// or as a tower layer through [`RetryPolicy::layer`].
#[derive(Clone)]
pub struct RetryPolicy {
    inner: Arc<Inner>,
}

struct Inner {
    name: Name,
    rules: Rules,
    attempt_timeout: Option<Duration>,
    budget: Option<Arc<dyn RetryBudget>>,
    clock: SharedClock,
    random: SharedRandom,
    metrics: Metrics,
    listeners: Listeners<RetryEvent>,
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("name", &self.inner.name)
            .field("rules", &self.inner.rules)
            .field("attempt_timeout", &self.inner.attempt_timeout)
            .field("budget", &self.inner.budget)
            .finish_non_exhaustive()
    }
}

/// The retries of one request in progress.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    attempts: Attempts,
    /// When the first attempt started; read only when a deadline is set.
    started: Option<Instant>,
}

impl RetryPolicy {
    /// Starts a builder with the default configuration.
    pub fn builder(name: impl Into<String>) -> Builder {
        Builder::new(name)
    }

    /// A policy with `config`.
    pub fn new(name: impl Into<String>, config: RetryConfig) -> Result<Self, ConfigError> {
        Builder::new(name).config(config).build()
    }

    /// The policy's name.
    pub fn name(&self) -> &Name {
        &self.inner.name
    }

    /// The most attempts in all.
    pub fn max_attempts(&self) -> u32 {
        self.inner.rules.max_attempts
    }

    /// The budget, if any.
    pub fn budget(&self) -> Option<&Arc<dyn RetryBudget>> {
        self.inner.budget.as_ref()
    }

    /// A tower layer that retries with this policy.
    pub fn layer(&self) -> crate::RetryLayer {
        crate::RetryLayer::new(self.clone())
    }

    /// A request begins: deposit in the budget, note the start.
    ///
    /// A deposit needs the time only to the budget's slice (a tenth of its
    /// window), and reading the clock would be most of a request's cost
    /// here; so on each thread only every eighth deposit reads it, and the
    /// others go to the budget's newest slice. With sparse traffic a
    /// deposit can land in an older slice and expire early: the budget
    /// then allows fewer retries, never more.
    #[inline]
    pub(crate) fn begin(&self) -> Run {
        let inner = &*self.inner;
        let started = inner.rules.deadline.map(|_| inner.clock.now());
        if let Some(budget) = &inner.budget {
            match started {
                Some(now) => budget.deposit(now),
                None => {
                    if sample_clock() || !budget.deposit_untimed() {
                        budget.deposit(inner.clock.now());
                    }
                }
            }
        }
        Run {
            attempts: Attempts::new(),
            started,
        }
    }

    /// What is left of the deadline, if there is one.
    #[inline]
    pub(crate) fn time_left(&self, run: &Run) -> Option<Duration> {
        let inner = &*self.inner;
        match (inner.rules.deadline, run.started) {
            (Some(deadline), Some(started)) => {
                Some(deadline.saturating_sub(inner.clock.now().saturating_duration_since(started)))
            }
            _ => None,
        }
    }

    /// Whether the deadline has passed: no further attempt may start.
    #[inline]
    pub(crate) fn out_of_time(&self, run: &Run) -> bool {
        self.time_left(run).is_some_and(|d| d.is_zero())
    }

    /// An attempt starts; returns how long it may take at most (the
    /// attempt timeout, cut to what is left of the deadline).
    #[inline]
    pub(crate) fn start_attempt(&self, run: &mut Run) -> Option<Duration> {
        run.attempts.start();
        let left = self.time_left(run);
        match (self.inner.attempt_timeout, left) {
            (Some(a), Some(l)) => Some(a.min(l)),
            (a, l) => a.or(l),
        }
    }

    /// Attempts made so far in `run`.
    pub(crate) fn attempts(&self, run: &Run) -> u32 {
        run.attempts.made()
    }

    /// Decides after an attempt, and reports the decision.
    #[inline]
    pub(crate) fn after_attempt(
        &self,
        run: &mut Run,
        c: Classification,
        timed_out: bool,
    ) -> Decision {
        let inner = &*self.inner;
        if let Some(budget) = &inner.budget {
            record_outcome(&**budget, c, timed_out);
        }
        if !timed_out && c.outcome == Outcome::Success {
            // The happy path: nothing more to decide.
            self.finish(run, Stop::Done);
            return Decision::Stop(Stop::Done);
        }
        self.decide_slow(run, c, timed_out)
    }

    #[cold]
    fn decide_slow(&self, run: &mut Run, c: Classification, timed_out: bool) -> Decision {
        let inner = &*self.inner;
        let now = inner.clock.now();
        let elapsed = run
            .started
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
        let u = inner.random.unit();
        let budget = inner.budget.as_deref();
        let decision = run
            .attempts
            .decide(&inner.rules, c, timed_out, elapsed, u, || {
                budget.is_none_or(|b| b.try_withdraw(now))
            });
        match decision {
            Decision::Retry { delay, reason } => {
                inner.metrics.retry(reason);
                tracing::debug!(
                    retry = %inner.name, attempt = run.attempts.made(), delay = ?delay, %reason,
                    "attempt failed; retrying"
                );
                if !inner.listeners.is_empty() {
                    inner.listeners.emit(&RetryEvent::Retrying {
                        name: inner.name.clone(),
                        attempt: run.attempts.made(),
                        delay,
                        reason,
                    });
                }
            }
            Decision::Stop(stop) => self.finish(run, stop),
        }
        decision
    }

    /// Ends a request that cannot be retried (nothing to send again),
    /// whatever the attempt's result.
    #[cold]
    pub(crate) fn stop_without_retry(
        &self,
        run: &mut Run,
        c: Classification,
        timed_out: bool,
        stop: Stop,
    ) -> Decision {
        if let Some(budget) = &self.inner.budget {
            record_outcome(&**budget, c, timed_out);
        }
        let stop = if !timed_out && (c.outcome == Outcome::Success || !c.retryable) {
            if c.outcome == Outcome::Failure {
                Stop::NotRetryable
            } else {
                Stop::Done
            }
        } else {
            stop
        };
        self.finish(run, stop);
        Decision::Stop(stop)
    }

    /// A request ends with `stop`.
    #[inline]
    pub(crate) fn finish(&self, run: &Run, stop: Stop) {
        let inner = &*self.inner;
        inner.metrics.finished(run.attempts.made(), stop);
        if stop.gave_up() {
            tracing::debug!(retry = %inner.name, attempts = run.attempts.made(), %stop, "giving up");
        }
        if !inner.listeners.is_empty() {
            inner.listeners.emit(&RetryEvent::Finished {
                name: inner.name.clone(),
                attempts: run.attempts.made(),
                stop,
            });
        }
    }

    /// A request could not be cloned, so it is sent once.
    #[cold]
    pub(crate) fn not_cloneable(&self) {
        self.inner.metrics.not_cloneable();
        tracing::warn!(
            retry = %self.inner.name,
            "request cannot be cloned; it is sent once and will not be retried"
        );
    }
}

/// Tells the budget how an attempt went; ignored outcomes say nothing.
#[inline]
fn record_outcome(budget: &dyn RetryBudget, c: Classification, timed_out: bool) {
    match (timed_out, c.outcome) {
        (true, _) | (false, Outcome::Failure) => budget.record(false),
        (false, Outcome::Success) => budget.record(true),
        (false, Outcome::Ignored) => {}
    }
}

thread_local! {
    static DEPOSITS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Whether this thread's deposit should read the clock: one in eight.
#[inline]
fn sample_clock() -> bool {
    DEPOSITS.with(|n| {
        let v = n.get().wrapping_add(1);
        n.set(v);
        v % 8 == 1
    })
}

/// Builds a [`RetryPolicy`].
///
/// ```
/// use std::time::Duration;
/// use buttress_retry::{Backoff, RetryPolicy};
///
/// let policy = RetryPolicy::builder("embeddings")
///     .max_attempts(4)
///     .backoff(Backoff::FullJitter { base: Duration::from_millis(50), factor: 2.0, max: Duration::from_secs(2) })
///     .deadline(Duration::from_secs(5))
///     .attempt_timeout(Duration::from_secs(1))
///     .build()
///     .expect("valid");
/// assert_eq!(policy.max_attempts(), 4);
/// ```
#[must_use]
pub struct Builder {
    name: String,
    config: RetryConfig,
    budget: Option<Arc<dyn RetryBudget>>,
    clock: SharedClock,
    random: SharedRandom,
    listeners: Vec<Listener<RetryEvent>>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Builder {
    fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            config: RetryConfig::default(),
            budget: None,
            clock: Arc::new(TokioClock),
            random: Arc::new(FastRandom),
            listeners: Vec::new(),
        }
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: RetryConfig) -> Self {
        self.config = config;
        self
    }

    /// The most attempts in all, the first included.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.config.max_attempts = n;
        self
    }

    /// The delays between attempts.
    pub fn backoff(mut self, backoff: crate::Backoff) -> Self {
        self.config.backoff = backoff;
        self
    }

    /// The longest a request may take in all.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.config.deadline = Some(deadline);
        self
    }

    /// The longest one attempt may take.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.config.attempt_timeout = Some(timeout);
        self
    }

    /// Whether to wait for `Retry-After` hints.
    pub fn honor_retry_after(mut self, yes: bool) -> Self {
        self.config.honor_retry_after = yes;
        self
    }

    /// The longest `Retry-After` (a server's, or an open breaker's
    /// remaining time) to wait for; a longer one stops the retry at once
    /// with [`Stop::RetryAfterTooLong`](crate::Stop::RetryAfterTooLong).
    /// Default: the backoff's maximum delay.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_retry::RetryPolicy;
    ///
    /// // In front of a breaker that opens for 60 s: wait it out.
    /// let retry = RetryPolicy::builder("llm")
    ///     .max_retry_after(Duration::from_secs(60))
    ///     .build()?;
    /// # let _ = retry;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_retry_after(mut self, longest: Duration) -> Self {
        self.config.max_retry_after = Some(longest);
        self
    }

    /// The budget to build (each built policy gets its own).
    pub fn budget_config(mut self, budget: BudgetConfig) -> Self {
        self.config.budget = budget;
        self.budget = None;
        self
    }

    /// A budget shared with other policies (for example every route to one
    /// upstream). Overrides the configured one.
    pub fn shared_budget(mut self, budget: Arc<dyn RetryBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// No budget at all.
    pub fn no_budget(mut self) -> Self {
        self.config.budget = BudgetConfig::None;
        self.budget = None;
        self
    }

    /// The clock (default: tokio's).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The random source for jitter.
    pub fn random(mut self, random: impl Random) -> Self {
        self.random = Arc::new(random);
        self
    }

    /// Adds a listener.
    pub fn on_event(mut self, f: impl Fn(&RetryEvent) + Send + Sync + 'static) -> Self {
        self.listeners.push(Arc::new(f));
        self
    }

    /// Validates and builds.
    pub fn build(self) -> Result<RetryPolicy, ConfigError> {
        let name = Name::new(&self.name).map_err(ConfigError::Name)?;
        self.config.validate()?;
        let c = &self.config;
        let budget: Option<Arc<dyn RetryBudget>> = match (self.budget, c.budget) {
            (Some(shared), _) => Some(shared),
            (None, BudgetConfig::None) => None,
            (
                None,
                BudgetConfig::Ratio {
                    ratio,
                    min_per_second,
                    window,
                },
            ) => Some(Arc::new(
                RatioBudget::new(ratio, min_per_second, window).map_err(ConfigError::Budget)?,
            )),
            (
                None,
                BudgetConfig::Throttle {
                    max_tokens,
                    token_ratio,
                },
            ) => Some(Arc::new(
                Throttle::new(max_tokens, token_ratio).map_err(ConfigError::Budget)?,
            )),
        };
        Ok(RetryPolicy {
            inner: Arc::new(Inner {
                metrics: Metrics::new(&name),
                name,
                rules: Rules {
                    max_attempts: c.max_attempts,
                    backoff: c.backoff,
                    deadline: c.deadline,
                    honor_retry_after: c.honor_retry_after,
                    max_retry_after: c.max_retry_after.unwrap_or_else(|| c.backoff.max()),
                },
                attempt_timeout: c.attempt_timeout,
                budget,
                clock: self.clock,
                random: self.random,
                listeners: Listeners::from_vec(self.listeners),
            }),
        })
    }
}
