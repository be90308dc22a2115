//! The status of every registered primitive, as JSON for programs and for
//! the status page. Times are whole milliseconds, rates fractions in [0, 1].

use std::time::{Duration, Instant};

use buttress_breaker::{CircuitBreaker, State};
use buttress_executor::Executor;
use buttress_journal::Journal;
use buttress_limit::{KeyedRateLimiter, RateLimiter};
use buttress_pressure::{AdaptiveLimiter, Gauge, LagGauge, Priority};
use serde::Serialize;

/// A snapshot of everything an [`Admin`](crate::Admin) follows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Status {
    /// The service's name, from the policy.
    pub service: Option<String>,
    /// The policy version in force.
    pub policy_version: Option<u64>,
    /// How many breakers are open (or forced open) now.
    pub open_breakers: usize,
    /// Every breaker, by name.
    pub breakers: Vec<BreakerStatus>,
    /// Every rate limiter, by name.
    pub limiters: Vec<LimiterStatus>,
    /// Every adaptive concurrency limit (a dependency's `shed`), by name.
    pub shed: Vec<ShedStatus>,
    /// Every gauge, by name.
    pub gauges: Vec<GaugeStatus>,
    /// Every executor, by name.
    pub executors: Vec<ExecutorStatus>,
    /// Every journal, by name.
    pub journals: Vec<JournalStatus>,
    /// Every lag gauge, by name.
    pub lags: Vec<LagStatus>,
    /// The health report, when a `Health` is registered (the `/health`
    /// body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<serde_json::Value>,
}

/// One breaker.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BreakerStatus {
    /// Its name (the dependency's, for the policy's breakers).
    pub name: String,
    /// `closed`, `open`, `half_open`, `forced_open` or `disabled`.
    pub state: State,
    /// Whether the service is not ready while it is open (`None`: not a
    /// policy dependency).
    pub critical: Option<bool>,
    /// Bumped at each change of state.
    pub generation: u64,
    /// Failures in a row.
    pub consecutive_failures: u64,
    /// Calls in the rate window.
    pub calls: u64,
    /// Failed calls in the rate window.
    pub failures: u64,
    /// `failures / calls`.
    pub failure_rate: Option<f64>,
    /// Slow calls over calls.
    pub slow_call_rate: Option<f64>,
    /// When open: milliseconds until a probe is let through.
    pub half_open_in_ms: Option<u64>,
    /// When half-open: probes not yet handed out.
    pub probes_left: Option<u32>,
    /// Openings in a row.
    pub openings: u32,
}

/// One rate limiter.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LimiterStatus {
    /// Its name.
    pub name: String,
    /// `direct` (one bucket) or `keyed` (one per client).
    pub kind: &'static str,
    /// Whole tokens available now (direct limiters).
    pub remaining: Option<u32>,
    /// The burst: the most tokens there can be.
    pub burst: u32,
    /// Tokens per second.
    pub per_second: f64,
    /// Milliseconds until one more token (direct limiters).
    pub next_token_in_ms: Option<u64>,
    /// Clients tracked (keyed limiters).
    pub keys: Option<usize>,
}

/// One adaptive concurrency limit: what it learned, and what is using it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ShedStatus {
    /// Its name (the dependency's).
    pub name: String,
    /// Calls allowed at once now.
    pub limit: u64,
    /// Calls in flight.
    pub inflight: u64,
}

/// One gauge and its watermarks.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct GaugeStatus {
    /// Its name.
    pub name: String,
    /// The level now.
    pub level: u64,
    /// Paused at this level.
    pub high: u64,
    /// Flowing again at this level.
    pub low: u64,
    /// Whether ordinary work is paused.
    pub paused: bool,
    /// Whether low-priority work is paused.
    pub low_priority_paused: bool,
}

/// One executor.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ExecutorStatus {
    /// Its name.
    pub name: String,
    /// Tasks running.
    pub running: usize,
    /// Tasks that may run at once.
    pub max_running: usize,
    /// Tasks queued.
    pub queued: usize,
    /// Tasks that may be queued.
    pub max_queued: usize,
    /// Tasks queued at each priority, highest first.
    pub queued_by_priority: Vec<PriorityDepth>,
    /// Whether it accepts tasks (not shutting down).
    pub accepting: bool,
    /// Tasks finished since it started, by how they ended.
    pub finished: Finished,
    /// The last tasks to finish, newest first (at most 10).
    pub recent: Vec<RecentTask>,
}

/// Tasks queued at one priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PriorityDepth {
    /// The priority (higher runs first).
    pub priority: u8,
    /// Tasks queued at it.
    pub queued: usize,
}

/// Counts of finished tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Finished {
    /// Completed.
    pub ok: u64,
    /// Returned an error.
    pub failed: u64,
    /// Ran past their timeout.
    pub timed_out: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Panicked.
    pub panicked: u64,
    /// Refused because the queue was full.
    pub rejected: u64,
}

/// A task that finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecentTask {
    /// Its id.
    pub id: u64,
    /// Its priority.
    pub priority: u8,
    /// `ok`, `failed`, `timed_out`, `cancelled` or `panicked`.
    pub status: &'static str,
    /// Milliseconds it waited in the queue.
    pub waited_ms: u64,
    /// Milliseconds it ran (0 if it never started).
    pub ran_ms: u64,
}

