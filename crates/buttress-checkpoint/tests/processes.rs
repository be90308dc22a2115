//! Real processes killed with `kill -9`: a saver killed 200 times (its
//! saves alternating between `save` and `FileStore::save_blocking`) never
//! loses an acknowledged checkpoint, and a journal consumer killed and
//! restarted processes every event at least once and redoes at most the
//! events since its last save.
//!
//! The test binary plays the children too (`BUTTRESS_CHECKPOINT_CHILD`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Child;

use buttress_checkpoint::{
    Checkpointer, FileStore, FileStoreConfig, Json, Policy, Store, load, save,
};
use buttress_journal::{Cursor, Durability, Journal, JournalConfig, JournalReader};
use buttress_test_support::process;
use serde::{Deserialize, Serialize};

const CHILD: &str = "BUTTRESS_CHECKPOINT_CHILD";
const EVERY: u64 = 100;

fn state(seq: u64) -> Vec<u64> {
    (0..(seq % 5) * 300 + 1).map(|i| seq ^ i).collect()
}

#[derive(Serialize, Deserialize, Default)]
struct Consumer {
    cursor: Cursor,
    processed: u64,
}

#[derive(Serialize, Deserialize)]
struct Event {
    id: u64,
}

fn real_dir(name: &str) -> PathBuf {
    buttress_test_support::fresh_dir(env!("CARGO_TARGET_TMPDIR"), "checkpoint", name)
}

/// A child's work.
#[test]
fn child() {
    let Some(args) = process::child_work(CHILD) else {
        return;
    };
    let (role, dir) = args.split_once(' ').expect("role and dir");
    let dir = Path::new(dir);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = FileStore::open(dir, "s", FileStoreConfig::default()).expect("open store");
        match role {
            "saver" => {
                let mut seq = store.latest_seq().await.expect("latest");
                loop {
                    seq += 1;
                    // Every other save through the blocking path.
                    if seq % 2 == 0 {
                        store.save_blocking(&Json, seq, &state(seq)).expect("save");
                    } else {
                        save(&store, &Json, seq, &state(seq)).await.expect("save");
                    }
                    println!("ACK {seq}");
                }
            }
            "consumer" => {
                let mut out = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("processed.txt"))
                    .expect("output");
                let mut cp = Checkpointer::new(store, Policy::every_events(EVERY));
                let mut st: Consumer = cp.resume().await.expect("resume").unwrap_or_default();
                let mut reader = JournalReader::open(dir, "events").expect("reader");
                reader.seek(st.cursor);
                while let Some(record) = reader.next_record::<Event>().expect("read") {
                    // "Process" the event: one write, so it is there or not.
                    out.write_all(format!("{}\n", record.event.id).as_bytes())
                        .expect("write");
                    st.cursor = record.cursor;
                    st.processed += 1;
                    cp.tick(&st).await.expect("checkpoint");
                    println!("P {}", record.event.id);
                }
                cp.finish(&st).await.expect("final checkpoint");
                println!("DONE");
            }
            other => panic!("unknown role {other}"),
        }
    });
    std::process::exit(0);
}

fn spawn(role: &str, dir: &Path) -> Child {
    process::spawn_child(CHILD, &format!("{role} {}", dir.display()))
}

#[test]
fn a_saver_killed_200_times_never_loses_an_acknowledged_checkpoint() {
    if process::is_child(CHILD) {
        return;
    }
    let _serial = process::serial();
    let dir = real_dir("saver");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut rng = fastrand::Rng::with_seed(7);
    let mut last_acked = 0;
    for kill in 0..200 {
        let mut child = spawn("saver", &dir);
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ack = |line: &str| {
            line.strip_prefix("ACK ")
                .and_then(|n| n.parse::<u64>().ok())
        };
        for _ in 0..rng.usize(0..20) {
            match lines.next() {
                Some(Ok(line)) => last_acked = ack(&line).unwrap_or(last_acked).max(last_acked),
                _ => break,
            }
        }
        child.kill().expect("kill -9");
        for line in lines.map_while(Result::ok) {
            last_acked = ack(&line).unwrap_or(last_acked).max(last_acked);
        }
        let _ = child.wait();
        let reader = FileStore::open_read_only(&dir, "s").expect("reader");
        let loaded = runtime
            .block_on(load::<_, _, Vec<u64>>(&reader, &Json))
            .unwrap_or_else(|e| panic!("after kill {kill}: {e}"));
        match loaded {
            None => assert_eq!(last_acked, 0, "after kill {kill}"),
            Some(l) => {
                assert!(
                    l.seq >= last_acked,
                    "after kill {kill}: loaded {} < acknowledged {last_acked}",
                    l.seq
                );
                assert_eq!(l.state, state(l.seq));
            }
        }
    }
    assert!(last_acked > 200, "too few saves to mean much: {last_acked}");
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn a_journal_consumer_killed_and_restarted_processes_everything_and_redoes_little() {
    if process::is_child(CHILD) {
        return;
    }
    let _serial = process::serial();
    let dir = real_dir("consumer");
    let total = 3000u64;
    let journal = Journal::open(
        &dir,
        "events",
        JournalConfig::default().durability(Durability::Buffered),
    )
    .expect("journal");
    for id in 0..total {
        journal.append_blocking(&Event { id }).expect("append");
    }
    journal.close().expect("close");

    let mut rng = fastrand::Rng::with_seed(11);
    let mut runs = 0;
    let mut kills = 0;
    loop {
        runs += 1;
        assert!(runs < 200, "the consumer makes no progress");
        let mut child = spawn("consumer", &dir);
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let kill_after = rng.usize(50..600);
        let mut done = false;
        let mut seen = 0;
        for line in lines.by_ref().map_while(Result::ok) {
            if line == "DONE" {
                done = true;
                break;
            }
            seen += 1;
            if seen == kill_after {
                break;
            }
        }
        if done {
            let _ = child.wait();
            break;
        }
        child.kill().expect("kill -9");
        kills += 1;
        for line in lines.map_while(Result::ok) {
            done |= line == "DONE";
        }
        let _ = child.wait();
        if done {
            break;
        }
    }
    let text = std::fs::read_to_string(dir.join("processed.txt")).expect("output");
    let ids: Vec<u64> = text.lines().map(|l| l.parse().expect("id")).collect();
    let mut count: BTreeMap<u64, u64> = BTreeMap::new();
    for &id in &ids {
        *count.entry(id).or_default() += 1;
    }
    assert_eq!(count.len() as u64, total, "every event at least once");
    assert_eq!(count.keys().next_back(), Some(&(total - 1)));
    // Each restart goes back at most to the last save.
    let mut worst = 0;
    let mut max_so_far: Option<u64> = None;
    for &id in &ids {
        if let Some(m) = max_so_far
            && id <= m
        {
            let redo = m + 1 - id;
            worst = worst.max(redo);
        }
        max_so_far = Some(max_so_far.map_or(id, |m| m.max(id)));
    }
    eprintln!(
        "{kills} kills over {runs} runs: {} events processed for {total}, worst redo {worst}",
        ids.len()
    );
    assert!(kills >= 3, "too few kills to mean much");
    assert!(
        worst <= EVERY,
        "a restart redid {worst} events, more than the {EVERY} between saves"
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}
