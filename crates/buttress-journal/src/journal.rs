//! [`Journal`]: the handle producers append through, and the writer thread
//! behind it.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use buttress_core::SharedClock;
use buttress_fs::{Fs, RealFs};
use serde::Serialize;

use crate::config::{Durability, JournalConfig, Overflow};
use crate::error::{AppendError, OpenError};
use crate::layout::Layout;
use crate::maintenance;
use crate::metrics::Metrics;
use crate::queue::{Channel, Estimate, Item, PushError, RecordSink};
use crate::record;
use crate::writer::Writer;

/// A journal open for appending. Cheap to clone: clones share one queue
/// and one writer thread.
///
/// Appends are serialized on the caller's thread, queued (bounded by
/// [`queue_bytes`](JournalConfig::queue_bytes)) and written by one writer
/// thread per journal, which holds the file's `flock` for each batch, so
/// any number of threads and processes can append to one journal.
///
/// Dropping the last clone closes the journal: what is queued is written
/// and synced, and the threads are joined. [`close`](Journal::close) does
/// the same and reports a failure.
#[derive(Debug, Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    name: String,
    layout: Layout,
    config: JournalConfig,
    channel: Channel,
    metrics: Metrics,
    /// The file side. The writer thread holds it for each batch; in
    /// sync-each mode a blocking append that finds nothing queued or in
    /// flight holds it to write its own record (see `append_blocking`).
    writer: Mutex<Writer>,
    clock: SharedClock,
    /// Wakes the maintenance thread after a rotation.
    maint: Mutex<Option<mpsc::Sender<()>>>,
}

/// What [`Journal::try_append`] and [`Journal::append_queued`] return: a
/// queued record, to be confirmed when the journal's durability says.
#[derive(Debug)]
#[must_use = "a receipt does nothing unless waited on"]
pub struct Receipt {
    shared: Arc<Shared>,
    seq: u64,
}

impl Receipt {
    /// The record's number in this journal's queue order.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use buttress_core::ManualClock;
    /// # use buttress_fs::SimFs;
    /// # use buttress_journal::{Journal, JournalConfig};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let journal = Journal::open_with(Arc::new(SimFs::new()), Arc::new(ManualClock::new()), "/j", "events", JournalConfig::default())?;
    /// let first = journal.try_append(&"a")?;
    /// let second = journal.try_append(&"b")?;
    /// assert_eq!(second.seq(), first.seq() + 1);
    /// # Ok(()) }
    /// ```
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Resolves when the record is acknowledged: at once when buffered,
    /// after its `fdatasync` otherwise.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use buttress_core::ManualClock;
    /// # use buttress_fs::SimFs;
    /// # use buttress_journal::{Journal, JournalConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let journal = Journal::open_with(Arc::new(SimFs::new()), Arc::new(ManualClock::new()), "/j", "events", JournalConfig::default())?;
    /// let receipt = journal.append_queued(&"hello").await?;
    /// // ...other work while the writer syncs...
    /// receipt.confirmed().await?; // durable now
    /// # Ok(()) }
    /// ```
    pub async fn confirmed(self) -> Result<(), AppendError> {
        match self.shared.config.durability {
            Durability::Buffered => Ok(()),
            _ => self.shared.channel.wait_async(true, self.seq).await,
        }
    }

    /// [`confirmed`](Receipt::confirmed), blocking the thread.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use buttress_core::ManualClock;
    /// # use buttress_fs::SimFs;
    /// # use buttress_journal::{Journal, JournalConfig};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let journal = Journal::open_with(Arc::new(SimFs::new()), Arc::new(ManualClock::new()), "/j", "events", JournalConfig::default())?;
    /// let receipt = journal.try_append(&"hello")?;
    /// receipt.wait_confirmed()?; // durable now
    /// # Ok(()) }
    /// ```
    pub fn wait_confirmed(self) -> Result<(), AppendError> {
        match self.shared.config.durability {
            Durability::Buffered => Ok(()),
            _ => self.shared.channel.wait_blocking(true, self.seq),
        }
    }
}

