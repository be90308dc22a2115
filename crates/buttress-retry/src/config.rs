//! Configuration: plain data, validated into the rules the core runs.

use std::fmt;
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
    /// `docs/retry.md`).
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
/// Under the `serde` feature it loads from a file with durations such as
/// `"250ms"`.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
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

impl RetryConfig {
    /// Connecting to a database at start-up: 6 attempts, 2 s doubling
    /// (2 + 4 + 8 + 16 + 32 = 62 s of waiting at most), no jitter, no budget.
    pub fn database_connect() -> Self {
        Self {
            max_attempts: 6,
            backoff: Backoff::Exponential {
                base: Duration::from_secs(2),
                factor: 2.0,
                max: Duration::from_secs(32),
            },
            budget: BudgetConfig::None,
            ..Self::default()
        }
    }

    /// Downloading a model: 4 attempts, waiting 5, 10 then 20 s, each
    /// attempt cut off after 2 minutes, no budget.
    pub fn model_download() -> Self {
        Self {
            max_attempts: 4,
            backoff: Backoff::Exponential {
                base: Duration::from_secs(5),
                factor: 2.0,
                max: Duration::from_secs(20),
            },
            attempt_timeout: Some(Duration::from_secs(120)),
            budget: BudgetConfig::None,
            ..Self::default()
        }
    }

    /// Calling an LLM server: 3 attempts, full jitter from 500 ms to 8 s,
    /// 60 s in all, the default budget.
    pub fn llm() -> Self {
        Self {
            max_attempts: 3,
            backoff: Backoff::FullJitter {
                base: Duration::from_millis(500),
                factor: 2.0,
                max: Duration::from_secs(8),
            },
            deadline: Some(Duration::from_secs(60)),
            ..Self::default()
        }
    }

    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_attempts == 0 || self.max_attempts > 1000 {
            return Err(ConfigError::MaxAttempts(self.max_attempts));
        }
        let hundred_years = Duration::from_secs(100 * 365 * 24 * 3600);
        let check = |field: &'static str, d: Duration, zero_ok: bool| {
            if (d.is_zero() && !zero_ok) || d > hundred_years {
                Err(ConfigError::Duration { field, value: d })
            } else {
                Ok(())
            }
        };
        let factor_ok = |f: f64| f.is_finite() && f >= 1.0;
        match self.backoff {
            Backoff::Constant { delay } => check("backoff.delay", delay, true)?,
            Backoff::Linear { base, max } | Backoff::Decorrelated { base, max } => {
                check("backoff.base", base, true)?;
                check("backoff.max", max, true)?;
                if max < base {
                    return Err(ConfigError::Duration {
                        field: "backoff.max (below backoff.base)",
                        value: max,
                    });
                }
            }
            Backoff::Exponential { base, factor, max }
            | Backoff::FullJitter { base, factor, max }
            | Backoff::EqualJitter { base, factor, max } => {
                check("backoff.base", base, true)?;
                check("backoff.max", max, true)?;
                if max < base {
                    return Err(ConfigError::Duration {
                        field: "backoff.max (below backoff.base)",
                        value: max,
                    });
                }
                if !factor_ok(factor) {
                    return Err(ConfigError::Factor(factor));
                }
            }
        }
        if let Some(d) = self.deadline {
            check("deadline", d, false)?;
        }
        if let Some(d) = self.attempt_timeout {
            check("attempt_timeout", d, false)?;
        }
        if let Some(d) = self.max_retry_after {
            check("max_retry_after", d, true)?;
        }
        match self.budget {
            BudgetConfig::None => {}
            BudgetConfig::Ratio {
                ratio,
                min_per_second,
                window,
            } => {
                crate::budget::RatioBudget::new(ratio, min_per_second, window)
                    .map_err(ConfigError::Budget)?;
            }
            BudgetConfig::Throttle {
                max_tokens,
                token_ratio,
            } => {
                crate::budget::Throttle::new(max_tokens, token_ratio)
                    .map_err(ConfigError::Budget)?;
            }
        }
        Ok(())
    }
}

/// Why a retry configuration was refused.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The policy's name is not valid.
    Name(buttress_core::NameError),
    /// `max_attempts` must be 1 to 1000.
    MaxAttempts(u32),
    /// A duration is zero where it must not be, longer than 100 years, or a
    /// cap below its base.
    Duration {
        /// Which field.
        field: &'static str,
        /// The value given.
        value: Duration,
    },
    /// A backoff factor below 1 or not finite.
    Factor(f64),
    /// The budget's parameters.
    Budget(BudgetError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(e) => write!(f, "invalid retry policy name: {e}"),
            Self::MaxAttempts(n) => write!(f, "max_attempts must be 1 to 1000, got {n}"),
            Self::Duration { field, value } => {
                write!(
                    f,
                    "{field} is out of range (zero, over 100 years, or below its base): {value:?}"
                )
            }
            Self::Factor(x) => write!(f, "backoff factor must be finite and at least 1, got {x}"),
            Self::Budget(e) => write!(f, "invalid retry budget: {e}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Name(e) => Some(e),
            Self::Budget(e) => Some(e),
            _ => None,
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
            RetryConfig {
                max_attempts: 0,
                ..d()
            }
            .validate(),
            Err(ConfigError::MaxAttempts(0))
        );
        assert!(matches!(
            RetryConfig {
                deadline: Some(Duration::ZERO),
                ..d()
            }
            .validate(),
            Err(ConfigError::Duration {
                field: "deadline",
                ..
            })
        ));
        assert!(matches!(
            RetryConfig {
                backoff: Backoff::Exponential {
                    base: Duration::from_secs(1),
                    factor: 0.5,
                    max: Duration::from_secs(2)
                },
                ..d()
            }
            .validate(),
            Err(ConfigError::Factor(_))
        ));
        assert!(matches!(
            RetryConfig {
                backoff: Backoff::FullJitter {
                    base: Duration::from_secs(2),
                    factor: 2.0,
                    max: Duration::from_secs(1)
                },
                ..d()
            }
            .validate(),
            Err(ConfigError::Duration { .. })
        ));
        assert!(matches!(
            RetryConfig {
                budget: BudgetConfig::Ratio {
                    ratio: f64::NAN,
                    min_per_second: 1.0,
                    window: Duration::from_secs(1)
                },
                ..d()
            }
            .validate(),
            Err(ConfigError::Budget(BudgetError::Ratio(_)))
        ));
        assert!(matches!(
            RetryConfig {
                budget: BudgetConfig::Throttle {
                    max_tokens: 10.0,
                    token_ratio: 0.0
                },
                ..d()
            }
            .validate(),
            Err(ConfigError::Budget(BudgetError::Throttle { .. }))
        ));
        assert!(!ConfigError::MaxAttempts(0).to_string().is_empty());
    }
}
