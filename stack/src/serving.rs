//! What every service of the stack shares: logs, the Prometheus recorder,
//! and serving a router until a graceful shutdown.

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::Router;
use axum::routing::get;
use buttress::health::{Outcome, Shutdown};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

/// Logs to stderr at `RUST_LOG`'s level (`error`, `warn`, `info` (the
/// default), `debug` or `trace`; anything else is `info`).
pub fn init_logging() {
    let level = match std::env::var("RUST_LOG").unwrap_or_default().trim() {
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

/// The process's Prometheus recorder, installed on first use: call it
/// before building any primitive, since each takes its metric handles
/// from the recorder installed when it is made. When it
/// cannot be installed (another recorder came first, as in a test that
/// captures metrics), `/metrics` renders an empty registry.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
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

/// `GET /metrics`: the Prometheus text format.
pub fn metrics_router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let handle = prometheus();
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    handle.render(),
                )
            }
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
