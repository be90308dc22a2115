//! Where a limiter's time comes from.

use std::time::Instant;

use buttress_core::SharedClock;

/// Where a limiter's time comes from. The fast clock is read directly in
/// nanoseconds, skipping the `Instant` arithmetic a general clock needs.
pub(crate) enum LimiterClock {
    Any(SharedClock, Instant),
    #[cfg(feature = "fast-clock")]
    Fast(buttress_core::FastClock),
}

impl LimiterClock {
    #[inline]
    pub(crate) fn nanos(&self) -> u64 {
        match self {
            Self::Any(clock, origin) => {
                u64::try_from(clock.now().saturating_duration_since(*origin).as_nanos())
                    .unwrap_or(u64::MAX)
            }
            #[cfg(feature = "fast-clock")]
            Self::Fast(clock) => clock.nanos(),
        }
    }
}
