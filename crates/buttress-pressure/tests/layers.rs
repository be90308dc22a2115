//! The layers under paused tokio time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use buttress_pressure::{
    AdaptiveLimitLayer, AdaptiveLimiter, Aimd, Gauge, Overloaded, Priority, ShedLayer, Watermarks,
};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

fn gauge() -> Gauge {
    Gauge::builder("queue", Watermarks::new(100, 50).expect("valid"))
        .low_priority(Watermarks::new(60, 30).expect("valid"))
        .retry_after(Duration::from_secs(2))
        .build()
        .expect("valid")
}

fn priority(req: &&'static str) -> Priority {
    if req.starts_with("low") {
        Priority::Low
    } else {
        Priority::Normal
    }
}

fn overloaded(e: &buttress_pressure::BoxError) -> &Overloaded {
    e.downcast_ref::<Overloaded>().expect("an Overloaded error")
}

#[tokio::test(start_paused = true)]
async fn rejects_by_priority_while_paused_and_passes_otherwise() {
    let g = gauge();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let mut svc = ServiceBuilder::new()
        .layer(ShedLayer::new(g.clone()).priority(priority))
        .service(service_fn(move |req: &'static str| {
            c.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, std::io::Error>(req) }
        }));
    assert_eq!(svc.ready().await.unwrap().call("a").await.unwrap(), "a");
    g.set(70); // low priority paused only
    assert_eq!(svc.ready().await.unwrap().call("b").await.unwrap(), "b");
    let e = svc.ready().await.unwrap().call("low c").await.unwrap_err();
    assert_eq!(overloaded(&e).priority(), Priority::Low);
    assert_eq!(overloaded(&e).retry_after(), Some(Duration::from_secs(2)));
    g.set(100);
    assert!(svc.ready().await.unwrap().call("d").await.is_err());
    g.set(40); // normal flows again; low still paused (40 > 30)
    assert!(svc.ready().await.unwrap().call("e").await.is_ok());
    assert!(svc.ready().await.unwrap().call("low f").await.is_err());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "shed requests never reach the service"
    );
}

#[tokio::test(start_paused = true)]
async fn waits_for_the_gauge_up_to_a_limit() {
    let g = gauge();
    g.set(100);
    let svc = ServiceBuilder::new()
        .layer(ShedLayer::new(g.clone()).wait(Duration::from_secs(1)))
        .service(service_fn(|req: &'static str| async move {
            Ok::<_, std::io::Error>(req)
        }));
    let start = tokio::time::Instant::now();
    // Nobody lowers the level: refused after the full second.
    let e = svc.clone().oneshot("a").await.unwrap_err();
    assert!(e.downcast_ref::<Overloaded>().is_some());
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    // Lowered after 300 ms: the request goes through then.
    let lower = g.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        lower.set(10);
    });
    let start = tokio::time::Instant::now();
    assert_eq!(svc.oneshot("b").await.unwrap(), "b");
    assert_eq!(start.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn wait_flowing_wakes_every_waiter_without_polling() {
    let g = gauge();
    g.set(150);
    let mut waiters = Vec::new();
    for _ in 0..10 {
        let g = g.clone();
        waiters.push(tokio::spawn(async move { g.wait_flowing().await }));
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(waiters.iter().all(|w| !w.is_finished()));
    g.sub(60); // 90: still paused
    tokio::task::yield_now().await;
    assert!(waiters.iter().all(|w| !w.is_finished()));
    g.sub(40); // 50: flowing
    for w in waiters {
        w.await.unwrap();
    }
}

/// A service that is never ready: its `poll_ready` fails.
#[derive(Clone)]
struct Down;

impl tower::Service<&'static str> for Down {
    type Response = &'static str;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<&'static str, std::io::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Err(std::io::Error::other("down")))
    }

    fn call(&mut self, _: &'static str) -> Self::Future {
        unreachable!("never ready")
    }
}

/// What `layer` over [`Down`] says when asked whether it is ready.
async fn readiness_error<L>(layer: L) -> String
where
    L: tower::Layer<Down>,
    L::Service: Service<&'static str>,
    <L::Service as Service<&'static str>>::Error: std::fmt::Display,
{
    let mut svc = layer.layer(Down);
    match svc.ready().await {
        Ok(_) => panic!("ready over a service that is not"),
        Err(e) => e.to_string(),
    }
}

