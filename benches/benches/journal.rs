//! The journal side by side with the raw system calls and with
//! tracing-appender, in one run:
//!
//! ```text
//! cargo bench -p buttress-benches --bench journal
//! ```
//!
//! The gated rows come from `buttress_benches::cases::journal` (the report
//! measures the same routines). The tower layer's row is its cost on the
//! request path (every event is written before a sample ends, untimed; a
//! second row times the writer too). Every other figure is the time per
//! event until the events are where the mode promises (written to the
//! kernel, or synced), so a queue that merely defers work cannot look
//! fast. Events are the same ~240-byte JSON object everywhere (the
//! layer's, a ~90-byte access-log event), serialized inside the measured
//! loop. `BUTTRESS_INTERLEAVE=<rounds>` runs the gated routines
//! alternately instead of criterion, for same-run ratios on a noisy
//! machine.

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use buttress_benches::cases::journal::event;
use buttress_journal::{Durability, Journal, JournalConfig};
use criterion::{Criterion, Throughput, criterion_group};

/// A fresh, empty directory for one sample.
fn fresh(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-journal-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    dir
}

fn raw_file(name: &str) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(fresh(name).join("raw.jsonl"))
        .expect("raw file")
}

fn line(seq: u64) -> Vec<u8> {
    let mut buf = serde_json::to_vec(&event(seq)).expect("serialize");
    buf.push(b'\n');
    buf
}

fn open(name: &str, durability: Durability) -> Journal {
    Journal::open(
        fresh(name),
        "bench",
        JournalConfig::default().durability(durability),
    )
    .expect("journal")
}

/// The layer over the bare service, beside the bare service; the plain
/// buffered append and the raw system calls are the next group. (All are
/// `buttress_benches::cases::journal` routines; `BUTTRESS_INTERLEAVE` runs
/// them alternately instead, see `interleave`.)
fn layer(c: &mut Criterion) {
    use buttress_benches::cases::journal as cases;
    let mut g = c.benchmark_group("journal_layer_1_request");
    g.throughput(Throughput::Elements(1));
    g.sample_size(30).measurement_time(Duration::from_secs(4));
    let mut noop = cases::noop_service();
    g.bench_function("noop", |b| b.iter_custom(&mut noop));
    let mut layer = cases::layer();
    g.bench_function("journal_layer_over_noop", |b| b.iter_custom(&mut layer));
    let mut sustained = cases::layer_sustained();
    g.bench_function("journal_layer_over_noop_writer_timed_too", |b| {
        b.iter_custom(&mut sustained)
    });
    g.finish();
}

fn buffered(c: &mut Criterion) {
    use buttress_benches::cases::journal as cases;
    eprintln!("event: {} bytes of JSON", line(0).len() - 1);
    let mut g = c.benchmark_group("journal_buffered_1_thread");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    let mut append = cases::buffered_append();
    g.bench_function("buttress_append", |b| b.iter_custom(&mut append));
    g.bench_function("tracing_appender_non_blocking", |b| {
        b.iter_custom(|iters| {
            let file = raw_file("tracing-appender");
            let start = Instant::now();
            let (mut writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .finish(file);
            for i in 0..iters {
                writer.write_all(&line(i)).expect("write");
            }
            // Dropping the guard waits until the worker has written all.
            drop(writer);
            drop(guard);
            start.elapsed()
        })
    });
    let mut raw = cases::raw_write();
    g.bench_function("raw_write_per_event", |b| b.iter_custom(&mut raw));
    let mut raw_flock = cases::raw_flock_write();
    g.bench_function("raw_flock_write_per_event", |b| {
        b.iter_custom(&mut raw_flock)
    });
    g.finish();
}

fn group_commit(c: &mut Criterion) {
    let mut g = c.benchmark_group("journal_group_commit_4_threads");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10).measurement_time(Duration::from_secs(6));
    g.bench_function("buttress_append_256_in_flight_per_thread", |b| {
        b.iter_custom(|iters| {
            let journal = open("group", Durability::GroupCommit);
            let per_thread = iters.div_ceil(4);
            let barrier = Barrier::new(5);
            let start = std::thread::scope(|scope| {
                for t in 0..4u64 {
                    let journal = journal.clone();
                    let barrier = &barrier;
                    scope.spawn(move || {
                        let mut in_flight = std::collections::VecDeque::with_capacity(256);
                        barrier.wait();
                        for i in 0..per_thread {
                            if in_flight.len() == 256 {
                                let r: buttress_journal::Receipt =
                                    in_flight.pop_front().expect("non-empty");
                                r.wait_confirmed().expect("durable");
                            }
                            in_flight.push_back(
                                journal
                                    .append_queued_blocking(&event(t << 40 | i))
                                    .expect("append"),
                            );
                        }
                        for r in in_flight {
                            r.wait_confirmed().expect("durable");
                        }
                    });
                }
                barrier.wait();
                let start = Instant::now();
                // The scope ends when every thread has every event durable.
                start
            });
            // Scaled to `iters` events (the threads wrote a few more when
            // `iters` is not a multiple of four).
            let took = start
                .elapsed()
                .mul_f64(iters as f64 / (4 * per_thread.max(1)) as f64);
            drop(journal);
            took
        })
    });
    g.bench_function("raw_write_100_then_fdatasync", |b| {
        b.iter_custom(|iters| {
            let mut file = raw_file("raw-batch");
            let start = Instant::now();
            let mut batch = Vec::with_capacity(100 * 256);
            let mut i = 0;
            while i < iters {
                batch.clear();
                for _ in 0..100.min(iters - i) {
                    batch.extend_from_slice(&line(i));
                    i += 1;
                }
                file.write_all(&batch).expect("write");
                file.sync_data().expect("fdatasync");
            }
            start.elapsed()
        })
    });
    g.finish();
}

fn sync_each(c: &mut Criterion) {
    let mut g = c.benchmark_group("journal_sync_each_1_thread");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10).measurement_time(Duration::from_secs(6));
    g.bench_function("buttress_append", |b| {
        b.iter_custom(|iters| {
            let journal = open("sync-each", Durability::SyncEach);
            let start = Instant::now();
            for i in 0..iters {
                journal.append_blocking(&event(i)).expect("append");
            }
            let took = start.elapsed();
            drop(journal);
            took
        })
    });
    g.bench_function("raw_write_fdatasync", |b| {
        b.iter_custom(|iters| {
            let mut file = raw_file("raw-sync");
            let start = Instant::now();
            for i in 0..iters {
                file.write_all(&line(i)).expect("write");
                file.sync_data().expect("fdatasync");
            }
            black_box(&file);
            start.elapsed()
        })
    });
    g.finish();
}

criterion_group!(benches, layer, buffered, group_commit, sync_each);

fn main() {
    use buttress_benches::cases::journal as cases;
    let mut rows: Vec<(&str, buttress_benches::Routine)> = vec![
        ("noop_service", cases::noop_service()),
        ("layer", cases::layer()),
        ("layer_sustained", cases::layer_sustained()),
        ("buffered_append", cases::buffered_append()),
        ("raw_write", cases::raw_write()),
        ("raw_flock_write", cases::raw_flock_write()),
    ];
    if buttress_benches::interleave(&mut rows, 100_000) {
        return;
    }
    drop(rows);
    benches();
    Criterion::default().configure_from_args().final_summary();
}
