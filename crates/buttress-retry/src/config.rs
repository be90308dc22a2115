//! Configuration: plain data, validated into the rules the core runs.

use std::time::Duration;

use crate::backoff::Backoff;
use crate::budget::BudgetError;

/// Which retry budget a policy shares between its clones.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)
)]
#[non_exhaustive]
pub enum BudgetConfig {
    /// No budget: only the attempt limit and the deadline bound retries.
    None,
    /// Retries up to `ratio` of original requests plus `min_per_second`,
    /// over `window` (Finagle, Envoy). See [`RatioBudget`](crate::RatioBudget).
    Ratio {
        /// Retries per original request (0.2 = 20 %).
        ratio: f64,
        /// Retries per second allowed regardless of traffic.
        min_per_second: f64,
        /// How long deposits and withdrawals count.
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        window: Duration,
    },
    /// gRPC throttling. See [`Throttle`](crate::Throttle).
    Throttle {
        /// Tokens when healthy.
        max_tokens: f64,
        /// Tokens regained per successful attempt.
        token_ratio: f64,
    },
}

impl Default for BudgetConfig {
    /// 10 % of requests plus 10 retries a second, over 10 s. Finagle's
    /// ratio is 20 %; half of it keeps a total outage at about 1.2 calls
    /// per request even after a healthy period has filled the budget (see
    /// the crate's `guide`).
    fn default() -> Self {
        Self::Ratio {
            ratio: 0.1,
            min_per_second: 10.0,
            window: Duration::from_secs(10),
        }
    }
}

/// A whole retry policy, as data.
///
/// Defaults: 3 attempts in all, full jitter from 100 ms doubling to 10 s,
/// `Retry-After` honoured, no deadline or per-attempt timeout, and a budget
/// of 10 % of requests plus 10 retries a second over 10 s.
///
/// Start from [`Default`] or a preset and change fields with the chainable
/// setters (one per field); the fields stay public for reading:
///
/// ```
/// use std::time::Duration;
/// use buttress_retry::{BudgetConfig, RetryConfig, RetryPolicy};
///
/// let cfg = RetryConfig::default()
///     .max_attempts(5)
///     .deadline(Duration::from_secs(30))
///     .budget(BudgetConfig::None);
/// cfg.validate()?;
/// let policy = RetryPolicy::new("search", cfg)?;
/// assert_eq!(policy.max_attempts(), 5);
/// # Ok::<(), buttress_retry::ConfigError>(())
/// ```
///
/// Under the `serde` feature it loads from a file with durations such as
/// `"250ms"`; unknown fields are refused:
///
/// ```
/// # #[cfg(feature = "serde")] {
/// let cfg: buttress_retry::RetryConfig = serde_json::from_str(r#"{
///     "max_attempts": 4,
///     "backoff": { "kind": "full_jitter", "base": "100ms", "factor": 2.0, "max": "5s" },
///     "deadline": "30s"
/// }"#).unwrap();
/// cfg.validate().unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
#[non_exhaustive]
pub struct RetryConfig {
    /// The most attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// The delays between attempts.
    pub backoff: Backoff,
    /// The longest a call may take in all, retries and waits included. No
    /// sleep is started that would end past it: the retry gives up early
    /// with the last error.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub deadline: Option<Duration>,
    /// The longest one attempt may take; a slower attempt is cancelled and
    /// counts as a retryable failure.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub attempt_timeout: Option<Duration>,
    /// Wait at least as long as a server's `Retry-After` (or an open
    /// breaker's `retry_after`); give up at once when it is longer than
    /// `max_retry_after` or lies past the deadline, since an earlier retry
    /// would only be refused again.
    pub honor_retry_after: bool,
    /// The longest `Retry-After` the policy waits for. `None` (the
    /// default): the backoff's maximum delay. A retry in front of a
    /// breaker that opens for 60 s needs at least `"60s"` here to wait
    /// the breaker out; with less it stops at the first refusal.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub max_retry_after: Option<Duration>,
    /// The budget shared by every clone of the policy.
    pub budget: BudgetConfig,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff: Backoff::default(),
            deadline: None,
            attempt_timeout: None,
            honor_retry_after: true,
            max_retry_after: None,
            budget: BudgetConfig::default(),
        }
    }
}

