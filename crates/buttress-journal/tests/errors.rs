//! The error convention: causes stay typed behind `source()`, and no
//! `Display` repeats its source.

use std::error::Error;
use std::io;
use std::sync::Arc;

use buttress_core::ManualClock;
use buttress_fs::{Fault, FaultKind, Fs, OpKind, SimFs};
use buttress_journal::{AppendError, Journal, JournalConfig, JournalReader, OpenError, ReadError};
use buttress_test_support::errors::assert_no_repetition;

fn open(fs: &SimFs) -> Result<Journal, OpenError> {
    Journal::open_with(
        Arc::new(fs.clone()),
        Arc::new(ManualClock::new()),
        "/j",
        "t",
        JournalConfig::default(),
    )
}

#[test]
fn append_errors_keep_serde_and_io_causes_downcastable() {
    let fs = SimFs::new();
    let journal = open(&fs).unwrap();
    let mut map = std::collections::HashMap::new();
    map.insert(vec![1u8], 1); // a map key JSON cannot hold
    let err = journal.append_blocking(&map).unwrap_err();
    assert!(matches!(err, AppendError::Serialize(_)));
    let source = err.source().expect("a source");
    assert!(source.is::<serde_json::Error>(), "{source:?}");
    assert_no_repetition(&err);

    fs.inject(Fault {
        op: OpKind::Sync,
        skip: 0,
        kind: FaultKind::Io,
    });
    let err = journal.append_blocking(&1).unwrap_err();
    assert!(matches!(err, AppendError::Failed(_)));
    let io = err
        .source()
        .and_then(|s| s.downcast_ref::<io::Error>())
        .expect("the io::Error itself");
    assert_eq!(io.raw_os_error(), Some(5));
    assert_no_repetition(&err);
}

#[test]
fn open_and_read_errors_keep_their_causes_typed() {
    let fs = SimFs::new();
    fs.create_dir_all(std::path::Path::new("/")).unwrap();
    // A file where the journal's directory should be.
    fs.create_new(std::path::Path::new("/j")).unwrap();
    let err = open(&fs).unwrap_err();
    assert!(matches!(err, OpenError::Io { .. }), "{err:?}");
    assert!(err.source().is_some_and(|s| s.is::<io::Error>()));
    assert_no_repetition(&err);

    let fs = SimFs::new();
    let journal = open(&fs).unwrap();
    journal.append_blocking(&"text").unwrap();
    let mut reader = JournalReader::with_fs(Arc::new(fs) as Arc<dyn Fs>, "/j", "t");
    let err = reader.next_record::<u32>().unwrap_err();
    assert!(matches!(err, ReadError::Decode { .. }));
    assert!(err.source().is_some_and(|s| s.is::<serde_json::Error>()));
    assert!(err.to_string().contains("does not decode"));
    assert_no_repetition(&err);
}
