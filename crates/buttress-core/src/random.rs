//! The injectable source of randomness used for jitter.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A source of uniform random numbers.
///
/// Jitter is the only randomness in buttress; injecting its source makes
/// every delay reproducible in tests.
pub trait Random: Send + Sync + fmt::Debug + 'static {
    /// A uniform value in `[0, 1)`.
    fn unit(&self) -> f64;
}

/// A random source shared between clones.
pub type SharedRandom = Arc<dyn Random>;

/// The default source: a fast thread-local generator (not cryptographic).
///
/// ```
/// use buttress_core::{FastRandom, Random, SharedRandom};
///
/// let random: SharedRandom = std::sync::Arc::new(FastRandom);
/// for _ in 0..100 {
///     assert!((0.0..1.0).contains(&random.unit()));
/// }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct FastRandom;

impl Random for FastRandom {
    fn unit(&self) -> f64 {
        fastrand::f64()
    }
}

/// A source that returns fixed values in turn, for tests.
///
/// ```
/// use buttress_core::{FixedRandom, Random};
/// let r = FixedRandom::new([0.0, 0.5]);
/// assert_eq!((r.unit(), r.unit(), r.unit()), (0.0, 0.5, 0.0));
/// ```
pub struct FixedRandom {
    values: Vec<f64>,
    next: AtomicU64,
}

impl FixedRandom {
    /// Cycles through `values` (each clamped into `[0, 1)`); an empty list
    /// always gives 0.
    pub fn new(values: impl IntoIterator<Item = f64>) -> Self {
        let values = values
            .into_iter()
            .map(|v| {
                if v.is_nan() {
                    0.0
                } else {
                    v.clamp(0.0, 1.0 - f64::EPSILON)
                }
            })
            .collect();
        Self {
            values,
            next: AtomicU64::new(0),
        }
    }
}

impl fmt::Debug for FixedRandom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedRandom")
            .field("values", &self.values)
            .finish()
    }
}

impl Random for FixedRandom {
    fn unit(&self) -> f64 {
        if self.values.is_empty() {
            return 0.0;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) as usize % self.values.len();
        self.values[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_random_is_in_range() {
        for _ in 0..1000 {
            let v = FastRandom.unit();
            assert!((0.0..1.0).contains(&v));
        }
        let f = FixedRandom::new([2.0, f64::NAN, -1.0]);
        assert!(f.unit() < 1.0);
        assert_eq!(f.unit(), 0.0);
        assert_eq!(f.unit(), 0.0);
        assert_eq!(FixedRandom::new([]).unit(), 0.0);
    }
}
