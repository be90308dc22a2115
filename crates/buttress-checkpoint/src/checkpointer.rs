//! [`Checkpointer`]: when a stream consumer saves its state.

use std::num::NonZeroU64;
use std::time::{Duration, Instant};

use buttress_core::SharedClock;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Codec, Json};
use crate::error::{LoadError, SaveError, Skipped};
use crate::frame::HEADER_LEN;
use crate::store::{Store, encode_unsealed, load, save_frame};

/// When a [`Checkpointer`] saves: every N events, and/or when an interval
/// has passed since the last save (checked as events arrive: with no events
/// there is nothing new to save). Either way it also saves when asked
/// ([`save`](Checkpointer::save), [`finish`](Checkpointer::finish)).
///
/// ```
/// use std::time::Duration;
/// use buttress_checkpoint::Policy;
///
/// // Every 1000 events, or every minute if that comes first.
/// let policy = Policy::every_events(1000).or_every(Duration::from_secs(60));
/// assert_eq!(policy, Policy::every(Duration::from_secs(60)).or_every_events(1000));
/// ```
///
/// The [`Default`] saves only when asked. Every policy built here is valid
/// (an event count of 0 is taken as 1). Under the `serde` feature it loads
/// from a configuration file as `{"every_events": 1000, "every": "60s"}`,
/// both fields optional, unknown fields and an event count of 0 refused.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use std::time::Duration;
/// use buttress_checkpoint::Policy;
///
/// let policy: Policy = serde_json::from_str(r#"{"every_events": 1000, "every": "1m"}"#).unwrap();
/// assert_eq!(policy, Policy::every_events(1000).or_every(Duration::from_secs(60)));
/// assert!(serde_json::from_str::<Policy>(r#"{"every_events": 0}"#).is_err());
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
#[non_exhaustive]
pub struct Policy {
    every_events: Option<NonZeroU64>,
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    every: Option<Duration>,
}

impl Policy {
    /// Save after every `n` events (at least 1: 0 is taken as 1).
    ///
    /// ```
    /// use buttress_checkpoint::Policy;
    ///
    /// let policy = Policy::every_events(100);
    /// assert_eq!(Policy::every_events(0), Policy::every_events(1));
    /// # let _ = policy;
    /// ```
    pub fn every_events(n: u64) -> Policy {
        Policy::default().or_every_events(n)
    }

    /// Save when `interval` has passed since the last save.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_checkpoint::Policy;
    ///
    /// let policy = Policy::every(Duration::from_secs(30));
    /// # let _ = policy;
    /// ```
    pub fn every(interval: Duration) -> Policy {
        Policy::default().or_every(interval)
    }

    /// Also save when `interval` has passed (replacing an interval set
    /// before).
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_checkpoint::Policy;
    ///
    /// let policy = Policy::every_events(1000).or_every(Duration::from_secs(60));
    /// # let _ = policy;
    /// ```
    pub fn or_every(mut self, interval: Duration) -> Policy {
        self.every = Some(interval);
        self
    }

    /// Also save after every `n` events (at least 1; replacing a count set
    /// before).
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_checkpoint::Policy;
    ///
    /// let policy = Policy::every(Duration::from_secs(60)).or_every_events(1000);
    /// # let _ = policy;
    /// ```
    pub fn or_every_events(mut self, n: u64) -> Policy {
        self.every_events = Some(NonZeroU64::new(n).unwrap_or(NonZeroU64::MIN));
        self
    }
}

/// Saves a stream consumer's state as the [`Policy`] says, through a
/// [`Store`], and gives it back after a restart.
///
/// Each save completes before [`tick`](Checkpointer::tick) returns (the file
/// work runs on tokio's blocking pool, not on the async workers), and the
/// methods take `&mut self`, so two saves never run at once. Hence the
/// bound: after a crash, the consumer redoes at most the events since the
/// last save, fewer than `every_events`.
///
/// ```
/// use buttress_checkpoint::{Checkpointer, FileStore, FileStoreConfig, Policy};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Default)]
/// struct Learner { cursor: u64, seen: u64 }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("ckpt-doc-{}", std::process::id()));
/// let store = FileStore::open(&dir, "learner", FileStoreConfig::default())?;
/// let mut checkpointer = Checkpointer::new(store, Policy::every_events(100));
/// let mut state: Learner = checkpointer.resume().await?.unwrap_or_default();
/// for event in state.cursor..1_000 {
///     state.seen += 1; // process the event
///     state.cursor = event + 1;
///     checkpointer.tick(&state).await?; // saves every 100th time
/// }
/// checkpointer.finish(&state).await?; // and once more on shutdown
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Checkpointer<S, C = Json> {
    store: S,
    codec: C,
    policy: Policy,
    clock: SharedClock,
    /// The sequence of the last save (or of the stored checkpoint).
    seq: Option<u64>,
    since_save: u64,
    last_save: Option<Instant>,
    skipped: Vec<Skipped>,
    /// A save was refused because a newer checkpoint is stored: another
    /// worker owns this state now. Every save is refused until `resume`.
    superseded: Option<u64>,
}

