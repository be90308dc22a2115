//! Events delivered to listeners.

use std::time::Duration;

use buttress_core::{Name, Outcome};

use crate::state::{Reason, State};

/// Something that happened to a breaker, delivered to the listeners given
/// to [`Builder::on_event`](crate::Builder::on_event).
///
/// Listeners run on the thread of the call that caused the event, after the
/// breaker's own bookkeeping and outside every lock; a listener that panics
/// is contained and logged. Keep them short.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BreakerEvent {
    /// The breaker changed state.
    StateChanged {
        /// Which breaker.
        name: Name,
        /// The state it left.
        from: State,
        /// The state it entered.
        to: State,
        /// Why.
        reason: Reason,
        /// How long it will stay open, when it opened.
        open_for: Option<Duration>,
        /// The generation of the new state. Listeners run outside the
        /// breaker's lock, so two reports can arrive out of order; the
        /// generation orders them.
        generation: u64,
    },
    /// A call was refused.
    Rejected {
        /// Which breaker.
        name: Name,
        /// The state that refused it.
        state: State,
        /// When it will admit again, if known.
        retry_after: Option<Duration>,
    },
    /// The outcome of an admitted call was recorded.
    Recorded {
        /// Which breaker.
        name: Name,
        /// The outcome.
        outcome: Outcome,
        /// Whether the call was slow.
        slow: bool,
        /// Whether it was a half-open probe.
        probe: bool,
        /// Whether it was dropped because the breaker changed state since
        /// the call was admitted.
        stale: bool,
    },
}
