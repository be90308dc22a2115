//! Requests run in place: by the caller's own task, in a running slot of
//! the executor, with no task spawned. One that finds a slot free and
//! nothing queued takes the slot at once and allocates nothing; one that
//! must wait is queued like a task, as a [`Ticket`] whose [`WaiterCell`]
//! it shares with the queue, and is woken when the queue gives it a slot.
//!
//! The cell's state goes from `Queued` to exactly one of `Granted` (the
//! queue gave it a slot), `Dropped` (the queue dropped it: a shutdown, or
//! the runtime went away) or `Abandoned` (its future went away first).
//! The two sides meet under the cell's lock, so a slot granted to a future
//! that has just gone is always given back, by whichever side comes
//! second.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use buttress_core::sync::Mutex;

use crate::task::{Cancel, CancelFlag};
use crate::worker::Meta;

/// What a queued in-place request shares with the queue; once it runs,
/// its cancel flag (a shutdown's deadline raises it).
pub(crate) struct WaiterCell {
    state: Mutex<Wait>,
    cancel: CancelFlag,
}

#[derive(Debug)]
enum Wait {
    /// In the queue; its future's waker, once polled.
    Queued(Option<Waker>),
    /// Given a slot, not yet taken by its future.
    Granted(Meta),
    /// Taken by its future (or never queued: a cell made only for its
    /// cancel flag).
    Running,
    /// Dropped from the queue: it never runs.
    Dropped,
    /// Its future went away before it was given a slot.
    Abandoned,
}

impl WaiterCell {
    /// A cell for a request about to be queued.
    pub(crate) fn queued() -> Self {
        WaiterCell {
            state: Mutex::new(Wait::Queued(None)),
            cancel: CancelFlag::default(),
        }
    }

    /// A cell for a request that already runs: only its cancel flag is
    /// used.
    pub(crate) fn running() -> Self {
        WaiterCell {
            state: Mutex::new(Wait::Running),
            cancel: CancelFlag::default(),
        }
    }

    /// Its slot, once granted (`Some`), or `None` if the queue dropped it;
    /// if neither yet, `cx` is woken by either.
    pub(crate) fn poll_grant(&self, cx: &Context<'_>) -> Poll<Option<Meta>> {
        let mut s = self.state.lock();
        match &mut *s {
            Wait::Queued(waker) => {
                match waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            Wait::Granted(meta) => {
                let meta = *meta;
                *s = Wait::Running;
                Poll::Ready(Some(meta))
            }
            Wait::Dropped => Poll::Ready(None),
            // Its own future polls it, so it cannot be abandoned; and it
            // is taken once.
            Wait::Running | Wait::Abandoned => Poll::Ready(None),
        }
    }

    /// The queue gives it the slot `meta` describes: whether its future
    /// is still there to take it (if not, the caller gives the slot back).
    fn grant(&self, meta: Meta) -> bool {
        let waker = {
            let mut s = self.state.lock();
            match &mut *s {
                Wait::Queued(waker) => {
                    let waker = waker.take();
                    *s = Wait::Granted(meta);
                    waker
                }
                Wait::Abandoned => return false,
                // Granted, dropped or running: not in the queue, so not
                // granted again.
                Wait::Granted(_) | Wait::Running | Wait::Dropped => return true,
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    /// Its future goes away while queued: the slot it was granted meanwhile,
    /// if any, for the caller to give back.
    pub(crate) fn abandon(&self) -> Option<Meta> {
        let mut s = self.state.lock();
        match std::mem::replace(&mut *s, Wait::Abandoned) {
            Wait::Granted(meta) => Some(meta),
            Wait::Queued(_) | Wait::Running | Wait::Dropped | Wait::Abandoned => None,
        }
    }

    /// The cancel flag of the running request.
    pub(crate) fn flag(&self) -> &CancelFlag {
        &self.cancel
    }
}

impl Cancel for WaiterCell {
    fn cancel(&self) -> bool {
        self.cancel.raise();
        true
    }
}

impl fmt::Debug for WaiterCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaiterCell")
            .field("state", &*self.state.lock())
            .finish_non_exhaustive()
    }
}

/// A queued in-place request, as the queue holds it. Dropped without a
/// grant (a shutdown drains the queue, or the runtime goes away), it
/// tells its future, which answers `Cancelled`.
pub(crate) struct Ticket {
    cell: Arc<WaiterCell>,
    pub(crate) priority: u8,
    pub(crate) queued_at: Instant,
}

impl Ticket {
    pub(crate) fn new(cell: Arc<WaiterCell>, priority: u8, queued_at: Instant) -> Self {
        Ticket {
            cell,
            priority,
            queued_at,
        }
    }

    /// Gives the request its slot: whether its future is still there (if
    /// not, the caller gives the slot back).
    pub(crate) fn grant(self, meta: Meta) -> bool {
        self.cell.grant(meta)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let waker = {
            let mut s = self.cell.state.lock();
            match &mut *s {
                Wait::Queued(waker) => {
                    let waker = waker.take();
                    *s = Wait::Dropped;
                    waker
                }
                _ => None,
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("priority", &self.priority)
            .finish_non_exhaustive()
    }
}

/// Where an admitted in-place request stands.
#[derive(Debug)]
pub(crate) enum Seat {
    /// It holds a running slot.
    Held(Meta),
    /// It waits in the queue.
    Queued {
        cell: Arc<WaiterCell>,
        id: u64,
        priority: u8,
    },
}
