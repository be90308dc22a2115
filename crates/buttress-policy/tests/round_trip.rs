//! Every primitive's configuration survives document → build → read back
//! from the running primitives → document, and each format's text.

use std::time::Duration;

use buttress_breaker::{BreakerConfig, OpenDuration, Window};
use buttress_executor::ExecutorConfig;
use buttress_limit::QuotaConfig;
use buttress_policy::{
    CachePolicy, CheckpointPolicy, DependencyPolicy, FallbackPolicy, Format, InboundPolicy, Policy,
    PolicyDocument,
};
use buttress_pressure::{
    AdaptiveConfig, AimdConfig, GaugeConfig, Gradient2Config, VegasConfig, Watermarks,
};
use buttress_retry::{Backoff, BudgetConfig, RetryConfig};
use proptest::prelude::*;

fn millis(range: std::ops::Range<u64>) -> impl Strategy<Value = Duration> {
    range.prop_map(Duration::from_millis)
}

fn breaker() -> impl Strategy<Value = BreakerConfig> {
    (
        proptest::option::of(1u32..20),
        proptest::option::of(1u32..=100),
        10u32..200,
        prop_oneof![
            millis(1..600_000).prop_map(|duration| OpenDuration::Fixed { duration }),
            (millis(1..60_000), 1u32..4, 0u32..=10).prop_map(|(initial, m, j)| {
                OpenDuration::Exponential {
                    initial,
                    multiplier: f64::from(m) * 0.5 + 1.0,
                    max: initial * 10,
                    jitter: f64::from(j) / 10.0,
                }
            }),
        ],
        1u32..10,
    )
        .prop_filter_map(
            "at least one trip rule",
            |(n, rate, size, open, permits)| {
                let mut c = BreakerConfig::default();
                c.consecutive_failures = n;
                c.failure_rate_threshold = rate.map(|r| f64::from(r) / 100.0);
                c.window = Window::Count { size };
                c.minimum_calls = size.min(c.minimum_calls).max(1);
                c.open = open;
                c.half_open_permits = permits;
                (c.validate().is_ok()).then_some(c)
            },
        )
}

fn retry() -> impl Strategy<Value = RetryConfig> {
    (
        1u32..10,
        millis(1..1000),
        proptest::option::of(millis(1_000..60_000)),
        any::<bool>(),
        prop_oneof![
            Just(BudgetConfig::None),
            (1u32..50, 0u32..20).prop_map(|(r, m)| BudgetConfig::Ratio {
                ratio: f64::from(r) / 100.0,
                min_per_second: f64::from(m),
                window: Duration::from_secs(10),
            }),
        ],
    )
        .prop_map(|(attempts, base, deadline, honor, budget)| {
            let mut c = RetryConfig::default();
            c.max_attempts = attempts;
            c.backoff = Backoff::FullJitter {
                base,
                factor: 2.0,
                max: base * 20,
            };
            c.deadline = deadline;
            c.honor_retry_after = honor;
            c.budget = budget;
            c
        })
}

fn quota() -> impl Strategy<Value = QuotaConfig> {
    (1u64..10_000, 1u64..3600, proptest::option::of(1u32..100)).prop_map(|(count, secs, burst)| {
        QuotaConfig {
            count,
            per: Duration::from_secs(secs),
            burst,
        }
    })
}

fn executor() -> impl Strategy<Value = ExecutorConfig> {
    (
        1usize..64,
        1usize..10_000,
        proptest::option::of(millis(1..120_000)),
        proptest::option::of(millis(1..60_000)),
    )
        .prop_map(|(running, queued, timeout, aging)| {
            ExecutorConfig::default()
                .max_running(running)
                .max_queued(queued)
                .timeout(timeout)
                .aging(aging)
        })
}

fn shed() -> impl Strategy<Value = AdaptiveConfig> {
    prop_oneof![
        (2u32..100, 1u32..10).prop_map(|(max, b)| AdaptiveConfig::Aimd(
            AimdConfig::default()
                .initial(max / 2 + 1)
                .max(max)
                .backoff(0.5 + f64::from(b) / 25.0)
        )),
        (2u32..100).prop_map(|max| AdaptiveConfig::Vegas(
            VegasConfig::default().initial(max / 2 + 1).max(max)
        )),
        (2u32..100, 1u32..1000).prop_map(|(max, window)| AdaptiveConfig::Gradient2(
            Gradient2Config::default()
                .initial(max / 2 + 1)
                .max(max)
                .window(window)
        )),
    ]
}

fn dependency() -> impl Strategy<Value = DependencyPolicy> {
    (
        any::<bool>(),
        proptest::option::of(millis(1..120_000)),
        proptest::option::of(millis(1..30_000)),
        proptest::option::of(retry()),
        proptest::option::of(quota()),
        proptest::option::of(executor()),
        proptest::option::of(breaker()),
        any::<bool>(),
        proptest::option::of((millis(1..600_000), 1u64..100_000)),
        proptest::option::of(shed()),
    )
        .prop_map(
            |(critical, timeout, attempt, retry, rate, conc, breaker, fallback, cache, shed)| {
                let mut d = DependencyPolicy::default();
                d.critical = critical;
                d.timeout = timeout;
                d.attempt_timeout = attempt;
                d.retry = retry;
                d.rate_limit = rate;
                d.concurrency = conc;
                d.shed = shed;
                d.breaker = breaker;
                d.fallback = fallback.then(FallbackPolicy::default);
                d.cache = cache.map(|(ttl, max)| {
                    let mut c = CachePolicy::default();
                    c.ttl = ttl;
                    c.max_entries = max;
                    c
                });
                d
            },
        )
}

fn document() -> impl Strategy<Value = PolicyDocument> {
    (
        proptest::collection::btree_map("[a-z][a-z-]{0,12}", dependency(), 0..4),
        proptest::option::of(quota()),
        proptest::option::of((2u64..1_000_000_000, 1u64..100)),
        proptest::option::of(1u64..1000),
    )
        .prop_map(|(dependencies, inbound, marks, every)| {
            let mut doc = PolicyDocument::default();
            doc.dependencies = dependencies;
            doc.service.name = Some("svc".to_owned());
            doc.service.inbound = inbound.map(InboundPolicy::new);
            doc.service.backpressure = marks.map(|(high, pct)| {
                GaugeConfig::new(Watermarks::new(high, high * pct / 100 - 1).expect("low < high"))
            });
            doc.service.checkpoint = every.map(|n| {
                let mut c = CheckpointPolicy::default();
                c.every_events = Some(n);
                c
            });
            doc
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_document_survives_build_and_read_back(doc in document()) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        let _entered = runtime.enter();
        let policy = Policy::new(doc.clone()).unwrap_or_else(|e| panic!("{e}"));
        prop_assert_eq!(&policy.document(), &doc);
        for format in [Format::Toml, Format::Yaml, Format::Json] {
            let text = policy.document().to_text(format);
            let again = PolicyDocument::parse(&text, format)
                .unwrap_or_else(|e| panic!("{format}: {e}\n{text}"));
            prop_assert_eq!(&again, &doc, "{}:\n{}", format, text);
        }
    }
}