impl Journal {
    /// Opens (creating if needed) journal `name` in directory `dir` on the
    /// real file system.
    ///
    /// The config is validated first ([`OpenError::Config`]); the name must
    /// be letters, digits, `-` and `_` ([`OpenError::Name`]).
    ///
    /// ```
    /// use buttress_journal::{Journal, JournalConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = std::env::temp_dir().join(format!("journal-open-doc-{}", std::process::id()));
    /// let journal = Journal::open(&dir, "events", JournalConfig::default())?;
    /// journal.append(&serde_json::json!({"kind": "query", "ms": 12})).await?;
    /// assert!(dir.join("events.0000000001.jsonl").exists());
    /// # journal.close()?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    pub fn open(
        dir: impl AsRef<Path>,
        name: &str,
        config: JournalConfig,
    ) -> Result<Journal, OpenError> {
        Journal::open_with(
            Arc::new(RealFs::new()),
            buttress_core::default_clock(),
            dir,
            name,
            config,
        )
    }

    /// Opens a journal on any [`Fs`] (for example a simulated one), reading
    /// time for age-based rotation from `clock`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use buttress_core::ManualClock;
    /// use buttress_fs::{Crash, SimFs};
    /// use buttress_journal::{Journal, JournalConfig, JournalReader};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let fs = SimFs::new();
    /// let clock = ManualClock::new();
    /// let journal = Journal::open_with(
    ///     Arc::new(fs.clone()),
    ///     Arc::new(clock),
    ///     "/telemetry",
    ///     "events",
    ///     JournalConfig::default(),
    /// )?;
    /// journal.append_blocking(&1u32)?; // group commit: synced when it returns
    ///
    /// // Power loss: what was acknowledged is still there.
    /// let after = fs.crash(Crash::POWER_LOSS);
    /// let mut reader = JournalReader::with_fs(Arc::new(after), "/telemetry", "events");
    /// assert_eq!(reader.next_record::<u32>()?.map(|r| r.event), Some(1));
    /// # Ok(()) }
    /// ```
    pub fn open_with(
        fs: Arc<dyn Fs>,
        clock: SharedClock,
        dir: impl AsRef<Path>,
        name: &str,
        config: JournalConfig,
    ) -> Result<Journal, OpenError> {
        config.validate()?;
        if !buttress_fs::is_plain_name(name) {
            return Err(OpenError::Name(name.to_owned()));
        }
        let dir: PathBuf = dir.as_ref().to_owned();
        let layout = Layout::new(&dir, name);
        let writer =
            Writer::open(fs.clone(), layout.clone(), &config, clock.now()).map_err(|source| {
                OpenError::Io {
                    path: dir.clone(),
                    source,
                }
            })?;
        let (maint_tx, maint_rx) = mpsc::channel::<()>();
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            layout,
            channel: Channel::new(config.queue_bytes, config.max_record_bytes),
            metrics: Metrics::new(name),
            config,
            writer: Mutex::new(writer),
            clock,
            maint: Mutex::new(Some(maint_tx)),
        });
        let mut threads = Vec::new();
        let s = shared.clone();
        let maint_fs = fs.clone();
        threads.push(
            std::thread::Builder::new()
                .name(format!("journal-{name}-maint"))
                .spawn(move || maintenance_loop(&s, &*maint_fs, &maint_rx))
                .map_err(OpenError::Thread)?,
        );
        let s = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("journal-{name}"))
            .spawn(move || writer_loop(&s));
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => {
                // Ends the maintenance thread.
                shared
                    .maint
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                return Err(OpenError::Thread(e));
            }
        }
        Ok(Journal {
            inner: Arc::new(Inner {
                shared,
                threads: Mutex::new(threads),
            }),
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// The journal's name.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use buttress_core::ManualClock;
    /// # use buttress_fs::SimFs;
    /// # use buttress_journal::{Journal, JournalConfig};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let journal = Journal::open_with(Arc::new(SimFs::new()), Arc::new(ManualClock::new()), "/j", "events", JournalConfig::default())?;
    /// assert_eq!(journal.name(), "events");
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        &self.shared().name
    }

    /// The journal's directory.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use buttress_core::ManualClock;
    /// # use buttress_fs::SimFs;
    /// # use buttress_journal::{Journal, JournalConfig};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let journal = Journal::open_with(Arc::new(SimFs::new()), Arc::new(ManualClock::new()), "/j", "events", JournalConfig::default())?;
    /// assert_eq!(journal.dir(), std::path::Path::new("/j"));
    /// # Ok(()) }
    /// ```
    pub fn dir(&self) -> &Path {
        &self.shared().layout.dir
    }

    /// Serializes `event` as a record (in the calling thread's scratch
    /// buffer: the queue copies it, so appending allocates nothing per
    /// record) and hands it to `then`.
    fn with_record<T: Serialize + ?Sized, R>(
        &self,
        event: &T,
        mut then: impl FnMut(&[u8]) -> Result<R, AppendError>,
    ) -> Result<R, AppendError> {
        let max = self.shared().config.max_record_bytes;
        with_scratch(|buf| {
            record::encode(buf, event).map_err(|e| AppendError::Serialize(Arc::new(e)))?;
            if buf.len() > max {
                return Err(AppendError::TooLarge {
                    bytes: buf.len(),
                    max,
                });
            }
            then(buf)
        })
    }

    fn receipt(&self, seq: u64) -> Receipt {
        Receipt {
            shared: self.shared().clone(),
            seq,
        }
    }

    fn dropped(&self, queued_bytes: usize) -> AppendError {
        self.shared().metrics.dropped.increment(1);
        AppendError::QueueFull { queued_bytes }
    }

    /// Queues `event` without ever waiting for space: when the queue is
    /// full the event is dropped and counted, whatever the overflow policy.
    ///
    /// ```
    /// use buttress_journal::{AppendError, Journal, JournalConfig};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("journal-try-append-doc-{}", std::process::id()));
    /// let journal = Journal::open(&dir, "events", JournalConfig::default())?;
    /// match journal.try_append(&serde_json::json!({"kind": "click"})) {
    ///     Ok(receipt) => receipt.wait_confirmed()?,
    ///     Err(AppendError::QueueFull { .. }) => { /* dropped and counted */ }
    ///     Err(e) => return Err(e.into()),
    /// }
    /// # journal.close()?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    pub fn try_append<T: Serialize + ?Sized>(&self, event: &T) -> Result<Receipt, AppendError> {
        let seq = self.with_record(event, |record| self.try_push(record))?;
        Ok(self.receipt(seq))
    }

    /// Queues `record` or drops it (counted) when the queue is full.
    fn try_push(&self, record: &[u8]) -> Result<u64, AppendError> {
        match self.shared().channel.try_push(record) {
            Ok(seq) => Ok(seq),
            Err(PushError::Full((), queued)) => Err(self.dropped(queued)),
            Err(PushError::Refused(e)) => Err(e),
        }
    }

    /// Queues `event` as the overflow policy says (waiting for space, or
    /// dropping), and returns its receipt without waiting for it to be
    /// confirmed: for producers that keep many appends in flight.
    ///
    /// ```
    /// use buttress_journal::{Journal, JournalConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("journal-append-queued-doc-{}", std::process::id()));
    /// let journal = Journal::open(&dir, "events", JournalConfig::default())?;
    /// let mut receipts = Vec::new();
    /// for n in 0..100u32 {
    ///     receipts.push(journal.append_queued(&n).await?); // does not wait for the sync
    /// }
    /// for receipt in receipts {
    ///     receipt.confirmed().await?; // the 100 records share a few syncs
    /// }
    /// # journal.close()?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    pub async fn append_queued<T: Serialize + ?Sized>(
        &self,
        event: &T,
    ) -> Result<Receipt, AppendError> {
        match self.shared().config.overflow {
            Overflow::Drop => self.try_append(event),
            Overflow::Wait => {
                let channel = &self.shared().channel;
                // Queued from the scratch buffer when there is room; when
                // there is none, copied out of it (it belongs to the
                // thread, and the task may move) to wait for room.
                let queued = self.with_record(event, |record| match channel.try_push(record) {
                    Ok(seq) => Ok(Ok(seq)),
                    Err(PushError::Full((), _)) => Ok(Err(record.to_vec())),
                    Err(PushError::Refused(e)) => Err(e),
                })?;
                let seq = match queued {
                    Ok(seq) => seq,
                    Err(record) => channel.push_async(&record).await?,
                };
                Ok(self.receipt(seq))
            }
        }
    }

    /// Appends `event` and resolves when it is acknowledged: once queued
    /// when buffered, once synced otherwise. When the queue is full it
    /// waits for space or drops the event, as the overflow policy says.
    ///
    /// ```
    /// use buttress_journal::{Journal, JournalConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("journal-append-doc-{}", std::process::id()));
    /// let journal = Journal::open(&dir, "events", JournalConfig::default())?;
    /// journal.append(&serde_json::json!({"kind": "query", "ms": 12})).await?; // durable now
    /// # journal.close()?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    pub async fn append<T: Serialize + ?Sized>(&self, event: &T) -> Result<(), AppendError> {
        self.append_queued(event).await?.confirmed().await
    }

    /// [`append_queued`](Journal::append_queued), blocking the thread.
    ///
    /// ```
    /// use buttress_journal::{Journal, JournalConfig};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("journal-append-queued-blocking-doc-{}", std::process::id()));
    /// let journal = Journal::open(&dir, "events", JournalConfig::default())?;
    /// let receipts: Vec<_> = (0..10u32)
    ///     .map(|n| journal.append_queued_blocking(&n))
    ///     .collect::<Result<_, _>>()?;
    /// for receipt in receipts {
    ///     receipt.wait_confirmed()?;
    /// }
    /// # journal.close()?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    pub fn append_queued_blocking<T: Serialize + ?Sized>(
        &self,
        event: &T,
    ) -> Result<Receipt, AppendError> {
        match self.shared().config.overflow {
            Overflow::Drop => self.try_append(event),
            Overflow::Wait => {
                let channel = &self.shared().channel;
                let seq = self.with_record(event, |record| channel.push_blocking(record))?;
                Ok(self.receipt(seq))
            }
        }
    }

    /// [`append`](Journal::append), blocking the thread.
    ///
    /// In sync-each mode, when nothing is queued or being written, the
    /// calling thread writes and syncs its record itself instead of handing
    /// it to the writer thread and waiting to be woken: the same protocol,
    /// two thread switches fewer.
    ///
    /// ```
    /// use buttress_journal::{Durability, Journal, JournalConfig};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("journal-append-blocking-doc-{}", std::process::id()));
    /// let config = JournalConfig::default().durability(Durability::SyncEach);
    /// let journal = Journal::open(&dir, "events", config)?;
    /// journal.append_blocking(&serde_json::json!({"kind": "order", "id": 7}))?; // durable now
    /// # journal.close()?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    pub fn append_blocking<T: Serialize + ?Sized>(&self, event: &T) -> Result<(), AppendError> {
        if self.shared().config.durability == Durability::SyncEach {
            return self.with_record(event, |record| self.append_sync_each(record));
        }
        self.append_queued_blocking(event)?.wait_confirmed()
    }

    /// `append_blocking` of `record` in sync-each mode.
    fn append_sync_each(&self, record: &[u8]) -> Result<(), AppendError> {
        let shared = self.shared();
        let channel = &shared.channel;
        let mut q = channel.lock();
        if let Some(refused) = channel.refusal(&q) {
            return Err(refused);
        }
        // Nothing queued or in flight means the writer thread is not in
        // `commit`; taking the writer under the queue lock keeps it out
        // until this record is published, so order holds.
        let writer = if q.items.is_empty() && q.in_flight == 0 {
            match shared.writer.try_lock() {
                Ok(w) => Some(w),
                Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        } else {
            None
        };
        if let Some(mut writer) = writer {
            let seq = q.head;
            q.head += 1;
            q.in_flight += 1;
            drop(q);
            let flight = Flight {
                shared,
                seq,
                done: false,
            };
            commit(shared, &mut writer, record, 1, seq + 1, true);
            flight.land();
            drop(writer);
            return channel.wait_blocking(true, seq);
        }
        drop(q);
        let seq = match shared.config.overflow {
            Overflow::Wait => channel.push_blocking(record)?,
            Overflow::Drop => self.try_push(record)?,
        };
        self.receipt(seq).wait_confirmed()
    }

    fn mark(&self, sync: bool) -> u64 {
        let channel = &self.shared().channel;
        let mut q = channel.lock();
        let seq = q.next_seq();
        if sync && q.sync_wanted < seq {
            q.sync_wanted = seq;
        }
        q.writer_idle = false;
        channel.wake_writer.notify_one();
        seq
    }

    /// Resolves when every record queued before the call has been written
    /// to the file (not necessarily synced).
    ///
    /// ```
    /// use buttress_journal::{Durability, Journal, JournalConfig, JournalReader};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("journal-flush-doc-{}", std::process::id()));
    /// let config = JournalConfig::default().durability(Durability::Buffered);
    /// let journal = Journal::open(&dir, "events", config)?;
    /// journal.append(&1u32).await?; // queued
    /// journal.flush().await?;       // in the file, readable by others
    /// let mut reader = JournalReader::open(&dir, "events")?;
    /// assert_eq!(reader.next_record::<u32>()?.map(|r| r.event), Some(1));
    /// # journal.close()?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    pub async fn flush(&self) -> Result<(), AppendError> {
        match self.mark(false) {
            0 => Ok(()),
            seq => self.shared().channel.wait_async(false, seq - 1).await,
        }
    }

    /// Resolves when every record queued before the call is durable,
    /// forcing an `fdatasync` in buffered mode.
    ///
    /// ```
    /// use buttress_journal::{Durability, Journal, JournalConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("journal-sync-doc-{}", std::process::id()));
    /// let config = JournalConfig::default().durability(Durability::Buffered);
    /// let journal = Journal::open(&dir, "events", config)?;
    /// for n in 0..1000u32 {
    ///     journal.append(&n).await?; // fast: no fsync
    /// }
    /// journal.sync().await?; // all 1000 durable now
    /// # journal.close()?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    pub async fn sync(&self) -> Result<(), AppendError> {
        match self.mark(true) {
            0 => Ok(()),
            seq => self.shared().channel.wait_async(true, seq - 1).await,
        }
    }

    /// [`flush`](Journal::flush), blocking the thread.
    ///
    /// ```
    /// use buttress_journal::{Durability, Journal, JournalConfig, JournalReader};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("journal-flush-blocking-doc-{}", std::process::id()));
    /// let config = JournalConfig::default().durability(Durability::Buffered);
    /// let journal = Journal::open(&dir, "events", config)?;
    /// journal.append_blocking(&1u32)?;
    /// journal.flush_blocking()?;
    /// let mut reader = JournalReader::open(&dir, "events")?;
    /// assert_eq!(reader.next_record::<u32>()?.map(|r| r.event), Some(1));
    /// # journal.close()?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    pub fn flush_blocking(&self) -> Result<(), AppendError> {
        match self.mark(false) {
            0 => Ok(()),
            seq => self.shared().channel.wait_blocking(false, seq - 1),
        }
    }

    /// [`sync`](Journal::sync), blocking the thread.
    ///
    /// ```
    /// use buttress_journal::{Durability, Journal, JournalConfig};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("journal-sync-blocking-doc-{}", std::process::id()));
    /// let config = JournalConfig::default().durability(Durability::Buffered);
    /// let journal = Journal::open(&dir, "events", config)?;
    /// for n in 0..1000u32 {
    ///     journal.append_blocking(&n)?;
    /// }
    /// journal.sync_blocking()?; // all 1000 durable now
    /// # journal.close()?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    pub fn sync_blocking(&self) -> Result<(), AppendError> {
        match self.mark(true) {
            0 => Ok(()),
            seq => self.shared().channel.wait_blocking(true, seq - 1),
        }
    }

    /// Bytes queued or being written now (an event the tower layer queued
    /// unserialized counts as the size its layer's records last had).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use buttress_core::ManualClock;
    /// # use buttress_fs::SimFs;
    /// # use buttress_journal::{Journal, JournalConfig};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let journal = Journal::open_with(Arc::new(SimFs::new()), Arc::new(ManualClock::new()), "/j", "events", JournalConfig::default())?;
    /// journal.try_append(&"hello")?;
    /// assert!(journal.queued_bytes() <= 64 << 10); // this record at most
    /// journal.close()?;
    /// assert_eq!(journal.queued_bytes(), 0); // written, synced, released
    /// # Ok(()) }
    /// ```
    pub fn queued_bytes(&self) -> usize {
        self.shared().channel.lock().bytes
    }

    /// Whether a write or sync has failed (every later append fails).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use buttress_core::ManualClock;
    /// use buttress_fs::{Fault, FaultKind, OpKind, SimFs};
    /// use buttress_journal::{AppendError, Journal, JournalConfig};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let fs = SimFs::new();
    /// let journal = Journal::open_with(Arc::new(fs.clone()), Arc::new(ManualClock::new()), "/j", "events", JournalConfig::default())?;
    /// assert!(!journal.is_failed());
    /// fs.inject(Fault { op: OpKind::Sync, skip: 0, kind: FaultKind::Io }); // the disk fails
    /// assert!(matches!(journal.append_blocking(&1u32), Err(AppendError::Failed(_))));
    /// assert!(journal.is_failed());
    /// # Ok(()) }
    /// ```
    pub fn is_failed(&self) -> bool {
        self.shared().channel.is_failed()
    }

    /// Stops accepting appends, writes and syncs what is queued, and joins
    /// the threads (blocking). Other clones see [`AppendError::Closed`].
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use buttress_core::ManualClock;
    /// # use buttress_fs::SimFs;
    /// use buttress_journal::{AppendError, Journal, JournalConfig};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let journal = Journal::open_with(Arc::new(SimFs::new()), Arc::new(ManualClock::new()), "/j", "events", JournalConfig::default())?;
    /// let clone = journal.clone();
    /// journal.try_append(&"last words")?;
    /// journal.close()?; // written and synced
    /// assert!(matches!(clone.append_blocking(&"too late"), Err(AppendError::Closed)));
    /// # Ok(()) }
    /// ```
    pub fn close(&self) -> Result<(), AppendError> {
        let result = self.sync_blocking();
        self.inner.shutdown();
        result
    }
}

