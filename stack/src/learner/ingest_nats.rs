//! The reading side for the NATS source: a durable JetStream consumer on
//! the telemetry stream, set at start to the message after the checkpoint,
//! feeding processing in stream order, and paused, as the journal reader
//! is, while too much is read and not yet processed.
//!
//! The learner's checkpoint stays the authority on what was processed, as
//! with the journal: an event's position is its stream sequence. The
//! durable consumer keeps, on the server, how far the learner has read
//! (its pending count is the learner's lag). It is created again at each
//! start, positioned after the checkpoint, because what it delivered
//! before a crash may not have been processed, and a consumer cannot be
//! moved back; it acknowledges nothing (`AckPolicy::None`), so the server
//! never redelivers out of order behind events already processed.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{self, pull};
use buttress::BoxError;
use buttress::journal::{Cursor, ReadStats};
use buttress::pressure::Gauge;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;

use super::ingest::{CHUNK_BYTES, CHUNK_RECORDS, event_of};
use super::known::Event;
use super::stats::Shared;
use crate::nats::JetStream;

/// The running consumer task; stops when dropped.
#[derive(Debug)]
pub(super) struct NatsIngest {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl NatsIngest {
    /// (Re)creates the durable consumer `name` on `js`'s stream, from the
    /// message after `after` (a stream sequence; 0 for the first), and
    /// starts reading it into `tx`.
    pub(super) async fn start(
        js: &JetStream,
        name: &str,
        after: u64,
        gauge: Gauge,
        tx: UnboundedSender<Vec<Event>>,
        stats: Arc<Shared>,
        poll: Duration,
    ) -> Result<NatsIngest, BoxError> {
        let context = js.context().await?;
        let stream = context
            .get_stream(js.stream())
            .await
            .map_err(|e| format!("the stream {} is not there: {e}", js.stream()))?;
        // What the consumer delivered before may not have been processed:
        // start again from the checkpoint.
        match stream.delete_consumer(name).await {
            Ok(_) => {}
            Err(e) if e.to_string().contains("not found") => {}
            Err(e) => return Err(format!("the consumer {name} could not be reset: {e}").into()),
        }
        let deliver_policy = if after == 0 {
            consumer::DeliverPolicy::All
        } else {
            consumer::DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            }
        };
        let consumer: consumer::Consumer<pull::Config> = stream
            .create_consumer(pull::Config {
                durable_name: Some(name.to_owned()),
                description: Some(
                    "the learner's read position (its checkpoint is the authority)".to_owned(),
                ),
                deliver_policy,
                ack_policy: consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("the consumer {name} could not be created: {e}"))?;
        tracing::info!(
            consumer = name,
            stream = js.stream(),
            from = after + 1,
            "reading the telemetry stream"
        );
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(consumer, gauge, tx, stats, poll, after, stopped));
        Ok(NatsIngest {
            stop,
            task: Some(task),
        })
    }

    /// Stops the task and waits for it.
    pub(super) async fn stop(&mut self) {
        self.stop.send_replace(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for NatsIngest {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

async fn run(
    consumer: consumer::Consumer<pull::Config>,
    gauge: Gauge,
    tx: UnboundedSender<Vec<Event>>,
    stats: Arc<Shared>,
    poll: Duration,
    mut last: u64,
    mut stop: watch::Receiver<bool>,
) {
    let mut messages = None;
    let mut was_paused = false;
    while !*stop.borrow() {
        if gauge.is_paused() {
            if !was_paused {
                was_paused = true;
                stats.paused(gauge.level());
                tracing::info!(
                    unprocessed_bytes = gauge.level(),
                    "reading paused: too much read and not processed yet"
                );
            }
            tokio::select! {
                () = gauge.wait_flowing() => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        if was_paused {
            was_paused = false;
            stats.resumed(gauge.level());
            tracing::info!(unprocessed_bytes = gauge.level(), "reading goes on");
        }
        let stream = match &mut messages {
            Some(s) => s,
            None => match consumer.messages().await {
                Ok(s) => messages.insert(s),
                Err(e) => {
                    tracing::warn!(error = %e, "the telemetry stream could not be read; trying again");
                    pause(poll, &mut stop).await;
                    continue;
                }
            },
        };
        let first = tokio::select! {
            m = stream.next() => m,
            _ = stop.changed() => continue,
        };
        let mut chunk = Vec::new();
        let mut bytes = 0u64;
        let mut next = first;
        loop {
            match next {
                Some(Ok(m)) => {
                    // Not after the last one: delivered again (a
                    // reconnect), so processed or in hand already.
                    if let Ok(seq) = m.info().map(|i| i.stream_sequence)
                        && seq > last
                    {
                        last = seq;
                        let event = event_of(
                            &m.payload,
                            Cursor {
                                file: 0,
                                offset: seq,
                            },
                        );
                        bytes += event.bytes;
                        chunk.push(event);
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "reading the telemetry stream failed; reading again");
                    messages = None;
                    break;
                }
                None => {
                    messages = None;
                    break;
                }
            }
            if chunk.len() >= CHUNK_RECORDS || bytes >= CHUNK_BYTES {
                break;
            }
            // Take what has arrived already, without waiting for more.
            match messages.as_mut().and_then(|s| s.next().now_or_never()) {
                Some(m) => next = m,
                None => break,
            }
        }
        if chunk.is_empty() {
            if messages.is_none() {
                pause(poll, &mut stop).await;
            }
            continue;
        }
        gauge.add(bytes);
        stats.read(gauge.level(), 0, ReadStats::default());
        if tx.send(chunk).is_err() {
            gauge.sub(bytes);
            return;
        }
    }
}

async fn pause(poll: Duration, stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        () = tokio::time::sleep(poll) => {}
        _ = stop.changed() => {}
    }
}
