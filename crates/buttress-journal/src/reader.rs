//! [`JournalReader`]: records from a [`Cursor`] on, across sealed,
//! compressed and active files.

use std::fmt;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use buttress_fs::{File, Fs, RealFs};
use flate2::read::GzDecoder;
use serde::de::DeserializeOwned;

use crate::error::{ReadError, io_at};
use crate::layout::{Layout, Segment};
use crate::record;

/// A position in a journal: a file id and a byte offset in the file's
/// uncompressed contents. The cursor of a record points just past it, so a
/// reader seeked to it goes on with the next record.
///
/// File ids never change or get reused (rotation creates the next id,
/// compression keeps it), so a saved cursor stays meaningful. It
/// serializes as `{"file": 1, "offset": 120}`, to be saved with the
/// consumer's state (for example in a checkpoint), and prints as
/// `file:offset`.
///
/// ```
/// use buttress_journal::Cursor;
///
/// let cursor = Cursor { file: 3, offset: 120 };
/// assert_eq!(cursor.to_string(), "3:120");
/// let saved = serde_json::to_string(&cursor).unwrap();
/// assert_eq!(serde_json::from_str::<Cursor>(&saved).unwrap(), cursor);
/// assert!(Cursor::START < cursor);
/// ```
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Cursor {
    /// The file id.
    pub file: u64,
    /// Bytes into the file.
    pub offset: u64,
}

impl Cursor {
    /// The start of the journal: a reader seeked here reads every record
    /// still kept.
    ///
    /// ```
    /// use buttress_journal::Cursor;
    ///
    /// assert_eq!(Cursor::START, Cursor { file: 0, offset: 0 });
    /// assert_eq!(Cursor::START, Cursor::default());
    /// ```
    pub const START: Cursor = Cursor { file: 0, offset: 0 };
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.offset)
    }
}

/// What a reader has seen so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadStats {
    /// Valid records returned.
    pub records: u64,
    /// Lines (or pieces of lines) skipped because they were torn,
    /// zero-filled, bit-flipped or too long.
    pub corrupt_records: u64,
    /// Bytes skipped with them.
    pub corrupt_bytes: u64,
    /// Times the cursor's file was gone (removed by retention) and reading
    /// went on at the next file.
    pub missing_files: u64,
    /// Compressed files that could not be decompressed to their end.
    pub broken_files: u64,
}

/// A record with its event decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<E> {
    /// The event.
    pub event: E,
    /// Where the record ends: save this to resume after it.
    pub cursor: Cursor,
}

/// `io::Read` over a seam file, from an offset.
struct SeamRead {
    file: Box<dyn File>,
    offset: u64,
}

impl Read for SeamRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}

enum Source {
    Plain(Box<dyn File>),
    Gzip(Box<GzDecoder<SeamRead>>),
    /// A damaged compressed file, given up on: reads as ended.
    Broken,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Plain(_) => "Plain",
            Source::Gzip(_) => "Gzip",
            Source::Broken => "Broken",
        })
    }
}

/// The file being read.
#[derive(Debug)]
struct Open {
    id: u64,
    source: Source,
    /// File offset of `buf[0]`.
    buf_offset: u64,
    /// Where the next read from the source lands.
    read_offset: u64,
}

/// The shortest gzip file: a 10-byte header, the 2-byte deflate of
/// nothing, and the 8-byte trailer, whose last 4 bytes are the
/// uncompressed size.
const GZIP_MIN_LEN: u64 = 20;

/// How much of a plain file one read takes (64 KiB).
const CHUNK: usize = 1 << 16;

