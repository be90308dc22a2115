//! Telemetry past one machine, against the machine's NATS JetStream and
//! PostgreSQL (`NATS_URL`, `DATABASE_URL`), on a stream and tables of the
//! test's own:
//!
//! 1. the journal relay binary ships a 5,000-event journal (rotated and
//!    gzipped) while killed with `kill -9` at 10 random moments: in the end
//!    the stream holds every record exactly once, in journal order, with
//!    its position as its message id;
//! 2. the learner binary reads that stream through its durable consumer,
//!    killed with `kill -9` at 20 random moments: every pattern is in
//!    PostgreSQL exactly once, at the stream sequence of its first
//!    occurrence, no restart redoes more than 100 events, and
//!    `/learning/stats` counts as one pass would.
//!
//! Without the services it says why and passes, unless
//! `BUTTRESS_REQUIRE_SERVICES=1`.

// Helpers outside #[test] functions panic on failure too: that is the report.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use buttress::journal::{Compression, Cursor, Durability, Journal, JournalConfig, JournalReader};
use buttress_stack::client::JsonClient;
use buttress_stack::journal_relay::message_id;
use buttress_stack::knowledge::{JOURNAL_NAME, QueryRecord};
use buttress_stack::learner::{Hash, parse_hash};
use buttress_stack::nats::JetStream;
use support::learner_runs::{KillRuns, kill_9_at_random_moments, stats_once_processed};
use support::process::Run;
use support::{query_record, questions, temp_dir};

