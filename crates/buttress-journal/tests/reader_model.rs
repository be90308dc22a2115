//! The reader against a model: whatever garbage surrounds them, the valid
//! records come out, in order, and nothing else does.

mod support;

use std::sync::Arc;

use buttress_fs::{Fs, SimFs};
use buttress_journal::JournalReader;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Item {
    Valid(u32),
    /// A record's first bytes, with no newline: whatever comes next is
    /// glued on, as after a `kill -9` with no writer to seal it.
    Torn(u32, usize),
    Zeros(usize),
    Flipped(u32, usize),
    Junk(Vec<u8>),
}

fn record(n: u32) -> Vec<u8> {
    let event = serde_json::json!({"n": n, "pad": "x".repeat(n as usize % 50)});
    let body = serde_json::to_vec(&event).expect("test setup");
    let mut line =
        format!("{{\"crc32c\":\"{:08x}\",\"event\":", crc32c::crc32c(&body)).into_bytes();
    line.extend_from_slice(&body);
    line.extend_from_slice(b"}\n");
    line
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        4 => any::<u32>().prop_map(Item::Valid),
        1 => (any::<u32>(), 1..60usize).prop_map(|(n, at)| Item::Torn(n, at)),
        1 => (1..5000usize).prop_map(Item::Zeros),
        1 => (any::<u32>(), any::<usize>()).prop_map(|(n, bit)| Item::Flipped(n, bit)),
        1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(Item::Junk),
    ]
}

/// The events read, the records counted, and the bytes left unprocessed
/// (none may be: no writer holds any file, so every unfinished line is
/// torn and skipped).
fn read_everything(bytes: &[u8], chunked_files: usize) -> (Vec<serde_json::Value>, u64, u64) {
    let fs = SimFs::new();
    let dir = std::path::Path::new("/j");
    fs.create_dir_all(dir).expect("test setup");
    // Split the bytes over several files: a file boundary is a record
    // boundary for the reader, like a rotation.
    let parts = chunked_files.max(1);
    let size = bytes.len().div_ceil(parts).max(1);
    for (i, part) in bytes.chunks(size).enumerate() {
        let f = fs
            .create_new(&dir.join(format!("t.{:010}.jsonl", i + 1)))
            .expect("test setup");
        f.write_all(part).expect("test setup");
    }
    let mut reader =
        JournalReader::with_fs(Arc::new(fs) as Arc<dyn Fs>, dir, "t").max_record_bytes(4096);
    let mut out = Vec::new();
    while let Some(r) = reader
        .next_record::<serde_json::Value>()
        .expect("test setup")
    {
        out.push(r.event);
    }
    let unprocessed = reader.unprocessed_bytes().expect("test setup");
    (out, reader.stats().records, unprocessed)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn valid_records_come_out_in_order_and_nothing_else(items in prop::collection::vec(item(), 0..40)) {
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        for item in &items {
            match item {
                Item::Valid(n) => {
                    bytes.extend_from_slice(&record(*n));
                    expected.push(*n);
                }
                Item::Torn(n, at) => {
                    let r = record(*n);
                    bytes.extend_from_slice(&r[..(*at).min(r.len() - 2)]);
                }
                Item::Zeros(len) => {
                    bytes.extend(std::iter::repeat_n(0, *len));
                    bytes.push(b'\n');
                }
                Item::Flipped(n, bit) => {
                    let mut r = record(*n);
                    let body = r.len() - 1;
                    let bit = bit % (body * 8);
                    r[bit / 8] ^= 1 << (bit % 8);
                    bytes.extend_from_slice(&r);
                }
                Item::Junk(junk) => {
                    bytes.extend(junk.iter().map(|&b| if b == b'{' { b'[' } else { b }));
                    bytes.push(b'\n');
                }
            }
        }
        let (events, records, unprocessed) = read_everything(&bytes, 1);
        let got: Vec<u32> = events.iter().map(|e| e["n"].as_u64().unwrap() as u32).collect();
        prop_assert_eq!(&got, &expected);
        prop_assert_eq!(records, expected.len() as u64);
        prop_assert_eq!(unprocessed, 0);
    }

    /// Arbitrary bytes, over one or several files: no panic, no endless
    /// loop, and only checksummed JSON comes out.
    #[test]
    fn arbitrary_bytes_never_break_the_reader(bytes in prop::collection::vec(any::<u8>(), 0..20_000), files in 1..4usize) {
        let (events, _, unprocessed) = read_everything(&bytes, files);
        prop_assert!(events.len() <= bytes.len() / 32);
        prop_assert_eq!(unprocessed, 0);
    }
}