impl Inner {
    fn shutdown(&self) {
        let channel = &self.shared.channel;
        {
            let mut q = channel.lock();
            q.closed = true;
            q.sync_wanted = q.sync_wanted.max(q.next_seq());
            channel.wake_writer.notify_one();
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn writer_loop(shared: &Shared) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| write_batches(shared)));
    if outcome.is_err() {
        shared.channel.fail(
            0,
            std::io::Error::other("the journal's writer thread panicked"),
        );
    }
    // Lets the maintenance thread finish its last run and end.
    shared
        .maint
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
}

fn write_batches(shared: &Shared) {
    let channel = &shared.channel;
    let config = &shared.config;
    let durable_mode = config.durability != Durability::Buffered;
    let sync_each = config.durability == Durability::SyncEach;
    let mut batch: Vec<u8> = Vec::with_capacity(config.batch_bytes.min(1 << 20));
    let mut taken: Vec<Item> = Vec::new();
    let mut marks: Vec<(usize, u64)> = Vec::new();
    wake_maintenance(shared);
    loop {
        let (first, records, charged, sync_wanted) = {
            let mut q = channel.lock();
            loop {
                let durable = channel.durable.load(Ordering::Acquire);
                if !q.items.is_empty() || (q.sync_wanted > durable && !channel.is_failed()) {
                    break;
                }
                if q.closed {
                    return;
                }
                q.writer_idle = true;
                q = channel
                    .wake_writer
                    .wait(q)
                    .unwrap_or_else(|e| e.into_inner());
            }
            let first = q.head;
            let (records, charged) = q.take(&mut taken, config.batch_bytes, sync_each);
            q.in_flight += 1;
            shared.metrics.queue_bytes.set(q.bytes as f64);
            (first, records, charged, q.sync_wanted)
        };
        // Serialize outside the queue's lock: producers go on queueing.
        batch.clear();
        marks.clear();
        let mut sink = RecordSink {
            buf: &mut batch,
            marks: &mut marks,
            seq: first,
            max_record_bytes: config.max_record_bytes,
            journal: &shared.name,
        };
        for item in taken.drain(..) {
            match item {
                Item::Records { bytes, start, .. } => sink.encoded(&bytes[start..]),
                Item::Events(events) => events.encode(&mut sink),
            }
        }
        {
            let mut writer = shared.writer.lock().unwrap_or_else(|e| e.into_inner());
            let sync = durable_mode || sync_wanted > channel.durable.load(Ordering::Acquire);
            let limit = if sync_each { 1 } else { config.batch_bytes };
            commit_chunks(
                shared,
                &mut writer,
                &batch,
                &marks,
                first + records,
                limit,
                sync,
            );
        }
        channel.end_flight();
        channel.release(charged);
        if batch.capacity() > 4 * config.batch_bytes.max(1 << 16) {
            // A burst of events larger than estimated; do not keep it.
            batch = Vec::with_capacity(config.batch_bytes.min(1 << 20));
        }
    }
}

