//! The policy document: what a file says, as typed data.
//!
//! Each section reuses the configuration type of its primitive, so a key
//! means the same here as in that crate's docs, and every section refuses
//! keys it does not know.

use std::collections::BTreeMap;
use std::time::Duration;

use buttress_breaker::BreakerConfig;
use buttress_executor::ExecutorConfig;
use buttress_limit::QuotaConfig;
use buttress_pressure::{AdaptiveConfig, GaugeConfig};
use buttress_retry::RetryConfig;
use serde::{Deserialize, Serialize};

/// A service's whole resilience policy: the service's own parts and, per
/// dependency, the stack of policies in front of it.
///
/// ```
/// use buttress_policy::{Format, PolicyDocument};
///
/// let doc = PolicyDocument::parse(r#"
/// [service]
/// name = "knowledge-api"
///
/// [dependencies.llm]
/// timeout = "30s"
/// breaker = { consecutive_failures = 3, open = { kind = "fixed", duration = "120s" } }
/// "#, Format::Toml)?;
/// assert_eq!(doc.dependencies["llm"].timeout, Some(std::time::Duration::from_secs(30)));
/// # Ok::<(), buttress_policy::DocumentError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PolicyDocument {
    /// The service's own parts: inbound limit, backpressure, checkpoints.
    #[serde(default)]
    pub service: ServicePolicy,
    /// Each dependency by name (the `name` label of its metrics), with the
    /// policies in front of it.
    #[serde(default)]
    pub dependencies: BTreeMap<String, DependencyPolicy>,
}

/// The parts of a policy that belong to the service rather than to one
/// dependency.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServicePolicy {
    /// The service's name, for logs and the admin page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A rate limit per client IP address on incoming requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound: Option<InboundPolicy>,
    /// The watermarks of the service's backpressure gauge (bytes or items
    /// of unprocessed work: `"100MB"`, `50000`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backpressure: Option<GaugeConfig>,
    /// How often a consumer saves its progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointPolicy>,
}

/// A rate limit per client IP address, with networks that are exempt.
///
/// ```toml
/// [service.inbound]
/// rate = { count = 150, per = "1m" }
/// exempt = ["127.0.0.0/8", "::1/128"]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct InboundPolicy {
    /// Requests per period per client, with an optional burst.
    pub rate: QuotaConfig,
    /// Networks (CIDR, or a bare address) never limited. Default: the
    /// loopback networks, so health probes and local tools always pass.
    #[serde(default = "loopback")]
    pub exempt: Vec<String>,
}

impl InboundPolicy {
    /// `rate` for every client outside the loopback networks.
    pub fn new(rate: QuotaConfig) -> Self {
        Self {
            rate,
            exempt: loopback(),
        }
    }
}

fn loopback() -> Vec<String> {
    vec!["127.0.0.0/8".to_owned(), "::1/128".to_owned()]
}

/// When a consumer saves its progress: after so many events, after so much
/// time, or whichever comes first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CheckpointPolicy {
    /// Save after this many events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_events: Option<u64>,
    /// Save after this long, if anything happened.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub every: Option<Duration>,
}

/// The policies in front of one dependency. Each is optional; the stack
/// holds the ones present, always in the order of [`crate::stack`]'s docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DependencyPolicy {
    /// Whether the service is not ready while this dependency is down.
    /// Default: true.
    #[serde(default = "yes")]
    pub critical: bool,
    /// The longest a call may take in all, retries and their waits
    /// included.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// The longest one attempt may take; below the breaker, so that a hung
    /// attempt counts as the failure it is.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub attempt_timeout: Option<Duration>,
    /// Retries with backoff and a budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryConfig>,
    /// A limit on calls to the dependency (each attempt counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<QuotaConfig>,
    /// Load shedding: an adaptive concurrency limit (`algorithm = "aimd"`,
    /// `"vegas"` or `"gradient2"`) that learns from latency how many calls
    /// the dependency takes at once, and refuses the rest at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shed: Option<AdaptiveConfig>,
    /// A bulkhead: calls running at once, and a bounded priority queue for
    /// the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<ExecutorConfig>,
    /// The circuit breaker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerConfig>,
    /// A degraded answer when the call fails for one of these reasons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<FallbackPolicy>,
    /// A stale-if-error cache of answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CachePolicy>,
}

impl Default for DependencyPolicy {
    fn default() -> Self {
        Self {
            critical: true,
            timeout: None,
            attempt_timeout: None,
            retry: None,
            rate_limit: None,
            shed: None,
            concurrency: None,
            breaker: None,
            fallback: None,
            cache: None,
        }
    }
}

fn yes() -> bool {
    true
}

/// When the fallback answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FallbackPolicy {
    /// The reasons it answers for (`error`, `timed_out`, `circuit_open`,
    /// `rate_limited`, `overloaded`, `queue_full`, `shutting_down`,
    /// `not_ready`, `failed`). Default: all of them.
    #[serde(default = "all_reasons")]
    pub on: Vec<String>,
}

impl Default for FallbackPolicy {
    fn default() -> Self {
        Self { on: all_reasons() }
    }
}

/// Every reason, by name.
pub(crate) const REASONS: [&str; 9] = [
    "error",
    "timed_out",
    "circuit_open",
    "rate_limited",
    "overloaded",
    "queue_full",
    "shutting_down",
    "not_ready",
    "failed",
];

fn all_reasons() -> Vec<String> {
    REASONS.iter().map(|&r| r.to_owned()).collect()
}

/// A stale-if-error cache of a dependency's answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CachePolicy {
    /// How long an answer is fresh. Default 5 minutes.
    #[serde(default = "five_minutes", with = "humantime_serde")]
    pub ttl: Duration,
    /// How long past its TTL an answer may still be served, marked
    /// degraded, while the dependency fails. Default 1 hour.
    #[serde(default = "one_hour", with = "humantime_serde")]
    pub stale_if_error: Duration,
    /// Entries kept at most. Default 10,000.
    #[serde(default = "ten_thousand")]
    pub max_entries: u64,
}

impl Default for CachePolicy {
    fn default() -> Self {
        Self {
            ttl: five_minutes(),
            stale_if_error: one_hour(),
            max_entries: ten_thousand(),
        }
    }
}

fn five_minutes() -> Duration {
    Duration::from_secs(300)
}

fn one_hour() -> Duration {
    Duration::from_secs(3600)
}

fn ten_thousand() -> u64 {
    10_000
}
