//! The stale cache: coalescing, stale-if-error, refresh, its bound, and
//! the tower layer, in paused time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use buttress_breaker::{CircuitBreaker, CircuitBreakerLayer};
use buttress_core::{BoxError, RejectionKind};
use buttress_degrade::{
    CacheConfigError, CacheLayer, Reason, Served, Source, StaleCache, reason_of,
};
use tower::{Layer, ServiceExt, service_fn};

const TTL: Duration = Duration::from_secs(300);
const STALE: Duration = Duration::from_secs(3600);

fn cache<V: Clone + Send + Sync + 'static>() -> StaleCache<String, V> {
    StaleCache::builder("embeddings")
        .ttl(TTL)
        .stale_if_error(STALE)
        .build()
        .expect("valid")
}

/// An upstream that counts its calls, takes a second, and fails while
/// `down` is set.
#[derive(Clone, Default)]
struct Upstream {
    calls: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

impl Upstream {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    async fn fetch(&self, key: &str) -> Result<String, std::io::Error> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
        if self.down.load(Ordering::SeqCst) {
            Err(std::io::Error::other("connection refused"))
        } else {
            Ok(format!("{key}#{n}"))
        }
    }
}

async fn get(
    cache: &StaleCache<String, String>,
    up: &Upstream,
    key: &str,
) -> Result<Served<String>, Arc<std::io::Error>> {
    let up = up.clone();
    let owned = key.to_owned();
    cache
        .get_or_fetch(
            key.to_owned(),
            move || async move { up.fetch(&owned).await },
        )
        .await
}

