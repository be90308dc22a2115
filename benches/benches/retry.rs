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
use std::time::Duration;

use buttress_benches::cases::retry::{self as cases, noop};
use buttress_benches::{bench, service_routine};
use buttress_retry::{RetryPolicy, TowerPolicy};
use criterion::{Criterion, criterion_group, criterion_main};
use tower::ServiceBuilder;

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
    let no_budget = RetryPolicy::builder("bench")
        .no_budget()
        .build()
        .expect("valid");
    let tower_min = ServiceBuilder::new().retry(Attempts(3)).service(noop());
    let tower_ours = ServiceBuilder::new()
        .retry(TowerPolicy::new(no_budget))
        .service(noop());
    bench(
        c,
        "retry_happy_path",
        vec![
            ("baseline_noop_service", cases::noop_service()),
            ("buttress_layer_default_budget", cases::layer()),
            ("buttress_layer_no_budget", cases::layer_no_budget()),
            ("tower_retry_minimal_policy", service_routine(tower_min)),
            ("tower_retry_buttress_policy", service_routine(tower_ours)),
            ("tower_resilience_retry", cases::tower_resilience_layer()),
        ],
    );
}

fn budget(c: &mut Criterion) {
    bench(
        c,
        "retry_budget",
        vec![
            (
                "buttress_deposit_and_record_1_thread",
                cases::budget_one_thread(),
            ),
            (
                "buttress_deposit_and_record_2_threads",
                cases::budget_two_threads(),
            ),
            (
                "tokio_semaphore_take_and_give_2_threads",
                cases::semaphore_two_threads(),
            ),
        ],
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = happy_path, budget
}
criterion_main!(benches);
