//! Backoff strategies: how long to wait before each retry.

use std::time::Duration;

use buttress_core::Random;

/// How the delay before each retry grows.
///
/// Every strategy is capped: no delay ever exceeds `max`, jitter included
/// (jitter is drawn inside the cap, never added after it). Retry `n` is the
/// n-th retry (the delay before attempt `n + 1`), counting from 1.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)
)]
#[non_exhaustive]
pub enum Backoff {
    /// Always `delay`.
    Constant {
        /// The delay.
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        delay: Duration,
    },
    /// `base × n`, capped at `max`.
    Linear {
        /// The first delay, and the step.
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        base: Duration,
        /// The cap.
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        max: Duration,
    },
    /// `base × factor^(n−1)`, capped at `max`; no jitter.
    Exponential {
        /// The first delay.
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        base: Duration,
        /// Growth per retry, at least 1.
        factor: f64,
        /// The cap.
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        max: Duration,
    },
    /// AWS "full jitter": `U(0, min(max, base × factor^(n−1)))`. The default:
    /// the least work for contended resources.
    FullJitter {
        /// The first ceiling.
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        base: Duration,
        /// Growth of the ceiling per retry, at least 1.
        factor: f64,
        /// The cap.
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        max: Duration,
    },
    /// AWS "equal jitter": `t/2 + U(0, t/2)` with
    /// `t = min(max, base × factor^(n−1))`: never shorter than half.
    EqualJitter {
        /// The first ceiling.
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        base: Duration,
        /// Growth of the ceiling per retry, at least 1.
        factor: f64,
        /// The cap.
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        max: Duration,
    },
    /// AWS "decorrelated jitter": `min(max, U(base, 3 × previous))`, the
    /// previous delay starting at `base`.
    Decorrelated {
        /// The smallest delay.
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        base: Duration,
        /// The cap.
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        max: Duration,
    },
}

impl Default for Backoff {
    /// Full jitter from 100 ms doubling to 10 s.
    fn default() -> Self {
        Self::FullJitter {
            base: Duration::from_millis(100),
            factor: 2.0,
            max: Duration::from_secs(10),
        }
    }
}

/// `base × factor^(n−1)` capped at `max`, without overflow for any `n`.
fn capped_exponential(base: Duration, factor: f64, max: Duration, n: u32) -> f64 {
    if base.is_zero() {
        // 0 × factor^k is 0 even when factor^k overflows to infinity.
        return 0.0;
    }
    let exp = i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX);
    let t = base.as_secs_f64() * factor.powi(exp);
    if t.is_finite() {
        t.min(max.as_secs_f64())
    } else {
        max.as_secs_f64()
    }
}

fn secs(s: f64, max: Duration) -> Duration {
    if s.is_nan() || s <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(s).unwrap_or(max).min(max)
}

impl Backoff {
    /// The cap: no delay is longer.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_core::FixedRandom;
    /// use buttress_retry::Backoff;
    ///
    /// let b = Backoff::FullJitter { base: Duration::from_secs(1), factor: 2.0, max: Duration::from_secs(30) };
    /// assert_eq!(b.max(), Duration::from_secs(30));
    /// // Jitter included: even the highest draw stays within it.
    /// assert!(b.delays(&FixedRandom::new([0.999])).take(20).all(|d| d <= b.max()));
    /// // A constant delay is its own cap.
    /// assert_eq!(Backoff::Constant { delay: Duration::from_secs(5) }.max(), Duration::from_secs(5));
    /// ```
    pub fn max(&self) -> Duration {
        match *self {
            Self::Constant { delay } => delay,
            Self::Linear { max, .. }
            | Self::Exponential { max, .. }
            | Self::FullJitter { max, .. }
            | Self::EqualJitter { max, .. }
            | Self::Decorrelated { max, .. } => max,
        }
    }

