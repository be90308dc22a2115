//! The reader's edges, exact to the byte: how much of an unfinished line
//! it holds, an empty line, a fragment at the end of a sealed file, and a
//! record finished between the reader's last read of a file and its look
//! for a newer one.

mod support;

use std::sync::Arc;

use buttress_fs::{File, Fs, SimFs};
use buttress_journal::{Cursor, JournalReader, ReadStats};
use support::interleave::{At, Interleave};
use support::{events_from, plain, record_line, sim_dir};

/// A handle on file `id` (created if missing) of "another process".
fn writer(fs: &SimFs, id: u64) -> Box<dyn File> {
    fs.create_dir_all(sim_dir()).expect("test setup");
    fs.open_append(&plain(id), true).expect("test setup")
}

/// A valid record line of exactly `len` bytes, its newline included.
fn line_of(len: usize) -> Vec<u8> {
    // The event `""` is two bytes; every other byte is the record's.
    let overhead = record_line(&"").len() - 2;
    let event = "a".repeat(len - overhead - 2);
    let line = record_line(&event);
    assert_eq!(line.len(), len, "test setup");
    line
}

fn reader(fs: &SimFs, max_record_bytes: usize) -> JournalReader {
    JournalReader::with_fs(Arc::new(fs.clone()), sim_dir(), "t").max_record_bytes(max_record_bytes)
}

fn stats(records: u64, corrupt_records: u64, corrupt_bytes: u64) -> ReadStats {
    let mut s = ReadStats::default();
    s.records = records;
    s.corrupt_records = corrupt_records;
    s.corrupt_bytes = corrupt_bytes;
    s
}

/// Writes `line` but for its last `held_back` bytes under the lock, lets
/// the reader look, then writes the rest and unlocks. Returns what the
/// reader saw while the line was unfinished, and after.
fn written_in_two<T: serde::de::DeserializeOwned>(
    fs: &SimFs,
    reader: &mut JournalReader,
    line: &[u8],
    held_back: usize,
) -> (bool, Option<T>) {
    let w = writer(fs, 1);
    w.lock().expect("test setup");
    w.write_all(&line[..line.len() - held_back])
        .expect("test setup");
    let while_unfinished = reader.next_record::<T>().expect("read").is_none();
    w.write_all(&line[line.len() - held_back..])
        .expect("test setup");
    w.unlock().expect("test setup");
    (
        while_unfinished,
        reader.next_record::<T>().expect("read").map(|r| r.event),
    )
}

#[test]
fn an_unfinished_line_is_held_up_to_max_record_bytes_and_no_further() {
    const MAX: usize = 300;
    let fs = SimFs::new();
    let mut reader = reader(&fs, MAX);

    // A record of MAX bytes: MAX - 1 of them held while its newline is
    // still to come, then read.
    let fits = line_of(MAX);
    let (waited, read) = written_in_two::<String>(&fs, &mut reader, &fits, 1);
    assert!(waited);
    assert_eq!(
        read.map(|e| e.len()),
        Some(MAX - 2 - (record_line(&"").len() - 2))
    );
    assert_eq!(reader.stats(), stats(1, 0, 0));
    let mut offset = MAX as u64;
    assert_eq!(reader.cursor().offset, offset);

    // MAX bytes read without a newline: longer than a record can be.
    // Skipped without being held, counted whole when its newline comes.
    for (len, first) in [(MAX + 1, MAX), (MAX + 10, MAX + 5)] {
        let over = line_of(len);
        let before = reader.stats();
        let (waited, read) = written_in_two::<String>(&fs, &mut reader, &over, len - first);
        assert!(waited);
        assert_eq!(read, None, "a line of {len} bytes was read");
        let after = reader.stats();
        assert_eq!(after.records, before.records);
        assert_eq!(after.corrupt_records, before.corrupt_records + 1);
        assert_eq!(after.corrupt_bytes, before.corrupt_bytes + len as u64);
        offset += len as u64;
        assert_eq!(reader.cursor().offset, offset);
    }

    // Reading goes on after them, with cursors to the byte.
    writer(&fs, 1).write_all(&line_of(100)).unwrap();
    assert!(reader.next_record::<String>().unwrap().is_some());
    assert_eq!(reader.cursor().offset, offset + 100);
    assert_eq!(reader.unprocessed_bytes().unwrap(), 0);
}

#[test]
fn a_limit_below_the_smallest_record_still_reads_it() {
    let fs = SimFs::new();
    let mut reader = reader(&fs, 0);
    // An event of one byte: the smallest record, whole and unfinished.
    let smallest = record_line(&7u32);
    writer(&fs, 1).write_all(&smallest).unwrap();
    assert_eq!(
        reader.next_record::<u32>().unwrap().map(|r| r.event),
        Some(7)
    );
    let (waited, read) = written_in_two::<u32>(&fs, &mut reader, &smallest, 1);
    assert!(waited);
    assert_eq!(read, Some(7));
    assert_eq!(reader.stats(), stats(2, 0, 0));
}

