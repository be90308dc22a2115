//! Watermarks and the hysteresis rule: the whole state machine of a gauge.

use std::fmt;

/// A high and a low watermark: a gauge turns paused when its level reaches
/// `high`, and flowing again only when it falls to `low`. Between them it
/// keeps its state, so a level hovering near one watermark never flaps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watermarks {
    high: u64,
    low: u64,
}

/// Watermarks that make no sense.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatermarkError(String);

impl fmt::Display for WatermarkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid watermarks: {}", self.0)
    }
}

impl std::error::Error for WatermarkError {}

/// The largest level a gauge holds (62 bits; two bits of its word hold the
/// states).
pub const MAX_LEVEL: u64 = (1 << 62) - 1;

impl Watermarks {
    /// Paused at `level >= high`, flowing again at `level <= low`.
    /// `low` must be below `high` (equal watermarks would flap), and `high`
    /// at most [`MAX_LEVEL`].
    pub fn new(high: u64, low: u64) -> Result<Watermarks, WatermarkError> {
        if low >= high {
            return Err(WatermarkError(format!(
                "low ({low}) must be below high ({high})"
            )));
        }
        if high > MAX_LEVEL {
            return Err(WatermarkError(format!(
                "high ({high}) is above {MAX_LEVEL}"
            )));
        }
        Ok(Watermarks { high, low })
    }

    /// The high watermark.
    pub fn high(&self) -> u64 {
        self.high
    }

    /// The low watermark.
    pub fn low(&self) -> u64 {
        self.low
    }

    /// The hysteresis rule: the state after the level becomes `level`.
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