/// Commits the records in `batch` (ending where `marks` say) in chunks of
/// at most `limit` bytes (a record larger than that alone; `limit` 1 is one
/// record per chunk), then publishes everything up to `end` (records
/// skipped while serializing included).
fn commit_chunks(
    shared: &Shared,
    writer: &mut Writer,
    batch: &[u8],
    marks: &[(usize, u64)],
    end: u64,
    limit: usize,
    sync: bool,
) {
    let (mut from, mut i) = (0usize, 0usize);
    while i < marks.len() {
        let mut j = i + 1;
        while j < marks.len() && marks[j].0 - from <= limit {
            j += 1;
        }
        let upto = if j == marks.len() {
            end
        } else {
            marks[j - 1].1
        };
        let to = marks[j - 1].0;
        commit(shared, writer, &batch[from..to], (j - i) as u64, upto, sync);
        from = to;
        i = j;
    }
    if marks.is_empty() {
        commit(shared, writer, &[], 0, end, sync);
    }
}

/// Writes `count` records (the bytes of `batch`), syncs if asked, and
/// publishes every record below `end` as written (and durable). Called
/// with the writer held, in record order.
fn commit(shared: &Shared, writer: &mut Writer, batch: &[u8], count: u64, end: u64, sync: bool) {
    let channel = &shared.channel;
    let m = &shared.metrics;
    if channel.is_failed() {
        // Refuse it: nothing is acknowledged after a failure.
        channel.publish(end, None);
        return;
    }
    if count > 0 {
        match writer.write(batch, shared.clock.now()) {
            Ok(report) => {
                m.appended.increment(count);
                m.bytes.increment(batch.len() as u64);
                m.batch_records.record(count as f64);
                if report.sealed {
                    m.sealed.increment(1);
                    tracing::warn!(journal = %shared.name, "sealed a torn record left by a writer that died");
                }
                if report.rotated {
                    m.rotations.increment(1);
                    tracing::info!(journal = %shared.name, file = writer.id(), "rotated");
                    wake_maintenance(shared);
                }
            }
            Err(e) => {
                m.failures.increment(1);
                tracing::error!(journal = %shared.name, error = %e, "write failed; the journal stops");
                // Everything not yet durable is in doubt, including records
                // written before this batch and not synced (buffered mode):
                // a `sync()` waiting on them must fail, not hang.
                channel.fail(channel.durable.load(Ordering::Acquire), e);
                channel.publish(end, None);
                return;
            }
        }
    }
    if !sync {
        channel.publish(end, None);
        return;
    }
    let started = std::time::Instant::now();
    match writer.sync() {
        Ok(()) => {
            m.sync_seconds.record(started.elapsed().as_secs_f64());
            channel.publish(end, Some(end));
        }
        Err(e) => {
            m.failures.increment(1);
            tracing::error!(journal = %shared.name, error = %e, "fdatasync failed; the journal stops");
            channel.fail(channel.durable.load(Ordering::Acquire), e);
            channel.publish(end, None);
        }
    }
}

