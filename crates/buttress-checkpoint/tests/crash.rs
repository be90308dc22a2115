//! Power loss after every prefix of many saves, for every kind of crash:
//! `load` returns the previous or the new checkpoint, never an error,
//! never a partial one, never one older than the last acknowledged save.
//! Once with the async `save`/`load` on a tokio runtime, once with
//! `FileStore::save_blocking`/`load_blocking` and no runtime at all.

use std::path::Path;
use std::sync::Arc;

use buttress_checkpoint::{
    FileStore, FileStoreConfig, Json, LoadError, Loaded, SaveError, Store, load, save,
};
use buttress_fs::{Crash, SimFs};

fn dir() -> &'static Path {
    Path::new("/ckpt")
}

/// A state whose size crosses the 4 KiB tearing boundary now and then, and
/// whose content is a function of its sequence.
fn state(seq: u64) -> Vec<u64> {
    let len = [10, 700, 40, 1500][seq as usize % 4];
    (0..len).map(|i| seq * 1_000_003 + i).collect()
}

/// How the saves (and the loads that check them) are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// `save` and `load`, on a tokio runtime.
    Async,
    /// `FileStore::save_blocking` and `load_blocking`, with no runtime.
    Blocking,
}

/// Saves and loads one way or the other.
struct Saver {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Saver {
    fn new(via: Via) -> Saver {
        let runtime = (via == Via::Async).then(|| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime")
        });
        if runtime.is_none() {
            assert!(tokio::runtime::Handle::try_current().is_err());
        }
        Saver { runtime }
    }

    fn save(&self, store: &FileStore, seq: u64) -> Result<(), SaveError> {
        match &self.runtime {
            Some(rt) => rt.block_on(save(store, &Json, seq, &state(seq))),
            None => store.save_blocking(&Json, seq, &state(seq)),
        }
    }

    fn load(&self, store: &FileStore) -> Result<Option<Loaded<Vec<u64>>>, LoadError> {
        match &self.runtime {
            Some(rt) => rt.block_on(load(store, &Json)),
            None => store.load_blocking(&Json),
        }
    }

    fn latest_seq(&self, store: &FileStore) -> Result<u64, LoadError> {
        match &self.runtime {
            Some(rt) => rt.block_on(store.latest_seq()),
            None => store.latest_seq_blocking(),
        }
    }
}

fn check(keep: usize, via: Via) -> usize {
    let fs = SimFs::new();
    let store = FileStore::open_with(
        Arc::new(fs.clone()),
        dir(),
        "s",
        FileStoreConfig::default().keep(keep),
    )
    .expect("open");
    let saver = Saver::new(via);
    // (seq, ops logged when its save was acknowledged)
    let mut acked = Vec::new();
    for seq in 1..=12u64 {
        saver.save(&store, seq).expect("save");
        acked.push((seq, fs.op_count()));
    }
    drop(store);
    let total = fs.op_count();
    for prefix in 0..=total {
        let last_acked = acked
            .iter()
            .filter(|(_, ops)| *ops <= prefix)
            .map(|(s, _)| *s)
            .max();
        // The highest save that had started by this prefix.
        let started = acked.iter().filter(|(_, ops)| *ops <= prefix).count() as u64 + 1;
        for crash in Crash::ALL {
            let after = fs.crash_after(prefix, crash);
            // A new writer opens it (cleaning temp files) and loads.
            let store = FileStore::open_with(
                Arc::new(after.clone()),
                dir(),
                "s",
                FileStoreConfig::default().keep(keep),
            )
            .unwrap_or_else(|e| panic!("prefix {prefix} {crash:?}: open: {e}"));
            let loaded = saver
                .load(&store)
                .unwrap_or_else(|e| panic!("prefix {prefix} {crash:?}: load: {e}"));
            match (loaded, last_acked) {
                (None, None) => {}
                (None, Some(acked)) => {
                    panic!("prefix {prefix} {crash:?}: lost acknowledged {acked}")
                }
                (Some(l), acked) => {
                    assert_eq!(
                        l.state,
                        state(l.seq),
                        "prefix {prefix} {crash:?}: partial state"
                    );
                    assert!(
                        l.seq >= acked.unwrap_or(0),
                        "prefix {prefix} {crash:?}: {} older than acknowledged {acked:?}",
                        l.seq
                    );
                    assert!(
                        l.seq <= started,
                        "prefix {prefix} {crash:?}: {} never saved",
                        l.seq
                    );
                    assert!(
                        l.skipped.is_empty(),
                        "prefix {prefix} {crash:?}: skipped {:?}",
                        l.skipped
                    );
                }
            }
            // And it saves again on top.
            let next = saver.latest_seq(&store).expect("latest") + 1;
            saver.save(&store, next).expect("save after recovery");
        }
    }
    total
}

#[test]
fn every_prefix_every_crash_keep_one() {
    assert!(check(1, Via::Async) > 60);
}

#[test]
fn every_prefix_every_crash_keep_three() {
    check(3, Via::Async);
}

#[test]
fn blocking_saves_every_prefix_every_crash_keep_one() {
    assert!(check(1, Via::Blocking) > 60);
}

#[test]
fn blocking_saves_every_prefix_every_crash_keep_three() {
    check(3, Via::Blocking);
}

/// Both paths make the same operations, so the same crash states, except
/// where an async save removes the generations it made redundant: after it
/// is acknowledged, while the caller (and its next save) goes on, so those
/// removals may come later in the log. The crash states of that order are
/// the async runs' above.
#[test]
fn blocking_and_async_saves_log_the_same_operations() {
    let log = |via| {
        let fs = SimFs::new();
        let store = FileStore::open_with(
            Arc::new(fs.clone()),
            dir(),
            "s",
            FileStoreConfig::default().keep(2),
        )
        .expect("open");
        let saver = Saver::new(via);
        for seq in 1..=5 {
            saver.save(&store, seq).expect("save");
        }
        // Waits for the last removals.
        drop(store);
        // Temp names hold a random part; compare everything else.
        let (mut removed, rest): (Vec<String>, Vec<String>) = fs
            .log()
            .iter()
            .map(|op| {
                let op = format!("{op:?}");
                let mut pieces = op.split(".tmp-");
                let first = pieces.next().unwrap_or_default().to_owned();
                pieces.fold(first, |canonical, piece| {
                    canonical
                        + ".tmp-"
                        + piece.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '-')
                })
            })
            .partition(|op| op.starts_with("Remove"));
        removed.sort();
        (rest, removed)
    };
    let (blocking, blocking_removed) = log(Via::Blocking);
    let (asynchronous, async_removed) = log(Via::Async);
    assert_eq!(blocking, asynchronous);
    assert_eq!(blocking_removed, async_removed);
    assert_eq!(blocking_removed.len(), 3, "generations 1 to 3 removed");
}