/// One journal's write side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct JournalStatus {
    /// Its name.
    pub name: String,
    /// Bytes accepted but not yet written: the writer's lag.
    pub queued_bytes: usize,
    /// Whether a write failed for good (appends are refused).
    pub failed: bool,
}

/// One lag gauge: pending items per kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LagStatus {
    /// Its name.
    pub name: String,
    /// Each kind.
    pub kinds: Vec<KindStatus>,
}

/// Pending items of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KindStatus {
    /// The kind.
    pub kind: String,
    /// Items pending.
    pub pending: u64,
    /// Milliseconds the oldest has waited.
    pub oldest_ms: Option<u64>,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn breaker(b: &CircuitBreaker, critical: Option<bool>) -> BreakerStatus {
    let s = b.snapshot();
    BreakerStatus {
        name: s.name,
        state: s.state,
        critical,
        generation: s.generation,
        consecutive_failures: s.consecutive_failures,
        calls: s.calls,
        failures: s.failures,
        failure_rate: s.failure_rate,
        slow_call_rate: s.slow_call_rate,
        half_open_in_ms: s.time_until_half_open.map(ms),
        probes_left: s.half_open_permits_left,
        openings: s.openings,
    }
}

pub(crate) fn is_open(state: State) -> bool {
    matches!(state, State::Open | State::ForcedOpen)
}

fn per_second(interval: Duration) -> f64 {
    if interval.is_zero() {
        0.0
    } else {
        1.0 / interval.as_secs_f64()
    }
}

pub(crate) fn limiter(l: &RateLimiter) -> LimiterStatus {
    let s = l.state();
    LimiterStatus {
        name: l.name().to_string(),
        kind: "direct",
        remaining: Some(s.remaining),
        burst: s.quota.burst(),
        per_second: per_second(s.quota.interval()),
        next_token_in_ms: Some(ms(s.next_token_in)),
        keys: None,
    }
}

pub(crate) fn keyed<K: std::hash::Hash + Eq + Clone + Send + Sync + 'static>(
    l: &KeyedRateLimiter<K>,
) -> LimiterStatus {
    let q = l.quota();
    LimiterStatus {
        name: l.name().to_string(),
        kind: "keyed",
        remaining: None,
        burst: q.burst(),
        per_second: per_second(q.interval()),
        next_token_in_ms: None,
        keys: Some(l.len()),
    }
}

pub(crate) fn shed(l: &AdaptiveLimiter) -> ShedStatus {
    ShedStatus {
        name: l.name().to_owned(),
        limit: l.limit(),
        inflight: l.inflight(),
    }
}

pub(crate) fn gauge(g: &Gauge) -> GaugeStatus {
    let c = g.config();
    GaugeStatus {
        name: g.name().to_owned(),
        level: g.level(),
        high: c.watermarks.high(),
        low: c.watermarks.low(),
        paused: g.is_paused(),
        low_priority_paused: g.is_paused_for(Priority::Low),
    }
}

/// The most recent tasks an executor's status lists.
const RECENT: usize = 10;

pub(crate) fn executor(e: &Executor) -> ExecutorStatus {
    let s = e.snapshot();
    let c = e.config();
    let mut by_priority: Vec<PriorityDepth> = s
        .queued_by_priority
        .iter()
        .map(|&(priority, queued)| PriorityDepth { priority, queued })
        .collect();
    by_priority.sort_by_key(|d| std::cmp::Reverse(d.priority));
    let since = |from: Instant, to: Option<Instant>| {
        to.map_or(0, |to| ms(to.saturating_duration_since(from)))
    };
    ExecutorStatus {
        name: e.name().to_owned(),
        running: s.running,
        max_running: c.max_running,
        queued: s.queued,
        max_queued: c.max_queued,
        queued_by_priority: by_priority,
        accepting: s.accepting,
        finished: Finished {
            ok: s.counters.ok,
            failed: s.counters.failed,
            timed_out: s.counters.timed_out,
            cancelled: s.counters.cancelled,
            panicked: s.counters.panicked,
            rejected: s.counters.rejected,
        },
        recent: s
            .history
            .iter()
            .rev()
            .take(RECENT)
            .map(|t| RecentTask {
                id: t.id,
                priority: t.priority,
                status: t.status.as_str(),
                waited_ms: since(t.queued_at, Some(t.started_at.unwrap_or(t.finished_at))),
                ran_ms: t
                    .started_at
                    .map_or(0, |start| since(start, Some(t.finished_at))),
            })
            .collect(),
    }
}

pub(crate) fn journal(j: &Journal) -> JournalStatus {
    JournalStatus {
        name: j.name().to_owned(),
        queued_bytes: j.queued_bytes(),
        failed: j.is_failed(),
    }
}

pub(crate) fn lag(name: &str, l: &LagGauge) -> LagStatus {
    LagStatus {
        name: name.to_owned(),
        kinds: l
            .snapshot()
            .into_iter()
            .map(|k| KindStatus {
                kind: k.kind,
                pending: k.pending,
                oldest_ms: k.oldest.map(ms),
            })
            .collect(),
    }
}
