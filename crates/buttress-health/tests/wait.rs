//! Waiting for dependencies under paused time: reported healthy within an
//! interval of coming up, named with their last error at the timeout.

use std::time::Duration;

use buttress_health::{Check, Observation, WaitError, WaitOptions, check_fn, wait_until_healthy};
use tokio::time::Instant;

/// Up from `up_after` since `start`; refused before.
fn comes_up(start: Instant, up_after: Option<Duration>) -> impl Check {
    check_fn(move || async move {
        match up_after {
            Some(d) if start.elapsed() >= d => Ok(Observation::up()),
            _ => Err(std::io::Error::other("connection refused")),
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_dependency_up_after_7s_is_healthy_within_one_interval() {
    let start = Instant::now();
    let deps = vec![
        (
            "redis".to_owned(),
            Box::new(comes_up(start, Some(Duration::ZERO))) as Box<dyn Check>,
        ),
        (
            "postgres".to_owned(),
            Box::new(comes_up(start, Some(Duration::from_secs(7)))),
        ),
    ];
    let mut lines = Vec::new();
    wait_until_healthy(deps, WaitOptions::default(), |p| lines.push(p.to_string()))
        .await
        .expect("healthy");
    // Probes at 0, 5 and 10 s: up at 10 s, within 5 s of 7 s.
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    assert_eq!(
        lines,
        [
            "redis:healthy (0.0s)",
            "postgres:starting (connection refused)",
            "postgres:healthy (10.0s)",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn one_that_never_comes_up_fails_at_the_timeout_with_its_name() {
    let start = Instant::now();
    let deps = vec![
        (
            "redis".to_owned(),
            Box::new(comes_up(start, Some(Duration::ZERO))) as Box<dyn Check>,
        ),
        ("postgres".to_owned(), Box::new(comes_up(start, None))),
    ];
    let mut lines = Vec::new();
    let e = wait_until_healthy(deps, WaitOptions::default(), |p| lines.push(p.to_string()))
        .await
        .expect_err("times out");
    assert_eq!(start.elapsed(), Duration::from_secs(180));
    assert_eq!(
        e,
        WaitError {
            after: Duration::from_secs(180),
            pending: vec![("postgres".into(), "connection refused".into())],
        }
    );
    assert_eq!(
        e.to_string(),
        "not healthy after 3m: postgres (connection refused)"
    );
    // The same error is printed once, not every 5 s.
    assert_eq!(lines.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_hung_probe_is_cut_at_the_probe_timeout() {
    let deps = vec![(
        "llm".to_owned(),
        check_fn(|| async {
            std::future::pending::<()>().await;
            Ok::<_, std::io::Error>(())
        }),
    )];
    let options = WaitOptions::default()
        .interval(Duration::from_secs(1))
        .timeout(Duration::from_millis(2500))
        .probe_timeout(Duration::from_secs(2));
    let start = Instant::now();
    let e = wait_until_healthy(deps, options, |_| {})
        .await
        .expect_err("times out");
    assert_eq!(start.elapsed(), Duration::from_millis(2500));
    assert_eq!(e.pending[0].1, "no answer within 2s");
}

#[tokio::test(start_paused = true)]
async fn the_interval_sets_when_the_next_probe_runs() {
    let start = Instant::now();
    let deps = vec![(
        "redis".to_owned(),
        comes_up(start, Some(Duration::from_millis(1500))),
    )];
    let options = WaitOptions::default().interval(Duration::from_secs(1));
    wait_until_healthy(deps, options, |_| {})
        .await
        .expect("healthy");
    // Probes at 0, 1 and 2 s.
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_round_due_at_the_timeout_still_runs() {
    let start = Instant::now();
    let deps = vec![(
        "postgres".to_owned(),
        comes_up(start, Some(Duration::from_secs(10))),
    )];
    let options = WaitOptions::default().timeout(Duration::from_secs(10));
    wait_until_healthy(deps, options, |_| {})
        .await
        .expect("healthy at 10 s");
    assert_eq!(start.elapsed(), Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn a_check_that_observes_down_is_not_healthy() {
    let deps = vec![(
        "llm".to_owned(),
        check_fn(|| async { Ok::<_, std::io::Error>(Observation::down("model not loaded")) }),
    )];
    let options = WaitOptions::default().timeout(Duration::from_secs(5));
    let e = wait_until_healthy(deps, options, |_| {})
        .await
        .expect_err("down");
    assert_eq!(
        e.pending,
        [("llm".to_owned(), "model not loaded".to_owned())]
    );
}