/// Reads a journal's records in order from a cursor on.
///
/// ```no_run
/// use buttress_journal::{Cursor, JournalReader};
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let mut reader = JournalReader::open("/var/lib/app/telemetry", "events")?;
/// reader.seek(Cursor::START); // or a cursor saved earlier
/// while let Some(record) = reader.next_record::<serde_json::Value>()? {
///     println!("{}", record.event);
///     // ...save record.cursor now and then to resume after it
/// }
/// println!("{} bytes not yet read", reader.unprocessed_bytes()?);
/// # Ok(()) }
/// ```
///
/// At the end of the newest file [`next_record`](JournalReader::next_record) returns
/// `None`; call it again later to read what was appended since.
///
/// # A line without its newline at the end of the newest file
///
/// It is either a record a writer is writing right now, or the torn
/// fragment of a writer that died mid-record (`kill -9`, a crash). Writers
/// write and seal records only while they hold the file's `flock`, so the
/// reader asks the lock, without waiting: it tries to take it on its own
/// handle (a separate open file description) and, if it gets it, reads
/// what was finished meanwhile and releases it at once.
///
/// * **A writer holds the lock**: the record is in progress. It is left
///   for a later call, not counted, and stays in
///   [`unprocessed_bytes`](JournalReader::unprocessed_bytes).
/// * **No writer holds it**: no write is under way, so the line can never
///   be finished: it is torn. It is counted like any other corrupt record
///   ([`ReadStats::corrupt_records`], [`ReadStats::corrupt_bytes`]) and
///   the cursor moves past it, so a crashed writer's fragment no longer
///   sits in the backlog until another writer appends. The newline the
///   next writer seals it with is not counted a second time.
///
/// Taking the lock for that instant can make a writer wait for one read of
/// at most 64 KiB; a reader that finds the lock busy (a writer, or another
/// reader asking at the same moment) treats the line as in progress and
/// asks again on its next call. At the end of a *sealed* file (a newer one
/// exists) a line without its newline is always a fragment.
///
/// ```
/// use std::sync::Arc;
/// use std::path::Path;
/// use buttress_fs::{Fs, SimFs};
/// use buttress_journal::JournalReader;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let fs = SimFs::new();
/// let dir = Path::new("/telemetry");
/// fs.create_dir_all(dir)?;
/// // A writer died halfway through a record.
/// let file = fs.create_new(&dir.join("events.0000000001.jsonl"))?;
/// file.write_all(br#"{"crc32c":"0123abcd","event":{"kind":"que"#)?;
/// drop(file); // its lock went with it
///
/// let mut reader = JournalReader::with_fs(Arc::new(fs), dir, "events");
/// assert!(reader.next_record::<serde_json::Value>()?.is_none());
/// assert_eq!(reader.stats().corrupt_records, 1); // torn, counted
/// assert_eq!(reader.unprocessed_bytes()?, 0);    // and moved past
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct JournalReader {
    fs: Arc<dyn Fs>,
    layout: Layout,
    max_record: usize,
    cursor: Cursor,
    open: Option<Open>,
    buf: Vec<u8>,
    /// Where reads land before joining `buf`.
    chunk: Vec<u8>,
    pos: usize,
    /// Inside a line longer than `max_record`, skipping to its end.
    skipping: bool,
    /// The reader's position is just past a torn fragment that was counted
    /// (by this reader, or by the one that saved the cursor): an empty line
    /// there is the newline a writer sealed the fragment with, not
    /// another corrupt record.
    after_fragment: bool,
    stats: ReadStats,
}

