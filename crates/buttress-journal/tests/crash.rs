//! Power loss after every prefix of a scripted workload, for every kind of
//! crash: recovery never errors, every record acknowledged as durable is
//! there, and nothing that was not written is ever returned.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use buttress_fs::{Crash, Fs, SimFs};
use buttress_journal::{Compression, Durability, JournalConfig, JournalReader};
use support::{Ev, open_sim, sim_dir};

fn config(durability: Durability) -> JournalConfig {
    JournalConfig::default()
        .durability(durability)
        .rotate_bytes(Some(1500))
        .compression(Compression::Gzip)
}

/// Reads everything, checking that each record is intact, appears once,
/// and comes in order.
fn read_checked(fs: &SimFs) -> Vec<u32> {
    let mut reader = JournalReader::with_fs(Arc::new(fs.clone()) as Arc<dyn Fs>, sim_dir(), "t");
    let mut seen = Vec::new();
    loop {
        match reader.next_record::<Ev>() {
            Ok(Some(r)) => {
                assert!(r.event.is_intact(), "garbage record {:?}", r.event);
                assert!(
                    seen.last().is_none_or(|&l| r.event.s > l),
                    "out of order or twice: {seen:?} then {}",
                    r.event.s
                );
                seen.push(r.event.s);
            }
            Ok(None) => return seen,
            Err(e) => panic!("read error: {e}"),
        }
    }
}

fn check_every_prefix(durability: Durability) -> (usize, usize) {
    let fs = SimFs::new();
    let journal = open_sim(&fs, config(durability));
    // (event, ops logged when its append was acknowledged)
    let mut acked = Vec::new();
    for s in 0..30u32 {
        let len = [20, 300, 900, 60][s as usize % 4];
        journal
            .append_blocking(&Ev::new(0, 0, s, len))
            .expect("append");
        acked.push((s, fs.op_count()));
    }
    journal.close().expect("close");
    let total = fs.op_count();
    eprintln!("{durability:?}: {total} ops");
    let mut states = 0;
    for prefix in 0..=total {
        for crash in Crash::ALL {
            let after = fs.crash_after(prefix, crash);
            let seen: BTreeSet<u32> = read_checked(&after).into_iter().collect();
            // Durable records survive any crash; buffered ones survive a
            // process kill once written (which the ack does not promise).
            if durability != Durability::Buffered {
                for &(s, ops) in &acked {
                    if ops <= prefix {
                        assert!(
                            seen.contains(&s),
                            "prefix {prefix} {crash:?}: acknowledged record {s} lost"
                        );
                    }
                }
            }
            // Recovery: a new writer seals what was torn and goes on.
            let journal = open_sim(&after, config(durability));
            journal
                .append_blocking(&Ev::new(0, 0, 1000, 10))
                .expect("append after recovery");
            journal.close().expect("close after recovery");
            let again = read_checked(&after);
            assert_eq!(again.last(), Some(&1000), "prefix {prefix} {crash:?}");
            let before: BTreeSet<u32> = again.iter().copied().filter(|&s| s != 1000).collect();
            assert!(
                seen.is_subset(&before),
                "prefix {prefix} {crash:?}: recovery lost records"
            );
            states += 1;
        }
    }
    (total, states)
}

#[test]
fn group_commit_survives_every_crash_at_every_step() {
    let (ops, states) = check_every_prefix(Durability::GroupCommit);
    assert!(
        ops > 100,
        "the workload is too small to mean much: {ops} ops"
    );
    assert_eq!(states, (ops + 1) * 8);
}

#[test]
fn sync_each_survives_every_crash_at_every_step() {
    check_every_prefix(Durability::SyncEach);
}

#[test]
fn buffered_never_returns_garbage_after_any_crash() {
    check_every_prefix(Durability::Buffered);
}
