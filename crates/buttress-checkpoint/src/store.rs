//! [`Store`]: where checkpoints live, and the typed save and load on top.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::Codec;
use crate::error::{LoadError, ReadError, SaveError, SkipReason, Skipped, chain};
use crate::frame::{self, FrameError};

/// One stored generation, as read.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The sequence number it is stored under.
    pub seq: u64,
    /// Where it is (a path or a table row), for reports.
    pub location: String,
    /// Its bytes, or why they could not be read.
    pub bytes: Result<Vec<u8>, ReadError>,
}

/// Where checkpoints live: files ([`FileStore`](crate::FileStore)) or a
/// database table (`PgStore`, feature `postgres`).
///
/// A store keeps whole checkpoints (header and payload, see the crate
/// docs); [`save`] and [`load`] put typed states through a [`Codec`].
pub trait Store: Send + Sync {
    /// The highest sequence number stored, valid or not (0 when empty):
    /// the next save must be above it.
    ///
    /// ```
    /// use buttress_checkpoint::{FileStore, FileStoreConfig, Json, Store, save};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("ckpt-latest-seq-doc-{}", std::process::id()));
    /// let store = FileStore::open(&dir, "model", FileStoreConfig::default())?;
    /// assert_eq!(store.latest_seq().await?, 0);
    /// save(&store, &Json, 7, &"state").await?;
    /// assert_eq!(store.latest_seq().await?, 7);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    fn latest_seq(&self) -> impl Future<Output = Result<u64, LoadError>> + Send;
    /// Stores checkpoint `seq` (its whole bytes, header included),
    /// durably, before returning `Ok`. On error every earlier acknowledged
    /// checkpoint is intact. [`save`] is the typed way in.
    ///
    /// ```
    /// use buttress_checkpoint::{FileStore, FileStoreConfig, Store};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("ckpt-put-doc-{}", std::process::id()));
    /// # let src = FileStore::open(dir.join("src"), "model", FileStoreConfig::default())?;
    /// # buttress_checkpoint::save(&src, &buttress_checkpoint::Json, 1, &"state").await?;
    /// // Copy the newest checkpoint from one store to another, bytes as they are.
    /// let backup = FileStore::open(dir.join("backup"), "model", FileStoreConfig::default())?;
    /// let newest = src.candidates().await?.remove(0);
    /// backup.put(newest.seq, newest.bytes?).await?;
    /// assert_eq!(backup.latest_seq().await?, 1);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    fn put(&self, seq: u64, bytes: Vec<u8>) -> impl Future<Output = Result<(), SaveError>> + Send;
    /// Every stored generation, newest first, with its bytes unchecked
    /// (or why they could not be read). [`load`] is the typed way out.
    ///
    /// ```
    /// use buttress_checkpoint::{FileStore, FileStoreConfig, Json, Store, save};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("ckpt-candidates-doc-{}", std::process::id()));
    /// let store = FileStore::open(&dir, "model", FileStoreConfig::default().keep(2))?;
    /// for seq in 1..=3 {
    ///     save(&store, &Json, seq, &seq).await?;
    /// }
    /// let seqs: Vec<u64> = store.candidates().await?.iter().map(|c| c.seq).collect();
    /// assert_eq!(seqs, vec![3, 2]); // keep(2)
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
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
///
/// ```
/// use std::sync::Arc;
/// use buttress_checkpoint::{FileStore, FileStoreConfig, Json, SaveError, save};
/// use buttress_fs::SimFs;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = FileStore::open_with(Arc::new(SimFs::new()), "/ckpt", "model", FileStoreConfig::default())?;
/// save(&store, &Json, 1, &vec![0.5f64]).await?; // durable when it returns
/// assert!(matches!(save(&store, &Json, 1, &vec![0.25f64]).await, Err(SaveError::Stale { .. })));
/// # Ok(()) }
/// ```
pub async fn save<S: Store, C: Codec, T: Serialize + ?Sized>(
    store: &S,
    codec: &C,
    seq: u64,
    state: &T,
) -> Result<(), SaveError> {
    store.put(seq, encode_frame(codec, seq, state)?).await
}

pub(crate) async fn save_frame<S: Store>(
    store: &S,
    codec: u16,
    seq: u64,
    mut unsealed: Vec<u8>,
) -> Result<(), SaveError> {
    frame::seal(&mut unsealed, seq, codec);
    store.put(seq, unsealed).await
}

/// `state` encoded after room for the header (see [`frame::seal`]), so
/// that the payload is written in place and never copied.
pub(crate) fn encode_unsealed<C: Codec, T: Serialize + ?Sized>(
    codec: &C,
    state: &T,
) -> Result<Vec<u8>, SaveError> {
    let mut unsealed = frame::unsealed();
    codec
        .encode_into(state, &mut unsealed)
        .map_err(SaveError::Encode)?;
    Ok(unsealed)
}

/// The checkpoint [`save`] stores: `state` encoded and framed as `seq`.
pub(crate) fn encode_frame<C: Codec, T: Serialize + ?Sized>(
    codec: &C,
    seq: u64,
    state: &T,
) -> Result<Vec<u8>, SaveError> {
    let mut frame = encode_unsealed(codec, state)?;
    frame::seal(&mut frame, seq, C::ID);
    Ok(frame)
}

/// Checks one generation and decodes its state.
///
/// ```
/// use std::sync::Arc;
/// use buttress_checkpoint::{FileStore, FileStoreConfig, FrameError, Json, decode};
/// use buttress_fs::{Fs, SimFs};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let fs = SimFs::new();
/// let store = FileStore::open_with(Arc::new(fs.clone()), "/ckpt", "model", FileStoreConfig::default())?;
/// store.save_blocking(&Json, 1, &42u64)?;
/// let mut bytes = fs.read(&store.path(1))?;
/// assert_eq!(decode::<_, u64>(&Json, 1, &bytes)?, 42);
/// bytes.truncate(bytes.len() - 1); // torn
/// assert!(matches!(decode::<_, u64>(&Json, 1, &bytes), Err(FrameError::Length { .. })));
/// # Ok(()) }
/// ```
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
///
/// ```
/// use std::sync::Arc;
/// use buttress_checkpoint::{FileStore, FileStoreConfig, Json, load, save};
/// use buttress_fs::SimFs;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = FileStore::open_with(Arc::new(SimFs::new()), "/ckpt", "model", FileStoreConfig::default())?;
/// assert!(load::<_, _, u64>(&store, &Json).await?.is_none()); // empty store
/// save(&store, &Json, 1, &42u64).await?;
/// let loaded = load::<_, _, u64>(&store, &Json).await?.expect("saved");
/// assert_eq!((loaded.seq, loaded.state), (1, 42));
/// # Ok(()) }
/// ```
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
                    tracing::warn!(checkpoint = %s.location, reason = %chain(&s.reason), "skipped a damaged checkpoint");
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
