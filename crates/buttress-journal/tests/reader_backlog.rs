//! `JournalReader::unprocessed_bytes`, the backlog a consumer reports for
//! backpressure: compressed files at their uncompressed size, files that
//! change under it, and failures.

mod support;

use std::io;
use std::sync::Arc;

use buttress_fs::{Fs, SimFs};
use buttress_journal::ReadError;
use support::interleave::{At, Interleave};
use support::{gz, gzipped, plain, put, record_line, sim_reader};

/// File 1 compressed from `first`, file 2 plain with one record; returns
/// the file system and file 2's length.
fn two_files(first: &[u8]) -> (SimFs, u64) {
    let fs = SimFs::new();
    put(&fs, &gz(1), &gzipped(first));
    let second = record_line(&3u32);
    put(&fs, &plain(2), &second);
    (fs, second.len() as u64)
}

#[test]
fn compressed_files_count_at_their_uncompressed_size() {
    let one = record_line(&1u32);
    let two = record_line(&"a".repeat(5000));
    let whole = [one.clone(), two].concat();
    let (fs, second) = two_files(&whole);
    let mut reader = sim_reader(Arc::new(fs));
    assert_eq!(
        reader.unprocessed_bytes().unwrap(),
        whole.len() as u64 + second
    );
    assert!(reader.next_record::<u32>().unwrap().is_some());
    assert_eq!(
        reader.unprocessed_bytes().unwrap(),
        (whole.len() - one.len()) as u64 + second
    );
}

#[test]
fn an_empty_compressed_file_counts_nothing() {
    let (fs, second) = two_files(b"");
    assert_eq!(fs.metadata(&gz(1)).unwrap().len, 20, "the shortest gzip");
    assert_eq!(
        sim_reader(Arc::new(fs)).unprocessed_bytes().unwrap(),
        second
    );
}

#[test]
fn a_compressed_file_too_short_to_be_gzip_counts_its_own_length() {
    for len in [1, 5, 19] {
        let fs = SimFs::new();
        put(&fs, &gz(1), &vec![0x1f; len]);
        assert_eq!(
            sim_reader(Arc::new(fs)).unprocessed_bytes().unwrap(),
            len as u64
        );
    }
}

/// Retention removes file 1 between the listing and its size: it is gone,
/// and counts nothing.
#[test]
fn a_file_gone_between_listing_and_sizing_counts_nothing() {
    let fs = SimFs::new();
    put(&fs, &plain(1), &record_line(&1u32));
    let second = record_line(&2u32);
    put(&fs, &plain(2), &second);
    let racy = Interleave::new(&fs, At::Metadata);
    let inner = fs.clone();
    racy.arm(move || inner.remove_file(&plain(1)));
    let reader = sim_reader(Arc::new(racy.clone()));
    assert_eq!(reader.unprocessed_bytes().unwrap(), second.len() as u64);
    assert!(racy.ran());
}

#[test]
fn a_size_that_cannot_be_read_is_an_error() {
    let fs = SimFs::new();
    put(&fs, &plain(1), &record_line(&1u32));
    let failing = Interleave::new(&fs, At::Metadata);
    failing.arm(|| Err(io::Error::from_raw_os_error(5)));
    match sim_reader(Arc::new(failing)).unprocessed_bytes() {
        Err(ReadError::Io { path, source }) => {
            assert_eq!(path, plain(1));
            assert_eq!(source.raw_os_error(), Some(5));
        }
        other => panic!("expected the error, got {other:?}"),
    }
}
