//! The bounded queue between producers and the writer thread, and the
//! progress counters that acknowledge records.
//!
//! Records are numbered in queue order. The writer publishes two
//! watermarks: every record below `written` has been handed to the kernel,
//! every record below `durable` has been synced. A failure publishes
//! `failed_from`: no record at or above it is ever acknowledged.
//!
//! The queue holds records two ways. An append serializes its event on
//! the caller's thread (it must report a serialization error or a record
//! too large to its caller) and queues the bytes. The tower layer, which
//! reports nothing to its caller, queues the event itself, unserialized:
//! consecutive events of one layer share one [`EventBatch`], so queueing
//! one is a push onto a vector under the lock, and the writer thread
//! serializes the whole batch (see `Journal::queue_event`).

use std::any::Any;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use event_listener::{Event, Listener};
use serde::Serialize;

use crate::error::AppendError;
use crate::record;

pub(crate) const NONE: u64 = u64::MAX;

/// What an event is counted as in the queue's bytes before its first
/// batch is serialized and its size is known.
const FIRST_GUESS: usize = 128;

/// One entry of the queue.
#[derive(Debug)]
pub(crate) enum Item {
    /// Consecutive records serialized by producers, back to back in one
    /// buffer (each ends with its newline, the only one it holds), from
    /// `start` on: appending a record copies it here, so no record is an
    /// allocation of its own that the writer thread would free.
    Records {
        bytes: Vec<u8>,
        start: usize,
        count: u64,
    },
    /// Consecutive events of one layer, serialized by the writer.
    Events(Box<dyn Deferred>),
}

impl Item {
    /// Bytes the queue counts for this entry.
    fn charged(&self) -> usize {
        match self {
            Item::Records { bytes, start, .. } => bytes.len() - start,
            Item::Events(b) => b.charged(),
        }
    }

    fn records(&self) -> u64 {
        match self {
            Item::Records { count, .. } => *count,
            Item::Events(b) => b.len() as u64,
        }
    }
}

/// How long a buffer of records may grow before a new one starts: the
/// writer takes a whole buffer at once when it fits its batch.
const RECORDS_PER_BUFFER: usize = 256 << 10;

/// Where the writer serializes the records it takes: one batch's bytes
/// and where each record ends.
#[derive(Debug)]
pub(crate) struct RecordSink<'a> {
    pub(crate) buf: &'a mut Vec<u8>,
    /// `(end of the record in buf, number of the record after it)` for
    /// every record written to `buf`, in order.
    pub(crate) marks: &'a mut Vec<(usize, u64)>,
    /// The number of the next record.
    pub(crate) seq: u64,
    pub(crate) max_record_bytes: usize,
    pub(crate) journal: &'a str,
}

impl RecordSink<'_> {
    /// Adds records the producers serialized (each ends with its only
    /// newline).
    pub(crate) fn encoded(&mut self, records: &[u8]) {
        let from = self.buf.len();
        self.buf.extend_from_slice(records);
        for end in memchr::memchr_iter(b'\n', records) {
            self.seq += 1;
            self.marks.push((from + end + 1, self.seq));
        }
    }

    /// Serializes `event` as the next record; returns its length, or
    /// `None` if it was skipped: it did not serialize, it was larger than
    /// `max_record_bytes`, or its `Serialize` panicked (caught here, so
    /// that one bad event cannot stop the writer thread). The record's
    /// number is used either way, as a dropped append's would be.
    pub(crate) fn event<T: Serialize + ?Sized>(&mut self, event: &T) -> Option<usize> {
        self.seq += 1;
        let start = self.buf.len();
        let buf = &mut *self.buf;
        let why = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            record::encode(buf, event)
        })) {
            Ok(Ok(())) if self.buf.len() - start <= self.max_record_bytes => {
                self.marks.push((self.buf.len(), self.seq));
                return Some(self.buf.len() - start);
            }
            Ok(Ok(())) => "larger than max_record_bytes",
            Ok(Err(_)) => "it does not serialize",
            Err(_) => "its Serialize panicked",
        };
        self.buf.truncate(start);
        tracing::debug!(journal = %self.journal, why, "event not recorded");
        None
    }
}

