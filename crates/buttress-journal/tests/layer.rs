//! The tower layer: one event per request and response, never failing a
//! response, and honouring the overflow policy when the queue is full.

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use buttress_core::ManualClock;
use buttress_fs::{Fs, SimFs};
use buttress_journal::{Durability, JournalConfig, JournalLayer, JournalReader, Overflow, events};
use buttress_test_support::mock::ReadyOnce;
use serde::{Deserialize, Serialize};
use support::{open_sim, sim_dir};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Call {
    path: String,
    ok: bool,
    ms: u64,
}

fn calls(fs: &SimFs) -> Vec<Call> {
    let mut reader = JournalReader::with_fs(Arc::new(fs.clone()) as Arc<dyn Fs>, sim_dir(), "t");
    std::iter::from_fn(|| reader.next_record::<Call>().expect("read").map(|r| r.event)).collect()
}

fn layer(
    journal: buttress_journal::Journal,
) -> JournalLayer<
    impl buttress_journal::RecordEvents<String, u32, &'static str, Pending = String, Event = Call>
    + Send
    + Sync,
> {
    JournalLayer::new(
        journal,
        events(
            |path: &String| path.clone(),
            |path, result: &Result<u32, &'static str>, took: Duration| {
                (path != "/skip").then(|| Call {
                    path,
                    ok: result.is_ok(),
                    ms: took.as_millis() as u64,
                })
            },
        ),
    )
}

