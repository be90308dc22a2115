//! [`Shutdown`]: a graceful shutdown on SIGTERM or SIGINT, bounded by a
//! grace period, and forced by a second signal.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use buttress_core::BoxError;
use futures_util::future::{BoxFuture, join_all};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::check::error_chain;
use crate::gate::Readiness;

type Drain = Box<dyn FnOnce() -> BoxFuture<'static, Result<(), BoxError>> + Send>;

/// Shuts a service down in order when the first SIGTERM or SIGINT comes
/// (or [`trigger`](Shutdown::trigger) is called):
///
/// 1. the readiness gate closes (`/readyz` answers `503`, so load
///    balancers stop sending; the `ReadinessLayer` refuses new work);
/// 2. the server stops accepting and finishes the requests in flight
///    (pass [`signalled`](Shutdown::signalled) to axum's
///    `with_graceful_shutdown`);
/// 3. the registered drains run, all at once: executors finish their
///    tasks, journals flush what they acknowledged.
///
/// All of it within the grace period (default 10 s). A second signal, or
/// the end of the grace period, ends [`run`](Shutdown::run) at once; see
/// [`Outcome::exit_code`] for what to exit with.
///
/// ```
/// use std::time::Duration;
/// use buttress_health::{Outcome, Readiness, Shutdown};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(async {
/// let gate = Readiness::new();
/// let shutdown = Shutdown::new(gate.clone()).grace(Duration::from_secs(10));
/// shutdown.on_drain("journal", || async { Ok::<_, std::io::Error>(()) }); // journal.flush()
/// let server = {
///     let stop = shutdown.signalled();
///     async move { stop.await } // axum::serve(..).with_graceful_shutdown(stop)
/// };
/// shutdown.trigger(); // as SIGTERM would
/// let outcome = shutdown.run(server).await;
/// assert_eq!(outcome, Outcome::Drained);
/// assert_eq!(outcome.exit_code(), 0);
/// assert!(!gate.is_ready());
/// # });
/// ```
#[derive(Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

struct Inner {
    readiness: Readiness,
    grace: Mutex<Duration>,
    /// 0 running, 1 draining, 2 forced.
    phase: watch::Sender<u8>,
    drains: Mutex<Vec<(String, Drain)>>,
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("grace", &self.grace_period())
            .field("phase", &*self.inner.phase.borrow())
            .finish_non_exhaustive()
    }
}

/// How [`Shutdown::run`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Everything finished within the grace period. Exit code 0.
    Drained,
    /// The server ended on its own, before any signal. Exit code 0.
    ServerExited,
    /// The grace period ended first; these were still running. Exit
    /// code 1.
    GraceExpired {
        /// The server (`"server"`) and the drains that had not finished.
        pending: Vec<String>,
    },
    /// A second signal forced the exit. Exit code 130 (128 + SIGINT, as a
    /// shell reports an interrupted program).
    Forced,
    /// A drain failed (the others still ran). Exit code 1.
    DrainFailed {
        /// Each failed drain, as `name: error`.
        errors: Vec<String>,
    },
}

impl Outcome {
    /// The process exit code this outcome stands for: 0 drained (or the
    /// server ended by itself), 1 when the grace period ran out or a
    /// drain failed, 130 when forced by a second signal.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Drained | Self::ServerExited => 0,
            Self::GraceExpired { .. } | Self::DrainFailed { .. } => 1,
            Self::Forced => 130,
        }
    }
}

const RUNNING: u8 = 0;
const DRAINING: u8 = 1;
const FORCED: u8 = 2;