/// Events queued unserialized; see [`EventBatch`].
pub(crate) trait Deferred: Send + std::fmt::Debug {
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Events held.
    fn len(&self) -> usize;
    /// Bytes the queue counts for them.
    fn charged(&self) -> usize;
    /// Splits off the first `n` events (`0 < n < len`).
    fn split_front(&mut self, n: usize) -> Box<dyn Deferred>;
    /// Serializes every event, in order, into `sink`, and updates the
    /// estimate of the layer's record size.
    fn encode(self: Box<Self>, sink: &mut RecordSink<'_>);
}

/// The size of a layer's records as last measured by the writer: what
/// the queue counts a queued, unserialized event as. Shared by every
/// service of one layer.
#[derive(Debug, Default)]
pub(crate) struct Estimate(AtomicUsize);

impl Estimate {
    /// Bytes to count for one event of type `E`: its last measured
    /// record size (or a first guess), never less than the event itself
    /// takes in memory, and never more than a record may be (so that one
    /// always fits in an empty queue).
    fn charge<E>(&self, max_record_bytes: usize) -> usize {
        let measured = match self.0.load(Ordering::Relaxed) {
            0 => FIRST_GUESS,
            n => n,
        };
        measured
            .max(std::mem::size_of::<E>())
            .clamp(1, max_record_bytes)
    }
}

/// Consecutive events of one layer, in queue order, with the bytes the
/// queue counts for them.
pub(crate) struct EventBatch<E> {
    events: Vec<E>,
    charged: usize,
    estimate: Arc<Estimate>,
}

impl<E> std::fmt::Debug for EventBatch<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBatch")
            .field("events", &self.events.len())
            .field("charged", &self.charged)
            .finish()
    }
}

impl<E: Serialize + Send + 'static> Deferred for EventBatch<E> {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn len(&self) -> usize {
        self.events.len()
    }

    fn charged(&self) -> usize {
        self.charged
    }

    fn split_front(&mut self, n: usize) -> Box<dyn Deferred> {
        let rest = self.events.split_off(n);
        let front = std::mem::replace(&mut self.events, rest);
        // Exact, so that what is released is what was counted.
        let charged = self.charged / (front.len() + self.events.len()) * front.len();
        self.charged -= charged;
        Box::new(EventBatch {
            events: front,
            charged,
            estimate: self.estimate.clone(),
        })
    }

    fn encode(self: Box<Self>, sink: &mut RecordSink<'_>) {
        let (mut bytes, mut records) = (0usize, 0usize);
        for event in &self.events {
            if let Some(n) = sink.event(event) {
                bytes += n;
                records += 1;
            }
        }
        if let Some(each) = bytes.checked_div(records) {
            self.estimate.0.store(each.max(1), Ordering::Relaxed);
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub(crate) items: VecDeque<Item>,
    /// Number of the front record.
    pub(crate) head: u64,
    /// Records in `items` (an [`Item::Events`] holds several).
    records: u64,
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
        self.head + self.records
    }

    /// Moves records from the front of the queue into `out` for the
    /// writer: at least one, then as many as `limit` bytes hold (counting
    /// unserialized events at their charge), or exactly one if
    /// `one_record`. Returns how many records and how many counted bytes
    /// it took (at most `limit`, unless it took one record larger than
    /// that); `head` moves past them.
    pub(crate) fn take(
        &mut self,
        out: &mut Vec<Item>,
        limit: usize,
        one_record: bool,
    ) -> (u64, usize) {
        let (mut records, mut bytes) = (0u64, 0usize);
        while let Some(front) = self.items.front_mut() {
            if records > 0 && one_record {
                break;
            }
            let room = limit.saturating_sub(bytes);
            match front {
                Item::Records {
                    bytes: buf,
                    start,
                    count,
                } => {
                    let queued = &buf[*start..];
                    if !one_record && queued.len() <= room {
                        // All of them (below).
                    } else {
                        // The whole records that fit, or the first alone.
                        let end = if one_record {
                            None
                        } else {
                            memchr::memrchr(b'\n', &queued[..room]).map(|at| at + 1)
                        };
                        let end = match end {
                            Some(end) => end,
                            None if records > 0 => break,
                            None => match memchr::memchr(b'\n', queued) {
                                Some(at) => at + 1,
                                None => queued.len(),
                            },
                        };
                        let n = memchr::memchr_iter(b'\n', &queued[..end]).count() as u64;
                        if end < queued.len() {
                            out.push(Item::Records {
                                bytes: queued[..end].to_vec(),
                                start: 0,
                                count: n,
                            });
                            *start += end;
                            *count -= n;
                            records += n;
                            bytes += end;
                            break;
                        }
                    }
                }
                Item::Events(b) => {
                    let len = b.len();
                    let fit = if one_record {
                        1
                    } else if b.charged() <= room {
                        len
                    } else {
                        // Less than all of them: the charge of one is the
                        // batch's rounded down, so `fit` of them fit.
                        (room / (b.charged() / len).max(1)).min(len - 1)
                    };
                    let fit = if records == 0 { fit.max(1) } else { fit };
                    if fit == 0 {
                        break;
                    }
                    if fit < len {
                        let part = b.split_front(fit);
                        bytes += part.charged();
                        records += fit as u64;
                        out.push(Item::Events(part));
                        break;
                    }
                }
            }
            let Some(item) = self.items.pop_front() else {
                break;
            };
            records += item.records();
            bytes += item.charged();
            out.push(item);
        }
        self.records -= records;
        self.head += records;
        (records, bytes)
    }
}

