//! What an admin surface follows: the policy's primitives, and whatever
//! else a program registers.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use buttress_breaker::CircuitBreaker;
use buttress_executor::Executor;
use buttress_health::Health;
use buttress_journal::Journal;
use buttress_limit::{KeyedRateLimiter, RateLimiter};
use buttress_policy::Policy;
use buttress_pressure::{Gauge, LagGauge};

use crate::status::{self, LimiterStatus, Status};

/// The admin surface of one service: a [`Status`] of every breaker,
/// limiter, gauge, executor, journal and lag gauge it follows, the policy
/// to read and replace, the breakers to force open, disable and reset,
/// and the [`router`](Self::router) that serves all of it with the live
/// status page.
///
/// Everything the [`Policy`] runs is followed at once; register the rest.
///
/// ```
/// use buttress_admin::Admin;
/// use buttress_policy::{Format, Policy};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let policy = Policy::from_text(r#"
/// [dependencies.llm]
/// breaker = { consecutive_failures = 3, failure_rate_threshold = "off" }
/// "#, Format::Toml)?;
/// let admin = Admin::new(policy);
/// let status = admin.snapshot();
/// assert_eq!(status.breakers[0].name, "llm");
/// assert_eq!(status.open_breakers, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct Admin {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Clone)]
pub(crate) struct Inner {
    pub(crate) policy: Option<Policy>,
    breakers: Vec<CircuitBreaker>,
    limiters: Vec<LimiterSource>,
    gauges: Vec<Gauge>,
    executors: Vec<Executor>,
    journals: Vec<Journal>,
    lags: Vec<(String, LagGauge)>,
    pub(crate) health: Option<Health>,
    pub(crate) token: Option<String>,
    /// The admin routes' own rate limit.
    pub(crate) limiter: RateLimiter,
}

