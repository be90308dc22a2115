//! Shared pieces of the retry simulations: a seeded random source and a
//! paused tokio runtime, so a simulated minute runs in milliseconds and
//! every run prints the same table.

use std::sync::Mutex;

use buttress::common::Random;

/// A seeded, shareable random source.
#[derive(Debug)]
pub(crate) struct Seeded(Mutex<fastrand::Rng>);

impl Seeded {
    /// A source seeded with `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self(Mutex::new(fastrand::Rng::with_seed(seed)))
    }

    /// A normal draw with mean `mean` and deviation `sd`, at least zero.
    #[allow(dead_code)] // used by one simulation of the two
    pub(crate) fn normal(&self, mean: f64, sd: f64) -> f64 {
        let mut rng = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Box–Muller.
        let u1 = rng.f64().max(f64::MIN_POSITIVE);
        let u2 = rng.f64();
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        (mean + sd * z).max(0.0)
    }
}

impl Random for Seeded {
    fn unit(&self) -> f64 {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .f64()
    }
}

/// Runs `f` on a current-thread runtime whose clock is paused: time jumps
/// to the next timer whenever every task waits.
pub(crate) fn simulate<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a tokio runtime")
        .block_on(f)
}

/// Whether `--quick` was passed (CI runs the simulations small).
#[allow(dead_code)] // not every simulation has a small version
pub(crate) fn quick() -> bool {
    std::env::args().any(|a| a == "--quick")
}
