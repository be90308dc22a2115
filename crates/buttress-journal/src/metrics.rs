//! The journal's metrics, registered once per journal.

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    pub(crate) appended: Counter,
    pub(crate) bytes: Counter,
    pub(crate) dropped: Counter,
    pub(crate) sealed: Counter,
    pub(crate) rotations: Counter,
    pub(crate) failures: Counter,
    pub(crate) compressed: Counter,
    pub(crate) removed: Counter,
    pub(crate) queue_bytes: Gauge,
    pub(crate) sync_seconds: Histogram,
    pub(crate) batch_records: Histogram,
}

impl Metrics {
    pub(crate) fn new(name: &str) -> Self {
        let n = name.to_owned();
        Metrics {
            appended: counter!("buttress_journal_appended_total", "name" => n.clone()),
            bytes: counter!("buttress_journal_bytes_total", "name" => n.clone()),
            dropped: counter!("buttress_journal_dropped_total", "name" => n.clone()),
            sealed: counter!("buttress_journal_sealed_tails_total", "name" => n.clone()),
            rotations: counter!("buttress_journal_rotations_total", "name" => n.clone()),
            failures: counter!("buttress_journal_failures_total", "name" => n.clone()),
            compressed: counter!("buttress_journal_compressed_files_total", "name" => n.clone()),
            removed: counter!("buttress_journal_removed_files_total", "name" => n.clone()),
            queue_bytes: gauge!("buttress_journal_queue_bytes", "name" => n.clone()),
            sync_seconds: histogram!("buttress_journal_sync_seconds", "name" => n.clone()),
            batch_records: histogram!("buttress_journal_batch_records", "name" => n),
        }
    }
}
