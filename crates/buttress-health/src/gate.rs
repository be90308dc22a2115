//! [`Readiness`]: the gate that holds traffic back while the service
//! starts, loads, warms or drains.
//!
//! The gate is closed while anything holds it: each piece of startup work
//! takes a [`Hold`] with its reason and drops it when done; draining
//! closes it for good. Serving code asks [`Readiness::is_ready`], one
//! atomic load; everything else (the reasons, attempts, errors) sits
//! behind a lock that only changes and reports take.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::report::rfc3339;
use crate::status::GateStatus;

/// The readiness gate. Clones share one gate.
///
/// ```
/// use buttress_health::Readiness;
///
/// let gate = Readiness::new();
/// assert!(gate.is_ready());
/// let loading = gate.hold("loading the model");
/// assert!(!gate.is_ready());
/// drop(loading); // loaded
/// assert!(gate.is_ready());
/// ```
#[derive(Clone)]
pub struct Readiness {
    inner: Arc<Inner>,
}

struct Inner {
    open: AtomicBool,
    /// Whole seconds a refused client is told to wait.
    retry_after_secs: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    holds: Vec<HoldState>,
    next_id: u64,
    draining: bool,
}

#[derive(Debug, Clone)]
struct HoldState {
    id: u64,
    reason: String,
    since: SystemTime,
    attempts: u32,
    last_error: Option<String>,
    failed: bool,
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readiness")
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

impl Readiness {
    /// An open gate. Take a [`Hold`] for each piece of startup work.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                open: AtomicBool::new(true),
                retry_after_secs: AtomicU64::new(5),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Whether requests may be served: nothing holds the gate and it is
    /// not draining. One atomic load.
    #[inline]
    pub fn is_ready(&self) -> bool {
        self.inner.open.load(Ordering::Acquire)
    }

    /// Closes the gate until the returned [`Hold`] is released or dropped.
    pub fn hold(&self, reason: impl Into<String>) -> Hold {
        let mut state = self.state();
        let id = state.next_id;
        state.next_id += 1;
        state.holds.push(HoldState {
            id,
            reason: reason.into(),
            since: SystemTime::now(),
            attempts: 0,
            last_error: None,
            failed: false,
        });
        self.publish(&state);
        Hold {
            gate: self.clone(),
            id,
        }
    }

    /// Closes the gate for good: the service is shutting down. `/readyz`
    /// answers `503` from now on, so load balancers stop sending.
    pub fn drain(&self) {
        let mut state = self.state();
        state.draining = true;
        self.publish(&state);
    }

    /// Whether [`drain`](Readiness::drain) was called.
    pub fn is_draining(&self) -> bool {
        self.state().draining
    }

    /// What a refused client is told to wait before trying again
    /// (`Retry-After`; default 5 s, whole seconds).
    pub fn retry_after(&self) -> Duration {
        Duration::from_secs(self.inner.retry_after_secs.load(Ordering::Relaxed))
    }

    /// Sets [`retry_after`](Readiness::retry_after) (rounded up to whole
    /// seconds, at least one).
    pub fn set_retry_after(&self, after: Duration) {
        let secs = buttress_core::ceil_secs(after).max(1);
        self.inner.retry_after_secs.store(secs, Ordering::Relaxed);
    }

    /// The gate's status: draining, failed (startup work that gave up),
    /// starting (work still holding it), or open.
    pub fn status(&self) -> GateStatus {
        status_of(&self.state())
    }

    /// The gate and everything that holds it, for a report.
    pub fn snapshot(&self) -> GateSnapshot {
        let state = self.state();
        GateSnapshot {
            status: status_of(&state),
            holds: state
                .holds
                .iter()
                .map(|h| HoldSnapshot {
                    reason: h.reason.clone(),
                    since: h.since,
                    attempts: h.attempts,
                    last_error: h.last_error.clone(),
                    failed: h.failed,
                })
                .collect(),
        }
    }

