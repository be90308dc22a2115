//! The policy handle: rules, budget, clock, randomness, observability.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use buttress_core::{
    Classification, Clock, FastRandom, Listener, Listeners, Name, Outcome, Random, SharedClock,
    SharedRandom, default_clock,
};

use arc_swap::ArcSwap;

use crate::attempts::{Attempts, Decision, Rules, Stop};
use crate::budget::{RatioBudget, RetryBudget, Throttle};
use crate::config::{BudgetConfig, ConfigError, RetryConfig};
use crate::event::RetryEvent;
use crate::metrics::Metrics;
use crate::times::Times;

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
    /// Swapped whole by [`RetryPolicy::reconfigure`]; each decision reads
    /// one complete set.
    settings: ArcSwap<Settings>,
    /// The deadline and attempt timeout, read by every request.
    times: Times,
    /// Serialises changes of configuration.
    changing: std::sync::Mutex<()>,
    budget: Option<Arc<dyn RetryBudget>>,
    clock: SharedClock,
    random: SharedRandom,
    metrics: Metrics,
    listeners: Listeners<RetryEvent>,
}

/// The rules in force and the configuration they came from.
#[derive(Debug)]
struct Settings {
    rules: Rules,
    config: RetryConfig,
}

impl Settings {
    /// The settings of a configuration that passed validation.
    fn new(c: &RetryConfig) -> Self {
        Self {
            rules: Rules {
                max_attempts: c.max_attempts,
                backoff: c.backoff,
                deadline: c.deadline,
                honor_retry_after: c.honor_retry_after,
                max_retry_after: c.max_retry_after.unwrap_or_else(|| c.backoff.max()),
            },
            config: c.clone(),
        }
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("name", &self.inner.name)
            .field("settings", &self.inner.settings.load())
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
    ///
    /// ```
    /// use buttress_retry::RetryPolicy;
    ///
    /// let policy = RetryPolicy::builder("search").max_attempts(2).build()?;
    /// assert_eq!(policy.max_attempts(), 2);
    /// # Ok::<(), buttress_retry::ConfigError>(())
    /// ```
    pub fn builder(name: impl Into<String>) -> Builder {
        Builder::new(name)
    }

    /// A policy with `config`.
    ///
    /// ```
    /// use buttress_retry::{RetryConfig, RetryPolicy};
    ///
    /// let policy = RetryPolicy::new("db", RetryConfig::database_connect())?;
    /// assert_eq!(policy.max_attempts(), 6);
    /// # Ok::<(), buttress_retry::ConfigError>(())
    /// ```
    pub fn new(name: impl Into<String>, config: RetryConfig) -> Result<Self, ConfigError> {
        Builder::new(name).config(config).build()
    }

    /// The policy's name.
    ///
    /// ```
    /// use buttress_retry::RetryPolicy;
    ///
    /// let policy = RetryPolicy::builder("db").build()?;
    /// assert_eq!(policy.name().as_str(), "db");
    /// # Ok::<(), buttress_retry::ConfigError>(())
    /// ```
    pub fn name(&self) -> &Name {
        &self.inner.name
    }

    /// The most attempts in all.
    ///
    /// ```
    /// use buttress_retry::RetryPolicy;
    ///
    /// assert_eq!(RetryPolicy::builder("db").build()?.max_attempts(), 3); // the default
    /// # Ok::<(), buttress_retry::ConfigError>(())
    /// ```
    pub fn max_attempts(&self) -> u32 {
        self.inner.settings.load().rules.max_attempts
    }

    /// The configuration in force: the one it was built with, or the last
    /// one [`reconfigure`](Self::reconfigure) accepted.
    ///
    /// ```
    /// use buttress_retry::{RetryConfig, RetryPolicy};
    ///
    /// let policy = RetryPolicy::new("llm", RetryConfig::llm())?;
    /// assert_eq!(policy.config(), RetryConfig::llm());
    /// # Ok::<(), buttress_retry::ConfigError>(())
    /// ```
    pub fn config(&self) -> RetryConfig {
        self.inner.settings.load().config.clone()
    }

    /// Puts new settings in force without losing state: the budget keeps
    /// its balance, and each request's next decision (whether to retry,
    /// how long to wait, how long an attempt may take) follows the new
    /// settings; attempts already made still count.
    ///
    /// The budget is part of the policy's state: a change to
    /// `budget` is refused ([`ConfigError::BudgetChanged`]). Refused
    /// whole, with nothing changed, when `config` is invalid.
    ///
    /// ```
    /// use buttress_retry::{ConfigError, RetryPolicy};
    ///
    /// let policy = RetryPolicy::builder("db").max_attempts(3).build()?;
    /// let mut more = policy.config();
    /// more.max_attempts = 5;
    /// policy.reconfigure(more)?;
    /// assert_eq!(policy.max_attempts(), 5);
    ///
    /// let mut bad = policy.config();
    /// bad.max_attempts = 0;
    /// assert_eq!(policy.reconfigure(bad), Err(ConfigError::MaxAttempts(0)));
    /// assert_eq!(policy.max_attempts(), 5);
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn reconfigure(&self, config: RetryConfig) -> Result<(), ConfigError> {
        config.validate()?;
        let _changing = self
            .inner
            .changing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let old = self.inner.settings.load();
        if old.config.budget != config.budget {
            return Err(ConfigError::BudgetChanged);
        }
        self.inner.settings.store(Arc::new(Settings::new(&config)));
        self.inner
            .times
            .write(config.deadline, config.attempt_timeout);
        tracing::info!(retry = %self.inner.name, "configuration changed");
        Ok(())
    }

    /// The budget, if any.
    ///
    /// ```
    /// use buttress_retry::RetryPolicy;
    ///
    /// assert!(RetryPolicy::builder("db").build()?.budget().is_some()); // 10 % + 10/s by default
    /// assert!(RetryPolicy::builder("db").no_budget().build()?.budget().is_none());
    /// # Ok::<(), buttress_retry::ConfigError>(())
    /// ```
    pub fn budget(&self) -> Option<&Arc<dyn RetryBudget>> {
        self.inner.budget.as_ref()
    }

    /// A tower layer that retries with this policy.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use buttress_retry::RetryPolicy;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// let policy = RetryPolicy::builder("flaky").build().unwrap();
    /// let calls = AtomicU32::new(0);
    /// let svc = policy.layer().layer(service_fn(|x: u32| {
    ///     let n = calls.fetch_add(1, Ordering::SeqCst);
    ///     async move { if n == 0 { Err(std::io::Error::other("reset")) } else { Ok(x) } }
    /// }));
    /// assert_eq!(svc.oneshot(7).await.unwrap(), 7); // the second attempt succeeded
    /// assert_eq!(calls.load(Ordering::SeqCst), 2);
    /// # });
    /// ```
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
        let started = inner.times.deadline().map(|_| inner.clock.now());
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
        match (inner.times.deadline(), run.started) {
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
        let inner = &*self.inner;
        let (deadline, attempt_timeout) = inner.times.read();
        let left = match (deadline, run.started) {
            (Some(deadline), Some(started)) => {
                Some(deadline.saturating_sub(inner.clock.now().saturating_duration_since(started)))
            }
            _ => None,
        };
        match (attempt_timeout, left) {
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
        let decision = run.attempts.decide(
            &inner.settings.load().rules,
            c,
            timed_out,
            elapsed,
            u,
            || budget.is_none_or(|b| b.try_withdraw(now)),
        );
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
            clock: default_clock(),
            random: Arc::new(FastRandom),
            listeners: Vec::new(),
        }
    }

    buttress_core::setters! {
        /// Replaces the whole configuration.
        ///
        /// ```
        /// use buttress_retry::{RetryConfig, RetryPolicy};
        ///
        /// let policy = RetryPolicy::builder("llm").config(RetryConfig::llm()).build()?;
        /// assert_eq!(policy.max_attempts(), 3);
        /// # Ok::<(), buttress_retry::ConfigError>(())
        /// ```
        config: RetryConfig,
    }

    /// The most attempts in all, the first included.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use buttress_retry::{RetryClassifier, RetryPolicy, Stop, retry_blocking_with};
    ///
    /// let policy = RetryPolicy::builder("db").max_attempts(4).build()?;
    /// let calls = Cell::new(0);
    /// let e = retry_blocking_with(&policy, &RetryClassifier, |_| {}, || {
    ///     calls.set(calls.get() + 1);
    ///     Err::<(), _>("down")
    /// })
    /// .unwrap_err();
    /// assert_eq!((calls.get(), e.stop()), (4, Stop::MaxAttempts));
    /// # Ok::<(), buttress_retry::ConfigError>(())
    /// ```
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.config = self.config.max_attempts(n);
        self
    }

