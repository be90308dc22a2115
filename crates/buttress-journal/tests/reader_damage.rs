//! The reader and files that are damaged, cut short, fail to read, or
//! change between its listing and its open: what is counted, what is an
//! error, and that reading goes on with the next file.

mod support;

use std::io;
use std::sync::Arc;

use buttress_fs::{Fs, SimFs};
use buttress_journal::{Cursor, ReadError};
use support::interleave::{At, Interleave};
use support::{events_from, gz, gzipped, plain, put, record_line, sim_reader};

fn lines(events: &[u32]) -> Vec<u8> {
    events.iter().flat_map(record_line).collect()
}

/// File 1 compressed as `bytes` says, file 2 plain with event 3.
fn compressed_then_plain(bytes: &[u8]) -> SimFs {
    let fs = SimFs::new();
    put(&fs, &gz(1), bytes);
    put(&fs, &plain(2), &lines(&[3]));
    fs
}

/// A compressed file whose gzip header is damaged.
fn damaged() -> Vec<u8> {
    let mut bytes = gzipped(&lines(&[1, 2]));
    bytes[0] ^= 0xff;
    bytes
}

#[test]
fn a_damaged_compressed_file_is_counted_and_passed_over() {
    let fs = compressed_then_plain(&damaged());
    let mut reader = sim_reader(Arc::new(fs));
    assert_eq!(events_from::<u32>(&mut reader), [3]);
    assert_eq!(reader.stats().broken_files, 1);
}

#[test]
fn a_cursor_inside_a_damaged_compressed_file_counts_it_once() {
    let fs = compressed_then_plain(&damaged());
    let mut reader = sim_reader(Arc::new(fs));
    reader.seek(Cursor {
        file: 1,
        offset: 10,
    });
    assert_eq!(events_from::<u32>(&mut reader), [3]);
    assert_eq!(reader.stats().broken_files, 1);
}

/// A cursor at or past the end of a compressed file that is whole (one
/// saved past what a power loss kept, before the file was compressed):
/// nothing more comes from that file, and it is not damaged.
#[test]
fn a_cursor_at_or_past_the_end_of_a_compressed_file_goes_on_with_the_next() {
    let whole = lines(&[1, 2]);
    let fs = compressed_then_plain(&gzipped(&whole));
    let end = whole.len() as u64;
    for offset in [end, end + 1, end + 50] {
        let mut reader = sim_reader(Arc::new(fs.clone()));
        reader.seek(Cursor { file: 1, offset });
        assert_eq!(events_from::<u32>(&mut reader), [3], "cursor 1:{offset}");
        assert_eq!(reader.stats().broken_files, 0, "cursor 1:{offset}");
    }
}

#[test]
fn a_failed_read_of_a_plain_file_is_an_error_and_the_next_call_reads() {
    let fs = SimFs::new();
    put(&fs, &plain(1), &lines(&[1, 2]));
    let failing = Interleave::new(&fs, At::Read);
    failing.arm(|| Err(io::Error::from_raw_os_error(5)));
    let mut reader = sim_reader(Arc::new(failing));
    match reader.next_record::<u32>() {
        Err(ReadError::Io { path, source }) => {
            assert_eq!(path, plain(1));
            assert_eq!(source.raw_os_error(), Some(5));
        }
        other => panic!("expected the read error, got {other:?}"),
    }
    assert_eq!(events_from::<u32>(&mut reader), [1, 2]);
    assert_eq!(reader.stats().broken_files, 0);
}

/// The writer's maintenance compresses file 1 (and removes the plain copy)
/// between the reader's listing and its open: the reader looks again and
/// reads the compressed copy.
#[test]
fn a_file_compressed_between_listing_and_open_is_read_from_its_new_name() {
    let fs = SimFs::new();
    put(&fs, &plain(1), &lines(&[1, 2]));
    put(&fs, &plain(2), &lines(&[3]));
    let racy = Interleave::new(&fs, At::Open);
    let inner = fs.clone();
    racy.arm(move || {
        let bytes = inner.read(&plain(1))?;
        inner.create_new(&gz(1))?.write_all(&gzipped(&bytes))?;
        inner.remove_file(&plain(1))
    });
    let mut reader = sim_reader(Arc::new(racy.clone()));
    assert_eq!(events_from::<u32>(&mut reader), [1, 2, 3]);
    assert!(racy.ran());
    let stats = reader.stats();
    assert_eq!((stats.broken_files, stats.missing_files), (0, 0));
}

#[test]
fn an_open_that_fails_otherwise_is_an_error() {
    let fs = SimFs::new();
    put(&fs, &plain(1), &lines(&[1]));
    let failing = Interleave::new(&fs, At::Open);
    failing.arm(|| Err(io::Error::from(io::ErrorKind::PermissionDenied)));
    let mut reader = sim_reader(Arc::new(failing));
    match reader.next_record::<u32>() {
        Err(ReadError::Io { path, source }) => {
            assert_eq!(path, plain(1));
            assert_eq!(source.kind(), io::ErrorKind::PermissionDenied);
        }
        other => panic!("expected the open error, got {other:?}"),
    }
    assert_eq!(events_from::<u32>(&mut reader), [1]);
}
