//! The plain API: retry an async or blocking closure.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use buttress_core::{Classification, Classify};

use crate::attempts::{Decision, Stop};
use crate::classify::RetryClassifier;
use crate::error::AttemptTimedOut;
use crate::policy::RetryPolicy;

/// Why a retried call failed in the end.
///
/// Its message says how many attempts were made and why retrying stopped;
/// the last attempt's failure is its [`source()`](std::error::Error::source):
/// the call's own error `E`, or an [`AttemptTimedOut`] when the last attempt
/// was cut off. [`last`](Self::last) and [`into_error`](Self::into_error)
/// give it typed.
///
/// ```
/// use std::error::Error as _;
/// use buttress_retry::{RetryPolicy, Stop, retry};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let policy = RetryPolicy::builder("db").max_attempts(2).no_budget().build().unwrap();
/// let e = retry(&policy, || async { Err::<(), _>(std::io::Error::other("refused")) })
///     .await
///     .unwrap_err();
/// assert_eq!(e.to_string(), "failed after 2 attempts (max_attempts)");
/// assert_eq!(e.source().map(|s| s.to_string()), Some("refused".into()));
/// assert_eq!(e.stop(), Stop::MaxAttempts);
/// assert_eq!(e.into_error().map(|io| io.kind()), Some(std::io::ErrorKind::Other));
/// # });
/// ```
#[derive(thiserror::Error)]
#[error(transparent)]
pub struct RetryError<E>(Repr<E>);

/// What a [`RetryError`] holds: the last failure, typed, as the source.
#[derive(Debug, thiserror::Error)]
enum Repr<E> {
    #[error("failed after {attempts} {} ({stop})", tries(attempts))]
    Error {
        #[source]
        error: E,
        attempts: u32,
        stop: Stop,
    },
    #[error("failed after {attempts} {} ({stop})", tries(attempts))]
    TimedOut {
        #[source]
        timeout: AttemptTimedOut,
        attempts: u32,
        stop: Stop,
    },
}

/// "attempt" or "attempts".
fn tries(n: &u32) -> &'static str {
    if *n == 1 { "attempt" } else { "attempts" }
}

/// The last attempt's failure, from [`RetryError::last`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastError<E> {
    /// The call's own error.
    Error(E),
    /// The attempt took too long and was cancelled.
    TimedOut(AttemptTimedOut),
}

impl<E: fmt::Debug> fmt::Debug for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryError")
            .field("last", &self.last())
            .field("attempts", &self.attempts())
            .field("stop", &self.stop())
            .finish()
    }
}

impl<E> RetryError<E> {
    fn new(last: LastError<E>, attempts: u32, stop: Stop) -> Self {
        Self(match last {
            LastError::Error(error) => Repr::Error {
                error,
                attempts,
                stop,
            },
            LastError::TimedOut(timeout) => Repr::TimedOut {
                timeout,
                attempts,
                stop,
            },
        })
    }

    /// The last attempt's failure.
    ///
    /// ```
    /// use buttress_retry::{LastError, RetryPolicy, retry};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// let policy = RetryPolicy::builder("db").max_attempts(1).build().unwrap();
    /// let e = retry(&policy, || async { Err::<(), _>("refused") }).await.unwrap_err();
    /// assert_eq!(e.last(), LastError::Error(&"refused"));
    /// # });
    /// ```
    pub fn last(&self) -> LastError<&E> {
        match &self.0 {
            Repr::Error { error, .. } => LastError::Error(error),
            Repr::TimedOut { timeout, .. } => LastError::TimedOut(*timeout),
        }
    }

    /// The last error, unless the last attempt timed out.
    ///
    /// ```
    /// use std::io::{Error, ErrorKind};
    /// use buttress_retry::{RetryClassifier, RetryPolicy, retry_blocking_with};
    ///
    /// let policy = RetryPolicy::builder("db").max_attempts(2).build()?;
    /// let e = retry_blocking_with(&policy, &RetryClassifier, |_| {}, || {
    ///     Err::<(), _>(Error::new(ErrorKind::ConnectionRefused, "refused"))
    /// })
    /// .unwrap_err();
    /// let io: Error = e.into_error().expect("the last attempt returned an error");
    /// assert_eq!(io.kind(), ErrorKind::ConnectionRefused);
    /// # Ok::<(), buttress_retry::ConfigError>(())
    /// ```
    pub fn into_error(self) -> Option<E> {
        match self.0 {
            Repr::Error { error, .. } => Some(error),
            Repr::TimedOut { .. } => None,
        }
    }

