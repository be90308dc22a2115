//! The status rule against a small model, for any mix of check results,
//! criticalities and gate states; and through a real registry, with
//! breakers and gauges among the checks where those features are on.

use buttress_health::{CheckStatus, Criticality, GateStatus, Status, aggregate, is_ready};
use proptest::prelude::*;

/// The rule written another way: the worst thing present wins.
fn model(checks: &[(CheckStatus, Criticality)], gate: GateStatus) -> (Status, u16, bool) {
    let critical_down = checks
        .iter()
        .any(|&(s, c)| s == CheckStatus::Down && c == Criticality::Critical);
    let anything_wrong = checks.iter().any(|&(s, _)| s != CheckStatus::Up);
    let status = match gate {
        GateStatus::Draining => Status::Draining,
        GateStatus::Failed => Status::Unhealthy,
        _ if critical_down => Status::Unhealthy,
        GateStatus::Starting => Status::Starting,
        GateStatus::Open if anything_wrong => Status::Degraded,
        GateStatus::Open => Status::Healthy,
    };
    let code = if matches!(status, Status::Healthy | Status::Degraded) {
        200
    } else {
        503
    };
    let ready = gate == GateStatus::Open && !critical_down;
    (status, code, ready)
}

fn check_status() -> impl Strategy<Value = CheckStatus> {
    prop_oneof![
        Just(CheckStatus::Up),
        Just(CheckStatus::Degraded),
        Just(CheckStatus::Down)
    ]
}

fn criticality() -> impl Strategy<Value = Criticality> {
    prop_oneof![Just(Criticality::Critical), Just(Criticality::NonCritical)]
}

fn gate() -> impl Strategy<Value = GateStatus> {
    prop_oneof![
        Just(GateStatus::Open),
        Just(GateStatus::Starting),
        Just(GateStatus::Failed),
        Just(GateStatus::Draining)
    ]
}

#[test]
fn statuses_print_as_the_report_names_them() {
    for (status, name) in [
        (Status::Healthy, "healthy"),
        (Status::Degraded, "degraded"),
        (Status::Unhealthy, "unhealthy"),
        (Status::Starting, "starting"),
        (Status::Draining, "draining"),
    ] {
        assert_eq!(
            (status.to_string(), status.as_str()),
            (name.to_owned(), name)
        );
    }
    for (status, name, gauge) in [
        (CheckStatus::Up, "ok", 1.0),
        (CheckStatus::Degraded, "degraded", 0.5),
        (CheckStatus::Down, "down", 0.0),
    ] {
        assert_eq!(
            (status.to_string(), status.as_str()),
            (name.to_owned(), name)
        );
        assert_eq!(status.gauge_value(), gauge);
    }
}

proptest! {
    #[test]
    fn the_status_follows_the_model(
        checks in prop::collection::vec((check_status(), criticality()), 0..8),
        gate in gate(),
    ) {
        let (status, code, ready) = model(&checks, gate);
        let got = aggregate(checks.iter().copied(), gate);
        prop_assert_eq!(got, status);
        prop_assert_eq!(got.http_status().as_u16(), code);
        prop_assert_eq!(got.is_serving(), code == 200);
        prop_assert_eq!(is_ready(checks.iter().copied(), gate), ready);
    }
}

/// One check of the registry, as a test sets it up.
#[derive(Debug, Clone)]
enum Source {
    Probe(CheckStatus, Criticality),
    #[cfg(feature = "breaker")]
    Breaker(buttress_breaker::State, Criticality),
    #[cfg(feature = "pressure")]
    Gauge {
        paused: bool,
    },
}

