//! The fallback, through tower and the plain API, for every kind of
//! failure, in paused time.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use buttress_breaker::{CircuitBreaker, CircuitBreakerLayer};
use buttress_core::{BoxError, Classification, HttpClassifier, RejectionKind, classify_fn};
use buttress_degrade::{
    Degraded, Fallback, FallbackLayer, Reason, Reasons, Served, Source, backup,
};
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

mod support;

type Answer = Served<String>;

fn canned() -> Answer {
    Served::normal("canned".to_owned())
}

fn fallback() -> Fallback {
    Fallback::new("llm").expect("valid name")
}

/// A service that fails every call with the error `make` builds.
fn failing(
    make: impl Fn() -> BoxError + Clone + Send + 'static,
) -> impl Service<String, Response = Answer, Error = BoxError, Future: Send> + Clone {
    service_fn(move |_: String| {
        let make = make.clone();
        async move { Err::<Answer, _>(make()) }
    })
}

async fn degraded_reason<S>(svc: S) -> Reason
where
    S: Service<String, Response = Answer, Error = BoxError>,
{
    let answer = FallbackLayer::new(fallback(), backup::value(canned()))
        .layer(svc)
        .oneshot("q".to_owned())
        .await
        .expect("the fallback answers");
    assert_eq!(answer.value, "canned");
    let degraded = answer.degraded.expect("marked degraded");
    assert_eq!(degraded.by().as_str(), "llm");
    assert_eq!(degraded.source(), Source::Fallback);
    degraded.reason()
}

