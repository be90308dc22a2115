//! The admin routes.

use std::time::UNIX_EPOCH;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use buttress_degrade::{Invalid, Problem};
use buttress_policy::{DocumentError, Format};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};

use crate::admin::Admin;
use crate::guard::Caller;
use crate::status;

/// The page's path.
pub(crate) const PAGE: &str = "/admin";

/// The largest policy document `PUT /admin/config` reads.
const MAX_DOCUMENT: usize = 1 << 20;

const PAGE_HTML: &str = include_str!("../assets/admin.html");

impl Admin {
    /// The admin routes, under `/admin`, for an axum `Router`:
    ///
    /// | route | what |
    /// |---|---|
    /// | `GET /admin` | the live status page |
    /// | `GET /admin/status` | the [`Status`](crate::Status) as JSON |
    /// | `GET /admin/events` | server-sent events: `status`, `breaker`, `applied`, `dropped` |
    /// | `GET /admin/config` | the policy in force (`?format=toml`, `yaml` or `json`; TOML by default) |
    /// | `PUT /admin/config` | checks and applies a new policy (its format from `Content-Type`) |
    /// | `GET /admin/config/history` | the versions kept: number, when, by whom |
    /// | `POST /admin/config/rollback/{version}` | applies a kept version again |
    /// | `POST /admin/breakers/{name}/{force-open, disable, reset}` | a breaker by hand |
    ///
    /// Only clients on this machine are let in, unless a
    /// [`token`](Self::token) is set; serve the router with
    /// `into_make_service_with_connect_info::<SocketAddr>()` so it can
    /// tell. The routes have their own rate limit (20 a second, bursts of
    /// 40). Errors are `application/problem+json`.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route(PAGE, get(page))
            .route("/admin/status", get(status))
            .route("/admin/events", get(crate::events::events))
            .route("/admin/config", get(config).put(put_config))
            .route("/admin/config/history", get(history))
            .route("/admin/config/rollback/{version}", post(rollback))
            .route("/admin/breakers/{name}/{action}", post(breaker))
            .layer(DefaultBodyLimit::max(MAX_DOCUMENT))
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                crate::guard::guard,
            ))
            .with_state(self.clone())
    }
}

async fn page() -> Response {
    let mut response = Html(PAGE_HTML).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Everything is in the page itself: nothing else may load.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
        ),
    );
    response
}

async fn status(State(admin): State<Admin>) -> Json<crate::Status> {
    Json(admin.status().await)
}

/// The answer of the config routes for a service without a policy.
fn no_policy() -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no_policy",
        "This service runs without a policy document.",
    )
    .into_response()
}

#[derive(Deserialize)]
struct FormatQuery {
    format: Option<String>,
}

async fn config(
    State(admin): State<Admin>,
    Query(q): Query<FormatQuery>,
) -> Result<Response, Response> {
    let policy = admin.policy().ok_or_else(no_policy)?;
    let format = match q.format.as_deref() {
        None | Some("toml") => Format::Toml,
        Some("yaml") | Some("yml") => Format::Yaml,
        Some("json") => Format::Json,
        Some(other) => {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "unknown_format",
                format!("Unknown format `{other}`: use toml, yaml or json."),
            )
            .into_response());
        }
    };
    let text = policy.document().to_text(format);
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.media_type()),
    );
    Ok(response)
}

#[derive(Serialize)]
struct AppliedBody {
    version: u64,
    by: String,
}

async fn put_config(
    State(admin): State<Admin>,
    Extension(Caller(caller)): Extension<Caller>,
    headers: HeaderMap,
    body: String,
) -> Result<Json<AppliedBody>, Response> {
    let policy = admin.policy().ok_or_else(no_policy)?;
    let format = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(Format::from_media_type)
        .ok_or_else(|| {
            Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the policy as application/toml, application/yaml or application/json.",
            )
            .into_response()
        })?;
    let applied = policy
        .apply_text(&body, format, format!("admin api ({caller})"))
        .map_err(|e| invalid(&e).into_response())?;
    Ok(Json(AppliedBody {
        version: applied.version,
        by: applied.by.clone(),
    }))
}

/// A refused document as a `422` whose field errors are its problems:
/// each a path, and a message ending with its line.
fn invalid(e: &DocumentError) -> Problem {
    let mut invalid = Invalid::new();
    for p in e.problems() {
        let message = match p.line {
            Some(line) => format!("{}, line {line}", p.message),
            None => p.message.clone(),
        };
        invalid.push(p.path.to_string(), message);
    }
    Problem::invalid(invalid)
}

#[derive(Serialize)]
struct Version {
    version: u64,
    /// Seconds since the Unix epoch.
    at: u64,
    /// RFC 3339, UTC.
    at_text: String,
    by: String,
}

async fn history(State(admin): State<Admin>) -> Result<Json<Vec<Version>>, Response> {
    let policy = admin.policy().ok_or_else(no_policy)?;
    Ok(Json(
        policy
            .history()
            .iter()
            .map(|a| Version {
                version: a.version,
                at: a.at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                at_text: humantime::format_rfc3339_seconds(a.at).to_string(),
                by: a.by.clone(),
            })
            .collect(),
    ))
}

async fn rollback(
    State(admin): State<Admin>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(version): Path<u64>,
) -> Result<Json<AppliedBody>, Response> {
    let policy = admin.policy().ok_or_else(no_policy)?;
    match policy.rollback(version, format!("admin api ({caller})")) {
        Ok(applied) => Ok(Json(AppliedBody {
            version: applied.version,
            by: applied.by.clone(),
        })),
        Err(buttress_policy::RollbackError::Refused(e)) => Err(invalid(&e).into_response()),
        Err(e) => Err(
            Problem::new(StatusCode::NOT_FOUND, "no_such_version", e.to_string()).into_response(),
        ),
    }
}

async fn breaker(
    State(admin): State<Admin>,
    Extension(Caller(caller)): Extension<Caller>,
    Path((name, action)): Path<(String, String)>,
) -> Result<Json<status::BreakerStatus>, Response> {
    let Some((b, critical)) = admin.find(&name) else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "no_such_breaker",
            format!("No breaker is named `{name}`."),
        )
        .into_response());
    };
    match action.as_str() {
        "force-open" => b.force_open(),
        "disable" => b.disable(),
        "reset" => b.reset(),
        _ => {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                "no_such_action",
                format!("Unknown action `{action}`: use force-open, disable or reset."),
            )
            .into_response());
        }
    }
    tracing::warn!(breaker = %name, %action, %caller, "breaker changed by hand through the admin api");
    Ok(Json(status::breaker(&b, critical)))
}
