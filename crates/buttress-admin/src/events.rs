//! `GET /admin/events`: the status and every change, as server-sent
//! events.
//!
//! Each client gets a `status` event at once, a `breaker` event the moment
//! a breaker changes state (fed by the policy's state-change listeners,
//! which cost a breaker's calls nothing), an `applied` event for each new
//! policy version, and a fresh `status` whenever anything else changed
//! (looked at twice a second: limiters, gauges and executors have no
//! listeners, and their numbers move with every call). Each client reads
//! its own bounded buffer; one that falls behind loses the oldest events,
//! is sent a `dropped` event with how many, and a fresh `status`. Nothing
//! ever waits for a client.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use buttress_policy::PolicyEvent;
use futures_util::Stream;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Interval, MissedTickBehavior};

use crate::admin::Admin;
use crate::status::{self, Status};

/// How often the status is looked at for changes without listeners.
pub const STATUS_EVERY: Duration = Duration::from_millis(500);

struct Client {
    admin: Admin,
    events: Option<broadcast::Receiver<PolicyEvent>>,
    tick: Interval,
    last: Option<Status>,
    /// Events waiting to be sent, oldest first.
    ready: Vec<Event>,
}

pub(crate) async fn events(
    State(admin): State<Admin>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut tick = tokio::time::interval(STATUS_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let client = Client {
        events: admin.policy().map(|p| p.events()),
        admin,
        tick,
        last: None,
        ready: Vec::new(),
    };
    let stream = futures_util::stream::unfold(client, |mut c| async move {
        loop {
            if !c.ready.is_empty() {
                let event = c.ready.remove(0);
                return Some((Ok(event), c));
            }
            c.next().await;
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[derive(Serialize)]
struct BreakerChange<'a> {
    #[serde(flatten)]
    status: status::BreakerStatus,
    from: buttress_breaker::State,
    reason: &'a buttress_breaker::Reason,
}

#[derive(Serialize)]
struct Dropped {
    count: u64,
}

impl Client {
    /// Waits for what to send next and queues it.
    async fn next(&mut self) {
        if self.last.is_none() {
            self.send_status(true).await;
            return;
        }
        let event = match &mut self.events {
            Some(rx) => tokio::select! {
                biased;
                e = rx.recv() => Some(e),
                _ = self.tick.tick() => None,
            },
            None => {
                self.tick.tick().await;
                None
            }
        };
        match event {
            None => self.send_status(false).await,
            Some(Ok(PolicyEvent::Breaker {
                name, from, reason, ..
            })) => {
                if let Some(status) = self.admin.breaker_status(&name) {
                    let change = BreakerChange {
                        status,
                        from,
                        reason: &reason,
                    };
                    self.ready.push(json("breaker", &change));
                    // The badge counts open breakers: the status carries it.
                    self.send_status(false).await;
                }
            }
            Some(Ok(PolicyEvent::Applied { version, by })) => {
                self.ready.push(json(
                    "applied",
                    &serde_json::json!({ "version": version, "by": by }),
                ));
                self.send_status(false).await;
            }
            Some(Ok(_)) => {}
            Some(Err(RecvError::Lagged(count))) => {
                metrics::counter!("buttress_admin_events_dropped_total").increment(count);
                self.ready.push(json("dropped", &Dropped { count }));
                self.send_status(true).await;
            }
            Some(Err(RecvError::Closed)) => self.events = None,
        }
    }

    /// Queues the status if it changed since the last one sent (or always).
    /// The health part is the summary the page shows (each check's state),
    /// so that timings alone do not count as a change.
    async fn send_status(&mut self, always: bool) {
        let mut now = self.admin.snapshot();
        now.health = self.admin.health_summary().await;
        if always || self.last.as_ref() != Some(&now) {
            self.ready.push(json("status", &now));
            self.last = Some(now);
        }
    }
}

fn json(name: &'static str, data: &impl Serialize) -> Event {
    let text = serde_json::to_string(data).unwrap_or_else(|_| "null".to_owned());
    Event::default().event(name).data(text)
}
