//! [`AdaptiveConfig`]: which algorithm, with which parameters, as data.

use super::{AimdConfig, Algorithm, Gradient2Config, VegasConfig};
use crate::error::AdaptiveConfigError;

/// An adaptive limit algorithm and its parameters: what a configuration
/// file says, built into the algorithm by [`build`](AdaptiveConfig::build).
///
/// Under the `serde` feature it loads from a document tagged by
/// `algorithm` (`"aimd"`, `"vegas"` or `"gradient2"`) beside the
/// parameters of that algorithm (each optional, with its default), checked
/// as it loads: unknown keys, bad durations and invalid values are refused
/// with the typed error's message.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use buttress_pressure::{AdaptiveConfig, AdaptiveLimiter};
///
/// let config: AdaptiveConfig = serde_json::from_str(r#"{
///     "algorithm": "aimd", "initial": 20, "min": 2, "max": 200, "timeout": "250ms"
/// }"#).unwrap();
/// let limiter = AdaptiveLimiter::new("llm", config.build().unwrap()).unwrap();
/// assert_eq!(limiter.limit(), 20);
///
/// let err = serde_json::from_str::<AdaptiveConfig>(r#"{ "algorithm": "vegas", "min": 0 }"#)
///     .unwrap_err();
/// assert!(err.to_string().starts_with("invalid adaptive limit: min must be at least 1"));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "algorithm", rename_all = "lowercase"))]
pub enum AdaptiveConfig {
    /// [`Aimd`](crate::Aimd).
    Aimd(AimdConfig),
    /// [`Vegas`](crate::Vegas).
    Vegas(VegasConfig),
    /// [`Gradient2`](crate::Gradient2).
    Gradient2(Gradient2Config),
}

impl AdaptiveConfig {
    /// Whether the parameters make sense.
    ///
    /// ```
    /// use buttress_pressure::{AdaptiveConfig, AdaptiveConfigError, VegasConfig};
    ///
    /// let config = AdaptiveConfig::Vegas(VegasConfig::default().smoothing(0.0));
    /// assert!(matches!(
    ///     config.validate(),
    ///     Err(AdaptiveConfigError::OutOfRange { parameter: "smoothing", .. })
    /// ));
    /// ```
    pub fn validate(&self) -> Result<(), AdaptiveConfigError> {
        match self {
            AdaptiveConfig::Aimd(c) => c.validate(),
            AdaptiveConfig::Vegas(c) => c.validate(),
            AdaptiveConfig::Gradient2(c) => c.validate(),
        }
    }

    /// The algorithm, at its initial limit, ready for
    /// [`AdaptiveLimiter::new`](crate::AdaptiveLimiter::new); or why the
    /// parameters make no sense.
    ///
    /// ```
    /// use buttress_pressure::{AdaptiveConfig, AdaptiveLimiter, Gradient2Config};
    ///
    /// let config = AdaptiveConfig::from(Gradient2Config::default().initial(30));
    /// let limiter = AdaptiveLimiter::new("search", config.build()?)?;
    /// assert_eq!(limiter.limit(), 30);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build(&self) -> Result<Box<dyn Algorithm>, AdaptiveConfigError> {
        Ok(match self {
            AdaptiveConfig::Aimd(c) => Box::new(c.build()?),
            AdaptiveConfig::Vegas(c) => Box::new(c.build()?),
            AdaptiveConfig::Gradient2(c) => Box::new(c.build()?),
        })
    }
}

impl From<AimdConfig> for AdaptiveConfig {
    fn from(config: AimdConfig) -> Self {
        AdaptiveConfig::Aimd(config)
    }
}

impl From<VegasConfig> for AdaptiveConfig {
    fn from(config: VegasConfig) -> Self {
        AdaptiveConfig::Vegas(config)
    }
}

impl From<Gradient2Config> for AdaptiveConfig {
    fn from(config: Gradient2Config) -> Self {
        AdaptiveConfig::Gradient2(config)
    }
}