/// Setters, one per field.
impl RetryConfig {
    buttress_core::setters! {
        /// Sets the `max_attempts` field: the most attempts in all, the first
        /// included.
        ///
        /// ```
        /// use buttress_retry::RetryConfig;
        /// let cfg = RetryConfig::default().max_attempts(5);
        /// assert_eq!(cfg.max_attempts, 5);
        /// ```
        max_attempts: u32,
        /// Sets the `backoff` field: the delays between attempts.
        ///
        /// ```
        /// use std::time::Duration;
        /// use buttress_retry::{Backoff, RetryConfig};
        /// let cfg = RetryConfig::default().backoff(Backoff::Constant { delay: Duration::from_secs(1) });
        /// assert_eq!(cfg.backoff.max(), Duration::from_secs(1));
        /// ```
        backoff: Backoff,
        /// Sets the `deadline` field: the longest a call may take in all;
        /// `None` for no deadline.
        ///
        /// ```
        /// use std::time::Duration;
        /// use buttress_retry::RetryConfig;
        /// let cfg = RetryConfig::default().deadline(Duration::from_secs(30));
        /// assert_eq!(cfg.deadline, Some(Duration::from_secs(30)));
        /// ```
        deadline: into Option<Duration>,
        /// Sets the `attempt_timeout` field: the longest one attempt may take;
        /// `None` for no limit.
        ///
        /// ```
        /// use std::time::Duration;
        /// use buttress_retry::RetryConfig;
        /// let cfg = RetryConfig::default().attempt_timeout(Duration::from_secs(2));
        /// assert_eq!(cfg.attempt_timeout, Some(Duration::from_secs(2)));
        /// ```
        attempt_timeout: into Option<Duration>,
        /// Sets the `honor_retry_after` field: whether to wait for `Retry-After`
        /// hints.
        ///
        /// ```
        /// use buttress_retry::RetryConfig;
        /// let cfg = RetryConfig::default().honor_retry_after(false);
        /// assert!(!cfg.honor_retry_after);
        /// ```
        honor_retry_after: bool,
        /// Sets the `max_retry_after` field: the longest `Retry-After` to wait
        /// for; `None` for the backoff's maximum delay.
        ///
        /// ```
        /// use std::time::Duration;
        /// use buttress_retry::RetryConfig;
        /// let cfg = RetryConfig::default().max_retry_after(Duration::from_secs(60));
        /// assert_eq!(cfg.max_retry_after, Some(Duration::from_secs(60)));
        /// ```
        max_retry_after: into Option<Duration>,
        /// Sets the `budget` field: the budget shared by every clone of the
        /// policy.
        ///
        /// ```
        /// use buttress_retry::{BudgetConfig, RetryConfig};
        /// let cfg = RetryConfig::default().budget(BudgetConfig::None);
        /// assert_eq!(cfg.budget, BudgetConfig::None);
        /// ```
        budget: BudgetConfig,
    }
}

/// Presets and validation.
impl RetryConfig {
    /// Connecting to a database at start-up: 6 attempts, 2 s doubling
    /// (2 + 4 + 8 + 16 + 32 = 62 s of waiting at most), no jitter, no budget.
    ///
    /// ```
    /// use buttress_retry::{BudgetConfig, RetryConfig};
    /// let cfg = RetryConfig::database_connect();
    /// assert_eq!((cfg.max_attempts, cfg.budget), (6, BudgetConfig::None));
    /// ```
    pub fn database_connect() -> Self {
        Self::default()
            .max_attempts(6)
            .backoff(Backoff::Exponential {
                base: Duration::from_secs(2),
                factor: 2.0,
                max: Duration::from_secs(32),
            })
            .budget(BudgetConfig::None)
    }