#[derive(Debug)]
pub(crate) struct Channel {
    queue: Mutex<Queue>,
    pub(crate) wake_writer: Condvar,
    capacity: usize,
    max_record_bytes: usize,
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
pub(crate) enum PushError<T> {
    /// No room: the event back (if the caller gave it), and the bytes
    /// queued.
    Full(T, usize),
    Refused(AppendError),
}

impl Channel {
    pub(crate) fn new(capacity: usize, max_record_bytes: usize) -> Self {
        Channel {
            queue: Mutex::new(Queue::default()),
            wake_writer: Condvar::new(),
            capacity,
            max_record_bytes,
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

    /// Queues a copy of `record` (one whole record, ending with its only
    /// newline) if there is room; returns its number.
    pub(crate) fn try_push(&self, record: &[u8]) -> Result<u64, PushError<()>> {
        let mut q = self.lock();
        if let Some(refused) = self.refusal(&q) {
            return Err(PushError::Refused(refused));
        }
        if q.bytes + record.len() > self.capacity {
            return Err(PushError::Full((), q.bytes));
        }
        let seq = q.next_seq();
        q.bytes += record.len();
        q.records += 1;
        match q.items.back_mut() {
            Some(Item::Records { bytes, count, .. })
                if bytes.len() + record.len() <= RECORDS_PER_BUFFER =>
            {
                bytes.extend_from_slice(record);
                *count += 1;
            }
            _ => q.items.push_back(Item::Records {
                bytes: record.to_vec(),
                start: 0,
                count: 1,
            }),
        }
        self.wake_idle_writer(&mut q);
        Ok(seq)
    }

    fn wake_idle_writer(&self, q: &mut Queue) {
        if q.writer_idle {
            q.writer_idle = false;
            self.wake_writer.notify_one();
        }
    }

    /// Queues `event` unserialized if there is room (counted at the size
    /// `estimate` says), after the events of the same layer queued just
    /// before it if nothing came between; returns its number.
    pub(crate) fn try_push_event<E: Serialize + Send + 'static>(
        &self,
        event: E,
        estimate: &Arc<Estimate>,
    ) -> Result<u64, PushError<E>> {
        let charge = estimate.charge::<E>(self.max_record_bytes);
        let mut q = self.lock();
        if let Some(refused) = self.refusal(&q) {
            return Err(PushError::Refused(refused));
        }
        if q.bytes + charge > self.capacity {
            return Err(PushError::Full(event, q.bytes));
        }
        let seq = q.next_seq();
        let batch = match q.items.back_mut() {
            Some(Item::Events(b)) => b
                .as_any_mut()
                .downcast_mut::<EventBatch<E>>()
                .filter(|b| Arc::ptr_eq(&b.estimate, estimate)),
            _ => None,
        };
        match batch {
            Some(batch) => {
                batch.events.push(event);
                batch.charged += charge;
            }
            None => q.items.push_back(Item::Events(Box::new(EventBatch {
                events: vec![event],
                charged: charge,
                estimate: estimate.clone(),
            }))),
        }
        q.bytes += charge;
        q.records += 1;
        self.wake_idle_writer(&mut q);
        Ok(seq)
    }

    /// Queues `event` unserialized, waiting asynchronously for space.
    pub(crate) async fn push_event_async<E: Serialize + Send + 'static>(
        &self,
        mut event: E,
        estimate: &Arc<Estimate>,
    ) -> Result<u64, AppendError> {
        loop {
            let listener = self.space.listen();
            match self.try_push_event(event, estimate) {
                Ok(seq) => return Ok(seq),
                Err(PushError::Refused(e)) => return Err(e),
                Err(PushError::Full(back, _)) => {
                    listener.await;
                    event = back;
                }
            }
        }
    }

