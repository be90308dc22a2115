//! Keyed limits: independence, bounded memory under a flood of keys, the
//! allowlist, and hostile input.

use std::net::IpAddr;
use std::time::Duration;

use buttress_core::ManualClock;
use buttress_limit::{KeyedRateLimiter, Quota, allow_networks};

fn keyed(clock: &ManualClock, max_keys: usize) -> KeyedRateLimiter<u64> {
    KeyedRateLimiter::builder(
        "keyed",
        Quota::per_second(100)
            .expect("valid")
            .with_burst(2)
            .expect("valid"),
    )
    .max_keys(max_keys)
    .clock(clock.clone())
    .build()
    .expect("valid")
}

#[test]
fn each_key_has_its_own_limit() {
    let clock = ManualClock::new();
    let l = keyed(&clock, 1000);
    for key in [1, 2, 3] {
        assert!(l.check(&key).is_ok());
        assert!(l.check(&key).is_ok());
        let e = l.check(&key).expect_err("burst of 2");
        assert_eq!(e.retry_after(), Some(Duration::from_millis(10)));
    }
    clock.advance(Duration::from_millis(10));
    assert!(l.check(&1).is_ok());
    assert!(l.check(&1).is_err());
    assert_eq!(l.len(), 3);
}

#[test]
fn a_million_distinct_keys_stay_within_the_bound() {
    let clock = ManualClock::new();
    let l = keyed(&clock, 10_000);
    for key in 0..1_000_000u64 {
        let _ = l.check(&key);
        if key % 1000 == 0 {
            clock.advance(Duration::from_micros(1)); // a flood of 1000 keys per µs…
        }
        if key % 50_000 == 0 {
            assert!(l.len() <= 10_000, "{} keys held", l.len());
        }
    }
    assert!(l.len() <= 10_000, "{} keys held", l.len());
    // A key that is still limited is remembered while room allows.
    let clock = ManualClock::new();
    let l = keyed(&clock, 64);
    l.check_n(&7, 2).expect("the burst");
    assert!(l.check(&7).is_err());
    clock.advance(Duration::from_secs(1)); // …and refilled keys are dropped first
    for key in 100..1_000u64 {
        let _ = l.check(&key);
    }
    assert!(l.len() <= 64);
    l.retain_recent();
}

#[test]
fn the_quota_changes_for_every_key() {
    let clock = ManualClock::new();
    let l = keyed(&clock, 100);
    l.check_n(&1, 2).expect("the burst");
    l.set_quota(
        Quota::per_second(1000)
            .expect("valid")
            .with_burst(20)
            .expect("valid"),
    );
    assert_eq!(l.quota().burst(), 20);
    // The 2 tokens owed stay owed at the new rate: 18 are left.
    for _ in 0..18 {
        assert!(l.check(&1).is_ok());
    }
    assert!(l.check(&1).is_err());
    clock.advance(Duration::from_millis(1));
    assert!(l.check(&1).is_ok());
}

#[test]
fn allowlisted_networks_are_never_limited() {
    let clock = ManualClock::new();
    let allow =
        allow_networks(&["127.0.0.0/8", "10.1.0.0/16", "::1", "2001:db8::/32"]).expect("valid");
    let l: KeyedRateLimiter<IpAddr> =
        KeyedRateLimiter::builder("ip", Quota::per_minute(1).expect("valid"))
            .allow(allow)
            .clock(clock.clone())
            .build()
            .expect("valid");
    for ip in [
        "127.0.0.1",
        "127.255.0.9",
        "10.1.200.3",
        "::1",
        "2001:db8:ffff::1",
        "::ffff:127.0.0.1",
    ] {
        let ip: IpAddr = ip.parse().expect("ip");
        for _ in 0..5 {
            assert!(l.check(&ip).is_ok(), "{ip} is allowlisted");
        }
    }
    for ip in ["10.2.0.1", "192.0.2.1", "2001:db9::1", "::2"] {
        let ip: IpAddr = ip.parse().expect("ip");
        assert!(l.check(&ip).is_ok());
        assert!(l.check(&ip).is_err(), "{ip} is limited");
    }
    assert_eq!(l.len(), 4, "allowlisted keys take no memory");
}

