//! The checkpoint store beside the raw atomic-replace sequence, and the
//! cost of checkpointing in a consumer loop, in one run:
//!
//! ```text
//! cargo bench -p buttress-benches --bench checkpoint
//! BUTTRESS_INTERLEAVE=150 cargo bench -p buttress-benches --bench checkpoint
//! ```
//!
//! The second form runs the gated routines (`buttress_benches::cases::
//! checkpoint`) alternately instead of criterion: `fsync` times drift by
//! the minute on a shared disk, and only same-run ratios of interleaved
//! rounds survive that.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use buttress_checkpoint::{Checkpointer, FileStore, FileStoreConfig, Policy};
use criterion::{Criterion, criterion_group};
use serde::{Deserialize, Serialize};

fn fresh(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-checkpoint-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    dir
}

/// A 4 KiB state (as JSON): a cursor and 500 weights.
#[derive(Serialize, Deserialize)]
struct State {
    cursor: u64,
    weights: Vec<u32>,
}

fn state(n: u64) -> State {
    State {
        cursor: n,
        weights: (0..500).map(|i| 1_000_000 + i).collect(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

/// The gated rows (`buttress_benches::cases::checkpoint`): the store's
/// save beside the raw protocol. fsync times on a shared disk drift a lot,
/// so `BUTTRESS_INTERLEAVE=1` runs the two alternately instead and prints
/// medians and the median ratio of each round.
fn save_latency(c: &mut Criterion) {
    use buttress_benches::cases::checkpoint as cases;
    let bytes = serde_json::to_vec(&state(0)).expect("json");
    eprintln!("state: {} bytes of JSON", bytes.len());
    let mut g = c.benchmark_group("checkpoint_save_4k");
    g.sample_size(30).measurement_time(Duration::from_secs(6));
    let mut ours = cases::save_4k();
    g.bench_function("buttress_save", |b| b.iter_custom(&mut ours));
    let mut raw = cases::raw_save_4k();
    g.bench_function("raw_temp_write_fsync_rename_fsync_dir", |b| {
        b.iter_custom(&mut raw)
    });
    g.finish();
}

/// Work standing in for what a consumer does with each event.
fn work(event: u64, rounds: u32) -> u64 {
    let mut h = event;
    for _ in 0..rounds {
        h = black_box(h.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) ^ 0xA5A5);
    }
    h
}

fn consumer_loop(c: &mut Criterion) {
    let mut g = c.benchmark_group("checkpoint_consumer_every_100");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    // Two amounts of work per event; the "work only" rows measure them
    // (about 14 µs and 69 µs per event on the development machines).
    for (label, rounds) in [("10k_rounds", 10_000u32), ("50k_rounds", 50_000)] {
        g.bench_function(format!("work_only_{label}_x1000_events"), |b| {
            b.iter(|| {
                let mut acc = 0u64;
                for e in 0..1000 {
                    acc ^= work(e, rounds);
                }
                black_box(acc)
            })
        });
        let rt = runtime();
        let dir = fresh(&format!("loop-{label}"));
        let store = FileStore::open(&dir, "loop", FileStoreConfig::default()).expect("store");
        let mut cp = Checkpointer::new(store, Policy::every_events(100));
        let mut st = state(0);
        g.bench_function(
            format!("work_{label}_and_checkpoint_every_100_x1000_events"),
            |b| {
                b.iter(|| {
                    rt.block_on(async {
                        let mut acc = 0u64;
                        for e in 0..1000 {
                            acc ^= work(e, rounds);
                            st.cursor = e;
                            cp.tick(&st).await.expect("checkpoint");
                        }
                        black_box(acc)
                    })
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, save_latency, consumer_loop);

fn main() {
    use buttress_benches::cases::checkpoint as cases;
    let mut rows: Vec<(&str, buttress_benches::Routine)> = vec![
        ("raw_save_4k", cases::raw_save_4k()),
        ("save_4k", cases::save_4k()),
    ];
    if buttress_benches::interleave(&mut rows, 20) {
        return;
    }
    drop(rows);
    benches();
    Criterion::default().configure_from_args().final_summary();
}
