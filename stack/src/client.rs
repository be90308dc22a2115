//! A small JSON-over-HTTP client for the upstreams (hyper-util's pooled
//! client, plain `http://`), with errors that say what failed and carry an
//! upstream's `Retry-After`.

use std::time::Duration;

use buttress::common::parse_retry_after;
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The most of an upstream's answer read: a completion or a batch of
/// embeddings fits many times over.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// A client of one upstream, cheap to clone (clones share the pool).
#[derive(Debug, Clone)]
pub struct JsonClient {
    name: &'static str,
    base: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

/// Why a call to an upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No answer: refused, reset, or closed before the whole answer came.
    #[error("{upstream}: {source}")]
    Transport {
        /// The upstream.
        upstream: &'static str,
        /// What the connection did.
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// The answer was not a 2xx.
    #[error("{upstream} answered {status}: {body}")]
    Status {
        /// The upstream.
        upstream: &'static str,
        /// Its status.
        status: StatusCode,
        /// Its `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        /// The start of its body.
        body: String,
    },
    /// The answer's body could not be read or was not the JSON expected.
    #[error("{upstream}: unreadable answer: {reason}")]
    Body {
        /// The upstream.
        upstream: &'static str,
        /// What was wrong.
        reason: String,
    },
}

impl UpstreamError {
    /// The upstream's status, when it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            UpstreamError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl JsonClient {
    /// A client of the upstream at `base` (`http://host:port[/prefix]`).
    pub fn new(name: &'static str, base: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        JsonClient {
            name,
            base: base.trim_end_matches('/').to_owned(),
            http,
        }
    }

    /// The upstream's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The upstream's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `POST {base}{path}` with `body` as JSON; the answer's JSON.
    pub async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, UpstreamError> {
        let bytes = serde_json::to_vec(body).map_err(|e| self.body_error(e))?;
        self.send(Method::POST, path, Bytes::from(bytes)).await
    }

    /// `method {base}{path}` with `body` as JSON; the answer's JSON.
    pub async fn send_json<R: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: &impl Serialize,
    ) -> Result<R, UpstreamError> {
        let method = Method::from_bytes(method.as_bytes()).map_err(|e| self.body_error(e))?;
        let bytes = serde_json::to_vec(body).map_err(|e| self.body_error(e))?;
        self.send(method, path, Bytes::from(bytes)).await
    }

    /// `GET {base}{path}`: the status and the JSON body, whatever the
    /// status (`Null` for a body that is not JSON).
    pub async fn get_any(
        &self,
        path: &str,
    ) -> Result<(StatusCode, serde_json::Value), UpstreamError> {
        self.any(Method::GET, path, Bytes::new()).await
    }

    /// `POST {base}{path}` with `body` as JSON: the status and the JSON
    /// body, whatever the status.
    pub async fn post_any<B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<(StatusCode, serde_json::Value), UpstreamError> {
        let bytes = serde_json::to_vec(body).map_err(|e| self.body_error(e))?;
        self.any(Method::POST, path, Bytes::from(bytes)).await
    }

    async fn any(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, serde_json::Value), UpstreamError> {
        let (status, _, bytes) = self.exchange(method, path, body).await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        ))
    }

    /// `GET {base}{path}`; the answer's JSON.
    pub async fn get<R: DeserializeOwned>(&self, path: &str) -> Result<R, UpstreamError> {
        self.send(Method::GET, path, Bytes::new()).await
    }

    async fn send<R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<R, UpstreamError> {
        let (status, retry_after, bytes) = self.exchange(method, path, body).await?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
            return Err(UpstreamError::Status {
                upstream: self.name,
                status,
                retry_after,
                body: text,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| self.body_error(e))
    }

    /// One request: the status, the `Retry-After`, the body.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Option<Duration>, Bytes), UpstreamError> {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| self.body_error(e))?;
        let response =
            self.http
                .request(request)
                .await
                .map_err(|source| UpstreamError::Transport {
                    upstream: self.name,
                    source,
                })?;
        let status = response.status();
        let retry_after = parse_retry_after(response.headers(), std::time::SystemTime::now());
        let bytes = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| self.body_error(e))?
            .to_bytes();
        Ok((status, retry_after, bytes))
    }

    fn body_error(&self, e: impl std::fmt::Display) -> UpstreamError {
        UpstreamError::Body {
            upstream: self.name,
            reason: e.to_string(),
        }
    }
}