    /// Attempts made in all.
    ///
    /// ```
    /// use buttress_retry::{RetryClassifier, RetryPolicy, retry_blocking_with};
    ///
    /// let policy = RetryPolicy::builder("db").max_attempts(4).build()?;
    /// let mut calls = 0;
    /// let e = retry_blocking_with(&policy, &RetryClassifier, |_| {}, || {
    ///     calls += 1;
    ///     Err::<(), _>("down")
    /// })
    /// .unwrap_err();
    /// assert_eq!(e.attempts(), 4);
    /// assert_eq!(calls, 4);
    /// # Ok::<(), buttress_retry::ConfigError>(())
    /// ```
    pub fn attempts(&self) -> u32 {
        match self.0 {
            Repr::Error { attempts, .. } | Repr::TimedOut { attempts, .. } => attempts,
        }
    }

    /// Why retrying stopped.
    ///
    /// ```
    /// use buttress_core::{Classification, classify_fn};
    /// use buttress_retry::{RetryPolicy, Stop, retry_blocking_with};
    ///
    /// let classifier = classify_fn(|r: &Result<(), &str>| match r {
    ///     Ok(_) => Classification::SUCCESS,
    ///     Err(e) if *e == "forbidden" => Classification::FATAL_FAILURE,
    ///     Err(_) => Classification::RETRYABLE_FAILURE,
    /// });
    /// let policy = RetryPolicy::builder("api").max_attempts(3).build()?;
    /// let e = retry_blocking_with(&policy, &classifier, |_| {}, || Err("forbidden")).unwrap_err();
    /// assert_eq!((e.stop(), e.attempts()), (Stop::NotRetryable, 1)); // at once
    /// let e = retry_blocking_with(&policy, &classifier, |_| {}, || Err("busy")).unwrap_err();
    /// assert_eq!((e.stop(), e.attempts()), (Stop::MaxAttempts, 3));
    /// # Ok::<(), buttress_retry::ConfigError>(())
    /// ```
    pub fn stop(&self) -> Stop {
        match self.0 {
            Repr::Error { stop, .. } | Repr::TimedOut { stop, .. } => stop,
        }
    }

    /// Whether the last attempt timed out.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_retry::{RetryPolicy, retry};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// let policy = RetryPolicy::builder("db")
    ///     .max_attempts(2)
    ///     .attempt_timeout(Duration::from_secs(1))
    ///     .build()
    ///     .unwrap();
    /// let mut calls = 0;
    /// let e = retry(&policy, || {
    ///     calls += 1;
    ///     let hang = calls == 1;
    ///     async move {
    ///         if hang {
    ///             tokio::time::sleep(Duration::from_secs(30)).await;
    ///         }
    ///         Err::<(), _>(std::io::Error::other("refused"))
    ///     }
    /// })
    /// .await
    /// .unwrap_err();
    /// // The first attempt timed out; the last one failed on its own.
    /// assert!(!e.is_timeout());
    /// assert_eq!(e.into_error().map(|io| io.to_string()), Some("refused".into()));
    /// # });
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self.0, Repr::TimedOut { .. })
    }
}

/// Calls `f` until it succeeds or the policy says stop; every `Err` is a
/// retryable failure (see [`RetryClassifier`]).
///
/// ```no_run
/// # async fn connect(_: &str) -> Result<(), std::io::Error> { Ok(()) }
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use buttress_retry::{retry, RetryConfig, RetryPolicy};
///
/// let db = retry(&RetryPolicy::new("db", RetryConfig::database_connect())?, || connect("postgres://…")).await?;
/// # Ok(()) }
/// ```
pub async fn retry<F, Fut, T, E>(policy: &RetryPolicy, f: F) -> Result<T, RetryError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: 'static,
{
    retry_with(policy, &RetryClassifier, f).await
}

/// Like [`retry`], judging results with `classifier`.
///
/// ```
/// use std::io::{Error, ErrorKind};
/// use buttress_core::{Classification, classify_fn};
/// use buttress_retry::{RetryPolicy, Stop, retry_with};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// // A permission error will not change on a retry.
/// let classifier = classify_fn(|r: &Result<String, Error>| match r {
///     Ok(_) => Classification::SUCCESS,
///     Err(e) if e.kind() == ErrorKind::PermissionDenied => Classification::FATAL_FAILURE,
///     Err(_) => Classification::RETRYABLE_FAILURE,
/// });
/// let policy = RetryPolicy::builder("secrets").max_attempts(5).build().unwrap();
/// let mut calls = 0;
/// let e = retry_with(&policy, &classifier, || {
///     calls += 1;
///     async { Err::<String, _>(Error::from(ErrorKind::PermissionDenied)) }
/// })
/// .await
/// .unwrap_err();
/// assert_eq!(calls, 1);
/// assert_eq!(e.stop(), Stop::NotRetryable);
/// # });
/// ```
pub async fn retry_with<C, F, Fut, T, E>(
    policy: &RetryPolicy,
    classifier: &C,
    mut f: F,
) -> Result<T, RetryError<E>>
where
    C: Classify<T, E> + ?Sized,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut run = policy.begin();
    let mut last = None;
    loop {
        if last.is_some() && policy.out_of_time(&run) {
            policy.finish(&run, Stop::Deadline);
            return finish(last, policy.attempts(&run), Stop::Deadline);
        }
        let limit = policy.start_attempt(&mut run);
        let result = match limit {
            Some(limit) => match tokio::time::timeout(limit, f()).await {
                Ok(r) => Ok(r),
                Err(_) => Err(limit),
            },
            None => Ok(f().await),
        };
        let (c, timed_out) = match &result {
            Ok(r) => (classifier.classify(r), false),
            Err(_) => (Classification::RETRYABLE_FAILURE, true),
        };
        match policy.after_attempt(&mut run, c, timed_out) {
            Decision::Retry { delay, .. } => {
                last = Some(result);
                tokio::time::sleep(delay).await;
            }
            Decision::Stop(stop) => return finish(Some(result), policy.attempts(&run), stop),
        }
    }
}

