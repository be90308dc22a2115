//! What the policy's primitives do that a status page wants at once.

use std::time::Duration;

use buttress_breaker::{BreakerEvent, Reason, State};
use tokio::sync::broadcast;

/// How many events a slow subscriber may fall behind before the oldest
/// are dropped (and counted, through `RecvError::Lagged`).
pub const EVENTS_BUFFERED: usize = 1024;

/// An event of a running policy, from [`Policy::events`](crate::Policy::events).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PolicyEvent {
    /// A dependency's breaker changed state.
    Breaker {
        /// The dependency (the breaker's name).
        name: String,
        /// The state it left.
        from: State,
        /// The state it entered.
        to: State,
        /// Why.
        reason: Reason,
        /// How long it will stay open, when it opened.
        #[serde(with = "humantime_serde")]
        open_for: Option<Duration>,
        /// Orders the reports of one breaker.
        generation: u64,
    },
    /// A new version of the policy was applied.
    Applied {
        /// Its number.
        version: u64,
        /// Who or what applied it.
        by: String,
    },
}

/// The sending side, shared by the breakers' listeners.
pub(crate) type Sender = broadcast::Sender<PolicyEvent>;

pub(crate) fn channel() -> Sender {
    broadcast::channel(EVENTS_BUFFERED).0
}

/// The listener a breaker is built with: state changes only, so the
/// breaker's call paths do not change. Sending never blocks; with nobody
/// subscribed it does nothing.
pub(crate) fn forward(tx: Sender) -> impl Fn(&BreakerEvent) + Send + Sync + 'static {
    move |event| {
        if tx.receiver_count() == 0 {
            return;
        }
        if let BreakerEvent::StateChanged {
            name,
            from,
            to,
            reason,
            open_for,
            generation,
        } = event
        {
            let _ = tx.send(PolicyEvent::Breaker {
                name: name.to_string(),
                from: *from,
                to: *to,
                reason: *reason,
                open_for: *open_for,
                generation: *generation,
            });
        }
    }
}
