//! A dependency's tower stack, always in one order.
//!
//! Outermost first:
//!
//! | layer | why here |
//! |---|---|
//! | fallback ([`Dependency::fallback`]) | it answers only for what nothing inside could fix |
//! | stale cache ([`Dependency::cached`]) | a stale answer is served after the retries gave up, not instead of them; identical requests share one trip through everything below |
//! | `timeout` | the caller's whole budget: retries and their waits included, so a 30 s request never runs a 60 s retry |
//! | `retry` | each attempt goes through everything below, so the rate limit and the breaker see every attempt, and the budget bounds how many there are |
//! | `rate_limit` | a quota on attempts, above the breaker so a local refusal is never counted as the dependency failing |
//! | `shed` | the adaptive concurrency limit: it learns from the latency of each attempt and refuses what is over, above the breaker for the same reason |
//! | `concurrency` | the bulkhead, above the breaker for the same reason; a queued call waits here, not inside the breaker's count |
//! | `breaker` | closest to the dependency: it counts only what the dependency did |
//! | `attempt_timeout` | below the breaker, so a hung attempt is a failure the breaker counts, not a call it never hears of |
//!
//! Every layer reads its settings from the running primitive, so a new
//! document changes them in place: the stack is built once.

use std::hash::Hash;

use buttress_core::BoxError;
use buttress_degrade::{
    Backup, CacheConfigError, CacheLayer, Fallback, FallbackLayer, Mark, Reason, Reasons,
    StaleCache,
};
use buttress_executor::ExecutorLayer;
use buttress_limit::RateLimitLayer;
use buttress_pressure::AdaptiveLimitLayer;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;
use tower_service::Service;

use crate::dependency::Dependency;

/// The service a dependency's stack gives: boxed, cloneable, `Send + Sync`,
/// with every error a [`BoxError`].
pub type Stacked<Req, Res> = BoxCloneSyncService<Req, Res, BoxError>;

/// Why a stack could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// The stale cache refused its settings.
    #[error("the stale cache of `{dependency}` could not be built")]
    Cache {
        /// The dependency.
        dependency: String,
        /// Why.
        #[source]
        source: CacheConfigError,
    },
    /// The fallback's name was refused.
    #[error("the fallback of `{dependency}` could not be built")]
    Fallback {
        /// The dependency.
        dependency: String,
        /// Why.
        #[source]
        source: buttress_core::NameError,
    },
}

impl Dependency {
    /// Puts this dependency's timeout, retries, rate limit, shed, bulkhead,
    /// breaker and attempt timeout (those its policy declares, in the
    /// order of [`crate::stack`]) in front of `inner`.
    ///
    /// Requests must be `Clone` (a retry sends a copy). A failure is any
    /// `Err`; map error statuses to errors in `inner` (an HTTP client's
    /// `error_for_status`), so the breaker and the retries see them.
    ///
    /// ```
    /// use buttress_policy::{Format, Policy};
    /// use tower::{ServiceExt, service_fn};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(async {
    /// let policy = Policy::from_text(r#"
    /// [dependencies.db]
    /// timeout = "5s"
    /// breaker = { consecutive_failures = 5 }
    /// "#, Format::Toml)?;
    /// let db = policy.dependency("db").expect("declared");
    /// let svc = db.service(service_fn(|id: u32| async move { Ok::<_, std::io::Error>(id * 2) }));
    /// assert_eq!(svc.oneshot(21).await?, 42);
    /// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(()) }).unwrap();
    /// ```
    pub fn service<S, Req>(&self, inner: S) -> Stacked<Req, S::Response>
    where
        S: Service<Req> + Clone + Send + Sync + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        S::Response: Send + 'static,
        Req: Clone + Send + Sync + 'static,
    {
        let (timeout, attempt_timeout) = self.timeouts();
        let svc = ServiceBuilder::new()
            .option_layer(timeout.map(|t| t.layer()))
            .option_layer(self.retry().map(|r| r.layer()))
            .option_layer(self.limiter().map(|l| RateLimitLayer::new(l.clone())))
            .option_layer(self.shed().map(|l| AdaptiveLimitLayer::new(l.clone())))
            .option_layer(self.executor().map(|e| {
                ExecutorLayer::new(e.clone(), same_priority::<Req> as fn(&Req) -> u8).in_place()
            }))
            .option_layer(self.breaker().map(|b| b.layer()))
            .option_layer(attempt_timeout.map(|t| t.layer()))
            .map_err(Into::<BoxError>::into)
            .service(inner);
        BoxCloneSyncService::new(svc)
    }

