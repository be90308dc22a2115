//! Gated routines for buttress-checkpoint.
//!
//! Saving a 4 KiB checkpoint with the file store (the async `save` on a
//! current-thread runtime, default config: three generations kept), beside
//! the raw atomic replace it implements: write a temp file, `fsync` it,
//! rename it over the target, `fsync` the directory. Both serialize the
//! same state as JSON inside the measured loop, and both are durable when
//! an iteration ends.
//!
//! Each routine works under a fresh directory of its own in the system's
//! temp directory, removed when the routine is dropped.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::time::Instant;

use buttress_checkpoint::{FileStore, FileStoreConfig, Json, save};
use serde::{Deserialize, Serialize};

use crate::{Routine, TempDir};

/// A 4 KiB state (as JSON): a cursor and 500 weights.
#[derive(Debug, Serialize, Deserialize)]
pub struct State {
    /// Where the consumer stopped.
    pub cursor: u64,
    /// What it learned.
    pub weights: Vec<u32>,
}

/// State number `n`.
pub fn state(n: u64) -> State {
    State {
        cursor: n,
        weights: (0..500).map(|i| 1_000_000 + i).collect(),
    }
}

/// `save(&store, &Json, seq, &state(seq))` on a current-thread runtime,
/// with a [`FileStore`] of the default config: durable when it returns.
pub fn save_4k() -> Routine {
    let dir = TempDir::new("checkpoint-save");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let store = FileStore::open(dir.path(), "bench", FileStoreConfig::default()).expect("store");
    let mut seq = 0u64;
    Box::new(move |iters| {
        let _dir = &dir;
        let start = Instant::now();
        for _ in 0..iters {
            seq += 1;
            rt.block_on(save(&store, &Json, seq, &state(seq)))
                .expect("save");
        }
        start.elapsed()
    })
}

/// The raw protocol: serialize, create a temp file exclusively, write,
/// `fsync`, close, rename over the target, `fsync` the directory.
pub fn raw_save_4k() -> Routine {
    let dir = TempDir::new("checkpoint-raw");
    let mut n = 0u64;
    Box::new(move |iters| {
        let dir = dir.path();
        let start = Instant::now();
        for _ in 0..iters {
            n += 1;
            let bytes = serde_json::to_vec(&state(n)).expect("json");
            let temp = dir.join(format!("state.tmp-{n}"));
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)
                .expect("create");
            file.write_all(&bytes).expect("write");
            file.sync_all().expect("fsync");
            drop(file);
            std::fs::rename(&temp, dir.join("state")).expect("rename");
            File::open(dir).expect("dir").sync_all().expect("fsync dir");
        }
        start.elapsed()
    })
}
