//! Gated routines for buttress-pressure: the adaptive concurrency limit
//! and the shedding layer beside tower's, and the gauge alone and under two
//! threads beside a tokio semaphore.
//!
//! Every layer wraps the same [`noop`] service and every call goes through
//! readiness and the call ([`through`]); the limits are set so that every
//! measured request is admitted (1,000 at once, one in flight at a time).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use buttress_pressure::{
    AdaptiveLimitLayer, AdaptiveLimiter, Aimd, Gauge, Priority, ShedLayer, Vegas, Watermarks,
};
use tower::{Layer, Service};

use crate::{Routine, noop, through, two_threads};

/// A gauge that never pauses in these benchmarks.
fn gauge() -> Gauge {
    Gauge::builder("bench", Watermarks::new(1 << 40, 1 << 39).expect("valid"))
        .build()
        .expect("valid")
}

/// Calls `svc` `iters` times (readiness, then the call), inside a tokio
/// runtime's context, as a service in a server would be. Its own loop,
/// not the shared `service_routine`: driven through that closure the shed
/// layer compiles differently (2.1× `LoadShed` instead of 1.2×, measured),
/// and these gates were set on this loop.
pub(crate) fn service<S>(mut svc: S) -> Routine
where
    S: Service<u64> + 'static,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    Box::new(move |iters| {
        let _guard = rt.enter();
        let start = Instant::now();
        for i in 0..iters {
            let _ = black_box(through(&mut svc, black_box(i)));
        }
        start.elapsed()
    })
}

/// The bare service, for scale.
pub fn noop_service() -> Routine {
    service(noop())
}

/// An admitted request through `AdaptiveLimitLayer` with AIMD (the limit
/// fixed at 1,000 by its bounds: every sample still runs the algorithm).
pub fn adaptive_aimd() -> Routine {
    let aimd = Aimd::new(1000, 1000, 1000).expect("valid");
    let limiter = AdaptiveLimiter::new("bench-aimd", aimd).expect("name");
    service(AdaptiveLimitLayer::new(limiter).layer(noop()))
}

/// An admitted request through `AdaptiveLimitLayer` with Vegas (bounds as
/// for AIMD).
pub fn adaptive_vegas() -> Routine {
    let vegas = Vegas::new(1000, 1000, 1000).expect("valid");
    let limiter = AdaptiveLimiter::new("bench-vegas", vegas).expect("name");
    service(AdaptiveLimitLayer::new(limiter).layer(noop()))
}

/// The anchor: tower's `ConcurrencyLimit` of 1,000 (a fixed limit, no
/// latency, no algorithm).
pub fn tower_concurrency_limit() -> Routine {
    service(tower::limit::ConcurrencyLimitLayer::new(1000).layer(noop()))
}

/// A request through `ShedLayer` while its gauge flows.
pub fn shed_layer() -> Routine {
    service(ShedLayer::new(gauge()).layer(noop()))
}

/// The anchor: tower's `LoadShed` (sheds when the inner service is not
/// ready; the no-op always is).
pub fn tower_load_shed() -> Routine {
    service(tower::load_shed::LoadShedLayer::new().layer(noop()))
}

/// `Gauge::check` on one thread.
pub fn gauge_check() -> Routine {
    let gauge = gauge();
    Box::new(move |iters| {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(gauge.check(black_box(Priority::Normal)).is_ok());
        }
        start.elapsed()
    })
}

/// `Gauge::check` on two threads at once, one gauge: time per check on a
/// thread.
pub fn gauge_check_two_threads() -> Routine {
    let gauge = gauge();
    Box::new(move |iters| {
        two_threads(iters, || {
            let gauge = gauge.clone();
            move || {
                black_box(gauge.check(black_box(Priority::Normal)).is_ok());
            }
        })
    })
}

/// `Gauge::add` then `sub` on two threads at once, one gauge (one
/// contended cache line): time per pair on a thread.
pub fn gauge_add_sub_two_threads() -> Routine {
    let gauge = gauge();
    Box::new(move |iters| {
        two_threads(iters, || {
            let gauge = gauge.clone();
            move || {
                gauge.add(black_box(3));
                gauge.sub(black_box(3));
            }
        })
    })
}

/// The anchor for the gauge under two threads: a tokio `Semaphore`'s
/// `try_acquire` and the permit's release, the count a service would keep
/// without a gauge.
pub fn semaphore_two_threads() -> Routine {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(1 << 20));
    Box::new(move |iters| {
        two_threads(iters, || {
            let semaphore = Arc::clone(&semaphore);
            move || {
                drop(black_box(semaphore.try_acquire()));
            }
        })
    })
}