/// A record a caller reserved to write itself. If the caller unwinds
/// before publishing it, the record is failed (so no later watermark can
/// jump over it unwritten) and the flight ends.
struct Flight<'a> {
    shared: &'a Shared,
    seq: u64,
    done: bool,
}

impl Flight<'_> {
    fn land(mut self) {
        self.done = true;
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.shared.channel.fail(
                self.seq,
                std::io::Error::other("a panic interrupted a sync-each append"),
            );
            self.shared.channel.publish(self.seq + 1, None);
        }
        self.shared.channel.end_flight();
    }
}

fn wake_maintenance(shared: &Shared) {
    if let Some(tx) = &*shared.maint.lock().unwrap_or_else(|e| e.into_inner()) {
        let _ = tx.send(());
    }
}

fn maintenance_loop(shared: &Shared, fs: &dyn Fs, wake: &mpsc::Receiver<()>) {
    let config = &shared.config;
    let nothing_to_do = config.compression == crate::config::Compression::None
        && config.keep_files.is_none()
        && config.keep_bytes.is_none();
    while wake.recv().is_ok() {
        // Coalesce a burst of rotations into one run.
        while wake.try_recv().is_ok() {}
        if nothing_to_do {
            continue;
        }
        match maintenance::run(
            fs,
            &shared.layout,
            config.compression,
            config.keep_files,
            config.keep_bytes,
        ) {
            Ok(report) => {
                shared
                    .metrics
                    .compressed
                    .increment(report.compressed as u64);
                shared.metrics.removed.increment(report.removed as u64);
            }
            Err(e) => {
                tracing::warn!(journal = %shared.name, error = %e, "compression or retention failed; will try again after the next rotation");
            }
        }
    }
}

