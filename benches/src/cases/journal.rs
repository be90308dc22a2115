//! Gated routines for buttress-journal.
//!
//! The tower layer's cost per request, beside the bare service it wraps,
//! the journal's plain buffered append, and the raw system calls a
//! hand-written journal makes. Every journal row ends each sample with
//! every event written to the file (`flush_blocking`), so nothing is left
//! queued: [`buffered_append`] and [`layer_sustained`] time that wait,
//! [`layer`] times the request path only (see there).
//!
//! Each routine builds its subject once, under a fresh directory of its
//! own in the system's temp directory, removed when the routine is
//! dropped.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use buttress_journal::{Durability, Journal, JournalConfig, JournalLayer, events};
use serde::Serialize;
use tower::Layer;

use crate::{Routine, TempDir, current_thread, noop, service_routine, through};

/// The event the append and raw rows write: a ~240-byte JSON object, as a
/// service's telemetry would be.
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    kind: &'a str,
    service: &'a str,
    route: &'a str,
    model: &'a str,
    status: u16,
    latency_us: u64,
    tokens_in: u32,
    tokens_out: u32,
    trace_id: &'a str,
    seq: u64,
}

/// The append and raw rows' event number `seq`.
pub fn event(seq: u64) -> Event<'static> {
    Event {
        kind: "completion",
        service: "knowledge-api",
        route: "/v1/answers",
        model: "llama-3.1-8b-instruct-q4",
        status: 200,
        latency_us: 183_412,
        tokens_in: 1_536,
        tokens_out: 412,
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        seq,
    }
}

/// The event the layer records for a request: what an access log keeps
/// (about 90 bytes of JSON).
#[derive(Debug, Serialize)]
pub struct RequestEvent {
    route: &'static str,
    request: u64,
    status: u16,
    ok: bool,
    latency_ns: u64,
}

/// The journal config of the journal rows: buffered (acknowledged once
/// queued, written by the writer thread), files of 64 MiB, the newest four
/// kept so that long runs do not fill the disk.
fn config() -> JournalConfig {
    JournalConfig::default()
        .durability(Durability::Buffered)
        .keep_files(Some(4))
}

/// The bare service: one request through `noop()` on a current-thread
/// runtime, as the layer row runs it.
pub fn noop_service() -> Routine {
    service_routine(noop())
}

/// Requests the layer rows time between two waits for the writer: their
/// events fit the queue (8 MiB) many times over, so the writer can keep
/// up with every burst.
const BURST: u64 = 8192;

/// The layered service the layer rows measure: `JournalLayer` over
/// `noop()`, recording one [`RequestEvent`] per request in a buffered
/// journal of its own.
fn layered(
    name: &str,
) -> (
    TempDir,
    Journal,
    impl tower::Service<u64, Response = u64, Error = std::io::Error, Future: Send> + Send,
) {
    let dir = TempDir::new(&format!("journal-{name}"));
    let journal = Journal::open(dir.path(), "layer", config()).expect("journal");
    let svc = JournalLayer::new(
        journal.clone(),
        events(
            |request: &u64| *request,
            |request, result: &Result<u64, std::io::Error>, took: Duration| {
                Some(RequestEvent {
                    route: "/v1/answers",
                    request,
                    status: if result.is_ok() { 200 } else { 500 },
                    ok: result.is_ok(),
                    latency_ns: took.as_nanos() as u64,
                })
            },
        ),
    )
    .layer(noop());
    (dir, journal, svc)
}

/// The layer's cost on the request path: one request through
/// `JournalLayer` over `noop()` on a current-thread runtime, recording one
/// [`RequestEvent`] per request in a buffered journal. The requests are
/// timed in bursts of `BURST` (8,192); after each burst the routine waits,
/// untimed, until the writer thread has written every event of it, so
/// every event is in the file before a sample ends and the writer never
/// falls behind from one burst to the next. What the writer does during a
/// burst (serializing the events, on the other core) competes with the
/// requests as it would in a service; the time the disk takes to absorb
/// gigabytes does not count ([`layer_sustained`] counts it).
pub fn layer() -> Routine {
    let rt = current_thread();
    let (dir, journal, mut svc) = layered("layer");
    let mut next = 0u64;
    Box::new(move |iters| {
        let _dir = &dir;
        let _entered = rt.enter();
        let mut took = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let burst = left.min(BURST);
            let start = Instant::now();
            for _ in 0..burst {
                next += 1;
                let _ = std::hint::black_box(through(&mut svc, next));
            }
            took += start.elapsed();
            journal.flush_blocking().expect("flush");
            left -= burst;
        }
        took
    })
}

