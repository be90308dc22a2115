//! The per-client limit on the API's own door, from the policy's
//! `service.inbound`: in the process, or shared by every replica through
//! Redis when `REDIS_URL` is set. Exempt networks (loopback by default)
//! pass; a client over its limit gets `429` problem+json with
//! `Retry-After`.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use buttress::degrade::Problem;
use buttress::limit::{KeyedRateLimiter, Networks, Quota, RateLimited, RedisRateLimiter};
use buttress::policy::{InboundPolicy, Policy};

/// Where the limit is kept.
#[derive(Clone)]
pub enum Inbound {
    /// No inbound limit in the policy.
    Off,
    /// Per process.
    Local(KeyedRateLimiter<IpAddr>),
    /// In Redis, shared by replicas.
    Redis {
        /// The limiter.
        limiter: RedisRateLimiter,
        /// The networks that pass, as the policy now says.
        exempt: Arc<RwLock<Networks>>,
    },
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Inbound::Off => "Inbound::Off",
            Inbound::Local(_) => "Inbound::Local",
            Inbound::Redis { .. } => "Inbound::Redis",
        })
    }
}

fn parts(inbound: &InboundPolicy) -> Result<(Quota, Networks), buttress::BoxError> {
    Ok((
        Quota::try_from(inbound.rate)?,
        Networks::parse(&inbound.exempt)?,
    ))
}

impl Inbound {
    /// The limit `policy` declares, in Redis at `redis_url` when given.
    /// With Redis, each applied version of the policy updates the quota
    /// and the exempt networks (the local limiter is the policy's own, so
    /// it follows by itself).
    pub fn new(policy: &Policy, redis_url: Option<&str>) -> Result<Inbound, buttress::BoxError> {
        let Some(inbound) = policy.document().service.inbound else {
            return Ok(Inbound::Off);
        };
        let Some(url) = redis_url else {
            return Ok(policy
                .inbound()
                .cloned()
                .map_or(Inbound::Off, Inbound::Local));
        };
        let (quota, networks) = parts(&inbound)?;
        let limiter = RedisRateLimiter::new(url, "knowledge-api-inbound", quota)?;
        let exempt = Arc::new(RwLock::new(networks));
        let mut versions = policy.subscribe();
        let (l, e) = (limiter.clone(), exempt.clone());
        tokio::spawn(async move {
            while versions.changed().await.is_ok() {
                let applied = versions.borrow_and_update().clone();
                if let Some(Ok((quota, networks))) =
                    applied.document.service.inbound.as_ref().map(parts)
                {
                    l.set_quota(quota);
                    *e.write().unwrap_or_else(std::sync::PoisonError::into_inner) = networks;
                }
            }
        });
        Ok(Inbound::Redis { limiter, exempt })
    }

    /// Checks one request from `ip`.
    pub async fn check(&self, ip: IpAddr) -> Result<(), RateLimited> {
        match self {
            Inbound::Off => Ok(()),
            Inbound::Local(limiter) => limiter.check(&ip),
            Inbound::Redis { limiter, exempt } => {
                let passes = exempt
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .contains(&ip);
                if passes {
                    return Ok(());
                }
                limiter.check(&ip.to_string()).await
            }
        }
    }
}

/// The middleware: the peer's address is the client (this API is meant
/// to be reached directly or through a proxy that limits on its own).
pub(super) async fn limit(
    State(inbound): State<Inbound>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    match inbound.check(peer.ip()).await {
        Ok(()) => next.run(request).await,
        Err(refused) => Problem::from_error(&refused).into_response(),
    }
}
