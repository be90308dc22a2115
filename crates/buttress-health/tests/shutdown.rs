//! The shutdown's order and outcomes under paused time, triggered by hand
//! (the real signals are in `processes.rs`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use buttress_health::{Outcome, Readiness, Shutdown};
use tokio::time::{Instant, sleep};

/// A server that, once the shutdown begins, takes `finish` to end its
/// requests in flight; logs what happens when.
fn server(shutdown: &Shutdown, finish: Duration, log: &Log) -> impl Future<Output = ()> + use<> {
    let stop = shutdown.signalled();
    let log = Arc::clone(log);
    async move {
        stop.await;
        log.lock().expect("lock").push("server stopping");
        sleep(finish).await;
        log.lock().expect("lock").push("server stopped");
    }
}

type Log = Arc<Mutex<Vec<&'static str>>>;

/// `f`'s output, or a failure if it has not ended within an hour of
/// (paused, so instant) time: a shutdown that hangs fails the test.
async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(3600), f)
        .await
        .expect("the shutdown ended")
}

async fn bounded(run: tokio::task::JoinHandle<Outcome>) -> Outcome {
    within(run).await.expect("run")
}

#[tokio::test(start_paused = true)]
async fn the_gate_closes_then_the_server_stops_then_the_drains_run() {
    let gate = Readiness::new();
    let shutdown = Shutdown::new(gate.clone()).grace(Duration::from_secs(10));
    let log: Log = Arc::default();
    for name in ["executor", "journal"] {
        let log = Arc::clone(&log);
        shutdown.on_drain(name, move || async move {
            sleep(Duration::from_secs(1)).await;
            log.lock().expect("lock").push(name);
            Ok::<_, std::io::Error>(())
        });
    }
    let run = tokio::spawn({
        let shutdown = shutdown.clone();
        let server = server(&shutdown, Duration::from_secs(2), &log);
        async move { shutdown.run_without_signals(server).await }
    });
    sleep(Duration::from_secs(5)).await;
    assert!(gate.is_ready(), "nothing happens before the signal");
    assert!(!shutdown.is_triggered());
    let start = Instant::now();
    shutdown.trigger();
    assert!(shutdown.is_triggered());
    assert!(!gate.is_ready(), "the gate closes at once");
    assert_eq!(bounded(run).await, Outcome::Drained);
    // 2 s for the requests in flight, then both drains at once: 1 s.
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    let log = log.lock().expect("lock").clone();
    assert_eq!(log[..2], ["server stopping", "server stopped"]);
    assert_eq!(log.len(), 4);
}

#[tokio::test(start_paused = true)]
async fn the_grace_period_bounds_the_server_and_the_drains() {
    let log: Log = Arc::default();
    // The server overruns the grace.
    let shutdown = Shutdown::new(Readiness::new()).grace(Duration::from_secs(10));
    shutdown.trigger();
    let start = Instant::now();
    let outcome =
        within(shutdown.run_without_signals(server(&shutdown, Duration::from_secs(60), &log)))
            .await;
    assert_eq!(
        outcome,
        Outcome::GraceExpired {
            pending: vec!["server".into()]
        }
    );
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(start.elapsed(), Duration::from_secs(10));

    // A drain overruns what is left of it.
    let shutdown = Shutdown::new(Readiness::new()).grace(Duration::from_secs(10));
    shutdown.on_drain("journal", || async { Ok::<_, std::io::Error>(()) });
    shutdown.on_drain("executor", || async {
        sleep(Duration::from_secs(30)).await;
        Ok::<_, std::io::Error>(())
    });
    shutdown.trigger();
    let start = Instant::now();
    let outcome =
        within(shutdown.run_without_signals(server(&shutdown, Duration::from_secs(4), &log))).await;
    assert_eq!(
        outcome,
        Outcome::GraceExpired {
            pending: vec!["executor".into()]
        }
    );
    assert_eq!(start.elapsed(), Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn a_second_trigger_forces_the_end_at_once() {
    let log: Log = Arc::default();
    let shutdown = Shutdown::new(Readiness::new()).grace(Duration::from_secs(60));
    let run = tokio::spawn({
        let shutdown = shutdown.clone();
        let server = server(&shutdown, Duration::from_secs(3600), &log);
        async move { shutdown.run_without_signals(server).await }
    });
    shutdown.trigger();
    sleep(Duration::from_secs(1)).await;
    let start = Instant::now();
    shutdown.trigger();
    let outcome = bounded(run).await;
    assert_eq!(outcome, Outcome::Forced);
    assert_eq!(outcome.exit_code(), 130);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn failed_drains_are_named_and_the_others_still_run() {
    let log: Log = Arc::default();
    let shutdown = Shutdown::new(Readiness::new());
    shutdown.on_drain("journal", || async {
        Err(std::io::Error::other("no space left on device"))
    });
    let l = Arc::clone(&log);
    shutdown.on_drain("executor", move || async move {
        l.lock().expect("lock").push("executor drained");
        Ok::<_, std::io::Error>(())
    });
    shutdown.trigger();
    let outcome =
        within(shutdown.run_without_signals(server(&shutdown, Duration::ZERO, &log))).await;
    assert_eq!(
        outcome,
        Outcome::DrainFailed {
            errors: vec!["journal: no space left on device".into()]
        }
    );
    assert_eq!(outcome.exit_code(), 1);
    assert!(log.lock().expect("lock").contains(&"executor drained"));
}

#[tokio::test(start_paused = true)]
async fn a_server_that_ends_by_itself_is_not_a_shutdown() {
    let gate = Readiness::new();
    let shutdown = Shutdown::new(gate.clone());
    let outcome = within(shutdown.run_without_signals(async {})).await;
    assert_eq!(outcome, Outcome::ServerExited);
    assert_eq!(outcome.exit_code(), 0);
    assert!(gate.is_ready());
}
