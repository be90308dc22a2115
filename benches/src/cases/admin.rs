//! Gated routines for buttress-admin and buttress-policy: a status
//! snapshot of a large service, and a breaker's closed path while a status
//! page follows it.

use std::hint::black_box;

use buttress_admin::Admin;
use buttress_breaker::{BreakerConfig, CircuitBreaker};
use buttress_executor::{Executor, ExecutorConfig};
use buttress_limit::{Quota, RateLimiter};
use buttress_policy::{Format, Policy};
use buttress_pressure::{Gauge, Watermarks};

use crate::{Routine, current_thread, routine, routine_on};

/// `Admin::snapshot` of 100 breakers, 20 limiters, 10 gauges and 5
/// executors (the figure), each with some traffic recorded.
pub fn status_snapshot() -> Routine {
    let rt = current_thread();
    let admin = {
        let _guard = rt.enter();
        let mut admin = Admin::without_policy();
        for i in 0..100 {
            let b = CircuitBreaker::new(format!("dependency-{i}"), BreakerConfig::default())
                .expect("valid");
            for _ in 0..10 {
                b.try_acquire().expect("closed").success();
            }
            admin = admin.breaker(b);
        }
        for i in 0..20 {
            let l = RateLimiter::new(format!("limit-{i}"), Quota::per_second(100).expect("valid"))
                .expect("valid");
            let _ = l.check();
            admin = admin.limiter(l);
        }
        for i in 0..10 {
            let g = Gauge::builder(
                format!("gauge-{i}"),
                Watermarks::new(100, 50).expect("valid"),
            )
            .build()
            .expect("valid");
            g.add(i * 10);
            admin = admin.gauge(g);
        }
        for i in 0..5 {
            let e =
                Executor::new(&format!("executor-{i}"), ExecutorConfig::default()).expect("valid");
            admin = admin.executor(e);
        }
        admin
    };
    routine_on(rt, move || {
        black_box(admin.snapshot());
    })
}

/// The anchor of [`status_snapshot`]: the same loop doing nothing.
pub fn nothing() -> Routine {
    routine(|| black_box(()))
}

/// A permit on a policy's breaker, closed, recorded as a success, while
/// ten status-page clients follow the policy's events: its state-change
/// listener is on, and is not on this path.
pub fn permit_followed() -> Routine {
    let rt = current_thread();
    let (policy, receivers) = {
        let _guard = rt.enter();
        let policy =
            Policy::from_text("[dependencies.bench]\nbreaker = {}\n", Format::Toml).expect("valid");
        let receivers: Vec<_> = (0..10).map(|_| policy.events()).collect();
        (policy, receivers)
    };
    let b = policy
        .dependency("bench")
        .and_then(|d| d.breaker().cloned())
        .expect("declared");
    routine_on(rt, move || {
        let _ = black_box(b.try_acquire().map(|p| p.success()));
        black_box(&receivers);
    })
}
