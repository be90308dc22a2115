//! The layer that turns every error, refusal and panic of an HTTP service
//! into a problem+json answer carrying the request id.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use buttress_core::{BoxError, RejectionKind, parse_retry_after};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Request, Response};
use http_body::Body;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_layer::{Identity, Layer, Stack};
use tower_service::Service;

use crate::problem::{PROBLEM_JSON, Problem};
use crate::request_id::{X_REQUEST_ID, ensure_request_id};

/// Makes an HTTP service answer every failure as RFC 9457 problem+json
/// with the request id, and never fail: its error type is
/// [`Infallible`], so it goes straight into an axum `Router`.
///
/// * An `Err` from the inner service becomes the [`Problem`] for it
///   ([`Problem::from_error`]: `503`, `429`, `504`, `422` or a bare `500`);
///   a `500`'s error is logged with the request id, never sent.
/// * A refusal a buttress layer answered itself (`.http()`, an empty body
///   carrying a [`RejectionKind`]) gets its problem body; its
///   `Retry-After` and RateLimit headers stay.
/// * A [`Problem`] a handler returned gets the request id in its body.
/// * An error status with no body and no content type (axum's `404` for
///   an unknown path, a `405`) gets the problem body for its status
///   ([`Problem::for_status`]). A body of your own is left alone.
/// * A handler that panics, in `call` or while its future runs, is a
///   `500` problem; the service goes on serving.
/// * Every response carries `x-request-id`: the client's when it is
///   usable, else a fresh UUID.
///
/// [`problem_stack`] adds tower-http's request-id layers around it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProblemLayer;

impl ProblemLayer {
    /// The layer.
    pub fn new() -> Self {
        ProblemLayer
    }
}

impl<S> Layer<S> for ProblemLayer {
    type Service = ProblemService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ProblemService {
            inner,
            broken: None,
        }
    }
}

/// tower-http's `SetRequestIdLayer` (a UUID when the request has no
/// `x-request-id`) and `PropagateRequestIdLayer`, around a
/// [`ProblemLayer`]: every response, problem or not, carries the id.
///
/// ```
/// use buttress_degrade::problem_stack;
/// use tower::{ServiceExt, service_fn};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let handler = service_fn(|_: http::Request<String>| async {
///     Err::<http::Response<String>, _>(std::io::Error::other("db password wrong"))
/// });
/// let svc = problem_stack().service(handler);
/// let request = http::Request::builder().header("x-request-id", "r-42").body(String::new()).unwrap();
/// let response = svc.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 500);
/// assert_eq!(response.headers()["x-request-id"], "r-42");
/// assert!(response.body().contains("\"request_id\":\"r-42\""));
/// # });
/// ```
pub fn problem_stack() -> ServiceBuilder<ProblemStack> {
    ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(ProblemLayer)
}

/// The layers [`problem_stack`] returns, outermost last.
pub type ProblemStack = Stack<
    ProblemLayer,
    Stack<PropagateRequestIdLayer, Stack<SetRequestIdLayer<MakeRequestUuid>, Identity>>,
>;