    /// Downloading a model: 4 attempts, waiting 5, 10 then 20 s, each
    /// attempt cut off after 2 minutes, no budget.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_retry::RetryConfig;
    /// let cfg = RetryConfig::model_download();
    /// assert_eq!(cfg.attempt_timeout, Some(Duration::from_secs(120)));
    /// ```
    pub fn model_download() -> Self {
        Self::default()
            .max_attempts(4)
            .backoff(Backoff::Exponential {
                base: Duration::from_secs(5),
                factor: 2.0,
                max: Duration::from_secs(20),
            })
            .attempt_timeout(Duration::from_secs(120))
            .budget(BudgetConfig::None)
    }

    /// Calling an LLM server: 3 attempts, full jitter from 500 ms to 8 s,
    /// 60 s in all, the default budget.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_retry::RetryConfig;
    /// let cfg = RetryConfig::llm();
    /// assert_eq!(cfg.deadline, Some(Duration::from_secs(60)));
    /// ```
    pub fn llm() -> Self {
        Self::default()
            .max_attempts(3)
            .backoff(Backoff::FullJitter {
                base: Duration::from_millis(500),
                factor: 2.0,
                max: Duration::from_secs(8),
            })
            .deadline(Duration::from_secs(60))
    }

    /// Checks every field; the first problem found is returned.
    ///
    /// ```
    /// use buttress_retry::{ConfigError, RetryConfig};
    /// assert_eq!(
    ///     RetryConfig::default().max_attempts(0).validate(),
    ///     Err(ConfigError::MaxAttempts(0)),
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_attempts == 0 || self.max_attempts > 1000 {
            return Err(ConfigError::MaxAttempts(self.max_attempts));
        }
        check_backoff(&self.backoff)?;
        if let Some(d) = self.deadline {
            check_duration("deadline", d, false)?;
        }
        if let Some(d) = self.attempt_timeout {
            check_duration("attempt_timeout", d, false)?;
        }
        if let Some(d) = self.max_retry_after {
            check_duration("max_retry_after", d, true)?;
        }
        check_budget(&self.budget)
    }
}

const HUNDRED_YEARS: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A duration is at most 100 years, and zero only where `zero_ok`.
fn check_duration(field: &'static str, value: Duration, zero_ok: bool) -> Result<(), ConfigError> {
    if (value.is_zero() && !zero_ok) || value > HUNDRED_YEARS {
        Err(ConfigError::Duration { field, value })
    } else {
        Ok(())
    }
}

/// The backoff's durations, a cap not below its base, and a finite factor
/// of at least 1.
fn check_backoff(backoff: &Backoff) -> Result<(), ConfigError> {
    let (base, max, factor) = match *backoff {
        Backoff::Constant { delay } => return check_duration("backoff.delay", delay, true),
        Backoff::Linear { base, max } | Backoff::Decorrelated { base, max } => (base, max, None),
        Backoff::Exponential { base, factor, max }
        | Backoff::FullJitter { base, factor, max }
        | Backoff::EqualJitter { base, factor, max } => (base, max, Some(factor)),
    };
    check_duration("backoff.base", base, true)?;
    check_duration("backoff.max", max, true)?;
    if max < base {
        return Err(ConfigError::Duration {
            field: "backoff.max (below backoff.base)",
            value: max,
        });
    }
    match factor {
        Some(f) if !(f.is_finite() && f >= 1.0) => Err(ConfigError::Factor(f)),
        _ => Ok(()),
    }
}

/// The budget's parameters, checked by building one.
fn check_budget(budget: &BudgetConfig) -> Result<(), ConfigError> {
    match *budget {
        BudgetConfig::None => Ok(()),
        BudgetConfig::Ratio {
            ratio,
            min_per_second,
            window,
        } => crate::budget::RatioBudget::new(ratio, min_per_second, window)
            .map(drop)
            .map_err(ConfigError::Budget),
        BudgetConfig::Throttle {
            max_tokens,
            token_ratio,
        } => crate::budget::Throttle::new(max_tokens, token_ratio)
            .map(drop)
            .map_err(ConfigError::Budget),
    }
}

