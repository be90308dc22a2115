//! What the registry logs, for operators: a check that goes down, one that
//! comes back, a breaker left out of the report. One test in this binary:
//! the log capture is per thread, and other tests' threads hitting the
//! same log lines at the same time would race it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use buttress_health::{CheckOptions, Health, check_fn};
use buttress_test_support::logs;

#[test]
fn a_check_logs_when_it_goes_down_and_when_it_comes_back() {
    let down = Arc::new(AtomicBool::new(false));
    let d = Arc::clone(&down);
    let health = Health::new();
    health
        .register(
            "postgres",
            check_fn(move || {
                let down = d.load(Ordering::SeqCst);
                async move {
                    if down {
                        Err(std::io::Error::other("connection refused"))
                    } else {
                        Ok(())
                    }
                }
            }),
            CheckOptions::critical().interval(Duration::ZERO),
        )
        .expect("valid");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let report = |health: &Health| logs::warnings(|| rt.block_on(health.report())).1;
    assert!(report(&health).is_empty(), "up: nothing to say");
    down.store(true, Ordering::SeqCst);
    assert_eq!(report(&health), ["health check is not up"]);
    assert!(report(&health).is_empty(), "said once, not at every probe");
    down.store(false, Ordering::SeqCst);
    assert!(report(&health).is_empty(), "coming back is not a warning");

    #[cfg(feature = "breaker")]
    {
        let registry = buttress_breaker::Registry::new();
        let _odd = buttress_breaker::CircuitBreaker::builder("the old llm")
            .registry(&registry)
            .build()
            .expect("valid");
        let _llm = buttress_breaker::CircuitBreaker::builder("llm")
            .registry(&registry)
            .build()
            .expect("valid");
        let ((), mut warnings) = logs::warnings(|| {
            health.register_breakers(&registry, |_| CheckOptions::non_critical());
        });
        warnings.extend((0..3).flat_map(|_| report(&health)));
        // A breaker whose name a report cannot show is left out, said once;
        // one already in the report is not registered again.
        assert_eq!(warnings, ["breaker left out of the health report"]);
        assert_eq!(health.names(), ["postgres", "breaker:llm"]);
    }
}
