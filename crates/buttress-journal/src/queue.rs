//! The bounded queue between producers and the writer thread, and the
//! progress counters that acknowledge records.
//!
//! Records are numbered in queue order. The writer publishes two
//! watermarks: every record below `written` has been handed to the kernel,
//! every record below `durable` has been synced. A failure publishes
//! `failed_from`: no record at or above it is ever acknowledged.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use event_listener::{Event, Listener};

use crate::error::AppendError;

pub(crate) const NONE: u64 = u64::MAX;

#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub(crate) items: VecDeque<Vec<u8>>,
    /// Number of the front item.
    pub(crate) head: u64,
    /// Bytes queued plus bytes the writer holds in its batch.
    pub(crate) bytes: usize,
    /// The writer must sync until `durable` reaches this.
    pub(crate) sync_wanted: u64,
    pub(crate) closed: bool,
    pub(crate) writer_idle: bool,
    /// Batches taken from the queue (or reserved by a caller writing its
    /// own record) and not yet published.
    pub(crate) in_flight: u32,
}

impl Queue {
    pub(crate) fn next_seq(&self) -> u64 {
        self.head + self.items.len() as u64
    }
}

#[derive(Debug)]
pub(crate) struct Channel {
    queue: Mutex<Queue>,
    pub(crate) wake_writer: Condvar,
    capacity: usize,
    /// Producers waiting for space.
    space: Event,
    /// Waiters for the watermarks.
    progress: Event,
    pub(crate) written: AtomicU64,
    pub(crate) durable: AtomicU64,
    failed_from: AtomicU64,
    failure: Mutex<Option<Arc<io::Error>>>,
}

/// Why a push did not happen.
pub(crate) enum PushError {
    /// No room: the record back, and the bytes queued.
    Full(Vec<u8>, usize),
    Refused(AppendError),
}

impl Channel {
    pub(crate) fn new(capacity: usize) -> Self {
        Channel {
            queue: Mutex::new(Queue::default()),
            wake_writer: Condvar::new(),
            capacity,
            space: Event::new(),
            progress: Event::new(),
            written: AtomicU64::new(0),
            durable: AtomicU64::new(0),
            failed_from: AtomicU64::new(NONE),
            failure: Mutex::new(None),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn refusal(&self, q: &Queue) -> Option<AppendError> {
        if q.closed {
            return Some(AppendError::Closed);
        }
        if self.failed_from.load(Ordering::Acquire) != NONE {
            return Some(self.failed());
        }
        None
    }

    /// Queues `record` if there is room; returns its number.
    pub(crate) fn try_push(&self, record: Vec<u8>) -> Result<u64, PushError> {
        let mut q = self.lock();
        if let Some(refused) = self.refusal(&q) {
            return Err(PushError::Refused(refused));
        }
        if q.bytes + record.len() > self.capacity {
            return Err(PushError::Full(record, q.bytes));
        }
        let seq = q.next_seq();
        q.bytes += record.len();
        q.items.push_back(record);
        if q.writer_idle {
            q.writer_idle = false;
            self.wake_writer.notify_one();
        }
        Ok(seq)
    }

    /// A batch taken by a caller or the writer thread is published.
    pub(crate) fn end_flight(&self) {
        self.lock().in_flight -= 1;
    }

    /// Queues `record` if there is room; otherwise gives it back with a
    /// listener for freed space, created before the attempt so that no
    /// wake-up between the two is lost.
    fn push_or_listen(
        &self,
        record: Vec<u8>,
    ) -> Result<Result<u64, AppendError>, (Vec<u8>, event_listener::EventListener)> {
        let listener = self.space.listen();
        match self.try_push(record) {
            Ok(seq) => Ok(Ok(seq)),
            Err(PushError::Refused(e)) => Ok(Err(e)),
            Err(PushError::Full(back, _)) => Err((back, listener)),
        }
    }

    /// Queues `record`, waiting for space (blocking the thread).
    pub(crate) fn push_blocking(&self, mut record: Vec<u8>) -> Result<u64, AppendError> {
        loop {
            match self.push_or_listen(record) {
                Ok(done) => return done,
                Err((back, listener)) => {
                    listener.wait();
                    record = back;
                }
            }
        }
    }

    /// Queues `record`, waiting for space asynchronously.
    pub(crate) async fn push_async(&self, mut record: Vec<u8>) -> Result<u64, AppendError> {
        loop {
            match self.push_or_listen(record) {
                Ok(done) => return done,
                Err((back, listener)) => {
                    listener.await;
                    record = back;
                }
            }
        }
    }

    pub(crate) fn release(&self, bytes: usize) {
        let mut q = self.lock();
        q.bytes -= bytes;
        drop(q);
        self.space.notify(usize::MAX);
    }

    pub(crate) fn publish(&self, written: u64, durable: Option<u64>) {
        self.written.store(written, Ordering::Release);
        if let Some(d) = durable {
            self.durable.store(d, Ordering::Release);
        }
        self.progress.notify(usize::MAX);
    }

    /// Records a failure of the records from `from` on, and refuses every
    /// later one.
    pub(crate) fn fail(&self, from: u64, error: io::Error) {
        let mut slot = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(Arc::new(error));
        }
        drop(slot);
        let _ = self
            .failed_from
            .compare_exchange(NONE, from, Ordering::AcqRel, Ordering::Acquire);
        self.progress.notify(usize::MAX);
        self.space.notify(usize::MAX);
    }

    pub(crate) fn is_failed(&self) -> bool {
        self.failed_from.load(Ordering::Acquire) != NONE
    }

    fn failed(&self) -> AppendError {
        let error = self
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| Arc::new(io::Error::other("journal failed")));
        AppendError::Failed(error)
    }

    /// `Some(result)` once record `seq` is past `mark`, or failed.
    fn check(&self, mark: &AtomicU64, seq: u64) -> Option<Result<(), AppendError>> {
        // Failure first: `written` moves past records that were refused
        // after a failure, `durable` never does.
        if self.failed_from.load(Ordering::Acquire) <= seq {
            return Some(Err(self.failed()));
        }
        if mark.load(Ordering::Acquire) > seq {
            return Some(Ok(()));
        }
        None
    }

    /// The outcome for record `seq` if it is known, or a listener to wait
    /// on before asking again (created between two checks, so that no
    /// progress is missed).
    fn outcome_or_listen(
        &self,
        durable: bool,
        seq: u64,
    ) -> Result<Result<(), AppendError>, event_listener::EventListener> {
        let mark = if durable {
            &self.durable
        } else {
            &self.written
        };
        if let Some(done) = self.check(mark, seq) {
            return Ok(done);
        }
        let listener = self.progress.listen();
        match self.check(mark, seq) {
            Some(done) => Ok(done),
            None => Err(listener),
        }
    }

    pub(crate) fn wait_blocking(&self, durable: bool, seq: u64) -> Result<(), AppendError> {
        loop {
            match self.outcome_or_listen(durable, seq) {
                Ok(done) => return done,
                Err(listener) => listener.wait(),
            }
        }
    }

    pub(crate) async fn wait_async(&self, durable: bool, seq: u64) -> Result<(), AppendError> {
        loop {
            match self.outcome_or_listen(durable, seq) {
                Ok(done) => return done,
                Err(listener) => listener.await,
            }
        }
    }
}
