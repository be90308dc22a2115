//! The reading side: a thread that reads the journal from the saved
//! cursor, ahead of processing, and pauses while too much is read and not
//! yet processed.
//!
//! Reading is a blocking loop (the journal reader does file I/O and
//! decompression), so it runs on a thread of its own rather than on the
//! async workers. It adds each chunk's bytes to the backpressure gauge
//! before handing it over; processing subtracts them once the chunk's
//! events are stored. Before each chunk the thread waits while the gauge
//! is paused (at the high watermark, until the low one).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use buttress::journal::{Cursor, JournalReader, ReadError};
use buttress::pressure::{Gauge, Priority};
use serde::Deserialize;
use tokio::sync::mpsc::UnboundedSender;

use super::known::{Event, parse_hash};
use super::stats::Shared;

/// Records handed over at once, at most.
pub(super) const CHUNK_RECORDS: usize = 256;
/// Bytes handed over at once, at most (a chunk may pass it by one record).
pub(super) const CHUNK_BYTES: u64 = 1 << 20;

/// The fields of a query record the learner reads; the rest are ignored.
#[derive(Deserialize)]
struct Fields {
    question_sha256: String,
    #[serde(default)]
    at_ms: u64,
}

/// The running reader thread; stops when dropped.
#[derive(Debug)]
pub(super) struct Ingest {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ingest {
    /// Starts reading with `reader` (already at the saved cursor), sending
    /// chunks of events to `tx`.
    pub(super) fn spawn(
        reader: JournalReader,
        gauge: Gauge,
        tx: UnboundedSender<Vec<Event>>,
        stats: Arc<Shared>,
        poll: Duration,
    ) -> std::io::Result<Ingest> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("learner-ingest".to_owned())
            .spawn(move || run(reader, &gauge, &tx, &stats, poll, &flag))?;
        Ok(Ingest {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it (at most one poll interval).
    pub(super) fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(
    mut reader: JournalReader,
    gauge: &Gauge,
    tx: &UnboundedSender<Vec<Event>>,
    stats: &Shared,
    poll: Duration,
    stop: &AtomicBool,
) {
    let mut was_paused = false;
    while !stop.load(Ordering::Relaxed) {
        if gauge.is_paused() {
            if !was_paused {
                was_paused = true;
                stats.paused(gauge.level());
                tracing::info!(
                    unprocessed_bytes = gauge.level(),
                    "reading paused: too much read and not processed yet"
                );
            }
            gauge.wait_flowing_blocking(Priority::Normal, Some(poll));
            continue;
        }
        if was_paused {
            was_paused = false;
            stats.resumed(gauge.level());
            tracing::info!(unprocessed_bytes = gauge.level(), "reading goes on");
        }
        let (chunk, bytes) = match read_chunk(&mut reader) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, cursor = %reader.cursor(), "the journal could not be read; trying again");
                std::thread::sleep(poll);
                continue;
            }
        };
        let unread = reader.unprocessed_bytes().unwrap_or(0);
        if chunk.is_empty() {
            stats.read(gauge.level(), unread, reader.stats());
            std::thread::sleep(poll);
            continue;
        }
        gauge.add(bytes);
        stats.read(gauge.level(), unread, reader.stats());
        if tx.send(chunk).is_err() {
            // Processing has stopped.
            gauge.sub(bytes);
            return;
        }
    }
}

/// Up to a chunk of events from where `reader` is; fewer at the end of the
/// journal. A read error ends the chunk early when something was read (the
/// error comes back on the next call), so nothing read is lost.
fn read_chunk(reader: &mut JournalReader) -> Result<(Vec<Event>, u64), ReadError> {
    let mut chunk = Vec::new();
    let mut bytes = 0u64;
    while chunk.len() < CHUNK_RECORDS && bytes < CHUNK_BYTES {
        let raw = match reader.next_raw() {
            Ok(Some(raw)) => raw,
            Ok(None) => break,
            Err(e) if chunk.is_empty() => return Err(e),
            Err(_) => break,
        };
        let (line, at) = raw;
        let event = event_of(line, at);
        bytes += event.bytes;
        chunk.push(event);
    }
    Ok((chunk, bytes))
}

/// The event of a telemetry record `line` (a query record's JSON) at `at`;
/// a record that is not a query record has no hash (undecodable).
pub(super) fn event_of(line: &[u8], at: Cursor) -> Event {
    let (hash, at_ms) = match serde_json::from_slice::<Fields>(line) {
        Ok(f) => (parse_hash(&f.question_sha256), f.at_ms),
        Err(_) => (None, 0),
    };
    Event {
        hash,
        at,
        at_ms,
        bytes: line.len() as u64 + 1,
    }
}
