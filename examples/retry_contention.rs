//! Contention: clients race to update one row with optimistic concurrency
//! (read the version, write if unchanged), as in AWS's "Exponential Backoff
//! and Jitter" experiment. Each conflict is retried with the backoff under
//! test. How many calls, and how long until every client has written?
//!
//! ```text
//! cargo run --example retry_contention            # as in the retry guide
//! cargo run --example retry_contention -- --quick # smaller, as in CI
//! ```
//!
//! Network delay per call ~ N(10 ms, 2 ms); backoff base 5 ms, cap 2 s.
//! Simulated time, seeded randomness: every run prints the same table.

#[path = "sim.rs"]
mod sim;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use buttress::retry::{Backoff, BudgetConfig, RetryConfig, RetryPolicy, retry};
use tokio::time::Instant;

/// Runs one contention round with `clients` clients; returns the total
/// calls and the time until the last client has written.
async fn round(clients: u32, backoff: Backoff, seed: u64) -> (u64, Duration) {
    let network = Arc::new(sim::Seeded::new(seed));
    let policy = RetryPolicy::builder("occ")
        .config(
            RetryConfig::default()
                .max_attempts(1000)
                .backoff(backoff)
                .budget(BudgetConfig::None),
        )
        .random(sim::Seeded::new(seed ^ 0x5eed))
        .build()
        .expect("valid policy");
    let version = Rc::new(Cell::new(0u64));
    let calls = Rc::new(Cell::new(0u64));
    let start = Instant::now();
    let local = tokio::task::LocalSet::new();
    let done = Rc::new(Cell::new(Duration::ZERO));
    for _ in 0..clients {
        let (policy, version, calls, network, done) = (
            policy.clone(),
            Rc::clone(&version),
            Rc::clone(&calls),
            Arc::clone(&network),
            Rc::clone(&done),
        );
        local.spawn_local(async move {
            let result = retry(&policy, || {
                let (version, calls, network) =
                    (Rc::clone(&version), Rc::clone(&calls), Arc::clone(&network));
                async move {
                    calls.set(calls.get() + 1);
                    let seen = version.get();
                    let delay = network.normal(10.0, 2.0);
                    tokio::time::sleep(Duration::from_secs_f64(delay / 1000.0)).await;
                    if version.get() == seen {
                        version.set(seen + 1);
                        Ok(())
                    } else {
                        Err(std::io::Error::other("conflict"))
                    }
                }
            })
            .await;
            assert!(result.is_ok(), "1000 attempts are enough");
            done.set(done.get().max(start.elapsed()));
        });
    }
    local.await;
    (calls.get(), done.get())
}

fn main() {
    let quick = sim::quick();
    let base = Duration::from_millis(5);
    let max = Duration::from_secs(2);
    let strategies = [
        (
            "no jitter (exponential)",
            Backoff::Exponential {
                base,
                factor: 2.0,
                max,
            },
        ),
        (
            "full jitter",
            Backoff::FullJitter {
                base,
                factor: 2.0,
                max,
            },
        ),
        (
            "equal jitter",
            Backoff::EqualJitter {
                base,
                factor: 2.0,
                max,
            },
        ),
        ("decorrelated jitter", Backoff::Decorrelated { base, max }),
    ];
    let client_counts: &[u32] = if quick { &[25] } else { &[10, 50, 100, 190] };
    let seeds: &[u64] = if quick { &[1] } else { &[1, 2, 3] };
    println!(
        "contention: clients race to write one row; network N(10, 2) ms; backoff base 5 ms, cap 2 s; mean of {} seeded runs",
        seeds.len()
    );
    println!();
    println!("| clients | strategy | total calls | calls per client | time until all wrote |");
    println!("|---|---|---|---|---|");
    let mut worst_is_no_jitter = true;
    for &clients in client_counts {
        let mut rows = Vec::new();
        for (label, backoff) in strategies {
            let (mut calls, mut time) = (0u64, Duration::ZERO);
            for &seed in seeds {
                let (c, t) = sim::simulate(round(clients, backoff, seed));
                calls += c;
                time += t;
            }
            let n = seeds.len() as u64;
            let (calls, time) = (calls / n, time / n as u32);
            println!(
                "| {clients} | {label} | {calls} | {:.1} | {:.0} ms |",
                calls as f64 / f64::from(clients),
                time.as_secs_f64() * 1000.0
            );
            rows.push((label, calls, time));
        }
        let no_jitter = rows[0].1;
        if rows[1..].iter().any(|r| r.1 >= no_jitter) {
            worst_is_no_jitter = false;
        }
    }
    println!();
    println!(
        "no jitter makes the most calls at every client count: {}",
        if worst_is_no_jitter { "yes" } else { "NO" }
    );
    if !worst_is_no_jitter {
        std::process::exit(1);
    }
}
