//! What `/learning/stats` shows, kept as it happens by the reading thread
//! and the processing task.

use std::sync::Mutex;
use std::time::SystemTime;

use buttress::journal::{Cursor, ReadStats};
use buttress::pressure::Gauge;
use serde::{Deserialize, Serialize};

use super::known::Progress;

/// The learner's counters and states, shared by its parts.
#[derive(Debug, Default)]
pub(super) struct Shared {
    inner: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    source: String,
    progress: Progress,
    store: &'static str,
    every_events: u64,
    resumed_from: Option<Progress>,
    last_checkpoint: Option<(SystemTime, Progress)>,
    saves: u64,
    failed_saves: u64,
    stored_patterns: u64,
    paused_since: Option<SystemTime>,
    pauses: u64,
    peak_unprocessed: u64,
    last_resumed_at: Option<u64>,
    journal_unread: u64,
    read: ReadStats,
    write_failures: u64,
}

/// `GET /learning/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearningStats {
    /// Saving progress.
    pub checkpointing: Checkpointing,
    /// Reading ahead of processing.
    pub backpressure: Backpressure,
    /// Patterns seen again.
    pub deduplication: Deduplication,
    /// Patterns learned.
    pub patterns: Patterns,
    /// The journal as read.
    pub journal: JournalStats,
}

/// Saving progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpointing {
    /// `file` or `postgres`.
    pub store: String,
    /// The policy: a save every this many events.
    pub every_events: u64,
    /// The last save, `None` before the first.
    pub last_checkpoint: Option<Checkpoint>,
    /// Events processed since the last save (what a crash now would redo).
    pub events_since: u64,
    /// Where this run started: the checkpoint it resumed, `None` on a
    /// fresh start.
    pub resumed_from: Option<Checkpoint>,
    /// Saves done by this run.
    pub saves: u64,
    /// Saves that failed (tried again at the next event).
    pub failed_saves: u64,
}

/// One saved checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// When it was saved (RFC 3339), `None` for the one resumed.
    pub at: Option<String>,
    /// Events processed up to it.
    pub events: u64,
    /// The journal position it resumes from (`file:offset`).
    pub cursor: String,
}

/// Reading ahead of processing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backpressure {
    /// Bytes of records read and not yet processed.
    pub unprocessed_bytes: u64,
    /// Reading pauses at this many.
    pub high_watermark: u64,
    /// And goes on at this many.
    pub low_watermark: u64,
    /// Whether reading is paused now.
    pub paused: bool,
    /// Since when (RFC 3339), while paused.
    pub paused_since: Option<String>,
    /// Times reading paused.
    pub pauses: u64,
    /// The most bytes read and not processed at once.
    pub peak_unprocessed_bytes: u64,
    /// The level at which reading went on after the last pause.
    pub last_resumed_at_bytes: Option<u64>,
    /// Bytes in the journal not read yet.
    pub journal_unread_bytes: u64,
}

/// Patterns seen again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deduplication {
    /// Events with a pattern.
    pub seen: u64,
    /// Those whose pattern was already known.
    pub duplicates: u64,
    /// `duplicates / seen` (0 when nothing was seen).
    pub ratio: f64,
}

/// Patterns learned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Patterns {
    /// Distinct patterns learned from the events processed.
    pub learned: u64,
    /// Rows in the pattern store when this run started plus those it wrote.
    pub stored: u64,
    /// Batches whose write failed (and was tried again).
    pub write_failures: u64,
}

/// The journal as read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalStats {
    /// Where the events come from: `journal` (this machine's) or
    /// `nats:<stream>` (then the cursor's offset is a stream sequence).
    #[serde(default)]
    pub source: String,
    /// Where the next event starts (`file:offset`).
    pub cursor: String,
    /// Events processed in all (by every run, from the checkpoint).
    pub events: u64,
    /// Records that were not query records.
    pub undecodable: u64,
    /// Torn or damaged records passed over by this run.
    pub corrupt_records: u64,
    /// Files removed by retention before they were read.
    pub missing_files: u64,
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn checkpoint(at: Option<SystemTime>, p: &Progress) -> Checkpoint {
    Checkpoint {
        at: at.map(rfc3339),
        events: p.events,
        cursor: cursor(p.cursor),
    }
}

