//! Compile-time checks: every layer, service and response future a user
//! puts in an axum `Router` or spawns on a runtime is `Send` (and the
//! layers, services and handles `Sync` and `'static` too), with the
//! default rejection handler and with `.http()`. A change that makes one
//! of them `!Send` fails to compile here, not in a user's router.
#![cfg(all(
    feature = "http",
    feature = "breaker",
    feature = "retry",
    feature = "limit",
    feature = "journal",
    feature = "checkpoint",
    feature = "pressure",
    feature = "executor"
))]

use std::convert::Infallible;
use std::net::IpAddr;
use std::time::Duration;

use buttress::breaker::CircuitBreaker;
use buttress::executor::{Executor, ExecutorConfig, ExecutorLayer};
use buttress::limit::{KeyedRateLimitLayer, KeyedRateLimiter, Quota, RateLimitLayer, RateLimiter};
use buttress::pressure::{AdaptiveLimitLayer, AdaptiveLimiter, Aimd, Gauge, ShedLayer, Watermarks};
use buttress::retry::RetryPolicy;
use http::{Request, Response};
use tower::{Layer, Service};

type Body = String;

fn layer_is_send_sync<L, Req>(layer: L)
where
    L: Layer<Handler> + Clone + Send + Sync + 'static,
    L::Service: Service<Req> + Clone + Send + Sync + 'static,
    <L::Service as Service<Req>>::Future: Send + 'static,
    <L::Service as Service<Req>>::Error: Send + Sync + 'static,
{
    let _ = layer;
}

fn handle_is_send_sync<T: Clone + Send + Sync + 'static>(handle: &T) {
    let _ = handle;
}

/// An infallible HTTP handler, as axum gives a layer.
type Handler = tower::util::ServiceFn<
    fn(Request<Body>) -> std::future::Ready<Result<Response<Body>, Infallible>>,
>;

#[tokio::test]
async fn layers_services_futures_and_handles_are_send_and_sync() {
    let quota = Quota::per_second(10).expect("valid");

    let breaker = CircuitBreaker::builder("b").build().expect("valid");
    handle_is_send_sync(&breaker);
    layer_is_send_sync::<_, Request<Body>>(breaker.layer());
    layer_is_send_sync::<_, Request<Body>>(breaker.layer().http());

    let retry = RetryPolicy::builder("r").build().expect("valid");
    handle_is_send_sync(&retry);
    layer_is_send_sync::<_, Request<Body>>(retry.layer());

    let limiter = RateLimiter::new("l", quota).expect("valid");
    handle_is_send_sync(&limiter);
    layer_is_send_sync::<_, Request<Body>>(RateLimitLayer::new(limiter.clone()));
    layer_is_send_sync::<_, Request<Body>>(RateLimitLayer::new(limiter).http());

    let keyed: KeyedRateLimiter<IpAddr> = KeyedRateLimiter::builder("k", quota)
        .build()
        .expect("valid");
    handle_is_send_sync(&keyed);
    let key = |_: &Request<Body>| IpAddr::from([127, 0, 0, 1]);
    layer_is_send_sync::<_, Request<Body>>(KeyedRateLimitLayer::new(keyed.clone(), key));
    layer_is_send_sync::<_, Request<Body>>(
        KeyedRateLimitLayer::new(keyed, key)
            .http()
            .success_headers(),
    );

    let gauge = Gauge::builder("g", Watermarks::new(10, 5).expect("valid"))
        .build()
        .expect("valid");
    handle_is_send_sync(&gauge);
    layer_is_send_sync::<_, Request<Body>>(ShedLayer::new(gauge.clone()));
    layer_is_send_sync::<_, Request<Body>>(ShedLayer::new(gauge.clone()).http());
    layer_is_send_sync::<_, Request<Body>>(
        ShedLayer::new(gauge).wait(Duration::from_millis(5)).http(),
    );

    let adaptive = AdaptiveLimiter::new("a", Aimd::new(10, 1, 100).expect("valid")).expect("valid");
    handle_is_send_sync(&adaptive);
    layer_is_send_sync::<_, Request<Body>>(AdaptiveLimitLayer::new(adaptive.clone()));
    layer_is_send_sync::<_, Request<Body>>(AdaptiveLimitLayer::new(adaptive).http());

    let executor = Executor::new("e", ExecutorConfig::default()).expect("valid");
    handle_is_send_sync(&executor);
    let priority = |_: &Request<Body>| 1u8;
    layer_is_send_sync::<_, Request<Body>>(ExecutorLayer::new(executor.clone(), priority));
    layer_is_send_sync::<_, Request<Body>>(ExecutorLayer::new(executor.clone(), priority).http());
    layer_is_send_sync::<_, Request<Body>>(
        ExecutorLayer::new(executor.clone(), priority).in_place(),
    );
    layer_is_send_sync::<_, Request<Body>>(
        ExecutorLayer::new(executor, priority).in_place().http(),
    );
}

#[test]
fn durable_handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<buttress::journal::Journal>();
    send_sync::<buttress::checkpoint::FileStore>();
    send_sync::<buttress::executor::TaskHandle<u32>>();
}
