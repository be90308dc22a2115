//! The adaptive limit against its algorithm run by hand: the limiter (and
//! the layer, with a manual clock) must admit exactly while fewer than the
//! limit are in flight, and feed the algorithm exactly the samples the
//! requests give (latency, in flight at the start, failure), in order.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use buttress_core::ManualClock;
use buttress_pressure::{
    AdaptiveLimitLayer, AdaptiveLimiter, AimdConfig, Algorithm, BoxError, Gradient2Config,
    LimitPermit, Overloaded, Sample, VegasConfig,
};
use proptest::prelude::*;
use tokio::sync::oneshot;
use tower::{Layer, Service, service_fn};

/// Two identical algorithms: one for the limiter, one for the model.
fn algorithms(kind: u8, initial: u32) -> (Box<dyn Algorithm>, Box<dyn Algorithm>) {
    let make = || -> Box<dyn Algorithm> {
        match kind {
            0 => Box::new(
                AimdConfig::default()
                    .initial(initial)
                    .min(1)
                    .max(40)
                    .timeout(Duration::from_millis(100))
                    .build()
                    .expect("valid"),
            ),
            1 => Box::new(
                VegasConfig::default()
                    .initial(initial)
                    .min(1)
                    .max(60)
                    .smoothing(0.5)
                    .probe_multiplier(2)
                    .build()
                    .expect("valid"),
            ),
            _ => Box::new(
                Gradient2Config::default()
                    .initial(initial)
                    .min(1)
                    .max(60)
                    .window(5)
                    .build()
                    .expect("valid"),
            ),
        }
    };
    (make(), make())
}

/// The whole limit a value gives, as the limiter documents it.
fn whole(limit: f64) -> u64 {
    limit.max(1.0) as u64
}

#[derive(Debug, Clone)]
enum Op {
    /// A request arrives.
    Start,
    /// Time passes (milliseconds).
    Advance(u64),
    /// The `n`-th oldest request in flight finishes, failed or not.
    Finish(usize, bool),
    /// The `n`-th oldest request in flight is cancelled.
    Cancel(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Start),
        3 => (0..150u64).prop_map(Op::Advance),
        3 => (0..64usize, prop::bool::weighted(0.2)).prop_map(|(n, f)| Op::Finish(n, f)),
        1 => (0..64usize).prop_map(Op::Cancel),
    ]
}

/// What the model knows of a request in flight.
struct Started {
    at: Duration,
    inflight: u64,
}

/// The model: the algorithm run by hand and a count.
struct Model {
    algorithm: Box<dyn Algorithm>,
    limit: u64,
    inflight: u64,
}

impl Model {
    fn new(algorithm: Box<dyn Algorithm>) -> Model {
        let limit = whole(algorithm.limit());
        Model {
            algorithm,
            limit,
            inflight: 0,
        }
    }

    /// Admits if fewer than the limit are in flight.
    fn start(&mut self, now: Duration) -> Option<Started> {
        (self.inflight < self.limit).then(|| {
            self.inflight += 1;
            Started {
                at: now,
                inflight: self.inflight,
            }
        })
    }

    fn finish(&mut self, started: Started, now: Duration, dropped: bool) {
        self.inflight -= 1;
        self.limit = whole(self.algorithm.update(Sample {
            rtt: now - started.at,
            inflight: started.inflight,
            dropped,
        }));
    }

