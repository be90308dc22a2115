//! The simulated file system: crash states, faults, locks, and agreement
//! with the real one.

use std::io;
use std::path::{Path, PathBuf};

use buttress_fs::{
    Crash, DataLoss, DirLoss, Fault, FaultKind, Fs, OpKind, RealFs, SimFs, is_sync_poisoned,
};
use proptest::prelude::*;

fn dir() -> &'static Path {
    Path::new("/d")
}

fn setup() -> SimFs {
    let fs = SimFs::new();
    fs.create_dir_all(dir()).expect("mkdir");
    fs
}

#[test]
fn each_crash_kind_leaves_what_it_says() {
    let fs = setup();
    let path = dir().join("f");
    let f = fs.create_new(&path).unwrap();
    f.write_all(&[1; 5000]).unwrap();
    f.sync_data().unwrap();
    fs.sync_dir(dir()).unwrap();
    f.write_all(&[2; 5000]).unwrap();

    let read = |c: Crash| fs.crash(c).read(&path).unwrap();
    let keep = read(Crash::PROCESS_KILL);
    assert_eq!(keep.len(), 10_000);
    assert_eq!(read(Crash::POWER_LOSS), vec![1; 5000]);
    let zero = read(Crash {
        data: DataLoss::Zero,
        dirs: DirLoss::LoseUnsynced,
    });
    assert_eq!(&zero[..5000], &[1; 5000][..]);
    assert!(zero[5000..].iter().all(|&b| b == 0));
    assert_eq!(zero.len(), 10_000);
    let torn = read(Crash {
        data: DataLoss::Torn,
        dirs: DirLoss::LoseUnsynced,
    });
    assert_eq!(torn.len(), 8192);
    assert_eq!(&torn[5000..], &[2; 3192][..]);
}

#[test]
fn unsynced_entries_are_lost_and_synced_ones_kept() {
    let fs = setup();
    let a = dir().join("a");
    let b = dir().join("b");
    let f = fs.create_new(&a).unwrap();
    f.write_all(b"x").unwrap();
    f.sync_all().unwrap();
    // Not yet synced: the file vanishes on power loss.
    assert!(fs.crash(Crash::POWER_LOSS).read(&a).is_err());
    fs.sync_dir(dir()).unwrap();
    fs.rename(&a, &b).unwrap();
    let lost = fs.crash(Crash::POWER_LOSS);
    assert_eq!(lost.read(&a).unwrap(), b"x");
    assert!(lost.read(&b).is_err());
    let kept = fs.crash(Crash {
        data: DataLoss::Drop,
        dirs: DirLoss::KeepAll,
    });
    assert_eq!(kept.read(&b).unwrap(), b"x");
    assert!(kept.read(&a).is_err());
}

#[test]
fn crash_after_every_prefix_replays_the_log() {
    let fs = setup();
    let path = dir().join("f");
    let start = fs.op_count();
    let f = fs.open_append(&path, true).unwrap();
    for i in 0..5u8 {
        f.write_all(&[i; 3]).unwrap();
        f.sync_data().unwrap();
    }
    fs.sync_dir(dir()).unwrap();
    let n = fs.op_count();
    // The last prefix is the present.
    for crash in Crash::ALL {
        assert_eq!(
            fs.crash_after(n, crash).read(&path).ok(),
            fs.crash(crash).read(&path).ok()
        );
    }
    // Before the directory sync, power loss loses the file.
    assert!(
        fs.crash_after(n - 1, Crash::POWER_LOSS)
            .read(&path)
            .is_err()
    );
    // Process kill keeps every write up to the prefix.
    let partial = fs
        .crash_after(start + 2, Crash::PROCESS_KILL)
        .read(&path)
        .unwrap();
    assert_eq!(partial, vec![0; 3]);
}

#[test]
fn a_failed_sync_poisons_the_handle_and_loses_its_data() {
    let fs = setup();
    let path = dir().join("f");
    let f = fs.create_new(&path).unwrap();
    fs.sync_dir(dir()).unwrap();
    f.write_all(b"aaaa").unwrap();
    fs.inject(Fault {
        op: OpKind::Sync,
        skip: 0,
        kind: FaultKind::Io,
    });
    let err = f.sync_data().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(5));
    // Never a false success afterwards.
    let again = f.sync_data().unwrap_err();
    assert!(is_sync_poisoned(&again));
    // Another handle's sync succeeds, but the failed data stays lost.
    let g = fs.open_append(&path, false).unwrap();
    g.write_all(b"bb").unwrap();
    g.sync_data().unwrap();
    assert_eq!(
        fs.crash(Crash::POWER_LOSS).read(&path).unwrap(),
        b"\0\0\0\0bb"
    );
}