/// The caller's result from the last attempt's.
fn finish<T, E>(
    last: Option<Result<Result<T, E>, Duration>>,
    attempts: u32,
    stop: Stop,
) -> Result<T, RetryError<E>> {
    let last = match last {
        Some(Ok(Ok(v))) => return Ok(v),
        Some(Ok(Err(e))) => LastError::Error(e),
        Some(Err(limit)) => LastError::TimedOut(AttemptTimedOut::new(limit, attempts)),
        // Unreachable: there is always a last attempt when stopping.
        None => LastError::TimedOut(AttemptTimedOut::new(Duration::ZERO, attempts)),
    };
    Err(RetryError::new(last, attempts, stop))
}

/// Calls the blocking `f` until it succeeds or the policy says stop,
/// sleeping the thread between attempts. `attempt_timeout` does not apply
/// (blocking code cannot be cancelled); the deadline does.
///
/// ```
/// use buttress_retry::{retry_blocking, RetryPolicy};
///
/// let policy = RetryPolicy::builder("config-file").max_attempts(1).build().unwrap();
/// let text = retry_blocking(&policy, || std::fs::read_to_string("Cargo.toml"));
/// assert!(text.is_ok());
/// ```
pub fn retry_blocking<F, T, E>(policy: &RetryPolicy, f: F) -> Result<T, RetryError<E>>
where
    F: FnMut() -> Result<T, E>,
    E: 'static,
{
    retry_blocking_with(policy, &RetryClassifier, std::thread::sleep, f)
}

/// Like [`retry_blocking`], judging results with `classifier` and waiting
/// with `sleep` (tests pass one that advances a manual clock).
///
/// ```
/// use std::time::Duration;
/// use buttress_core::ManualClock;
/// use buttress_retry::{Backoff, RetryClassifier, RetryPolicy, retry_blocking_with};
///
/// let clock = ManualClock::new();
/// let policy = RetryPolicy::builder("config")
///     .max_attempts(3)
///     .backoff(Backoff::Constant { delay: Duration::from_secs(2) })
///     .clock(clock.clone())
///     .build()?;
/// let mut not_ready = 2;
/// let answer = retry_blocking_with(&policy, &RetryClassifier, |d| clock.advance(d), || {
///     if not_ready > 0 {
///         not_ready -= 1;
///         Err("not yet")
///     } else {
///         Ok("ready")
///     }
/// });
/// assert_eq!(answer.unwrap(), "ready");
/// assert_eq!(clock.elapsed(), Duration::from_secs(4)); // two waits of 2 s, none of them real
/// # Ok::<(), buttress_retry::ConfigError>(())
/// ```
pub fn retry_blocking_with<C, S, F, T, E>(
    policy: &RetryPolicy,
    classifier: &C,
    mut sleep: S,
    mut f: F,
) -> Result<T, RetryError<E>>
where
    C: Classify<T, E> + ?Sized,
    S: FnMut(Duration),
    F: FnMut() -> Result<T, E>,
{
    let mut run = policy.begin();
    let mut last = None;
    loop {
        if last.is_some() && policy.out_of_time(&run) {
            policy.finish(&run, Stop::Deadline);
            return finish(last.map(Ok), policy.attempts(&run), Stop::Deadline);
        }
        let _ = policy.start_attempt(&mut run);
        let result = f();
        let c = classifier.classify(&result);
        match policy.after_attempt(&mut run, c, false) {
            Decision::Retry { delay, .. } => {
                last = Some(result);
                sleep(delay);
            }
            Decision::Stop(stop) => return finish(Some(Ok(result)), policy.attempts(&run), stop),
        }
    }
}