/// [`layer`] with the writer's time counted too: the requests, then the
/// wait until every event is written, all timed. With a fast producer
/// this measures the writer thread's throughput (it serializes each
/// event) and, over long runs, the disk's (every 64 MiB the journal syncs
/// the file it seals); not gated.
pub fn layer_sustained() -> Routine {
    let rt = current_thread();
    let (dir, journal, mut svc) = layered("layer-sustained");
    let mut next = 0u64;
    Box::new(move |iters| {
        let _dir = &dir;
        let _entered = rt.enter();
        let start = Instant::now();
        for _ in 0..iters {
            next += 1;
            let _ = std::hint::black_box(through(&mut svc, next));
        }
        journal.flush_blocking().expect("flush");
        start.elapsed()
    })
}

/// `append_blocking` of [`event`] in a buffered journal, until every event
/// is written to the file (`flush_blocking`, timed). Each call opens a
/// fresh journal in a fresh directory and closes it after, untimed (as the
/// raw rows' files, a journal's files are never fuller than one call
/// makes them, so no call pays for a rotation's `fdatasync` of 64 MiB
/// written by the calls before it, which no raw row pays either).
pub fn buffered_append() -> Routine {
    let dir = TempDir::new("journal-append");
    let mut seq = 0u64;
    let mut call = 0u64;
    Box::new(move |iters| {
        call += 1;
        let path = dir.path().join(call.to_string());
        let journal = Journal::open(&path, "append", config()).expect("journal");
        let start = Instant::now();
        for _ in 0..iters {
            seq += 1;
            journal.append_blocking(&event(seq)).expect("append");
        }
        journal.flush_blocking().expect("flush");
        let took = start.elapsed();
        drop(journal);
        let _ = std::fs::remove_dir_all(&path);
        took
    })
}

/// A fresh file in `O_APPEND` mode under `dir`, replaced when it passes
/// 64 MiB (outside the timing) so that long runs do not fill the disk.
struct RawFile {
    dir: TempDir,
    file: File,
    written: u64,
}

impl RawFile {
    fn new(name: &str) -> RawFile {
        let dir = TempDir::new(&format!("journal-{name}"));
        let file = Self::open(dir.path());
        RawFile {
            dir,
            file,
            written: 0,
        }
    }

    fn open(dir: &Path) -> File {
        let path = dir.join("raw.jsonl");
        let _ = std::fs::remove_file(&path);
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("raw file")
    }

    fn recycle(&mut self) {
        if self.written > 64 << 20 {
            self.file = Self::open(self.dir.path());
            self.written = 0;
        }
    }
}

fn line(buf: &mut Vec<u8>, seq: u64) {
    buf.clear();
    serde_json::to_writer(&mut *buf, &event(seq)).expect("serialize");
    buf.push(b'\n');
}

/// The events [`buffered_append`] writes, serialized and written with one
/// `write` each: what a journal without a lock costs.
pub fn raw_write() -> Routine {
    raw_appends::<false>("raw")
}

/// The hand-written journal: `flock`, one `write`, unlock per event.
pub fn raw_flock_write() -> Routine {
    raw_appends::<true>("raw-flock")
}

/// One serialized event per `write` to a plain append-only file, each
/// under `flock` when `FLOCK`.
fn raw_appends<const FLOCK: bool>(name: &str) -> Routine {
    let mut raw = RawFile::new(name);
    let mut buf = Vec::with_capacity(256);
    let mut seq = 0u64;
    Box::new(move |iters| {
        raw.recycle();
        let start = Instant::now();
        for _ in 0..iters {
            seq += 1;
            line(&mut buf, seq);
            if FLOCK {
                raw.file.lock().expect("flock");
            }
            raw.file.write_all(&buf).expect("write");
            if FLOCK {
                raw.file.unlock().expect("unlock");
            }
        }
        let took = start.elapsed();
        raw.written += iters * buf.len() as u64;
        took
    })
}
