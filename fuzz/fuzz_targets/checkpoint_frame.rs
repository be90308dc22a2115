//! The checkpoint decoder on arbitrary bytes: the frame check, and each
//! codec on the raw bytes (random input practically never passes the
//! CRC, so the codecs are fuzzed directly too). No panic, whatever the
//! bytes.
#![no_main]

use buttress_checkpoint::{Binary, Codec, Json, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = buttress_checkpoint::__fuzz::decode_frame(data);
    let _ = decode::<_, serde_json::Value>(&Json, 1, data);
    let _ = Json.decode::<serde_json::Value>(data);
    let _ = Json.decode::<Vec<f64>>(data);
    let _ = Binary.decode::<Vec<u64>>(data);
    let _ = Binary.decode::<(String, Option<u32>, Vec<(u8, i64)>)>(data);
});
