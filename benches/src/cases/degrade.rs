//! Gated routines for buttress-degrade: the fallback layer on the success
//! path beside the bare service, and a stale-cache hit beside a bare moka
//! `get` on the same key and value types.

use std::future::{Ready, ready};
use std::hint::black_box;
use std::sync::Arc;

use buttress_degrade::{CacheLayer, Fallback, FallbackLayer, Served, StaleCache, backup};
use tower::Layer;
use tower::util::ServiceFn;

use crate::cases::pressure::service;
use crate::{Routine, routine, run};

/// The bare service of these cases: answers at once with a [`Served`]
/// (the fallback and the cache need a response that can carry a mark).
type ServedNoOp = ServiceFn<fn(u64) -> Ready<Result<Served<u64>, std::io::Error>>>;

fn served_noop() -> ServedNoOp {
    tower::service_fn(|x: u64| ready(Ok(Served::normal(x))))
}

/// A request through `FallbackLayer` that succeeds: the classification
/// of its result, and nothing else.
pub fn fallback_success() -> Routine {
    let fallback = Fallback::new("bench").expect("valid");
    let layer = FallbackLayer::new(fallback, backup::value(Served::normal(0_u64)));
    service(layer.layer(served_noop()))
}

/// The anchor: the bare service, through the same loop.
pub fn bare_service() -> Routine {
    service(served_noop())
}

/// Keys the hit benchmarks cycle through, all cached.
const KEYS: u64 = 1024;

fn value(key: u64) -> Arc<str> {
    Arc::from(format!("an embedding for {key}"))
}

/// A hit in `StaleCache::get_or_fetch`: moka's `get`, the clock, the age
/// check, a clone of the value.
pub fn cache_hit() -> Routine {
    let cache: StaleCache<u64, Arc<str>> = StaleCache::builder("bench")
        .max_entries(10_000)
        .build()
        .expect("valid");
    for key in 0..KEYS {
        run(cache.get_or_fetch(key, || async move { Ok::<_, std::io::Error>(value(key)) }))
            .expect("filled");
    }
    let mut key = 0;
    routine(move || {
        key = (key + 1) % KEYS;
        let hit = run(cache.get_or_fetch(black_box(key), || async {
            Err::<Arc<str>, _>(std::io::Error::other("a hit never fetches"))
        }));
        black_box(hit.expect("a hit"));
    })
}

/// The anchor: a bare moka `future::Cache::get` of the same key and value
/// types.
pub fn moka_get() -> Routine {
    let cache: moka::future::Cache<u64, Arc<str>> = moka::future::Cache::new(10_000);
    for key in 0..KEYS {
        run(cache.insert(key, value(key)));
    }
    let mut key = 0;
    routine(move || {
        key = (key + 1) % KEYS;
        black_box(run(cache.get(&black_box(key))).expect("a hit"));
    })
}

/// A hit through `CacheLayer`: the key function, the boxed future, the
/// mark check (reported, not gated).
pub fn cache_layer_hit() -> Routine {
    let cache: StaleCache<u64, Served<u64>> = StaleCache::builder("bench")
        .max_entries(10_000)
        .build()
        .expect("valid");
    let svc = CacheLayer::new(cache, |x: &u64| Some(*x % KEYS)).layer(served_noop());
    service(svc)
}
