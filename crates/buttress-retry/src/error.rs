//! Errors the retry layer adds.

use std::time::Duration;

pub use buttress_core::BoxError;

/// An attempt took longer than the attempt timeout (or what was left of
/// the deadline) and was cancelled.
///
/// The tower service fails with it (inside [`BoxError`]) when its last
/// attempt timed out; the plain API's [`RetryError`](crate::RetryError)
/// holds it as [`LastError::TimedOut`](crate::LastError::TimedOut).
///
/// ```
/// use std::time::Duration;
/// use buttress_retry::{RetryPolicy, retry, error::AttemptTimedOut};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let policy = RetryPolicy::builder("slow")
///     .max_attempts(1)
///     .attempt_timeout(Duration::from_secs(1))
///     .build()
///     .unwrap();
/// let e = retry(&policy, || async {
///     tokio::time::sleep(Duration::from_secs(5)).await;
///     Ok::<(), std::io::Error>(())
/// })
/// .await
/// .unwrap_err();
/// let timeout = std::error::Error::source(&e)
///     .and_then(|s| s.downcast_ref::<AttemptTimedOut>())
///     .expect("the timeout is the cause");
/// assert_eq!(timeout.after(), Duration::from_secs(1));
/// assert_eq!(timeout.to_string(), "attempt 1 timed out after 1s");
/// # });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("attempt {attempts} timed out after {after:?}")]
pub struct AttemptTimedOut {
    after: Duration,
    attempts: u32,
}

impl AttemptTimedOut {
    pub(crate) fn new(after: Duration, attempts: u32) -> Self {
        Self { after, attempts }
    }

    /// How long the attempt was allowed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_retry::{LastError, RetryPolicy, Stop, retry};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// let policy = RetryPolicy::builder("slow")
    ///     .attempt_timeout(Duration::from_secs(10))
    ///     .deadline(Duration::from_secs(4))
    ///     .build()
    ///     .unwrap();
    /// let e = retry(&policy, || async {
    ///     tokio::time::sleep(Duration::from_secs(60)).await; // hangs
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .await
    /// .unwrap_err();
    /// let LastError::TimedOut(timeout) = e.last() else { panic!("the attempt hung") };
    /// assert_eq!(timeout.after(), Duration::from_secs(4)); // cut to what the deadline left
    /// assert_eq!(e.stop(), Stop::Deadline);
    /// # });
    /// ```
    pub fn after(&self) -> Duration {
        self.after
    }

    /// Attempts made in all.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use buttress_retry::{RetryPolicy, error::AttemptTimedOut};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// let policy = RetryPolicy::builder("slow")
    ///     .max_attempts(3)
    ///     .attempt_timeout(Duration::from_secs(1))
    ///     .build()
    ///     .unwrap();
    /// let svc = policy.layer().layer(service_fn(|_: ()| async {
    ///     tokio::time::sleep(Duration::from_secs(30)).await; // hangs every time
    ///     Ok::<(), std::io::Error>(())
    /// }));
    /// let e = svc.oneshot(()).await.unwrap_err();
    /// let timeout = e.downcast_ref::<AttemptTimedOut>().expect("the last attempt timed out");
    /// assert_eq!(timeout.attempts(), 3);
    /// assert_eq!(timeout.to_string(), "attempt 3 timed out after 1s");
    /// # });
    /// ```
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}