#[test]
fn short_writes_and_no_space() {
    let fs = setup();
    let f = fs.create_new(&dir().join("f")).unwrap();
    fs.inject(Fault {
        op: OpKind::Write,
        skip: 1,
        kind: FaultKind::ShortWrite(2),
    });
    assert_eq!(f.write(b"abcd").unwrap(), 4);
    assert_eq!(f.write(b"efgh").unwrap(), 2);
    fs.inject(Fault {
        op: OpKind::Write,
        skip: 0,
        kind: FaultKind::NoSpace,
    });
    let err = f.write_all(b"ijkl").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    assert_eq!(fs.read(&dir().join("f")).unwrap(), b"abcdef");
}

#[test]
fn flock_excludes_other_handles_until_unlock_or_drop() {
    let fs = setup();
    let path = dir().join("lock");
    let a = fs.open_append(&path, true).unwrap();
    let b = fs.open_append(&path, false).unwrap();
    a.lock().unwrap();
    assert!(!b.try_lock().unwrap());
    a.unlock().unwrap();
    assert!(b.try_lock().unwrap());
    assert!(!a.try_lock().unwrap());
    drop(b);
    assert!(a.try_lock().unwrap());

    // A waiter is woken by the release.
    let fs2 = fs.clone();
    let path2 = path.clone();
    let t = std::thread::spawn(move || {
        let c = fs2.open_append(&path2, false).unwrap();
        c.lock().unwrap();
        c.write_all(b"c").unwrap();
    });
    a.write_all(b"a").unwrap();
    a.unlock().unwrap();
    t.join().unwrap();
    assert_eq!(fs.read(&path).unwrap(), b"ac");
}