/// The service of a [`ProblemLayer`].
#[derive(Clone)]
pub struct ProblemService<S> {
    inner: S,
    /// The problem the inner service's readiness failed with: the next
    /// request is answered with it.
    broken: Option<Problem>,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for ProblemService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
    ResB: Body + From<String>,
{
    type Response = Response<ResB>;
    type Error = Infallible;
    type Future = ProblemFuture<S::Future, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if self.broken.is_some() {
            return Poll::Ready(Ok(()));
        }
        let polled = catch_unwind(AssertUnwindSafe(|| self.inner.poll_ready(cx)));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Ok(()))) => Poll::Ready(Ok(())),
            Ok(Poll::Ready(Err(e))) => {
                self.broken = Some(problem_for(&e.into(), None));
                Poll::Ready(Ok(()))
            }
            Err(_) => {
                self.broken = Some(panicked(None));
                Poll::Ready(Ok(()))
            }
        }
    }

    fn call(&mut self, mut request: Request<ReqB>) -> Self::Future {
        let id = ensure_request_id(&mut request);
        if let Some(problem) = self.broken.take() {
            return ProblemFuture::answered(problem.with_request_id(id));
        }
        match catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(inner) => ProblemFuture {
                state: State::Calling { inner },
                id,
            },
            Err(_) => ProblemFuture::answered(panicked(Some(&id)).with_request_id(id)),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for ProblemService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProblemService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
    /// The response future of a [`ProblemService`].
    pub struct ProblemFuture<F, B> {
        #[pin]
        state: State<F, B>,
        id: String,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Calling { #[pin] inner: F },
        Answered { response: Option<Response<B>> },
    }
}

impl<F, B: Body + From<String>> ProblemFuture<F, B> {
    fn answered(problem: Problem) -> Self {
        let id = problem.request_id().unwrap_or_default().to_owned();
        ProblemFuture {
            state: State::Answered {
                response: Some(problem.into_response()),
            },
            id,
        }
    }
}

impl<F, B, E> Future for ProblemFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
    B: Body + From<String>,
{
    type Output = Result<Response<B>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let id = this.id;
        let response = match this.state.project() {
            StateProj::Answered { response } => match response.take() {
                Some(response) => response,
                // Polled after it answered: pend rather than panic.
                None => return Poll::Pending,
            },
            StateProj::Calling { inner } => {
                match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(Ok(response))) => finish(response, id),
                    Ok(Poll::Ready(Err(e))) => problem_for(&e.into(), Some(id))
                        .with_request_id(id.clone())
                        .into_response(),
                    Err(_) => panicked(Some(id))
                        .with_request_id(id.clone())
                        .into_response(),
                }
            }
        };
        Poll::Ready(Ok(response))
    }
}

impl<F, B> fmt::Debug for ProblemFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProblemFuture")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The problem for an error, logging what the client will not see.
fn problem_for(error: &BoxError, id: Option<&str>) -> Problem {
    let problem = Problem::from_error(&**error);
    if problem.kind() == "internal" {
        tracing::error!(request_id = id.unwrap_or("-"), error = %Chain(&**error), "request failed");
    } else {
        tracing::debug!(request_id = id.unwrap_or("-"), error = %Chain(&**error), kind = problem.kind(), "request refused");
    }
    problem
}

fn panicked(id: Option<&str>) -> Problem {
    tracing::error!(request_id = id.unwrap_or("-"), "the handler panicked");
    Problem::internal()
}

/// A response on its way out: a problem gets the request id, an empty
/// refusal gets its problem body, and every response gets `x-request-id`.
fn finish<B: Body + From<String>>(mut response: Response<B>, id: &str) -> Response<B> {
    if let Some(problem) = problem_in(&mut response) {
        let problem = problem.with_request_id(id);
        *response.body_mut() = B::from(problem.to_json());
        let headers = response.headers_mut();
        headers.remove(CONTENT_LENGTH);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response.extensions_mut().insert(problem);
    }
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    response
}

/// The problem a response stands for, if it needs a problem body: one a
/// handler returned, or an error status with no body of its own (a
/// refusal a buttress layer answered, an unknown path).
fn problem_in<B: Body>(response: &mut Response<B>) -> Option<Problem> {
    if let Some(problem) = response.extensions_mut().remove::<Problem>() {
        return Some(problem);
    }
    let status = response.status();
    let bare = (status.is_client_error() || status.is_server_error())
        && response.headers().get(CONTENT_TYPE).is_none()
        && response.body().size_hint().exact() == Some(0);
    if !bare {
        return None;
    }
    let Some(kind) = response.extensions().get::<RejectionKind>() else {
        return Some(Problem::for_status(status));
    };
    let problem = Problem::refused(*kind);
    Some(
        match parse_retry_after(response.headers(), SystemTime::now()) {
            Some(after) if problem.kind() != "internal" => problem.with_retry_after(after),
            _ => problem,
        },
    )
}

/// An error and its sources, `: `-separated, for a log line.
struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}