    fn cancel(&mut self) {
        self.inflight -= 1;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The plain API: permits recorded at instants the test chooses.
    #[test]
    fn the_limiter_follows_its_algorithm(
        kind in 0..3u8,
        initial in 1..12u32,
        ops in prop::collection::vec(op(), 0..300),
    ) {
        let (algorithm, reference) = algorithms(kind, initial);
        let limiter = AdaptiveLimiter::new("model", algorithm).expect("name");
        let mut model = Model::new(reference);
        let t0 = Instant::now();
        let mut now = Duration::ZERO;
        let mut inflight: Vec<(LimitPermit, Started)> = Vec::new();
        for op in ops {
            match op {
                Op::Start => {
                    let got = limiter.try_acquire(t0 + now);
                    match (got, model.start(now)) {
                        (Ok(permit), Some(started)) => inflight.push((permit, started)),
                        (Err(refused), None) => prop_assert!(refused.is_limit()),
                        (got, expected) => prop_assert!(
                            false,
                            "admitted: {}, expected {}",
                            got.is_ok(),
                            expected.is_some()
                        ),
                    }
                }
                Op::Advance(ms) => now += Duration::from_millis(ms),
                Op::Finish(n, dropped) if !inflight.is_empty() => {
                    let (permit, started) = inflight.remove(n % inflight.len());
                    permit.record(t0 + now, dropped);
                    model.finish(started, now, dropped);
                }
                Op::Cancel(n) if !inflight.is_empty() => {
                    drop(inflight.remove(n % inflight.len()));
                    model.cancel();
                }
                Op::Finish(..) | Op::Cancel(_) => {}
            }
            prop_assert_eq!(limiter.limit(), model.limit);
            prop_assert_eq!(limiter.inflight(), model.inflight);
        }
    }

    /// The layer, on a manual clock: each request's latency runs from its
    /// call to the poll that sees it finish, its failure is the
    /// classifier's, and a dropped future frees its slot without a
    /// sample.
    #[test]
    fn the_layer_follows_its_algorithm(
        kind in 0..3u8,
        initial in 1..12u32,
        ops in prop::collection::vec(op(), 0..300),
    ) {
        let (algorithm, reference) = algorithms(kind, initial);
        let limiter = AdaptiveLimiter::new("model", algorithm).expect("name");
        let clock = ManualClock::new();
        let mut svc = AdaptiveLimitLayer::new(limiter.clone())
            .clock(Arc::new(clock.clone()))
            .layer(service_fn(|outcome: oneshot::Receiver<bool>| async move {
                match outcome.await {
                    Ok(true) => Ok(()),
                    _ => Err(std::io::Error::other("failed")),
                }
            }));
        let mut cx = Context::from_waker(Waker::noop());
        let mut model = Model::new(reference);
        type Call = Pin<Box<dyn Future<Output = Result<(), BoxError>>>>;
        let mut inflight: Vec<(Call, oneshot::Sender<bool>, Started)> = Vec::new();
        for op in ops {
            let now = clock.elapsed();
            match op {
                Op::Start => {
                    prop_assert!(svc.poll_ready(&mut cx).is_ready());
                    let (tx, rx) = oneshot::channel();
                    let mut call: Call = Box::pin(svc.call(rx));
                    match model.start(now) {
                        Some(started) => {
                            prop_assert!(call.as_mut().poll(&mut cx).is_pending());
                            inflight.push((call, tx, started));
                        }
                        None => match call.as_mut().poll(&mut cx) {
                            Poll::Ready(Err(e)) => prop_assert!(
                                e.downcast_ref::<Overloaded>().is_some_and(Overloaded::is_limit)
                            ),
                            other => prop_assert!(false, "not refused: {:?}", other.is_ready()),
                        },
                    }
                }
                Op::Advance(ms) => clock.advance(Duration::from_millis(ms)),
                Op::Finish(n, dropped) if !inflight.is_empty() => {
                    let (mut call, tx, started) = inflight.remove(n % inflight.len());
                    prop_assert!(tx.send(!dropped).is_ok());
                    let result = call.as_mut().poll(&mut cx);
                    prop_assert!(matches!(result, Poll::Ready(r) if r.is_ok() != dropped));
                    model.finish(started, now, dropped);
                }
                Op::Cancel(n) if !inflight.is_empty() => {
                    drop(inflight.remove(n % inflight.len()));
                    model.cancel();
                }
                Op::Finish(..) | Op::Cancel(_) => {}
            }
            prop_assert_eq!(limiter.limit(), model.limit);
            prop_assert_eq!(limiter.inflight(), model.inflight);
        }
    }
}

/// Keeps every sample it is given; never moves the limit.
#[derive(Clone, Default)]
struct Recording {
    samples: Arc<Mutex<Vec<Sample>>>,
}

impl Algorithm for Recording {
    fn limit(&self) -> f64 {
        10.0
    }

    fn update(&mut self, sample: Sample) -> f64 {
        self.samples.lock().expect("not poisoned").push(sample);
        10.0
    }
}

impl Recording {
    fn samples(&self) -> Vec<Sample> {
        self.samples.lock().expect("not poisoned").clone()
    }
}

#[tokio::test(start_paused = true)]
async fn under_paused_time_the_layer_reads_tokios_clock_by_itself() {
    use tower::ServiceExt;

    let recording = Recording::default();
    let limiter = AdaptiveLimiter::new("paused", recording.clone()).expect("name");
    let svc = AdaptiveLimitLayer::new(limiter).layer(service_fn(|ms: u64| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok::<_, std::io::Error>(())
    }));
    svc.clone().oneshot(300).await.expect("served");
    svc.oneshot(20).await.expect("served");
    let rtts: Vec<_> = recording.samples().iter().map(|s| s.rtt).collect();
    assert_eq!(
        rtts,
        [Duration::from_millis(300), Duration::from_millis(20)]
    );
}

