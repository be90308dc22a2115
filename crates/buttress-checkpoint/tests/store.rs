//! The file store on the simulated file system: round trips, generations,
//! locking, damage of every kind, faults, and the checkpointer's policy.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use buttress_checkpoint::{
    Binary, Checkpointer, ConfigError, FileStore, FileStoreConfig, FrameError, Json, LoadError,
    OpenError, Policy, ReadError, SaveError, SkipReason, Store, load, save,
};
use buttress_core::ManualClock;
use buttress_fs::{Fault, FaultKind, Fs, OpKind, SimFs};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct State {
    cursor: u64,
    weights: Vec<f64>,
}

fn state(n: u64) -> State {
    State {
        cursor: n,
        weights: vec![n as f64 / 2.0; 4],
    }
}

fn dir() -> &'static Path {
    Path::new("/ckpt")
}

fn open(fs: &SimFs, keep: usize) -> FileStore {
    FileStore::open_with(
        Arc::new(fs.clone()),
        dir(),
        "s",
        FileStoreConfig::default().keep(keep),
    )
    .expect("open store")
}

async fn load_state(store: &FileStore) -> Result<Option<(u64, State)>, LoadError> {
    Ok(load::<_, _, State>(store, &Json)
        .await?
        .map(|l| (l.seq, l.state)))
}

#[tokio::test]
async fn saves_load_back_newest_first_and_old_generations_go() {
    let fs = SimFs::new();
    let store = open(&fs, 2);
    assert_eq!(load_state(&store).await.unwrap(), None);
    for n in 1..=5 {
        save(&store, &Json, n, &state(n)).await.unwrap();
        assert_eq!(load_state(&store).await.unwrap(), Some((n, state(n))));
    }
    // Sequences never go backwards.
    assert!(matches!(
        save(&store, &Json, 5, &state(5)).await,
        Err(SaveError::Stale {
            current: 5,
            attempted: 5
        })
    ));
    // An async save is acknowledged once durable and removes the
    // generations it made redundant right after; the last handle waits for
    // that before it lets the lock go.
    drop(store);
    let mut names = fs.list(dir()).unwrap();
    names.sort();
    assert_eq!(
        names
            .iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect::<Vec<_>>(),
        vec![
            "s.00000000000000000004.ckpt",
            "s.00000000000000000005.ckpt",
            "s.lock"
        ]
    );
}

