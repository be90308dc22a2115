//! The life of a service's background work (the learner's loop, a relay's):
//! readiness held closed until it has started, a request to stop, and the
//! moment it has finished.

use std::sync::Mutex;

use buttress::BoxError;
use buttress::health::{Health, Hold};
use tokio::sync::watch;

/// Start, stop and finish of one background task.
#[derive(Debug)]
pub(crate) struct Worker {
    what: &'static str,
    stop: watch::Sender<bool>,
    finished: watch::Sender<bool>,
    startup: Mutex<Option<Hold>>,
}

impl Worker {
    /// `what` (for logs) with readiness held closed in `health`, saying
    /// `starting`, until [`started`](Self::started).
    pub(crate) fn new(what: &'static str, health: &Health, starting: &str) -> Worker {
        Worker {
            what,
            stop: watch::Sender::new(false),
            finished: watch::Sender::new(true),
            startup: Mutex::new(Some(health.readiness().hold(starting))),
        }
    }

    /// Runs `work` on a task: finished when it returns, its error logged.
    pub(crate) fn spawn<F>(&self, work: F) -> tokio::task::JoinHandle<Result<(), BoxError>>
    where
        F: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.finished.send_replace(false);
        let finished = self.finished.clone();
        let what = self.what;
        tokio::spawn(async move {
            let result = work.await;
            finished.send_replace(true);
            if let Err(e) = &result {
                tracing::error!(error = %e, "the {what} stopped");
            }
            result
        })
    }

    /// Opens readiness when `start` succeeded; otherwise keeps it closed,
    /// saying why. Passes `start` on.
    pub(crate) fn started<T>(&self, start: Result<T, BoxError>) -> Result<T, BoxError> {
        if let Some(hold) = crate::lock(&self.startup).take() {
            match &start {
                Ok(_) => hold.release(),
                Err(e) => hold.fail(e.to_string()),
            }
        }
        start
    }

    /// Whether a stop was asked for, as a watch to wait on.
    pub(crate) fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Asks the work to stop and waits until it has (at once when it is
    /// not running).
    pub(crate) async fn stop(&self) {
        self.stop.send_replace(true);
        let mut finished = self.finished.subscribe();
        let _ = finished.wait_for(|f| *f).await;
    }
}
