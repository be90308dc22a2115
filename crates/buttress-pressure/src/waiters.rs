//! Wakers of tasks waiting for a gauge to flow, woken on every transition
//! to flowing.
//!
//! A waiter checks the state and registers under one lock; the notifier
//! flips the state (an atomic CAS) before it takes that lock. So a waiter
//! either sees the flip or is registered before the notifier drains the
//! list: no wake-up is lost (checked with loom).

use std::task::Waker;

use buttress_core::sync::{AtomicU64, Mutex, Ordering};
use hashbrown::HashMap;

#[derive(Debug)]
pub(crate) struct Waiters {
    next: AtomicU64,
    wakers: Mutex<HashMap<u64, Waker>>,
}

impl Default for Waiters {
    fn default() -> Self {
        Waiters {
            next: AtomicU64::new(0),
            wakers: Mutex::new(HashMap::new()),
        }
    }
}

impl Waiters {
    pub(crate) fn id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Under the lock: `ready()` decides; if not ready, `waker` is kept
    /// until the next notification.
    pub(crate) fn poll(&self, id: u64, waker: &Waker, ready: impl Fn() -> bool) -> bool {
        let mut wakers = self.wakers.lock();
        if ready() {
            wakers.remove(&id);
            return true;
        }
        match wakers.get_mut(&id) {
            Some(w) if w.will_wake(waker) => {}
            Some(w) => w.clone_from(waker),
            None => {
                wakers.insert(id, waker.clone());
            }
        }
        false
    }

    pub(crate) fn cancel(&self, id: u64) {
        self.wakers.lock().remove(&id);
    }

    /// Wakes every waiter; they check again.
    pub(crate) fn wake_all(&self) {
        let drained: Vec<Waker> = self.wakers.lock().drain().map(|(_, w)| w).collect();
        for waker in drained {
            waker.wake();
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.wakers.lock().len()
    }
}