/// The shed layer is as ready as the service it wraps, in both modes: an
/// inner service that fails its readiness fails the layer's.
#[tokio::test(start_paused = true)]
async fn the_shed_layer_passes_on_the_inner_readiness() {
    let shed = ShedLayer::new(gauge());
    assert_eq!(readiness_error(shed.clone()).await, "down");
    assert_eq!(
        readiness_error(shed.wait(Duration::from_secs(1))).await,
        "down"
    );
}

/// So is the adaptive limit layer; and its limiter keeps its name.
#[tokio::test(start_paused = true)]
async fn the_adaptive_layer_passes_on_the_inner_readiness() {
    let limiter = AdaptiveLimiter::new("llm", Aimd::new(4, 1, 10).expect("valid")).expect("valid");
    assert_eq!(limiter.name(), "llm");
    assert_eq!(
        readiness_error(AdaptiveLimitLayer::new(limiter)).await,
        "down"
    );
}

/// Both bands flowing again in one step (a level that falls below both
/// low marks at once) wakes the waiters of each.
#[tokio::test(start_paused = true)]
async fn both_bands_flowing_at_once_wake_their_waiters() {
    let g = gauge();
    g.set(150);
    let waiters: Vec<_> = [Priority::Normal, Priority::Low]
        .into_iter()
        .map(|p| {
            let g = g.clone();
            tokio::spawn(async move { g.wait_flowing_for(p).await })
        })
        .collect();
    tokio::task::yield_now().await;
    assert!(waiters.iter().all(|w| !w.is_finished()));
    g.set(0);
    for w in waiters {
        tokio::time::timeout(Duration::from_secs(1), w)
            .await
            .expect("woken")
            .unwrap();
    }
}

#[cfg(feature = "http")]
#[tokio::test(start_paused = true)]
async fn http_answers_503_with_retry_after() {
    let g = gauge();
    g.set(100);
    let svc = ServiceBuilder::new()
        .layer(ShedLayer::new(g).http())
        .service(service_fn(|_: http::Request<()>| async {
            Ok::<_, std::io::Error>(http::Response::new(String::from("ok")))
        }));
    let response = svc.oneshot(http::Request::new(())).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[http::header::RETRY_AFTER], "2");
}

#[tokio::test(start_paused = true)]
async fn the_adaptive_limit_refuses_beyond_the_limit_and_backs_off_on_failures() {
    let limiter = AdaptiveLimiter::new("llm", Aimd::new(4, 1, 10).expect("valid")).unwrap();
    let svc = ServiceBuilder::new()
        .layer(AdaptiveLimitLayer::new(limiter.clone()))
        .service(service_fn(|fail: bool| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if fail {
                Err(std::io::Error::other("boom"))
            } else {
                Ok(())
            }
        }));
    // Five at once against a limit of four: one refused at once.
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move { svc.oneshot(false).await }));
    }
    tokio::task::yield_now().await;
    let mut refused = 0;
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            assert!(
                e.downcast_ref::<Overloaded>()
                    .is_some_and(Overloaded::is_limit)
            );
            refused += 1;
        }
    }
    assert_eq!(refused, 1);
    assert_eq!(limiter.inflight(), 0);
    // Samples started with 1, 2, 3 and 4 in flight: the first was
    // app-limited (2·1 < 4), the others grew it by one each: 7.
    assert_eq!(limiter.limit(), 7);
    // The first failure backs off (⌊7·0.9⌋ = 6); the next six are taken as
    // part of the same round, and the one after backs off again (⌊6·0.9⌋).
    for _ in 0..7 {
        let _ = svc.clone().oneshot(true).await;
        assert_eq!(limiter.limit(), 6);
    }
    let _ = svc.clone().oneshot(true).await;
    assert_eq!(limiter.limit(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_request_frees_its_slot() {
    // Room to grow: a recorded success at 1 in flight would raise it to 2.
    let limiter = AdaptiveLimiter::new("db", Aimd::new(1, 1, 5).expect("valid")).unwrap();
    let mut svc = ServiceBuilder::new()
        .layer(AdaptiveLimitLayer::new(limiter.clone()))
        .service(service_fn(|_: ()| async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<_, std::io::Error>(())
        }));
    let fut = svc.ready().await.unwrap().call(());
    assert_eq!(limiter.inflight(), 1);
    drop(fut);
    assert_eq!(limiter.inflight(), 0);
    assert_eq!(limiter.limit(), 1);
}
