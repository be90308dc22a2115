//! The gates: what is held, against what, to what limit.

use super::{Figures, Outcome};
use crate::Routine;
use crate::cases::{
    admin, breaker, checkpoint, degrade, executor, health, journal, limit, pressure, retry, stack,
};

/// What a gate checks of its figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Check {
    /// Ours ÷ anchor: the goal is at most `goal`; fails above `limit`.
    Ratio {
        /// The figure the design aims at.
        goal: f64,
        /// The figure CI holds: the goal plus this machine's noise, or,
        /// for a goal not yet met, the figure reached plus its noise.
        limit: f64,
    },
    /// Ours − anchor (the anchor is the bare service the layer wraps): the
    /// goal is at most `goal_ns`; fails above `limit_ns`.
    Overhead {
        /// The figure the design aims at, in nanoseconds.
        goal_ns: f64,
        /// The figure CI holds (see [`Check::Ratio`]).
        limit_ns: f64,
    },
    /// Reported beside its anchor, not gated.
    Report,
}

impl Check {
    /// The figure this check reads: a ratio or an overhead in ns.
    pub fn value(&self, f: &Figures) -> f64 {
        match self {
            Check::Overhead { .. } => f.overhead(),
            Check::Ratio { .. } | Check::Report => f.ratio(),
        }
    }

    /// The goal, if gated.
    pub fn goal(&self) -> Option<f64> {
        match *self {
            Check::Ratio { goal, .. } => Some(goal),
            Check::Overhead { goal_ns, .. } => Some(goal_ns),
            Check::Report => None,
        }
    }

    /// The value above which the gate fails.
    pub fn limit(&self) -> Option<f64> {
        match *self {
            Check::Ratio { limit, .. } => Some(limit),
            Check::Overhead { limit_ns, .. } => Some(limit_ns),
            Check::Report => None,
        }
    }

    /// Pass, fail, or report-only.
    pub fn judge(&self, f: &Figures) -> Outcome {
        match self.limit() {
            None => Outcome::Report,
            Some(limit) if self.value(f) <= limit => Outcome::Pass,
            Some(_) => Outcome::Fail,
        }
    }
}

/// One gated figure.
#[derive(Debug, Clone, Copy)]
pub struct Gate {
    /// A stable id, `crate.case` (filters match on it).
    pub id: &'static str,
    /// What is measured, for the table.
    pub what: &'static str,
    /// The anchor, for the table.
    pub versus: &'static str,
    /// Builds our routine.
    pub ours: fn() -> Routine,
    /// Builds the anchor's routine.
    pub anchor: fn() -> Routine,
    /// What is held.
    pub check: Check,
    /// The fewest iterations in a sample (for slow operations such as an
    /// fsync, so a sample is never one outlier).
    pub min_iters: u64,
}

/// The noise of this machine between runs of one binary: a met goal fails
/// only 10 % above itself.
const TOLERANCE: f64 = 1.10;

/// A ratio goal that is met: held at the goal plus [`TOLERANCE`].
const fn ratio(goal: f64) -> Check {
    Check::Ratio {
        goal,
        limit: goal * TOLERANCE,
    }
}

/// A ratio goal not yet met: CI holds what was reached (`held`, the last
/// figure plus its noise) so that it cannot get worse, and the report
/// keeps showing the goal as missed.
const fn ratio_held(goal: f64, held: f64) -> Check {
    Check::Ratio { goal, limit: held }
}

/// An overhead goal that is met: held at the goal plus [`TOLERANCE`].
const fn overhead(goal_ns: f64) -> Check {
    Check::Overhead {
        goal_ns,
        limit_ns: goal_ns * TOLERANCE,
    }
}

/// An overhead goal not yet met (see [`ratio_held`]).
const fn overhead_held(goal_ns: f64, held_ns: f64) -> Check {
    Check::Overhead {
        goal_ns,
        limit_ns: held_ns,
    }
}

fn gate(
    id: &'static str,
    what: &'static str,
    versus: &'static str,
    ours: fn() -> Routine,
    anchor: fn() -> Routine,
    check: Check,
) -> Gate {
    Gate {
        id,
        what,
        versus,
        ours,
        anchor,
        check,
        min_iters: 1,
    }
}

