//! The closed path allocates nothing: admitting and recording a call, by
//! the plain API and through the tower service.

use std::future::{Future, ready};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use buttress_breaker::{BreakerConfig, CircuitBreaker};
use tower::{Layer, Service, service_fn};

fn poll_once<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the no-op service is always ready"),
    }
}

#[test]
fn closed_path_does_not_allocate() {
    for config in [BreakerConfig::default(), BreakerConfig::embeddings()] {
        let breaker = CircuitBreaker::new("alloc", config).expect("valid");
        let mut svc = breaker
            .layer()
            .layer(service_fn(|x: u64| ready(Ok::<_, std::io::Error>(x))));
        // Warm up: first touches may allocate in std or tracing.
        for _ in 0..10 {
            breaker.try_acquire().expect("closed").success();
            poll_once(svc.call(1)).expect("ok");
        }
        let counts = allocation_counter::measure(|| {
            for i in 0..1000 {
                breaker.try_acquire().expect("closed").success();
                let _ = breaker.try_acquire_owned().expect("closed");
                let _ = poll_once(breaker.call(|| ready(Ok::<_, std::io::Error>(i))));
                let _ = poll_once(std::future::poll_fn(|cx| svc.poll_ready(cx)));
                let _ = poll_once(svc.call(i));
            }
        });
        assert_eq!(counts.count_total, 0, "allocations on the closed path");
    }
}

#[test]
fn rejection_by_the_plain_api_does_not_allocate() {
    let breaker = CircuitBreaker::builder("alloc")
        .consecutive_failures(1)
        .failure_rate(None)
        .build()
        .expect("valid");
    breaker.try_acquire().expect("closed").failure();
    let _ = breaker.try_acquire();
    let counts = allocation_counter::measure(|| {
        for _ in 0..1000 {
            assert!(breaker.try_acquire().is_err());
        }
    });
    assert_eq!(counts.count_total, 0, "allocations on the rejection path");
}
