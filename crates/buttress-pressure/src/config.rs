//! [`GaugeConfig`]: the settings of a gauge, as data.

use std::time::Duration;

use crate::error::GaugeError;
use crate::watermarks::Watermarks;

/// The settings of a [`Gauge`](crate::Gauge): its watermarks, an optional
/// lower pair for low-priority work, and the retry hint its refusals
/// carry. Pass it (or just [`Watermarks`]) to
/// [`Gauge::builder`](crate::Gauge::builder).
///
/// Under the `serde` feature it loads from a configuration file, checked
/// as it loads (the same checks as [`validate`](GaugeConfig::validate)),
/// with watermarks as numbers or sizes (`"100MB"`), durations as
/// `"2s"`/`"250ms"`, and no unknown keys:
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use std::time::Duration;
/// use buttress_pressure::GaugeConfig;
///
/// let config: GaugeConfig = serde_json::from_str(r#"{
///     "watermarks": { "high": "100MB", "low": "50MB" },
///     "low_priority": { "high": "60MB", "low": "30MB" },
///     "retry_after": "2s"
/// }"#).unwrap();
/// assert_eq!(config.watermarks.high(), 100_000_000);
/// assert_eq!(config.retry_after, Some(Duration::from_secs(2)));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(
    feature = "serde",
    serde(try_from = "GaugeConfigDoc", into = "GaugeConfigDoc")
)]
pub struct GaugeConfig {
    /// Paused at `high`, flowing again at `low`.
    pub watermarks: Watermarks,
    /// Low-priority work is paused by these instead (not above
    /// `watermarks`): shed first, resumed last. Default: none (low
    /// priority follows `watermarks`).
    pub low_priority: Option<Watermarks>,
    /// The hint [`Overloaded::retry_after`](crate::Overloaded::retry_after)
    /// carries (and `Retry-After` under `http`). Default: none.
    pub retry_after: Option<Duration>,
}

impl GaugeConfig {
    /// Paused at `watermarks.high()`, flowing again at `watermarks.low()`,
    /// with no band of its own for low priority and no retry hint.
    ///
    /// ```
    /// use buttress_pressure::{GaugeConfig, Watermarks};
    ///
    /// let config = GaugeConfig::new(Watermarks::new(100, 50)?);
    /// assert_eq!(config.low_priority, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(watermarks: Watermarks) -> Self {
        GaugeConfig {
            watermarks,
            low_priority: None,
            retry_after: None,
        }
    }

    /// Sets [`low_priority`](GaugeConfig::low_priority).
    ///
    /// ```
    /// use buttress_pressure::{GaugeConfig, Watermarks};
    ///
    /// let config = GaugeConfig::new(Watermarks::new(100, 50)?)
    ///     .low_priority(Watermarks::new(60, 30)?);
    /// assert_eq!(config.low_priority.map(|w| w.high()), Some(60));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn low_priority(mut self, watermarks: Watermarks) -> Self {
        self.low_priority = Some(watermarks);
        self
    }

    /// Sets [`retry_after`](GaugeConfig::retry_after).
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_pressure::{GaugeConfig, Watermarks};
    ///
    /// let config = GaugeConfig::new(Watermarks::new(100, 50)?).retry_after(Duration::from_secs(2));
    /// assert_eq!(config.retry_after, Some(Duration::from_secs(2)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Whether the settings make sense: the low-priority watermarks, if
    /// any, are not above the normal ones.
    /// [`GaugeBuilder::build`](crate::GaugeBuilder::build) checks the same.
    ///
    /// ```
    /// use buttress_pressure::{GaugeConfig, GaugeError, Watermarks};
    ///
    /// let config = GaugeConfig::new(Watermarks::new(100, 50)?)
    ///     .low_priority(Watermarks::new(120, 30)?);
    /// assert!(matches!(config.validate(), Err(GaugeError::LowPriorityAbove { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn validate(&self) -> Result<(), GaugeError> {
        let normal = self.watermarks;
        match self.low_priority {
            Some(low) if low.high() > normal.high() || low.low() > normal.low() => {
                Err(GaugeError::LowPriorityAbove {
                    normal,
                    low_priority: low,
                })
            }
            _ => Ok(()),
        }
    }
}

impl From<Watermarks> for GaugeConfig {
    fn from(watermarks: Watermarks) -> Self {
        GaugeConfig::new(watermarks)
    }
}

/// A [`GaugeConfig`] as written in a configuration file, before it is
/// checked.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct GaugeConfigDoc {
    watermarks: Watermarks,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    low_priority: Option<Watermarks>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    retry_after: Option<Duration>,
}

#[cfg(feature = "serde")]
impl From<GaugeConfig> for GaugeConfigDoc {
    fn from(c: GaugeConfig) -> Self {
        GaugeConfigDoc {
            watermarks: c.watermarks,
            low_priority: c.low_priority,
            retry_after: c.retry_after,
        }
    }
}

#[cfg(feature = "serde")]
impl TryFrom<GaugeConfigDoc> for GaugeConfig {
    type Error = GaugeError;

    fn try_from(doc: GaugeConfigDoc) -> Result<Self, GaugeError> {
        let config = GaugeConfig {
            watermarks: doc.watermarks,
            low_priority: doc.low_priority,
            retry_after: doc.retry_after,
        };
        config.validate()?;
        Ok(config)
    }
}
