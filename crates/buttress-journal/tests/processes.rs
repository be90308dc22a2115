//! Real processes: many writers at once, writers killed with `kill -9` at
//! random points, and rotation every few milliseconds under eight writer
//! processes.
//!
//! The test binary plays the writers too: the parent runs itself with
//! `BUTTRESS_JOURNAL_CHILD` set, which makes the `child` test do a writer's
//! work instead.

mod support;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Child;
use std::sync::Arc;
use std::time::Duration;

use buttress_fs::{Fs, RealFs};
use buttress_journal::{Compression, Durability, Journal, JournalConfig, JournalReader};
use buttress_test_support::process;
use support::{Ev, read_all, real_dir};

const CHILD: &str = "BUTTRESS_JOURNAL_CHILD";

fn size(rng: &mut fastrand::Rng) -> usize {
    // 64 B to 64 KiB: mostly small, one in ten large.
    if rng.u32(0..10) == 0 {
        rng.usize(1024..=64 * 1024)
    } else {
        rng.usize(64..1024)
    }
}

fn event(p: u32, t: u32, s: u32, len: usize) -> Ev {
    // About 40 bytes of the record are not padding.
    Ev::new(p, t, s, len.saturating_sub(40))
}

/// A writer's work, when run as a child.
#[test]
fn child() {
    let Some(args) = process::child_work(CHILD) else {
        return;
    };
    let args: Vec<&str> = args.split(' ').collect();
    let (role, dir, p, threads, events) = (
        args[0],
        Path::new(args[1]),
        args[2].parse::<u32>().expect("p"),
        args[3].parse::<u32>().expect("threads"),
        args[4].parse::<u32>().expect("events"),
    );
    let config = match role {
        "many" => JournalConfig::default().durability(Durability::Buffered),
        "rotate" => JournalConfig::default()
            .durability(Durability::Buffered)
            .rotate_age(Some(Duration::from_millis(3)))
            .rotate_bytes(Some(256 * 1024))
            .compression(Compression::Gzip),
        "kill" => JournalConfig::default()
            .durability(Durability::GroupCommit)
            .rotate_bytes(Some(4 << 20)),
        other => panic!("unknown role {other}"),
    };
    let journal = Journal::open(dir, "t", config).expect("open");
    std::thread::scope(|scope| {
        for t in 0..threads {
            let journal = journal.clone();
            scope.spawn(move || {
                let mut rng = fastrand::Rng::with_seed(u64::from(p) << 32 | u64::from(t));
                let small = role == "rotate";
                for s in 0..events {
                    let len = if small {
                        rng.usize(100..2000)
                    } else {
                        size(&mut rng)
                    };
                    journal
                        .append_blocking(&event(p, t, s, len))
                        .expect("append");
                    if role == "kill" {
                        println!("ACK {p} {t} {s}");
                    }
                }
            });
        }
    });
    journal.close().expect("close");
    std::process::exit(0);
}

/// The newest file and its length, if it ends inside a record.
fn torn_tail(dir: &Path) -> Option<(std::path::PathBuf, u64)> {
    let newest = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .max()?;
    let bytes = std::fs::read(&newest).expect("read");
    let len = bytes.len() as u64;
    bytes
        .last()
        .is_some_and(|&b| b != b'\n')
        .then_some((newest, len))
}

fn spawn(role: &str, dir: &Path, p: u32, threads: u32, events: u32) -> Child {
    process::spawn_child(
        CHILD,
        &format!("{role} {} {p} {threads} {events}", dir.display()),
    )
}

/// Every (process, thread) wrote 0..events, each once and in order.
fn check_complete(dir: &Path, processes: u32, threads: u32, events: u32) {
    let (all, stats) = read_all(Arc::new(RealFs::new()) as Arc<dyn Fs>, dir, "t");
    assert_eq!(stats.corrupt_records, 0, "{stats:?}");
    assert_eq!(all.len(), (processes * threads * events) as usize);
    let mut next: HashMap<(u32, u32), u32> = HashMap::new();
    for e in &all {
        assert!(e.is_intact(), "damaged record {} {} {}", e.p, e.t, e.s);
        let n = next.entry((e.p, e.t)).or_default();
        assert_eq!(e.s, *n, "process {} thread {} out of order", e.p, e.t);
        *n += 1;
    }
    assert_eq!(next.len(), (processes * threads) as usize);
    assert!(next.values().all(|&n| n == events));
}

