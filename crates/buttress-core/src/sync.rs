//! The synchronisation types of the buttress state machines: std's, or
//! loom's when built with `--cfg loom`, so that the model checker can explore
//! every interleaving of the lock-free code that uses them.
//!
//! This module is for the buttress crates themselves; its contents follow
//! their needs.

#[cfg(loom)]
use loom::sync as imp;
#[cfg(not(loom))]
use std::sync as imp;

pub use imp::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};

/// A mutex whose `lock` never fails: a poisoned lock is recovered, because
/// every critical section of the machine leaves its data consistent before
/// anything that can panic.
#[derive(Debug)]
pub struct Mutex<T>(imp::Mutex<T>);

impl<T> Mutex<T> {
    /// A mutex holding `value`.
    pub fn new(value: T) -> Self {
        Self(imp::Mutex::new(value))
    }

    /// Locks, recovering a poisoned lock.
    pub fn lock(&self) -> imp::MutexGuard<'_, T> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Keeps a value on cache lines of its own (128 bytes: two lines, for the
/// adjacent-line prefetcher), so that a counter every call writes does not
/// slow down the words every call only reads.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Padded<T>(pub T);

/// Runs a loom model with at most three preemptions: enough for every race
/// the buttress tests check (two or three steps a thread), and fast. A
/// bound set through `LOOM_MAX_PREEMPTIONS` wins.
#[cfg(loom)]
pub fn loom_model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.check(f);
}
