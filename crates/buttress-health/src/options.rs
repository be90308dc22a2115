//! [`CheckOptions`]: how a check is run and how much it matters.

use std::time::Duration;

use crate::status::Criticality;

/// How a registered check is run: its criticality, its timeout (default
/// 2 s) and its interval (default 1 s: a result younger than this is
/// answered from the cache, so a flood of health requests runs one probe
/// per interval).
///
/// ```
/// use std::time::Duration;
/// use buttress_health::CheckOptions;
///
/// let llm = CheckOptions::non_critical().timeout(Duration::from_secs(5));
/// assert_eq!(llm.interval, Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckOptions {
    /// Whether the service can answer without the dependency.
    pub criticality: Criticality,
    /// The longest a probe may take; after it the check is down.
    pub timeout: Duration,
    /// How long a result is reused.
    pub interval: Duration,
    /// Whether this check, when critical and down, closes `/readyz`
    /// (default yes). See [`readiness`](CheckOptions::readiness).
    pub gates_readiness: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self::critical()
    }
}

impl CheckOptions {
    /// A check of a dependency the service cannot answer without.
    pub const fn critical() -> Self {
        Self {
            criticality: Criticality::Critical,
            timeout: Duration::from_secs(2),
            interval: Duration::from_secs(1),
            gates_readiness: true,
        }
    }

    /// A check of a dependency the service can answer without.
    pub const fn non_critical() -> Self {
        Self {
            criticality: Criticality::NonCritical,
            ..Self::critical()
        }
    }

    /// Sets the timeout (more than zero).
    #[must_use]
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how long a result is reused (zero: every request probes,
    /// though concurrent ones still share one probe).
    #[must_use]
    pub const fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets whether a critical check that is down closes `/readyz` (it
    /// always makes `/health` say `unhealthy`). Leave it on for what this
    /// replica alone cannot do without; turn it off for a dependency every
    /// replica shares and answers without, degraded (an LLM server when
    /// the passages alone are an answer): a load balancer that routes on
    /// readiness would otherwise take every replica out at once, when
    /// their degraded answers are wanted most.
    ///
    /// ```
    /// use buttress_health::CheckOptions;
    ///
    /// let llm = CheckOptions::critical().readiness(false);
    /// assert!(!llm.gates_readiness);
    /// assert!(CheckOptions::critical().gates_readiness);
    /// ```
    #[must_use]
    pub const fn readiness(mut self, gates: bool) -> Self {
        self.gates_readiness = gates;
        self
    }
}
