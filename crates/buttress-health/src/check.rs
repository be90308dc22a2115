//! [`Check`]: one probe of one dependency, and what it found.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use buttress_core::BoxError;
use futures_util::future::BoxFuture;

use crate::status::CheckStatus;

/// What a probe found: a status, a message for people (why it is down or
/// degraded), and any detail worth showing in the report (a breaker's
/// state, a queue's depth).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The status.
    pub status: CheckStatus,
    /// Why it is not up, or anything else worth a line.
    pub message: Option<String>,
    /// Structured detail, shown under the check in the report.
    pub detail: Option<serde_json::Value>,
}

impl Observation {
    /// Up, with nothing more to say.
    pub fn up() -> Self {
        Self {
            status: CheckStatus::Up,
            message: None,
            detail: None,
        }
    }

    /// Degraded, and why.
    pub fn degraded(message: impl Into<String>) -> Self {
        Self {
            status: CheckStatus::Degraded,
            message: Some(message.into()),
            detail: None,
        }
    }

    /// Down, and why.
    pub fn down(message: impl Into<String>) -> Self {
        Self {
            status: CheckStatus::Down,
            message: Some(message.into()),
            detail: None,
        }
    }

    /// The same, with `detail` shown under the check in the report.
    ///
    /// ```
    /// use buttress_health::Observation;
    /// let o = Observation::up().with_detail(serde_json::json!({ "queued": 3 }));
    /// assert_eq!(o.detail.unwrap()["queued"], 3);
    /// ```
    #[must_use]
    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// A probe of one dependency. Register it with
/// [`Health::register`](crate::Health::register); the registry runs
/// it at most once per interval, under its timeout, however many callers
/// ask.
///
/// An `Err` is the dependency being down, with the error (and its
/// causes) as the message. Most checks are closures, through [`check_fn`].
pub trait Check: Send + Sync + 'static {
    /// Probes the dependency once.
    fn check(&self) -> BoxFuture<'static, Result<Observation, BoxError>>;
}

impl<C: Check + ?Sized> Check for std::sync::Arc<C> {
    fn check(&self) -> BoxFuture<'static, Result<Observation, BoxError>> {
        (**self).check()
    }
}

impl<C: Check + ?Sized> Check for Box<C> {
    fn check(&self) -> BoxFuture<'static, Result<Observation, BoxError>> {
        (**self).check()
    }
}

/// What a closure's probe may succeed with: `()` (up) or an
/// [`Observation`].
pub trait IntoObservation {
    /// The observation.
    fn into_observation(self) -> Observation;
}

impl IntoObservation for () {
    fn into_observation(self) -> Observation {
        Observation::up()
    }
}

impl IntoObservation for Observation {
    fn into_observation(self) -> Observation {
        self
    }
}

/// A [`Check`] from a closure that starts a probe.
///
/// ```
/// use buttress_health::{Observation, check_fn};
///
/// // Up when it answers; down with the error when it does not.
/// let disk = check_fn(|| async {
///     let free = 12_u64; // ask the file system
///     if free < 1 {
///         return Err(std::io::Error::other("disk full"));
///     }
///     Ok(Observation::up().with_detail(serde_json::json!({ "free_gb": free })))
/// });
/// # let _ = disk;
/// ```
pub fn check_fn<F, Fut, T, E>(f: F) -> CheckFn<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    T: IntoObservation,
    E: Into<BoxError>,
{
    CheckFn(f)
}

/// A [`Check`] made by [`check_fn`].
#[derive(Clone, Copy)]
pub struct CheckFn<F>(F);

impl<F> fmt::Debug for CheckFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CheckFn")
    }
}

impl<F, Fut, T, E> Check for CheckFn<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    T: IntoObservation,
    E: Into<BoxError>,
{
    fn check(&self) -> BoxFuture<'static, Result<Observation, BoxError>> {
        let probe = (self.0)();
        Box::pin(async move {
            probe
                .await
                .map(IntoObservation::into_observation)
                .map_err(Into::into)
        })
    }
}

/// An error with its causes, for a report: `outer: cause: root`.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        // Errors that repeat their cause in their own text say it once.
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// One probe of `check`, cut at `limit`: what it observed, or down and why
/// (no answer in time, its error with the causes, a panic). The registry
/// and [`wait_until_healthy`](crate::wait_until_healthy) both probe
/// through it.
pub(crate) async fn probe_once<C: Check + ?Sized>(check: &C, limit: Duration) -> Observation {
    use futures_util::FutureExt;
    use std::panic::AssertUnwindSafe;

    let Ok(probe) = std::panic::catch_unwind(AssertUnwindSafe(|| check.check())) else {
        return Observation::down("the check panicked");
    };
    match tokio::time::timeout(limit, AssertUnwindSafe(probe).catch_unwind()).await {
        Err(_) => Observation::down(format!(
            "no answer within {}",
            humantime::format_duration(limit)
        )),
        Ok(Err(_)) => Observation::down("the check panicked"),
        Ok(Ok(Err(e))) => Observation::down(error_chain(&*e)),
        Ok(Ok(Ok(observation))) => observation,
    }
}
