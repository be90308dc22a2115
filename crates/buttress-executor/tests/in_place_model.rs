//! Requests run in place against a model of the bulkhead and its queue:
//! random sequences of calls at random priorities, completions, drops
//! (running, queued, or granted a slot and not yet polled) and polls.
//!
//! The model: at most `max_running` requests hold a slot; a request that
//! finds a slot free and nothing queued takes it; otherwise it is queued
//! if fewer than `max_queued` wait, and refused otherwise; a freed slot
//! goes to the highest priority waiting, first come first served among
//! equals. After every step the executor's counts agree with the model,
//! and after every poll exactly the requests the model says hold a slot
//! have called the inner service.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use buttress_executor::{Executor, ExecutorConfig, ExecutorError, ExecutorLayer};
use proptest::prelude::*;
use tower::{BoxError, Layer, Service, service_fn};

#[derive(Debug, Clone)]
enum Op {
    /// A request at this priority.
    Call(u8),
    /// The running request (this index among them, modulo their number)
    /// completes.
    Finish(usize),
    /// A live request (this index, modulo their number) is dropped.
    Drop(usize),
    /// Every live request is polled.
    PollAll,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..3u8).prop_map(Op::Call),
        3 => any::<usize>().prop_map(Op::Finish),
        2 => any::<usize>().prop_map(Op::Drop),
        3 => Just(Op::PollAll),
    ]
}

#[derive(Default)]
struct Model {
    running: Vec<u64>,
    /// Waiting requests in arrival order, with their priorities.
    queue: Vec<(u64, u8)>,
}

impl Model {
    /// Slots freed: the queue fills them, highest priority first, first
    /// come first served among equals.
    fn grant(&mut self, max_running: usize) {
        while self.running.len() < max_running && !self.queue.is_empty() {
            let top = self.queue.iter().map(|(_, p)| *p).max().unwrap_or(0);
            let at = self.queue.iter().position(|(_, p)| *p == top).unwrap_or(0);
            let (id, _) = self.queue.remove(at);
            self.running.push(id);
        }
    }
}

/// A request the inner service answers once its gate opens.
struct Gated {
    id: u64,
    open: Arc<AtomicBool>,
}

impl Future for Gated {
    type Output = Result<u64, BoxError>;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        if self.open.load(Ordering::SeqCst) {
            Poll::Ready(Ok(self.id))
        } else {
            // Polled by hand after every step: no waker needed.
            Poll::Pending
        }
    }
}

type Response = Pin<Box<dyn Future<Output = Result<u64, BoxError>>>>;

fn poll(f: &mut Response) -> Poll<Result<u64, BoxError>> {
    f.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

fn run(max_running: usize, max_queued: usize, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let _in_runtime = rt.enter();
    let ex = Executor::new(
        "model",
        ExecutorConfig::default()
            .max_running(max_running)
            .max_queued(max_queued)
            .history(0),
    )
    .expect("valid");
    // Which requests called the inner service, and their gates.
    let called: Arc<Mutex<Vec<u64>>> = Arc::default();
    let gates: Arc<Mutex<HashMap<u64, Arc<AtomicBool>>>> = Arc::default();
    let (c, g) = (called.clone(), gates.clone());
    let mut svc = ExecutorLayer::new(ex.clone(), |req: &(u64, u8)| req.1)
        .in_place()
        .layer(service_fn(move |(id, _): (u64, u8)| {
            c.lock().expect("called").push(id);
            let open = g.lock().expect("gates").entry(id).or_default().clone();
            Gated { id, open }
        }));

    let mut model = Model::default();
    let mut live: Vec<(u64, Response)> = Vec::new();
    let (mut admitted, mut refused, mut finished, mut dropped) = (0u64, 0u64, 0u64, 0u64);
    let mut next = 0u64;
    for op in ops {
        match op {
            Op::Call(priority) => {
                let id = next;
                next += 1;
                let mut f: Response = Box::pin(svc.call((id, priority)));
                if model.running.len() < max_running && model.queue.is_empty() {
                    model.running.push(id);
                    live.push((id, f));
                    admitted += 1;
                } else if model.queue.len() < max_queued {
                    model.queue.push((id, priority));
                    live.push((id, f));
                    admitted += 1;
                } else {
                    let Poll::Ready(Err(e)) = poll(&mut f) else {
                        return Err(TestCaseError::fail(format!("request {id} not refused")));
                    };
                    let full = e
                        .downcast_ref::<ExecutorError>()
                        .and_then(|e| e.queue_full().copied());
                    prop_assert!(full.is_some(), "request {id}: {e}");
                    refused += 1;
                }
            }
            Op::Finish(i) => {
                if model.running.is_empty() {
                    continue;
                }
                let id = model.running.remove(i % model.running.len());
                gates
                    .lock()
                    .expect("gates")
                    .entry(id)
                    .or_default()
                    .store(true, Ordering::SeqCst);
                let at = live.iter().position(|(l, _)| *l == id).expect("live");
                let (_, mut f) = live.remove(at);
                let answer = poll(&mut f);
                prop_assert!(
                    matches!(answer, Poll::Ready(Ok(got)) if got == id),
                    "request {} did not complete: {:?}",
                    id,
                    answer.map(|r| r.map_err(|e| e.to_string()))
                );
                finished += 1;
                model.grant(max_running);
            }
            Op::Drop(i) => {
                if live.is_empty() {
                    continue;
                }
                let (id, f) = live.remove(i % live.len());
                drop(f);
                model.running.retain(|r| *r != id);
                model.queue.retain(|(q, _)| *q != id);
                dropped += 1;
                model.grant(max_running);
            }
            Op::PollAll => {
                for (id, f) in &mut live {
                    prop_assert!(poll(f).is_pending(), "request {} answered", id);
                }
                // Exactly those holding a slot have called in (finished
                // and dropped requests may have, too).
                let called = called.lock().expect("called").clone();
                for (id, _) in &live {
                    prop_assert_eq!(
                        called.contains(id),
                        model.running.contains(id),
                        "request {} (running {:?}, queued {:?})",
                        id,
                        &model.running,
                        &model.queue
                    );
                }
            }
        }
        let snap = ex.snapshot();
        prop_assert_eq!(snap.running, model.running.len(), "running");
        prop_assert_eq!(snap.queued, model.queue.len(), "queued");
        prop_assert!(snap.running <= max_running);
        prop_assert_eq!(snap.counters.submitted, admitted);
        prop_assert_eq!(snap.counters.rejected, refused);
        prop_assert_eq!(snap.counters.ok, finished);
        prop_assert_eq!(snap.counters.cancelled, dropped);
    }
    // Everything left goes away: nothing is held, nothing waits.
    live.clear();
    let snap = ex.snapshot();
    prop_assert_eq!((snap.running, snap.queued), (0, 0));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn in_place_requests_follow_the_model(
        max_running in 1..4usize,
        max_queued in 0..4usize,
        ops in prop::collection::vec(op(), 0..120),
    ) {
        run(max_running, max_queued, ops)?;
    }
}