fn cursor(c: Cursor) -> String {
    c.to_string()
}

impl Shared {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut crate::lock(&self.inner))
    }

    pub(super) fn started(
        &self,
        source: String,
        store: &'static str,
        every_events: u64,
        resumed: Option<Progress>,
        stored: u64,
    ) {
        self.with(|s| {
            s.source = source;
            s.store = store;
            s.every_events = every_events;
            s.resumed_from = resumed;
            s.progress = resumed.unwrap_or_default();
            s.stored_patterns = stored;
        });
    }

    pub(super) fn processed(&self, progress: Progress, written: u64) {
        self.with(|s| {
            s.progress = progress;
            s.stored_patterns += written;
        });
    }

    pub(super) fn saved(&self, progress: Progress) {
        self.with(|s| {
            s.saves += 1;
            s.last_checkpoint = Some((SystemTime::now(), progress));
        });
    }

    pub(super) fn save_failed(&self) {
        self.with(|s| s.failed_saves += 1);
    }

    pub(super) fn write_failed(&self) {
        self.with(|s| s.write_failures += 1);
    }

    pub(super) fn paused(&self, level: u64) {
        self.with(|s| {
            s.pauses += 1;
            s.paused_since = Some(SystemTime::now());
            s.peak_unprocessed = s.peak_unprocessed.max(level);
        });
    }

    pub(super) fn resumed(&self, level: u64) {
        self.with(|s| {
            s.paused_since = None;
            s.last_resumed_at = Some(level);
        });
    }

    pub(super) fn read(&self, level: u64, unread: u64, read: ReadStats) {
        self.with(|s| {
            s.peak_unprocessed = s.peak_unprocessed.max(level);
            s.journal_unread = unread;
            s.read = read;
        });
    }

    /// The progress processed so far.
    pub(super) fn progress(&self) -> Progress {
        self.with(|s| s.progress)
    }

    pub(super) fn snapshot(&self, gauge: &Gauge) -> LearningStats {
        let config = gauge.config();
        self.with(|s| {
            let p = &s.progress;
            let seen = p.events - p.undecodable;
            let since = s
                .last_checkpoint
                .as_ref()
                .map(|(_, c)| c)
                .or(s.resumed_from.as_ref());
            LearningStats {
                checkpointing: Checkpointing {
                    store: s.store.to_owned(),
                    every_events: s.every_events,
                    last_checkpoint: s
                        .last_checkpoint
                        .as_ref()
                        .map(|(t, c)| checkpoint(Some(*t), c)),
                    events_since: p.events - since.map_or(0, |c| c.events),
                    resumed_from: s.resumed_from.as_ref().map(|c| checkpoint(None, c)),
                    saves: s.saves,
                    failed_saves: s.failed_saves,
                },
                backpressure: Backpressure {
                    unprocessed_bytes: gauge.level(),
                    high_watermark: config.watermarks.high(),
                    low_watermark: config.watermarks.low(),
                    paused: gauge.is_paused(),
                    paused_since: s.paused_since.map(rfc3339),
                    pauses: s.pauses,
                    peak_unprocessed_bytes: s.peak_unprocessed,
                    last_resumed_at_bytes: s.last_resumed_at,
                    journal_unread_bytes: s.journal_unread,
                },
                deduplication: Deduplication {
                    seen,
                    duplicates: p.duplicates,
                    ratio: if seen == 0 {
                        0.0
                    } else {
                        p.duplicates as f64 / seen as f64
                    },
                },
                patterns: Patterns {
                    learned: p.patterns,
                    stored: s.stored_patterns,
                    write_failures: s.write_failures,
                },
                journal: JournalStats {
                    source: s.source.clone(),
                    cursor: cursor(p.cursor),
                    events: p.events,
                    undecodable: p.undecodable,
                    corrupt_records: s.read.corrupt_records,
                    missing_files: s.read.missing_files,
                },
            }
        })
    }
}
