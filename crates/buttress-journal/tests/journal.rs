//! Writing, reading, rotation, retention, faults: on the simulated file
//! system (and the real one where it matters).

mod support;

use std::sync::Arc;
use std::time::Duration;

use buttress_core::ManualClock;
use buttress_fs::{Fault, FaultKind, File, Fs, OpKind, SimFs};
use buttress_journal::{
    AppendError, Compression, Cursor, Durability, Journal, JournalConfig, JournalReader, OpenError,
    Overflow,
};
use support::interleave::{At, Interleave};
use support::{Ev, open_sim, read_all, real_dir, record_line, sim_dir};

fn fs_arc(fs: &SimFs) -> Arc<dyn Fs> {
    Arc::new(fs.clone())
}

#[test]
fn every_mode_writes_what_it_acknowledges_in_order() {
    for durability in [
        Durability::Buffered,
        Durability::GroupCommit,
        Durability::SyncEach,
    ] {
        let fs = SimFs::new();
        let journal = open_sim(&fs, JournalConfig::default().durability(durability));
        for s in 0..50 {
            journal.append_blocking(&Ev::new(0, 0, s, 10)).unwrap();
        }
        journal.close().unwrap();
        let (events, stats) = read_all(fs_arc(&fs), sim_dir(), "t");
        assert_eq!(
            events.iter().map(|e| e.s).collect::<Vec<_>>(),
            (0..50).collect::<Vec<_>>()
        );
        assert_eq!(stats.corrupt_records, 0);
    }
}

#[test]
fn threads_share_one_journal_without_loss_or_reordering() {
    for durability in [
        Durability::Buffered,
        Durability::GroupCommit,
        Durability::SyncEach,
    ] {
        threads_share_one_journal(durability);
    }
}

fn threads_share_one_journal(durability: Durability) {
    let fs = SimFs::new();
    let journal = open_sim(
        &fs,
        JournalConfig::default()
            .queue_bytes(1 << 20)
            .durability(durability),
    );
    std::thread::scope(|scope| {
        for t in 0..8 {
            let journal = journal.clone();
            scope.spawn(move || {
                for s in 0..300 {
                    journal
                        .append_blocking(&Ev::new(0, t, s, (s as usize * 37) % 500))
                        .expect("append");
                }
            });
        }
    });
    journal.close().expect("test setup");
    let (events, stats) = read_all(fs_arc(&fs), sim_dir(), "t");
    assert_eq!(events.len(), 8 * 300);
    assert_eq!(stats.corrupt_records, 0);
    let mut next = [0u32; 8];
    for e in events {
        assert!(e.is_intact());
        assert_eq!(e.s, next[e.t as usize], "thread {} out of order", e.t);
        next[e.t as usize] += 1;
    }
}

#[test]
fn size_rotation_and_gzip_keep_every_record_readable() {
    let fs = SimFs::new();
    let config = JournalConfig::default()
        .rotate_bytes(Some(4096))
        .compression(Compression::Gzip)
        .durability(Durability::Buffered);
    let journal = open_sim(&fs, config);
    for s in 0..200 {
        journal.append_blocking(&Ev::new(0, 0, s, 100)).unwrap();
    }
    journal.close().unwrap();
    let names = fs.list(sim_dir()).unwrap();
    let gz = names
        .iter()
        .filter(|n| n.to_string_lossy().ends_with(".jsonl.gz"))
        .count();
    let plain = names
        .iter()
        .filter(|n| n.to_string_lossy().ends_with(".jsonl"))
        .count();
    assert!(gz >= 4, "{names:?}");
    assert_eq!(plain, 1, "only the active file stays plain: {names:?}");
    for name in &names {
        let len = fs.metadata(&sim_dir().join(name)).unwrap().len;
        assert!(len <= 4096, "{name:?} is {len} bytes");
    }
    let (events, stats) = read_all(fs_arc(&fs), sim_dir(), "t");
    assert_eq!(events.len(), 200);
    assert!(
        events
            .iter()
            .enumerate()
            .all(|(i, e)| e.s == i as u32 && e.is_intact())
    );
    assert_eq!(stats.corrupt_records, 0);
}

