//! The learner's read-ahead under a backlog of more than 100 MB: reading
//! pauses at the high watermark (100 MB read and not processed) and goes on
//! only at the low one (50 MB), with the default policy's numbers, and
//! `/learning/stats` says so. Processing is held back by opening the
//! pattern writes' breaker, as an operator would from `/admin`.

mod support;

use std::time::Duration;

use buttress::journal::{Durability, Journal, JournalConfig};
use buttress_stack::knowledge::JOURNAL_NAME;
use buttress_stack::learner::{DEFAULT_POLICY, PATTERNS};
use support::{eventually, learner, query_record, temp_dir};

const HIGH: u64 = 100_000_000;
const LOW: u64 = 50_000_000;
/// One chunk handed over at once (1 MiB, plus a record).
const CHUNK: u64 = (1 << 20) + 2_048;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_pauses_above_100_mb_unprocessed_and_goes_on_at_50_mb() {
    let dir = temp_dir("learner-backlog");
    let config = JournalConfig::default()
        .durability(Durability::Buffered)
        .rotate_bytes(Some(64 << 20));
    let journal = Journal::open(dir.join("telemetry"), JOURNAL_NAME, config).unwrap();
    // About 1.1 KB a record: 120 MB in all.
    let count = 110_000u64;
    for n in 0..count {
        journal
            .append_blocking(&query_record(n, &format!("q{}", n % 5_000), 900))
            .unwrap();
    }
    journal.close().unwrap();

    let learner = learner(&dir, DEFAULT_POLICY, &[]);
    let breaker = learner
        .policy()
        .dependency(PATTERNS)
        .and_then(|d| d.breaker().cloned())
        .expect("the patterns breaker");
    breaker.force_open();
    let task = learner.spawn();
    assert!(
        eventually(Duration::from_secs(120), || learner
            .stats()
            .backpressure
            .paused)
        .await,
        "reading paused: {:?}",
        learner.stats().backpressure
    );
    // Stays paused while nothing is processed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = learner.stats();
    let b = &stats.backpressure;
    assert!(b.paused);
    assert_eq!(b.pauses, 1);
    assert!(b.paused_since.is_some());
    assert!(b.unprocessed_bytes >= HIGH, "{b:?}");
    assert!(b.unprocessed_bytes < HIGH + CHUNK, "{b:?}");
    assert_eq!(b.peak_unprocessed_bytes, b.unprocessed_bytes);
    assert!(b.journal_unread_bytes > 0, "{b:?}");
    assert_eq!(stats.journal.events, 0, "nothing stored, nothing processed");
    assert!(stats.patterns.write_failures >= 1);

    // Processing goes on: reading resumes only once it is down to 50 MB.
    breaker.reset();
    assert!(
        eventually(Duration::from_secs(120), || learner.progress().events
            == count)
        .await,
        "caught up: {:?}",
        learner.stats()
    );
    let stats = learner.stats();
    let b = &stats.backpressure;
    assert!(!b.paused);
    assert!(b.paused_since.is_none());
    let resumed_at = b.last_resumed_at_bytes.expect("resumed once at least");
    assert!(resumed_at <= LOW, "went on at {resumed_at} bytes");
    assert!(b.peak_unprocessed_bytes < HIGH + CHUNK, "{b:?}");
    assert_eq!(b.unprocessed_bytes, 0);
    assert_eq!(stats.patterns.learned, 5_000);
    assert_eq!(stats.deduplication.duplicates, count - 5_000);
    learner.stop().await;
    task.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