#[test]
fn malformed_networks_are_typed_errors() {
    for bad in [
        "",
        "10.0.0.0/33",
        "::1/129",
        "10.0.0/8",
        "localhost",
        "1.2.3.4/-1",
        "1.2.3.4/x",
    ] {
        let e = allow_networks(&[bad])
            .err()
            .unwrap_or_else(|| panic!("{bad:?} should be refused"));
        assert!(e.to_string().contains("CIDR"));
    }
    let zero = allow_networks(&["0.0.0.0/0"]).expect("valid");
    assert!(zero.contains(&"8.8.8.8".parse().expect("ip")));
    assert!(!zero.contains(&"::2".parse().expect("ip")));
}

#[test]
fn network_allowlists_print_compare_and_keep_their_cause() {
    use buttress_limit::Networks;
    let a = allow_networks(&["127.0.0.0/8", " ::1 ", "10.1.2.3/16"]).expect("valid");
    assert_eq!(a.to_string(), "127.0.0.0/8, ::1/128, 10.1.2.3/16");
    let back: Networks = a.to_string().parse().expect("what Display writes parses");
    assert_eq!(back, a);
    assert_ne!(a, allow_networks(&["127.0.0.0/8"]).expect("valid"));
    // Host bits are kept as written, but matching uses the network.
    assert!(a.contains(&"10.1.200.1".parse().expect("ip")));
    let e = allow_networks(&["ok", "10.0.0.0/8"]).expect_err("refused");
    assert_eq!(e.input(), "ok");
    assert!(
        std::error::Error::source(&e).is_some(),
        "the parse error stays reachable"
    );
    assert!(
        !e.to_string()
            .contains(&std::error::Error::source(&e).expect("source").to_string())
    );
}