impl JournalReader {
    /// A reader of journal `name` in `dir` on the real file system,
    /// positioned at the start. It opens nothing yet: a journal not yet
    /// created reads as empty.
    ///
    /// ```
    /// use buttress_journal::{Journal, JournalConfig, JournalReader};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("journal-reader-open-doc-{}", std::process::id()));
    /// let mut reader = JournalReader::open(&dir, "events")?;
    /// assert!(reader.next_record::<u32>()?.is_none()); // nothing there yet
    ///
    /// let journal = Journal::open(&dir, "events", JournalConfig::default())?;
    /// journal.append_blocking(&7u32)?;
    /// assert_eq!(reader.next_record::<u32>()?.map(|r| r.event), Some(7));
    /// # journal.close()?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    pub fn open(dir: impl AsRef<Path>, name: &str) -> io::Result<JournalReader> {
        Ok(JournalReader::with_fs(Arc::new(RealFs::new()), dir, name))
    }

    /// A reader on any [`Fs`].
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use buttress_core::ManualClock;
    /// # use buttress_fs::SimFs;
    /// # use buttress_journal::{Journal, JournalConfig};
    /// use buttress_journal::JournalReader;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let fs = SimFs::new();
    /// # let journal = Journal::open_with(Arc::new(fs.clone()), Arc::new(ManualClock::new()), "/j", "events", JournalConfig::default())?;
    /// # journal.append_blocking(&1u32)?;
    /// let mut reader = JournalReader::with_fs(Arc::new(fs), "/j", "events");
    /// assert_eq!(reader.next_record::<u32>()?.map(|r| r.event), Some(1));
    /// # Ok(()) }
    /// ```
    pub fn with_fs(fs: Arc<dyn Fs>, dir: impl AsRef<Path>, name: &str) -> JournalReader {
        JournalReader {
            fs,
            layout: Layout::new(dir.as_ref(), name),
            max_record: crate::JournalConfig::default().max_record_bytes,
            cursor: Cursor::START,
            open: None,
            buf: Vec::new(),
            chunk: Vec::new(),
            pos: 0,
            skipping: false,
            after_fragment: false,
            stats: ReadStats::default(),
        }
    }

    /// The most the reader holds of one line whose end it has not read
    /// yet. Once it has read this many bytes of a line without finding
    /// its newline, the line is longer than any record a writer with the
    /// same `max_record_bytes` writes (a record's length counts its
    /// newline): it is skipped to its end without being held, and counted
    /// as one corrupt record of all its bytes. Default: the journal's
    /// default `max_record_bytes` (1 MiB); set it to the writer's. Values
    /// below the smallest record (an event of one byte) are raised to it.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use buttress_core::ManualClock;
    /// # use buttress_fs::SimFs;
    /// # use buttress_journal::{Journal, JournalConfig};
    /// use buttress_journal::JournalReader;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let fs = SimFs::new();
    /// let config = JournalConfig::default().max_record_bytes(64 << 10);
    /// # let journal = Journal::open_with(Arc::new(fs.clone()), Arc::new(ManualClock::new()), "/j", "events", config.clone())?;
    /// # journal.append_blocking(&1u32)?;
    /// let mut reader = JournalReader::with_fs(Arc::new(fs), "/j", "events")
    ///     .max_record_bytes(config.max_record_bytes);
    /// assert!(reader.next_record::<u32>()?.is_some());
    /// # Ok(()) }
    /// ```
    pub fn max_record_bytes(mut self, bytes: usize) -> Self {
        self.max_record = bytes.max(record::OVERHEAD + 1);
        self
    }

    /// Moves to `cursor`: a record's [`Record::cursor`], saved earlier, or
    /// [`Cursor::START`].
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use buttress_core::ManualClock;
    /// # use buttress_fs::SimFs;
    /// # use buttress_journal::{Journal, JournalConfig};
    /// use buttress_journal::JournalReader;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let fs = SimFs::new();
    /// # let journal = Journal::open_with(Arc::new(fs.clone()), Arc::new(ManualClock::new()), "/j", "events", JournalConfig::default())?;
    /// for n in 1..=3u32 {
    ///     journal.append_blocking(&n)?;
    /// }
    /// let mut reader = JournalReader::with_fs(Arc::new(fs.clone()), "/j", "events");
    /// let saved = reader.next_record::<u32>()?.expect("first").cursor;
    ///
    /// // After a restart: resume after the first record.
    /// let mut reader = JournalReader::with_fs(Arc::new(fs), "/j", "events");
    /// reader.seek(saved);
    /// assert_eq!(reader.next_record::<u32>()?.map(|r| r.event), Some(2));
    /// # Ok(()) }
    /// ```
    pub fn seek(&mut self, cursor: Cursor) {
        self.cursor = cursor;
        self.open = None;
        self.buf.clear();
        self.pos = 0;
        self.skipping = false;
        self.after_fragment = false;
    }

    /// Where the next record starts: the cursor of the record last
    /// returned, or where [`seek`](JournalReader::seek) put the reader.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use buttress_core::ManualClock;
    /// # use buttress_fs::SimFs;
    /// # use buttress_journal::{Journal, JournalConfig};
    /// use buttress_journal::{Cursor, JournalReader};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let fs = SimFs::new();
    /// # let journal = Journal::open_with(Arc::new(fs.clone()), Arc::new(ManualClock::new()), "/j", "events", JournalConfig::default())?;
    /// journal.append_blocking(&1u32)?;
    /// let mut reader = JournalReader::with_fs(Arc::new(fs), "/j", "events");
    /// assert_eq!(reader.cursor(), Cursor::START);
    /// let record = reader.next_record::<u32>()?.expect("one record");
    /// assert_eq!(reader.cursor(), record.cursor);
    /// # Ok(()) }
    /// ```
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// What this reader has seen.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use buttress_core::ManualClock;
    /// # use buttress_fs::SimFs;
    /// # use buttress_journal::{Journal, JournalConfig};
    /// use buttress_journal::JournalReader;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let fs = SimFs::new();
    /// # let journal = Journal::open_with(Arc::new(fs.clone()), Arc::new(ManualClock::new()), "/j", "events", JournalConfig::default())?;
    /// journal.append_blocking(&1u32)?;
    /// let mut reader = JournalReader::with_fs(Arc::new(fs), "/j", "events");
    /// while reader.next_record::<u32>()?.is_some() {}
    /// let stats = reader.stats();
    /// assert_eq!((stats.records, stats.corrupt_records), (1, 0));
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> ReadStats {
        self.stats
    }

    /// The next record decoded as `E`, or `None` at the end of the journal.
    ///
    /// A record whose event does not decode as `E` is a
    /// [`ReadError::Decode`], and the reader has moved past it.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use buttress_core::ManualClock;
    /// # use buttress_fs::SimFs;
    /// # use buttress_journal::{Journal, JournalConfig};
    /// use buttress_journal::{JournalReader, ReadError};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let fs = SimFs::new();
    /// # let journal = Journal::open_with(Arc::new(fs.clone()), Arc::new(ManualClock::new()), "/j", "events", JournalConfig::default())?;
    /// journal.append_blocking(&1u32)?;
    /// journal.append_blocking(&"not a number")?;
    /// let mut reader = JournalReader::with_fs(Arc::new(fs), "/j", "events");
    /// assert_eq!(reader.next_record::<u32>()?.map(|r| r.event), Some(1));
    /// assert!(matches!(reader.next_record::<u32>(), Err(ReadError::Decode { .. })));
    /// assert!(reader.next_record::<u32>()?.is_none()); // moved past it
    /// # Ok(()) }
    /// ```
    pub fn next_record<E: DeserializeOwned>(&mut self) -> Result<Option<Record<E>>, ReadError> {
        let Some((start, end)) = self.next_span()? else {
            return Ok(None);
        };
        let cursor = self.cursor;
        match serde_json::from_slice(&self.buf[start..end]) {
            Ok(event) => Ok(Some(Record { event, cursor })),
            Err(source) => Err(ReadError::Decode { cursor, source }),
        }
    }

    /// The next record's event as raw JSON bytes, with the cursor after it.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use buttress_core::ManualClock;
    /// # use buttress_fs::SimFs;
    /// # use buttress_journal::{Journal, JournalConfig};
    /// use buttress_journal::JournalReader;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let fs = SimFs::new();
    /// # let journal = Journal::open_with(Arc::new(fs.clone()), Arc::new(ManualClock::new()), "/j", "events", JournalConfig::default())?;
    /// journal.append_blocking(&serde_json::json!({"n": 1}))?;
    /// let mut reader = JournalReader::with_fs(Arc::new(fs), "/j", "events");
    /// let (bytes, cursor) = reader.next_raw()?.expect("one record");
    /// assert_eq!(bytes, br#"{"n":1}"#);
    /// assert_eq!(cursor.file, 1);
    /// # Ok(()) }
    /// ```
    pub fn next_raw(&mut self) -> Result<Option<(&[u8], Cursor)>, ReadError> {
        match self.next_span()? {
            Some((start, end)) => Ok(Some((&self.buf[start..end], self.cursor))),
            None => Ok(None),
        }
    }

    fn next_span(&mut self) -> Result<Option<(usize, usize)>, ReadError> {
        loop {
            if self.open.is_none() && !self.open_next()? {
                return Ok(None);
            }
            if let Some(span) = self.take_line() {
                return Ok(Some(span));
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Looks for a whole line in the buffer; returns the event span of the
    /// first valid record, skipping and counting corrupt lines.
    fn take_line(&mut self) -> Option<(usize, usize)> {
        let open = self.open.as_ref()?;
        let buf_offset = open.buf_offset;
        while let Some(i) = memchr::memchr(b'\n', &self.buf[self.pos..]) {
            let start = self.pos;
            let end = start + i;
            self.pos = end + 1;
            self.cursor.offset = buf_offset + self.pos as u64;
            if std::mem::take(&mut self.after_fragment) && start == end {
                // The seal of a fragment already counted.
                continue;
            }
            if std::mem::take(&mut self.skipping) {
                // The buffer was emptied when the skip began, so the
                // line's rest is all of it up to here.
                self.corrupt(self.pos);
                continue;
            }
            let line = &self.buf[start..end];
            if let Some(event) = record::decode(line) {
                self.stats.records += 1;
                let at = start + record::PREFIX_LEN;
                return Some((at, at + event.len()));
            }
            if let Some((skip, len)) = record::resync(line).map(|(skip, e)| (skip, e.len())) {
                self.corrupt(skip);
                self.stats.records += 1;
                let at = start + skip + record::PREFIX_LEN;
                return Some((at, at + len));
            }
            self.corrupt(end - start + 1);
        }
        None
    }

    fn corrupt(&mut self, bytes: usize) {
        self.stats.corrupt_records += 1;
        self.stats.corrupt_bytes += bytes as u64;
    }

    /// Reads more of the open file. Returns false at the end of the
    /// journal; moves to the next file at the end of a sealed one.
    fn fill(&mut self) -> Result<bool, ReadError> {
        // Keep only the unfinished line.
        self.buf.drain(..self.pos);
        let Some(open) = self.open.as_mut() else {
            return Ok(false);
        };
        open.buf_offset += self.pos as u64;
        self.pos = 0;
        if self.buf.len() >= self.max_record {
            // With its newline still to come, longer than a record can be:
            // skip to the end of the line without holding it.
            self.stats.corrupt_bytes += self.buf.len() as u64;
            open.buf_offset += self.buf.len() as u64;
            self.buf.clear();
            // Counted as one corrupt record when its newline comes.
            self.skipping = true;
        }
        let n = self.read_more()?;
        if n > 0 {
            return Ok(true);
        }
        // End of this file. Is it sealed (a newer file exists)?
        let id = self.open.as_ref().map_or(0, |o| o.id);
        let path = self.layout.dir.clone();
        let listing = self.layout.list(&*self.fs).map_err(io_at(path))?;
        let Some(next) = listing.readable().into_iter().find(|s| s.id > id) else {
            return self.end_of_newest();
        };
        // The file was sealed before the newer one was created; whatever
        // was appended before that is readable now.
        if self.read_more()? > 0 {
            return Ok(true);
        }
        if !self.buf.is_empty() || self.skipping {
            // A fragment at the end of a sealed file: torn by a crash.
            self.corrupt(self.buf.len());
        }
        self.seek(Cursor {
            file: next.id,
            offset: 0,
        });
        Ok(true)
    }

    /// At the end of the newest file, with what was read of an unfinished
    /// line in the buffer: a record being written, or a torn fragment.
    /// Writers write and seal only under the file's `flock`, so if no one
    /// holds it, no write is under way and the line can never be finished.
    /// Returns true when more bytes were read.
    fn end_of_newest(&mut self) -> Result<bool, ReadError> {
        if self.buf.is_empty() && !self.skipping {
            return Ok(false);
        }
        let Some(Open {
            id,
            source: Source::Plain(file),
            ..
        }) = self.open.as_ref()
        else {
            return Ok(false);
        };
        let id = *id;
        // Our own handle is an open file description of its own: its
        // `flock` conflicts with every writer's.
        match file.try_lock() {
            Ok(true) => {}
            // A writer holds it: in progress.
            Ok(false) => return Ok(false),
            Err(e) => {
                // Cannot tell: keep treating the line as in progress.
                tracing::debug!(file = id, error = %e, "could not probe the journal file's lock");
                return Ok(false);
            }
        }
        // A writer may have finished the line (and unlocked) between our
        // last read and the lock: read again while no one can write.
        let more = self.read_more();
        if let Some(Open {
            source: Source::Plain(file),
            ..
        }) = self.open.as_ref()
        {
            let _ = file.unlock();
        }
        if more? > 0 {
            return Ok(true);
        }
        // Torn: no writer is writing, so nothing can finish it. Count it
        // and move past it; the next writer seals it with a newline.
        let torn = self.buf.len();
        self.corrupt(torn);
        tracing::warn!(
            file = id,
            offset = self.cursor.offset,
            bytes = torn,
            "torn record at the end of the journal, no writer holding the file: skipped"
        );
        if let Some(open) = self.open.as_mut() {
            open.buf_offset += torn as u64;
            self.cursor.offset = open.buf_offset;
        }
        self.buf.clear();
        self.pos = 0;
        self.skipping = false;
        self.after_fragment = true;
        Ok(false)
    }

    fn read_more(&mut self) -> Result<usize, ReadError> {
        let Some(open) = self.open.as_mut() else {
            return Ok(0);
        };
        if self.chunk.is_empty() {
            self.chunk = vec![0; CHUNK];
        }
        let result = match &mut open.source {
            Source::Plain(file) => file.read_at(&mut self.chunk, open.read_offset),
            Source::Gzip(decoder) => decoder.read(&mut self.chunk),
            Source::Broken => Ok(0),
        };
        let n = match result {
            Ok(n) => n,
            Err(e) if matches!(open.source, Source::Gzip(_)) => {
                // A damaged compressed file: what follows is lost.
                tracing::warn!(file = open.id, error = %e, "compressed journal file is damaged; skipping its rest");
                self.stats.broken_files += 1;
                open.source = Source::Broken;
                0
            }
            Err(e) => return Err(io_at(self.layout.plain(open.id))(e)),
        };
        self.buf.extend_from_slice(&self.chunk[..n]);
        open.read_offset += n as u64;
        Ok(n)
    }

    /// Opens the file of the cursor, or the next one after it. Returns
    /// false when there is none.
    fn open_next(&mut self) -> Result<bool, ReadError> {
        // A file can be compressed or removed between the listing and the
        // open; look again a few times, then give up until the next call.
        for _ in 0..8 {
            if let Some(opened) = self.try_open_next()? {
                return Ok(opened);
            }
        }
        Ok(false)
    }

    /// `None`: the file vanished meanwhile, try again.
    fn try_open_next(&mut self) -> Result<Option<bool>, ReadError> {
        let listing = self
            .layout
            .list(&*self.fs)
            .map_err(io_at(self.layout.dir.clone()))?;
        let Some(segment) = listing
            .readable()
            .into_iter()
            .find(|s| s.id >= self.cursor.file)
        else {
            return Ok(Some(false));
        };
        if segment.id != self.cursor.file {
            if self.cursor != Cursor::START {
                self.stats.missing_files += 1;
                tracing::warn!(cursor = %self.cursor, next = segment.id, "the cursor's journal file is gone; going on with the next");
            }
            self.cursor = Cursor {
                file: segment.id,
                offset: 0,
            };
        }
        let path = self.layout.path(segment);
        let file = match self.fs.open_read(&path) {
            Ok(f) => f,
            // Compressed or removed since the listing: look again.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_at(path)(e)),
        };
        let offset = self.cursor.offset;
        // The byte before the cursor: a record's cursor always follows a
        // newline, so anything else means the cursor was moved past a torn
        // fragment (see `end_of_newest`).
        let mut before = None;
        let source = if segment.compressed {
            let mut decoder = GzDecoder::new(SeamRead { file, offset: 0 });
            // Skip to the cursor in the uncompressed stream, keeping the
            // byte before it. A cursor past the end of the file reads
            // nothing more from it; a file that does not decompress as far
            // as the cursor is damaged, and counted.
            let skipped = if offset == 0 {
                Ok(true)
            } else {
                io::copy(&mut (&mut decoder).take(offset - 1), &mut io::sink()).and_then(|_| {
                    let mut last = [0u8];
                    match decoder.read(&mut last) {
                        Ok(0) => Ok(false),
                        Ok(_) => {
                            before = Some(last[0]);
                            Ok(true)
                        }
                        Err(e) => Err(e),
                    }
                })
            };
            match skipped {
                Ok(true) => Source::Gzip(Box::new(decoder)),
                Ok(false) => Source::Broken,
                Err(_) => {
                    self.stats.broken_files += 1;
                    Source::Broken
                }
            }
        } else {
            if offset > 0 {
                let mut last = [0u8];
                if file.read_at(&mut last, offset - 1).map_err(io_at(&path))? == 1 {
                    before = Some(last[0]);
                }
            }
            Source::Plain(file)
        };
        self.after_fragment = before.is_some_and(|b| b != b'\n');
        self.open = Some(Open {
            id: segment.id,
            source,
            buf_offset: offset,
            read_offset: offset,
        });
        self.buf.clear();
        self.pos = 0;
        Ok(Some(true))
    }

    /// Bytes in the journal after the cursor: what a consumer has yet to
    /// read. Compressed files count their uncompressed size (from the gzip
    /// trailer, exact below 4 GiB).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use buttress_core::ManualClock;
    /// # use buttress_fs::SimFs;
    /// # use buttress_journal::{Journal, JournalConfig};
    /// use buttress_journal::JournalReader;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let fs = SimFs::new();
    /// # let journal = Journal::open_with(Arc::new(fs.clone()), Arc::new(ManualClock::new()), "/j", "events", JournalConfig::default())?;
    /// journal.append_blocking(&1u32)?;
    /// let mut reader = JournalReader::with_fs(Arc::new(fs), "/j", "events");
    /// assert!(reader.unprocessed_bytes()? > 0); // the backlog, for backpressure
    /// while reader.next_record::<u32>()?.is_some() {}
    /// assert_eq!(reader.unprocessed_bytes()?, 0);
    /// # Ok(()) }
    /// ```
    pub fn unprocessed_bytes(&self) -> Result<u64, ReadError> {
        let listing = self
            .layout
            .list(&*self.fs)
            .map_err(io_at(self.layout.dir.clone()))?;
        let mut total = 0u64;
        for segment in listing.readable() {
            if segment.id < self.cursor.file {
                continue;
            }
            let path = self.layout.path(segment);
            let size = match self.size(segment, &path) {
                Ok(size) => size,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_at(path)(e)),
            };
            total += if segment.id == self.cursor.file {
                size.saturating_sub(self.cursor.offset)
            } else {
                size
            };
        }
        Ok(total)
    }

    /// A file's size; a compressed file's uncompressed size, from its
    /// trailer. A compressed file too short to be gzip is damaged: its own
    /// length is what is left of it.
    fn size(&self, segment: Segment, path: &Path) -> io::Result<u64> {
        let len = self.fs.metadata(path)?.len;
        if !segment.compressed || len < GZIP_MIN_LEN {
            return Ok(len);
        }
        let file = self.fs.open_read(path)?;
        let mut trailer = [0u8; 4];
        let n = file.read_at(&mut trailer, len - 4)?;
        Ok(if n == 4 {
            u64::from(u32::from_le_bytes(trailer))
        } else {
            len
        })
    }
}
