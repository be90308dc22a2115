//! The error convention: causes stay typed behind `source()` (serde_json's
//! and postcard's errors, io errors, tokio's `JoinError`), and no `Display`
//! repeats its source.

use std::error::Error;
use std::io;
use std::sync::Arc;

use buttress_checkpoint::{
    BackendError, Binary, Codec, CodecError, FileStore, FileStoreConfig, FrameError, Json,
    LoadError, OpenError, ReadError, SaveError, SkipReason,
};
use buttress_fs::{Fault, FaultKind, Fs, OpKind, SimFs};
use buttress_test_support::errors::assert_no_repetition;

fn store(fs: &SimFs) -> FileStore {
    FileStore::open_with(
        Arc::new(fs.clone()),
        "/ckpt",
        "s",
        FileStoreConfig::default(),
    )
    .expect("open store")
}

#[test]
fn codec_errors_keep_serde_json_and_postcard_errors_downcastable() {
    let err = Json.decode::<u32>(b"\"text\"").unwrap_err();
    assert_eq!(err.codec(), "JSON");
    assert!(err.source().is_some_and(|s| s.is::<serde_json::Error>()));
    assert!(err.downcast_ref::<serde_json::Error>().is_some());
    assert_no_repetition(&err);

    let err = Binary.decode::<String>(&[]).unwrap_err();
    assert_eq!(err.codec(), "postcard");
    assert!(err.source().is_some_and(|s| s.is::<postcard::Error>()));
    assert_no_repetition(&err);

    // Clone and compare, as the enums holding it need.
    assert_eq!(err.clone(), err);
    assert_ne!(err, Json.decode::<u32>(b"x").unwrap_err());
    assert_eq!(
        CodecError::new("CSV", "bad row"),
        CodecError::new("CSV", "bad row")
    );
}

#[test]
fn save_errors_keep_their_causes_typed() {
    let fs = SimFs::new();
    let store = store(&fs);
    let mut map = std::collections::HashMap::new();
    map.insert(vec![1u8], 1); // a map key JSON cannot hold
    let err = store.save_blocking(&Json, 1, &map).unwrap_err();
    let codec = match &err {
        SaveError::Encode(codec) => codec,
        other => panic!("{other:?}"),
    };
    assert!(codec.downcast_ref::<serde_json::Error>().is_some());
    assert!(
        err.source()
            .and_then(|s| s.downcast_ref::<CodecError>())
            .is_some()
    );
    assert_eq!(err.to_string(), "state could not be encoded");
    assert_no_repetition(&err);

    fs.inject(Fault {
        op: OpKind::Sync,
        skip: 0,
        kind: FaultKind::Io,
    });
    let err = store.save_blocking(&Json, 1, &1).unwrap_err();
    assert!(
        matches!(err, SaveError::Io { step: "fsync", .. }),
        "{err:?}"
    );
    let io = err
        .source()
        .and_then(|s| s.downcast_ref::<io::Error>())
        .expect("the io::Error");
    assert_eq!(io.raw_os_error(), Some(5));
    assert_no_repetition(&err);
}

#[test]
fn a_task_error_holds_tokios_join_error() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let join = runtime
        .block_on(async { tokio::spawn(async { panic!("the task panicked") }).await })
        .unwrap_err();
    let err = SaveError::Task(join);
    assert!(
        err.source()
            .is_some_and(|s| s.is::<tokio::task::JoinError>())
    );
    assert_no_repetition(&err);
    let join = runtime
        .block_on(async { tokio::spawn(async { panic!("again") }).await })
        .unwrap_err();
    let err = LoadError::Task(join);
    assert!(
        err.source()
            .is_some_and(|s| s.is::<tokio::task::JoinError>())
    );
}

#[test]
fn load_errors_and_skip_reasons_keep_their_causes_typed() {
    let fs = SimFs::new();
    let store = store(&fs);
    store.save_blocking(&Json, 1, &"not a number").unwrap();
    let err = store.load_blocking::<_, u32>(&Json).unwrap_err();
    let LoadError::NoValid { skipped } = &err else {
        panic!("{err:?}");
    };
    let SkipReason::Corrupt(FrameError::Decode(codec)) = &skipped[0].reason else {
        panic!("{skipped:?}");
    };
    assert!(codec.downcast_ref::<serde_json::Error>().is_some());
    assert_no_repetition(&skipped[0].reason);
    // With no single source, `NoValid` lists each generation with its
    // whole chain: the serde_json message too.
    let text = err.to_string();
    assert!(
        text.contains(
            "payload does not decode as the asked type: the JSON codec failed: invalid type"
        ),
        "{text}"
    );

    // An unreadable generation: a directory under its name.
    fs.create_dir_all(&store.path(2)).unwrap();
    let loaded = store.load_blocking::<_, String>(&Json).unwrap().unwrap();
    assert_eq!(
        loaded.skipped[0].reason,
        SkipReason::Unreadable(ReadError::NotAFile)
    );

    // Listing fails: a file where the directory should be.
    let fs = SimFs::new();
    fs.create_dir_all(std::path::Path::new("/")).unwrap();
    fs.create_new(std::path::Path::new("/ckpt")).unwrap();
    let err = FileStore::open_with(
        Arc::new(fs.clone()) as Arc<dyn Fs>,
        "/ckpt",
        "s",
        FileStoreConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(err, OpenError::Io { .. }), "{err:?}");
    assert!(err.source().is_some_and(|s| s.is::<io::Error>()));
    assert_no_repetition(&err);
    // On the real file system, listing a file fails (ENOTDIR).
    let file = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("checkpoint-errors-{}", std::process::id()));
    std::fs::write(&file, b"not a directory").unwrap();
    let reader = FileStore::open_read_only(&file, "s").unwrap();
    let err = reader.load_blocking::<_, u32>(&Json).unwrap_err();
    std::fs::remove_file(&file).unwrap();
    assert!(matches!(err, LoadError::Io { .. }), "{err:?}");
    assert!(err.source().is_some_and(|s| s.is::<io::Error>()));
    assert_no_repetition(&err);
}

#[test]
fn read_errors_compare_and_keep_the_io_error() {
    let a = ReadError::from(io::Error::from(io::ErrorKind::PermissionDenied));
    let b = ReadError::from(io::Error::from(io::ErrorKind::PermissionDenied));
    assert_eq!(a, b);
    assert_ne!(a, ReadError::NotAFile);
    assert!(a.source().is_some_and(|s| s.is::<io::Error>()));
    assert_no_repetition(&a);
    let large = ReadError::TooLarge {
        len: 10,
        max_bytes: 5,
    };
    assert!(large.to_string().contains("max_bytes"));
}

#[test]
fn backend_errors_say_what_the_store_did_and_keep_the_cause() {
    let cause = io::Error::new(io::ErrorKind::ConnectionReset, "reset by peer");
    let err = SaveError::Backend(BackendError::new("could not store the checkpoint", cause));
    assert_eq!(err.to_string(), "could not store the checkpoint");
    assert!(err.source().is_some_and(|s| s.is::<io::Error>()));
    assert_no_repetition(&err);
}