    /// The delay before retry `n` (from 1), given the previous delay and a
    /// uniform random value `u` in [0, 1).
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_retry::Backoff;
    ///
    /// let secs = Duration::from_secs;
    /// // Retry 3: t = min(10 s, 1 s × 2²) = 4 s; half of it is fixed, the other half drawn.
    /// let equal = Backoff::EqualJitter { base: secs(1), factor: 2.0, max: secs(10) };
    /// assert_eq!(equal.delay(3, Duration::ZERO, 0.0), secs(2));
    /// assert_eq!(equal.delay(3, Duration::ZERO, 0.5), secs(3));
    /// // Decorrelated jitter draws from [base, 3 × previous]: 1 s + 0.5 × (12 s − 1 s).
    /// let decorrelated = Backoff::Decorrelated { base: secs(1), max: secs(60) };
    /// assert_eq!(decorrelated.delay(2, secs(4), 0.5), Duration::from_millis(6500));
    /// ```
    pub fn delay(&self, n: u32, previous: Duration, u: f64) -> Duration {
        let u = if u.is_nan() { 0.0 } else { u.clamp(0.0, 1.0) };
        let max = self.max();
        match *self {
            Self::Constant { delay } => delay,
            Self::Linear { base, max } => secs(base.as_secs_f64() * f64::from(n.max(1)), max),
            Self::Exponential { base, factor, max } => {
                secs(capped_exponential(base, factor, max, n), max)
            }
            Self::FullJitter { base, factor, max } => {
                secs(u * capped_exponential(base, factor, max, n), max)
            }
            Self::EqualJitter { base, factor, max } => {
                let t = capped_exponential(base, factor, max, n);
                secs(t / 2.0 + u * t / 2.0, max)
            }
            Self::Decorrelated { base, max } => {
                let lo = base.as_secs_f64();
                let hi = (previous.max(base).as_secs_f64() * 3.0).max(lo);
                secs((lo + u * (hi - lo)).min(max.as_secs_f64()), max)
            }
        }
        .min(max)
    }

