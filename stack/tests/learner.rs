//! The learner against a real journal on disk (rotated, gzipped), with
//! patterns in memory and checkpoints in files: every pattern learned
//! once, exact statistics, a saved and resumed checkpoint, following the
//! journal as it grows, and its HTTP surface.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use buttress::journal::{Compression, Durability, Journal, JournalConfig, JournalReader};
use buttress_stack::knowledge::{JOURNAL_NAME, QueryRecord};
use buttress_stack::learner::{DEFAULT_POLICY, Hash, parse_hash};
use support::{LOCAL, call, eventually, learner, query_record, questions, temp_dir};

fn journal(dir: &std::path::Path) -> Journal {
    let config = JournalConfig::default()
        .durability(Durability::Buffered)
        .rotate_bytes(Some(32 << 10))
        .compression(Compression::Gzip);
    Journal::open(dir.join("telemetry"), JOURNAL_NAME, config).expect("journal")
}

/// Each pattern's first position, as the test reads the journal itself.
fn first_positions(dir: &std::path::Path) -> BTreeMap<Hash, buttress::journal::Cursor> {
    let mut reader = JournalReader::open(dir.join("telemetry"), JOURNAL_NAME).expect("reader");
    let mut first = BTreeMap::new();
    while let Some((raw, at)) = reader.next_raw().expect("readable") {
        if let Ok(record) = serde_json::from_slice::<QueryRecord>(raw) {
            let hash = parse_hash(&record.question_sha256).expect("hex");
            first.entry(hash).or_insert(at);
        }
    }
    first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pattern_is_learned_once_and_the_stats_say_what_happened() {
    let dir = temp_dir("learner-once");
    let asked = questions(2_000, 0.18, 7);
    let journal = journal(&dir);
    for (n, q) in asked.iter().enumerate() {
        journal
            .append_blocking(&query_record(n as u64, q, 0))
            .unwrap();
        if n % 700 == 0 {
            // Not a query record: counted and passed over.
            journal
                .append_blocking(&serde_json::json!({"other": n}))
                .unwrap();
        }
    }
    journal.close().unwrap();
    let total = 2_000 + 3;
    let distinct: HashSet<String> = asked
        .iter()
        .map(|q| buttress_stack::knowledge::question_hash(q))
        .collect();
    assert!(
        (distinct.len() as f64) < 2_000.0 * 0.86,
        "about 18 % duplicates"
    );

    let learner = learner(&dir, DEFAULT_POLICY, &[]);
    let task = learner.spawn();
    assert!(
        eventually(Duration::from_secs(60), || learner.progress().events
            == total)
        .await,
        "the learner caught up: {:?}",
        learner.progress()
    );
    let stats = learner.stats();
    assert_eq!(stats.journal.events, total);
    assert_eq!(stats.journal.undecodable, 3);
    assert_eq!(stats.deduplication.seen, 2_000);
    assert_eq!(
        stats.deduplication.duplicates,
        2_000 - distinct.len() as u64
    );
    let ratio = stats.deduplication.duplicates as f64 / 2_000.0;
    assert!((stats.deduplication.ratio - ratio).abs() < 1e-9);
    assert!((0.15..=0.20).contains(&ratio), "{ratio}");
    assert_eq!(stats.patterns.learned, distinct.len() as u64);
    assert_eq!(stats.patterns.stored, distinct.len() as u64);
    assert_eq!(stats.checkpointing.store, "file");
    assert_eq!(stats.checkpointing.every_events, 100);
    assert_eq!(stats.checkpointing.saves, total / 100);
    assert_eq!(stats.checkpointing.events_since, total % 100);
    assert_eq!(
        stats
            .checkpointing
            .last_checkpoint
            .as_ref()
            .map(|c| c.events),
        Some(total / 100 * 100)
    );
    assert!(stats.checkpointing.resumed_from.is_none());
    assert!(!stats.backpressure.paused);
    assert_eq!(stats.backpressure.unprocessed_bytes, 0);
    assert_eq!(stats.backpressure.journal_unread_bytes, 0);
    assert_eq!(stats.journal.corrupt_records, 0);

    // Each pattern once, at the position of its first occurrence.
    let stored = learner.patterns().all().await.unwrap();
    let stored: BTreeMap<Hash, _> = stored
        .into_iter()
        .map(|p| (p.hash, p.at.expect("from this source")))
        .collect();
    assert_eq!(stored, first_positions(&dir));

    // The journal grows: the learner follows.
    let journal = journal_again(&dir);
    for n in 0..50u64 {
        journal
            .append_blocking(&query_record(10_000 + n, &format!("new question {n}"), 0))
            .unwrap();
    }
    journal.close().unwrap();
    assert!(
        eventually(Duration::from_secs(30), || learner.progress().events
            == total + 50)
        .await,
        "followed the journal: {:?}",
        learner.progress()
    );

    // A graceful stop saves what is processed.
    learner.stop().await;
    task.await.unwrap().unwrap();
    let stats = learner.stats();
    assert_eq!(stats.checkpointing.events_since, 0);
    assert_eq!(
        stats
            .checkpointing
            .last_checkpoint
            .as_ref()
            .map(|c| c.events),
        Some(total + 50)
    );

    // A new learner resumes there, and has nothing to redo.
    let again = support::learner(&dir, DEFAULT_POLICY, &[]);
    let task = again.spawn();
    assert!(
        eventually(Duration::from_secs(30), || again
            .stats()
            .checkpointing
            .resumed_from
            .is_some())
        .await
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stats = again.stats();
    assert_eq!(stats.checkpointing.resumed_from.unwrap().events, total + 50);
    assert_eq!(stats.journal.events, total + 50);
    assert_eq!(stats.checkpointing.events_since, 0);
    again.stop().await;
    task.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

fn journal_again(dir: &std::path::Path) -> Journal {
    journal(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_surface_answers() {
    let dir = temp_dir("learner-http");
    let journal = journal(&dir);
    for n in 0..10u64 {
        journal
            .append_blocking(&query_record(n, &format!("q{}", n % 4), 0))
            .unwrap();
    }
    journal.close().unwrap();
    let learner = learner(&dir, DEFAULT_POLICY, &[]);
    let router = learner.router();
    let (status, _, _) = call(&router, LOCAL, "GET", "/readyz", "").await;
    assert_eq!(status, 503, "not ready before it resumed");
    let task = learner.spawn();
    assert!(eventually(Duration::from_secs(30), || learner.progress().events == 10).await);
    let (status, _, _) = call(&router, LOCAL, "GET", "/readyz", "").await;
    assert_eq!(status, 200);
    let (status, _, stats) = call(&router, LOCAL, "GET", "/learning/stats", "").await;
    assert_eq!(status, 200);
    assert_eq!(stats["deduplication"]["seen"], 10);
    assert_eq!(stats["deduplication"]["duplicates"], 6);
    assert_eq!(stats["patterns"]["learned"], 4);
    assert_eq!(stats["checkpointing"]["store"], "file");
    assert_eq!(stats["checkpointing"]["events_since"], 10);
    assert_eq!(stats["backpressure"]["high_watermark"], 100_000_000);
    assert_eq!(stats["backpressure"]["low_watermark"], 50_000_000);
    assert_eq!(stats["backpressure"]["paused"], false);
    let (status, _, health) = call(&router, LOCAL, "GET", "/health", "").await;
    assert_eq!(status, 200, "{health}");
    assert!(health.to_string().contains("patterns"), "{health}");
    let (status, _, _) = call(&router, LOCAL, "GET", "/nope", "").await;
    assert_eq!(status, 404);
    learner.stop().await;
    task.await.unwrap().unwrap();
    let stats = learner.stats();
    assert_eq!(stats.checkpointing.saves, 1, "saved once, on stop");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_without_the_patterns_dependency_is_refused_with_its_name() {
    let dir = temp_dir("learner-policy");
    let policy_file = dir.join("learner.toml");
    std::fs::write(&policy_file, "[service]\nname = \"learner\"\n").unwrap();
    let vars = [
        ("POLICY_FILE".to_owned(), policy_file.display().to_string()),
        ("JOURNAL_DIR".to_owned(), dir.display().to_string()),
    ]
    .into_iter()
    .collect();
    let config =
        buttress_stack::learner::LearnerConfig::from_env(&buttress_stack::env::Env::from_map(vars))
            .unwrap();
    let e = buttress_stack::learner::Learner::new(config).unwrap_err();
    assert!(e.to_string().contains("dependencies.patterns"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
