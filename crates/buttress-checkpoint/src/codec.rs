//! How a state becomes the payload of a checkpoint.

use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Turns states into payload bytes and back. The id is stored in every
/// checkpoint, so a checkpoint is never decoded by the wrong codec.
///
/// ```
/// use buttress_checkpoint::{Codec, CodecError};
/// use serde::{Serialize, de::DeserializeOwned};
///
/// /// JSON, pretty-printed for people who read checkpoints by hand.
/// struct PrettyJson;
///
/// impl Codec for PrettyJson {
///     const ID: u16 = 1000;
///     fn encode<T: Serialize + ?Sized>(&self, state: &T) -> Result<Vec<u8>, CodecError> {
///         serde_json::to_vec_pretty(state).map_err(|e| CodecError::new("pretty JSON", e))
///     }
///     fn decode<T: DeserializeOwned>(&self, payload: &[u8]) -> Result<T, CodecError> {
///         serde_json::from_slice(payload).map_err(|e| CodecError::new("pretty JSON", e))
///     }
/// }
///
/// let bytes = PrettyJson.encode(&vec![1, 2]).unwrap();
/// assert_eq!(PrettyJson.decode::<Vec<u32>>(&bytes).unwrap(), vec![1, 2]);
/// ```
pub trait Codec: Send + Sync + 'static {
    /// Stored in the header; ids below 256 are buttress's own.
    const ID: u16;
    /// Encodes `state`.
    fn encode<T: Serialize + ?Sized>(&self, state: &T) -> Result<Vec<u8>, CodecError>;
    /// Decodes a payload.
    fn decode<T: DeserializeOwned>(&self, payload: &[u8]) -> Result<T, CodecError>;
    /// Appends the encoding of `state` to `out`, which holds the
    /// checkpoint's header already: a codec that can write in place spares
    /// every save a copy of its payload. The default encodes with
    /// [`encode`](Codec::encode) and copies. On error, what `out` holds
    /// after the header is unspecified (the save discards it).
    ///
    /// ```
    /// use buttress_checkpoint::{Codec, Json};
    ///
    /// let mut out = b"header".to_vec();
    /// Json.encode_into(&[1, 2], &mut out).unwrap();
    /// assert_eq!(out, b"header[1,2]");
    /// ```
    fn encode_into<T: Serialize + ?Sized>(
        &self,
        state: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        out.extend_from_slice(&self.encode(state)?);
        Ok(())
    }
}

/// Why a [`Codec`] could not encode or decode a state.
///
/// It names the codec; the codec's own error (a [`serde_json::Error`], a
/// [`postcard::Error`], or a custom codec's) is its
/// [`source`](Error::source), where it can be downcast.
///
/// ```
/// use std::error::Error;
/// use buttress_checkpoint::{Codec, Json};
///
/// let err = Json.decode::<u32>(b"\"text\"").unwrap_err();
/// assert_eq!(err.to_string(), "the JSON codec failed");
/// assert!(err.source().unwrap().is::<serde_json::Error>());
/// assert!(err.downcast_ref::<serde_json::Error>().unwrap().is_data());
/// ```
///
/// It is cheap to clone (the cause is shared), and two are equal when they
/// name the same codec and their causes read the same.
#[derive(Clone)]
pub struct CodecError {
    codec: Cow<'static, str>,
    source: Arc<dyn Error + Send + Sync>,
}

impl CodecError {
    /// An error of codec `codec` (a name for people: `"JSON"`,
    /// `"postcard"`), caused by `source`.
    ///
    /// ```
    /// use buttress_checkpoint::CodecError;
    ///
    /// let err = CodecError::new("CSV", "a row has 3 fields, the header 4");
    /// assert_eq!(err.codec(), "CSV");
    /// assert_eq!(err.to_string(), "the CSV codec failed");
    /// ```
    pub fn new(
        codec: impl Into<Cow<'static, str>>,
        source: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> Self {
        CodecError {
            codec: codec.into(),
            source: Arc::from(source.into()),
        }
    }

    /// The codec's name.
    ///
    /// ```
    /// use buttress_checkpoint::{Binary, Codec};
    ///
    /// let err = Binary.decode::<String>(&[0xff]).unwrap_err();
    /// assert_eq!(err.codec(), "postcard");
    /// ```
    pub fn codec(&self) -> &str {
        &self.codec
    }

    /// The cause, if it is an `E`.
    ///
    /// ```
    /// use buttress_checkpoint::{Binary, Codec};
    ///
    /// let err = Binary.decode::<String>(&[]).unwrap_err();
    /// assert!(err.downcast_ref::<postcard::Error>().is_some());
    /// ```
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        self.source.downcast_ref::<E>()
    }
}

impl fmt::Debug for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodecError")
            .field("codec", &self.codec)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the {} codec failed", self.codec)
    }
}

// By hand: `source` returns the codec's error itself (not the `Arc`), so
// that it downcasts.
impl Error for CodecError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}

impl PartialEq for CodecError {
    fn eq(&self, other: &Self) -> bool {
        self.codec == other.codec && self.source.to_string() == other.source.to_string()
    }
}

impl Eq for CodecError {}

/// JSON through `serde_json`: readable with any tool, tolerant of added
/// optional fields. The default.
///
/// ```
/// use buttress_checkpoint::{Codec, Json};
///
/// let bytes = Json.encode(&(1, "one")).unwrap();
/// assert_eq!(bytes, br#"[1,"one"]"#);
/// assert_eq!(Json.decode::<(u8, String)>(&bytes).unwrap(), (1, "one".to_owned()));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Codec for Json {
    const ID: u16 = 1;
    fn encode<T: Serialize + ?Sized>(&self, state: &T) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(state).map_err(|e| CodecError::new("JSON", e))
    }
    fn decode<T: DeserializeOwned>(&self, payload: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(payload).map_err(|e| CodecError::new("JSON", e))
    }
    fn encode_into<T: Serialize + ?Sized>(
        &self,
        state: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        serde_json::to_writer(out, state).map_err(|e| CodecError::new("JSON", e))
    }
}

/// A compact binary encoding through `postcard`: several times smaller
/// and faster than JSON for numeric state, but not self-describing (a
/// changed struct does not decode, and `serde_json::Value` cannot be used).
///
/// ```
/// use buttress_checkpoint::{Binary, Codec};
///
/// let bytes = Binary.encode(&vec![1u64, 2, 3]).unwrap();
/// assert_eq!(bytes.len(), 4); // a length and three varints
/// assert_eq!(Binary.decode::<Vec<u64>>(&bytes).unwrap(), vec![1, 2, 3]);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Binary;

impl Codec for Binary {
    const ID: u16 = 2;
    fn encode<T: Serialize + ?Sized>(&self, state: &T) -> Result<Vec<u8>, CodecError> {
        postcard::to_stdvec(state).map_err(|e| CodecError::new("postcard", e))
    }
    fn decode<T: DeserializeOwned>(&self, payload: &[u8]) -> Result<T, CodecError> {
        postcard::from_bytes(payload).map_err(|e| CodecError::new("postcard", e))
    }
}
