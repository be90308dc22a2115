//! Startup work that holds the readiness gate, retried by a
//! buttress-retry policy, with its progress in the health report.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};

use buttress_retry::{RetryError, RetryPolicy, retry};

use crate::check::error_chain;
use crate::gate::{Hold, Readiness};

impl Readiness {
    /// Runs `work` with `policy`'s attempts, backoff and time limits while
    /// the gate is held closed with `reason`. On success the gate lets go;
    /// when the policy gives up, the gate stays closed, and `/health`
    /// answers `503` with the last error and the attempt count.
    ///
    /// Spawn it to start serving at once (health answers, work waits):
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_health::Readiness;
    /// use buttress_retry::{Backoff, RetryPolicy};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// // Up to 4 attempts, 5 s, 10 s, 20 s apart, 2 minutes each.
    /// let policy = RetryPolicy::builder("model")
    ///     .max_attempts(4)
    ///     .backoff(Backoff::Exponential { base: Duration::from_secs(5), factor: 2.0, max: Duration::from_secs(20) })
    ///     .attempt_timeout(Duration::from_secs(120))
    ///     .no_budget()
    ///     .build()
    ///     .unwrap();
    /// let gate = Readiness::new();
    /// let loading = tokio::spawn({
    ///     let gate = gate.clone();
    ///     async move { gate.startup("loading the model", &policy, || async { Ok::<_, std::io::Error>(42) }).await }
    /// });
    /// let model = loading.await.unwrap().unwrap();
    /// assert_eq!(model, 42);
    /// assert!(gate.is_ready());
    /// # });
    /// ```
    pub async fn startup<F, Fut, T, E>(
        &self,
        reason: impl Into<String>,
        policy: &RetryPolicy,
        mut work: F,
    ) -> Result<T, RetryError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: std::error::Error + 'static,
    {
        let hold = self.hold(reason);
        let attempts = AtomicU32::new(0);
        let result = retry(policy, || {
            let attempt = attempts.fetch_add(1, Ordering::Relaxed) + 1;
            hold.attempt(attempt);
            let report = Report {
                hold: &hold,
                done: false,
            };
            let run = work();
            async move {
                // The whole guard moves in (a field alone would be captured
                // and the guard dropped at once).
                let mut report = report;
                let result = run.await;
                report.done = true;
                if let Err(e) = &result {
                    report.hold.attempt_failed(error_chain(e));
                }
                result
            }
        })
        .await;
        match &result {
            Ok(_) => hold.release(),
            Err(e) => {
                let error = error_chain(e);
                tracing::error!(gate = "readiness", error = %error, "startup work gave up");
                hold.fail(error);
            }
        }
        result
    }
}

/// Records an attempt that ended without a result (cut off at its time
/// limit) when it is dropped.
struct Report<'a> {
    hold: &'a Hold,
    done: bool,
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Report").field("done", &self.done).finish()
    }
}

impl Drop for Report<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.hold
                .attempt_failed("the attempt ran past its time limit");
        }
    }
}
