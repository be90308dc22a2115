//! A flaky upstream fails for a while and recovers; the breaker opens,
//! rejects fast, probes in half-open and closes.
//!
//! ```text
//! cargo run --example breaker
//! ```
//!
//! Runs in real time for about three seconds and needs no services.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use buttress::breaker::{BreakerEvent, CircuitBreaker, State};
use tokio::time::Instant;

/// The upstream: healthy, then down between 0.4 s and 1.6 s, then healthy.
async fn upstream(started: Instant, calls: &AtomicU32) -> Result<&'static str, &'static str> {
    calls.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(5)).await; // network + work
    let t = started.elapsed();
    if t >= Duration::from_millis(400) && t < Duration::from_millis(1600) {
        Err("503 from upstream")
    } else {
        Ok("embedding")
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let transitions = Arc::new(AtomicU32::new(0));
    let t = Arc::clone(&transitions);
    let breaker = CircuitBreaker::builder("embeddings")
        .consecutive_failures(3)
        .failure_rate(None)
        .open_for(Duration::from_millis(500))
        .half_open_permits(2)
        .on_event(move |e| {
            if let BreakerEvent::StateChanged {
                from,
                to,
                reason,
                open_for,
                ..
            } = e
            {
                t.fetch_add(1, Ordering::Relaxed);
                let extra = open_for.map(|d| format!(" for {d:?}")).unwrap_or_default();
                println!("         ── {from} → {to} ({reason}){extra}");
            }
        })
        .build()?;

    let upstream_calls = AtomicU32::new(0);
    let (mut ok, mut failed, mut rejected) = (0u32, 0u32, 0u32);
    println!(
        "{:>7}  {:>4}  {:<34} state after",
        "time", "call", "outcome"
    );
    for call in 1..=30u32 {
        let result = breaker.call(|| upstream(started, &upstream_calls)).await;
        let outcome = match &result {
            Ok(v) => {
                ok += 1;
                format!("ok: {v}")
            }
            Err(e) => match e.rejected() {
                Some(r) => {
                    rejected += 1;
                    match r.retry_after() {
                        Some(d) => format!("rejected, retry in {}ms", d.as_millis()),
                        None => "rejected (probes busy)".to_string(),
                    }
                }
                None => {
                    failed += 1;
                    format!("failed: {e}")
                }
            },
        };
        println!(
            "{:>6.2}s  {:>4}  {:<34} {}",
            started.elapsed().as_secs_f64(),
            call,
            outcome,
            breaker.state()
        );
        tokio::time::sleep(Duration::from_millis(95)).await;
    }

    let snapshot = breaker.snapshot();
    println!();
    println!(
        "summary: 30 calls: {ok} ok, {failed} failed, {rejected} rejected at once; \
         the upstream saw {} calls; {} state changes; final state {}",
        upstream_calls.load(Ordering::Relaxed),
        transitions.load(Ordering::Relaxed),
        snapshot.state
    );
    if snapshot.state != State::Closed {
        return Err("the breaker should have closed once the upstream recovered".into());
    }
    Ok(())
}
