//! Retry storm: many clients call an upstream that is fully down for a
//! while, then recovers. How many calls does the upstream see per client
//! request during the outage (amplification), and how long after recovery
//! do requests still trickle out of retry loops?
//!
//! ```text
//! cargo run --example retry_storm            # the full run, as in the retry guide
//! cargo run --example retry_storm -- --quick # a smaller run, as in CI
//! ```
//!
//! Simulated time (a paused tokio clock): a simulated minute takes well
//! under a second of real time, and every run prints the same table.

#[path = "sim.rs"]
mod sim;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use buttress::common::TokioClock;
use buttress::retry::{Backoff, BudgetConfig, RetryConfig, RetryPolicy, retry};
use tokio::time::Instant;

struct Setup {
    clients: u32,
    period: Duration,
    run_for: Duration,
    outage: (Duration, Duration),
}

#[derive(Default)]
struct Counts {
    requests_in_outage: Cell<u64>,
    calls_in_outage: Cell<u64>,
    last_outage_request_done: Cell<Option<Duration>>,
}

async fn run(setup: &Setup, policy: RetryPolicy) -> (f64, Duration) {
    let start = Instant::now();
    let counts = Rc::new(Counts::default());
    let (down_from, down_to) = setup.outage;
    let local = tokio::task::LocalSet::new();
    for c in 0..setup.clients {
        let counts = Rc::clone(&counts);
        let policy = policy.clone();
        let period = setup.period;
        let run_for = setup.run_for;
        // Spread the clients' phases over one period.
        let offset = period * c / setup.clients;
        local.spawn_local(async move {
            tokio::time::sleep(offset).await;
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let t = start.elapsed();
                if t >= run_for {
                    break;
                }
                let in_outage = t >= down_from && t < down_to;
                if in_outage {
                    counts
                        .requests_in_outage
                        .set(counts.requests_in_outage.get() + 1);
                }
                let counts2 = Rc::clone(&counts);
                let policy = policy.clone();
                tokio::task::spawn_local(async move {
                    let _ = retry(&policy, || {
                        let counts = Rc::clone(&counts2);
                        async move {
                            tokio::time::sleep(Duration::from_millis(5)).await; // network
                            let now = start.elapsed();
                            let down = now >= down_from && now < down_to;
                            if down {
                                counts.calls_in_outage.set(counts.calls_in_outage.get() + 1);
                                Err(std::io::Error::other("503"))
                            } else {
                                Ok(())
                            }
                        }
                    })
                    .await;
                    if in_outage {
                        let done = start.elapsed();
                        let last = counts2.last_outage_request_done.get().unwrap_or_default();
                        counts2.last_outage_request_done.set(Some(last.max(done)));
                    }
                });
            }
        });
    }
    local.await;
    let amplification =
        counts.calls_in_outage.get() as f64 / counts.requests_in_outage.get().max(1) as f64;
    let drain = counts
        .last_outage_request_done
        .get()
        .unwrap_or_default()
        .saturating_sub(down_to);
    (amplification, drain)
}

fn main() {
    let quick = sim::quick();
    // The quick run (CI) keeps the load and the outage and cuts the tail.
    let setup = Setup {
        clients: 100,
        period: Duration::from_millis(100),
        run_for: Duration::from_secs(if quick { 30 } else { 40 }),
        outage: (Duration::from_secs(15), Duration::from_secs(25)),
    };
    let backoff = Backoff::FullJitter {
        base: Duration::from_millis(50),
        factor: 2.0,
        max: Duration::from_secs(2),
    };
    let plain = RetryConfig::default()
        .max_attempts(4)
        .backoff(backoff)
        .budget(BudgetConfig::None);
    let budgeted = plain.clone().budget(BudgetConfig::default());
    let rate = f64::from(setup.clients) / setup.period.as_secs_f64();
    println!(
        "retry storm: {} clients, {:.0} requests/s in all, upstream down from {:?} to {:?}; 3 retries, full jitter 50 ms .. 2 s",
        setup.clients, rate, setup.outage.0, setup.outage.1
    );
    println!();
    println!(
        "| policy | upstream calls per request during the outage | last outage request done, after recovery |"
    );
    println!("|---|---|---|");
    let mut results = Vec::new();
    for (label, config) in [
        ("3 retries, no budget", plain),
        (
            "3 retries, default budget (10 % + 10/s over 10 s)",
            budgeted,
        ),
    ] {
        // Built before the simulated (paused) runtime starts, so it is
        // told to read tokio's clock: the default clock would follow the
        // real time instead (see `buttress::common::default_clock`).
        let policy = RetryPolicy::builder("storm")
            .config(config)
            .clock(TokioClock)
            .random(sim::Seeded::new(7))
            .build()
            .expect("valid policy");
        let (amp, drain) = sim::simulate(run(&setup, policy));
        println!("| {label} | {amp:.2} | {:.2} s |", drain.as_secs_f64());
        results.push(amp);
    }
    let (plain_amp, budget_amp) = (results[0], results[1]);
    println!();
    let ok = budget_amp <= 1.25 && plain_amp >= 3.5;
    println!(
        "goal: budget ≤ 1.25 ({budget_amp:.2}), plain ≥ 3.5 ({plain_amp:.2}): {}",
        if ok { "met" } else { "NOT met" }
    );
    if !ok {
        std::process::exit(1);
    }
}