thread_local! {
    /// The buffer each thread serializes its appends' records into.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on the calling thread's scratch buffer, emptied; on a buffer of
/// its own if that one is in use (a `Serialize` impl that appends to a
/// journal) or gone (the thread is ending).
fn with_scratch<R>(mut f: impl FnMut(&mut Vec<u8>) -> R) -> R {
    let ran = SCRATCH.try_with(|cell| {
        let mut buf = cell.try_borrow_mut().ok()?;
        buf.clear();
        let out = f(&mut buf);
        if buf.capacity() > 1 << 20 {
            // Not kept after one huge record.
            *buf = Vec::new();
        }
        Some(out)
    });
    match ran {
        Ok(Some(out)) => out,
        _ => f(&mut Vec::new()),
    }
}

/// What the tower layer needs: queue encoded bytes now, or a future that
/// waits for space as the policy says.
pub(crate) enum Queued {
    Done,
    Wait(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>),
}

impl Journal {
    /// Queues `event` for the tower layer, unserialized: the writer thread
    /// serializes it (see the queue's docs). Never fails the caller: an
    /// event that cannot be queued (closed or failed journal, full queue
    /// with `Drop`) is dropped, and one that does not serialize or is
    /// larger than `max_record_bytes` is skipped by the writer; waits for
    /// space only when the overflow policy is `Wait`.
    pub(crate) fn queue_event<E: Serialize + Send + 'static>(
        &self,
        event: E,
        estimate: &Arc<Estimate>,
    ) -> Queued {
        match self.shared().channel.try_push_event(event, estimate) {
            Ok(_) => Queued::Done,
            Err(PushError::Full(event, queued)) => match self.shared().config.overflow {
                Overflow::Drop => {
                    let _ = self.dropped(queued);
                    Queued::Done
                }
                Overflow::Wait => {
                    let shared = self.shared().clone();
                    let estimate = estimate.clone();
                    Queued::Wait(Box::pin(async move {
                        let _ = shared.channel.push_event_async(event, &estimate).await;
                    }))
                }
            },
            Err(PushError::Refused(e)) => {
                tracing::debug!(journal = %self.name(), error = &e as &dyn std::error::Error, "event not recorded");
                Queued::Done
            }
        }
    }
}
