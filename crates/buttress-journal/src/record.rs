//! The record format: one JSON object per line, carrying a CRC32C of the
//! event's bytes.
//!
//! ```text
//! {"crc32c":"1f2e3d4c","event":{"kind":"query","ms":12}}\n
//! ```
//!
//! The checksum is CRC32C (Castagnoli) of exactly the bytes of the event's
//! JSON as written, as eight lowercase hex digits. The line is ordinary
//! JSON, so `jq .event` reads a journal file; the fixed-width prefix lets a
//! reader check a record without parsing it.

use serde::Serialize;

/// `{"crc32c":"`
const HEAD: &[u8] = b"{\"crc32c\":\"";
/// `","event":`
const MID: &[u8] = b"\",\"event\":";
/// Bytes before the event: head, eight hex digits, mid.
pub(crate) const PREFIX_LEN: usize = HEAD.len() + 8 + MID.len();
/// Bytes of a record besides its event: the prefix, `}` and the newline.
pub(crate) const OVERHEAD: usize = PREFIX_LEN + 2;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends the record of `event` to `buf`. On error `buf` is unchanged.
pub(crate) fn encode<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    event: &T,
) -> Result<(), serde_json::Error> {
    let start = buf.len();
    buf.extend_from_slice(HEAD);
    buf.extend_from_slice(b"00000000");
    buf.extend_from_slice(MID);
    if let Err(e) = serde_json::to_writer(&mut *buf, event) {
        buf.truncate(start);
        return Err(e);
    }
    // Compact JSON holds no raw newline, except where serde_json copies
    // raw JSON as it is (`RawValue`): there a newline can only be
    // whitespace between tokens, which a space replaces without changing
    // the value. A record must be one line: readers split on newlines, and
    // the queue counts records by them.
    let body = &mut buf[start + PREFIX_LEN..];
    if memchr::memchr(b'\n', body).is_some() {
        for byte in body.iter_mut().filter(|b| **b == b'\n') {
            *byte = b' ';
        }
    }
    let crc = crc32c::crc32c(&buf[start + PREFIX_LEN..]);
    let hex = &mut buf[start + HEAD.len()..start + HEAD.len() + 8];
    for (i, digit) in hex.iter_mut().enumerate() {
        *digit = HEX[((crc >> (28 - 4 * i)) & 0xf) as usize];
    }
    buf.extend_from_slice(b"}\n");
    Ok(())
}

/// The event bytes of a whole record `line` (without its newline), or
/// `None` if it is not a valid record.
pub(crate) fn decode(line: &[u8]) -> Option<&[u8]> {
    if line.len() < PREFIX_LEN + 2
        || !line.starts_with(HEAD)
        || &line[HEAD.len() + 8..PREFIX_LEN] != MID
        || line.last() != Some(&b'}')
    {
        return None;
    }
    let mut crc = 0u32;
    for &digit in &line[HEAD.len()..HEAD.len() + 8] {
        let v = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => return None,
        };
        // The shift leaves the low four bits zero: adding is or-ing.
        crc = (crc << 4) + u32::from(v);
    }
    let event = &line[PREFIX_LEN..line.len() - 1];
    (crc32c::crc32c(event) == crc).then_some(event)
}

/// Finds a valid record that starts after the beginning of a corrupt
/// `line` and runs to its end: what is left when the front of a line was
/// torn or zero-filled and a whole record follows. Returns the offset of
/// the record in `line` and its event bytes.
pub(crate) fn resync(line: &[u8]) -> Option<(usize, &[u8])> {
    // A head cannot overlap another (`{` occurs in it only first), so the
    // non-overlapping matches are all of them.
    memchr::memmem::find_iter(line.get(1..)?, HEAD)
        .map(|at| at + 1)
        .find_map(|at| decode(&line[at..]).map(|event| (at, event)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(event: &serde_json::Value) -> Vec<u8> {
        let mut buf = Vec::new();
        encode(&mut buf, event).unwrap();
        buf
    }

    #[test]
    fn a_record_is_a_json_line_with_a_crc_of_the_event() {
        let line = record(&serde_json::json!({"a": 1}));
        let text = std::str::from_utf8(&line).unwrap();
        assert_eq!(
            text,
            format!(
                "{{\"crc32c\":\"{:08x}\",\"event\":{{\"a\":1}}}}\n",
                crc32c::crc32c(b"{\"a\":1}")
            )
        );
        let parsed: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(parsed["event"]["a"], 1);
        assert_eq!(decode(&line[..line.len() - 1]), Some(&b"{\"a\":1}"[..]));
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let line = record(&serde_json::json!({"kind": "query", "ms": 12}));
        let body = &line[..line.len() - 1];
        for i in 0..body.len() * 8 {
            let mut bad = body.to_vec();
            bad[i / 8] ^= 1 << (i % 8);
            assert_eq!(decode(&bad), None, "flip of bit {i} went unnoticed");
        }
    }

    #[test]
    fn every_truncation_is_detected() {
        let line = record(&serde_json::json!(["x", 1, null]));
        for end in 0..line.len() - 1 {
            assert_eq!(decode(&line[..end]), None);
        }
    }

    #[test]
    fn raw_json_with_newlines_still_makes_one_line() {
        let raw =
            serde_json::value::RawValue::from_string("{\n  \"a\": [1,\n 2]\n}".into()).unwrap();
        #[derive(serde::Serialize)]
        struct WithRaw<'a> {
            raw: &'a serde_json::value::RawValue,
        }
        let mut line = Vec::new();
        encode(&mut line, &WithRaw { raw: &raw }).unwrap();
        assert_eq!(memchr::memchr_iter(b'\n', &line).count(), 1);
        assert_eq!(line.last(), Some(&b'\n'));
        let event = decode(&line[..line.len() - 1]).expect("a valid record");
        let value: serde_json::Value = serde_json::from_slice(event).unwrap();
        assert_eq!(value, serde_json::json!({"raw": {"a": [1, 2]}}));
    }

    #[test]
    fn resync_finds_a_whole_record_after_garbage() {
        let good = record(&serde_json::json!({"n": 2}));
        let mut line = b"\0\0\0{\"crc32c\":\"torn".to_vec();
        line.extend_from_slice(&good[..good.len() - 1]);
        let (at, event) = resync(&line).unwrap();
        assert_eq!(at, 18);
        assert_eq!(event, b"{\"n\":2}");
        assert_eq!(resync(b"{\"crc32c\":\"00000000\",\"event\":1}"), None);
    }
}
