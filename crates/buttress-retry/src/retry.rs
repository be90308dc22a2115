//! The plain API: retry an async or blocking closure.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use buttress_core::{Classification, Classify};

use crate::attempts::{Decision, Stop};
use crate::classify::RetryClassifier;
use crate::policy::RetryPolicy;

/// Why a retried call failed in the end.
#[derive(Debug)]
pub struct RetryError<E> {
    last: LastError<E>,
    attempts: u32,
    stop: Stop,
}

/// The last attempt's failure.
#[derive(Debug)]
pub enum LastError<E> {
    /// The call's own error.
    Error(E),
    /// The attempt took longer than this and was cancelled.
    TimedOut(Duration),
}

impl<E> RetryError<E> {
    /// The last attempt's failure.
    pub fn last(&self) -> &LastError<E> {
        &self.last
    }

    /// The last error, unless the last attempt timed out.
    pub fn into_error(self) -> Option<E> {
        match self.last {
            LastError::Error(e) => Some(e),
            LastError::TimedOut(_) => None,
        }
    }

    /// Attempts made in all.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Why retrying stopped.
    pub fn stop(&self) -> Stop {
        self.stop
    }

    /// Whether the last attempt timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self.last, LastError::TimedOut(_))
    }
}

impl<E: fmt::Display> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tries = if self.attempts == 1 {
            "attempt"
        } else {
            "attempts"
        };
        write!(
            f,
            "failed after {} {tries} ({}): ",
            self.attempts, self.stop
        )?;
        match &self.last {
            LastError::Error(e) => write!(f, "{e}"),
            LastError::TimedOut(d) => write!(f, "attempt timed out after {d:?}"),
        }
    }
}

impl<E: StdError + 'static> StdError for RetryError<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.last {
            LastError::Error(e) => Some(e),
            LastError::TimedOut(_) => None,
        }
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
    match last {
        Some(Ok(Ok(v))) => Ok(v),
        Some(Ok(Err(e))) => Err(RetryError {
            last: LastError::Error(e),
            attempts,
            stop,
        }),
        Some(Err(limit)) => Err(RetryError {
            last: LastError::TimedOut(limit),
            attempts,
            stop,
        }),
        // Unreachable: there is always a last attempt when stopping.
        None => Err(RetryError {
            last: LastError::TimedOut(Duration::ZERO),
            attempts,
            stop,
        }),
    }
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
