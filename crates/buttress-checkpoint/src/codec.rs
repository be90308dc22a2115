//! How a state becomes the payload of a checkpoint.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Turns states into payload bytes and back. The id is stored in every
/// checkpoint, so a checkpoint is never decoded by the wrong codec.
pub trait Codec: Send + Sync + 'static {
    /// Stored in the header; ids below 256 are buttress's own.
    const ID: u16;
    /// Encodes `state`.
    fn encode<T: Serialize + ?Sized>(&self, state: &T) -> Result<Vec<u8>, String>;
    /// Decodes a payload.
    fn decode<T: DeserializeOwned>(&self, payload: &[u8]) -> Result<T, String>;
}

/// JSON through `serde_json`: readable with any tool, tolerant of added
/// optional fields. The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Codec for Json {
    const ID: u16 = 1;
    fn encode<T: Serialize + ?Sized>(&self, state: &T) -> Result<Vec<u8>, String> {
        serde_json::to_vec(state).map_err(|e| e.to_string())
    }
    fn decode<T: DeserializeOwned>(&self, payload: &[u8]) -> Result<T, String> {
        serde_json::from_slice(payload).map_err(|e| e.to_string())
    }
}

/// A compact binary encoding through `postcard`: several times smaller
/// and faster than JSON for numeric state, but not self-describing (a
/// changed struct does not decode, and `serde_json::Value` cannot be used).
#[derive(Debug, Clone, Copy, Default)]
pub struct Binary;

impl Codec for Binary {
    const ID: u16 = 2;
    fn encode<T: Serialize + ?Sized>(&self, state: &T) -> Result<Vec<u8>, String> {
        postcard::to_stdvec(state).map_err(|e| e.to_string())
    }
    fn decode<T: DeserializeOwned>(&self, payload: &[u8]) -> Result<T, String> {
        postcard::from_bytes(payload).map_err(|e| e.to_string())
    }
}
