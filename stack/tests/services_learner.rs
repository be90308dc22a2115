//! The learner binary against the PostgreSQL at `DATABASE_URL` (patterns
//! and checkpoints there), killed with `kill -9` at 50 random moments over
//! a 10,000-event journal (rotated, gzipped, about 18 % duplicates): in the
//! end every event's pattern is in PostgreSQL exactly once, at the position
//! of its first occurrence, no restart redid more than 100 events, and
//! `/learning/stats` counts as one pass would. Without PostgreSQL it says
//! why and passes, unless `BUTTRESS_REQUIRE_SERVICES=1`.

mod support;

use std::collections::{BTreeMap, HashSet};

use buttress::journal::{Compression, Cursor, Durability, Journal, JournalConfig, JournalReader};
use buttress_stack::knowledge::{JOURNAL_NAME, QueryRecord, question_hash};
use buttress_stack::learner::{Hash, parse_hash};
use support::learner_runs::{KillRuns, kill_9_at_random_moments, stats_once_processed};
use support::{query_record, questions, temp_dir};

const EVENTS: usize = 10_000;
const KILLS: usize = 50;
const EVERY: u64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_loses_nothing_and_stores_nothing_twice() {
    let Some(pg) = support::postgres().await else {
        return;
    };
    let dir = temp_dir("learner-kill9");
    let tag = std::process::id();
    let patterns_table = format!("learned_patterns_kill_{tag}");
    let checkpoint_table = format!("learner_checkpoints_kill_{tag}");
    for table in [&patterns_table, &checkpoint_table] {
        pg.batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
            .await
            .unwrap();
    }

    // The journal: rotated every 128 KiB and gzipped behind.
    let asked = questions(EVENTS, 0.18, 42);
    let config = JournalConfig::default()
        .durability(Durability::Buffered)
        .rotate_bytes(Some(128 << 10))
        .compression(Compression::Gzip);
    let journal = Journal::open(dir.join("telemetry"), JOURNAL_NAME, config).unwrap();
    for (n, q) in asked.iter().enumerate() {
        journal
            .append_blocking(&query_record(n as u64, q, 0))
            .unwrap();
    }
    journal.close().unwrap();
    let mut first: BTreeMap<Hash, Cursor> = BTreeMap::new();
    let mut reader = JournalReader::open(dir.join("telemetry"), JOURNAL_NAME).unwrap();
    while let Some(record) = reader.next_record::<QueryRecord>().unwrap() {
        first
            .entry(parse_hash(&record.event.question_sha256).unwrap())
            .or_insert(record.cursor);
    }
    let distinct = asked
        .iter()
        .map(|q| question_hash(q))
        .collect::<HashSet<_>>();
    assert_eq!(first.len(), distinct.len());
    let gz = std::fs::read_dir(dir.join("telemetry"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "gz")
        })
        .count();
    assert!(gz >= 3, "several rotated files are gzipped ({gz})");

    let vars: Vec<(String, String)> = [
        (
            "DATABASE_URL",
            buttress_test_support::services::database_url(),
        ),
        ("BIND", "127.0.0.1".to_owned()),
        ("PORT", "0".to_owned()),
        ("JOURNAL_DIR", dir.join("telemetry").display().to_string()),
        ("LEARNER_NAME", format!("kill-test-{tag}")),
        ("PATTERNS_TABLE", patterns_table.clone()),
        ("CHECKPOINT_TABLE", checkpoint_table.clone()),
        ("POLL_INTERVAL", "20ms".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();

    let KillRuns {
        redone,
        last: mut run,
        from,
    } = kill_9_at_random_moments(&vars, EVENTS as u64, KILLS, EVERY, 9);
    let stats = stats_once_processed(&mut run, EVENTS as u64).await;
    assert_eq!(stats.journal.events, EVENTS as u64, "{stats:?}");
    assert_eq!(stats.deduplication.seen, EVENTS as u64);
    assert_eq!(
        stats.deduplication.duplicates,
        (EVENTS - distinct.len()) as u64
    );
    assert_eq!(stats.patterns.learned, distinct.len() as u64);
    assert_eq!(stats.patterns.stored, distinct.len() as u64);
    assert_eq!(stats.checkpointing.store, "postgres");
    assert_eq!(
        stats.checkpointing.resumed_from.as_ref().map(|c| c.events),
        Some(from)
    );
    buttress_test_support::process::signal(&run.child, "TERM");
    let status = run.child.wait().unwrap();
    run.drain();
    assert!(
        status.success(),
        "a graceful stop: {status}\n{}",
        run.log.join("\n")
    );
    assert!(run.log.iter().any(|l| l.contains("progress saved")));

    // Exactly once, each at its first occurrence.
    let rows = pg
        .query(
            &format!("SELECT hash, first_file, first_offset FROM {patterns_table}"),
            &[],
        )
        .await
        .unwrap();
    let stored: BTreeMap<Hash, Cursor> = rows
        .iter()
        .map(|r| {
            let hash: String = r.get(0);
            let (file, offset): (i64, i64) = (r.get(1), r.get(2));
            (
                parse_hash(&hash).unwrap(),
                Cursor {
                    file: file as u64,
                    offset: offset as u64,
                },
            )
        })
        .collect();
    assert_eq!(rows.len(), stored.len(), "no pattern stored twice");
    assert_eq!(stored.len(), first.len(), "no pattern lost");
    assert!(stored == first, "each pattern at its first occurrence");
    let max = redone.iter().max().copied().unwrap_or(0);
    eprintln!(
        "{} kills; events redone per restart: max {max}, mean {:.1}",
        KILLS,
        redone.iter().sum::<u64>() as f64 / redone.len() as f64
    );
    for table in [&patterns_table, &checkpoint_table] {
        pg.batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
            .await
            .unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
