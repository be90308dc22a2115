//! The simulator's server: faults are applied in front of the router, and
//! a reset closes the connection without an answer, which `axum::serve`
//! cannot do; hence a small accept loop of our own on hyper.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use futures_util::future::BoxFuture;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tower::{Service, ServiceExt};

use super::apis::{error_response, loading_response, router};
use super::{Sim, Target, Verdict};

/// How long open connections get to finish after shutdown begins; hung
/// requests are dropped after it.
const GRACE: Duration = Duration::from_secs(2);

/// The error that makes hyper close a connection without answering.
#[derive(Debug, thiserror::Error)]
#[error("connection reset by upstream-sim")]
struct Reset;

#[derive(Clone)]
struct Faulty {
    sim: Sim,
    router: Router,
}

impl Service<Request<Incoming>> for Faulty {
    type Response = Response<Body>;
    type Error = Reset;
    type Future = BoxFuture<'static, Result<Response<Body>, Reset>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Reset>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let sim = self.sim.clone();
        let router = self.router.clone();
        Box::pin(async move {
            let path = req.uri().path();
            if let Some(target) = Target::of_path(path) {
                match sim.verdict(target, Target::is_health_path(path)) {
                    Verdict::Reset => return Err(Reset),
                    Verdict::Hang => std::future::pending::<()>().await,
                    Verdict::Loading(left) => return Ok(loading_response(left)),
                    Verdict::Fail { status, delay } => {
                        tokio::time::sleep(delay).await;
                        return Ok(error_response(status));
                    }
                    Verdict::Answer { delay } => tokio::time::sleep(delay).await,
                }
            }
            let response: Result<_, Infallible> = router.oneshot(req.map(Body::new)).await;
            Ok(response.unwrap_or_else(|e| match e {}))
        })
    }
}

/// Serves `sim` on `listener` until `shutdown` completes; then stops
/// accepting, gives open connections 2 s to finish, and drops the
/// rest.
pub async fn serve(
    listener: TcpListener,
    sim: Sim,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let service = Faulty {
        router: router(sim.clone()),
        sim,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                // Out of descriptors, or the peer gave up in the backlog:
                // keep serving the others.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(service.clone());
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let stopping = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stopping => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
    Ok(())
}
