//! The learner binary killed with `kill -9` at random moments: the loop
//! the kill tests of both telemetry sources share.

use std::time::Duration;

use super::process::{Run, field};

/// Where a run resumed (events processed by the checkpoint).
fn resumed(line: &str) -> u64 {
    if line.contains("no checkpoint") {
        0
    } else {
        field(line, "events").expect("events in the resume line")
    }
}

fn is_start(line: &str) -> bool {
    line.contains("resuming from the checkpoint") || line.contains("no checkpoint")
}

/// The highest event a run began to process (a batch is logged before its
/// writes, so every event whose effects may be stored is counted).
fn attempted(log: &[String]) -> Option<u64> {
    log.iter()
        .filter(|l| l.contains("processing events"))
        .filter_map(|l| field(l, "to"))
        .max()
}

/// What [`kill_9_at_random_moments`] leaves: how many events each restart
/// redid, and the last run (started, not killed), resumed at `from`.
pub struct KillRuns {
    /// Events redone by each restart.
    pub redone: Vec<u64>,
    /// The last run, left running.
    pub last: Run,
    /// Where the last run resumed.
    pub from: u64,
}

/// Runs the learner with `vars` and kills it with `kill -9` at `kills`
/// random moments over `events` events (each a little after a batch
/// began, so that kills land anywhere in a batch: in its write, between
/// the write and the save, in the save), asserting that every restart
/// resumes at most `every` events before what the killed run had begun;
/// then starts a last run.
pub fn kill_9_at_random_moments(
    vars: &[(String, String)],
    events: u64,
    kills: usize,
    every: u64,
    seed: u64,
) -> KillRuns {
    // Kill points spread over the journal, each a little after a batch
    // began, so that kills land anywhere in a batch: in its write, between
    // the write and the save, in the save.
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut targets: Vec<u64> = (0..kills).map(|_| rng.u64(0..events)).collect();
    targets.sort_unstable();
    let mut previous: Option<u64> = None;
    let mut redone = Vec::new();
    for target in targets {
        let mut run = Run::start(env!("CARGO_BIN_EXE_learner"), vars);
        let start = run.until("a start", is_start);
        let from = resumed(&start);
        if let Some(before) = previous {
            assert!(
                from <= before,
                "resumed at {from}, past what was processed ({before})"
            );
            assert!(
                before - from <= every,
                "a restart redoes {} events (from {from} to {before}):\n{}",
                before - from,
                run.log.join("\n")
            );
            redone.push(before - from);
        }
        if from < events {
            run.until("the kill point", |l| {
                l.contains("processing events")
                    && field(l, "to").is_some_and(|to| to >= target.max(from + 1))
            });
        }
        std::thread::sleep(Duration::from_micros(rng.u64(0..4_000)));
        run.kill_9();
        previous = Some(attempted(&run.log).unwrap_or(from).max(from));
    }

    // A last run to the end.
    let mut run = Run::start(env!("CARGO_BIN_EXE_learner"), vars);
    let start = run.until("a start", is_start);
    let from = resumed(&start);
    let before = previous.unwrap_or(from);
    assert!(from <= before && before - from <= every, "{from} {before}");
    redone.push(before - from);
    KillRuns {
        redone,
        last: run,
        from,
    }
}

/// `/learning/stats` of the learner `run`, once it has processed `events`
/// (or after 60 s).
pub async fn stats_once_processed(
    run: &mut Run,
    events: u64,
) -> buttress_stack::learner::LearningStats {
    let address = run.address();
    let client = buttress_stack::client::JsonClient::new("learner", &format!("http://{address}"));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let stats: buttress_stack::learner::LearningStats =
            client.get("/learning/stats").await.expect("stats");
        if stats.journal.events == events || std::time::Instant::now() > deadline {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
