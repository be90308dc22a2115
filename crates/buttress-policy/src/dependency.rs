//! One dependency's running primitives: built from its section of the
//! document, changed in place by the next one, read back into a section.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use buttress_breaker::{BreakerConfig, CircuitBreaker, Window};
use buttress_executor::Executor;
use buttress_limit::{Quota, QuotaConfig, RateLimiter};
use buttress_pressure::{AdaptiveConfig, AdaptiveLimiter};
use buttress_retry::RetryPolicy;

use crate::document::{CachePolicy, DependencyPolicy, FallbackPolicy};
use crate::error::Path;
use crate::events;
use crate::timeout::LiveTimeout;

/// The running primitives in front of one dependency, as its section of
/// the policy declares them. Cheap to clone; clones share everything.
///
/// Get one from [`Policy::dependency`](crate::Policy::dependency); put it
/// in front of a client with [`service`](Self::service).
#[derive(Clone)]
pub struct Dependency {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    critical: AtomicBool,
    timeout: Option<LiveTimeout>,
    attempt_timeout: Option<LiveTimeout>,
    retry: Option<RetryPolicy>,
    limiter: Option<(RateLimiter, ArcSwap<QuotaConfig>)>,
    shed: Option<(AdaptiveLimiter, AdaptiveConfig)>,
    executor: Option<Executor>,
    breaker: Option<CircuitBreaker>,
    fallback: Option<FallbackPolicy>,
    cache: Option<CachePolicy>,
}

impl fmt::Debug for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dependency")
            .field("name", &self.inner.name)
            .field("policy", &self.policy())
            .finish()
    }
}

/// Where a section's primitive refused to be built or changed, and why.
pub(crate) type Problems = Vec<(Path, String)>;

/// The message for a change the running primitives cannot take.
pub(crate) const RESTART: &str = "needs a restart";