    /// Puts this dependency's stale cache, if its policy declares one, in
    /// front of `svc` (a [`service`](Self::service) stack): fresh answers
    /// for `ttl`, stale ones (marked degraded) for `stale_if_error` while
    /// the calls below fail, one call for many identical requests. `key`
    /// says which requests are the same (`None`: do not cache this one).
    /// Without a cache in the policy, `svc` is returned as it is.
    ///
    /// Each call builds a cache of its own: build the stack once and clone
    /// the service.
    pub fn cached<Req, Res, K, F>(
        &self,
        svc: Stacked<Req, Res>,
        key: F,
    ) -> Result<Stacked<Req, Res>, StackError>
    where
        Req: Send + 'static,
        Res: Clone + Mark + Send + Sync + 'static,
        K: Hash + Eq + Send + Sync + 'static,
        F: Fn(&Req) -> Option<K> + Clone + Send + Sync + 'static,
    {
        let Some(policy) = self.cache_policy() else {
            return Ok(svc);
        };
        let cache = StaleCache::<K, Res>::builder(self.name())
            .ttl(policy.ttl)
            .stale_if_error(policy.stale_if_error)
            .max_entries(policy.max_entries)
            .build()
            .map_err(|source| StackError::Cache {
                dependency: self.name().to_owned(),
                source,
            })?;
        let svc = ServiceBuilder::new()
            .layer(CacheLayer::new(cache, key))
            .service(svc);
        Ok(BoxCloneSyncService::new(svc))
    }

    /// Puts this dependency's fallback, if its policy declares one, in
    /// front of `svc`: `backup` answers, marked degraded, when a call fails
    /// for one of the policy's reasons. Without a fallback in the policy,
    /// `svc` is returned as it is.
    pub fn fallback<Req, Res, B>(
        &self,
        svc: Stacked<Req, Res>,
        backup: B,
    ) -> Result<Stacked<Req, Res>, StackError>
    where
        Req: Send + 'static,
        Res: Mark + Send + 'static,
        B: Backup<Req, Res, BoxError> + Send + Sync + 'static,
        B::Saved: Send + 'static,
        B::Future: Send + 'static,
    {
        let Some(policy) = self.fallback_policy() else {
            return Ok(svc);
        };
        let reasons = policy
            .on
            .iter()
            .filter_map(|r| reason_named(r))
            .fold(Reasons::NONE, Reasons::with);
        let fallback = Fallback::new(self.name())
            .map_err(|source| StackError::Fallback {
                dependency: self.name().to_owned(),
                source,
            })?
            .on(reasons);
        let svc = ServiceBuilder::new()
            .layer(FallbackLayer::new(fallback, backup))
            .service(svc);
        Ok(BoxCloneSyncService::new(svc))
    }
}

/// Every call waits in the bulkhead's queue in arrival order.
fn same_priority<Req>(_: &Req) -> u8 {
    0
}

/// The reason a policy names (the names [`Reason::as_str`] gives).
pub(crate) fn reason_named(name: &str) -> Option<Reason> {
    use buttress_core::RejectionKind as K;
    let kinds = [
        K::TimedOut,
        K::CircuitOpen,
        K::RateLimited,
        K::Overloaded,
        K::QueueFull,
        K::ShuttingDown,
        K::NotReady,
        K::Failed,
    ];
    std::iter::once(Reason::Error)
        .chain(kinds.into_iter().map(Reason::Refused))
        .find(|r| r.as_str() == name)
}