#[tokio::test(start_paused = true)]
async fn under_paused_time_aimd_backs_off_on_a_request_slower_than_its_timeout() {
    use tower::ServiceExt;

    let aimd = AimdConfig::default()
        .initial(10)
        .timeout(Duration::from_millis(250))
        .build()
        .expect("valid");
    let limiter = AdaptiveLimiter::new("slow", aimd).expect("name");
    let svc = AdaptiveLimitLayer::new(limiter.clone()).layer(service_fn(|ms: u64| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok::<_, std::io::Error>(())
    }));
    svc.clone().oneshot(200).await.expect("served");
    assert_eq!(limiter.limit(), 10); // in time, and 2·1 < 10: holds
    svc.oneshot(300).await.expect("served");
    assert_eq!(limiter.limit(), 9); // slower than the timeout: ⌊10·0.9⌋
}

#[test]
fn outside_paused_time_the_layer_measures_real_latency() {
    let recording = Recording::default();
    let limiter = AdaptiveLimiter::new("real", recording.clone()).expect("name");
    let spin = Duration::from_micros(300);
    let mut svc = AdaptiveLimitLayer::new(limiter.clone()).layer(service_fn(|n: u64| {
        // Real work, not a sleep: the request takes at least `spin`.
        let start = Instant::now();
        while start.elapsed() < spin {
            std::hint::spin_loop();
        }
        std::future::ready(Ok::<_, std::io::Error>(n))
    }));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(svc.poll_ready(&mut cx).is_ready());
    let mut call = Box::pin(svc.call(7));
    assert!(matches!(call.as_mut().poll(&mut cx), Poll::Ready(Ok(7))));
    let samples = recording.samples();
    assert_eq!(samples.len(), 1);
    assert!(samples[0].rtt >= spin, "{:?}", samples[0].rtt);
    assert_eq!((samples[0].inflight, samples[0].dropped), (1, false));
    assert_eq!(limiter.inflight(), 0);
}

#[test]
fn a_future_polled_after_it_finished_neither_records_nor_frees_again() {
    let recording = Recording::default();
    let limiter = AdaptiveLimiter::new("twice", recording.clone()).expect("name");
    let clock = ManualClock::new();
    let mut svc = AdaptiveLimitLayer::new(limiter.clone())
        .clock(Arc::new(clock.clone()))
        .layer(service_fn(|n: u64| {
            std::future::ready(Ok::<_, std::io::Error>(n))
        }));
    let mut cx = Context::from_waker(Waker::noop());
    let held = limiter.try_acquire(Instant::now()).expect("admitted");
    let mut call = Box::pin(svc.call(1));
    assert!(call.as_mut().poll(&mut cx).is_ready());
    assert!(call.as_mut().poll(&mut cx).is_pending());
    drop(call);
    assert_eq!(recording.samples().len(), 1);
    assert_eq!(limiter.inflight(), 1); // the permit's, untouched
    drop(held);
    assert_eq!(limiter.inflight(), 0);
}

#[test]
fn the_layer_its_service_and_its_future_cross_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let limiter = AdaptiveLimiter::new("threads", Recording::default()).expect("name");
    let layer = AdaptiveLimitLayer::new(limiter);
    send_sync(&layer);
    let mut svc = layer.layer(service_fn(|n: u64| {
        std::future::ready(Ok::<_, std::io::Error>(n))
    }));
    send_sync(&svc);
    let call = svc.call(1);
    send(&call);
}

#[tokio::test(start_paused = true)]
async fn a_result_classified_ignored_frees_its_slot_without_moving_the_limit() {
    use buttress_core::{Classification, classify_fn};
    use tower::ServiceExt;

    let aimd = AimdConfig::default()
        .initial(10)
        .timeout(Duration::from_millis(250))
        .build()
        .expect("valid");
    let limiter = AdaptiveLimiter::new("ignored", aimd).expect("name");
    // Slow requests would move AIMD down; these are classified Ignored
    // (say, a client's own error), so they must not.
    let svc = AdaptiveLimitLayer::new(limiter.clone())
        .classifier(classify_fn(|_: &Result<(), std::io::Error>| {
            Classification::IGNORED
        }))
        .layer(service_fn(|ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, std::io::Error>(())
        }));
    for _ in 0..3 {
        svc.clone().oneshot(300).await.expect("served");
    }
    assert_eq!(limiter.limit(), 10, "an ignored result moved the limit");
    assert_eq!(limiter.inflight(), 0, "an ignored result kept its slot");
}
