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

use async_nats::jetstream;
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

/// The durable consumer, and how to put it back at a sequence.
struct Position {
    stream: jetstream::stream::Stream,
    name: String,
}

impl Position {
    /// The consumer, (re)created to deliver from the message after `after`
    /// (a stream sequence; 0 for the first).
    async fn consumer_after(
        &self,
        after: u64,
    ) -> Result<consumer::Consumer<pull::Config>, BoxError> {
        let name = &self.name;
        match self.stream.delete_consumer(name).await {
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
        let consumer = self
            .stream
            .create_consumer(pull::Config {
                durable_name: Some(name.clone()),
                description: Some(
                    "the learner's read position (its checkpoint is the authority)".to_owned(),
                ),
                deliver_policy,
                ack_policy: consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("the consumer {name} could not be created: {e}"))?;
        Ok(consumer)
    }
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
        let position = Position {
            stream,
            name: name.to_owned(),
        };
        // What the consumer delivered before may not have been processed:
        // start again from the checkpoint.
        let consumer = position.consumer_after(after).await?;
        tracing::info!(
            consumer = name,
            stream = js.stream(),
            from = after + 1,
            "reading the telemetry stream"
        );
        let (stop, stopped) = watch::channel(false);
        let reader = Reader {
            position,
            consumer,
            messages: None,
            last: after,
            fresh: true,
        };
        let task = tokio::spawn(reader.run(gauge, tx, stats, poll, stopped));
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

/// The consumer task's state.
struct Reader {
    position: Position,
    consumer: consumer::Consumer<pull::Config>,
    messages: Option<pull::Stream>,
    /// The last sequence handed to processing.
    last: u64,
    /// Whether the consumer was just (re)created at `last + 1`: a gap
    /// before its first message is then the stream's (messages expired
    /// or deleted), not one in delivery.
    fresh: bool,
}

/// What to do with a delivered message.
#[derive(Debug, PartialEq, Eq)]
enum Take {
    /// The next one: process it.
    Next,
    /// At or before the last one: delivered again; processed or in hand.
    Again,
    /// After a gap the consumer may have caused (a delivery lost on a
    /// reconnect): read again from the gap.
    Gap,
}

/// `seq` after `last`: the next, a repeat, or a gap. After a fresh start
/// the first message may skip ahead: what is missing is gone from the
/// stream.
fn take(last: u64, seq: u64, fresh: bool) -> Take {
    if seq <= last {
        Take::Again
    } else if seq == last + 1 || fresh {
        Take::Next
    } else {
        Take::Gap
    }
}

impl Reader {
    async fn run(
        mut self,
        gauge: Gauge,
        tx: UnboundedSender<Vec<Event>>,
        stats: Arc<Shared>,
        poll: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
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
            let (chunk, bytes) = tokio::select! {
                c = self.next_chunk() => c,
                _ = stop.changed() => continue,
            };
            if chunk.is_empty() {
                if self.messages.is_none() {
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

    /// Waits for the next message, then takes what has arrived with it, up
    /// to a chunk: the events in stream order, and their bytes. Empty when
    /// reading must start again (an error, a gap).
    async fn next_chunk(&mut self) -> (Vec<Event>, u64) {
        let mut chunk = Vec::new();
        let mut bytes = 0u64;
        if self.messages.is_none() {
            match self.consumer.messages().await {
                Ok(s) => self.messages = Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "the telemetry stream could not be read; trying again");
                    return (chunk, bytes);
                }
            }
        }
        let Some(messages) = self.messages.as_mut() else {
            return (chunk, bytes);
        };
        let mut next = messages.next().await;
        loop {
            match next {
                Some(Ok(m)) => {
                    if let Ok(seq) = m.info().map(|i| i.stream_sequence) {
                        match take(self.last, seq, self.fresh) {
                            Take::Next => {
                                if seq > self.last + 1 {
                                    tracing::warn!(
                                        from = self.last + 1,
                                        to = seq - 1,
                                        "events gone from the stream before they were read (expired or deleted)"
                                    );
                                }
                                self.last = seq;
                                self.fresh = false;
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
                            Take::Again => {}
                            Take::Gap => {
                                tracing::warn!(
                                    expected = self.last + 1,
                                    got = seq,
                                    "a gap in delivery: reading again from the gap"
                                );
                                self.restart().await;
                                return (chunk, bytes);
                            }
                        }
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "reading the telemetry stream failed; reading again");
                    self.restart().await;
                    return (chunk, bytes);
                }
                None => {
                    self.restart().await;
                    return (chunk, bytes);
                }
            }
            if chunk.len() >= CHUNK_RECORDS || bytes >= CHUNK_BYTES {
                break;
            }
            // Take what has arrived already, without waiting for more.
            match self.messages.as_mut().and_then(|s| s.next().now_or_never()) {
                Some(m) => next = m,
                None => break,
            }
        }
        (chunk, bytes)
    }

    /// Puts the consumer back right after the last event handed over, so
    /// nothing delivered and lost on the way is skipped.
    async fn restart(&mut self) {
        self.messages = None;
        match self.position.consumer_after(self.last).await {
            Ok(c) => {
                self.consumer = c;
                self.fresh = true;
            }
            Err(e) => {
                tracing::warn!(error = %e, "the consumer could not be reset; reading on with it");
            }
        }
    }
}

async fn pause(poll: Duration, stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        () = tokio::time::sleep(poll) => {}
        _ = stop.changed() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_repeats_and_gaps() {
        assert_eq!(take(0, 1, true), Take::Next);
        assert_eq!(take(5, 6, false), Take::Next);
        assert_eq!(take(5, 5, false), Take::Again);
        assert_eq!(take(5, 2, true), Take::Again);
        assert_eq!(take(5, 7, false), Take::Gap);
        // Just re-positioned: what is missing is gone from the stream.
        assert_eq!(take(5, 9, true), Take::Next);
    }
}
