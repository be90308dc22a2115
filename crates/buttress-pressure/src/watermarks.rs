//! Watermarks and the hysteresis rule: the whole state machine of a gauge.

use crate::error::WatermarkError;

/// A high and a low watermark: a gauge turns paused when its level reaches
/// `high`, and flowing again only when it falls to `low`. Between them it
/// keeps its state, so a level hovering near one watermark never flaps.
///
/// Valid by construction: [`Watermarks::new`] checks them, and so does
/// loading them under the `serde` feature, where each watermark is a number
/// or a size (`"100MB"`, `"64 KiB"`; the levels of a gauge are often
/// bytes), with no other keys allowed:
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use buttress_pressure::Watermarks;
///
/// let w: Watermarks = serde_json::from_str(r#"{ "high": "100MB", "low": 50000000 }"#).unwrap();
/// assert_eq!((w.high(), w.low()), (100_000_000, 50_000_000));
/// let err = serde_json::from_str::<Watermarks>(r#"{ "high": 5, "low": 5 }"#).unwrap_err();
/// assert!(err.to_string().starts_with("invalid watermarks: low (5) must be below high (5)"));
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(
    feature = "serde",
    serde(try_from = "WatermarksDoc", into = "WatermarksDoc")
)]
pub struct Watermarks {
    high: u64,
    low: u64,
}

/// Watermarks as written in a configuration file, before they are checked.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct WatermarksDoc {
    #[serde(with = "buttress_core::human::size")]
    high: u64,
    #[serde(with = "buttress_core::human::size")]
    low: u64,
}

#[cfg(feature = "serde")]
impl From<Watermarks> for WatermarksDoc {
    fn from(w: Watermarks) -> Self {
        WatermarksDoc {
            high: w.high,
            low: w.low,
        }
    }
}

#[cfg(feature = "serde")]
impl TryFrom<WatermarksDoc> for Watermarks {
    type Error = WatermarkError;

    fn try_from(doc: WatermarksDoc) -> Result<Self, WatermarkError> {
        Watermarks::new(doc.high, doc.low)
    }
}

/// The largest level a gauge holds (62 bits; two bits of its word hold the
/// states).
pub const MAX_LEVEL: u64 = (1 << 62) - 1;

impl Watermarks {
    /// Paused at `level >= high`, flowing again at `level <= low`.
    /// `low` must be below `high` (equal watermarks would flap), and `high`
    /// at most [`MAX_LEVEL`].
    ///
    /// ```
    /// use buttress_pressure::{WatermarkError, Watermarks};
    ///
    /// let w = Watermarks::new(100 << 20, 50 << 20)?; // 100 MiB, 50 MiB
    /// assert_eq!(w.high(), 100 << 20);
    /// assert_eq!(Watermarks::new(5, 6), Err(WatermarkError::LowNotBelowHigh { high: 5, low: 6 }));
    /// # Ok::<(), WatermarkError>(())
    /// ```
    pub fn new(high: u64, low: u64) -> Result<Watermarks, WatermarkError> {
        if low >= high {
            return Err(WatermarkError::LowNotBelowHigh { high, low });
        }
        if high > MAX_LEVEL {
            return Err(WatermarkError::HighAboveMax { high });
        }
        Ok(Watermarks { high, low })
    }

    /// The high watermark.
    ///
    /// ```
    /// # use buttress_pressure::Watermarks;
    /// assert_eq!(Watermarks::new(10, 4)?.high(), 10);
    /// # Ok::<(), buttress_pressure::WatermarkError>(())
    /// ```
    pub fn high(&self) -> u64 {
        self.high
    }

    /// The low watermark.
    ///
    /// ```
    /// # use buttress_pressure::Watermarks;
    /// assert_eq!(Watermarks::new(10, 4)?.low(), 4);
    /// # Ok::<(), buttress_pressure::WatermarkError>(())
    /// ```
    pub fn low(&self) -> u64 {
        self.low
    }

    /// The hysteresis rule: the state after the level becomes `level`.
    ///
    /// ```
    /// # use buttress_pressure::Watermarks;
    /// let w = Watermarks::new(100, 50)?;
    /// assert!(w.next(false, 100)); // reaches high: paused
    /// assert!(w.next(true, 75)); // between the marks: keeps its state
    /// assert!(!w.next(true, 50)); // falls to low: flowing
    /// # Ok::<(), buttress_pressure::WatermarkError>(())
    /// ```
    #[inline]
    pub fn next(&self, paused: bool, level: u64) -> bool {
        if paused {
            level > self.low
        } else {
            level >= self.high
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_holds_its_state_between_the_marks() {
        let w = Watermarks::new(100, 50).unwrap_or_else(|e| panic!("{e}"));
        assert!(!w.next(false, 99));
        assert!(w.next(false, 100));
        assert!(w.next(true, 51));
        assert!(!w.next(true, 50));
        assert!(!w.next(false, 75));
        assert!(w.next(true, 75));
        assert!(Watermarks::new(5, 5).is_err());
        assert!(Watermarks::new(5, 6).is_err());
        assert!(Watermarks::new(MAX_LEVEL + 1, 0).is_err());
    }
}
