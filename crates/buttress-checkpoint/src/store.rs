//! [`Store`]: where checkpoints live, and the typed save and load on top.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::Codec;
use crate::error::{LoadError, SaveError, SkipReason, Skipped};
use crate::frame::{self, FrameError};

/// One stored generation, as read.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The sequence number it is stored under.
    pub seq: u64,
    /// Where it is (a path or a table row), for reports.
    pub location: String,
    /// Its bytes, or why they could not be read.
    pub bytes: Result<Vec<u8>, String>,
}

/// Where checkpoints live: files ([`FileStore`](crate::FileStore)) or a
/// database table (`PgStore`, feature `postgres`).
///
/// A store keeps whole checkpoints (header and payload, see the crate
/// docs); [`save`] and [`load`] put typed states through a [`Codec`].
pub trait Store: Send + Sync {
    /// The highest sequence number stored, valid or not (0 when empty):
    /// the next save must be above it.
    fn latest_seq(&self) -> impl Future<Output = Result<u64, LoadError>> + Send;
    /// Stores checkpoint `seq`, durably, before returning `Ok`. On error
    /// every earlier acknowledged checkpoint is intact.
    fn put(&self, seq: u64, bytes: Vec<u8>) -> impl Future<Output = Result<(), SaveError>> + Send;
    /// Every stored generation, newest first.
    fn candidates(&self) -> impl Future<Output = Result<Vec<Candidate>, LoadError>> + Send;
}

/// A loaded state.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<T> {
    /// Its sequence number.
    pub seq: u64,
    /// The state.
    pub state: T,
    /// Newer generations passed over because they were damaged, newest
    /// first. Empty in the normal case.
    pub skipped: Vec<Skipped>,
}

/// Encodes `state` as checkpoint `seq` and stores it.
///
/// This does not check that the state decodes back;
/// [`Checkpointer::save`](crate::Checkpointer::save) does. Without a tokio
/// runtime, use [`FileStore::save_blocking`](crate::FileStore::save_blocking).
pub async fn save<S: Store, C: Codec, T: Serialize + ?Sized>(
    store: &S,
    codec: &C,
    seq: u64,
    state: &T,
) -> Result<(), SaveError> {
    store.put(seq, encode_frame(codec, seq, state)?).await
}

pub(crate) async fn save_payload<S: Store>(
    store: &S,
    codec: u16,
    seq: u64,
    payload: &[u8],
) -> Result<(), SaveError> {
    store.put(seq, frame::encode(seq, codec, payload)).await
}

/// The checkpoint [`save`] stores: `state` encoded and framed as `seq`.
pub(crate) fn encode_frame<C: Codec, T: Serialize + ?Sized>(
    codec: &C,
    seq: u64,
    state: &T,
) -> Result<Vec<u8>, SaveError> {
    let payload = codec.encode(state).map_err(SaveError::Encode)?;
    Ok(frame::encode(seq, C::ID, &payload))
}

/// Checks one generation and decodes its state.
pub fn decode<C: Codec, T: DeserializeOwned>(
    codec: &C,
    seq: u64,
    bytes: &[u8],
) -> Result<T, FrameError> {
    let frame = frame::decode(bytes)?;
    if frame.seq != seq {
        return Err(FrameError::Sequence {
            expected: seq,
            header: frame.seq,
        });
    }
    if frame.codec != C::ID {
        return Err(FrameError::Codec {
            found: frame.codec,
            expected: C::ID,
        });
    }
    codec.decode(frame.payload).map_err(FrameError::Decode)
}

/// The newest generation that is intact and decodes as `T`, with the
/// newer ones it passed over; `None` when the store is empty. Without a
/// tokio runtime, use
/// [`FileStore::load_blocking`](crate::FileStore::load_blocking).
pub async fn load<S: Store, C: Codec, T: DeserializeOwned>(
    store: &S,
    codec: &C,
) -> Result<Option<Loaded<T>>, LoadError> {
    pick(codec, store.candidates().await?)
}

/// What [`load`] returns, from the generations read (newest first).
pub(crate) fn pick<C: Codec, T: DeserializeOwned>(
    codec: &C,
    candidates: Vec<Candidate>,
) -> Result<Option<Loaded<T>>, LoadError> {
    if candidates.is_empty() {
        return Ok(None);
    }
    let mut skipped: Vec<Skipped> = Vec::new();
    for candidate in candidates {
        let result = match &candidate.bytes {
            Ok(bytes) => decode(codec, candidate.seq, bytes).map_err(SkipReason::Corrupt),
            Err(e) => Err(SkipReason::Unreadable(e.clone())),
        };
        match result {
            Ok(state) => {
                for s in &skipped {
                    tracing::warn!(checkpoint = %s.location, reason = %s.reason, "skipped a damaged checkpoint");
                }
                return Ok(Some(Loaded {
                    seq: candidate.seq,
                    state,
                    skipped,
                }));
            }
            Err(reason) => skipped.push(Skipped {
                seq: candidate.seq,
                location: candidate.location,
                reason,
            }),
        }
    }
    Err(LoadError::NoValid { skipped })
}
