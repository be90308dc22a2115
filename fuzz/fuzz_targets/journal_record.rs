//! The journal's record decoder on arbitrary lines.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    let _ = buttress_journal::__fuzz::decode_line(line);
});