#[test]
fn age_rotation_follows_the_clock() {
    let fs = SimFs::new();
    let clock = ManualClock::new();
    let journal = Journal::open_with(
        fs_arc(&fs),
        Arc::new(clock.clone()),
        sim_dir(),
        "t",
        JournalConfig::default().rotate_age(Some(Duration::from_secs(60))),
    )
    .unwrap();
    journal.append_blocking(&Ev::new(0, 0, 0, 1)).unwrap();
    clock.advance(Duration::from_secs(59));
    journal.append_blocking(&Ev::new(0, 0, 1, 1)).unwrap();
    assert_eq!(fs.list(sim_dir()).unwrap().len(), 1);
    clock.advance(Duration::from_secs(1));
    journal.append_blocking(&Ev::new(0, 0, 2, 1)).unwrap();
    assert_eq!(fs.list(sim_dir()).unwrap().len(), 2);
    journal.close().unwrap();
    assert_eq!(read_all(fs_arc(&fs), sim_dir(), "t").0.len(), 3);
}

#[test]
fn retention_keeps_the_newest_files_and_the_reader_counts_the_gap() {
    let fs = SimFs::new();
    let config = JournalConfig::default()
        .rotate_bytes(Some(1000))
        .keep_files(Some(3))
        .durability(Durability::Buffered);
    let journal = open_sim(&fs, config);
    // A reader that stopped in the first file.
    let mut early = JournalReader::with_fs(fs_arc(&fs), sim_dir(), "t");
    journal.append_blocking(&Ev::new(0, 0, 0, 10)).unwrap();
    journal.flush_blocking().unwrap();
    assert_eq!(early.next_record::<Ev>().unwrap().unwrap().event.s, 0);
    let saved = early.cursor();
    for s in 1..100 {
        journal.append_blocking(&Ev::new(0, 0, s, 100)).unwrap();
    }
    journal.close().unwrap();
    // Maintenance runs after the last rotation; close joined it.
    let files = fs.list(sim_dir()).unwrap();
    assert_eq!(files.len(), 3, "{files:?}");
    let mut reader = JournalReader::with_fs(fs_arc(&fs), sim_dir(), "t");
    reader.seek(saved);
    let first = reader.next_record::<Ev>().unwrap().unwrap();
    assert!(first.event.s > 1);
    assert_eq!(reader.stats().missing_files, 1);
}

#[test]
fn a_cursor_resumes_after_its_record_across_files_and_compression() {
    let fs = SimFs::new();
    let config = JournalConfig::default()
        .rotate_bytes(Some(2000))
        .compression(Compression::Gzip)
        .durability(Durability::Buffered);
    let journal = open_sim(&fs, config);
    for s in 0..60 {
        journal.append_blocking(&Ev::new(0, 0, s, 50)).unwrap();
    }
    journal.flush_blocking().unwrap();
    let mut reader = JournalReader::with_fs(fs_arc(&fs), sim_dir(), "t");
    let mut cursors = vec![Cursor::START];
    while let Some(r) = reader.next_record::<Ev>().unwrap() {
        cursors.push(r.cursor);
    }
    assert_eq!(cursors.len(), 61);
    assert_eq!(reader.unprocessed_bytes().unwrap(), 0);
    // More after the reader reached the end: it picks them up.
    for s in 60..80 {
        journal.append_blocking(&Ev::new(0, 0, s, 50)).unwrap();
    }
    journal.close().unwrap();
    assert!(reader.unprocessed_bytes().unwrap() > 0);
    assert_eq!(reader.next_record::<Ev>().unwrap().unwrap().event.s, 60);
    // Every saved cursor resumes at the record after it, though most files
    // are compressed by now.
    for (i, cursor) in cursors.iter().enumerate() {
        let mut r = JournalReader::with_fs(fs_arc(&fs), sim_dir(), "t");
        r.seek(*cursor);
        assert_eq!(
            r.next_record::<Ev>().unwrap().unwrap().event.s,
            i as u32,
            "cursor {cursor}"
        );
        let rest = std::iter::from_fn(|| r.next_record::<Ev>().unwrap()).count();
        assert_eq!(rest, 80 - i - 1);
        assert_eq!(r.unprocessed_bytes().unwrap(), 0);
    }
}

