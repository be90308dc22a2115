//! The outbox relay binary against the machine's PostgreSQL and NATS
//! JetStream (`DATABASE_URL`, `NATS_URL`), each test on its own table and
//! stream:
//!
//! * NATS unreachable for 10 s (the relay pointed at a closed port) while
//!   producers commit events with their data (and roll some back): the
//!   pending and oldest-age metrics rise, a first SIGTERM cannot drain and
//!   a second exits at once; a relay pointed back at NATS publishes every
//!   committed event exactly once (counted by message id), none of the
//!   rolled-back ones.
//! * `kill -9` at 20 moments in the middle of batches: every event in the
//!   stream exactly once, the repeats dropped by the stream.
//! * The learner's pattern writes as a producer: one event per new pattern,
//!   in the statement that stores it.
//!
//! Without the services each test says why and passes, unless
//! `BUTTRESS_REQUIRE_SERVICES=1`.

// Helpers outside #[test] functions panic on failure too: that is the report.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use buttress_stack::nats::JetStream;
use buttress_stack::outbox::{EventType, OutboxTable};
use support::process::{Run, field};

const RELAY: &str = env!("CARGO_BIN_EXE_outbox-relay");

/// A table, a stream and subjects of this test's own.
struct Setup {
    table: OutboxTable,
    data: String,
    stream: String,
    prefix: String,
    context: jetstream::Context,
    pg: tokio_postgres::Client,
}

async fn setup(name: &str) -> Option<Setup> {
    let pg = support::postgres().await?;
    let nats = buttress_test_support::services::nats_url();
    let tag = format!("{name}_{}", std::process::id());
    let stream = format!("OUTBOX_TEST_{}", tag.to_uppercase());
    let prefix = format!("test.{tag}");
    let js = JetStream::new(
        &nats,
        &stream,
        &[&format!("{prefix}.>")],
        Duration::from_secs(5),
    );
    let context = match js.context().await {
        Ok(c) => c.clone(),
        Err(e) => {
            buttress_test_support::services::unavailable("NATS", "NATS_URL", &nats, e);
            return None;
        }
    };
    let table = OutboxTable::new(&format!("outbox_{tag}")).unwrap();
    let data = format!("outbox_data_{tag}");
    pg.batch_execute(&format!(
        "DROP TABLE IF EXISTS {t}; DROP TABLE IF EXISTS {data};
         CREATE TABLE {data} (id BIGINT PRIMARY KEY, note TEXT NOT NULL);",
        t = table.name()
    ))
    .await
    .unwrap();
    // The stream starts empty.
    context
        .get_stream(&stream)
        .await
        .unwrap()
        .purge()
        .await
        .unwrap();
    Some(Setup {
        table,
        data,
        stream,
        prefix,
        context,
        pg,
    })
}