#[tokio::test(start_paused = true)]
async fn each_request_leaves_one_event_with_its_result_and_time() {
    let fs = SimFs::new();
    let journal = open_sim(
        &fs,
        JournalConfig::default().durability(Durability::Buffered),
    );
    let mut svc = ServiceBuilder::new()
        .layer(layer(journal.clone()))
        .service(service_fn(|path: String| async move {
            tokio::time::sleep(Duration::from_millis(40)).await;
            if path == "/fail" {
                Err("boom")
            } else {
                Ok(path.len() as u32)
            }
        }));
    assert_eq!(svc.ready().await.unwrap().call("/a".into()).await, Ok(2));
    assert_eq!(
        svc.ready().await.unwrap().call("/fail".into()).await,
        Err("boom")
    );
    assert_eq!(svc.ready().await.unwrap().call("/skip".into()).await, Ok(5));
    journal.flush().await.unwrap();
    assert_eq!(
        calls(&fs),
        vec![
            Call {
                path: "/a".into(),
                ok: true,
                ms: 40
            },
            Call {
                path: "/fail".into(),
                ok: false,
                ms: 40
            },
        ]
    );
    journal.close().unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_layer_waits_for_its_inner_service_to_be_ready() {
    let fs = SimFs::new();
    let journal = open_sim(&fs, JournalConfig::default());
    let record = events(
        |request: &u32| *request,
        |request, result: &Result<u32, std::io::Error>, _| result.is_ok().then_some(request),
    );
    // ReadyOnce panics when called without being polled ready first.
    let svc = ServiceBuilder::new()
        .layer(JournalLayer::new(journal.clone(), record))
        .service(ReadyOnce::default());
    assert_eq!(svc.oneshot(3).await.expect("answered"), 3);
    journal.close().unwrap();
}

#[tokio::test]
async fn the_layer_times_calls_on_the_injected_clock() {
    let fs = SimFs::new();
    let journal = open_sim(
        &fs,
        JournalConfig::default().durability(Durability::Buffered),
    );
    let clock = ManualClock::new();
    let in_service = clock.clone();
    // Tokio's clock is not paused here: only the manual clock can make a
    // call that returns at once take 7 s.
    let mut svc = ServiceBuilder::new()
        .layer(layer(journal.clone()).clock(clock.clone()))
        .service(service_fn(move |path: String| {
            let clock = in_service.clone();
            async move {
                clock.advance(Duration::from_secs(7));
                Ok::<u32, &'static str>(path.len() as u32)
            }
        }));
    let before = clock.elapsed();
    assert_eq!(svc.ready().await.unwrap().call("/a".into()).await, Ok(2));
    assert_eq!(clock.elapsed() - before, Duration::from_secs(7));
    // A clone of the layer keeps the clock.
    let mut again = ServiceBuilder::new()
        .layer(layer(journal.clone()).clock(clock.clone()).clone())
        .service(service_fn(|_: String| async { Ok::<u32, &'static str>(0) }));
    assert_eq!(again.ready().await.unwrap().call("/b".into()).await, Ok(0));
    journal.flush().await.unwrap();
    assert_eq!(
        calls(&fs),
        vec![
            Call {
                path: "/a".into(),
                ok: true,
                ms: 7000
            },
            Call {
                path: "/b".into(),
                ok: true,
                ms: 0
            },
        ]
    );
    journal.close().unwrap();
}

/// Holds the writer by taking the active file's lock as another process.
fn hold_writer(fs: &SimFs) -> Box<dyn buttress_fs::File> {
    let lock = fs
        .open_append(&sim_dir().join("t.0000000001.jsonl"), false)
        .expect("test setup");
    lock.lock().expect("test setup");
    lock
}

#[tokio::test]
async fn a_full_queue_with_drop_never_holds_the_response() {
    let fs = SimFs::new();
    let config = JournalConfig::default()
        .durability(Durability::Buffered)
        .overflow(Overflow::Drop)
        .max_record_bytes(100)
        .queue_bytes(100);
    let journal = open_sim(&fs, config);
    let lock = hold_writer(&fs);
    let mut svc = ServiceBuilder::new()
        .layer(layer(journal.clone()))
        .service(service_fn(|_: String| async { Ok::<u32, &'static str>(1) }));
    for _ in 0..20 {
        // Would hang if the response waited for space.
        assert_eq!(svc.ready().await.unwrap().call("/x".into()).await, Ok(1));
    }
    drop(lock);
    journal.flush().await.unwrap();
    let n = calls(&fs).len();
    assert!((1..20).contains(&n), "{n} events recorded");
    journal.close().unwrap();
}

#[tokio::test]
async fn a_full_queue_with_wait_holds_the_response_until_there_is_room() {
    let fs = SimFs::new();
    let config = JournalConfig::default()
        .durability(Durability::Buffered)
        .max_record_bytes(100)
        .queue_bytes(100);
    let journal = open_sim(&fs, config);
    let lock = hold_writer(&fs);
    let svc = ServiceBuilder::new()
        .layer(layer(journal.clone()))
        .service(service_fn(|_: String| async { Ok::<u32, &'static str>(1) }));
    let calls_done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let mut svc = svc.clone();
        let done = calls_done.clone();
        tasks.push(tokio::spawn(async move {
            let r = svc.ready().await.unwrap().call("/x".into()).await;
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            r
        }));
    }
    // Let every task run as far as it can.
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert!(
        calls_done.load(std::sync::atomic::Ordering::SeqCst) < 5,
        "some response must be waiting"
    );
    drop(lock);
    for t in tasks {
        assert_eq!(t.await.unwrap(), Ok(1));
    }
    journal.flush().await.unwrap();
    assert_eq!(calls(&fs).len(), 5);
    journal.close().unwrap();
}

#[tokio::test]
async fn a_failed_journal_never_fails_a_response() {
    let fs = SimFs::new();
    let journal = open_sim(&fs, JournalConfig::default());
    journal.close().unwrap();
    let mut svc = ServiceBuilder::new()
        .layer(layer(journal))
        .service(service_fn(|_: String| async { Ok::<u32, &'static str>(7) }));
    assert_eq!(svc.ready().await.unwrap().call("/x".into()).await, Ok(7));
    let _: Option<Infallible> = None;
}

/// The layer's events are serialized by the writer thread; they keep
/// their order with each other and with direct appends around them.
/// (Paused time: the layer times calls on tokio's clock, so each takes 0 ms.)
#[tokio::test(start_paused = true)]
async fn events_keep_their_order_with_appends() {
    let fs = SimFs::new();
    let journal = open_sim(
        &fs,
        JournalConfig::default().durability(Durability::Buffered),
    );
    let mut svc = ServiceBuilder::new()
        .layer(layer(journal.clone()))
        .service(service_fn(|path: String| async move {
            Ok::<u32, &'static str>(path.len() as u32)
        }));
    let mut expected = Vec::new();
    for n in 0..300u64 {
        if n % 3 == 0 {
            let call = Call {
                path: format!("/append/{n}"),
                ok: true,
                ms: n,
            };
            journal.append(&call).await.unwrap();
            expected.push(call);
        } else {
            let path = format!("/layer/{n}");
            svc.ready().await.unwrap().call(path.clone()).await.unwrap();
            expected.push(Call {
                path,
                ok: true,
                ms: 0,
            });
        }
    }
    journal.flush().await.unwrap();
    assert_eq!(calls(&fs), expected);
    journal.close().unwrap();
    // What the queue counted for the events is given back in full (once
    // the writer is done: a flush answers before it releases the bytes).
    assert_eq!(journal.queued_bytes(), 0);
}

/// An event that does not serialize, whose `Serialize` panics, or that is
/// larger than `max_record_bytes` is skipped by the writer (what an append
/// would have reported to its caller); the responses and the journal go
/// on, and the other events are written in order.
#[tokio::test]
async fn events_that_cannot_be_written_are_skipped_and_the_journal_goes_on() {
    #[derive(Debug)]
    struct Picky(u32);
    impl Serialize for Picky {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self.0 % 4 {
                1 => Err(serde::ser::Error::custom("refused")),
                2 => panic!("a bug in a Serialize impl"),
                3 => s.serialize_str(&"x".repeat(500)),
                _ => s.serialize_u32(self.0),
            }
        }
    }
    let fs = SimFs::new();
    let journal = open_sim(
        &fs,
        JournalConfig::default()
            .durability(Durability::Buffered)
            .max_record_bytes(100),
    );
    let mut svc = ServiceBuilder::new()
        .layer(JournalLayer::new(
            journal.clone(),
            events(
                |n: &u32| *n,
                |n, _: &Result<u32, Infallible>, _: Duration| Some(Picky(n)),
            ),
        ))
        .service(service_fn(|n: u32| async move { Ok::<u32, Infallible>(n) }));
    for n in 0..40 {
        assert_eq!(svc.ready().await.unwrap().call(n).await, Ok(n));
    }
    journal.flush().await.unwrap();
    assert!(!journal.is_failed());
    let mut reader = JournalReader::with_fs(Arc::new(fs.clone()) as Arc<dyn Fs>, sim_dir(), "t");
    let written: Vec<u32> =
        std::iter::from_fn(|| reader.next_record::<u32>().expect("read").map(|r| r.event))
            .collect();
    assert_eq!(written, (0..40).step_by(4).collect::<Vec<_>>());
    assert_eq!(reader.stats().corrupt_records, 0);
    journal.close().unwrap();
    assert_eq!(journal.queued_bytes(), 0);
}

/// In sync-each mode the writer syncs each of the layer's events on its
/// own, as it does appends.
#[tokio::test]
async fn sync_each_syncs_every_event_of_the_layer() {
    let fs = SimFs::new();
    let journal = open_sim(
        &fs,
        JournalConfig::default().durability(Durability::SyncEach),
    );
    let lock = hold_writer(&fs);
    let mut svc = ServiceBuilder::new()
        .layer(layer(journal.clone()))
        .service(service_fn(|_: String| async { Ok::<u32, &'static str>(1) }));
    for n in 0..5 {
        // Queued behind the held lock: the responses do not wait.
        svc.ready()
            .await
            .unwrap()
            .call(format!("/{n}"))
            .await
            .unwrap();
    }
    let syncs = |fs: &SimFs| {
        fs.log()
            .iter()
            .filter(|op| matches!(op, buttress_fs::Op::Sync { .. }))
            .count()
    };
    let before = syncs(&fs);
    drop(lock);
    journal.sync().await.unwrap();
    assert!(
        syncs(&fs) >= before + 5,
        "{} syncs for 5 events",
        syncs(&fs) - before
    );
    assert_eq!(calls(&fs).len(), 5);
    journal.close().unwrap();
}

/// Appends serialize into a per-thread buffer; the futures that may wait
/// for room hold none of it, so they can move between threads.
#[test]
fn append_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let fs = SimFs::new();
    let journal = open_sim(&fs, JournalConfig::default());
    let append = journal.append(&1u32);
    send(&append);
    let queued = journal.append_queued(&2u32);
    send(&queued);
    drop((append, queued));
    journal.close().unwrap();
}
