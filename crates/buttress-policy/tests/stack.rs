//! The stack a policy builds, and why its order matters: each test fails
//! if two layers swap.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use buttress_breaker::State;
use buttress_core::BoxError;
use buttress_degrade::{Served, backup};
use buttress_policy::{Format, Policy};
use tokio::time::Instant;
use tower::{ServiceExt, service_fn};

fn policy(text: &str) -> Policy {
    Policy::from_text(text, Format::Toml).unwrap_or_else(|e| panic!("{e}"))
}

/// A client that counts its calls and fails each one.
fn failing(
    calls: &Arc<AtomicU32>,
) -> impl tower::Service<
    String,
    Response = Served<String>,
    Error = std::io::Error,
    Future = impl Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    let calls = calls.clone();
    service_fn(move |_: String| {
        calls.fetch_add(1, Ordering::SeqCst);
        async { Err::<Served<String>, _>(std::io::Error::other("down")) }
    })
}

#[tokio::test(start_paused = true)]
async fn a_local_rate_limit_is_never_counted_by_the_breaker() {
    let p = policy(
        "[dependencies.llm]\nrate_limit = { count = 1, per = \"1h\" }\nbreaker = { consecutive_failures = 1, failure_rate_threshold = \"off\" }\n",
    );
    let llm = p.dependency("llm").expect("declared");
    let ok = service_fn(|q: String| async move { Ok::<_, std::io::Error>(q) });
    let svc = llm.service(ok);
    svc.clone()
        .oneshot("a".into())
        .await
        .expect("within the limit");
    let e = svc.oneshot("b".into()).await.expect_err("limited");
    assert!(e.is::<buttress_limit::RateLimited>(), "{e}");
    assert_eq!(llm.breaker().expect("declared").state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_hung_attempt_is_a_failure_the_breaker_counts() {
    let p = policy(
        "[dependencies.llm]\nattempt_timeout = \"1s\"\nbreaker = { consecutive_failures = 1, failure_rate_threshold = \"off\" }\n",
    );
    let llm = p.dependency("llm").expect("declared");
    let hangs = service_fn(|()| std::future::pending::<Result<(), std::io::Error>>());
    let e = llm.service(hangs).oneshot(()).await.expect_err("cut off");
    assert!(e.is::<tower::timeout::error::Elapsed>(), "{e}");
    assert_eq!(llm.breaker().expect("declared").state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn every_retry_goes_through_the_rate_limit() {
    let p = policy(
        "[dependencies.llm]\nretry = { max_attempts = 5, backoff = { kind = \"constant\", delay = \"10ms\" }, budget = { kind = \"none\" } }\nrate_limit = { count = 2, per = \"1h\" }\n",
    );
    let llm = p.dependency("llm").expect("declared");
    let calls = Arc::new(AtomicU32::new(0));
    let e = llm
        .service(failing(&calls))
        .oneshot("q".into())
        .await
        .expect_err("fails");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the third attempt was limited: {e}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_timeout_bounds_the_retries_and_their_waits() {
    let p = policy(
        "[dependencies.llm]\ntimeout = \"5s\"\nretry = { max_attempts = 100, backoff = { kind = \"constant\", delay = \"1s\" }, max_retry_after = \"1s\", budget = { kind = \"none\" } }\n",
    );
    let llm = p.dependency("llm").expect("declared");
    let calls = Arc::new(AtomicU32::new(0));
    let started = Instant::now();
    let e = llm
        .service(failing(&calls))
        .oneshot("q".into())
        .await
        .expect_err("timed out");
    assert!(e.is::<tower::timeout::error::Elapsed>(), "{e}");
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert!(calls.load(Ordering::SeqCst) <= 6);
}

#[tokio::test(start_paused = true)]
async fn the_fallback_answers_for_what_nothing_inside_fixed() {
    let p = policy(
        "[dependencies.llm]\nretry = { max_attempts = 2, backoff = { kind = \"constant\", delay = \"10ms\" }, budget = { kind = \"none\" } }\nfallback = { on = [\"error\"] }\n",
    );
    let llm = p.dependency("llm").expect("declared");
    let calls = Arc::new(AtomicU32::new(0));
    let svc = llm
        .fallback(
            llm.service(failing(&calls)),
            backup::value(Served::normal("busy".to_owned())),
        )
        .expect("built");
    let answer = svc.oneshot("q".into()).await.expect("the fallback");
    assert_eq!(answer.value, "busy");
    assert!(answer.degraded.is_some());
    assert_eq!(calls.load(Ordering::SeqCst), 2, "after the retries gave up");
}

#[tokio::test(start_paused = true)]
async fn without_a_fallback_or_cache_in_the_policy_those_calls_change_nothing() {
    let p = policy("[dependencies.llm]\ntimeout = \"5s\"\n");
    let llm = p.dependency("llm").expect("declared");
    let calls = Arc::new(AtomicU32::new(0));
    let svc = llm.service(failing(&calls));
    let svc = llm
        .cached(svc, |q: &String| Some(q.clone()))
        .expect("built");
    let svc = llm
        .fallback(svc, backup::value(Served::normal("busy".to_owned())))
        .expect("built");
    let e: BoxError = svc
        .clone()
        .oneshot("q".into())
        .await
        .expect_err("no fallback");
    assert_eq!(e.to_string(), "down");
    svc.oneshot("q".into()).await.expect_err("nothing cached");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn the_cache_answers_identical_requests_once() {
    let p = policy("[dependencies.embeddings]\ncache = { ttl = \"5m\" }\n");
    let embeddings = p.dependency("embeddings").expect("declared");
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let client = service_fn(move |q: String| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, std::io::Error>(Served::normal(q.len().to_string())) }
    });
    let svc = embeddings
        .cached(embeddings.service(client), |q: &String| Some(q.clone()))
        .expect("built");
    for _ in 0..3 {
        let a = svc.clone().oneshot("hello".into()).await.expect("served");
        assert_eq!(a.value, "5");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn the_fallback_answers_only_for_its_reasons() {
    let p = policy("[dependencies.llm]\nfallback = { on = [\"timed_out\", \"circuit_open\"] }\n");
    let llm = p.dependency("llm").expect("declared");
    let calls = Arc::new(AtomicU32::new(0));
    let svc = llm
        .fallback(
            llm.service(failing(&calls)),
            backup::value(Served::normal("busy".to_owned())),
        )
        .expect("built");
    let e = svc
        .oneshot("q".into())
        .await
        .expect_err("an error is not a reason it answers for");
    assert_eq!(e.to_string(), "down");
}

#[tokio::test(start_paused = true)]
async fn the_live_timeout_passes_the_inner_readiness_on() {
    use std::task::{Context, Poll};
    #[derive(Clone)]
    struct NeverReady;
    impl tower::Service<()> for NeverReady {
        type Response = ();
        type Error = std::io::Error;
        type Future = std::future::Ready<Result<(), std::io::Error>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Err(std::io::Error::other("not ready: shutting down")))
        }
        fn call(&mut self, (): ()) -> Self::Future {
            std::future::ready(Ok(()))
        }
    }
    let timeout = buttress_policy::LiveTimeout::new(Duration::from_secs(1));
    let svc = tower::Layer::layer(&timeout.layer(), NeverReady);
    let e = svc.oneshot(()).await.expect_err("not ready");
    assert_eq!(e.to_string(), "not ready: shutting down");
}

#[tokio::test(start_paused = true)]
async fn a_shed_call_is_never_counted_by_the_breaker() {
    let p = policy(
        "[dependencies.llm]\nshed = { algorithm = \"aimd\", initial = 1, min = 1, max = 1 }\nbreaker = { consecutive_failures = 1, failure_rate_threshold = \"off\" }\n",
    );
    let llm = p.dependency("llm").expect("declared");
    let (release, gate) = tokio::sync::oneshot::channel::<()>();
    let gate = Arc::new(std::sync::Mutex::new(Some(gate)));
    let client = service_fn(move |_: u32| {
        let gate = gate.lock().expect("not poisoned").take();
        async move {
            if let Some(gate) = gate {
                let _ = gate.await;
            }
            Ok::<_, std::io::Error>(())
        }
    });
    let svc = llm.service(client);
    let first = tokio::spawn(svc.clone().oneshot(1));
    tokio::task::yield_now().await;
    let e = svc.oneshot(2).await.expect_err("over the limit of one");
    assert!(e.is::<buttress_pressure::Overloaded>(), "{e}");
    assert_eq!(llm.breaker().expect("declared").state(), State::Closed);
    let _ = release.send(());
    first.await.expect("joined").expect("served");
}