impl Setup {
    fn vars(&self, nats: &str) -> Vec<(String, String)> {
        [
            (
                "DATABASE_URL",
                buttress_test_support::services::database_url(),
            ),
            ("NATS_URL", nats.to_owned()),
            ("BIND", "127.0.0.1".to_owned()),
            ("PORT", "0".to_owned()),
            ("OUTBOX_TABLE", self.table.name().to_owned()),
            ("OUTBOX_STREAM", self.stream.clone()),
            ("OUTBOX_SUBJECT_PREFIX", self.prefix.clone()),
            ("POLL_INTERVAL", "20ms".to_owned()),
            ("STATS_INTERVAL", "100ms".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    async fn unsent(&self) -> i64 {
        self.pg
            .query_one(
                &format!(
                    "SELECT count(*) FROM {} WHERE sent_at IS NULL",
                    self.table.name()
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }

    async fn cleanup(self) {
        self.pg
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS {}; DROP TABLE IF EXISTS {};",
                self.table.name(),
                self.data
            ))
            .await
            .unwrap();
        let _ = self.context.delete_stream(&self.stream).await;
    }
}

/// `GET path` on `address`: the status and the body as text.
fn get_text(address: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(address).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_owned())
}

/// The value of `line_start` (`name` or `name{labels}`) in Prometheus text.
fn metric(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(line_start) && l[line_start.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_unreachable_for_10_s_loses_nothing_and_publishes_each_event_once() {
    let Some(setup) = setup("down").await else {
        return;
    };
    let closed = format!("nats://127.0.0.1:{}", support::closed_port());
    let mut relay = Run::start(RELAY, &setup.vars(&closed));
    relay.until("the relay's start", |l| l.contains("relaying the outbox"));
    let address = relay.address();

    // Producers: each event committed with its data row; every tenth
    // transaction rolled back, event and data both.
    let producing = Arc::new(AtomicBool::new(true));
    let mut producers = Vec::new();
    let created = EventType::new("item.created").unwrap();
    let note = EventType::new("item.noted").unwrap();
    for p in 0..4i64 {
        let (table, data, producing) = (setup.table.clone(), setup.data.clone(), producing.clone());
        let (created, note) = (created.clone(), note.clone());
        producers.push(tokio::spawn(async move {
            let mut pg = support::postgres().await.unwrap();
            let mut committed = BTreeSet::new();
            let mut n = 0i64;
            while producing.load(Ordering::Relaxed) {
                let id = p * 1_000_000 + n;
                n += 1;
                let tx = pg.transaction().await.unwrap();
                tx.execute(&format!("INSERT INTO {data} VALUES ($1, 'x')"), &[&id])
                    .await
                    .unwrap();
                let kind = if n % 3 == 0 { &note } else { &created };
                let event = table
                    .enqueue(&tx, kind, &format!(r#"{{"item": {id}}}"#))
                    .await
                    .unwrap();
                if n % 10 == 0 {
                    tx.rollback().await.unwrap();
                } else {
                    tx.commit().await.unwrap();
                    committed.insert(table.message_id(event));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            committed
        }));
    }

    // 10 s of NATS down: what is pending, and how old the oldest is, rise.
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let (_, text) = get_text(&address, "/metrics");
        samples.push((
            metric(&text, "outbox_depth").unwrap_or(0.0),
            metric(&text, "outbox_oldest_pending_seconds").unwrap_or(0.0),
            metric(&text, r#"outbox_pending_events{event_type="item.created"}"#).unwrap_or(0.0),
            metric(&text, r#"outbox_pending_events{event_type="item.noted"}"#).unwrap_or(0.0),
        ));
    }
    producing.store(false, Ordering::Relaxed);
    let mut committed = BTreeSet::new();
    for p in producers {
        committed.extend(p.await.unwrap());
    }
    let (first, last) = (samples[1], samples[samples.len() - 1]);
    assert!(
        last.0 > first.0 && last.1 > first.1 + 5.0 && last.1 >= 8.0,
        "depth and age rise while NATS is down: {samples:?}"
    );
    assert!(last.2 > 0.0 && last.3 > 0.0, "{samples:?}");
    assert_eq!(last.2 + last.3, last.0, "{samples:?}");
    let (status, health) = get_text(&address, "/health");
    assert_eq!(status, 503, "{health}");
    assert!(health.contains("nats"), "{health}");
    let (_, stats) = get_text(&address, "/outbox/stats");
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["published"], 0, "{stats}");
    assert!(stats["failed_batches"].as_u64().unwrap() > 0, "{stats}");
    assert!(
        support::ids_in_stream(&setup.context, &setup.stream)
            .await
            .is_empty()
    );

    // A first signal drains, which cannot finish without NATS; a second
    // exits at once.
    buttress_test_support::process::signal(&relay.child, "TERM");
    assert!(
        relay.wait_exit(Duration::from_secs(1)).is_none(),
        "still draining"
    );
    buttress_test_support::process::signal(&relay.child, "TERM");
    let forced = Instant::now();
    let status = relay.wait_exit(Duration::from_secs(5)).expect("exits");
    assert_eq!(status.code(), Some(130), "{}", relay.log.join("\n"));
    assert!(forced.elapsed() < Duration::from_secs(2));

    // Back to the real NATS: everything committed arrives, once.
    let mut relay = Run::start(
        RELAY,
        &setup.vars(&buttress_test_support::services::nats_url()),
    );
    relay.until("the relay's start", |l| l.contains("relaying the outbox"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while setup.unsent().await > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(setup.unsent().await, 0, "{}", relay.log.join("\n"));
    let ids = support::ids_in_stream(&setup.context, &setup.stream).await;
    let in_stream: BTreeSet<String> = ids.keys().cloned().collect();
    assert!(
        committed.len() > 1000,
        "{} events committed",
        committed.len()
    );
    assert_eq!(in_stream, committed, "exactly the committed events");
    assert!(ids.values().all(|n| *n == 1), "each once");
    // The metrics fall back to nothing pending.
    let address = relay.address();
    let fell = support::eventually(Duration::from_secs(10), || {
        let (_, text) = get_text(&address, "/metrics");
        metric(&text, "outbox_depth") == Some(0.0)
            && metric(&text, "outbox_oldest_pending_seconds") == Some(0.0)
    })
    .await;
    assert!(fell, "{}", get_text(&address, "/metrics").1);
    buttress_test_support::process::signal(&relay.child, "TERM");
    let status = relay.wait_exit(Duration::from_secs(15)).expect("exits");
    assert!(status.success(), "{status}\n{}", relay.log.join("\n"));
    setup.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_the_middle_of_batches_publishes_each_event_once() {
    const EVENTS: i64 = 20_000;
    const KILLS: usize = 20;
    let Some(setup) = setup("kill").await else {
        return;
    };
    let mut pg = support::postgres().await.unwrap();
    setup.table.prepare(&mut pg).await.unwrap();
    pg.execute(
        &format!(
            "INSERT INTO {} (event_type, payload)
             SELECT 'item.created', jsonb_build_object('item', n) FROM generate_series(1, $1::bigint) n",
            setup.table.name()
        ),
        &[&EVENTS],
    )
    .await
    .unwrap();
    let mut vars = setup.vars(&buttress_test_support::services::nats_url());
    vars.push(("BATCH_SIZE".to_owned(), "100".to_owned()));
    let mut rng = fastrand::Rng::with_seed(21);
    let mut duplicates = 0;
    let mut relayed = 0;
    for _ in 0..KILLS {
        let mut relay = Run::start(RELAY, &vars);
        relay.until("a batch relayed", |l| l.contains("relayed a batch"));
        std::thread::sleep(Duration::from_micros(rng.u64(0..20_000)));
        relay.kill_9();
        relayed += relay
            .log
            .iter()
            .filter(|l| l.contains("relayed a batch"))
            .count();
        duplicates += relay
            .log
            .iter()
            .filter_map(|l| field(l, "duplicates"))
            .sum::<u64>();
    }
    let mut relay = Run::start(RELAY, &vars);
    relay.until("the relay's start", |l| l.contains("relaying the outbox"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while setup.unsent().await > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    buttress_test_support::process::signal(&relay.child, "TERM");
    let status = relay.wait_exit(Duration::from_secs(15)).expect("exits");
    assert!(status.success(), "{status}");
    duplicates += relay
        .log
        .iter()
        .filter_map(|l| field(l, "duplicates"))
        .sum::<u64>();
    assert_eq!(setup.unsent().await, 0);
    let ids = support::ids_in_stream(&setup.context, &setup.stream).await;
    assert_eq!(ids.len() as i64, EVENTS, "every event in the stream");
    assert!(ids.values().all(|n| *n == 1), "each once");
    let expected: BTreeSet<String> = (1..=EVENTS).map(|id| setup.table.message_id(id)).collect();
    assert_eq!(ids.keys().cloned().collect::<BTreeSet<_>>(), expected);
    // Some kills fell between publishing a batch and marking it: the next
    // relay published it again, and the stream dropped the repeats.
    assert!(
        duplicates > 0,
        "no kill landed between publish and mark in {KILLS} kills ({relayed} batches)"
    );
    eprintln!(
        "kill -9 x{KILLS}: {EVENTS} events each once in the stream; {duplicates} repeats dropped by the stream"
    );
    setup.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_new_pattern_adds_one_event_in_its_statement() {
    use buttress::journal::Cursor;
    use buttress_stack::learner::{NewPattern, PATTERN_LEARNED, PatternStore};
    let Some(setup) = setup("learner").await else {
        return;
    };
    let patterns_table = format!("learned_patterns_outbox_{}", std::process::id());
    setup
        .pg
        .batch_execute(&format!("DROP TABLE IF EXISTS {patterns_table}"))
        .await
        .unwrap();
    let pool =
        buttress_stack::pg::pool(&buttress_test_support::services::database_url(), "test", 2)
            .unwrap();
    let store = PatternStore::Postgres {
        pool,
        table: patterns_table.clone(),
        outbox: Some(setup.table.clone()),
        source: "journal".to_owned(),
    };
    store.prepare().await.unwrap();
    let pattern = |n: u8| NewPattern {
        hash: [n; 32],
        at: Cursor {
            file: 1,
            offset: u64::from(n) * 10,
        },
        at_ms: 1000 + u64::from(n),
    };
    assert_eq!(store.insert(&[pattern(1), pattern(2)]).await.unwrap(), 2);
    // Stored already: no row, no event.
    assert_eq!(store.insert(&[pattern(2), pattern(3)]).await.unwrap(), 1);
    assert_eq!(store.insert(&[pattern(1)]).await.unwrap(), 0);
    let rows = setup
        .pg
        .query(
            &format!(
                "SELECT event_type, payload->>'hash', (payload->>'first_offset')::bigint
                 FROM {} ORDER BY id",
                setup.table.name()
            ),
            &[],
        )
        .await
        .unwrap();
    let mut events: Vec<(String, String, i64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    events.sort_by_key(|e| e.2);
    let hex = |n: u8| buttress_stack::learner::hex(&[n; 32]);
    assert_eq!(
        events,
        [
            (PATTERN_LEARNED.to_owned(), hex(1), 10),
            (PATTERN_LEARNED.to_owned(), hex(2), 20),
            (PATTERN_LEARNED.to_owned(), hex(3), 30),
        ]
    );
    setup
        .pg
        .batch_execute(&format!("DROP TABLE IF EXISTS {patterns_table}"))
        .await
        .unwrap();
    setup.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sent_events_past_keep_sent_are_deleted_and_no_others() {
    let Some(setup) = setup("prune").await else {
        return;
    };
    let mut pg = support::postgres().await.unwrap();
    let table = &setup.table;
    table.prepare(&mut pg).await.unwrap();
    let kind = EventType::new("item.created").unwrap();
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            table
                .enqueue(&pg, &kind, &format!("{{\"n\": {n}}}"))
                .await
                .unwrap(),
        );
    }
    // Two sent two hours ago, one sent now, two unsent.
    pg.execute(
        &format!(
            "UPDATE {} SET sent_at = now() - interval '2 hours' WHERE id = ANY($1)",
            table.name()
        ),
        &[&&ids[..2]],
    )
    .await
    .unwrap();
    let tx = pg.transaction().await.unwrap();
    assert_eq!(table.mark_sent(&tx, &ids[2..3]).await.unwrap(), 1);
    tx.commit().await.unwrap();
    assert_eq!(table.last_unsent(&pg).await.unwrap(), ids[4]);
    let keep = Duration::from_secs(3600);
    assert_eq!(
        table.prune(&pg, keep, 1).await.unwrap(),
        1,
        "at most the limit"
    );
    assert_eq!(table.prune(&pg, keep, 100).await.unwrap(), 1);
    assert_eq!(table.prune(&pg, keep, 100).await.unwrap(), 0);
    let left: Vec<i64> = pg
        .query(&format!("SELECT id FROM {} ORDER BY id", table.name()), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, ids[2..]);
    let pending = table.pending(&pg).await.unwrap();
    assert_eq!(pending.total(), 2);
    assert_eq!(pending.by_type.get("item.created"), Some(&2));
    setup.cleanup().await;
}