#[tokio::test(start_paused = true)]
async fn a_plain_error_is_answered() {
    let reason = degraded_reason(failing(|| "connection refused".into())).await;
    assert_eq!(reason, Reason::Error);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_is_answered_as_a_timeout() {
    let hangs = service_fn(|_: String| std::future::pending::<Result<Answer, BoxError>>());
    let svc = ServiceBuilder::new()
        .timeout(Duration::from_secs(30))
        .service(hangs);
    let started = tokio::time::Instant::now();
    assert_eq!(degraded_reason(svc).await, Reason::TIMED_OUT);
    assert_eq!(started.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_is_answered() {
    let breaker = CircuitBreaker::builder("llm")
        .consecutive_failures(1)
        .failure_rate(None)
        .build()
        .expect("valid");
    let svc = CircuitBreakerLayer::new(breaker).layer(failing(|| "down".into()));
    assert_eq!(degraded_reason(svc.clone()).await, Reason::Error);
    assert_eq!(
        degraded_reason(svc).await,
        Reason::Refused(RejectionKind::CircuitOpen)
    );
}

#[tokio::test(start_paused = true)]
async fn a_spent_rate_limit_is_answered() {
    let limiter = support::spent_limiter();
    let refused = limiter.check().expect_err("the second is refused");
    let reason = degraded_reason(failing(move || Box::new(refused.clone()))).await;
    assert_eq!(reason, Reason::Refused(RejectionKind::RateLimited));
}

#[tokio::test(start_paused = true)]
async fn a_shed_is_answered() {
    use buttress_pressure::{Gauge, ShedLayer, Watermarks};
    let gauge = Gauge::builder("queue", Watermarks::new(10, 5).expect("valid"))
        .build()
        .expect("valid");
    gauge.set(20);
    let svc = ShedLayer::new(gauge).layer(failing(|| "never called".into()));
    assert_eq!(
        degraded_reason(svc).await,
        Reason::Refused(RejectionKind::Overloaded)
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_is_answered() {
    use buttress_executor::ExecutorError;
    let full = support::full_queue().await;
    let reason = degraded_reason(failing(move || Box::new(ExecutorError::Submit(full)))).await;
    assert_eq!(reason, Reason::Refused(RejectionKind::QueueFull));
}

#[tokio::test(start_paused = true)]
async fn a_closed_readiness_gate_is_answered() {
    use buttress_health::{Readiness, ReadinessLayer};
    let readiness = Readiness::new();
    let _loading = readiness.hold("loading the model");
    let svc = ReadinessLayer::new(readiness).layer(failing(|| "never called".into()));
    assert_eq!(
        degraded_reason(svc).await,
        Reason::Refused(RejectionKind::NotReady)
    );
}

#[tokio::test(start_paused = true)]
async fn a_success_passes_through_unmarked() {
    let ok = service_fn(|q: String| async move { Ok::<_, BoxError>(Served::normal(q)) });
    let answer = FallbackLayer::new(fallback(), backup::value(canned()))
        .layer(ok)
        .oneshot("hello".to_owned())
        .await
        .expect("ok");
    assert_eq!(answer, Served::normal("hello".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn failures_outside_its_reasons_pass_through() {
    let only_timeouts = fallback().on([Reason::TIMED_OUT]);
    let err = FallbackLayer::new(only_timeouts, backup::value(canned()))
        .layer(failing(|| "down".into()))
        .oneshot("q".to_owned())
        .await
        .expect_err("not a timeout");
    assert_eq!(err.to_string(), "down");
    assert!(
        !fallback()
            .on(Reasons::ALL.without(Reason::Error))
            .reasons()
            .contains(Reason::Error)
    );
}

#[tokio::test(start_paused = true)]
async fn a_function_backup_sees_the_request_and_the_failure() {
    let svc = FallbackLayer::new(
        fallback(),
        backup::from_fn(
            |q: String, caught: buttress_degrade::Caught<'_, BoxError>| {
                let error = caught.error.map(ToString::to_string).unwrap_or_default();
                Served::normal(format!("{q}: {} ({error})", caught.reason))
            },
        ),
    )
    .layer(failing(|| "refused".into()));
    let answer = svc.oneshot("hello".to_owned()).await.expect("answered");
    assert_eq!(answer.value, "hello: error (refused)");
    assert!(answer.is_degraded());
}

#[tokio::test(start_paused = true)]
async fn a_backup_that_fails_returns_the_original_error() {
    let broken_backup =
        service_fn(|_: String| async { Err::<Answer, BoxError>("backup down".into()) });
    let err = FallbackLayer::new(fallback(), backup::service(broken_backup))
        .layer(failing(|| "primary down".into()))
        .oneshot("q".to_owned())
        .await
        .expect_err("both failed");
    assert_eq!(err.to_string(), "primary down");

    let panics = backup::from_fn(
        |_: String, _: buttress_degrade::Caught<'_, BoxError>| -> Answer {
            panic!("the backup panicked")
        },
    );
    let err = FallbackLayer::new(fallback(), panics)
        .layer(failing(|| "primary down".into()))
        .oneshot("q".to_owned())
        .await
        .expect_err("both failed");
    assert_eq!(err.to_string(), "primary down");
}

#[tokio::test(start_paused = true)]
async fn a_backup_service_behind_its_own_breaker() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let small_model = service_fn(move |q: String| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move { Err::<Answer, BoxError>(format!("small model down for {q}").into()) }
    });
    let backup_breaker = CircuitBreaker::builder("small-model")
        .consecutive_failures(1)
        .failure_rate(None)
        .build()
        .expect("valid");
    let guarded = CircuitBreakerLayer::new(backup_breaker).layer(small_model);
    let svc = FallbackLayer::new(fallback(), backup::service(guarded))
        .layer(failing(|| "llm down".into()));
    for _ in 0..3 {
        let err = svc
            .clone()
            .oneshot("q".to_owned())
            .await
            .expect_err("both down");
        assert_eq!(err.to_string(), "llm down");
    }
    // The backup's breaker opened after its first failure: it was called once.
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_classifier_makes_a_failing_response_a_failure() {
    let upstream = service_fn(|_: String| async {
        Ok::<_, Infallible>(
            http::Response::builder()
                .status(503)
                .body(String::new())
                .expect("valid"),
        )
    });
    let layer = FallbackLayer::new(
        fallback(),
        backup::value(http::Response::new("canned".to_owned())),
    );
    let plain = layer.clone().layer(upstream);
    let response = plain.oneshot("q".to_owned()).await.expect("infallible");
    assert_eq!(response.status(), 503, "every Ok is a success by default");

    let svc = layer.classifier(HttpClassifier::new()).layer(upstream);
    let response = svc.oneshot("q".to_owned()).await.expect("infallible");
    assert_eq!(response.status(), 200);
    assert_eq!(response.body(), "canned");
    assert_eq!(response.headers()["x-degraded"], "error");
    let degraded = response.extensions().get::<Degraded>().expect("marked");
    assert_eq!(degraded.reason(), Reason::Error);
}

#[tokio::test(start_paused = true)]
async fn the_plain_api_answers_and_keeps_the_original_error() {
    let f = fallback();
    let served = f
        .run(
            tokio::time::timeout(Duration::from_secs(30), std::future::pending::<String>()),
            |caught| {
                let reason = caught.reason;
                async move { Ok::<_, Infallible>(format!("canned ({reason})")) }
            },
        )
        .await
        .expect("answered");
    assert_eq!(served.value, "canned (timed_out)");

    let err = f
        .run(
            async { Err::<String, _>(std::io::Error::other("primary")) },
            |_| async { Err::<String, _>("backup") },
        )
        .await
        .expect_err("both failed");
    assert_eq!(err.to_string(), "primary");

    let ok = f
        .run(async { Ok::<_, Infallible>(1) }, |_| async {
            Ok::<_, ()>(2)
        })
        .await
        .expect("ok");
    assert_eq!(ok, Served::normal(1));

    let ignore_not_found = classify_fn(|r: &Result<u8, std::io::Error>| match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Classification::IGNORED,
        Err(_) => Classification::RETRYABLE_FAILURE,
        Ok(_) => Classification::SUCCESS,
    });
    let err = f
        .run_classified(
            &ignore_not_found,
            async { Err::<u8, _>(std::io::Error::from(std::io::ErrorKind::NotFound)) },
            |_| async { Ok::<_, ()>(0) },
        )
        .await
        .expect_err("ignored results pass through");
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

#[tokio::test(start_paused = true)]
async fn answers_and_failed_backups_are_counted() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let f = fallback();
    for fail_backup in [false, false, true] {
        let _ = f
            .run(
                async { Err::<u8, _>(std::io::Error::other("down")) },
                |_| async move { if fail_backup { Err(()) } else { Ok(0) } },
            )
            .await;
    }
    let mut seen = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let labels: Vec<String> = key
            .key()
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        if let DebugValue::Counter(n) = value {
            seen.push((key.key().name().to_owned(), labels.join(","), n));
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                "buttress_fallback_failed_total".to_owned(),
                "name=llm,reason=error".to_owned(),
                1
            ),
            (
                "buttress_fallback_total".to_owned(),
                "name=llm,reason=error".to_owned(),
                2
            ),
        ]
    );
}

/// One error of each refusal kind, made by the primitive that refuses.
async fn one_refusal_of_each_kind() -> Vec<(RejectionKind, BoxError)> {
    use buttress_executor::ExecutorError;
    use buttress_pressure::{Gauge, ShedLayer, Watermarks};

    let breaker = CircuitBreaker::builder("llm")
        .consecutive_failures(1)
        .failure_rate(None)
        .build()
        .expect("valid");
    breaker.try_acquire().expect("closed").failure();
    let open = breaker.try_acquire().expect_err("open");

    let limiter = support::spent_limiter();
    let limited = limiter.check().expect_err("refused");

    let gauge = Gauge::builder("queue", Watermarks::new(10, 5).expect("valid"))
        .build()
        .expect("valid");
    gauge.set(20);
    let shed = ShedLayer::new(gauge)
        .layer(failing(|| "never called".into()))
        .oneshot("q".to_owned())
        .await
        .expect_err("shed");

    let full = support::full_queue().await;

    let readiness = buttress_health::Readiness::new();
    let _loading = readiness.hold("loading");
    let not_ready = buttress_health::ReadinessLayer::new(readiness.clone())
        .layer(failing(|| "never called".into()))
        .oneshot("q".to_owned())
        .await
        .expect_err("not ready");

    let elapsed = tokio::time::timeout(Duration::from_secs(30), std::future::pending::<()>())
        .await
        .expect_err("elapsed");

    vec![
        (RejectionKind::CircuitOpen, Box::new(open)),
        (RejectionKind::RateLimited, Box::new(limited)),
        (RejectionKind::Overloaded, shed),
        (
            RejectionKind::QueueFull,
            Box::new(ExecutorError::Submit(full)),
        ),
        (RejectionKind::NotReady, not_ready),
        (RejectionKind::TimedOut, Box::new(elapsed)),
    ]
}

#[tokio::test(start_paused = true)]
async fn the_plain_api_answers_for_every_kind() {
    let f = fallback();
    for (kind, error) in one_refusal_of_each_kind().await {
        let served = f
            .run(async move { Err::<String, BoxError>(error) }, |caught| {
                let reason = caught.reason;
                async move { Ok::<_, Infallible>(format!("canned ({reason})")) }
            })
            .await
            .expect("answered");
        assert_eq!(served.value, format!("canned ({})", kind.as_str()));
        assert_eq!(
            served.degraded.expect("marked").reason(),
            Reason::Refused(kind)
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_plain_api_leaves_kinds_outside_its_reasons_alone() {
    let only_open = fallback().on([Reason::Refused(RejectionKind::CircuitOpen)]);
    for (kind, error) in one_refusal_of_each_kind().await {
        let result = only_open
            .run(async move { Err::<String, BoxError>(error) }, |_| async {
                Ok::<_, Infallible>("canned".to_owned())
            })
            .await;
        assert_eq!(
            result.is_ok(),
            kind == RejectionKind::CircuitOpen,
            "{kind:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_refusal_found_in_an_error_says_what_it_knows() {
    use buttress_degrade::refusal_in;
    for (kind, error) in one_refusal_of_each_kind().await {
        let refused = refusal_in(&*error).expect("a refusal");
        assert_eq!(refused.kind(), kind);
        match kind {
            RejectionKind::CircuitOpen => {
                assert_eq!(refused.instance_name(), Some("llm"));
                assert!(refused.retry_after().is_some());
            }
            RejectionKind::RateLimited => {
                assert_eq!(refused.instance_name(), Some("api"));
                assert!(refused.rate_limit_policy().is_some());
                assert!(refused.retry_after().is_some());
            }
            RejectionKind::TimedOut => {
                assert_eq!(refused.instance_name(), None);
                assert_eq!(refused.rate_limit_policy(), None);
            }
            _ => {}
        }
    }
}
