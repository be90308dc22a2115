//! Listener plumbing: user callbacks that cannot break the primitive.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// A user callback for events of type `E`.
pub type Listener<E> = Arc<dyn Fn(&E) + Send + Sync>;

/// A fixed list of listeners, set when a primitive is built.
///
/// [`Listeners::emit`] calls each listener in order and catches a panic in
/// any of them: the panic is reported through `tracing` and the remaining
/// listeners still run. A primitive therefore never changes its behaviour
/// because a callback misbehaved. With no listeners, `emit` costs one
/// branch.
pub struct Listeners<E> {
    list: Arc<[Listener<E>]>,
}

impl<E> Listeners<E> {
    /// No listeners.
    ///
    /// ```
    /// use buttress_core::Listeners;
    ///
    /// let none: Listeners<u32> = Listeners::new();
    /// assert!(none.is_empty());
    /// none.emit(&1); // does nothing
    /// ```
    pub fn new() -> Self {
        Self {
            list: Arc::from(Vec::new()),
        }
    }

    /// The listeners in `list`, called in that order.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use buttress_core::{Listener, Listeners};
    ///
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let (a, b) = (Arc::clone(&log), Arc::clone(&log));
    /// let first: Listener<&str> = Arc::new(move |e| a.lock().unwrap().push(format!("first {e}")));
    /// let second: Listener<&str> = Arc::new(move |e| b.lock().unwrap().push(format!("second {e}")));
    /// let listeners = Listeners::from_vec(vec![first, second]);
    /// listeners.emit(&"opened");
    /// assert_eq!(*log.lock().unwrap(), ["first opened", "second opened"]);
    /// ```
    pub fn from_vec(list: Vec<Listener<E>>) -> Self {
        Self {
            list: Arc::from(list),
        }
    }

    /// Whether there are no listeners (so building an event can be skipped).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use buttress_core::Listeners;
    ///
    /// let listeners: Listeners<String> = Listeners::from_vec(vec![Arc::new(|_| {})]);
    /// if !listeners.is_empty() {
    ///     listeners.emit(&format!("an event worth building: {}", 42));
    /// }
    /// assert!(Listeners::<String>::new().is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// How many listeners there are.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use buttress_core::Listeners;
    ///
    /// let listeners: Listeners<u32> = Listeners::from_vec(vec![Arc::new(|_| {}), Arc::new(|_| {})]);
    /// assert_eq!(listeners.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Calls every listener with `event`, isolating panics.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use buttress_core::{Listener, Listeners};
    ///
    /// let total = Arc::new(AtomicU32::new(0));
    /// let t = Arc::clone(&total);
    /// let buggy: Listener<u32> = Arc::new(|_| panic!("a bug in a callback"));
    /// let counter: Listener<u32> = Arc::new(move |n| {
    ///     t.fetch_add(*n, Ordering::SeqCst);
    /// });
    /// let listeners = Listeners::from_vec(vec![buggy, counter]);
    /// listeners.emit(&2); // the panic is contained; the counter still runs
    /// listeners.emit(&3);
    /// assert_eq!(total.load(Ordering::SeqCst), 5);
    /// ```
    pub fn emit(&self, event: &E) {
        for listener in self.list.iter() {
            if catch_unwind(AssertUnwindSafe(|| listener(event))).is_err() {
                tracing::warn!("a buttress event listener panicked; the panic was contained");
            }
        }
    }
}

impl<E> Clone for Listeners<E> {
    fn clone(&self) -> Self {
        Self {
            list: Arc::clone(&self.list),
        }
    }
}

impl<E> Default for Listeners<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> fmt::Debug for Listeners<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listeners")
            .field("len", &self.list.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_panicking_listener_does_not_stop_the_others() {
        let seen = Arc::new(AtomicUsize::new(0));
        let s = Arc::clone(&seen);
        let l: Listeners<u32> = Listeners::from_vec(vec![
            Arc::new(|_| panic!("listener bug")),
            Arc::new(move |e| {
                s.fetch_add(*e as usize, Ordering::SeqCst);
            }),
        ]);
        l.emit(&2);
        l.emit(&3);
        assert_eq!(seen.load(Ordering::SeqCst), 5);
        assert_eq!(l.len(), 2);
        assert!(Listeners::<u32>::new().is_empty());
    }
}