    /// The delays between attempts.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_retry::{Backoff, RetryClassifier, RetryPolicy, retry_blocking_with};
    ///
    /// let policy = RetryPolicy::builder("db")
    ///     .backoff(Backoff::Linear { base: Duration::from_secs(1), max: Duration::from_secs(10) })
    ///     .build()?;
    /// let mut waits = Vec::new();
    /// let _ = retry_blocking_with(&policy, &RetryClassifier, |d| waits.push(d), || Err::<(), _>("down"));
    /// assert_eq!(waits, [Duration::from_secs(1), Duration::from_secs(2)]);
    /// # Ok::<(), buttress_retry::ConfigError>(())
    /// ```
    pub fn backoff(mut self, backoff: crate::Backoff) -> Self {
        self.config = self.config.backoff(backoff);
        self
    }

    /// The longest a request may take in all.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_core::ManualClock;
    /// use buttress_retry::{Backoff, RetryClassifier, RetryPolicy, Stop, retry_blocking_with};
    ///
    /// let clock = ManualClock::new();
    /// let policy = RetryPolicy::builder("db")
    ///     .max_attempts(10)
    ///     .backoff(Backoff::Constant { delay: Duration::from_secs(2) })
    ///     .deadline(Duration::from_secs(5))
    ///     .clock(clock.clone())
    ///     .build()?;
    /// let e = retry_blocking_with(&policy, &RetryClassifier, |d| clock.advance(d), || Err::<(), _>("down"))
    ///     .unwrap_err();
    /// // Attempts at 0, 2 and 4 s; a wait to 6 s would end past the deadline.
    /// assert_eq!((e.attempts(), e.stop()), (3, Stop::Deadline));
    /// # Ok::<(), buttress_retry::ConfigError>(())
    /// ```
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.config = self.config.deadline(deadline);
        self
    }

    /// The longest one attempt may take.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_retry::{RetryPolicy, retry};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// let policy = RetryPolicy::builder("slow")
    ///     .max_attempts(2)
    ///     .attempt_timeout(Duration::from_secs(1))
    ///     .build()
    ///     .unwrap();
    /// let e = retry(&policy, || async {
    ///     tokio::time::sleep(Duration::from_secs(30)).await; // hangs
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .await
    /// .unwrap_err();
    /// assert!(e.is_timeout());
    /// assert_eq!(e.attempts(), 2);
    /// # });
    /// ```
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.config = self.config.attempt_timeout(timeout);
        self
    }

    /// Whether to wait for `Retry-After` hints.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_core::{Classification, classify_fn};
    /// use buttress_retry::{Backoff, RetryPolicy, retry_blocking_with};
    ///
    /// // The server says "come back in 30 s"; this policy keeps to its own backoff.
    /// let hinted = classify_fn(|r: &Result<(), &str>| match r {
    ///     Ok(_) => Classification::SUCCESS,
    ///     Err(_) => Classification::RETRYABLE_FAILURE.with_retry_after(Some(Duration::from_secs(30))),
    /// });
    /// let policy = RetryPolicy::builder("api")
    ///     .max_attempts(2)
    ///     .backoff(Backoff::Constant { delay: Duration::from_secs(1) })
    ///     .honor_retry_after(false)
    ///     .build()?;
    /// let mut waits = Vec::new();
    /// let _ = retry_blocking_with(&policy, &hinted, |d| waits.push(d), || Err("busy"));
    /// assert_eq!(waits, [Duration::from_secs(1)]);
    /// # Ok::<(), buttress_retry::ConfigError>(())
    /// ```
    pub fn honor_retry_after(mut self, yes: bool) -> Self {
        self.config = self.config.honor_retry_after(yes);
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
        self.config = self.config.max_retry_after(longest);
        self
    }

    /// The budget to build (each built policy gets its own).
    ///
    /// ```
    /// use buttress_retry::{BudgetConfig, RetryClassifier, RetryPolicy, Stop, retry_blocking_with};
    ///
    /// // gRPC throttling with 2 tokens: one failure leaves 1, not more than half.
    /// let policy = RetryPolicy::builder("api")
    ///     .budget_config(BudgetConfig::Throttle { max_tokens: 2.0, token_ratio: 1.0 })
    ///     .build()?;
    /// let e = retry_blocking_with(&policy, &RetryClassifier, |_| {}, || Err::<(), _>("down"))
    ///     .unwrap_err();
    /// assert_eq!((e.attempts(), e.stop()), (1, Stop::BudgetExhausted));
    /// # Ok::<(), buttress_retry::ConfigError>(())
    /// ```
    pub fn budget_config(mut self, budget: BudgetConfig) -> Self {
        self.config = self.config.budget(budget);
        self.budget = None;
        self
    }

    /// A budget shared with other policies (for example every route to one
    /// upstream). Overrides the configured one.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use buttress_retry::{RatioBudget, RetryBudget, RetryPolicy};
    ///
    /// // Every route to one upstream draws on one budget.
    /// let budget: Arc<dyn RetryBudget> =
    ///     Arc::new(RatioBudget::new(0.1, 5.0, Duration::from_secs(10)).expect("valid"));
    /// let search = RetryPolicy::builder("search").shared_budget(budget.clone()).build()?;
    /// let suggest = RetryPolicy::builder("suggest").shared_budget(budget).build()?;
    /// assert!(Arc::ptr_eq(search.budget().unwrap(), suggest.budget().unwrap()));
    /// # Ok::<(), buttress_retry::ConfigError>(())
    /// ```
    pub fn shared_budget(mut self, budget: Arc<dyn RetryBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// No budget at all.
    ///
    /// ```
    /// use buttress_retry::RetryPolicy;
    ///
    /// let policy = RetryPolicy::builder("db-connect").no_budget().build()?;
    /// assert!(policy.budget().is_none());
    /// # Ok::<(), buttress_retry::ConfigError>(())
    /// ```
    pub fn no_budget(mut self) -> Self {
        self.config = self.config.budget(BudgetConfig::None);
        self.budget = None;
        self
    }

    buttress_core::setters! {
        /// The clock (default: [`default_clock`](buttress_core::default_clock):
        /// the CPU's time-stamp counter, or tokio's clock under paused time).
        ///
        /// ```
        /// use std::time::Duration;
        /// use buttress_core::ManualClock;
        /// use buttress_retry::{RetryClassifier, RetryPolicy, Stop, retry_blocking_with};
        ///
        /// let clock = ManualClock::new(); // the deadline is measured on it
        /// let policy = RetryPolicy::builder("db")
        ///     .deadline(Duration::from_secs(1))
        ///     .clock(clock.clone())
        ///     .build()?;
        /// let e = retry_blocking_with(&policy, &RetryClassifier, |_| {}, || {
        ///     clock.advance(Duration::from_secs(2)); // a slow attempt
        ///     Err::<(), _>("down")
        /// })
        /// .unwrap_err();
        /// assert_eq!((e.attempts(), e.stop()), (1, Stop::Deadline));
        /// # Ok::<(), buttress_retry::ConfigError>(())
        /// ```
        clock: shared Clock,
        /// The random source for jitter.
        ///
        /// ```
        /// use std::time::Duration;
        /// use buttress_core::FixedRandom;
        /// use buttress_retry::{Backoff, RetryClassifier, RetryPolicy, retry_blocking_with};
        ///
        /// let policy = RetryPolicy::builder("db")
        ///     .max_attempts(2)
        ///     .backoff(Backoff::FullJitter { base: Duration::from_secs(1), factor: 2.0, max: Duration::from_secs(10) })
        ///     .random(FixedRandom::new([0.25]))
        ///     .build()?;
        /// let mut waits = Vec::new();
        /// let _ = retry_blocking_with(&policy, &RetryClassifier, |d| waits.push(d), || Err::<(), _>("down"));
        /// assert_eq!(waits, [Duration::from_millis(250)]); // a quarter of the 1 s ceiling
        /// # Ok::<(), buttress_retry::ConfigError>(())
        /// ```
        random: shared Random,
    }

    /// Adds a listener.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use buttress_retry::{RetryClassifier, RetryEvent, RetryPolicy, retry_blocking_with};
    ///
    /// let retries = Arc::new(AtomicU32::new(0));
    /// let seen = Arc::clone(&retries);
    /// let policy = RetryPolicy::builder("db")
    ///     .on_event(move |e| {
    ///         if let RetryEvent::Retrying { .. } = e {
    ///             seen.fetch_add(1, Ordering::Relaxed);
    ///         }
    ///     })
    ///     .build()?;
    /// let _ = retry_blocking_with(&policy, &RetryClassifier, |_| {}, || Err::<(), _>("down"));
    /// assert_eq!(retries.load(Ordering::Relaxed), 2);
    /// # Ok::<(), buttress_retry::ConfigError>(())
    /// ```
    pub fn on_event(mut self, f: impl Fn(&RetryEvent) + Send + Sync + 'static) -> Self {
        self.listeners.push(Arc::new(f));
        self
    }

    /// Validates and builds.
    ///
    /// ```
    /// use buttress_retry::{ConfigError, RetryPolicy};
    ///
    /// assert!(RetryPolicy::builder("db").build().is_ok());
    /// let e = RetryPolicy::builder("db").max_attempts(0).build().unwrap_err();
    /// assert_eq!(e, ConfigError::MaxAttempts(0));
    /// ```
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
                settings: ArcSwap::from_pointee(Settings::new(c)),
                times: Times::new(c.deadline, c.attempt_timeout),
                changing: std::sync::Mutex::new(()),
                budget,
                clock: self.clock,
                random: self.random,
                listeners: Listeners::from_vec(self.listeners),
            }),
        })
    }
}
