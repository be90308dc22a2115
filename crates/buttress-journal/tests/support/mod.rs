//! Helpers shared by the journal's tests.
#![allow(dead_code, unreachable_pub)]

pub mod interleave;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use buttress_core::ManualClock;
use buttress_fs::{Fs, SimFs};
use buttress_journal::{Journal, JournalConfig, JournalReader, ReadStats};
use serde::{Deserialize, Serialize};

/// A test event whose padding is a function of its identity, so that a
/// record glued to or mixed with another cannot pass for valid.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Ev {
    pub p: u32,
    pub t: u32,
    pub s: u32,
    pub pad: String,
}

impl Ev {
    pub fn new(p: u32, t: u32, s: u32, len: usize) -> Ev {
        Ev {
            p,
            t,
            s,
            pad: Ev::pad_for(p, t, s, len),
        }
    }

    fn pad_char(p: u32, t: u32, s: u32) -> u8 {
        b'a' + ((p.wrapping_mul(7) ^ t.wrapping_mul(3) ^ s) % 26) as u8
    }

    fn pad_for(p: u32, t: u32, s: u32, len: usize) -> String {
        String::from_utf8(vec![Ev::pad_char(p, t, s); len]).expect("ascii")
    }

    /// Whether the padding is what `new` made.
    pub fn is_intact(&self) -> bool {
        self.pad.as_bytes() == vec![Ev::pad_char(self.p, self.t, self.s); self.pad.len()]
    }
}

pub fn sim_dir() -> &'static Path {
    Path::new("/j")
}

pub fn open_sim(fs: &SimFs, config: JournalConfig) -> Journal {
    Journal::open_with(
        Arc::new(fs.clone()),
        Arc::new(ManualClock::new()),
        sim_dir(),
        "t",
        config,
    )
    .expect("open journal")
}

/// A reader of journal "t" in [`sim_dir`] on `fs`, from the start.
pub fn sim_reader(fs: Arc<dyn Fs>) -> JournalReader {
    JournalReader::with_fs(fs, sim_dir(), "t")
}

/// Reads every record; panics on a read error.
pub fn read_all(fs: Arc<dyn Fs>, dir: &Path, name: &str) -> (Vec<Ev>, ReadStats) {
    let mut reader = JournalReader::with_fs(fs, dir, name);
    let mut out = Vec::new();
    while let Some(record) = reader.next_record::<Ev>().expect("read") {
        out.push(record.event);
    }
    (out, reader.stats())
}

/// The events `reader` reads from where it stands to the end; panics on a
/// read error.
pub fn events_from<T: serde::de::DeserializeOwned>(reader: &mut JournalReader) -> Vec<T> {
    std::iter::from_fn(|| reader.next_record::<T>().expect("read"))
        .map(|r| r.event)
        .collect()
}

/// Plain file `id` of journal "t" in [`sim_dir`].
pub fn plain(id: u64) -> PathBuf {
    sim_dir().join(format!("t.{id:010}.jsonl"))
}

/// Compressed file `id` of journal "t" in [`sim_dir`].
pub fn gz(id: u64) -> PathBuf {
    sim_dir().join(format!("t.{id:010}.jsonl.gz"))
}

/// Creates `path` in `fs` (and [`sim_dir`]) holding `bytes`.
pub fn put(fs: &SimFs, path: &Path, bytes: &[u8]) {
    fs.create_dir_all(sim_dir()).expect("test setup");
    fs.create_new(path)
        .and_then(|f| f.write_all(bytes))
        .expect("test setup");
}

/// `bytes`, gzipped.
pub fn gzipped(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("test setup");
    encoder.finish().expect("test setup")
}

/// A fresh directory under cargo's target tmp dir.
pub fn real_dir(name: &str) -> PathBuf {
    buttress_test_support::fresh_dir(env!("CARGO_TARGET_TMPDIR"), "journal", name)
}

/// The journal line of `event`, built from the documented format (not
/// with the crate's encoder).
pub fn record_line<T: Serialize>(event: &T) -> Vec<u8> {
    let body = serde_json::to_vec(event).expect("test setup");
    let mut line =
        format!("{{\"crc32c\":\"{:08x}\",\"event\":", crc32c::crc32c(&body)).into_bytes();
    line.extend_from_slice(&body);
    line.extend_from_slice(b"}\n");
    line
}
