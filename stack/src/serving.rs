//! What every service of the stack shares: logs, the Prometheus recorder,
//! and serving a router until a graceful shutdown.

use std::net::SocketAddr;
use std::sync::OnceLock;

use std::path::Path;

use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::routing::get;
use buttress::BoxError;
use buttress::admin::Admin;
use buttress::degrade::{Problem, problem_stack};
use buttress::health::{Health, HealthEndpoints};
use buttress::health::{Outcome, Shutdown};
use buttress::policy::{FileWatch, Format, Policy};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

/// Logs to stderr at `RUST_LOG`'s level: `error`, `warn`, `info` (the
/// default), `debug` or `trace`, in any case; in a list such as
/// `info,hyper=warn`, the first bare level (per-target levels are not
/// read: the services log little, and only their own events).
pub fn init_logging() {
    let setting = std::env::var("RUST_LOG")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let bare = setting
        .split(',')
        .map(str::trim)
        .find(|part| !part.contains('='));
    let level = match bare.unwrap_or("") {
        "error" => tracing::Level::ERROR,
        "warn" => tracing::Level::WARN,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's Prometheus recorder (once; later calls return
/// the same handle). A binary calls it first, before it builds any
/// primitive: each takes its metric handles from the recorder installed
/// when it is made, so a breaker built earlier reports to nothing. A
/// library never installs it by itself: a process that embeds the
/// services (a test, a benchmark) keeps its own recorder, or none.
pub fn install_metrics() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "a metrics recorder was already installed; /metrics shows only its own"
                );
            }
            handle
        })
        .clone()
}

/// `GET /metrics`: the Prometheus text format of the recorder
/// [`install_metrics`] installed; empty (with a comment saying why) when
/// none was.
pub fn metrics_router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route(
        "/metrics",
        get(|| async {
            let text = PROMETHEUS.get().map_or_else(
                || "# no Prometheus recorder is installed in this process\n".to_owned(),
                PrometheusHandle::render,
            );
            (
                [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                text,
            )
        }),
    )
}

/// Serves `router` on `listener` (with each client's address for the
/// rate limiter) until `shutdown` begins, then finishes the requests in
/// flight and runs the drains. Signals are the caller's: a binary calls
/// [`Shutdown::listen_for_signals`] first, the one-process stack triggers
/// each service's shutdown itself.
pub async fn serve(listener: TcpListener, router: Router, shutdown: &Shutdown) -> Outcome {
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.signalled());
    shutdown
        .run_without_signals(async move {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "server failed");
            }
        })
        .await
}

/// Serves `router` until `shutdown` ends it, while `task` (a service's
/// background work) runs. A task that fails (it could not start, or must
/// not go on) triggers the shutdown, and the process should then exit 1
/// for its supervisor; otherwise the exit code is the shutdown's.
pub async fn serve_with_task(
    name: &str,
    listener: TcpListener,
    router: Router,
    shutdown: &Shutdown,
    task: tokio::task::JoinHandle<Result<(), BoxError>>,
) -> std::process::ExitCode {
    let failed = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            match task.await {
                Ok(Ok(())) => false,
                Ok(Err(_)) | Err(_) => {
                    shutdown.trigger();
                    true
                }
            }
        })
    };
    let outcome = serve(listener, router, shutdown).await;
    tracing::info!(?outcome, "{name} stopped");
    if failed.is_finished() && failed.await.unwrap_or(false) {
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::from(u8::try_from(outcome.exit_code()).unwrap_or(1))
}

/// Binds `addr`, with a message that names the variable to change when it
/// is taken.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {addr}: {e} (set PORT or BIND to another address)"),
        )
    })
}

/// A request body that could not be read (over the route's limit, or cut
/// off), as problem+json: axum's own answer would be plain text.
pub fn body_problem(rejection: &BytesRejection) -> Problem {
    let status = rejection.status();
    if status == http::StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(
            status,
            "payload_too_large",
            "The request body is larger than this endpoint takes.",
        )
    } else {
        Problem::new(
            status,
            "unreadable_body",
            "The request body could not be read.",
        )
    }
}

/// A service's policy: `file`, watched so that each saved version applies
/// live (keep the watch), or the built-in TOML `default` when unset.
pub fn load_policy(
    file: Option<&Path>,
    default: &str,
) -> Result<(Policy, Option<FileWatch>), BoxError> {
    Ok(match file {
        Some(path) => {
            let policy = Policy::load(path)?;
            let watch = policy.watch_file(path)?;
            (policy, Some(watch))
        }
        None => (Policy::from_text(default, Format::Toml)?, None),
    })
}

/// `work` with what every service serves beside it: `/health`, `/livez`,
/// `/readyz`, `/metrics` and `admin`'s `/admin` (behind `token` for
/// callers off loopback, when set); every error as problem+json with the
/// request id.
pub fn with_surface(work: Router, admin: Admin, health: &Health, token: Option<&str>) -> Router {
    let admin = match token {
        Some(t) => admin.token(t.to_owned()),
        None => admin,
    };
    Router::new()
        .merge(work)
        .merge(HealthEndpoints::new(health.clone()).router())
        .merge(metrics_router())
        .merge(admin.router())
        .layer(problem_stack())
}