    /// A batch taken by a caller or the writer thread is published.
    pub(crate) fn end_flight(&self) {
        self.lock().in_flight -= 1;
    }

    /// Queues `record` if there is room; otherwise returns a listener for
    /// freed space, created before the attempt so that no wake-up between
    /// the two is lost.
    fn push_or_listen(
        &self,
        record: &[u8],
    ) -> Result<Result<u64, AppendError>, event_listener::EventListener> {
        let listener = self.space.listen();
        match self.try_push(record) {
            Ok(seq) => Ok(Ok(seq)),
            Err(PushError::Refused(e)) => Ok(Err(e)),
            Err(PushError::Full((), _)) => Err(listener),
        }
    }

    /// Queues `record`, waiting for space (blocking the thread).
    pub(crate) fn push_blocking(&self, record: &[u8]) -> Result<u64, AppendError> {
        loop {
            match self.push_or_listen(record) {
                Ok(done) => return done,
                Err(listener) => listener.wait(),
            }
        }
    }

    /// Queues `record`, waiting for space asynchronously.
    pub(crate) async fn push_async(&self, record: &[u8]) -> Result<u64, AppendError> {
        loop {
            match self.push_or_listen(record) {
                Ok(done) => return done,
                Err(listener) => listener.await,
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the writer does with what it took: serialize it, and read the
    /// events back in order.
    fn encode(taken: &mut Vec<Item>, first: u64, max_record_bytes: usize) -> (Vec<u64>, u64) {
        let (mut buf, mut marks) = (Vec::new(), Vec::new());
        let mut sink = RecordSink {
            buf: &mut buf,
            marks: &mut marks,
            seq: first,
            max_record_bytes,
            journal: "test",
        };
        for item in taken.drain(..) {
            match item {
                Item::Records { bytes, start, .. } => sink.encoded(&bytes[start..]),
                Item::Events(b) => b.encode(&mut sink),
            }
        }
        let end = sink.seq;
        let mut from = 0;
        let mut ids = Vec::new();
        for &(to, _) in &marks {
            let line = &buf[from..to - 1];
            let event = record::decode(line).expect("a valid record");
            ids.push(serde_json::from_slice(event).expect("an id"));
            from = to;
        }
        assert_eq!(from, buf.len());
        (ids, end)
    }

    fn record_of(id: u64) -> Vec<u8> {
        let mut r = Vec::new();
        record::encode(&mut r, &id).expect("encodes");
        r
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// An append's record (serialized by the producer).
        Record(u64),
        /// A layer's event (serialized by the writer); two layers.
        Event(bool, u64),
        /// The writer takes a batch.
        Take { limit: usize, one_record: bool },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..1_000_000u64).prop_map(Op::Record),
            (any::<bool>(), 0..1_000_000u64).prop_map(|(l, id)| Op::Event(l, id)),
            (1..200usize, any::<bool>())
                .prop_map(|(limit, one_record)| Op::Take { limit, one_record }),
        ]
    }

    proptest! {
        /// Against a model (a plain FIFO of ids): whatever mix of records and
        /// layers' events is queued, the writer gets them in queue order,
        /// numbered from `head`, within its byte limit (or one at a time),
        /// and the bytes counted come back to zero once released.
        #[test]
        fn the_writer_takes_records_and_events_in_queue_order(ops in proptest::collection::vec(op(), 1..120)) {
            let channel = Channel::new(1 << 20, 64);
            let layers = [Arc::new(Estimate::default()), Arc::new(Estimate::default())];
            let mut model = std::collections::VecDeque::new();
            let mut next = 0u64;
            let mut written = Vec::new();
            let mut taken = Vec::new();
            for op in ops {
                match op {
                    Op::Record(id) => {
                        prop_assert_eq!(channel.try_push(&record_of(id)).ok(), Some(next));
                        model.push_back(id);
                        next += 1;
                    }
                    Op::Event(layer, id) => {
                        let seq = channel.try_push_event(id, &layers[usize::from(layer)]).ok();
                        prop_assert_eq!(seq, Some(next));
                        model.push_back(id);
                        next += 1;
                    }
                    Op::Take { limit, one_record } => {
                        let mut q = channel.lock();
                        let first = q.head;
                        let (records, bytes) = q.take(&mut taken, limit, one_record);
                        prop_assert_eq!(q.next_seq(), next);
                        drop(q);
                        prop_assert_eq!(records as usize, model.len().min(if one_record { 1 } else { records as usize }));
                        if !model.is_empty() {
                            prop_assert!(records >= 1);
                        }
                        prop_assert!(records <= 1 || bytes <= limit, "{records} records, {bytes} bytes > {limit}");
                        let (ids, end) = encode(&mut taken, first, 64);
                        prop_assert_eq!(end, first + records);
                        let expected: Vec<u64> = model.drain(..records as usize).collect();
                        prop_assert_eq!(&ids, &expected);
                        written.extend(ids);
                        channel.release(bytes);
                    }
                }
            }
            // Whatever is left, one take at a time.
            loop {
                let mut q = channel.lock();
                let (records, bytes) = q.take(&mut taken, 1 << 20, false);
                let first = q.head - records;
                drop(q);
                if records == 0 {
                    break;
                }
                let (ids, _) = encode(&mut taken, first, 64);
                let expected: Vec<u64> = model.drain(..records as usize).collect();
                prop_assert_eq!(ids, expected);
                channel.release(bytes);
            }
            prop_assert!(model.is_empty());
            prop_assert_eq!(channel.lock().bytes, 0);
        }
    }

    #[test]
    fn an_event_counts_as_its_layers_last_record_size() {
        let channel = Channel::new(1000, 100);
        let layer = Arc::new(Estimate::default());
        // Before anything was written: the first guess, within a record's
        // bound.
        channel.try_push_event(7u64, &layer).ok();
        assert_eq!(channel.lock().bytes, FIRST_GUESS.min(100));
        let mut taken = Vec::new();
        let (records, bytes) = channel.lock().take(&mut taken, 1 << 20, false);
        assert_eq!(records, 1);
        encode(&mut taken, 0, 100);
        channel.release(bytes);
        // `{"crc32c":"…","event":7}` and its newline.
        let len = record::OVERHEAD + 1;
        channel.try_push_event(8u64, &layer).ok();
        assert_eq!(channel.lock().bytes, len);
        // Never less than the event takes in memory.
        channel.try_push_event([0u64; 8], &layer).ok();
        assert_eq!(channel.lock().bytes, len + 64);
        // Another layer has its own estimate.
        let other = Arc::new(Estimate::default());
        channel.try_push_event(9u64, &other).ok();
        assert_eq!(channel.lock().bytes, len + 64 + FIRST_GUESS.min(100));
    }

    #[test]
    fn a_full_queue_gives_the_event_back() {
        let channel = Channel::new(100, 100);
        let layer = Arc::new(Estimate::default());
        assert!(channel.try_push_event(1u8, &layer).is_ok());
        match channel.try_push_event(2u8, &layer) {
            Err(PushError::Full(back, queued)) => assert_eq!((back, queued), (2, 100)),
            _ => panic!("expected a full queue"),
        }
    }

    /// An event whose `Serialize` fails or panics, or whose record is too
    /// large, is skipped by the writer; its number is used, the others are
    /// written in order.
    #[test]
    fn events_that_cannot_be_written_are_skipped() {
        struct Bad(u8);
        impl Serialize for Bad {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self.0 {
                    0 => Err(serde::ser::Error::custom("no")),
                    1 => panic!("a bug in a Serialize impl"),
                    2 => s.serialize_str(&"x".repeat(200)),
                    n => s.serialize_u8(n),
                }
            }
        }
        let channel = Channel::new(1 << 20, 100);
        let layer = Arc::new(Estimate::default());
        for n in [3, 0, 4, 1, 5, 2, 6] {
            channel.try_push_event(Bad(n), &layer).ok();
        }
        let mut taken = Vec::new();
        let (records, _) = channel.lock().take(&mut taken, 1 << 20, false);
        assert_eq!(records, 7);
        let (ids, end) = encode(&mut taken, 0, 100);
        assert_eq!(ids, vec![3, 4, 5, 6]);
        assert_eq!(end, 7);
    }
}
