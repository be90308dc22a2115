//! The HTTP endpoints, as plain tower services: `/health`, `/livez` and
//! `/readyz`.

use std::convert::Infallible;
use std::fmt;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::json;
use tower_service::Service;

use crate::health::Health;

/// One of the endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// The full report: `200` healthy or degraded, `503` otherwise.
    Health,
    /// The process is alive: always `200`, never touches a dependency (a
    /// liveness probe that checks dependencies restarts healthy processes
    /// when a database blinks).
    Livez,
    /// Ready for traffic: the readiness gate is open and no critical
    /// check is down. `200` or `503` with the reasons.
    Readyz,
}

impl Endpoint {
    /// Every endpoint, in the order [`HealthEndpoints`] lists them.
    pub const ALL: [Endpoint; 3] = [Endpoint::Health, Endpoint::Livez, Endpoint::Readyz];

    /// The path [`HealthEndpoints`] serves it on.
    pub const fn path(self) -> &'static str {
        match self {
            Self::Health => "/health",
            Self::Livez => "/livez",
            Self::Readyz => "/readyz",
        }
    }
}

/// The body of every endpoint's response.
pub type Body = Full<Bytes>;

/// Answers one [`Endpoint`], whatever the request's path: mount it where
/// you like.
#[derive(Clone)]
pub struct EndpointService {
    health: Health,
    endpoint: Endpoint,
}

impl fmt::Debug for EndpointService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointService")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl EndpointService {
    /// A service that answers `endpoint` for `health`.
    pub fn new(health: Health, endpoint: Endpoint) -> Self {
        Self { health, endpoint }
    }
}

impl<B> Service<Request<B>> for EndpointService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let head = request.method() == Method::HEAD;
        if !head && request.method() != Method::GET {
            return Box::pin(std::future::ready(Ok(method_not_allowed())));
        }
        let health = self.health.clone();
        let endpoint = self.endpoint;
        Box::pin(async move {
            let (status, body) = match endpoint {
                Endpoint::Health => {
                    let report = health.report().await;
                    (report.http_status(), report.to_json_text())
                }
                Endpoint::Readyz => {
                    let ready = health.ready().await;
                    (ready.http_status(), ready.to_json().to_string())
                }
                Endpoint::Livez => (StatusCode::OK, json!({ "status": "alive" }).to_string()),
            };
            let mut response = json_response(status, body, head);
            if status == StatusCode::SERVICE_UNAVAILABLE {
                let secs = health.readiness().retry_after().as_secs();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            Ok(response)
        })
    }
}

/// `/health`, `/livez` and `/readyz` in one service; any other path is
/// `404`.
///
/// ```
/// use buttress_health::{Health, HealthEndpoints};
/// use http::{Request, StatusCode};
/// use tower::ServiceExt;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let endpoints = HealthEndpoints::new(Health::new());
/// let request = Request::get("/livez").body(()).unwrap();
/// let response = endpoints.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), StatusCode::OK);
/// # });
/// ```
#[derive(Clone)]
pub struct HealthEndpoints {
    health: Health,
}

impl fmt::Debug for HealthEndpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthEndpoints").finish_non_exhaustive()
    }
}

impl HealthEndpoints {
    /// The endpoints of `health`.
    pub fn new(health: Health) -> Self {
        Self { health }
    }

    /// The service answering one endpoint, to mount on a path of your own.
    pub fn endpoint(&self, endpoint: Endpoint) -> EndpointService {
        EndpointService::new(self.health.clone(), endpoint)
    }

    /// The three endpoints at their paths, as an axum router to
    /// [`merge`](axum::Router::merge) into the service's own.
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn router<St: Clone + Send + Sync + 'static>(&self) -> axum::Router<St> {
        Endpoint::ALL
            .into_iter()
            .fold(axum::Router::new(), |router, e| {
                router.route_service(e.path(), self.endpoint(e))
            })
    }
}

impl<B> Service<Request<B>> for HealthEndpoints {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let path = request.uri().path();
        let endpoint = match Endpoint::ALL.into_iter().find(|e| e.path() == path) {
            Some(endpoint) => endpoint,
            None => {
                let body = json!({ "error": "not found" }).to_string();
                let head = request.method() == Method::HEAD;
                return Box::pin(std::future::ready(Ok(json_response(
                    StatusCode::NOT_FOUND,
                    body,
                    head,
                ))));
            }
        };
        self.endpoint(endpoint).call(request)
    }
}

fn method_not_allowed() -> Response<Body> {
    let mut response = json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        json!({ "error": "only GET and HEAD are allowed" }).to_string(),
        false,
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

fn json_response(status: StatusCode, body: String, head: bool) -> Response<Body> {
    let bytes = if head {
        Bytes::new()
    } else {
        Bytes::from(body)
    };
    let mut response = Response::new(Full::new(bytes));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