#[test]
fn an_empty_line_is_one_corrupt_byte() {
    let fs = SimFs::new();
    let w = writer(&fs, 1);
    w.write_all(&record_line(&1u32)).unwrap();
    w.write_all(b"\n").unwrap();
    w.write_all(&record_line(&2u32)).unwrap();
    let mut whole = reader(&fs, 1 << 20);
    let seen: Vec<u32> = events_from(&mut whole);
    assert_eq!(seen, [1, 2]);
    assert_eq!(whole.stats(), stats(2, 1, 1));
    // Resumed just after the first record (a newline before the cursor),
    // the empty line is still one corrupt byte.
    let mut resumed = reader(&fs, 1 << 20);
    resumed.seek(Cursor {
        file: 1,
        offset: record_line(&1u32).len() as u64,
    });
    assert_eq!(
        resumed.next_record::<u32>().unwrap().map(|r| r.event),
        Some(2)
    );
    assert_eq!(resumed.stats(), stats(1, 1, 1));
}

/// File 1 ends with `tail` (no newline); file 2 holds one record.
fn sealed_with_tail(fs: &SimFs, tail: &[u8]) {
    let w = writer(fs, 1);
    w.write_all(&record_line(&1u32)).expect("test setup");
    w.write_all(tail).expect("test setup");
    writer(fs, 2)
        .write_all(&record_line(&2u32))
        .expect("test setup");
}

#[test]
fn a_fragment_at_the_end_of_a_sealed_file_is_one_corrupt_record() {
    for (tail, max) in [(&b"{\"crc32c\":\"0"[..], 1 << 20), (&[b'x'; 1000][..], 300)] {
        let fs = SimFs::new();
        sealed_with_tail(&fs, tail);
        let mut reader = reader(&fs, max);
        let seen: Vec<u32> = events_from(&mut reader);
        assert_eq!(seen, [1, 2], "tail of {} bytes", tail.len());
        assert_eq!(reader.stats(), stats(2, 1, tail.len() as u64));
    }
}

/// A writer finishes its record in file 1 and moves on to file 2 between
/// the reader's last read of file 1 and its listing: the end of the record
/// is read from file 1 before the reader moves on.
#[test]
fn a_record_finished_before_the_file_was_sealed_is_read() {
    let fs = SimFs::new();
    let first = record_line(&1u32);
    let second = record_line(&2u32);
    let w = writer(&fs, 1);
    w.lock().unwrap();
    w.write_all(&first).unwrap();
    w.write_all(&second[..10]).unwrap();
    let racy = Interleave::new(&fs, At::List);
    let mut reader = JournalReader::with_fs(Arc::new(racy.clone()), sim_dir(), "t");
    assert_eq!(
        reader.next_record::<u32>().unwrap().map(|r| r.event),
        Some(1)
    );
    let rest = second[10..].to_vec();
    let fs2 = fs.clone();
    racy.arm(move || {
        w.write_all(&rest)?;
        w.unlock()?;
        writer(&fs2, 2).write_all(&record_line(&3u32))
    });
    let seen: Vec<u32> = events_from(&mut reader);
    assert!(racy.ran());
    assert_eq!(seen, [2, 3]);
    assert_eq!(reader.stats(), stats(3, 0, 0));
}

/// A reader resumed from the cursor saved past a torn fragment, after a
/// new writer sealed the fragment with a newline: the seal is not a
/// record, corrupt or not. (The byte before the cursor tells the reader
/// where it stands.)
#[test]
fn a_reader_resumed_past_a_torn_fragment_takes_its_seal_for_nothing() {
    let fs = SimFs::new();
    let w = writer(&fs, 1);
    w.write_all(&record_line(&1u32)).unwrap();
    w.write_all(b"{\"crc32c\":\"0").unwrap();
    drop(w);
    let mut first = reader(&fs, 1 << 20);
    assert_eq!(
        first.next_record::<u32>().unwrap().map(|r| r.event),
        Some(1)
    );
    assert!(first.next_record::<u32>().unwrap().is_none());
    assert_eq!(first.stats(), stats(1, 1, 12));
    let saved = first.cursor();

    let w = writer(&fs, 1);
    w.write_all(b"\n").unwrap();
    w.write_all(&record_line(&2u32)).unwrap();
    let mut resumed = reader(&fs, 1 << 20);
    resumed.seek(saved);
    assert_eq!(
        resumed.next_record::<u32>().unwrap().map(|r| r.event),
        Some(2)
    );
    assert_eq!(resumed.stats(), stats(1, 0, 0));

    // Resumed after a whole record instead, an empty line is one corrupt
    // byte.
    let after_first = Cursor {
        file: 1,
        offset: record_line(&1u32).len() as u64,
    };
    let mut resumed = reader(&fs, 1 << 20);
    resumed.seek(after_first);
    assert_eq!(
        resumed.next_record::<u32>().unwrap().map(|r| r.event),
        Some(2)
    );
    assert_eq!(resumed.stats(), stats(1, 1, 13));
}
