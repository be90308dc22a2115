//! Gated routines for buttress-breaker, beside tower-resilience's breaker
//! and failsafe. Every service is a no-op that answers at once, so what is
//! measured is the breaker's own cost on the closed path.

use std::hint::black_box;

use buttress_breaker::{BreakerConfig, CircuitBreaker};
use tower::Layer;

use crate::{Routine, noop, routine, service_routine, through, two_thread_routine};

/// The default breaker: resilience4j's defaults, 50 % of a 100-call window.
pub fn rate_window() -> CircuitBreaker {
    CircuitBreaker::new("bench", BreakerConfig::default()).expect("valid")
}

/// A breaker that counts consecutive failures (the embeddings preset).
pub fn consecutive() -> CircuitBreaker {
    CircuitBreaker::new("bench", BreakerConfig::embeddings()).expect("valid")
}

fn tower_resilience() -> tower_resilience_circuitbreaker::CircuitBreakerLayer {
    tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
        .failure_rate_threshold(0.5)
        .sliding_window_size(100)
        .build()
        .expect("valid")
}

/// One request through the default breaker's layer, closed.
pub fn layer() -> Routine {
    service_routine(rate_window().layer().layer(noop()))
}

/// One request through a consecutive-failures breaker's layer, closed.
pub fn layer_consecutive() -> Routine {
    service_routine(consecutive().layer().layer(noop()))
}

/// One request through the default breaker without its slow-call rule:
/// the same layer, with no clock read per call (what the two clock reads
/// a timed call needs cost, beside [`layer`]).
pub fn layer_untimed() -> Routine {
    let config = BreakerConfig::default().slow_call_rate_threshold(None);
    let b = CircuitBreaker::new("bench", config).expect("valid");
    service_routine(b.layer().layer(noop()))
}

/// One request through tower-resilience's breaker (same window), closed.
pub fn tower_resilience_layer() -> Routine {
    service_routine(tower_resilience().layer(noop()))
}

/// A permit taken and recorded as a success, without tower.
pub fn permit() -> Routine {
    let b = rate_window();
    routine(move || {
        let _ = black_box(b.try_acquire().map(|p| p.success()));
    })
}

/// failsafe's synchronous call with its default breaker.
pub fn failsafe_sync_call() -> Routine {
    let cb = failsafe::Config::new().build();
    routine(move || {
        let _ = black_box(failsafe::CircuitBreaker::call(&cb, || {
            Ok::<_, std::io::Error>(black_box(1u64))
        }));
    })
}

/// Two threads, each with its own clone of one breaker's layer.
pub fn layer_two_threads() -> Routine {
    let b = rate_window();
    two_thread_routine(move || {
        let mut s = b.layer().layer(noop());
        move || {
            let _ = black_box(through(&mut s, black_box(1)));
        }
    })
}

/// tower-resilience's breaker, two threads on clones of one service.
pub fn tower_resilience_two_threads() -> Routine {
    let svc = tower_resilience().layer(noop());
    two_thread_routine(move || {
        let mut s = svc.clone();
        move || {
            let _ = black_box(through(&mut s, black_box(1)));
        }
    })
}
