//! The rate limiter side by side, in one run:
//!
//! ```text
//! cargo bench -p buttress-benches --bench limit
//! ```
//!
//! Every limiter is configured so that the checks measured are admitted
//! (a billion tokens a second): what is measured is the cost of an
//! admitted check, on one thread and on two threads sharing one limiter,
//! and through each tower layer. The routines are shared with the CI
//! benchmark report (`buttress_benches::cases::limit`).

use std::time::Duration;

use buttress_benches::cases::limit as cases;
use buttress_benches::{bench, noop, service_routine};
use criterion::{Criterion, criterion_group, criterion_main};
use tower::ServiceBuilder;

fn direct(c: &mut Criterion) {
    bench(
        c,
        "limit_direct_1_thread",
        vec![
            ("buttress_check", cases::check()),
            ("buttress_check_tokio_clock", cases::check_tokio_clock()),
            ("governor_check", cases::governor_check()),
        ],
    );
    // tower's RateLimit starts a timer when built: build it inside a
    // runtime (it is never exhausted here, so the timer never fires).
    let rt = buttress_benches::current_thread();
    let _guard = rt.enter();
    let tower_rl = ServiceBuilder::new()
        .rate_limit(1_000_000_000, Duration::from_secs(1))
        .service(noop());
    bench(
        c,
        "limit_layer",
        vec![
            ("baseline_noop_service", cases::noop_service()),
            ("buttress_layer", cases::layer()),
            ("tower_rate_limit_per_clone", service_routine(tower_rl)),
            (
                "tower_resilience_rate_limiter",
                cases::tower_resilience_layer(),
            ),
        ],
    );
}

fn two_threads(c: &mut Criterion) {
    bench(
        c,
        "limit_direct_2_threads",
        vec![
            ("buttress_check", cases::check_two_threads()),
            ("governor_check", cases::governor_check_two_threads()),
        ],
    );
    bench(
        c,
        "limit_keyed_10k_keys_2_threads",
        vec![
            ("buttress_check_key", cases::keyed_check_two_threads()),
            (
                "governor_check_key",
                cases::governor_keyed_check_two_threads(),
            ),
        ],
    );
}

fn keyed(c: &mut Criterion) {
    bench(
        c,
        "limit_keyed_10k_keys",
        vec![
            ("buttress_check_key", cases::keyed_check()),
            ("governor_check_key", cases::governor_keyed_check()),
        ],
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = direct, two_threads, keyed
}
criterion_main!(benches);
