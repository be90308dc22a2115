//! The bytes of one checkpoint: a fixed header, then the payload.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "BTRSCKPT"
//!      8     2  format version, little-endian (1)
//!     10     2  codec id, little-endian (1 JSON, 2 postcard)
//!     12     4  reserved, zero
//!     16     8  sequence number, little-endian
//!     24     8  payload length, little-endian
//!     32     4  CRC32C of bytes 0..32 and the payload, little-endian
//!     36     …  payload
//! ```
//!
//! The checksum covers the header too, so a flipped bit in the sequence or
//! the length is caught like one in the payload.

pub(crate) const MAGIC: &[u8; 8] = b"BTRSCKPT";
pub(crate) const VERSION: u16 = 1;
pub(crate) const HEADER_LEN: usize = 36;

/// What is wrong with the bytes of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Shorter than a header: torn or truncated.
    #[error("truncated: {len} bytes, shorter than the {HEADER_LEN}-byte header")]
    TooShort {
        /// The length found.
        len: usize,
    },
    /// Not a checkpoint file (or its first bytes are damaged).
    #[error("not a buttress checkpoint (wrong magic)")]
    BadMagic,
    /// Written by a newer format this version cannot read.
    #[error("format version {version} is newer than this library reads ({VERSION})")]
    NewerVersion {
        /// The version found.
        version: u16,
    },
    /// The payload is not as long as the header says: torn, truncated or
    /// followed by garbage.
    #[error("payload is {actual} bytes, the header says {declared}")]
    Length {
        /// What the header says.
        declared: u64,
        /// What is there.
        actual: u64,
    },
    /// The checksum does not match: damaged bytes.
    #[error("checksum mismatch (stored {stored:08x}, computed {computed:08x})")]
    Checksum {
        /// The stored CRC32C.
        stored: u32,
        /// The CRC32C of the bytes.
        computed: u32,
    },
    /// The file's name and its header disagree on the sequence number.
    #[error("sequence {header} in the header, {expected} in the name")]
    Sequence {
        /// Where it is stored.
        expected: u64,
        /// What the header says.
        header: u64,
    },
    /// Written with another codec than the one reading.
    #[error("written with codec {found}, read with codec {expected}")]
    Codec {
        /// The codec id found.
        found: u16,
        /// The codec id of the reader.
        expected: u16,
    },
    /// The payload is intact but does not decode as the asked type.
    #[error("payload does not decode as the asked type")]
    Decode(#[source] crate::CodecError),
}

/// A checked checkpoint.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    pub(crate) seq: u64,
    pub(crate) codec: u16,
    pub(crate) payload: &'a [u8],
}

fn crc(header: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(header), payload)
}

/// The bytes of checkpoint `seq` with `payload` written by codec `codec`.
#[cfg(test)]
pub(crate) fn encode(seq: u64, codec: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.resize(HEADER_LEN, 0);
    out.extend_from_slice(payload);
    seal(&mut out, seq, codec);
    out
}

/// Room for the header, for [`seal`] to fill once the payload follows it.
pub(crate) fn unsealed() -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 128);
    out.resize(HEADER_LEN, 0);
    out
}

/// Writes the header of `frame`, whose first [`HEADER_LEN`] bytes are
/// reserved for it and whose payload follows: how a payload encoded in
/// place becomes a checkpoint without being copied.
pub(crate) fn seal(frame: &mut [u8], seq: u64, codec: u16) {
    let (header, payload) = frame.split_at_mut(HEADER_LEN);
    header[..8].copy_from_slice(MAGIC);
    header[8..10].copy_from_slice(&VERSION.to_le_bytes());
    header[10..12].copy_from_slice(&codec.to_le_bytes());
    header[12..16].copy_from_slice(&[0; 4]);
    header[16..24].copy_from_slice(&seq.to_le_bytes());
    header[24..32].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    let sum = crc(&header[..32], payload);
    header[32..36].copy_from_slice(&sum.to_le_bytes());
}

fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

fn le64(b: &[u8]) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Checks `bytes` and splits them into header fields and payload.
pub(crate) fn decode(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    if bytes.len() < HEADER_LEN {
        return Err(FrameError::TooShort { len: bytes.len() });
    }
    if &bytes[..8] != MAGIC {
        return Err(FrameError::BadMagic);
    }
    let version = le16(&bytes[8..10]);
    if version > VERSION {
        return Err(FrameError::NewerVersion { version });
    }
    let declared = le64(&bytes[24..32]);
    let payload = &bytes[HEADER_LEN..];
    if declared != payload.len() as u64 {
        return Err(FrameError::Length {
            declared,
            actual: payload.len() as u64,
        });
    }
    let stored = u32::from_le_bytes([bytes[32], bytes[33], bytes[34], bytes[35]]);
    let computed = crc(&bytes[..32], payload);
    if stored != computed {
        return Err(FrameError::Checksum { stored, computed });
    }
    Ok(Frame {
        seq: le64(&bytes[16..24]),
        codec: le16(&bytes[10..12]),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_damage_is_named() {
        let bytes = encode(7, 1, b"{\"n\":1}");
        assert_eq!(
            decode(&bytes),
            Ok(Frame {
                seq: 7,
                codec: 1,
                payload: b"{\"n\":1}"
            })
        );
        for end in 0..bytes.len() {
            assert!(decode(&bytes[..end]).is_err(), "truncated at {end}");
        }
        for bit in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&bad).is_err(), "flip of bit {bit}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(decode(&longer), Err(FrameError::Length { .. })));
        let mut newer = bytes.clone();
        newer[8] = 2;
        assert_eq!(decode(&newer), Err(FrameError::NewerVersion { version: 2 }));
        assert_eq!(decode(&[0; 36]), Err(FrameError::BadMagic));
    }
}
