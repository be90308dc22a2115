//! [`wait_until_healthy`]: poll dependencies until every one is up, for
//! startup scripts and entrypoints (what `buttress-wait` runs).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::{Instant, MissedTickBehavior};

use crate::check::{Check, probe_once};
use crate::status::CheckStatus;

/// How [`wait_until_healthy`] polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WaitOptions {
    /// Time between rounds of probes (default 5 s).
    pub interval: Duration,
    /// When to give up (default 3 minutes).
    pub timeout: Duration,
    /// The longest one probe may take (default 5 s, and never more than
    /// what is left of the timeout).
    pub probe_timeout: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(180),
            probe_timeout: Duration::from_secs(5),
        }
    }
}

impl WaitOptions {
    /// Sets the interval between rounds.
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets when to give up.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the longest one probe may take.
    #[must_use]
    pub fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }
}

/// A dependency's state changed while waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// The dependency.
    pub name: String,
    /// Up (`true`: it will not be probed again) or still not.
    pub healthy: bool,
    /// Why not, when not.
    pub error: Option<String>,
    /// Time since the wait began.
    pub elapsed: Duration,
}

impl fmt::Display for Progress {
    /// `postgres:healthy (7.0s)` or `postgres:starting (connection refused)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.healthy {
            write!(
                f,
                "{}:healthy ({:.1}s)",
                self.name,
                self.elapsed.as_secs_f64()
            )
        } else {
            write!(f, "{}:starting", self.name)?;
            match &self.error {
                Some(e) => write!(f, " ({e})"),
                None => Ok(()),
            }
        }
    }
}

/// Some dependencies were still not healthy when the wait timed out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not healthy after {}: {}", humantime::format_duration(*.after), describe(.pending))]
pub struct WaitError {
    /// How long it waited: the timeout.
    pub after: Duration,
    /// Each dependency still not healthy, with its last error.
    pub pending: Vec<(String, String)>,
}

fn describe(pending: &[(String, String)]) -> String {
    pending
        .iter()
        .map(|(name, error)| format!("{name} ({error})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Probes every dependency each `interval` until all are up; one that is
/// up is not probed again. Calls `progress` when a dependency's state
/// changes (its first result, a new error, up). Returns as soon as all are
/// up, or a [`WaitError`] naming each one still not up, with its last
/// error, once the timeout has passed.
///
/// ```
/// use std::time::Duration;
/// use buttress_health::{WaitOptions, checks, wait_until_healthy};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(async {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let db = checks::tcp(listener.local_addr().unwrap().to_string());
/// let options = WaitOptions::default().timeout(Duration::from_secs(30));
/// wait_until_healthy(vec![("postgres".to_owned(), db)], options, |p| println!("{p}")).await.unwrap();
/// # });
/// ```
pub async fn wait_until_healthy<C: Check>(
    dependencies: Vec<(String, C)>,
    options: WaitOptions,
    mut progress: impl FnMut(&Progress),
) -> Result<(), WaitError> {
    let start = Instant::now();
    let deadline = start + options.timeout;
    let mut pending: Vec<(String, Arc<C>, Option<String>)> = dependencies
        .into_iter()
        .map(|(name, check)| (name, Arc::new(check), None))
        .collect();
    let mut ticks = tokio::time::interval(options.interval.max(Duration::from_millis(1)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let left = deadline.saturating_duration_since(Instant::now());
        let limit = options
            .probe_timeout
            .min(left)
            .max(Duration::from_millis(1));
        let results = join_all(pending.iter().map(|(_, check, _)| probe(&**check, limit))).await;
        let mut still = Vec::new();
        for ((name, check, last), result) in pending.into_iter().zip(results) {
            let elapsed = start.elapsed();
            match result {
                Ok(()) => progress(&Progress {
                    name,
                    healthy: true,
                    error: None,
                    elapsed,
                }),
                Err(error) => {
                    if last.as_ref() != Some(&error) {
                        progress(&Progress {
                            name: name.clone(),
                            healthy: false,
                            error: Some(error.clone()),
                            elapsed,
                        });
                    }
                    still.push((name, check, Some(error)));
                }
            }
        }
        pending = still;
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() + options.interval > deadline {
            // No round would start before the timeout.
            tokio::time::sleep_until(deadline).await;
            return Err(WaitError {
                after: options.timeout,
                pending: pending
                    .into_iter()
                    .map(|(name, _, last)| (name, last.unwrap_or_default()))
                    .collect(),
            });
        }
    }
}

async fn probe<C: Check>(check: &C, limit: Duration) -> Result<(), String> {
    let observation = probe_once(check, limit).await;
    if observation.status == CheckStatus::Down {
        Err(observation.message.unwrap_or_else(|| "down".to_owned()))
    } else {
        Ok(())
    }
}
