//! The checkpoint decoder on arbitrary bytes: the frame check, then a typed
//! decode with each codec. No panic, whatever the bytes.
#![no_main]

use buttress_checkpoint::{Binary, Json, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = buttress_checkpoint::__fuzz::decode_frame(data);
    let _ = decode::<_, serde_json::Value>(&Json, 1, data);
    let _ = decode::<_, Vec<u64>>(&Binary, 1, data);
    let _ = decode::<_, (String, Option<u32>)>(&Binary, u64::MAX, data);
});