impl Dependency {
    /// Builds the primitives `policy` declares, named `name`.
    pub(crate) fn build(
        name: &str,
        policy: &DependencyPolicy,
        at: &Path,
        events: &events::Sender,
    ) -> Result<Self, Problems> {
        let mut problems = Vec::new();
        let mut note = |key: &str, e: &dyn fmt::Display| {
            problems.push((at.clone().key(key), e.to_string()));
        };
        let retry = policy.retry.clone().and_then(|c| {
            RetryPolicy::new(name, c)
                .map_err(|e| note("retry", &e))
                .ok()
        });
        let limiter = policy.rate_limit.and_then(|q| {
            Quota::try_from(q)
                .map_err(|e| e.to_string())
                .and_then(|quota| RateLimiter::new(name, quota).map_err(|e| e.to_string()))
                .map(|l| (l, ArcSwap::from_pointee(q)))
                .map_err(|e| note("rate_limit", &e))
                .ok()
        });
        let shed = policy.shed.clone().and_then(|c| {
            c.build()
                .map_err(|e| e.to_string())
                .and_then(|a| AdaptiveLimiter::new(name, a).map_err(|e| e.to_string()))
                .map(|l| (l, c))
                .map_err(|e| note("shed", &e))
                .ok()
        });
        let executor = policy.concurrency.clone().and_then(|c| {
            Executor::new(name, c)
                .map_err(|e| {
                    note(
                        "concurrency",
                        &format!("{e}: build the policy inside a tokio runtime"),
                    )
                })
                .ok()
        });
        let breaker = policy.breaker.clone().and_then(|c| {
            CircuitBreaker::builder(name)
                .config(c)
                .on_state_change(events::forward(events.clone()))
                .build()
                .map_err(|e| note("breaker", &e))
                .ok()
        });
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Dependency {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                critical: AtomicBool::new(policy.critical),
                timeout: policy.timeout.map(LiveTimeout::new),
                attempt_timeout: policy.attempt_timeout.map(LiveTimeout::new),
                retry,
                limiter,
                shed,
                executor,
                breaker,
                fallback: policy.fallback.clone(),
                cache: policy.cache.clone(),
            }),
        })
    }

    /// The changes from `old` to `new` that the running primitives cannot
    /// take: a layer added or removed, a new window shape, a new retry
    /// budget, a new fallback or cache.
    pub(crate) fn unchangeable(
        old: &DependencyPolicy,
        new: &DependencyPolicy,
        at: &Path,
    ) -> Problems {
        let mut out = Vec::new();
        let mut presence = |key: &str, before: bool, after: bool| {
            if before != after {
                let what = if after { "adding" } else { "removing" };
                out.push((
                    at.clone().key(key),
                    format!("{what} a layer of a running stack {RESTART}"),
                ));
            }
        };
        presence("timeout", old.timeout.is_some(), new.timeout.is_some());
        presence(
            "attempt_timeout",
            old.attempt_timeout.is_some(),
            new.attempt_timeout.is_some(),
        );
        presence("retry", old.retry.is_some(), new.retry.is_some());
        presence(
            "rate_limit",
            old.rate_limit.is_some(),
            new.rate_limit.is_some(),
        );
        presence(
            "concurrency",
            old.concurrency.is_some(),
            new.concurrency.is_some(),
        );
        presence("breaker", old.breaker.is_some(), new.breaker.is_some());
        presence("fallback", old.fallback.is_some(), new.fallback.is_some());
        presence("cache", old.cache.is_some(), new.cache.is_some());
        if let (Some(a), Some(b)) = (&old.breaker, &new.breaker)
            && window_shape(a) != window_shape(b)
        {
            out.push((
                at.clone().key("breaker").key("window"),
                format!(
                    "a new window shape (or adding or dropping every rate rule) {RESTART}: the counts in the window cannot be carried over"
                ),
            ));
        }
        if let (Some(a), Some(b)) = (&old.retry, &new.retry)
            && a.budget != b.budget
        {
            out.push((
                at.clone().key("retry").key("budget"),
                format!("a new budget {RESTART}: its balance cannot be carried over"),
            ));
        }
        if let (Some(a), Some(b)) = (&old.shed, &new.shed)
            && a != b
        {
            out.push((
                at.clone().key("shed"),
                format!("a new shed {RESTART}: the limit it learned cannot be carried over"),
            ));
        }
        if let (Some(a), Some(b)) = (&old.fallback, &new.fallback)
            && a != b
        {
            out.push((
                at.clone().key("fallback"),
                format!("a new fallback {RESTART}"),
            ));
        }
        if let (Some(a), Some(b)) = (&old.cache, &new.cache)
            && a != b
        {
            out.push((at.clone().key("cache"), format!("a new cache {RESTART}")));
        }
        out
    }

    /// Puts `policy` in force. Called only with a policy that passed
    /// [`unchangeable`](Self::unchangeable) and validation, so each change
    /// is one the primitive accepts; each primitive switches whole.
    pub(crate) fn reconfigure(&self, policy: &DependencyPolicy) {
        let inner = &*self.inner;
        inner.critical.store(policy.critical, Ordering::Relaxed);
        if let (Some(t), Some(d)) = (&inner.timeout, policy.timeout) {
            t.set(d);
        }
        if let (Some(t), Some(d)) = (&inner.attempt_timeout, policy.attempt_timeout) {
            t.set(d);
        }
        let refused = |what: &str, e: &dyn fmt::Display| {
            tracing::error!(dependency = %inner.name, "{what} refused a checked change: {e}");
        };
        if let (Some(r), Some(c)) = (&inner.retry, &policy.retry)
            && let Err(e) = r.reconfigure(c.clone())
        {
            refused("retry", &e);
        }
        if let (Some((l, declared)), Some(q)) = (&inner.limiter, policy.rate_limit) {
            match Quota::try_from(q) {
                Ok(quota) => {
                    l.set_quota(quota);
                    declared.store(Arc::new(q));
                }
                Err(e) => refused("rate limit", &e),
            }
        }
        if let (Some(x), Some(c)) = (&inner.executor, &policy.concurrency)
            && let Err(e) = x.reconfigure(c.clone())
        {
            refused("concurrency", &e);
        }
        if let (Some(b), Some(c)) = (&inner.breaker, &policy.breaker)
            && let Err(e) = b.reconfigure(c.clone())
        {
            refused("breaker", &e);
        }
    }

    /// The section as the running primitives have it: each read back from
    /// its primitive, so it shows what is in force.
    pub fn policy(&self) -> DependencyPolicy {
        let inner = &*self.inner;
        DependencyPolicy {
            critical: self.is_critical(),
            timeout: inner.timeout.as_ref().map(LiveTimeout::get),
            attempt_timeout: inner.attempt_timeout.as_ref().map(LiveTimeout::get),
            retry: inner.retry.as_ref().map(RetryPolicy::config),
            rate_limit: inner
                .limiter
                .as_ref()
                .map(|(l, declared)| as_declared(l.quota(), **declared.load())),
            shed: inner.shed.as_ref().map(|(_, c)| c.clone()),
            concurrency: inner.executor.as_ref().map(Executor::config),
            breaker: inner.breaker.as_ref().map(CircuitBreaker::config),
            fallback: inner.fallback.clone(),
            cache: inner.cache.clone(),
        }
    }

    /// The dependency's name: the `name` of each of its primitives.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Whether the service is not ready while this dependency is down.
    pub fn is_critical(&self) -> bool {
        self.inner.critical.load(Ordering::Relaxed)
    }

    /// The circuit breaker, if the policy has one.
    pub fn breaker(&self) -> Option<&CircuitBreaker> {
        self.inner.breaker.as_ref()
    }

    /// The retry policy, if the policy has one.
    pub fn retry(&self) -> Option<&RetryPolicy> {
        self.inner.retry.as_ref()
    }

    /// The rate limiter, if the policy has one.
    pub fn limiter(&self) -> Option<&RateLimiter> {
        self.inner.limiter.as_ref().map(|(l, _)| l)
    }

    /// The adaptive concurrency limit that sheds load, if the policy has
    /// one.
    pub fn shed(&self) -> Option<&AdaptiveLimiter> {
        self.inner.shed.as_ref().map(|(l, _)| l)
    }

    /// The bulkhead's executor, if the policy has one.
    pub fn executor(&self) -> Option<&Executor> {
        self.inner.executor.as_ref()
    }

    /// The whole-call timeout, if the policy has one.
    pub fn timeout(&self) -> Option<Duration> {
        self.inner.timeout.as_ref().map(LiveTimeout::get)
    }

    /// The one-attempt timeout, if the policy has one.
    pub fn attempt_timeout(&self) -> Option<Duration> {
        self.inner.attempt_timeout.as_ref().map(LiveTimeout::get)
    }

    pub(crate) fn timeouts(&self) -> (Option<&LiveTimeout>, Option<&LiveTimeout>) {
        (
            self.inner.timeout.as_ref(),
            self.inner.attempt_timeout.as_ref(),
        )
    }

    pub(crate) fn fallback_policy(&self) -> Option<&FallbackPolicy> {
        self.inner.fallback.as_ref()
    }

    pub(crate) fn cache_policy(&self) -> Option<&CachePolicy> {
        self.inner.cache.as_ref()
    }
}

/// The quota as the document declared it, when the limiter still runs
/// that quota; otherwise the limiter's own, written as a count per period.
pub(crate) fn as_declared(running: Quota, declared: QuotaConfig) -> QuotaConfig {
    if Quota::try_from(declared) == Ok(running) {
        return declared;
    }
    let burst = running.burst();
    QuotaConfig {
        count: u64::from(burst),
        per: running.interval().saturating_mul(burst),
        burst: None,
    }
}

/// What must stay the same for a breaker to change live: the window, if
/// a rate rule needs one.
fn window_shape(c: &BreakerConfig) -> Option<Window> {
    (c.failure_rate_threshold.is_some() || c.slow_call_rate_threshold.is_some()).then_some(c.window)
}