const EVENTS: usize = 5_000;
const EVERY: u64 = 100;
const RELAY: &str = env!("CARGO_BIN_EXE_journal-relay");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_travels_once_and_a_learner_elsewhere_learns_it_once() {
    let Some(pg) = support::postgres().await else {
        return;
    };
    let nats = buttress_test_support::services::nats_url();
    let tag = std::process::id();
    let stream = format!("TELEMETRY_TEST_{tag}");
    let machine = format!("machine-{tag}");
    // The stream as the relay creates it; emptied first.
    let prefix = format!("telemetry.test{tag}");
    let js = JetStream::new(
        &nats,
        &stream,
        &[&format!("{prefix}.>")],
        Duration::from_secs(5),
    )
    .duplicate_window(Duration::from_secs(600));
    let context = match js.context().await {
        Ok(c) => c.clone(),
        Err(e) => {
            buttress_test_support::services::unavailable("NATS", "NATS_URL", &nats, e);
            return;
        }
    };
    let _ = context.delete_stream(&stream).await;

    // The journal: rotated every 64 KiB and gzipped behind.
    let dir = temp_dir("telemetry-relay");
    let asked = questions(EVENTS, 0.18, 7);
    let config = JournalConfig::default()
        .durability(Durability::Buffered)
        .rotate_bytes(Some(64 << 10))
        .compression(Compression::Gzip);
    let journal = Journal::open(dir.join("telemetry"), JOURNAL_NAME, config).unwrap();
    for (n, q) in asked.iter().enumerate() {
        journal
            .append_blocking(&query_record(n as u64, q, 0))
            .unwrap();
    }
    journal.close().unwrap();
    let mut records: Vec<(Cursor, Hash)> = Vec::new();
    let mut reader = JournalReader::open(dir.join("telemetry"), JOURNAL_NAME).unwrap();
    while let Some(record) = reader.next_record::<QueryRecord>().unwrap() {
        records.push((
            record.cursor,
            parse_hash(&record.event.question_sha256).unwrap(),
        ));
    }
    assert_eq!(records.len(), EVENTS);

    // 1. The relay, killed at random moments, then run to the end.
    let relay_vars: Vec<(String, String)> = [
        ("NATS_URL", nats.clone()),
        ("BIND", "127.0.0.1".to_owned()),
        ("PORT", "0".to_owned()),
        ("JOURNAL_DIR", dir.join("telemetry").display().to_string()),
        ("CHECKPOINT_DIR", dir.join("relay").display().to_string()),
        ("MACHINE_ID", machine.clone()),
        ("TELEMETRY_STREAM", stream.clone()),
        ("TELEMETRY_SUBJECT_PREFIX", prefix.clone()),
        ("BATCH_SIZE", "50".to_owned()),
        ("POLL_INTERVAL", "20ms".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut rng = fastrand::Rng::with_seed(3);
    let mut repeats = 0u64;
    for _ in 0..10 {
        let mut run = Run::start(RELAY, &relay_vars);
        run.until("a batch shipped", |l| l.contains("shipped a batch"));
        std::thread::sleep(Duration::from_micros(rng.u64(0..10_000)));
        run.kill_9();
        repeats += duplicates(&run.log);
    }
    let mut run = Run::start(RELAY, &relay_vars);
    let address = run.address();
    let client = JsonClient::new("journal-relay", &format!("http://{address}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats: serde_json::Value = client.get("/relay/stats").await.unwrap();
        if stats["shipped"]["records"] == EVENTS as u64 {
            assert_eq!(stats["unread_bytes"], 0, "{stats}");
            break;
        }
        assert!(Instant::now() < deadline, "not shipped in 60 s: {stats}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    buttress_test_support::process::signal(&run.child, "TERM");
    let status = run.wait_exit(Duration::from_secs(15)).expect("exits");
    assert!(status.success(), "{status}\n{}", run.log.join("\n"));
    repeats += duplicates(&run.log);

    let messages = support::messages_in_stream(&context, &stream).await;
    let ids: Vec<String> = messages.iter().map(|(_, id, _)| id.clone()).collect();
    let expected: Vec<String> = records
        .iter()
        .map(|(at, _)| message_id(&machine, *at))
        .collect();
    assert_eq!(ids.len(), EVENTS, "every record once in the stream");
    assert!(ids == expected, "in journal order, each once");
    assert!(
        repeats > 0,
        "no kill fell between publishing a batch and saving its cursor"
    );
    eprintln!(
        "journal relay: {EVENTS} records each once in the stream after 10 kill -9; {repeats} repeats dropped by the stream"
    );

    // 2. A learner on "another machine": no journal, the stream only.
    let patterns_table = format!("learned_patterns_nats_{tag}");
    let checkpoint_table = format!("learner_checkpoints_nats_{tag}");
    for table in [&patterns_table, &checkpoint_table] {
        pg.batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
            .await
            .unwrap();
    }
    let vars: Vec<(String, String)> = [
        (
            "DATABASE_URL",
            buttress_test_support::services::database_url(),
        ),
        ("TELEMETRY_SOURCE", "nats".to_owned()),
        ("NATS_URL", nats.clone()),
        ("TELEMETRY_STREAM", stream.clone()),
        ("BIND", "127.0.0.1".to_owned()),
        ("PORT", "0".to_owned()),
        ("JOURNAL_DIR", dir.join("nowhere").display().to_string()),
        ("LEARNER_NAME", format!("nats-kill-{tag}")),
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
    } = kill_9_at_random_moments(&vars, EVENTS as u64, 20, EVERY, 11);
    let stats = stats_once_processed(&mut run, EVENTS as u64).await;
    let distinct = records.iter().map(|r| r.1).collect::<HashSet<_>>();
    assert_eq!(stats.journal.events, EVENTS as u64, "{stats:?}");
    assert_eq!(stats.journal.source, format!("nats:{stream}"));
    assert_eq!(
        stats.deduplication.duplicates,
        (EVENTS - distinct.len()) as u64
    );
    assert_eq!(stats.patterns.learned, distinct.len() as u64);
    assert_eq!(stats.patterns.stored, distinct.len() as u64);
    assert_eq!(
        stats.checkpointing.resumed_from.as_ref().map(|c| c.events),
        Some(from)
    );
    buttress_test_support::process::signal(&run.child, "TERM");
    let status = run.wait_exit(Duration::from_secs(15)).expect("exits");
    assert!(status.success(), "{status}\n{}", run.log.join("\n"));

    // Exactly once, each at the stream sequence of its first occurrence.
    let mut first: BTreeMap<Hash, u64> = BTreeMap::new();
    for ((seq, _, _), (_, hash)) in messages.iter().zip(&records) {
        first.entry(*hash).or_insert(*seq);
    }
    let rows = pg
        .query(
            &format!("SELECT hash, first_file, first_offset, source FROM {patterns_table}"),
            &[],
        )
        .await
        .unwrap();
    let stored: BTreeMap<Hash, u64> = rows
        .iter()
        .map(|r| {
            let hash: String = r.get(0);
            let (file, offset, source): (i64, i64, String) = (r.get(1), r.get(2), r.get(3));
            assert_eq!(
                (file, source.as_str()),
                (0, format!("nats:{stream}").as_str())
            );
            (parse_hash(&hash).unwrap(), offset as u64)
        })
        .collect();
    assert_eq!(rows.len(), stored.len(), "no pattern stored twice");
    assert_eq!(stored, first, "every pattern once, at its first occurrence");
    let max = redone.iter().max().copied().unwrap_or(0);
    assert!(max <= EVERY);
    eprintln!(
        "learner from NATS: 20 kills; events redone per restart: max {max}, mean {:.1}",
        redone.iter().sum::<u64>() as f64 / redone.len() as f64
    );

    for table in [&patterns_table, &checkpoint_table] {
        pg.batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
            .await
            .unwrap();
    }
    let _ = context.delete_stream(&stream).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The repeats a relay's log says the stream dropped.
fn duplicates(log: &[String]) -> u64 {
    log.iter()
        .filter_map(|l| support::process::field(l, "duplicates"))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_gone_from_the_stream_are_passed_over_and_the_rest_learned() {
    let nats = buttress_test_support::services::nats_url();
    let tag = std::process::id();
    let stream = format!("TELEMETRY_GAP_{tag}");
    let subject = format!("telemetry.gap{tag}.machine");
    let js = JetStream::new(&nats, &stream, &[&subject], Duration::from_secs(5));
    let context = match js.context().await {
        Ok(c) => c.clone(),
        Err(e) => {
            buttress_test_support::services::unavailable("NATS", "NATS_URL", &nats, e);
            return;
        }
    };
    let mut nats_stream = context.get_stream(&stream).await.unwrap();
    nats_stream.purge().await.unwrap();
    // 300 events of 300 distinct questions; 11 deleted from the middle.
    let asked = questions(300, 0.0, 5);
    let batch = asked.iter().enumerate().map(|(n, q)| {
        let record = query_record(n as u64, q, 0);
        (
            subject.clone(),
            format!("gap:{n}"),
            serde_json::to_vec(&record).unwrap().into(),
        )
    });
    assert_eq!(js.publish_batch(batch).await.unwrap(), 0);
    let first = nats_stream.info().await.unwrap().state.first_sequence;
    for seq in first + 100..first + 111 {
        nats_stream.delete_message(seq).await.unwrap();
    }

    let dir = temp_dir("learner-gap");
    let learner = support::learner(
        &dir,
        buttress_stack::learner::DEFAULT_POLICY,
        &[
            ("TELEMETRY_SOURCE", "nats"),
            ("NATS_URL", &nats),
            ("TELEMETRY_STREAM", &stream),
        ],
    );
    let task = learner.spawn();
    let done =
        support::eventually(Duration::from_secs(30), || learner.progress().events == 289).await;
    if !done && task.is_finished() {
        panic!("the learner ended: {:?}", task.await);
    }
    assert!(done, "{:?}", learner.stats());
    learner.stop().await;
    task.await.unwrap().unwrap();
    let stats = learner.stats();
    assert_eq!(stats.journal.events, 289);
    assert_eq!(stats.patterns.learned, 289);
    assert_eq!(
        stats.journal.cursor,
        format!("0:{}", first + 299),
        "{stats:?}"
    );
    let _ = context.delete_stream(&stream).await;
    let _ = std::fs::remove_dir_all(&dir);
}
