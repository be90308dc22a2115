//! Power loss after every prefix of many saves, for every kind of crash:
//! `load` returns the previous or the new checkpoint, never an error,
//! never a partial one, never one older than the last acknowledged save.

use std::path::Path;
use std::sync::Arc;

use buttress_checkpoint::{FileStore, FileStoreConfig, Json, load, save};
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

fn check(keep: usize) -> usize {
    let fs = SimFs::new();
    let store = FileStore::open_with(
        Arc::new(fs.clone()),
        dir(),
        "s",
        FileStoreConfig::default().keep(keep),
    )
    .expect("open");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    // (seq, ops logged when its save was acknowledged)
    let mut acked = Vec::new();
    for seq in 1..=12u64 {
        runtime
            .block_on(save(&store, &Json, seq, &state(seq)))
            .expect("save");
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
            let loaded = runtime
                .block_on(load::<_, _, Vec<u64>>(&store, &Json))
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
            let next = runtime.block_on(async {
                use buttress_checkpoint::Store;
                store.latest_seq().await.expect("latest") + 1
            });
            runtime
                .block_on(save(&store, &Json, next, &state(next)))
                .expect("save after recovery");
        }
    }
    total
}

#[test]
fn every_prefix_every_crash_keep_one() {
    assert!(check(1) > 60);
}

#[test]
fn every_prefix_every_crash_keep_three() {
    check(3);
}