/// Why a retry configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The policy's name is not valid.
    #[error("invalid retry policy name")]
    Name(#[source] buttress_core::NameError),
    /// `max_attempts` must be 1 to 1000.
    #[error("max_attempts must be 1 to 1000, got {0}")]
    MaxAttempts(u32),
    /// A duration is zero where it must not be, longer than 100 years, or a
    /// cap below its base.
    #[error("{field} is out of range (zero, over 100 years, or below its base): {value:?}")]
    Duration {
        /// Which field.
        field: &'static str,
        /// The value given.
        value: Duration,
    },
    /// A backoff factor below 1 or not finite.
    #[error("backoff factor must be finite and at least 1, got {0}")]
    Factor(f64),
    /// The budget's parameters.
    #[error("invalid retry budget")]
    Budget(#[source] BudgetError),
    /// [`RetryPolicy::reconfigure`](crate::RetryPolicy::reconfigure) was
    /// asked to change the budget, whose balance cannot be carried over.
    #[error(
        "the budget cannot change while the policy runs (its balance would be lost); build a new policy"
    )]
    BudgetChanged,
}

impl ConfigError {
    /// The configuration key at fault, dotted as the serde form spells it
    /// (`"max_attempts"`, `"backoff.max"`, `"budget"`), or `None` for the
    /// name.
    ///
    /// ```
    /// use buttress_retry::{RetryConfig, RetryPolicy};
    ///
    /// let mut cfg = RetryConfig::default();
    /// cfg.max_attempts = 0;
    /// assert_eq!(RetryPolicy::new("db", cfg).unwrap_err().field(), Some("max_attempts"));
    /// ```
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Name(_) => None,
            Self::MaxAttempts(_) => Some("max_attempts"),
            Self::Duration { field, .. } => Some(field),
            Self::Factor(_) => Some("backoff.factor"),
            Self::Budget(_) | Self::BudgetChanged => Some("budget"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_presets_are_valid() {
        for c in [
            RetryConfig::default(),
            RetryConfig::database_connect(),
            RetryConfig::model_download(),
            RetryConfig::llm(),
        ] {
            c.validate().expect("valid");
        }
    }

    #[test]
    fn bad_values_are_typed_errors() {
        let d = RetryConfig::default;
        assert_eq!(
            d().max_attempts(0).validate(),
            Err(ConfigError::MaxAttempts(0))
        );
        assert!(matches!(
            d().deadline(Duration::ZERO).validate(),
            Err(ConfigError::Duration {
                field: "deadline",
                ..
            })
        ));
        assert!(matches!(
            d().backoff(Backoff::Exponential {
                base: Duration::from_secs(1),
                factor: 0.5,
                max: Duration::from_secs(2)
            })
            .validate(),
            Err(ConfigError::Factor(_))
        ));
        assert!(matches!(
            d().backoff(Backoff::FullJitter {
                base: Duration::from_secs(2),
                factor: 2.0,
                max: Duration::from_secs(1)
            })
            .validate(),
            Err(ConfigError::Duration { .. })
        ));
        assert!(matches!(
            d().budget(BudgetConfig::Ratio {
                ratio: f64::NAN,
                min_per_second: 1.0,
                window: Duration::from_secs(1)
            })
            .validate(),
            Err(ConfigError::Budget(BudgetError::Ratio(_)))
        ));
        assert!(matches!(
            d().budget(BudgetConfig::Throttle {
                max_tokens: 10.0,
                token_ratio: 0.0
            })
            .validate(),
            Err(ConfigError::Budget(BudgetError::Throttle { .. }))
        ));
        assert!(!ConfigError::MaxAttempts(0).to_string().is_empty());
    }

    #[test]
    fn wrappers_leave_their_cause_to_source() {
        use std::error::Error as _;
        let e = ConfigError::Budget(BudgetError::Ratio(f64::NAN));
        assert_eq!(e.to_string(), "invalid retry budget");
        let cause = e.source().expect("the budget's error");
        assert!(cause.is::<BudgetError>());
        assert_eq!(
            cause.to_string(),
            "budget ratio must be in [0, 100], got NaN"
        );
        let e = ConfigError::Name(buttress_core::NameError::Empty);
        assert_eq!(e.to_string(), "invalid retry policy name");
        assert!(
            e.source()
                .is_some_and(|s| s.is::<buttress_core::NameError>())
        );
        assert!(ConfigError::MaxAttempts(0).source().is_none());
    }
}
