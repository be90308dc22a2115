//! An HTTP GET: the dependency answers with the expected status, and,
//! when asked, the expected JSON fields or text.

use std::fmt;

use buttress_core::BoxError;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};

use crate::{Check, Observation};

/// The most of a body an HTTP check reads: enough for any health report.
const MAX_BODY: usize = 64 * 1024;

/// A check that GETs `url` (plain `http://`; for `https://`, write a
/// [`check_fn`](crate::check_fn) with your own client). Up when the answer
/// is a `2xx` (or the status set with
/// [`expect_status`](HttpCheck::expect_status)) and every expectation on
/// the body holds.
///
/// ```
/// use buttress_health::checks;
///
/// // The embeddings service is up when it says so.
/// let embeddings = checks::http("http://127.0.0.1:8081/health")?.expect_json("status", "ok");
/// # let _ = embeddings;
/// # Ok::<(), buttress_health::checks::HttpCheckError>(())
/// ```
pub fn http(url: &str) -> Result<HttpCheck, HttpCheckError> {
    let uri: Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| HttpCheckError::Url {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => {
            return Err(HttpCheckError::Scheme {
                url: url.to_owned(),
                scheme: other.to_owned(),
            });
        }
        None => {
            return Err(HttpCheckError::Url {
                url: url.to_owned(),
                reason: "no scheme: write http://host:port/path".to_owned(),
            });
        }
    }
    let Some(authority) = uri.authority().cloned() else {
        return Err(HttpCheckError::Url {
            url: url.to_owned(),
            reason: "no host".to_owned(),
        });
    };
    let path = uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    Ok(HttpCheck {
        url: url.to_owned(),
        host: authority.host().to_owned(),
        port: authority.port_u16().unwrap_or(80),
        authority: authority.as_str().to_owned(),
        path,
        status: None,
        json: Vec::new(),
        contains: None,
    })
}

/// A URL an HTTP check cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpCheckError {
    /// Not a URL.
    #[error("{url:?} is not a URL: {reason}")]
    Url {
        /// The text given.
        url: String,
        /// Why.
        reason: String,
    },
    /// Not `http://`.
    #[error("{url:?}: only http:// URLs can be checked, not {scheme}://")]
    Scheme {
        /// The text given.
        url: String,
        /// Its scheme.
        scheme: String,
    },
}

/// The check [`http()`] makes.
#[derive(Clone)]
pub struct HttpCheck {
    url: String,
    host: String,
    port: u16,
    authority: String,
    path: String,
    status: Option<StatusCode>,
    json: Vec<(String, String)>,
    contains: Option<String>,
}

impl fmt::Debug for HttpCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpCheck")
            .field("url", &self.url)
            .field("status", &self.status)
            .field("json", &self.json)
            .field("contains", &self.contains)
            .finish()
    }
}

impl HttpCheck {
    /// Up only on this status (instead of any `2xx`).
    #[must_use]
    pub fn expect_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// Up only when the body is JSON whose field `key` (a dotted path for
    /// nested objects: `checks.postgres.status`) is `value`: a string
    /// equal to it, or a number or boolean that prints as it.
    #[must_use]
    pub fn expect_json(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.json.push((key.into(), value.into()));
        self
    }

    /// Up only when the body contains `text`.
    #[must_use]
    pub fn body_contains(mut self, text: impl Into<String>) -> Self {
        self.contains = Some(text.into());
        self
    }

    /// The URL it checks.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn get(&self) -> Result<(StatusCode, Bytes), BoxError> {
        let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        // The connection ends with the answer (`Connection: close`) or when
        // the probe is dropped at its timeout.
        let connection = tokio::spawn(connection);
        let request = http::Request::get(self.path.as_str())
            .header(header::HOST, self.authority.as_str())
            .header(header::USER_AGENT, "buttress-health")
            .header(header::CONNECTION, "close")
            .body(Empty::<Bytes>::new())?;
        let response = sender.send_request(request).await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                connection.abort();
                return Err(e.into());
            }
        };
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes);
        connection.abort();
        Ok((status, body?))
    }

    fn judge(&self, status: StatusCode, body: &[u8]) -> Result<Observation, String> {
        match self.status {
            Some(expected) if status != expected => {
                return Err(format!("status {status}, expected {expected}"));
            }
            None if !status.is_success() => {
                return Err(format!("status {status}, expected 2xx"));
            }
            _ => {}
        }
        if let Some(text) = &self.contains
            && !text.is_empty()
            && !body.windows(text.len()).any(|w| w == text.as_bytes())
        {
            return Err(format!("the body does not contain {text:?}"));
        }
        if !self.json.is_empty() {
            let value: serde_json::Value =
                serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
            for (key, expected) in &self.json {
                let found = key
                    .split('.')
                    .try_fold(&value, |v, part| v.get(part))
                    .ok_or_else(|| format!("the body has no field {key:?}"))?;
                let text = match found {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if text != *expected {
                    return Err(format!("{key} is {found}, expected {expected:?}"));
                }
            }
        }
        Ok(Observation::up())
    }
}

impl Check for HttpCheck {
    fn check(&self) -> BoxFuture<'static, Result<Observation, BoxError>> {
        let check = self.clone();
        Box::pin(async move {
            let (status, body) = check
                .get()
                .await
                .map_err(|e| format!("GET {}: {}", check.url, crate::check::error_chain(&*e)))?;
            check
                .judge(status, &body)
                .map_err(|e| format!("GET {}: {e}", check.url).into())
        })
    }
}
