//! [`Checkpointer`]: when a stream consumer saves its state.

use std::time::{Duration, Instant};

use buttress_core::{SharedClock, TokioClock};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Codec, Json};
use crate::error::{LoadError, SaveError, Skipped};
use crate::store::{Store, load, save_payload};

/// When to save: every `events` events, and/or when `interval` has passed
/// since the last save (checked as events arrive: with no events there is
/// nothing new to save).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    events: Option<u64>,
    interval: Option<Duration>,
}

impl Policy {
    /// Save after every `n` events (at least 1).
    pub fn every_events(n: u64) -> Policy {
        Policy {
            events: Some(n.max(1)),
            interval: None,
        }
    }

    /// Save when `interval` has passed since the last save.
    pub fn every(interval: Duration) -> Policy {
        Policy {
            events: None,
            interval: Some(interval),
        }
    }

    /// Also save when `interval` has passed.
    pub fn or_every(mut self, interval: Duration) -> Policy {
        self.interval = Some(interval);
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
    /// A checkpointer saving JSON.
    pub fn new(store: S, policy: Policy) -> Self {
        Checkpointer::with_codec(store, Json, policy)
    }
}

impl<S: Store, C: Codec> Checkpointer<S, C> {
    /// A checkpointer with another codec.
    pub fn with_codec(store: S, codec: C, policy: Policy) -> Self {
        Checkpointer {
            store,
            codec,
            policy,
            clock: std::sync::Arc::new(TokioClock),
            seq: None,
            since_save: 0,
            last_save: None,
            skipped: Vec::new(),
            superseded: None,
        }
    }

    /// Reads time for [`Policy::every`] from `clock`.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The last state saved, or `None` if the store is empty. Damaged newer
    /// generations passed over are in [`skipped`](Checkpointer::skipped).
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
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// Counts one processed event, whose effects `state` includes, and
    /// saves if the policy says it is time. Returns whether it saved.
    ///
    /// When a save fails the count is kept, so the next tick tries again;
    /// a consumer that logs the error and goes on loses the redo bound
    /// until a save succeeds.
    pub async fn tick<T: Serialize + DeserializeOwned>(
        &mut self,
        state: &T,
    ) -> Result<bool, SaveError> {
        self.since_save += 1;
        let now = self.clock.now();
        let by_count = self.policy.events.is_some_and(|n| self.since_save >= n);
        let by_time = self.policy.interval.is_some_and(|every| {
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
        let payload = self.codec.encode(state).map_err(SaveError::Encode)?;
        self.codec
            .decode::<T>(&payload)
            .map_err(SaveError::RoundTrip)?;
        let last = match self.seq {
            Some(seq) => seq,
            None => self.store.latest_seq().await?,
        };
        let seq = last.checked_add(1).ok_or(SaveError::SequenceExhausted)?;
        // Whatever happens, never reuse a number that may have reached
        // the store.
        self.seq = Some(seq);
        match save_payload(&self.store, C::ID, seq, &payload).await {
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