#[tokio::test(start_paused = true)]
async fn a_thousand_concurrent_misses_make_one_call() {
    let cache = cache();
    let up = Upstream::default();
    let answers = futures_util::future::join_all((0..1000).map(|_| get(&cache, &up, "k"))).await;
    assert_eq!(up.calls(), 1);
    for answer in answers {
        assert_eq!(answer.expect("ok"), Served::normal("k#1".to_owned()));
    }
    // Then hits, with no call.
    assert_eq!(get(&cache, &up, "k").await.expect("ok").value, "k#1");
    assert_eq!(up.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_thousand_concurrent_requests_through_the_layer_make_one_call() {
    let up = Upstream::default();
    let counted = up.clone();
    let svc = service_fn(move |q: String| {
        let up = counted.clone();
        async move { up.fetch(&q).await.map(Served::normal) }
    });
    let svc = CacheLayer::new(cache(), |q: &String| Some(q.clone())).layer(svc);
    let answers =
        futures_util::future::join_all((0..1000).map(|_| svc.clone().oneshot("hello".to_owned())))
            .await;
    assert_eq!(up.calls(), 1);
    for answer in answers {
        assert_eq!(answer.expect("ok").value, "hello#1");
    }
}

#[tokio::test(start_paused = true)]
async fn stale_is_served_while_the_upstream_is_down_and_refreshed_once_it_is_up() {
    let cache = cache();
    let up = Upstream::default();
    assert_eq!(get(&cache, &up, "k").await.expect("ok").value, "k#1");

    tokio::time::advance(TTL + Duration::from_secs(1)).await;
    up.set_down(true);
    let stale = get(&cache, &up, "k").await.expect("stale is served");
    assert_eq!(stale.value, "k#1");
    let degraded = stale.degraded.expect("marked");
    assert_eq!(degraded.reason(), Reason::Error);
    assert_eq!(degraded.source(), Source::Stale);
    assert_eq!(degraded.by().as_str(), "embeddings");
    assert_eq!(up.calls(), 2, "the refresh was tried");

    up.set_down(false);
    let fresh = get(&cache, &up, "k").await.expect("refreshed");
    assert_eq!(fresh, Served::normal("k#3".to_owned()));
    assert_eq!(get(&cache, &up, "k").await.expect("hit").value, "k#3");
    assert_eq!(up.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn concurrent_stale_requests_make_one_refresh() {
    let cache = cache();
    let up = Upstream::default();
    get(&cache, &up, "k").await.expect("ok");
    tokio::time::advance(TTL).await;

    up.set_down(true);
    let answers = futures_util::future::join_all((0..100).map(|_| get(&cache, &up, "k"))).await;
    assert_eq!(up.calls(), 2, "one failed refresh for a hundred callers");
    for answer in answers {
        let answer = answer.expect("stale");
        assert_eq!(answer.value, "k#1");
        assert!(answer.is_degraded());
    }

    up.set_down(false);
    let answers = futures_util::future::join_all((0..100).map(|_| get(&cache, &up, "k"))).await;
    assert_eq!(up.calls(), 3, "one refresh for a hundred callers");
    for answer in answers {
        assert_eq!(answer.expect("fresh"), Served::normal("k#3".to_owned()));
    }
}

#[tokio::test(start_paused = true)]
async fn past_the_stale_window_an_error_is_an_error() {
    let cache = cache();
    let up = Upstream::default();
    get(&cache, &up, "k").await.expect("ok");
    tokio::time::advance(TTL + STALE).await;
    up.set_down(true);
    let err = get(&cache, &up, "k").await.expect_err("too old to serve");
    assert_eq!(err.to_string(), "connection refused");
}

#[tokio::test(start_paused = true)]
async fn errors_are_not_cached() {
    let cache = cache();
    let up = Upstream::default();
    up.set_down(true);
    get(&cache, &up, "k").await.expect_err("down");
    up.set_down(false);
    assert_eq!(get(&cache, &up, "k").await.expect("up").value, "k#2");
}

#[tokio::test(start_paused = true)]
async fn only_the_chosen_failures_serve_stale() {
    let cache: StaleCache<String, String> = StaleCache::builder("c")
        .ttl(TTL)
        .on([Reason::TIMED_OUT])
        .build()
        .expect("valid");
    let up = Upstream::default();
    get(&cache, &up, "k").await.expect("ok");
    tokio::time::advance(TTL).await;
    up.set_down(true);
    get(&cache, &up, "k")
        .await
        .expect_err("a plain error is not a timeout");
    let stale = cache
        .get_or_fetch("k".to_owned(), || async {
            tokio::time::timeout(Duration::from_secs(1), std::future::pending::<String>()).await
        })
        .await
        .expect("a timeout serves stale");
    assert_eq!(stale.degraded.expect("marked").reason(), Reason::TIMED_OUT);
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_serves_stale_through_the_layer() {
    let up = Upstream::default();
    let counted = up.clone();
    let upstream = service_fn(move |q: String| {
        let up = counted.clone();
        async move { up.fetch(&q).await.map(http::Response::new) }
    });
    let breaker = CircuitBreaker::builder("embeddings")
        .consecutive_failures(1)
        .failure_rate(None)
        .open_for(Duration::from_secs(30))
        .build()
        .expect("valid");
    let guarded = CircuitBreakerLayer::new(breaker).layer(upstream);
    let cache: StaleCache<String, http::Response<String>> = StaleCache::builder("embeddings")
        .ttl(TTL)
        .build()
        .expect("valid");
    let svc = CacheLayer::new(cache, |q: &String| Some(q.clone())).layer(guarded);

    let first = svc.clone().oneshot("a".to_owned()).await.expect("ok");
    assert_eq!(first.body(), "a#1");
    tokio::time::advance(TTL).await;
    up.set_down(true);
    // The refresh fails: stale, for the error; the breaker opens.
    let stale = svc.clone().oneshot("a".to_owned()).await.expect("stale");
    assert_eq!(stale.headers()["x-degraded"], "error");
    // The breaker is open now: stale again, for that reason, with no call.
    tokio::time::advance(Duration::from_secs(1)).await;
    let stale = svc.clone().oneshot("a".to_owned()).await.expect("stale");
    assert_eq!(stale.body(), "a#1");
    assert_eq!(stale.headers()["x-degraded"], "circuit_open");
    assert_eq!(up.calls(), 2);
    // A key never fetched has nothing stale: the refusal comes back.
    let err = svc
        .oneshot("b".to_owned())
        .await
        .expect_err("no stale entry");
    assert_eq!(reason_of(&err), Reason::Refused(RejectionKind::CircuitOpen));
}

#[tokio::test(start_paused = true)]
async fn requests_without_a_key_pass_through() {
    let up = Upstream::default();
    let counted = up.clone();
    let svc = service_fn(move |q: String| {
        let up = counted.clone();
        async move { up.fetch(&q).await.map(Served::normal) }
    });
    let svc = CacheLayer::new(cache(), |q: &String| {
        (!q.starts_with("POST")).then(|| q.clone())
    })
    .layer(svc);
    for _ in 0..3 {
        svc.clone().oneshot("POST /x".to_owned()).await.expect("ok");
    }
    assert_eq!(up.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn coalesced_errors_are_shared_and_still_recognised() {
    let cache: StaleCache<String, Served<String>> =
        StaleCache::builder("c").build().expect("valid");
    let svc = service_fn(|_: String| async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let elapsed = tokio::time::timeout(Duration::ZERO, std::future::pending::<()>())
            .await
            .expect_err("elapsed");
        Err::<Served<String>, BoxError>(Box::new(elapsed))
    });
    let svc = CacheLayer::new(cache, |q: &String| Some(q.clone())).layer(svc);
    let errors =
        futures_util::future::join_all((0..3).map(|_| svc.clone().oneshot("q".to_owned()))).await;
    let mut shared_errors = 0;
    for err in errors {
        let err = err.expect_err("failed");
        assert_eq!(reason_of(&err), Reason::TIMED_OUT);
        buttress_test_support::errors::assert_no_repetition(&*err);
        if let Some(shared) = err.downcast_ref::<buttress_degrade::SharedError>() {
            shared_errors += 1;
            assert_eq!(
                shared.to_string(),
                "the one upstream call for every waiting caller failed"
            );
            assert_eq!(shared.get_ref().to_string(), "deadline has elapsed");
        }
    }
    assert!(
        shared_errors >= 2,
        "three callers, one error: {shared_errors} shared"
    );
}

#[tokio::test(start_paused = true)]
async fn the_bound_holds_under_a_million_distinct_keys() {
    let cache: StaleCache<u64, u64> = StaleCache::builder("bounded")
        .max_entries(1_000)
        .build()
        .expect("valid");
    for key in 0..1_000_000_u64 {
        cache
            .get_or_fetch(
                key,
                || async move { Ok::<_, std::convert::Infallible>(key) },
            )
            .await
            .expect("infallible");
    }
    let held = cache.entry_count().await;
    assert!((500..=1_000).contains(&held), "{held} entries");

    let bytes: StaleCache<u64, Vec<u8>> = StaleCache::builder("bytes")
        .max_bytes(64 * 1024, |_, v: &Vec<u8>| {
            u32::try_from(v.len() + 8).unwrap_or(u32::MAX)
        })
        .build()
        .expect("valid");
    for key in 0..100_000_u64 {
        bytes
            .get_or_fetch(key, || async {
                Ok::<_, std::convert::Infallible>(vec![0_u8; 120])
            })
            .await
            .expect("infallible");
    }
    let weight = bytes.weighted_size().await;
    assert!((32 * 1024..=64 * 1024).contains(&weight), "{weight} bytes");
}

#[tokio::test(start_paused = true)]
async fn counts_sizes_and_invalidation() {
    let cache = cache::<String>();
    let up = Upstream::default();
    for key in ["a", "b", "c"] {
        get(&cache, &up, key).await.expect("ok");
    }
    assert_eq!(cache.entry_count().await, 3);
    assert_eq!(
        cache.weighted_size().await,
        3,
        "without a weigher, one an entry"
    );
    cache.invalidate(&"b".to_owned()).await;
    assert_eq!(cache.entry_count().await, 2);
    assert_eq!(
        get(&cache, &up, "b").await.expect("ok").value,
        "b#4",
        "fetched again"
    );
    assert_eq!(
        get(&cache, &up, "a").await.expect("ok").value,
        "a#1",
        "still cached"
    );
    assert_eq!(cache.name().as_str(), "embeddings");
}

#[test]
fn bad_configurations_are_refused() {
    let zero_ttl = StaleCache::<u8, u8>::builder("c")
        .ttl(Duration::ZERO)
        .build();
    assert_eq!(zero_ttl.expect_err("zero ttl"), CacheConfigError::ZeroTtl);
    let zero = StaleCache::<u8, u8>::builder("c").max_entries(0).build();
    assert_eq!(
        zero.expect_err("zero capacity"),
        CacheConfigError::ZeroCapacity
    );
    let name = StaleCache::<u8, u8>::builder(" ").build();
    assert!(matches!(
        name.expect_err("blank"),
        CacheConfigError::Name(_)
    ));
}