type LimiterSource = Arc<dyn Fn() -> LimiterStatus + Send + Sync>;

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin")
            .field("policy", &self.inner.policy.is_some())
            .field("breakers", &self.inner.breakers.len())
            .field("token", &self.inner.token.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// An admin surface for `policy`: its dependencies' breakers, limiters
    /// and bulkheads, its inbound limiter and its backpressure gauge.
    pub fn new(policy: Policy) -> Admin {
        Admin::from_inner(Some(policy))
    }

    /// An admin surface with no policy: register what it should follow.
    /// `/admin/config` answers `404`.
    pub fn without_policy() -> Admin {
        Admin::from_inner(None)
    }

    fn from_inner(policy: Option<Policy>) -> Admin {
        Admin {
            inner: Arc::new(Inner {
                policy,
                breakers: Vec::new(),
                limiters: Vec::new(),
                gauges: Vec::new(),
                executors: Vec::new(),
                journals: Vec::new(),
                lags: Vec::new(),
                health: None,
                token: None,
                limiter: crate::guard::limiter(),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> Admin {
        // Built before it is shared, so this is no copy in practice; a
        // shared clone stays as it was.
        f(Arc::make_mut(&mut self.inner));
        self
    }

    /// Follows a breaker the policy does not run.
    pub fn breaker(self, breaker: CircuitBreaker) -> Admin {
        self.edit(|i| i.breakers.push(breaker))
    }

    /// Follows a rate limiter the policy does not run.
    pub fn limiter(self, limiter: RateLimiter) -> Admin {
        self.edit(|i| i.limiters.push(Arc::new(move || status::limiter(&limiter))))
    }

    /// Follows a keyed rate limiter (one bucket per client) the policy does
    /// not run.
    pub fn keyed_limiter<K>(self, limiter: KeyedRateLimiter<K>) -> Admin
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
    {
        self.edit(|i| i.limiters.push(Arc::new(move || status::keyed(&limiter))))
    }

    /// Follows a gauge the policy does not run.
    pub fn gauge(self, gauge: Gauge) -> Admin {
        self.edit(|i| i.gauges.push(gauge))
    }

    /// Follows an executor the policy does not run.
    pub fn executor(self, executor: Executor) -> Admin {
        self.edit(|i| i.executors.push(executor))
    }

    /// Follows a journal: the bytes it has accepted but not yet written.
    pub fn journal(self, journal: Journal) -> Admin {
        self.edit(|i| i.journals.push(journal))
    }

    /// Follows a lag gauge (pending items per kind, and the oldest's age),
    /// under `name`.
    pub fn lag(self, name: impl Into<String>, lag: LagGauge) -> Admin {
        let name = name.into();
        self.edit(|i| i.lags.push((name, lag)))
    }

    /// Adds the health report to the status.
    pub fn health(self, health: Health) -> Admin {
        self.edit(|i| i.health = Some(health))
    }

    /// Lets clients anywhere in with `Authorization: Bearer <token>`.
    /// Without a token, only clients on this machine (loopback addresses)
    /// are let in.
    pub fn token(self, token: impl Into<String>) -> Admin {
        let token = token.into();
        self.edit(|i| i.token = Some(token))
    }

    /// The policy, if there is one.
    pub fn policy(&self) -> Option<&Policy> {
        self.inner.policy.as_ref()
    }

    /// Every breaker followed, the policy's first, with whether the service
    /// is not ready while it is open (`None` when not a policy dependency).
    pub(crate) fn breakers(&self) -> Vec<(CircuitBreaker, Option<bool>)> {
        let mut out: Vec<(CircuitBreaker, Option<bool>)> = Vec::new();
        if let Some(p) = &self.inner.policy {
            for d in p.dependencies() {
                if let Some(b) = d.breaker() {
                    out.push((b.clone(), Some(d.is_critical())));
                }
            }
        }
        out.extend(self.inner.breakers.iter().map(|b| (b.clone(), None)));
        out
    }

    /// The breaker named `name`.
    pub fn find_breaker(&self, name: &str) -> Option<CircuitBreaker> {
        self.find(name).map(|(b, _)| b)
    }

    /// The breaker named `name`, with its criticality (as
    /// [`breakers`](Self::breakers) gives it).
    pub(crate) fn find(&self, name: &str) -> Option<(CircuitBreaker, Option<bool>)> {
        self.breakers()
            .into_iter()
            .find(|(b, _)| b.name().as_str() == name)
    }

    /// The status of the breaker named `name`, now.
    pub(crate) fn breaker_status(&self, name: &str) -> Option<crate::BreakerStatus> {
        self.find(name)
            .map(|(b, critical)| status::breaker(&b, critical))
    }

    /// The status of everything followed, but health (which may run
    /// checks): what the page and `/admin/status` show, without waiting.
    pub fn snapshot(&self) -> Status {
        let i = &*self.inner;
        let policy = i.policy.as_ref();
        let breakers: Vec<_> = self
            .breakers()
            .iter()
            .map(|(b, critical)| status::breaker(b, *critical))
            .collect();
        let mut limiters = Vec::new();
        let mut shed = Vec::new();
        let mut gauges = Vec::new();
        let mut executors = Vec::new();
        if let Some(p) = policy {
            if let Some(inbound) = p.inbound() {
                limiters.push(status::keyed(inbound));
            }
            if let Some(g) = p.backpressure() {
                gauges.push(status::gauge(g));
            }
            for d in p.dependencies() {
                limiters.extend(d.limiter().map(status::limiter));
                shed.extend(d.shed().map(status::shed));
                executors.extend(d.executor().map(status::executor));
            }
        }
        limiters.extend(i.limiters.iter().map(|f| f()));
        gauges.extend(i.gauges.iter().map(status::gauge));
        executors.extend(i.executors.iter().map(status::executor));
        let current = policy.map(|p| p.current());
        Status {
            service: current
                .as_ref()
                .and_then(|a| a.document.service.name.clone()),
            policy_version: current.as_ref().map(|a| a.version),
            open_breakers: breakers.iter().filter(|b| status::is_open(b.state)).count(),
            breakers,
            limiters,
            shed,
            gauges,
            executors,
            journals: i.journals.iter().map(status::journal).collect(),
            lags: i.lags.iter().map(|(n, l)| status::lag(n, l)).collect(),
            health: None,
        }
    }

    /// The health report's summary, when a `Health` is registered: the
    /// overall status, each check's state and readiness, without the
    /// timings and details (the live page's health panel, sent only when
    /// it changes). Checks answer from their caches while fresh.
    pub(crate) async fn health_summary(&self) -> Option<serde_json::Value> {
        let health = self.inner.health.as_ref()?;
        let mut report = health.report().await.to_json();
        if let serde_json::Value::Object(map) = &mut report {
            map.retain(|_, v| v.is_string() || v.is_boolean());
        }
        Some(report)
    }

    /// [`snapshot`](Self::snapshot), with the health report when a
    /// `Health` is registered.
    pub async fn status(&self) -> Status {
        let mut status = self.snapshot();
        if let Some(h) = &self.inner.health {
            status.health = Some(h.report().await.to_json());
        }
        status
    }
}