fn real_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("buttress-fs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

/// The same script on both implementations gives the same answers.
#[test]
fn real_and_simulated_agree() {
    let real_root = real_dir("agree");
    let check = |fs: &dyn Fs, root: &Path| {
        let d = root.join("sub");
        fs.create_dir_all(&d).unwrap();
        let a = d.join("a");
        let f = fs.create_new(&a).unwrap();
        assert_eq!(
            fs.create_new(&a).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        f.write_all(b"hello ").unwrap();
        f.sync_all().unwrap();
        let g = fs.open_append(&a, false).unwrap();
        g.write_all(b"world").unwrap();
        g.sync_data().unwrap();
        assert_eq!(f.metadata().unwrap().len, 11);
        assert_eq!(f.metadata().unwrap().id, g.metadata().unwrap().id);
        let mut buf = [0; 5];
        assert_eq!(g.read_at(&mut buf, 6).unwrap(), 5);
        assert_eq!(&buf, b"world");
        fs.rename(&a, &d.join("b")).unwrap();
        fs.sync_dir(&d).unwrap();
        assert_eq!(
            fs.open_read(&a).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(fs.read(&d.join("b")).unwrap(), b"hello world");
        assert!(f.try_lock().unwrap());
        assert!(!g.try_lock().unwrap());
        f.unlock().unwrap();
        assert!(g.try_lock().unwrap());
        let mut names = fs.list(&d).unwrap();
        names.sort();
        assert_eq!(names, vec![PathBuf::from("b")]);
        assert!(fs.metadata(&d).unwrap().is_dir);
        fs.remove_file(&d.join("b")).unwrap();
        assert!(fs.list(&d).unwrap().is_empty());
        assert_eq!(
            fs.open_append(&a, false).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    };
    check(&RealFs::new(), &real_root);
    check(&setup(), dir());
    std::fs::remove_dir_all(&real_root).unwrap();
}

#[derive(Clone, Debug)]
enum Step {
    Append(usize, u8, usize),
    Sync(usize),
    SyncDir,
    Rename(usize, usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..3usize, any::<u8>(), 1..3000usize).prop_map(|(f, b, n)| Step::Append(f, b, n)),
        2 => (0..3usize).prop_map(Step::Sync),
        1 => Just(Step::SyncDir),
        1 => (0..3usize, 0..3usize).prop_map(|(a, b)| Step::Rename(a, b)),
    ]
}

proptest! {
    /// Against a reference model of what power loss keeps: each name maps
    /// to the durable bytes of the file it durably names.
    #[test]
    fn power_loss_keeps_exactly_the_synced_state(steps in prop::collection::vec(step(), 0..40)) {
        let fs = setup();
        let names: Vec<PathBuf> = (0..3).map(|i| dir().join(format!("f{i}"))).collect();
        // Model: per inode (index = creation order) content and synced len;
        // current and durable name → inode.
        let mut content: Vec<(Vec<u8>, usize)> = Vec::new();
        let mut current: [Option<usize>; 3] = [None; 3];
        let mut durable: [Option<usize>; 3] = [None; 3];
        let mut handles = Vec::new();
        for (i, name) in names.iter().enumerate() {
            handles.push(fs.create_new(name).unwrap());
            content.push((Vec::new(), 0));
            current[i] = Some(i);
        }
        // handle i writes to inode i wherever its name moves.
        for s in &steps {
            match *s {
                Step::Append(f, b, n) => {
                    handles[f].write_all(&vec![b; n]).unwrap();
                    content[f].0.extend(std::iter::repeat_n(b, n));
                }
                Step::Sync(f) => {
                    handles[f].sync_data().unwrap();
                    content[f].1 = content[f].0.len();
                }
                Step::SyncDir => {
                    fs.sync_dir(dir()).unwrap();
                    durable = current;
                }
                Step::Rename(a, b) => {
                    if a != b && current[a].is_some() {
                        fs.rename(&names[a], &names[b]).unwrap();
                        current[b] = current[a].take();
                    }
                }
            }
        }
        let after = fs.crash(Crash::POWER_LOSS);
        for (i, name) in names.iter().enumerate() {
            let expected = durable[i].map(|ino| content[ino].0[..content[ino].1].to_vec());
            prop_assert_eq!(after.read(name).ok(), expected);
        }
        // And the replay of the whole log agrees with the live state.
        let replayed = fs.crash_after(fs.op_count(), Crash::POWER_LOSS);
        for name in &names {
            prop_assert_eq!(replayed.read(name).ok(), after.read(name).ok());
        }
    }
}

#[test]
fn the_log_holds_every_change_in_order_and_reads_add_nothing() {
    use buttress_fs::Op;

    let fs = setup();
    let before = fs.log().len();
    let path = dir().join("a");
    let file = fs.create_new(&path).unwrap();
    file.write_all(b"hi").unwrap();
    file.sync_data().unwrap();
    let _ = fs.read(&path).unwrap();
    let ino = file.metadata().unwrap().id.ino;
    assert_eq!(
        fs.log()[before..],
        [
            Op::Create { path, ino },
            Op::Write {
                ino,
                bytes: b"hi".to_vec()
            },
            Op::Sync { ino },
        ]
    );
}

#[test]
fn cleared_faults_never_fire() {
    let fs = setup();
    let file = fs.create_new(&dir().join("a")).unwrap();
    fs.inject(Fault {
        op: OpKind::Sync,
        skip: 0,
        kind: FaultKind::Io,
    });
    fs.clear_faults();
    file.write_all(b"data").unwrap();
    file.sync_data().expect("no fault fires");
    fs.sync_dir(dir()).unwrap();
    assert_eq!(
        fs.crash(Crash::POWER_LOSS).read(&dir().join("a")).unwrap(),
        b"data"
    );
}

/// Every data-loss kind with every directory-loss kind, once each.
#[test]
fn every_crash_kind_is_listed_once() {
    let mut seen = std::collections::HashSet::new();
    for crash in Crash::ALL {
        assert!(seen.insert((crash.data, crash.dirs)), "{crash:?} twice");
    }
    for data in [
        DataLoss::Keep,
        DataLoss::Drop,
        DataLoss::Zero,
        DataLoss::Torn,
    ] {
        for dirs in [DirLoss::LoseUnsynced, DirLoss::KeepAll] {
            assert!(seen.contains(&(data, dirs)), "{data:?} {dirs:?} missing");
        }
    }
}

/// A listing holds the directory's files and its own subdirectories, not
/// those of its subdirectories or of its siblings.
#[test]
fn a_listing_holds_files_and_direct_subdirectories_only() {
    let fs = setup();
    fs.create_dir_all(&dir().join("sub/deeper")).unwrap();
    fs.create_dir_all(Path::new("/other/x")).unwrap();
    fs.create_new(&dir().join("f")).unwrap();
    let mut names = fs.list(dir()).unwrap();
    names.sort();
    assert_eq!(names, [PathBuf::from("f"), PathBuf::from("sub")]);
    let mut root = fs.list(Path::new("/")).unwrap();
    root.sort();
    assert_eq!(root, [PathBuf::from("d"), PathBuf::from("other")]);
}

/// As with `flock`, a handle that holds its lock may ask again: `lock`
/// returns and `try_lock` says yes.
#[test]
fn the_holder_may_lock_again() {
    let fs = setup();
    let a = fs.open_append(&dir().join("lock"), true).unwrap();
    a.lock().unwrap();
    a.lock().unwrap();
    assert!(a.try_lock().unwrap());
}

/// A waiter does not get the lock while another handle holds it. (It is
/// watched for a while after it starts waiting; the holder then releases
/// and the waiter gets it.)
#[test]
fn a_waiter_waits_for_the_holder() {
    use std::sync::mpsc;

    let fs = setup();
    let path = dir().join("lock");
    let a = fs.open_append(&path, true).unwrap();
    a.lock().unwrap();
    let (tx, rx) = mpsc::channel();
    let fs2 = fs.clone();
    let t = std::thread::spawn(move || {
        let b = fs2.open_append(&path, false).unwrap();
        tx.send("waiting").unwrap();
        b.lock().unwrap();
        tx.send("locked").unwrap();
    });
    assert_eq!(rx.recv().unwrap(), "waiting");
    for _ in 0..100_000 {
        assert!(
            rx.try_recv().is_err(),
            "locked while another handle held it"
        );
        assert!(a.try_lock().unwrap(), "the holder still holds it");
        std::thread::yield_now();
    }
    a.unlock().unwrap();
    assert_eq!(rx.recv().unwrap(), "locked");
    t.join().unwrap();
}