impl<S: Store> Checkpointer<S, Json> {
    /// A checkpointer saving JSON through `store` as `policy` says.
    ///
    /// ```
    /// use buttress_checkpoint::{Checkpointer, FileStore, FileStoreConfig, Policy};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("ckpt-checkpointer-new-doc-{}", std::process::id()));
    /// let store = FileStore::open(&dir, "learner", FileStoreConfig::default())?;
    /// let checkpointer = Checkpointer::new(store, Policy::every_events(100));
    /// # drop(checkpointer);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    pub fn new(store: S, policy: Policy) -> Self {
        Checkpointer::with_codec(store, Json, policy)
    }
}

impl<S: Store, C: Codec> Checkpointer<S, C> {
    /// A checkpointer with another codec.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use buttress_checkpoint::{Binary, Checkpointer, FileStore, FileStoreConfig, Policy};
    /// use buttress_fs::SimFs;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = FileStore::open_with(Arc::new(SimFs::new()), "/ckpt", "weights", FileStoreConfig::default())?;
    /// let mut checkpointer = Checkpointer::with_codec(store, Binary, Policy::every_events(10));
    /// checkpointer.save(&vec![0.5f32; 1024]).await?; // compact postcard bytes
    /// # Ok(()) }
    /// ```
    pub fn with_codec(store: S, codec: C, policy: Policy) -> Self {
        Checkpointer {
            store,
            codec,
            policy,
            clock: buttress_core::default_clock(),
            seq: None,
            since_save: 0,
            last_save: None,
            skipped: Vec::new(),
            superseded: None,
        }
    }

    buttress_core::setters! {
        /// Reads time for [`Policy::every`] from `clock` (default:
        /// [`default_clock`](buttress_core::default_clock)).
        ///
        /// ```
        /// use std::sync::Arc;
        /// use std::time::Duration;
        /// use buttress_checkpoint::{Checkpointer, FileStore, FileStoreConfig, Policy};
        /// use buttress_core::ManualClock;
        /// use buttress_fs::SimFs;
        ///
        /// # #[tokio::main(flavor = "current_thread")]
        /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
        /// let clock = ManualClock::new();
        /// let store = FileStore::open_with(Arc::new(SimFs::new()), "/ckpt", "learner", FileStoreConfig::default())?;
        /// let mut checkpointer = Checkpointer::new(store, Policy::every(Duration::from_secs(60)))
        ///     .clock(Arc::new(clock.clone()));
        /// checkpointer.resume::<u64>().await?;
        /// assert!(!checkpointer.tick(&1u64).await?);
        /// clock.advance(Duration::from_secs(60));
        /// assert!(checkpointer.tick(&2u64).await?); // a minute passed: saved
        /// # Ok(()) }
        /// ```
        clock: SharedClock,
    }

    /// The store.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use buttress_checkpoint::{Checkpointer, FileStore, FileStoreConfig, Policy};
    /// # use buttress_fs::SimFs;
    /// use buttress_checkpoint::Store;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let store = FileStore::open_with(Arc::new(SimFs::new()), "/ckpt", "learner", FileStoreConfig::default())?;
    /// let mut checkpointer = Checkpointer::new(store, Policy::every_events(1));
    /// checkpointer.save(&42u64).await?;
    /// assert_eq!(checkpointer.store().latest_seq().await?, 1);
    /// # Ok(()) }
    /// ```
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The last state saved, or `None` if the store is empty. Damaged newer
    /// generations passed over are in [`skipped`](Checkpointer::skipped).
    /// Call it first: saves go on above what is stored.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use buttress_checkpoint::{Checkpointer, FileStore, FileStoreConfig, Policy};
    /// # use buttress_fs::SimFs;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let store = FileStore::open_with(Arc::new(SimFs::new()), "/ckpt", "learner", FileStoreConfig::default())?;
    /// let mut first = Checkpointer::new(store.clone(), Policy::every_events(1));
    /// assert_eq!(first.resume::<u64>().await?, None); // a fresh start
    /// first.save(&41u64).await?;
    ///
    /// // After a restart.
    /// let mut again = Checkpointer::new(store, Policy::every_events(1));
    /// assert_eq!(again.resume::<u64>().await?, Some(41));
    /// # Ok(()) }
    /// ```
    pub async fn resume<T: DeserializeOwned>(&mut self) -> Result<Option<T>, LoadError> {
        let latest = self.store.latest_seq().await?;
        self.seq = Some(latest);
        self.superseded = None;
        self.last_save = Some(self.clock.now());
        self.since_save = 0;
        match load(&self.store, &self.codec).await? {
            Some(loaded) => {
                self.skipped = loaded.skipped;
                Ok(Some(loaded.state))
            }
            None => Ok(None),
        }
    }