impl Shutdown {
    /// A shutdown that closes `readiness` when it begins; grace 10 s.
    pub fn new(readiness: Readiness) -> Self {
        Self {
            inner: Arc::new(Inner {
                readiness,
                grace: Mutex::new(Duration::from_secs(10)),
                phase: watch::channel(RUNNING).0,
                drains: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Sets the grace period: the longest the server and the drains get
    /// after the first signal (clones share it).
    #[must_use]
    pub fn grace(self, grace: Duration) -> Self {
        *self.inner.grace.lock().unwrap_or_else(|e| e.into_inner()) = grace;
        self
    }

    /// The grace period.
    pub fn grace_period(&self) -> Duration {
        *self.inner.grace.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers work to finish once the server has stopped: an
    /// executor's `shutdown`, a journal's `flush`. Drains run all at once,
    /// within what is left of the grace period.
    pub fn on_drain<F, Fut, E>(&self, name: impl Into<String>, drain: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let drain: Drain = Box::new(move || {
            let run = drain();
            Box::pin(async move { run.await.map_err(Into::into) })
        });
        self.inner
            .drains
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name.into(), drain));
    }

    /// Begins the shutdown, as the first signal does; called again,
    /// forces it, as the second does.
    pub fn trigger(&self) {
        // The gate first: whatever wakes on the signal finds it closed.
        self.inner.readiness.drain();
        self.inner.phase.send_modify(|phase| {
            *phase = if *phase == RUNNING { DRAINING } else { FORCED };
        });
    }

    /// Whether the shutdown has begun.
    pub fn is_triggered(&self) -> bool {
        *self.inner.phase.borrow() != RUNNING
    }

    /// Resolves when the shutdown begins: the future to give axum's
    /// `with_graceful_shutdown`.
    pub fn signalled(&self) -> impl Future<Output = ()> + Send + use<> {
        let mut phase = self.inner.phase.subscribe();
        async move {
            // An error means the shutdown itself is gone: stop too.
            let _ = phase.wait_for(|p| *p != RUNNING).await;
        }
    }

    fn forced(&self) -> impl Future<Output = ()> + Send + use<> {
        let mut phase = self.inner.phase.subscribe();
        async move {
            let _ = phase.wait_for(|p| *p == FORCED).await;
        }
    }

    /// Listens for SIGTERM and SIGINT (Ctrl-C) on this runtime: the first
    /// begins the shutdown, the second forces it. [`run`](Shutdown::run)
    /// calls it; call it yourself only to use the signals without `run`.
    pub fn listen_for_signals(&self) -> std::io::Result<()> {
        let shutdown = self.clone();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate())?;
            let mut int = signal(SignalKind::interrupt())?;
            tokio::spawn(async move {
                loop {
                    let name = tokio::select! {
                        _ = term.recv() => "SIGTERM",
                        _ = int.recv() => "SIGINT",
                    };
                    let first = !shutdown.is_triggered();
                    if first {
                        tracing::info!(signal = name, grace = ?shutdown.grace_period(), "shutting down: draining");
                    } else {
                        tracing::warn!(signal = name, "second signal: exiting now");
                    }
                    shutdown.trigger();
                    if !first {
                        return;
                    }
                }
            });
        }
        #[cfg(not(unix))]
        {
            tokio::spawn(async move {
                for _ in 0..2 {
                    if tokio::signal::ctrl_c().await.is_err() {
                        return;
                    }
                    shutdown.trigger();
                }
            });
        }
        Ok(())
    }

    /// Runs `server` (a future that ends once the server has stopped, such
    /// as axum's `serve(..).with_graceful_shutdown(shutdown.signalled())`)
    /// through the whole shutdown, listening for SIGTERM and SIGINT. Ends
    /// at once on a second signal or when the grace period runs out; the
    /// [`Outcome`] says which, and what to exit with.
    pub async fn run<F: IntoFuture>(&self, server: F) -> Outcome {
        if let Err(e) = self.listen_for_signals() {
            tracing::error!(error = %e, "cannot listen for signals; shutdown only by trigger()");
        }
        self.run_without_signals(server).await
    }

    /// [`run`](Shutdown::run) without listening for signals: the shutdown
    /// begins and is forced only by [`trigger`](Shutdown::trigger).
    pub async fn run_without_signals<F: IntoFuture>(&self, server: F) -> Outcome {
        let server = std::pin::pin!(server.into_future());
        let forced = self.forced();
        tokio::select! {
            biased;
            () = forced => Outcome::Forced,
            outcome = self.drain(server) => outcome,
        }
    }

    async fn drain<F: Future>(&self, mut server: std::pin::Pin<&mut F>) -> Outcome {
        let mut server_done = false;
        tokio::select! {
            _ = server.as_mut() => {
                if !self.is_triggered() {
                    return Outcome::ServerExited;
                }
                server_done = true;
            }
            () = self.signalled() => {}
        }
        self.inner.readiness.drain();
        let deadline = Instant::now() + self.grace_period();
        if !server_done && tokio::time::timeout_at(deadline, server).await.is_err() {
            return Outcome::GraceExpired {
                pending: vec!["server".to_owned()],
            };
        }
        let drains =
            std::mem::take(&mut *self.inner.drains.lock().unwrap_or_else(|e| e.into_inner()));
        let names: Vec<String> = drains.iter().map(|(n, _)| n.clone()).collect();
        let done: Arc<Mutex<Vec<bool>>> = Arc::new(Mutex::new(vec![false; drains.len()]));
        let runs = drains.into_iter().enumerate().map(|(i, (name, drain))| {
            let done = Arc::clone(&done);
            async move {
                let result = drain().await;
                done.lock().unwrap_or_else(|e| e.into_inner())[i] = true;
                result.map_err(|e| format!("{name}: {}", error_chain(&*e)))
            }
        });
        match tokio::time::timeout_at(deadline, join_all(runs)).await {
            Ok(results) => {
                let errors: Vec<String> = results.into_iter().filter_map(Result::err).collect();
                if errors.is_empty() {
                    Outcome::Drained
                } else {
                    for e in &errors {
                        tracing::error!(error = %e, "a drain failed");
                    }
                    Outcome::DrainFailed { errors }
                }
            }
            Err(_) => {
                let done = done.lock().unwrap_or_else(|e| e.into_inner());
                let pending = names
                    .into_iter()
                    .zip(done.iter())
                    .filter(|(_, d)| !**d)
                    .map(|(n, _)| n)
                    .collect();
                Outcome::GraceExpired { pending }
            }
        }
    }
}