#[tokio::test]
async fn the_binary_codec_round_trips_and_codecs_are_never_mixed_up() {
    let fs = SimFs::new();
    let store = open(&fs, 3);
    save(&store, &Binary, 1, &state(1)).await.unwrap();
    let loaded = load::<_, _, State>(&store, &Binary).await.unwrap().unwrap();
    assert_eq!(loaded.state, state(1));
    let json_bytes = fs.read(&store.path(1)).unwrap().len();
    save(&store, &Json, 2, &state(1)).await.unwrap();
    assert!(fs.read(&store.path(2)).unwrap().len() > json_bytes);
    // Read with the other codec: a typed error per generation, nothing lost.
    match load::<_, _, State>(&store, &Binary).await {
        Ok(Some(l)) => {
            assert_eq!(l.seq, 1);
            assert!(matches!(
                l.skipped[0].reason,
                SkipReason::Corrupt(FrameError::Codec {
                    found: 1,
                    expected: 2
                })
            ));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn one_writer_at_a_time_and_readers_beside_it() {
    let fs = SimFs::new();
    let writer = open(&fs, 3);
    match FileStore::open_with(Arc::new(fs.clone()), dir(), "s", FileStoreConfig::default()) {
        Err(OpenError::Locked { path }) => assert!(path.ends_with("s.lock")),
        other => panic!("second writer: {other:?}"),
    }
    let reader = FileStore::open_read_only_with(Arc::new(fs.clone()), dir(), "s").unwrap();
    assert!(matches!(
        reader.put_blocking(9, b"x"),
        Err(SaveError::ReadOnly)
    ));
    drop(writer);
    assert!(
        FileStore::open_with(Arc::new(fs.clone()), dir(), "s", FileStoreConfig::default()).is_ok()
    );
    assert!(matches!(
        FileStore::open_with(
            Arc::new(fs.clone()),
            dir(),
            "a/b",
            FileStoreConfig::default()
        ),
        Err(OpenError::Name(_))
    ));
    assert!(matches!(
        FileStore::open_with(Arc::new(fs), dir(), "t", FileStoreConfig::default().keep(0)),
        Err(OpenError::Config(ConfigError::Keep))
    ));
}

#[test]
fn blocking_save_then_blocking_load_round_trips_with_no_runtime() {
    assert!(
        tokio::runtime::Handle::try_current().is_err(),
        "no runtime here"
    );
    let fs = SimFs::new();
    let store = open(&fs, 2);
    assert!(store.load_blocking::<_, State>(&Json).unwrap().is_none());
    for n in 1..=4 {
        store.save_blocking(&Json, n, &state(n)).unwrap();
        let loaded = store.load_blocking::<_, State>(&Json).unwrap().unwrap();
        assert_eq!((loaded.seq, loaded.state), (n, state(n)));
        assert!(loaded.skipped.is_empty());
    }
    // `keep` applies: generations 3 and 4 are left.
    assert!(fs.metadata(&store.path(2)).is_err());
    assert!(fs.metadata(&store.path(3)).is_ok());
    // The other codec, and a read-only store loading it.
    store.save_blocking(&Binary, 5, &state(5)).unwrap();
    let reader = FileStore::open_read_only_with(Arc::new(fs.clone()), dir(), "s").unwrap();
    let loaded = reader.load_blocking::<_, State>(&Binary).unwrap().unwrap();
    assert_eq!((loaded.seq, loaded.state), (5, state(5)));
    // Loaded as JSON, generation 5 is passed over with a typed reason.
    let loaded = reader.load_blocking::<_, State>(&Json).unwrap().unwrap();
    assert_eq!(loaded.seq, 4);
    assert!(matches!(
        loaded.skipped[0].reason,
        SkipReason::Corrupt(FrameError::Codec {
            found: 2,
            expected: 1
        })
    ));
    // Every blocking save is durable when it returns.
    let crashed = fs.crash(buttress_fs::Crash::POWER_LOSS);
    let after = FileStore::open_read_only_with(Arc::new(crashed), dir(), "s").unwrap();
    let loaded = after.load_blocking::<_, State>(&Binary).unwrap().unwrap();
    assert_eq!((loaded.seq, loaded.state), (5, state(5)));
    // A state that cannot be encoded is a typed error.
    let mut map = std::collections::HashMap::new();
    map.insert(vec![1u8], 1); // a map key JSON cannot hold
    assert!(matches!(
        store.save_blocking(&Json, 6, &map),
        Err(SaveError::Encode(_))
    ));
}

#[test]
fn blocking_saves_on_the_real_file_system_round_trip_and_async_loads_agree() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("checkpoint-blocking-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = FileStore::open(&dir, "s", FileStoreConfig::default()).unwrap();
    store.save_blocking(&Json, 1, &state(1)).unwrap();
    store.save_blocking(&Json, 2, &state(2)).unwrap();
    let loaded = store.load_blocking::<_, State>(&Json).unwrap().unwrap();
    assert_eq!((loaded.seq, loaded.state), (2, state(2)));
    // The async path reads what the blocking one wrote, and vice versa.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let via_async = runtime.block_on(load::<_, _, State>(&store, &Json));
    assert_eq!(via_async.unwrap().map(|l| l.seq), Some(2));
    runtime.block_on(save(&store, &Json, 3, &state(3))).unwrap();
    let loaded = store.load_blocking::<_, State>(&Json).unwrap().unwrap();
    assert_eq!((loaded.seq, loaded.state), (3, state(3)));
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_one_writer_rule_holds_for_blocking_saves() {
    let fs = SimFs::new();
    let writer = open(&fs, 3);
    writer.save_blocking(&Json, 1, &state(1)).unwrap();
    // No second writer while it lives, from any thread.
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(matches!(
                FileStore::open_with(Arc::new(fs.clone()), dir(), "s", FileStoreConfig::default()),
                Err(OpenError::Locked { .. })
            ));
        });
    });
    // Readers load beside it, and cannot save.
    let reader = FileStore::open_read_only_with(Arc::new(fs.clone()), dir(), "s").unwrap();
    assert!(matches!(
        reader.save_blocking(&Json, 2, &state(2)),
        Err(SaveError::ReadOnly)
    ));
    assert_eq!(
        reader
            .load_blocking::<_, State>(&Json)
            .unwrap()
            .map(|l| l.seq),
        Some(1)
    );
    // Clones of the writer take turns: of two saves of one sequence at
    // once, exactly one is stored and the other is refused as stale.
    for round in 0..20u64 {
        let seq = 2 + round;
        let results: Vec<Result<(), SaveError>> = std::thread::scope(|s| {
            let handles: Vec<_> = [seq * 10, seq * 10 + 1]
                .into_iter()
                .map(|cursor| {
                    let writer = writer.clone();
                    s.spawn(move || {
                        let st = State {
                            cursor,
                            weights: vec![],
                        };
                        writer.save_blocking(&Json, seq, &st)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        assert!(results.iter().any(|r| matches!(
            r,
            Err(SaveError::Stale { current, attempted }) if *current == seq && *attempted == seq
        )));
        let loaded = writer.load_blocking::<_, State>(&Json).unwrap().unwrap();
        assert_eq!(loaded.seq, seq);
        assert!(loaded.state.cursor / 10 == seq);
    }
    let last = writer.latest_seq_blocking().unwrap();
    // The lock goes with the writer; the next one goes on above, never
    // below, what is stored.
    drop(writer);
    let next = open(&fs, 3);
    assert!(matches!(
        next.save_blocking(&Json, last, &state(last)),
        Err(SaveError::Stale { .. })
    ));
    next.save_blocking(&Json, last + 1, &state(last + 1))
        .unwrap();
    assert_eq!(
        next.load_blocking::<_, State>(&Json)
            .unwrap()
            .map(|l| l.seq),
        Some(last + 1)
    );
}

#[tokio::test]
async fn stale_temp_files_are_removed_on_open() {
    let fs = SimFs::new();
    let store = open(&fs, 3);
    save(&store, &Json, 1, &state(1)).await.unwrap();
    drop(store);
    let temp = dir().join("s.00000000000000000002.ckpt.tmp-1-2");
    fs.create_new(&temp)
        .unwrap()
        .write_all(b"half a checkpoint")
        .unwrap();
    let store = open(&fs, 3);
    assert!(fs.metadata(&temp).is_err());
    assert_eq!(load_state(&store).await.unwrap(), Some((1, state(1))));
}

/// Only the store's own names are its files: other files in the
/// directory, even ones that look like its names, are neither read as a
/// generation nor removed as a leftover temp file.
#[tokio::test]
async fn files_the_store_did_not_name_are_left_alone() {
    let fs = SimFs::new();
    let store = open(&fs, 3);
    save(&store, &Json, 1, &state(1)).await.unwrap();
    let frame = fs.read(&store.path(1)).unwrap();
    drop(store);
    // A sequence that is not 20 digits, holding a valid frame; and a
    // backup beside a generation, under another extension.
    let short = dir().join("s.7.ckpt");
    let backup = dir().join("s.00000000000000000001.bak");
    for path in [&short, &backup] {
        fs.create_new(path).unwrap().write_all(&frame).unwrap();
    }
    let store = open(&fs, 3);
    assert_eq!(load_state(&store).await.unwrap(), Some((1, state(1))));
    // Generation 1 is still the newest: 2 comes next, not 8.
    save(&store, &Json, 2, &state(2)).await.unwrap();
    assert_eq!(load_state(&store).await.unwrap(), Some((2, state(2))));
    assert_eq!(fs.read(&short).unwrap(), frame);
    assert_eq!(fs.read(&backup).unwrap(), frame);
}

/// Pruning an old generation happens after the save succeeded, so a
/// failure is logged, not returned; a generation already gone is not a
/// failure.
#[test]
fn a_generation_that_cannot_be_removed_is_logged_and_one_already_gone_is_not() {
    use buttress_test_support::logs::warnings;

    let fs = SimFs::new();
    let store = open(&fs, 1);
    store.save_blocking(&Json, 1, &state(1)).unwrap();
    fs.remove_file(&store.path(1)).unwrap();
    let ((), logged) = warnings(|| store.save_blocking(&Json, 2, &state(2)).unwrap());
    assert!(logged.is_empty(), "{logged:?}");
    fs.inject(Fault {
        op: OpKind::Remove,
        skip: 0,
        kind: FaultKind::Io,
    });
    let ((), logged) = warnings(|| store.save_blocking(&Json, 3, &state(3)).unwrap());
    assert_eq!(logged, ["could not remove an old checkpoint"]);
    assert!(fs.metadata(&store.path(2)).is_ok(), "left in place");
    // Left in place, it is a generation like any other again: if 3 is
    // damaged, a load falls back to it.
    damage(&fs, &store, 3, |bytes| {
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
    });
    let loaded = store.load_blocking::<_, State>(&Json).unwrap().unwrap();
    assert_eq!((loaded.seq, loaded.state), (2, state(2)));
}

/// A reader may start before any writer made the directory: it finds no
/// checkpoint, not an error.
#[tokio::test]
async fn a_reader_of_a_directory_not_made_yet_finds_nothing() {
    let fs = SimFs::new();
    let reader = FileStore::open_read_only_with(Arc::new(fs.clone()), dir(), "s").unwrap();
    assert_eq!(load_state(&reader).await.unwrap(), None);
    let store = open(&fs, 3);
    save(&store, &Json, 1, &state(1)).await.unwrap();
    assert_eq!(load_state(&reader).await.unwrap(), Some((1, state(1))));
}

/// The raw candidates, as a backup or migration tool reads them: every
/// generation newest first, its bytes as stored (damaged ones included,
/// unchecked), which `put_blocking` copies to another store as they are.
#[test]
fn candidates_are_every_generation_newest_first_with_bytes_unchecked() {
    let fs = SimFs::new();
    let store = open(&fs, 3);
    for n in 1..=3 {
        store.save_blocking(&Json, n, &state(n)).unwrap();
    }
    damage(&fs, &store, 2, |bytes| bytes.truncate(5));
    let candidates = store.candidates_blocking().unwrap();
    let seqs: Vec<u64> = candidates.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, [3, 2, 1]);
    for c in &candidates {
        let stored = fs.read(&store.path(c.seq)).unwrap();
        assert_eq!(c.bytes.as_ref().unwrap(), &stored);
    }
    let fs_copy = SimFs::new();
    let copy = open(&fs_copy, 3);
    copy.put_blocking(3, candidates[0].bytes.as_ref().unwrap())
        .unwrap();
    assert_eq!(
        copy.load_blocking::<_, State>(&Json)
            .unwrap()
            .map(|l| l.state),
        Some(state(3))
    );
}

/// Replaces generation `seq`'s bytes.
fn damage(fs: &SimFs, store: &FileStore, seq: u64, f: impl FnOnce(&mut Vec<u8>)) {
    let path = store.path(seq);
    let mut bytes = fs.read(&path).expect("read");
    f(&mut bytes);
    fs.remove_file(&path).expect("remove");
    fs.create_new(&path)
        .and_then(|file| file.write_all(&bytes))
        .expect("rewrite");
}

/// Generation 1's bytes: what a file renamed to another sequence holds.
fn renamed_frame() -> Vec<u8> {
    let fs = SimFs::new();
    let store = open(&fs, 3);
    // Its own runtime, on its own thread: the caller is async.
    std::thread::scope(|s| {
        s.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            runtime
                .block_on(save(&store, &Json, 1, &state(1)))
                .expect("save");
        });
    });
    fs.read(&store.path(1)).expect("read")
}

/// A way to damage a file, and the error it must give.
type Case = (
    &'static str,
    Box<dyn Fn(&mut Vec<u8>)>,
    fn(&FrameError) -> bool,
);

#[tokio::test]
async fn every_kind_of_damage_is_typed_skipped_and_kept() {
    let cases: Vec<Case> = vec![
        ("truncated", Box::new(|b| b.truncate(b.len() - 3)), |e| {
            matches!(e, FrameError::Length { .. })
        }),
        ("torn header", Box::new(|b| b.truncate(10)), |e| {
            matches!(e, FrameError::TooShort { len: 10 })
        }),
        ("zeroed", Box::new(|b| b.fill(0)), |e| {
            matches!(e, FrameError::BadMagic)
        }),
        ("flipped", Box::new(|b| *b.last_mut().unwrap() ^= 1), |e| {
            matches!(e, FrameError::Checksum { .. })
        }),
        ("newer", Box::new(|b| b[8] = 9), |e| {
            matches!(e, FrameError::NewerVersion { version: 9 })
        }),
        (
            "renamed",
            Box::new(|b| b.splice(0.., renamed_frame()).for_each(drop)),
            |e| {
                matches!(
                    e,
                    FrameError::Sequence {
                        expected: 2,
                        header: 1
                    }
                )
            },
        ),
        ("empty", Box::new(|b| b.clear()), |e| {
            matches!(e, FrameError::TooShort { len: 0 })
        }),
    ];
    for (what, hurt, expected) in cases {
        let fs = SimFs::new();
        let store = open(&fs, 3);
        save(&store, &Json, 1, &state(1)).await.unwrap();
        save(&store, &Json, 2, &state(2)).await.unwrap();
        damage(&fs, &store, 2, hurt);
        let loaded = load::<_, _, State>(&store, &Json).await.unwrap().unwrap();
        assert_eq!((loaded.seq, &loaded.state), (1, &state(1)), "{what}");
        match &loaded.skipped[..] {
            [s] if s.seq == 2 => match &s.reason {
                SkipReason::Corrupt(e) => assert!(expected(e), "{what}: {e:?}"),
                other => panic!("{what}: {other:?}"),
            },
            other => panic!("{what}: {other:?}"),
        }
        // Nothing was deleted, and the next save goes on above the damage.
        assert!(fs.metadata(&store.path(2)).is_ok());
        let mut cp = Checkpointer::new(store.clone(), Policy::every_events(1));
        assert_eq!(cp.resume::<State>().await.unwrap(), Some(state(1)));
        assert_eq!(cp.save(&state(3)).await.unwrap(), 3);
    }
}

#[tokio::test]
async fn a_payload_that_does_not_decode_falls_back_and_all_bad_is_an_error() {
    let fs = SimFs::new();
    let store = open(&fs, 3);
    save(&store, &Json, 1, &state(1)).await.unwrap();
    save(&store, &Json, 2, &"not a state").await.unwrap();
    let loaded = load::<_, _, State>(&store, &Json).await.unwrap().unwrap();
    assert_eq!(loaded.seq, 1);
    assert!(matches!(
        loaded.skipped[0].reason,
        SkipReason::Corrupt(FrameError::Decode(_))
    ));
    damage(&fs, &store, 1, |b| b.truncate(5));
    match load::<_, _, State>(&store, &Json).await {
        Err(LoadError::NoValid { skipped }) => {
            assert_eq!(
                skipped.iter().map(|s| s.seq).collect::<Vec<_>>(),
                vec![2, 1]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fs.list(dir()).unwrap().len(), 3, "nothing deleted");
}

#[test]
fn a_failed_fsync_rename_or_directory_sync_keeps_the_last_checkpoint() {
    // Through the async `save` on a runtime, and through `save_blocking`.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for blocking in [false, true] {
        let save_via = |store: &FileStore, seq: u64| {
            if blocking {
                store.save_blocking(&Json, seq, &state(seq))
            } else {
                runtime.block_on(save(store, &Json, seq, &state(seq)))
            }
        };
        for (op, step) in [
            (OpKind::Sync, "fsync"),
            (OpKind::Rename, "rename"),
            (OpKind::Write, "write"),
            (OpKind::Create, "create"),
            (OpKind::SyncDir, "fsync directory"),
        ] {
            let fs = SimFs::new();
            let store = open(&fs, 1);
            save_via(&store, 1).unwrap();
            fs.inject(Fault {
                op,
                skip: 0,
                kind: FaultKind::Io,
            });
            match save_via(&store, 2) {
                Err(SaveError::Io { step: s, .. }) => assert_eq!(s, step),
                other => panic!("{op:?}: {other:?}"),
            }
            // After a power loss the last acknowledged checkpoint is there (or,
            // when only the directory sync failed, possibly the new one).
            let crashed = fs.crash(buttress_fs::Crash::POWER_LOSS);
            let after = FileStore::open_read_only_with(Arc::new(crashed), dir(), "s").unwrap();
            let (seq, st) = runtime.block_on(load_state(&after)).unwrap().unwrap();
            assert!(
                seq == 1 || (op == OpKind::SyncDir && seq == 2),
                "{op:?}: {seq}"
            );
            assert_eq!(st, state(seq));
            // No temp file is left behind, and the store saves again.
            assert!(
                fs.list(dir())
                    .unwrap()
                    .iter()
                    .all(|n| !n.to_string_lossy().contains("tmp"))
            );
            save_via(&store, 3).unwrap();
            assert_eq!(
                runtime.block_on(load_state(&store)).unwrap(),
                Some((3, state(3)))
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_checkpointer_saves_every_n_events_every_t_and_at_the_end() {
    let fs = SimFs::new();
    let clock = ManualClock::new();
    let mut cp = Checkpointer::new(
        open(&fs, 3),
        Policy::every_events(10).or_every(Duration::from_secs(60)),
    )
    .clock(Arc::new(clock.clone()));
    assert_eq!(cp.resume::<State>().await.unwrap(), None);
    let mut saves = Vec::new();
    for n in 1..=25u64 {
        if cp.tick(&state(n)).await.unwrap() {
            saves.push(n);
        }
    }
    assert_eq!(saves, vec![10, 20]);
    clock.advance(Duration::from_secs(60));
    assert!(cp.tick(&state(26)).await.unwrap(), "the interval passed");
    assert!(!cp.tick(&state(27)).await.unwrap());
    cp.finish(&state(27)).await.unwrap();
    cp.finish(&state(27)).await.unwrap(); // nothing new: no save
    let store = cp.store().clone();
    assert_eq!(store.latest_seq().await.unwrap(), 4);
    let mut again = Checkpointer::new(store, Policy::every_events(10));
    assert_eq!(again.resume::<State>().await.unwrap(), Some(state(27)));
}

#[tokio::test]
async fn a_state_that_would_not_load_back_is_refused_not_stored() {
    let fs = SimFs::new();
    let mut cp = Checkpointer::new(open(&fs, 1), Policy::every_events(1));
    assert_eq!(cp.resume::<State>().await.unwrap(), None);
    cp.save(&state(1)).await.unwrap();
    let nan = State {
        cursor: 2,
        weights: vec![f64::NAN],
    };
    assert!(matches!(cp.save(&nan).await, Err(SaveError::RoundTrip(_))));
    // The good checkpoint is still there (keep = 1: a stored NaN would
    // have pruned it).
    let store = cp.store().clone();
    assert_eq!(load_state(&store).await.unwrap(), Some((1, state(1))));
}

#[tokio::test]
async fn loads_pass_over_files_too_large_or_not_regular() {
    let fs = SimFs::new();
    let store = FileStore::open_with(
        Arc::new(fs.clone()),
        dir(),
        "s",
        FileStoreConfig::default().max_bytes(200),
    )
    .unwrap();
    save(&store, &Json, 1, &state(1)).await.unwrap();
    let big = State {
        cursor: 2,
        weights: vec![1.0; 100],
    };
    save(&store, &Json, 2, &big).await.unwrap();
    let loaded = load::<_, _, State>(&store, &Json).await.unwrap().unwrap();
    assert_eq!(loaded.seq, 1);
    assert!(
        matches!(&loaded.skipped[0].reason, SkipReason::Unreadable(why @ ReadError::TooLarge { .. }) if why.to_string().contains("max_bytes"))
    );
    // A directory under a generation's name.
    fs.create_dir_all(&store.path(3)).unwrap();
    let loaded = load::<_, _, State>(&store, &Json).await.unwrap().unwrap();
    assert_eq!(loaded.seq, 1);
    assert_eq!(loaded.skipped.len(), 2);
}

#[tokio::test]
async fn the_size_bound_admits_a_checkpoint_of_exactly_max_bytes() {
    let fs = SimFs::new();
    let store = open(&fs, 3);
    save(&store, &Json, 1, &state(1)).await.unwrap();
    let len = fs.read(&store.path(1)).unwrap().len() as u64;
    drop(store);
    let with_max = |max_bytes| {
        FileStore::open_with(
            Arc::new(fs.clone()),
            dir(),
            "s",
            FileStoreConfig::default().max_bytes(max_bytes),
        )
        .unwrap()
    };
    assert_eq!(
        load_state(&with_max(len)).await.unwrap(),
        Some((1, state(1)))
    );
    assert!(matches!(
        load_state(&with_max(len - 1)).await,
        Err(LoadError::NoValid { .. })
    ));
}

/// A generation listed but gone when it is read (a writer pruned it in
/// between; here, a link to nothing) is passed over in silence; one that
/// cannot be examined (a link loop) is reported.
#[cfg(unix)]
#[test]
fn a_vanished_generation_is_passed_over_and_an_unreadable_one_reported() {
    use std::os::unix::fs::symlink;

    let dir = buttress_test_support::fresh_dir(env!("CARGO_TARGET_TMPDIR"), "ckpt", "links");
    let store = FileStore::open(&dir, "s", FileStoreConfig::default()).unwrap();
    store.save_blocking(&Json, 1, &state(1)).unwrap();
    symlink(dir.join("nothing"), store.path(2)).unwrap();
    let loaded = store.load_blocking::<_, State>(&Json).unwrap().unwrap();
    assert_eq!((loaded.seq, loaded.skipped.len()), (1, 0));
    symlink(store.path(3), store.path(3)).unwrap();
    let loaded = store.load_blocking::<_, State>(&Json).unwrap().unwrap();
    assert_eq!(loaded.seq, 1);
    assert_eq!(loaded.skipped.len(), 1);
    assert_eq!(loaded.skipped[0].seq, 3);
    assert!(matches!(
        &loaded.skipped[0].reason,
        SkipReason::Unreadable(ReadError::Io(_))
    ));
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_store_at_the_last_sequence_number_says_so() {
    let fs = SimFs::new();
    let store = open(&fs, 3);
    fs.create_new(&store.path(u64::MAX)).unwrap();
    drop(store);
    let store = open(&fs, 3);
    let mut cp = Checkpointer::new(store, Policy::every_events(1));
    assert!(cp.resume::<State>().await.is_err());
    assert!(matches!(
        cp.save(&state(1)).await,
        Err(SaveError::SequenceExhausted)
    ));
}

/// An async save answers once the checkpoint is durable and removes the
/// old generations after; the store's lock is held until that is done, so
/// a new writer can open the store as soon as the last handle is dropped,
/// and finds exactly `keep` generations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_handle_waits_for_the_removals_then_lets_the_lock_go() {
    let fs = SimFs::new();
    let mut store = open(&fs, 1);
    for n in 1..=30 {
        save(&store, &Json, n, &state(n)).await.unwrap();
        drop(store);
        // Never `Locked`: the removal of generation n - 1 finished first.
        store = open(&fs, 1);
        let names: Vec<_> = fs
            .list(dir())
            .unwrap()
            .into_iter()
            .filter(|name| name.to_string_lossy().ends_with(".ckpt"))
            .collect();
        assert_eq!(names.len(), 1, "after save {n}: {names:?}");
    }
}

/// A save whose future is dropped still runs to its end on the blocking
/// pool, under the lock: the last handle waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_save_finishes_under_the_lock() {
    let fs = SimFs::new();
    let store = open(&fs, 2);
    save(&store, &Json, 1, &state(1)).await.unwrap();
    for n in 2..=20 {
        // Started (the file work is spawned at the first poll), then
        // cancelled (unless the simulated disk was quick enough).
        let st = state(n);
        let mut saving = Box::pin(save(&store, &Json, n, &st));
        if let Some(done) = futures_poll_once(saving.as_mut()).await {
            done.unwrap();
        }
        drop(saving);
    }
    drop(store);
    let store = open(&fs, 2);
    let loaded = load::<_, _, State>(&store, &Json).await.unwrap().unwrap();
    assert!(loaded.skipped.is_empty());
    assert_eq!(loaded.state, state(loaded.seq));
}

/// Polls `fut` once; `Some` if it finished.
async fn futures_poll_once<F: std::future::Future + Unpin>(fut: F) -> Option<F::Output> {
    let mut fut = fut;
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut fut).poll(cx) {
            std::task::Poll::Ready(out) => Some(out),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

/// A load right after an async save sees the same generations whether or
/// not the save's removal of the old ones has run yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_never_lists_a_generation_it_is_removing() {
    let fs = SimFs::new();
    let store = open(&fs, 2);
    for n in 1..=60u64 {
        save(&store, &Json, n, &state(n)).await.unwrap();
        let seqs: Vec<u64> = store
            .candidates()
            .await
            .unwrap()
            .iter()
            .map(|c| c.seq)
            .collect();
        let expected: Vec<u64> = (n.saturating_sub(1).max(1)..=n).rev().collect();
        assert_eq!(seqs, expected);
    }
}