#[test]
fn eight_processes_of_four_threads_write_160_000_whole_records() {
    if process::is_child(CHILD) {
        return;
    }
    let _serial = process::serial();
    let dir = real_dir("many");
    let children: Vec<Child> = (0..8).map(|p| spawn("many", &dir, p, 4, 5000)).collect();
    for mut child in children {
        assert!(child.wait().expect("wait").success());
    }
    check_complete(&dir, 8, 4, 5000);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn rotation_every_few_milliseconds_under_eight_processes_loses_nothing() {
    if process::is_child(CHILD) {
        return;
    }
    let _serial = process::serial();
    let dir = real_dir("rotate");
    let children: Vec<Child> = (0..8).map(|p| spawn("rotate", &dir, p, 2, 1500)).collect();
    for mut child in children {
        assert!(child.wait().expect("wait").success());
    }
    let files = std::fs::read_dir(&dir).expect("list").count();
    eprintln!("rotation under 8 processes left {files} files");
    assert!(files > 20, "too few rotations to mean much: {files} files");
    check_complete(&dir, 8, 2, 1500);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn writers_killed_at_random_points_lose_no_acknowledged_record() {
    if process::is_child(CHILD) {
        return;
    }
    let _serial = process::serial();
    let dir = real_dir("kill");
    let mut rng = fastrand::Rng::with_seed(9);
    let mut acked: HashSet<(u32, u32, u32)> = HashSet::new();
    let kills = 100;
    // Reads along after each kill, with every writer gone: a torn record
    // at the end is counted and skipped at once, not left unprocessed
    // until the next writer seals it, and its seal is not counted again.
    let mut follower = JournalReader::open(&dir, "t").expect("reader");
    let mut torn_tails = 0u64;
    let mut last_torn = None;
    for run in 0..kills {
        let mut child = spawn("kill", &dir, run, 2, u32::MAX);
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        // Kill after a random number of acknowledgements: at a random
        // point of the writer's work, without sleeping.
        let wait_for = rng.usize(0..300);
        let parse = |line: &str| {
            let mut it = line
                .strip_prefix("ACK ")?
                .split(' ')
                .map(|n| n.parse::<u32>().ok());
            Some((it.next()??, it.next()??, it.next()??))
        };
        for _ in 0..wait_for {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(ack) = parse(&line) {
                        acked.insert(ack);
                    }
                }
                _ => break,
            }
        }
        child.kill().expect("kill -9");
        // Acknowledgements printed before death count too.
        for line in lines.map_while(Result::ok) {
            if let Some(ack) = parse(&line) {
                acked.insert(ack);
            }
        }
        let _ = child.wait();
        // A new torn tail (the writer before may have died before sealing
        // the last one).
        if let Some(tail) = torn_tail(&dir)
            && last_torn.replace(tail.clone()) != Some(tail)
        {
            torn_tails += 1;
        }
        while follower.next_record::<Ev>().expect("read").is_some() {}
        assert_eq!(
            follower.unprocessed_bytes().expect("backlog"),
            0,
            "after kill {run}: bytes left unprocessed with no writer alive"
        );
        assert_eq!(
            follower.stats().corrupt_records,
            torn_tails,
            "after kill {run}: every torn tail counted once"
        );
    }
    let (all, stats) = read_all(Arc::new(RealFs::new()) as Arc<dyn Fs>, &dir, "t");
    eprintln!(
        "{kills} kills: {} acknowledged, {} records read, {} corrupt skipped, {torn_tails} torn tails seen by the follower",
        acked.len(),
        all.len(),
        stats.corrupt_records
    );
    assert_eq!(stats.corrupt_records, torn_tails, "{stats:?}");
    assert_eq!(follower.stats().records, stats.records);
    let mut last: HashMap<(u32, u32), u32> = HashMap::new();
    let mut present = HashSet::new();
    for e in &all {
        assert!(
            e.is_intact(),
            "a fragment glued to record {} {} {}",
            e.p,
            e.t,
            e.s
        );
        if let Some(&l) = last.get(&(e.p, e.t)) {
            assert!(
                e.s > l,
                "record {} {} {} twice or out of order",
                e.p,
                e.t,
                e.s
            );
        }
        last.insert((e.p, e.t), e.s);
        present.insert((e.p, e.t, e.s));
    }
    let lost: Vec<_> = acked.difference(&present).collect();
    assert!(
        lost.is_empty(),
        "acknowledged records lost: {:?}",
        &lost[..lost.len().min(10)]
    );
    assert!(stats.corrupt_records <= u64::from(kills), "{stats:?}");
    std::fs::remove_dir_all(&dir).expect("clean up");
}
