//! The journal reader on arbitrary files: plain, split over two files, or
//! as a "compressed" file. It must neither panic nor loop forever, and may
//! only return checksummed JSON.
#![no_main]

use std::path::Path;
use std::sync::Arc;

use buttress_fs::{Fs, SimFs};
use buttress_journal::JournalReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, bytes)) = data.split_first() else { return };
    let fs = SimFs::new();
    let dir = Path::new("/j");
    fs.create_dir_all(dir).expect("mkdir");
    let write = |name: &str, bytes: &[u8]| {
        let file = fs.create_new(&dir.join(name)).expect("create");
        file.write_all(bytes).expect("write");
    };
    match mode % 3 {
        0 => write("t.0000000001.jsonl", bytes),
        1 => {
            let (a, b) = bytes.split_at(bytes.len() / 2);
            write("t.0000000001.jsonl", a);
            write("t.0000000002.jsonl", b);
        }
        _ => {
            write("t.0000000001.jsonl.gz", bytes);
            write("t.0000000002.jsonl", b"");
        }
    }
    let mut reader =
        JournalReader::with_fs(Arc::new(fs) as Arc<dyn Fs>, dir, "t").max_record_bytes(4096);
    let mut n = 0usize;
    while let Some(record) = reader.next_record::<serde_json::Value>().expect("no I/O errors in memory") {
        let _ = record;
        n += 1;
        assert!(n <= data.len(), "more records than bytes: an endless loop");
    }
    let _ = reader.unprocessed_bytes();
});
