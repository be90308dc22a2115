//! The synchronisation types of the state machine: std's, or loom's when the
//! crate is built with `--cfg loom` so that the model checker can explore
//! every interleaving.

#[cfg(loom)]
use loom::sync as imp;
#[cfg(not(loom))]
use std::sync as imp;

pub(crate) use imp::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};

/// A mutex whose `lock` never fails: a poisoned lock is recovered, because
/// every critical section of the machine leaves its data consistent before
/// anything that can panic.
#[derive(Debug)]
pub(crate) struct Mutex<T>(imp::Mutex<T>);

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(imp::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> imp::MutexGuard<'_, T> {
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
pub(crate) struct Padded<T>(pub(crate) T);
