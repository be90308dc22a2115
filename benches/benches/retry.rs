//! Retry's happy path (no retry needed) side by side, in one run:
//!
//! ```text
//! cargo bench -p buttress-benches --bench retry
//! ```
//!
//! The bare no-op service, ours (with and without the default budget),
//! tower's `Retry` with a minimal attempt-counting policy and with our
//! `TowerPolicy`, and tower-resilience's retry. Futures are polled once with
//! a no-op waker inside a tokio runtime context.

use std::future::{Ready, ready};
use std::hint::black_box;
use std::time::Duration;

use buttress_benches::through;
use buttress_retry::{RetryPolicy, TowerPolicy};
use criterion::{Criterion, criterion_group, criterion_main};
use tower::{Layer, ServiceBuilder, service_fn};

#[derive(Debug, Clone)]
struct BenchError;

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bench error")
    }
}

impl std::error::Error for BenchError {}

type NoOp = tower::util::ServiceFn<fn(u64) -> Ready<Result<u64, BenchError>>>;

fn noop() -> NoOp {
    service_fn(|x: u64| ready(Ok(x)))
}

/// The smallest useful tower policy: retry errors up to 3 attempts.
#[derive(Clone)]
struct Attempts(usize);

impl<Req: Clone, Res, E> tower::retry::Policy<Req, Res, E> for Attempts {
    type Future = Ready<()>;

    fn retry(&mut self, _: &mut Req, result: &mut Result<Res, E>) -> Option<Self::Future> {
        match result {
            Ok(_) => None,
            Err(_) if self.0 > 1 => {
                self.0 -= 1;
                Some(ready(()))
            }
            Err(_) => None,
        }
    }

    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

fn happy_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let mut g = c.benchmark_group("retry_happy_path");

    let mut base = noop();
    g.bench_function("baseline_noop_service", |b| {
        b.iter(|| through(&mut base, black_box(1)))
    });

    let with_budget = RetryPolicy::builder("bench").build().expect("valid");
    let mut ours = with_budget.layer().layer(noop());
    g.bench_function("buttress_layer_default_budget", |b| {
        b.iter(|| through(&mut ours, black_box(1)))
    });
    let no_budget = RetryPolicy::builder("bench")
        .no_budget()
        .build()
        .expect("valid");
    let mut ours_nb = no_budget.layer().layer(noop());
    g.bench_function("buttress_layer_no_budget", |b| {
        b.iter(|| through(&mut ours_nb, black_box(1)))
    });

    let mut tower_min = ServiceBuilder::new().retry(Attempts(3)).service(noop());
    g.bench_function("tower_retry_minimal_policy", |b| {
        b.iter(|| through(&mut tower_min, black_box(1)))
    });
    let mut tower_ours = ServiceBuilder::new()
        .retry(TowerPolicy::new(no_budget.clone()))
        .service(noop());
    g.bench_function("tower_retry_buttress_policy", |b| {
        b.iter(|| through(&mut tower_ours, black_box(1)))
    });

    let tr_layer = tower_resilience_retry::RetryLayer::<u64, u64, BenchError>::builder()
        .max_attempts(3)
        .exponential_backoff(Duration::from_millis(100))
        .build();
    let mut tr = tr_layer.layer(noop());
    g.bench_function("tower_resilience_retry", |b| {
        b.iter(|| through(&mut tr, black_box(1)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = happy_path
}
criterion_main!(benches);
