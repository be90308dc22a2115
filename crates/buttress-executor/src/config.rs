//! [`ExecutorConfig`]: the bounds and timeouts of an executor.

use std::time::Duration;

use crate::core::Bounds;
use crate::error::ConfigError;

/// The bounds and timeouts of an executor. Every field has a default;
/// change them with the chainable setters. Checked by
/// [`validate`](ExecutorConfig::validate), which making an executor runs
/// too.
///
/// ```
/// use std::time::Duration;
/// use buttress_executor::ExecutorConfig;
///
/// let config = ExecutorConfig::default()
///     .max_running(8)
///     .max_queued(1_000)
///     .timeout(Some(Duration::from_secs(30)))
///     .aging(Some(Duration::from_secs(10)));
/// assert!(config.validate().is_ok());
/// ```
///
/// Under the `serde` feature it loads from a configuration file, checked
/// as it loads, with durations such as `"30s"`, every key optional and no
/// unknown keys:
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use std::time::Duration;
/// use buttress_executor::ExecutorConfig;
///
/// let config: ExecutorConfig = serde_json::from_str(r#"{
///     "max_running": 8, "max_queued_per_priority": 500, "timeout": "30s", "aging": "10s"
/// }"#).unwrap();
/// assert_eq!(config, ExecutorConfig::default()
///     .max_running(8)
///     .max_queued_per_priority(Some(500))
///     .timeout(Some(Duration::from_secs(30)))
///     .aging(Some(Duration::from_secs(10))));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(
    feature = "serde",
    serde(try_from = "ExecutorConfigDoc", into = "ExecutorConfigDoc")
)]
pub struct ExecutorConfig {
    /// Tasks queued at most, in all. Default 1,000.
    pub max_queued: usize,
    /// Tasks queued at most per priority. Default: no bound of its own.
    pub max_queued_per_priority: Option<usize>,
    /// Tasks running at once at most (the bulkhead); at least 1. Default 8.
    pub max_running: usize,
    /// The timeout of each task, unless submitted with its own; above
    /// zero. Default: none.
    pub timeout: Option<Duration>,
    /// A task that has waited this long runs before any task that arrived
    /// after it, whatever their priorities: the bound on how long
    /// low-priority work can be starved. Default: none (strict priority).
    pub aging: Option<Duration>,
    /// Finished tasks remembered. Default 1,000.
    pub history: usize,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            max_queued: 1_000,
            max_queued_per_priority: None,
            max_running: 8,
            timeout: None,
            aging: None,
            history: 1_000,
        }
    }
}

impl ExecutorConfig {
    buttress_core::setters! {
        /// Sets [`max_queued`](ExecutorConfig::max_queued).
        ///
        /// ```
        /// # use buttress_executor::ExecutorConfig;
        /// assert_eq!(ExecutorConfig::default().max_queued(10_000).max_queued, 10_000);
        /// ```
        max_queued: usize,
        /// Sets [`max_queued_per_priority`](ExecutorConfig::max_queued_per_priority).
        ///
        /// ```
        /// # use buttress_executor::ExecutorConfig;
        /// let config = ExecutorConfig::default().max_queued_per_priority(Some(500));
        /// assert_eq!(config.max_queued_per_priority, Some(500));
        /// ```
        max_queued_per_priority: into Option<usize>,
        /// Sets [`max_running`](ExecutorConfig::max_running).
        ///
        /// ```
        /// # use buttress_executor::ExecutorConfig;
        /// assert_eq!(ExecutorConfig::default().max_running(4).max_running, 4);
        /// ```
        max_running: usize,
        /// Sets [`timeout`](ExecutorConfig::timeout).
        ///
        /// ```
        /// # use std::time::Duration;
        /// # use buttress_executor::ExecutorConfig;
        /// let config = ExecutorConfig::default().timeout(Some(Duration::from_secs(30)));
        /// assert_eq!(config.timeout, Some(Duration::from_secs(30)));
        /// ```
        timeout: into Option<Duration>,
        /// Sets [`aging`](ExecutorConfig::aging).
        ///
        /// ```
        /// # use std::time::Duration;
        /// # use buttress_executor::ExecutorConfig;
        /// let config = ExecutorConfig::default().aging(Some(Duration::from_secs(10)));
        /// assert_eq!(config.aging, Some(Duration::from_secs(10)));
        /// ```
        aging: into Option<Duration>,
        /// Sets [`history`](ExecutorConfig::history).
        ///
        /// ```
        /// # use buttress_executor::ExecutorConfig;
        /// assert_eq!(ExecutorConfig::default().history(100).history, 100);
        /// ```
        history: usize,
    }

    /// Whether the configuration makes sense: at least one running slot,
    /// and no zero timeout. Making an executor checks the same.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_executor::{ConfigError, ExecutorConfig};
    ///
    /// assert!(ExecutorConfig::default().validate().is_ok());
    /// let config = ExecutorConfig::default().timeout(Some(Duration::ZERO));
    /// assert_eq!(config.validate(), Err(ConfigError::ZeroTimeout));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.bounds().map(|_| ())
    }

    pub(crate) fn bounds(&self) -> Result<Bounds, ConfigError> {
        if self.max_running == 0 {
            return Err(ConfigError::ZeroMaxRunning);
        }
        if self.timeout == Some(Duration::ZERO) {
            return Err(ConfigError::ZeroTimeout);
        }
        Ok(Bounds {
            max_queued: self.max_queued,
            max_queued_per_priority: self.max_queued_per_priority,
            max_running: self.max_running,
            history: self.history,
        })
    }
}

/// An [`ExecutorConfig`] as written in a configuration file, before it is
/// checked; what is left out keeps its default.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct ExecutorConfigDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_queued: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_queued_per_priority: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_running: Option<usize>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    timeout: Option<Duration>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    aging: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    history: Option<usize>,
}

/// Written out in full, except what is absent (no per-priority bound, no
/// timeout, no aging): loading it back gives the same configuration.
#[cfg(feature = "serde")]
impl From<ExecutorConfig> for ExecutorConfigDoc {
    fn from(c: ExecutorConfig) -> Self {
        ExecutorConfigDoc {
            max_queued: Some(c.max_queued),
            max_queued_per_priority: c.max_queued_per_priority,
            max_running: Some(c.max_running),
            timeout: c.timeout,
            aging: c.aging,
            history: Some(c.history),
        }
    }
}

#[cfg(feature = "serde")]
impl TryFrom<ExecutorConfigDoc> for ExecutorConfig {
    type Error = ConfigError;

    fn try_from(doc: ExecutorConfigDoc) -> Result<Self, ConfigError> {
        let d = ExecutorConfig::default();
        let config = ExecutorConfig {
            max_queued: doc.max_queued.unwrap_or(d.max_queued),
            max_queued_per_priority: doc.max_queued_per_priority.or(d.max_queued_per_priority),
            max_running: doc.max_running.unwrap_or(d.max_running),
            timeout: doc.timeout.or(d.timeout),
            aging: doc.aging.or(d.aging),
            history: doc.history.unwrap_or(d.history),
        };
        config.validate()?;
        Ok(config)
    }
}