    /// The delays of retries 1, 2, 3, … drawn from `random`: an endless
    /// iterator, for inspection and simulation.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_core::FixedRandom;
    /// use buttress_retry::Backoff;
    ///
    /// let b = Backoff::Exponential { base: Duration::from_secs(2), factor: 2.0, max: Duration::from_secs(60) };
    /// let d: Vec<_> = b.delays(&FixedRandom::new([0.0])).take(6).map(|d| d.as_secs()).collect();
    /// assert_eq!(d, [2, 4, 8, 16, 32, 60]);
    /// ```
    pub fn delays<'a>(&'a self, random: &'a dyn Random) -> impl Iterator<Item = Duration> + 'a {
        let mut previous = Duration::ZERO;
        (1u32..).map(move |n| {
            let d = self.delay(n, previous, random.unit());
            previous = d;
            d
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use buttress_core::FixedRandom;
    use proptest::prelude::*;

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `delay` is public and `Backoff` can be built by hand, past the
    /// policy's checks: whatever it is given, the delay lies between zero
    /// and the cap, and nothing panics.
    #[test]
    fn any_input_gives_a_delay_between_zero_and_the_cap() {
        let b = Backoff::FullJitter {
            base: ms(100),
            factor: 2.0,
            max: ms(1_000),
        };
        // A `Random` of the user's may draw outside [0, 1): it is clamped.
        assert_eq!(b.delay(3, Duration::ZERO, f64::NAN), Duration::ZERO);
        assert_eq!(b.delay(3, Duration::ZERO, -0.5), Duration::ZERO);
        assert_eq!(b.delay(3, Duration::ZERO, 7.0), ms(400));
        // A negative factor (the policy refuses one) makes a negative
        // delay of the formula: no wait, not the cap.
        let negative = Backoff::Exponential {
            base: ms(100),
            factor: -2.0,
            max: ms(1_000),
        };
        assert_eq!(negative.delay(2, Duration::ZERO, 0.5), Duration::ZERO);
        assert_eq!(negative.delay(3, Duration::ZERO, 0.5), ms(400));
    }

    #[test]
    fn exact_sequences_with_a_seeded_source() {
        let r = FixedRandom::new([0.5]);
        let take = |b: Backoff| b.delays(&r).take(5).collect::<Vec<_>>();
        assert_eq!(take(Backoff::Constant { delay: ms(7) }), [ms(7); 5]);
        assert_eq!(
            take(Backoff::Linear {
                base: ms(10),
                max: ms(35)
            }),
            [ms(10), ms(20), ms(30), ms(35), ms(35)]
        );
        assert_eq!(
            take(Backoff::FullJitter {
                base: ms(100),
                factor: 2.0,
                max: ms(500)
            }),
            [ms(50), ms(100), ms(200), ms(250), ms(250)]
        );
        assert_eq!(
            take(Backoff::EqualJitter {
                base: ms(100),
                factor: 2.0,
                max: ms(500)
            }),
            [ms(75), ms(150), ms(300), ms(375), ms(375)]
        );
        // U(100, 3 × prev) at u = 0.5: prev 100 → 200 → 350 → 575 → cap 600
        assert_eq!(
            take(Backoff::Decorrelated {
                base: ms(100),
                max: ms(600)
            }),
            [ms(200), ms(350), ms(575), ms(600), ms(600)]
        );
    }

    #[test]
    fn the_database_connection_schedule() {
        // 5 attempts, base 2 s doubling: 2 + 4 + 8 + 16 = 30 s of waiting.
        let b = Backoff::Exponential {
            base: Duration::from_secs(2),
            factor: 2.0,
            max: Duration::from_secs(60),
        };
        let total: Duration = b.delays(&FixedRandom::new([])).take(4).sum();
        assert_eq!(total, Duration::from_secs(30));
    }

    #[test]
    fn a_zero_base_stays_zero() {
        let b = Backoff::Exponential {
            base: Duration::ZERO,
            factor: 1e300,
            max: Duration::from_secs(10),
        };
        for n in 1..10 {
            assert_eq!(b.delay(n, Duration::ZERO, 0.5), Duration::ZERO);
        }
    }

    #[test]
    fn no_overflow_for_any_retry_number() {
        let b = Backoff::Exponential {
            base: Duration::from_secs(1),
            factor: 10.0,
            max: Duration::from_secs(3600),
        };
        assert_eq!(
            b.delay(u32::MAX, Duration::ZERO, 0.0),
            Duration::from_secs(3600)
        );
        let b = Backoff::Linear {
            base: Duration::from_secs(u64::MAX / 2),
            max: Duration::MAX,
        };
        assert!(b.delay(u32::MAX, Duration::ZERO, 0.0) <= Duration::MAX);
    }

    fn backoffs() -> impl Strategy<Value = Backoff> {
        let d = (0u64..10_000).prop_map(Duration::from_millis);
        let f = prop::sample::select(vec![1.0, 1.5, 2.0, 3.0, 10.0]);
        prop_oneof![
            d.clone().prop_map(|delay| Backoff::Constant { delay }),
            (d.clone(), d.clone()).prop_map(|(base, max)| Backoff::Linear { base, max }),
            (d.clone(), f.clone(), d.clone())
                .prop_map(|(base, factor, max)| Backoff::Exponential { base, factor, max }),
            (d.clone(), f.clone(), d.clone()).prop_map(|(base, factor, max)| Backoff::FullJitter {
                base,
                factor,
                max
            }),
            (d.clone(), f, d.clone()).prop_map(|(base, factor, max)| Backoff::EqualJitter {
                base,
                factor,
                max
            }),
            (d.clone(), d).prop_map(|(base, max)| Backoff::Decorrelated { base, max }),
        ]
    }

    proptest! {
        #[test]
        fn every_delay_is_within_zero_and_max(b in backoffs(), us in prop::collection::vec(0.0f64..1.0, 1..60)) {
            let r = FixedRandom::new(us.clone());
            for d in b.delays(&r).take(us.len() * 2) {
                prop_assert!(d <= b.max(), "{d:?} > {:?}", b.max());
            }
        }
    }
}