#[test]
fn a_torn_tail_is_sealed_before_the_next_append() {
    let fs = SimFs::new();
    let journal = open_sim(&fs, JournalConfig::default());
    journal.append_blocking(&Ev::new(0, 0, 0, 10)).unwrap();
    // Another process died halfway through a record.
    let path = sim_dir().join("t.0000000001.jsonl");
    let other = fs.open_append(&path, false).unwrap();
    other
        .write_all(b"{\"crc32c\":\"0123abcd\",\"event\":{\"p\":9")
        .unwrap();
    drop(other);
    journal.append_blocking(&Ev::new(0, 0, 1, 10)).unwrap();
    journal.close().unwrap();
    let (events, stats) = read_all(fs_arc(&fs), sim_dir(), "t");
    assert_eq!(events.iter().map(|e| e.s).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(stats.corrupt_records, 1);
}

/// Writes the first `cut` bytes of record `s` to the active file through a
/// handle of its own: another process, mid-record. The handle holds the
/// file's lock when `locked`.
fn half_written(fs: &SimFs, s: u32, cut: usize, locked: bool) -> (Box<dyn File>, Vec<u8>) {
    let line = record_line(&Ev::new(9, 0, s, 10));
    let other = fs
        .open_append(&sim_dir().join("t.0000000001.jsonl"), false)
        .expect("test setup");
    if locked {
        other.lock().expect("test setup");
    }
    other.write_all(&line[..cut]).expect("test setup");
    (other, line[cut..].to_vec())
}

#[test]
fn a_partial_tail_while_a_writer_holds_the_lock_is_in_progress() {
    let fs = SimFs::new();
    let journal = open_sim(&fs, JournalConfig::default());
    journal.append_blocking(&Ev::new(0, 0, 0, 10)).unwrap();
    journal.close().unwrap();
    let (writer, rest) = half_written(&fs, 1, 20, true);
    let mut reader = JournalReader::with_fs(fs_arc(&fs), sim_dir(), "t");
    assert_eq!(reader.next_record::<Ev>().unwrap().unwrap().event.s, 0);
    let after_first = reader.cursor();
    for _ in 0..3 {
        assert!(reader.next_record::<Ev>().unwrap().is_none());
        assert_eq!(reader.stats().corrupt_records, 0, "in progress, not torn");
        assert_eq!(reader.cursor(), after_first);
        assert_eq!(reader.unprocessed_bytes().unwrap(), 20);
    }
    // The writer finishes its record and lets go.
    writer.write_all(&rest).unwrap();
    writer.unlock().unwrap();
    let record = reader.next_record::<Ev>().unwrap().unwrap();
    assert_eq!((record.event.p, record.event.s), (9, 1));
    assert!(reader.next_record::<Ev>().unwrap().is_none());
    assert_eq!(reader.stats().corrupt_records, 0);
    assert_eq!(reader.unprocessed_bytes().unwrap(), 0);
}

#[test]
fn a_torn_tail_with_no_writer_left_is_counted_once_and_skipped() {
    let fs = SimFs::new();
    let journal = open_sim(&fs, JournalConfig::default());
    journal.append_blocking(&Ev::new(0, 0, 0, 10)).unwrap();
    journal.close().unwrap();
    // The writer died mid-record: its handle (and lock) are gone.
    drop(half_written(&fs, 1, 25, true));
    let mut reader = JournalReader::with_fs(fs_arc(&fs), sim_dir(), "t");
    assert_eq!(reader.next_record::<Ev>().unwrap().unwrap().event.s, 0);
    assert!(reader.next_record::<Ev>().unwrap().is_none());
    let stats = reader.stats();
    assert_eq!((stats.corrupt_records, stats.corrupt_bytes), (1, 25));
    assert_eq!(reader.unprocessed_bytes().unwrap(), 0, "moved past it");
    let past_it = reader.cursor();
    assert_eq!(
        past_it.offset,
        fs.metadata(&sim_dir().join("t.0000000001.jsonl"))
            .unwrap()
            .len
    );
    assert!(reader.next_record::<Ev>().unwrap().is_none());
    assert_eq!(reader.stats().corrupt_records, 1, "counted once");

    // A new writer seals the fragment, rotates, appends; the sealed file is
    // compressed.
    let config = JournalConfig::default().compression(Compression::Gzip);
    let journal = open_sim(&fs, config);
    journal.append_blocking(&Ev::new(0, 0, 1, 10)).unwrap();
    journal.close().unwrap();
    assert!(
        fs.metadata(&sim_dir().join("t.0000000001.jsonl.gz"))
            .is_ok()
    );
    // The reader goes on: the seal's newline is not a second corrupt record.
    assert_eq!(reader.next_record::<Ev>().unwrap().unwrap().event.s, 1);
    assert_eq!(reader.stats().corrupt_records, 1);
    // Nor for a reader resumed from the cursor saved past the fragment
    // (through the compressed copy now).
    let mut resumed = JournalReader::with_fs(fs_arc(&fs), sim_dir(), "t");
    resumed.seek(past_it);
    assert_eq!(resumed.next_record::<Ev>().unwrap().unwrap().event.s, 1);
    assert_eq!(resumed.stats(), {
        let mut expected = buttress_journal::ReadStats::default();
        expected.records = 1;
        expected
    });
    // From the start: the fragment and its seal are one corrupt line.
    let (events, stats) = read_all(fs_arc(&fs), sim_dir(), "t");
    assert_eq!(events.iter().map(|e| e.s).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!((stats.corrupt_records, stats.corrupt_bytes), (1, 26));
}

#[test]
fn an_overlong_torn_tail_with_no_writer_left_is_counted_and_skipped() {
    let fs = SimFs::new();
    let journal = open_sim(&fs, JournalConfig::default());
    journal.append_blocking(&Ev::new(0, 0, 0, 10)).unwrap();
    journal.close().unwrap();
    let other = fs
        .open_append(&sim_dir().join("t.0000000001.jsonl"), false)
        .unwrap();
    other.write_all(&[b'x'; 3000]).unwrap();
    drop(other);
    let mut reader = JournalReader::with_fs(fs_arc(&fs), sim_dir(), "t").max_record_bytes(1000);
    assert_eq!(reader.next_record::<Ev>().unwrap().unwrap().event.s, 0);
    assert!(reader.next_record::<Ev>().unwrap().is_none());
    let stats = reader.stats();
    assert_eq!((stats.corrupt_records, stats.corrupt_bytes), (1, 3000));
    assert_eq!(reader.unprocessed_bytes().unwrap(), 0);
}

#[test]
fn a_record_finished_between_the_last_read_and_the_probe_is_read_not_skipped() {
    let fs = SimFs::new();
    let journal = open_sim(&fs, JournalConfig::default());
    journal.append_blocking(&Ev::new(0, 0, 0, 10)).unwrap();
    journal.close().unwrap();
    let (writer, rest) = half_written(&fs, 1, 30, true);
    // "Another process" finishes its record and unlocks just before the
    // reader's probe: the race between its last read and the probe.
    let racy = Interleave::new(&fs, At::Probe);
    racy.arm(move || {
        writer.write_all(&rest)?;
        writer.unlock()
    });
    let mut reader = JournalReader::with_fs(Arc::new(racy.clone()), sim_dir(), "t");
    let seen: Vec<u32> = std::iter::from_fn(|| reader.next_record::<Ev>().unwrap())
        .map(|r| r.event.s)
        .collect();
    assert!(racy.ran(), "the probe ran");
    assert_eq!(seen, vec![0, 1]);
    assert_eq!(reader.stats().corrupt_records, 0);
    assert_eq!(reader.unprocessed_bytes().unwrap(), 0);
}

#[test]
fn readers_skip_and_count_torn_zeroed_flipped_and_overlong_lines() {
    let fs = SimFs::new();
    let journal = open_sim(&fs, JournalConfig::default());
    for s in 0..3 {
        journal.append_blocking(&Ev::new(0, 0, s, 10)).unwrap();
    }
    journal.close().unwrap();
    let path = sim_dir().join("t.0000000001.jsonl");
    let good = fs.read(&path).unwrap();
    let lines: Vec<&[u8]> = good.split_inclusive(|&b| b == b'\n').collect();
    let mut flipped = lines[1].to_vec();
    flipped[40] ^= 0x04;
    let mut bad = Vec::new();
    bad.extend_from_slice(lines[0]);
    bad.extend_from_slice(&[0; 100]);
    bad.push(b'\n');
    bad.extend_from_slice(&flipped);
    bad.extend_from_slice(&lines[1][..30]); // torn, then a whole record glued on
    bad.extend_from_slice(lines[2]);
    bad.extend_from_slice(&vec![b'x'; 3000]);
    bad.push(b'\n');
    bad.extend_from_slice(lines[2]);
    fs.remove_file(&path).unwrap();
    fs.create_new(&path).unwrap().write_all(&bad).unwrap();
    let mut reader = JournalReader::with_fs(fs_arc(&fs), sim_dir(), "t").max_record_bytes(1000);
    let mut seen = Vec::new();
    while let Some(r) = reader.next_record::<Ev>().unwrap() {
        seen.push(r.event.s);
    }
    assert_eq!(seen, vec![0, 2, 2]);
    assert_eq!(reader.stats().corrupt_records, 4);
    assert_eq!(reader.stats().records, 3);
}

#[test]
fn a_failed_fdatasync_fails_the_batch_and_everything_after() {
    let fs = SimFs::new();
    let journal = open_sim(&fs, JournalConfig::default());
    journal.append_blocking(&Ev::new(0, 0, 0, 10)).unwrap();
    fs.inject(Fault {
        op: OpKind::Sync,
        skip: 0,
        kind: FaultKind::Io,
    });
    let err = journal.append_blocking(&Ev::new(0, 0, 1, 10)).unwrap_err();
    assert!(
        matches!(err, AppendError::Failed(ref e) if e.raw_os_error() == Some(5)),
        "{err:?}"
    );
    assert!(journal.is_failed());
    for s in 2..5 {
        assert!(matches!(
            journal.append_blocking(&Ev::new(0, 0, s, 10)),
            Err(AppendError::Failed(_))
        ));
    }
    assert!(journal.close().is_err());
    // Reopening seals and goes on; the acknowledged record is there.
    let journal = open_sim(&fs, JournalConfig::default());
    journal.append_blocking(&Ev::new(0, 0, 9, 10)).unwrap();
    journal.close().unwrap();
    let (events, _) = read_all(fs_arc(&fs), sim_dir(), "t");
    assert_eq!(events.first().map(|e| e.s), Some(0));
    assert_eq!(events.last().map(|e| e.s), Some(9));
}

#[test]
fn no_space_fails_the_append_and_a_short_write_is_completed() {
    let fs = SimFs::new();
    let journal = open_sim(&fs, JournalConfig::default());
    fs.inject(Fault {
        op: OpKind::Write,
        skip: 0,
        kind: FaultKind::ShortWrite(7),
    });
    journal.append_blocking(&Ev::new(0, 0, 0, 10)).unwrap();
    fs.inject(Fault {
        op: OpKind::Write,
        skip: 0,
        kind: FaultKind::NoSpace,
    });
    let err = journal.append_blocking(&Ev::new(0, 0, 1, 10)).unwrap_err();
    assert!(
        matches!(err, AppendError::Failed(ref e) if e.kind() == std::io::ErrorKind::StorageFull)
    );
    let _ = journal.close();
    let (events, _) = read_all(fs_arc(&fs), sim_dir(), "t");
    assert_eq!(events.iter().map(|e| e.s).collect::<Vec<_>>(), vec![0]);
}

#[test]
fn a_full_queue_drops_and_counts_or_waits() {
    let fs = SimFs::new();
    let config = JournalConfig::default()
        .durability(Durability::Buffered)
        .overflow(Overflow::Drop)
        .max_record_bytes(200)
        .queue_bytes(200);
    let journal = open_sim(&fs, config);
    // Hold the writer: take the file's lock from "another process".
    let lock = fs
        .open_append(&sim_dir().join("t.0000000001.jsonl"), false)
        .unwrap();
    lock.lock().unwrap();
    let mut dropped = 0;
    for s in 0..20 {
        match journal.try_append(&Ev::new(0, 0, s, 20)) {
            Ok(_) => {}
            Err(AppendError::QueueFull { .. }) => dropped += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(dropped > 0);
    assert!(journal.queued_bytes() <= 200);
    lock.unlock().unwrap();
    journal.close().unwrap();
    let (events, _) = read_all(fs_arc(&fs), sim_dir(), "t");
    assert_eq!(events.len(), 20 - dropped);
}

#[test]
fn bad_config_names_and_events_are_typed_errors() {
    let fs = SimFs::new();
    let open = |name: &str, config: JournalConfig| {
        Journal::open_with(
            fs_arc(&fs),
            Arc::new(ManualClock::new()),
            sim_dir(),
            name,
            config,
        )
    };
    assert!(matches!(
        open("t", JournalConfig::default().queue_bytes(10)),
        Err(OpenError::Config(_))
    ));
    assert!(matches!(
        open("t", JournalConfig::default().keep_files(Some(0))),
        Err(OpenError::Config(_))
    ));
    assert!(matches!(
        open("t", JournalConfig::default().max_record_bytes(5)),
        Err(OpenError::Config(_))
    ));
    for name in ["", "a/b", "..", "a.b", "a b"] {
        assert!(
            matches!(
                open(name, JournalConfig::default()),
                Err(OpenError::Name(_))
            ),
            "{name:?}"
        );
    }
    let journal = open("t", JournalConfig::default().max_record_bytes(100)).unwrap();
    assert!(matches!(
        journal.append_blocking(&Ev::new(0, 0, 0, 200)),
        Err(AppendError::TooLarge { max: 100, .. })
    ));
    let mut map = std::collections::HashMap::new();
    map.insert(vec![1u8], 1); // a map key JSON cannot hold
    assert!(matches!(
        journal.append_blocking(&map),
        Err(AppendError::Serialize(_))
    ));
    journal.close().unwrap();
    assert!(matches!(
        journal.append_blocking(&1),
        Err(AppendError::Closed)
    ));
}

#[tokio::test]
async fn async_appends_resolve_when_durable_and_pipeline() {
    let fs = SimFs::new();
    let journal = open_sim(&fs, JournalConfig::default());
    journal.append(&Ev::new(0, 0, 0, 5)).await.unwrap();
    let mut receipts = Vec::new();
    for s in 1..100 {
        receipts.push(journal.append_queued(&Ev::new(0, 0, s, 5)).await.unwrap());
    }
    for r in receipts {
        r.confirmed().await.unwrap();
    }
    journal.sync().await.unwrap();
    journal.flush().await.unwrap();
    assert_eq!(read_all(fs_arc(&fs), sim_dir(), "t").0.len(), 100);
    journal.close().unwrap();
}

#[test]
fn the_real_file_system_round_trips_and_the_lines_are_plain_json() {
    let dir = real_dir("roundtrip");
    let journal = Journal::open(&dir, "events", JournalConfig::default()).unwrap();
    for s in 0..10 {
        journal.append_blocking(&Ev::new(1, 2, s, 3)).unwrap();
    }
    journal.close().unwrap();
    let text = std::fs::read_to_string(dir.join("events.0000000001.jsonl")).unwrap();
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(value["event"]["p"], 1);
        assert_eq!(value["crc32c"].as_str().unwrap().len(), 8);
    }
    let mut reader = JournalReader::open(&dir, "events").unwrap();
    assert_eq!(
        std::iter::from_fn(|| reader.next_record::<Ev>().unwrap()).count(),
        10
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Several journals on one file system behave like several processes:
/// each has its own handles, locks and writer thread.
#[test]
fn several_writers_rotating_and_compressing_lose_nothing() {
    let fs = SimFs::new();
    let config = JournalConfig::default()
        .rotate_bytes(Some(3000))
        .compression(Compression::Gzip)
        .durability(Durability::Buffered);
    std::thread::scope(|scope| {
        for p in 0..4 {
            let journal = open_sim(&fs, config.clone());
            scope.spawn(move || {
                std::thread::scope(|inner| {
                    for t in 0..2 {
                        let journal = journal.clone();
                        inner.spawn(move || {
                            for s in 0..300 {
                                journal
                                    .append_blocking(&Ev::new(p, t, s, 20 + (s as usize % 7) * 40))
                                    .unwrap();
                            }
                        });
                    }
                });
                journal.close().unwrap();
            });
        }
    });
    let (events, stats) = read_all(fs_arc(&fs), sim_dir(), "t");
    assert_eq!(stats.corrupt_records, 0);
    assert_eq!(events.len(), 4 * 2 * 300);
    let mut next = std::collections::HashMap::new();
    for e in events {
        let n = next.entry((e.p, e.t)).or_insert(0);
        assert_eq!(e.s, *n);
        *n += 1;
    }
}

#[cfg(feature = "serde")]
#[test]
fn the_config_loads_from_json_with_human_durations() {
    let config: JournalConfig = serde_json::from_str(
        r#"{"durability": "sync_each", "rotate_age": "15m", "rotate_bytes": 1048576, "compression": "gzip"}"#,
    )
    .unwrap();
    assert_eq!(config.durability, Durability::SyncEach);
    assert_eq!(config.rotate_age, Some(Duration::from_secs(900)));
    assert_eq!(config.compression, Compression::Gzip);
    assert_eq!(config.queue_bytes, JournalConfig::default().queue_bytes);
    assert!(serde_json::from_str::<JournalConfig>(r#"{"rotate_bytez": 1}"#).is_err());
}

#[test]
fn after_a_failed_write_sync_and_flush_report_it_instead_of_hanging_or_lying() {
    let fs = SimFs::new();
    let journal = open_sim(
        &fs,
        JournalConfig::default().durability(Durability::Buffered),
    );
    journal.append_blocking(&Ev::new(0, 0, 0, 10)).unwrap();
    journal.flush_blocking().unwrap();
    // Record 0 is written, not synced; record 1's write fails.
    fs.inject(Fault {
        op: OpKind::Write,
        skip: 0,
        kind: FaultKind::Io,
    });
    journal.append_blocking(&Ev::new(0, 0, 1, 10)).unwrap(); // buffered: queued
    assert!(journal.flush_blocking().is_err());
    assert!(journal.sync_blocking().is_err());
    assert!(journal.close().is_err());
}

#[test]
fn a_file_another_writer_created_is_made_durable_before_acknowledging_in_it() {
    let fs = SimFs::new();
    let first = open_sim(&fs, JournalConfig::default());
    first.append_blocking(&Ev::new(0, 0, 0, 10)).unwrap();
    first.close().unwrap();
    // A rotator died between creating file 2 and syncing the directory.
    drop(
        fs.open_append(&sim_dir().join("t.0000000002.jsonl"), true)
            .unwrap(),
    );
    let second = open_sim(&fs, JournalConfig::default());
    second.append_blocking(&Ev::new(0, 0, 1, 10)).unwrap();
    let (events, _) = read_all(
        fs_arc(&fs.crash(buttress_fs::Crash::POWER_LOSS)),
        sim_dir(),
        "t",
    );
    assert_eq!(events.iter().map(|e| e.s).collect::<Vec<_>>(), vec![0, 1]);
    second.close().unwrap();
}

#[test]
fn a_first_file_sealed_and_compressed_by_others_before_its_creator_opens_it_is_not_an_error() {
    let fs = SimFs::new();
    fs.create_dir_all(sim_dir()).unwrap();
    // Between this writer's creation of file 1 and its open, other writers
    // fill it, rotate to file 2 and compress file 1 (seen with eight
    // processes rotating every 3 ms: the open failed with NotFound).
    let racy = Interleave::new(&fs, At::SyncDir);
    let others = fs.clone();
    racy.arm(move || {
        support::put(
            &others,
            &support::gz(1),
            &support::gzipped(&record_line(&Ev::new(1, 0, 0, 10))),
        );
        support::put(
            &others,
            &support::plain(2),
            &record_line(&Ev::new(1, 0, 1, 10)),
        );
        others.remove_file(&support::plain(1))
    });
    let journal = Journal::open_with(
        Arc::new(racy.clone()),
        Arc::new(ManualClock::new()),
        sim_dir(),
        "t",
        JournalConfig::default(),
    )
    .expect("opens the newest file instead");
    assert!(racy.ran(), "the other writers ran");
    journal.append_blocking(&Ev::new(0, 0, 0, 10)).unwrap();
    journal.close().unwrap();
    let (events, stats) = read_all(fs_arc(&fs), sim_dir(), "t");
    let seen: Vec<(u32, u32)> = events.iter().map(|e| (e.p, e.s)).collect();
    assert_eq!(seen, vec![(1, 0), (1, 1), (0, 0)]);
    assert_eq!(stats.corrupt_records, 0);
}

#[test]
fn a_cursor_past_what_a_power_loss_kept_does_not_skip_new_records() {
    let fs = SimFs::new();
    let journal = open_sim(
        &fs,
        JournalConfig::default().durability(Durability::Buffered),
    );
    for s in 0..5 {
        journal.append_blocking(&Ev::new(0, 0, s, 10)).unwrap();
    }
    journal.flush_blocking().unwrap(); // written, never synced
    let mut reader = JournalReader::with_fs(fs_arc(&fs), sim_dir(), "t");
    while reader.next_record::<Ev>().unwrap().is_some() {}
    let saved = reader.cursor();
    let crashed = fs.crash(buttress_fs::Crash::POWER_LOSS);
    drop(journal);
    let journal = open_sim(&crashed, JournalConfig::default());
    journal.append_blocking(&Ev::new(0, 0, 100, 10)).unwrap();
    let mut reader = JournalReader::with_fs(fs_arc(&crashed), sim_dir(), "t");
    reader.seek(saved);
    assert_eq!(
        reader.next_record::<Ev>().unwrap().map(|r| r.event.s),
        Some(100)
    );
    journal.close().unwrap();
}

/// Appends serialize into a buffer of the calling thread; an event whose
/// `Serialize` appends to a journal itself gets a buffer of its own.
#[test]
fn an_event_that_appends_while_it_is_serialized_is_written_after_its_inner_append() {
    struct Nested<'a>(&'a buttress_journal::Journal, u32);
    impl serde::Serialize for Nested<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            self.0
                .append_blocking(&self.1)
                .map_err(serde::ser::Error::custom)?;
            s.serialize_u32(self.1 + 100)
        }
    }
    let fs = buttress_fs::SimFs::new();
    let journal = support::open_sim(
        &fs,
        buttress_journal::JournalConfig::default()
            .durability(buttress_journal::Durability::Buffered),
    );
    for n in 0..3 {
        journal.append_blocking(&Nested(&journal, n)).unwrap();
    }
    journal.flush_blocking().unwrap();
    let mut reader = buttress_journal::JournalReader::with_fs(
        std::sync::Arc::new(fs.clone()) as std::sync::Arc<dyn buttress_fs::Fs>,
        support::sim_dir(),
        "t",
    );
    let read: Vec<u32> =
        std::iter::from_fn(|| reader.next_record::<u32>().unwrap().map(|r| r.event)).collect();
    assert_eq!(read, vec![0, 100, 1, 101, 2, 102]);
    journal.close().unwrap();
}

/// An event that does not compress: a compressed file of these is larger
/// than any buffer the decoder reads with, so it is read in many pieces.
#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Noise {
    s: u32,
    hex: String,
}

impl Noise {
    fn new(s: u32) -> Noise {
        // xorshift64 seeded by `s`: the same text for the same `s`.
        let mut x = u64::from(s).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let hex = (0..32)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!("{x:016x}")
            })
            .collect();
        Noise { s, hex }
    }
}

#[test]
fn large_compressed_files_read_back_whole() {
    let fs = SimFs::new();
    let config = JournalConfig::default()
        .rotate_bytes(Some(256 << 10))
        .compression(Compression::Gzip)
        .durability(Durability::Buffered);
    let journal = open_sim(&fs, config);
    for s in 0..1_500 {
        journal.append_blocking(&Noise::new(s)).unwrap();
    }
    journal.close().unwrap();
    let largest_gz = fs
        .list(sim_dir())
        .unwrap()
        .iter()
        .filter(|n| n.to_string_lossy().ends_with(".jsonl.gz"))
        .map(|n| fs.metadata(&sim_dir().join(n)).unwrap().len)
        .max()
        .unwrap();
    assert!(largest_gz > 100 << 10, "{largest_gz} bytes");
    let mut reader = JournalReader::with_fs(fs_arc(&fs), sim_dir(), "t");
    let mut s = 0;
    while let Some(record) = reader.next_record::<Noise>().unwrap() {
        assert_eq!(record.event, Noise::new(s));
        s += 1;
    }
    assert_eq!(s, 1_500);
    assert_eq!(reader.stats().corrupt_records, 0);
}

/// A journal directory that is not a directory is an error for a reader,
/// not an empty journal (only a directory not made yet is that).
#[test]
fn a_reader_of_a_path_that_is_not_a_directory_gets_an_error() {
    let base = real_dir("not-a-dir");
    let file = base.join("journal");
    std::fs::write(&file, b"not a directory").unwrap();
    let mut reader = JournalReader::open(&file, "t").unwrap();
    assert!(reader.next_record::<Ev>().is_err());
    let mut missing = JournalReader::open(base.join("not-yet"), "t").unwrap();
    assert!(missing.next_record::<Ev>().unwrap().is_none());
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_cursor_prints_as_file_then_offset() {
    assert_eq!(
        Cursor {
            file: 3,
            offset: 4096
        }
        .to_string(),
        "3:4096"
    );
}

/// `next_raw` hands out each record's event bytes, as written, with the
/// cursor after it, without decoding them.
#[test]
fn raw_records_are_the_event_bytes_in_order_with_their_cursors() {
    let fs = SimFs::new();
    let journal = open_sim(&fs, JournalConfig::default());
    for s in 0..3 {
        journal.append_blocking(&Ev::new(0, 0, s, 10)).unwrap();
    }
    journal.close().unwrap();
    let mut reader = JournalReader::with_fs(fs_arc(&fs), sim_dir(), "t");
    let mut previous = Cursor::START;
    for s in 0..3 {
        let (bytes, cursor) = reader.next_raw().unwrap().expect("a record");
        assert_eq!(bytes, serde_json::to_vec(&Ev::new(0, 0, s, 10)).unwrap());
        assert_eq!(cursor.file, 1);
        assert!(cursor.offset > previous.offset);
        previous = cursor;
    }
    assert!(reader.next_raw().unwrap().is_none());
}

/// A line longer than the reader's `max_record_bytes` is skipped without
/// being held, counted as one corrupt record of exactly its bytes (its
/// newline included), and reading goes on after it.
#[test]
fn a_line_too_long_is_skipped_and_counted_to_the_byte() {
    let fs = SimFs::new();
    let journal = open_sim(&fs, JournalConfig::default());
    let big = Ev::new(0, 0, 1, 200_000);
    journal.append_blocking(&Ev::new(0, 0, 0, 10)).unwrap();
    journal.append_blocking(&big).unwrap();
    journal.append_blocking(&Ev::new(0, 0, 2, 10)).unwrap();
    journal.close().unwrap();
    let mut reader =
        JournalReader::with_fs(fs_arc(&fs), sim_dir(), "t").max_record_bytes(100 << 10);
    let mut seen = Vec::new();
    while let Some(record) = reader.next_record::<Ev>().unwrap() {
        seen.push(record.event.s);
    }
    assert_eq!(seen, [0, 2]);
    let stats = reader.stats();
    assert_eq!(stats.corrupt_records, 1);
    assert_eq!(stats.corrupt_bytes, record_line(&big).len() as u64);
}