#[cfg(feature = "serde")]
#[test]
fn network_allowlists_load_from_a_config_file() {
    use buttress_limit::Networks;
    let n: Networks = serde_json::from_str(r#"["127.0.0.0/8", "::1"]"#).expect("valid");
    assert_eq!(n, allow_networks(&["127.0.0.0/8", "::1"]).expect("valid"));
    assert_eq!(
        serde_json::to_string(&n).expect("serializes"),
        r#"["127.0.0.0/8","::1/128"]"#
    );
    let text: Networks = serde_json::from_str(r#""127.0.0.0/8, ::1""#).expect("valid");
    assert_eq!(text, n, "one comma-separated string loads too");
    let e = serde_json::from_str::<Networks>(r#"["10.0.0.0/33"]"#).expect_err("refused");
    assert!(e.to_string().contains("10.0.0.0/33"), "{e}");
}

#[test]
fn a_refusal_carries_the_quota_in_force() {
    let clock = ManualClock::new();
    let q1 = Quota::per_minute(2)
        .expect("valid")
        .with_burst(1)
        .expect("valid");
    let q2 = Quota::per_minute(6)
        .expect("valid")
        .with_burst(3)
        .expect("valid");
    let keyed: KeyedRateLimiter<u8> = KeyedRateLimiter::builder("k", q1)
        .clock(clock.clone())
        .build()
        .expect("valid");
    keyed.check(&1).expect("the burst");
    assert_eq!(keyed.check(&1).expect_err("refused").quota(), Some(q1));
    keyed.set_quota(q2);
    for _ in 0..3 {
        let _ = keyed.check(&1);
    }
    assert_eq!(keyed.check(&1).expect_err("refused").quota(), Some(q2));
    let direct = buttress_limit::RateLimiter::with_clock("d", q1, clock).expect("valid");
    direct.check().expect("the burst");
    assert_eq!(direct.check().expect_err("refused").quota(), Some(q1));
    direct.set_quota(q2);
    assert_eq!(
        direct.peek_n(4).expect_err("above the burst").quota(),
        Some(q2)
    );
}

/// Keys spread over the shards: each shard holds its share of `max_keys`,
/// so a limiter well below its bound forgets no key. (If every key landed
/// in one shard, that shard's share would overflow and evict.)
#[test]
fn keys_spread_over_the_shards_and_the_whole_bound_is_usable() {
    let clock = ManualClock::new();
    let l = KeyedRateLimiter::builder("spread", Quota::per_hour(1).expect("valid"))
        .shards(64)
        .max_keys(64 * 64)
        .clock(clock.clone())
        .build()
        .expect("valid");
    for key in 0..1024_u64 {
        assert!(l.check(&key).is_ok());
    }
    // A quarter of the bound, four times one shard's share: every key is
    // still held, and each is still spent.
    assert_eq!(l.len(), 1024);
    assert!((0..1024_u64).all(|key| l.check(&key).is_err()));
}

/// The evictions counted by `buttress_limit_keys_evicted_total`.
fn evicted(snapshotter: &metrics_util::debugging::Snapshotter) -> u64 {
    use metrics_util::debugging::DebugValue;
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .find_map(|(key, _, _, value)| match value {
            DebugValue::Counter(n) if key.key().name() == "buttress_limit_keys_evicted_total" => {
                Some(n)
            }
            _ => None,
        })
        .unwrap_or(0)
}

/// One shard of 16 keys, one token a second: every key checked owes a
/// token for a second.
fn one_shard(clock: &ManualClock) -> (KeyedRateLimiter<u64>, metrics_util::debugging::Snapshotter) {
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let l = metrics::with_local_recorder(&recorder, || {
        KeyedRateLimiter::builder("full", Quota::per_second(1).expect("valid"))
            .shards(1)
            .max_keys(16)
            .clock(clock.clone())
            .build()
            .expect("valid")
    });
    (l, snapshotter)
}

#[test]
fn a_full_shard_drops_refilled_keys_first_and_counts_them() {
    let clock = ManualClock::new();
    let (l, snapshotter) = one_shard(&clock);
    for key in 0..8_u64 {
        l.check(&key).expect("new key");
    }
    // One second later those eight have refilled, exactly.
    clock.advance(Duration::from_secs(1));
    for key in 100..108_u64 {
        l.check(&key).expect("new key");
    }
    assert_eq!(l.len(), 16);
    // Full: a new key drops the refilled ones, which carry nothing, and
    // only them.
    l.check(&200).expect("new key");
    assert_eq!(l.len(), 9);
    assert_eq!(evicted(&snapshotter), 8);
    assert!(
        (100..108_u64).all(|key| l.check(&key).is_err()),
        "still spent"
    );
}

#[test]
fn a_full_shard_of_spent_keys_forgets_the_eighth_nearest_to_refilled() {
    let clock = ManualClock::new();
    let (l, snapshotter) = one_shard(&clock);
    // Key i is spent at i ms, so it refills at 1 s + i ms.
    for key in 0..16_u64 {
        l.check(&key).expect("new key");
        clock.advance(Duration::from_millis(1));
    }
    // Full and nothing refilled: down to seven eighths (14), the two that
    // refill soonest forgotten, then the new key.
    l.check(&99).expect("new key");
    assert_eq!(l.len(), 15);
    assert_eq!(evicted(&snapshotter), 2);
    // Keys 2–15 and 99 are held, so the two forgotten are 0 and 1; key 0
    // comes back with a fresh bucket.
    assert!((2..16_u64).all(|key| l.check(&key).is_err()), "remembered");
    assert!(l.check(&99).is_err(), "remembered");
    assert!(l.check(&0).is_ok(), "forgotten: a fresh bucket");
}

#[test]
fn retain_recent_drops_exactly_the_refilled_keys() {
    let clock = ManualClock::new();
    let (l, _) = one_shard(&clock);
    for key in 0..4_u64 {
        l.check(&key).expect("new key");
    }
    clock.advance(Duration::from_millis(500));
    l.check(&10).expect("new key");
    // At 1 s keys 0–3 have just refilled; key 10 owes half a token.
    clock.advance(Duration::from_millis(500));
    l.retain_recent();
    assert_eq!(l.len(), 1);
    assert!(!l.is_empty());
    assert!(l.check(&10).is_err(), "key 10 is still spent");
    // Half a second on, key 10 has refilled too: nothing is held.
    clock.advance(Duration::from_millis(500));
    l.retain_recent();
    assert!(l.is_empty());
}
