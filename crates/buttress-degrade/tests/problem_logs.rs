//! What the problem layer logs: a 500's error with its causes and the
//! request id (the client sees none of it); a refusal is no warning. In a
//! binary of its own: log capture is per thread.

use buttress_core::BoxError;
use buttress_degrade::problem_stack;
use buttress_test_support::logs::warnings_with_fields;
use http::{Request, Response};
use tower::{ServiceExt, service_fn};

#[derive(Debug, thiserror::Error)]
#[error("query failed")]
struct QueryFailed(#[source] std::io::Error);

fn call(error: fn() -> BoxError) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let ((), logged) = warnings_with_fields(|| {
        rt.block_on(async {
            let svc = problem_stack().service(service_fn(move |_: Request<String>| async move {
                Err::<Response<String>, BoxError>(error())
            }));
            let request = Request::builder()
                .header("x-request-id", "r-77")
                .body(String::new())
                .expect("valid");
            svc.oneshot(request).await.expect("infallible");
        });
    });
    logged
}

#[test]
fn an_internal_error_is_logged_with_its_causes_and_the_id() {
    let logged = call(|| {
        Box::new(QueryFailed(std::io::Error::other(
            "password authentication failed",
        )))
    });
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0].contains("request failed"), "{logged:?}");
    assert!(logged[0].contains("r-77"), "{logged:?}");
    assert!(
        logged[0].contains("query failed: password authentication failed"),
        "{logged:?}"
    );
}

#[test]
fn a_refusal_is_no_warning() {
    let logged = call(|| {
        Box::new(buttress_executor::error::ExecutorError::Submit(
            buttress_executor::error::SubmitError::Closed,
        ))
    });
    assert!(logged.is_empty(), "{logged:?}");
}