impl Source {
    /// What the check reports, and how much it matters.
    fn expected(&self) -> (CheckStatus, Criticality) {
        match *self {
            Source::Probe(s, c) => (s, c),
            #[cfg(feature = "breaker")]
            Source::Breaker(state, c) => {
                use buttress_breaker::State;
                let s = match state {
                    State::Closed | State::Disabled => CheckStatus::Up,
                    State::HalfOpen => CheckStatus::Degraded,
                    State::Open | State::ForcedOpen => CheckStatus::Down,
                };
                (s, c)
            }
            #[cfg(feature = "pressure")]
            Source::Gauge { paused } => (
                if paused {
                    CheckStatus::Degraded
                } else {
                    CheckStatus::Up
                },
                Criticality::NonCritical,
            ),
        }
    }
}

fn source() -> BoxedStrategy<Source> {
    let probe = (check_status(), criticality())
        .prop_map(|(s, c)| Source::Probe(s, c))
        .boxed();
    #[cfg(feature = "breaker")]
    let probe = {
        use buttress_breaker::State;
        let breaker = (
            prop_oneof![
                Just(State::Closed),
                Just(State::Open),
                Just(State::ForcedOpen),
                Just(State::Disabled)
            ],
            criticality(),
        )
            .prop_map(|(s, c)| Source::Breaker(s, c));
        prop_oneof![probe, breaker].boxed()
    };
    #[cfg(feature = "pressure")]
    let probe = prop_oneof![
        probe,
        any::<bool>().prop_map(|paused| Source::Gauge { paused })
    ]
    .boxed();
    probe
}

fn register(health: &buttress_health::Health, i: usize, source: &Source) {
    use buttress_health::{CheckOptions, Observation, check_fn};
    let options = |c: Criticality| match c {
        Criticality::Critical => CheckOptions::critical(),
        Criticality::NonCritical => CheckOptions::non_critical(),
    };
    match source.clone() {
        Source::Probe(s, c) => {
            let check = check_fn(move || async move {
                Ok::<_, std::io::Error>(match s {
                    CheckStatus::Up => Observation::up(),
                    CheckStatus::Degraded => Observation::degraded("slow"),
                    CheckStatus::Down => Observation::down("refused"),
                })
            });
            health
                .register(format!("dep{i}"), check, options(c))
                .expect("valid");
        }
        #[cfg(feature = "breaker")]
        Source::Breaker(state, c) => {
            use buttress_breaker::{CircuitBreaker, State};
            let breaker = CircuitBreaker::builder(format!("b{i}"))
                .consecutive_failures(1)
                .build()
                .expect("valid");
            match state {
                State::Open => breaker.try_acquire().expect("closed").failure(),
                State::ForcedOpen => breaker.force_open(),
                State::Disabled => breaker.disable(),
                _ => {}
            }
            health
                .register_breaker(&breaker, options(c))
                .expect("valid");
        }
        #[cfg(feature = "pressure")]
        Source::Gauge { paused } => {
            let gauge = buttress_pressure::Gauge::builder(
                format!("g{i}"),
                buttress_pressure::Watermarks::new(10, 5).expect("valid"),
            )
            .build()
            .expect("valid");
            if paused {
                gauge.set(20);
            }
            health.register_gauge(&gauge).expect("valid");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_registry_reports_what_the_model_says(
        sources in prop::collection::vec(source(), 0..6),
        starting in any::<bool>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        let (report, ready) = rt.block_on(async {
            let health = buttress_health::Health::new();
            for (i, s) in sources.iter().enumerate() {
                register(&health, i, s);
            }
            let _hold = starting.then(|| health.readiness().hold("warming up"));
            (health.report().await, health.ready().await)
        });
        let expected: Vec<_> = sources.iter().map(Source::expected).collect();
        let gate = if starting { GateStatus::Starting } else { GateStatus::Open };
        let (status, code, is_ready) = model(&expected, gate);
        prop_assert_eq!(report.status, status);
        prop_assert_eq!(report.http_status().as_u16(), code);
        prop_assert_eq!(ready.ready, is_ready);
        let got: Vec<_> = report.checks.iter().map(|c| (c.status, c.criticality)).collect();
        prop_assert_eq!(got, expected);
    }
}