    /// Generations the last [`resume`](Checkpointer::resume) passed over.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use buttress_checkpoint::{Checkpointer, FileStore, FileStoreConfig, Policy};
    /// # use buttress_fs::SimFs;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let store = FileStore::open_with(Arc::new(SimFs::new()), "/ckpt", "learner", FileStoreConfig::default())?;
    /// let mut checkpointer = Checkpointer::new(store, Policy::every_events(1));
    /// checkpointer.resume::<u64>().await?;
    /// for skipped in checkpointer.skipped() {
    ///     eprintln!("passed over {}: {}", skipped.location, skipped.reason);
    /// }
    /// assert!(checkpointer.skipped().is_empty());
    /// # Ok(()) }
    /// ```
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// Counts one processed event, whose effects `state` includes, and
    /// saves if the policy says it is time. Returns whether it saved.
    ///
    /// When a save fails the count is kept, so the next tick tries again;
    /// a consumer that logs the error and goes on loses the redo bound
    /// until a save succeeds.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use buttress_checkpoint::{Checkpointer, FileStore, FileStoreConfig, Policy};
    /// # use buttress_fs::SimFs;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let store = FileStore::open_with(Arc::new(SimFs::new()), "/ckpt", "learner", FileStoreConfig::default())?;
    /// let mut checkpointer = Checkpointer::new(store, Policy::every_events(3));
    /// let mut saved = Vec::new();
    /// for n in 1..=7u64 {
    ///     if checkpointer.tick(&n).await? {
    ///         saved.push(n);
    ///     }
    /// }
    /// assert_eq!(saved, vec![3, 6]);
    /// # Ok(()) }
    /// ```
    pub async fn tick<T: Serialize + DeserializeOwned>(
        &mut self,
        state: &T,
    ) -> Result<bool, SaveError> {
        self.since_save += 1;
        let now = self.clock.now();
        let by_count = self
            .policy
            .every_events
            .is_some_and(|n| self.since_save >= n.get());
        let by_time = self.policy.every.is_some_and(|every| {
            now.saturating_duration_since(*self.last_save.get_or_insert(now)) >= every
        });
        if by_count || by_time {
            self.save(state).await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Saves `state` now; returns its sequence number.
    ///
    /// The state is decoded back before it is stored: a state that would
    /// make a checkpoint that cannot be loaded (a NaN in JSON, say) is
    /// refused with [`SaveError::RoundTrip`] instead of replacing a good
    /// one. After a [`SaveError::Stale`] (another worker saved a newer
    /// state) every save is refused until [`resume`](Checkpointer::resume).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use buttress_checkpoint::{Checkpointer, FileStore, FileStoreConfig, Policy};
    /// # use buttress_fs::SimFs;
    /// use buttress_checkpoint::SaveError;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let store = FileStore::open_with(Arc::new(SimFs::new()), "/ckpt", "learner", FileStoreConfig::default())?;
    /// let mut checkpointer = Checkpointer::new(store, Policy::every_events(1000));
    /// assert_eq!(checkpointer.save(&vec![0.5f64]).await?, 1);
    /// assert_eq!(checkpointer.save(&vec![0.25f64]).await?, 2);
    /// // JSON writes a NaN as null, which would never load back: refused.
    /// assert!(matches!(checkpointer.save(&vec![f64::NAN]).await, Err(SaveError::RoundTrip(_))));
    /// # Ok(()) }
    /// ```
    pub async fn save<T: Serialize + DeserializeOwned>(
        &mut self,
        state: &T,
    ) -> Result<u64, SaveError> {
        if let Some(current) = self.superseded {
            return Err(SaveError::Stale {
                current,
                attempted: self.seq.unwrap_or(0) + 1,
            });
        }
        let unsealed = encode_unsealed(&self.codec, state)?;
        self.codec
            .decode::<T>(&unsealed[HEADER_LEN..])
            .map_err(SaveError::RoundTrip)?;
        let last = match self.seq {
            Some(seq) => seq,
            None => self.store.latest_seq().await?,
        };
        let seq = last.checked_add(1).ok_or(SaveError::SequenceExhausted)?;
        // Whatever happens, never reuse a number that may have reached
        // the store.
        self.seq = Some(seq);
        match save_frame(&self.store, C::ID, seq, unsealed).await {
            Err(SaveError::Stale { current, attempted }) => {
                self.superseded = Some(current);
                return Err(SaveError::Stale { current, attempted });
            }
            other => other?,
        }
        self.since_save = 0;
        self.last_save = Some(self.clock.now());
        Ok(seq)
    }

    /// On graceful shutdown: saves `state` if any event was counted since
    /// the last save.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use buttress_checkpoint::{Checkpointer, FileStore, FileStoreConfig, Policy};
    /// # use buttress_fs::SimFs;
    /// use buttress_checkpoint::Store;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let store = FileStore::open_with(Arc::new(SimFs::new()), "/ckpt", "learner", FileStoreConfig::default())?;
    /// let mut checkpointer = Checkpointer::new(store, Policy::every_events(100));
    /// for n in 1..=42u64 {
    ///     checkpointer.tick(&n).await?; // no save yet
    /// }
    /// checkpointer.finish(&42u64).await?; // the 42 events are saved
    /// assert_eq!(checkpointer.store().latest_seq().await?, 1);
    /// # Ok(()) }
    /// ```
    pub async fn finish<T: Serialize + DeserializeOwned>(
        &mut self,
        state: &T,
    ) -> Result<(), SaveError> {
        if self.since_save > 0 {
            self.save(state).await?;
        }
        Ok(())
    }
}