    /// Why the gate is closed, one line per reason (empty when open).
    pub fn reasons(&self) -> Vec<String> {
        self.snapshot().reasons()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, state: &State) {
        let open = state.holds.is_empty() && !state.draining;
        self.inner.open.store(open, Ordering::Release);
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut HoldState)) {
        let mut state = self.state();
        if let Some(hold) = state.holds.iter_mut().find(|h| h.id == id) {
            f(hold);
        }
    }

    fn release(&self, id: u64) {
        let mut state = self.state();
        state.holds.retain(|h| h.id != id);
        self.publish(&state);
    }
}

fn status_of(state: &State) -> GateStatus {
    if state.draining {
        GateStatus::Draining
    } else if state.holds.iter().any(|h| h.failed) {
        GateStatus::Failed
    } else if state.holds.is_empty() {
        GateStatus::Open
    } else {
        GateStatus::Starting
    }
}

/// Holds a [`Readiness`] gate closed; dropping it (or
/// [`release`](Hold::release)) lets go. Record the progress of the work
/// it stands for, so that `/health` shows it.
#[derive(Debug)]
#[must_use = "the gate opens again as soon as the hold is dropped"]
pub struct Hold {
    gate: Readiness,
    id: u64,
}

impl Hold {
    /// Records that attempt `attempt` (1 for the first) has started.
    pub fn attempt(&self, attempt: u32) {
        self.gate.update(self.id, |h| h.attempts = attempt);
    }

    /// Records the error of the last attempt.
    pub fn attempt_failed(&self, error: impl Into<String>) {
        let error = error.into();
        self.gate.update(self.id, |h| h.last_error = Some(error));
    }

    /// The work failed for good: the gate stays closed (the service is
    /// unhealthy) and the report keeps the error.
    pub fn fail(self, error: impl Into<String>) {
        let error = error.into();
        self.gate.update(self.id, |h| {
            h.last_error = Some(error);
            h.failed = true;
        });
        // The failed hold stays: the gate must not open without the work.
        std::mem::forget(self);
    }

    /// The work is done: lets go of the gate.
    pub fn release(self) {
        drop(self);
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.gate.release(self.id);
    }
}

/// The gate at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GateSnapshot {
    /// Its status.
    pub status: GateStatus,
    /// What holds it closed, oldest first.
    pub holds: Vec<HoldSnapshot>,
}

impl GateSnapshot {
    /// Whether the gate is open.
    pub fn is_open(&self) -> bool {
        self.status == GateStatus::Open
    }

    /// Why the gate is closed, one line per reason (empty when open).
    pub fn reasons(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if self.status == GateStatus::Draining {
            reasons.push("draining: the service is shutting down".to_owned());
        }
        for h in &self.holds {
            let mut line = h.reason.clone();
            if h.failed {
                line.push_str(": failed");
            }
            if h.attempts > 0 {
                line.push_str(&format!(" (attempt {})", h.attempts));
            }
            if let Some(e) = &h.last_error {
                line.push_str(": ");
                line.push_str(e);
            }
            reasons.push(line);
        }
        reasons
    }

    /// What holds the gate, for the report's `startup` list.
    pub(crate) fn holds_json(&self) -> Vec<HoldJson<'_>> {
        self.holds
            .iter()
            .map(|h| HoldJson {
                reason: &h.reason,
                status: if h.failed { "failed" } else { "running" },
                since: rfc3339(h.since),
                attempts: h.attempts,
                last_error: h.last_error.as_deref(),
            })
            .collect()
    }
}

/// One entry of the report's `startup` list, its fields in this order.
#[derive(Serialize)]
pub(crate) struct HoldJson<'a> {
    reason: &'a str,
    status: &'static str,
    since: String,
    attempts: u32,
    last_error: Option<&'a str>,
}

/// One piece of work holding the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HoldSnapshot {
    /// What the work is.
    pub reason: String,
    /// Since when it holds the gate.
    pub since: SystemTime,
    /// The attempt running or last made (0 when none was recorded).
    pub attempts: u32,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// Whether the work gave up.
    pub failed: bool,
}