/// Every gate, in the order the report prints them.
pub fn gates() -> Vec<Gate> {
    vec![
        // The rate limiter, with the defaults `RateLimiter::new` gives.
        gate(
            "limit.check",
            "rate-limit check, default clock",
            "governor check",
            limit::check,
            limit::governor_check,
            ratio_held(1.0, 1.5),
        ),
        // Met at 0.53-0.69x when set; on 2026-12-01 the same code (d0e1b12)
        // measured 0.87x on this VM, against governor's same-run figure,
        // with no change of ours in between: a placement change like the
        // journal's (docs/benchmarks.md). Held at that plus its noise.
        gate(
            "limit.keyed",
            "keyed check, 10k keys, default clock",
            "governor keyed check",
            limit::keyed_check,
            limit::governor_keyed_check,
            ratio_held(0.8, 0.96),
        ),
        gate(
            "limit.layer",
            "rate-limit layer",
            "tower-resilience rate limiter",
            limit::layer,
            limit::tower_resilience_layer,
            ratio(0.2),
        ),
        gate(
            "limit.check_2_threads",
            "rate-limit check, 2 threads, per thread",
            "governor, 2 threads",
            limit::check_two_threads,
            limit::governor_check_two_threads,
            Check::Report,
        ),
        gate(
            "limit.keyed_2_threads",
            "keyed check, 2 threads, per thread",
            "governor keyed, 2 threads",
            limit::keyed_check_two_threads,
            limit::governor_keyed_check_two_threads,
            Check::Report,
        ),
        // Retry's happy path: the first attempt succeeds.
        gate(
            "retry.layer",
            "retry layer, first try succeeds (overhead, ns)",
            "bare no-op service",
            retry::layer,
            retry::noop_service,
            overhead_held(15.0, 75.0),
        ),
        gate(
            "retry.layer_vs_tower_resilience",
            "retry layer, first try succeeds",
            "tower-resilience retry",
            retry::layer,
            retry::tower_resilience_layer,
            // Held at 0.92x since 2026-12-01: on that day's VM the code
            // that had passed at 0.59x (42f7d7e) measured 0.71x to 0.83x
            // in every process (docs/benchmarks.md); the goal is still 0.6x.
            ratio_held(0.6, 0.92),
        ),
        gate(
            "retry.budget_2_threads",
            "retry budget deposit + record, 2 threads, per thread",
            "tokio Semaphore take + give, 2 threads",
            retry::budget_two_threads,
            retry::semaphore_two_threads,
            Check::Report,
        ),
        // The breaker, closed.
        gate(
            "breaker.layer",
            "breaker layer, closed (overhead, ns)",
            "bare no-op service",
            breaker::layer,
            limit::noop_service,
            overhead_held(25.0, 75.0),
        ),
        gate(
            "breaker.layer_untimed",
            "breaker layer, closed, without the slow-call rule (no clock read)",
            "the default breaker layer (two clock reads a call)",
            breaker::layer_untimed,
            breaker::layer,
            Check::Report,
        ),
        gate(
            "breaker.layer_vs_tower_resilience",
            "breaker layer, closed",
            "tower-resilience breaker",
            breaker::layer,
            breaker::tower_resilience_layer,
            ratio_held(0.1, 0.2),
        ),
        gate(
            "breaker.permit",
            "breaker permit, closed, no tower",
            "failsafe sync call",
            breaker::permit,
            breaker::failsafe_sync_call,
            // Met on the first VM (0.16x); on this one failsafe's call is
            // relatively faster and the figure reads 0.19x to 0.23x.
            ratio_held(0.2, 0.25),
        ),
        // Reported, as the other rows of two threads on one structure: on
        // this VM the same code measured 1.58x, 2.13x, 4.50x and 5.86x,
        // as the two vCPUs land near or far from each other (the cost is
        // a cache line moving between them).
        gate(
            "breaker.two_threads",
            "breaker layer, 2 threads, per thread",
            "breaker layer, 1 thread",
            breaker::layer_two_threads,
            breaker::layer,
            Check::Report,
        ),
        // Backpressure.
        gate(
            "pressure.adaptive_aimd",
            "adaptive concurrency layer, AIMD",
            "tower ConcurrencyLimit",
            pressure::adaptive_aimd,
            pressure::tower_concurrency_limit,
            ratio_held(2.0, 3.0),
        ),
        gate(
            "pressure.adaptive_vegas",
            "adaptive concurrency layer, Vegas",
            "tower ConcurrencyLimit",
            pressure::adaptive_vegas,
            pressure::tower_concurrency_limit,
            ratio_held(2.0, 3.0),
        ),
        // Both sides take 1.4 to 3.6 ns a call, and the same code has
        // measured 1.40x and 2.11x from one build to the next (the
        // anchor alone moved from 2.6 to 1.4 ns): at this scale a ratio
        // measures the loops' code layout. What is held is what the layer
        // adds over LoadShed, one load and a test: 1.0 to 1.5 ns measured.
        gate(
            "pressure.shed",
            "shed layer, not shedding (ns over LoadShed)",
            "tower LoadShed",
            pressure::shed_layer,
            pressure::tower_load_shed,
            overhead(2.0),
        ),
        // A request through the readiness layer with the gate open: one
        // atomic load, and the response future's branch between the
        // inner future and a refusal (as in the shed layer): +1.1 to
        // +1.7 ns measured.
        gate(
            "health.readiness",
            "readiness layer, gate open (ns over the bare service)",
            "the bare service",
            health::readiness_open,
            health::bare_service,
            overhead(2.0),
        ),
        // Degraded answers. The fallback's goal (10 ns on the success
        // path) is not met yet: perf puts the cost in moving the inner
        // response out through one more future (store-forwarding stalls
        // on the response's enum layout) and in dropping the future's
        // `Arc` of the fallback (a locked decrement); classifying the
        // result costs nothing measurable. +24 to +32 ns measured,
        // depending on code placement; held at that plus its noise.
        gate(
            "degrade.fallback",
            "fallback layer, success path (ns over the bare service)",
            "the bare service",
            degrade::fallback_success,
            degrade::bare_service,
            overhead_held(10.0, 45.0),
        ),
        gate(
            "degrade.cache_hit",
            "stale cache hit (get_or_fetch), u64 keys",
            "moka future::Cache::get",
            degrade::cache_hit,
            degrade::moka_get,
            ratio(1.5),
        ),
        gate(
            "degrade.cache_layer_hit",
            "stale cache hit through CacheLayer",
            "moka future::Cache::get",
            degrade::cache_layer_hit,
            degrade::moka_get,
            Check::Report,
        ),
        // The admin surface. A snapshot of a large service must stay far
        // under a page's half-second refresh; a breaker followed by a
        // status page must cost its calls nothing (the page listens to
        // state changes only).
        gate(
            "admin.status_snapshot",
            "status snapshot: 100 breakers, 20 limiters, 10 gauges, 5 executors (ns)",
            "an empty loop",
            admin::status_snapshot,
            admin::nothing,
            overhead(1_000_000.0),
        ),
        gate(
            "admin.breaker_followed",
            "breaker permit, closed, 10 status-page clients following",
            "the same breaker, followed by nobody",
            admin::permit_followed,
            breaker::permit,
            ratio(1.05),
        ),
        // The AI stack: the knowledge API's throughput on loopback with
        // its whole resilience stack, against the same handler with none.
        Gate {
            min_iters: 4,
            ..gate(
                "stack.knowledge_query",
                "knowledge API, 16 queries in flight, built-in policy",
                "the same handler, no layers",
                stack::query_resilient,
                stack::query_bare,
                ratio(1.05),
            )
        },
        gate(
            "pressure.gauge_2_threads",
            "gauge add + sub, 2 threads, per thread",
            "tokio Semaphore, 2 threads",
            pressure::gauge_add_sub_two_threads,
            pressure::semaphore_two_threads,
            Check::Report,
        ),
        // The executor.
        gate(
            "executor.layer",
            "executor layer, in-place bulkhead",
            "tower-resilience bulkhead",
            executor::layer_in_place,
            executor::tower_resilience_bulkhead,
            ratio(1.0),
        ),
        gate(
            "executor.layer_task",
            "executor layer, one request as a task",
            "tower-resilience bulkhead",
            executor::layer_task,
            executor::tower_resilience_bulkhead,
            Check::Report,
        ),
        gate(
            "executor.submit",
            "executor submit and run",
            "tokio spawn + Semaphore",
            executor::submit,
            executor::tokio_spawn_semaphore,
            ratio(1.6),
        ),
        gate(
            "executor.submit_2_threads",
            "executor submit, 2 threads, per thread",
            "tokio spawn + Semaphore, 2 threads",
            executor::submit_two_threads,
            executor::tokio_spawn_semaphore_two_threads,
            Check::Report,
        ),
        // Durable files.
        gate(
            "journal.layer",
            "journal layer, one event a request (overhead, ns)",
            "bare no-op service",
            journal::layer,
            journal::noop_service,
            overhead(300.0),
        ),
        // Each sample ends with a wait for the writer thread (a wake-up
        // and a write): a fixed cost that a sample of a few appends would
        // charge to each of them. With one or two cores busy elsewhere
        // that wait is a scheduler slice, and calibration then settled on
        // samples of a single append (a CI run measured it as over the
        // gate twice; locally, with both cores busy, 26x). 8192 appends a
        // sample (about 2 MiB, a quarter of the queue) amortize it, as a
        // service appending continuously does.
        //
        // An append hands its record to the writer thread on the other
        // core through one mutex, so the figure follows where the VM's two
        // vCPUs land, as `breaker.two_threads` does: 0.18x to 0.24x in one
        // placement, 0.45x to 0.55x in the next (the same code, before and
        // after a restart of the VM, idle, five runs). Held at 0.65x: an
        // append that took a lock or a syscall of its own per event would
        // cost 1x or more.
        Gate {
            min_iters: 8192,
            ..gate(
                "journal.buffered",
                "journal buffered append",
                "flock + write per event",
                journal::buffered_append,
                journal::raw_flock_write,
                ratio_held(0.35, 0.65),
            )
        },
        Gate {
            min_iters: 5,
            ..gate(
                "checkpoint.save",
                "checkpoint save, 4 KiB",
                "raw tmp + fsync + rename + dir fsync",
                checkpoint::save_4k,
                checkpoint::raw_save_4k,
                ratio(1.1),
            )
        },
    ]
}
