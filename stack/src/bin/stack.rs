//! The whole stack on localhost in one process: the knowledge API, the
//! embeddings service, upstream-sim (as the LLM server and Qdrant) and the
//! learner.
//!
//! ```text
//! cargo run --release -p buttress-stack --bin stack
//! ```
//! PostgreSQL and Redis are used when `DATABASE_URL` / `REDIS_URL` are set;
//! otherwise the documents, limits and cache stay in memory. `PORT` (8080)
//! is the knowledge API's; the embeddings service takes the next port,
//! upstream-sim the one after and the learner the one after that. Ctrl-C
//! stops everything.
//!
//! `--demo` runs a scripted outage of each upstream instead (about 15 s),
//! printing what a client sees, then stops.

use std::process::ExitCode;

use buttress_stack::env::Env;
use buttress_stack::knowledge::KnowledgeConfig;
use buttress_stack::learner::LearnerConfig;
use buttress_stack::serving;
use buttress_stack::sim::SimConfig;
use buttress_stack::stack::{self, StackConfig};

#[tokio::main]
async fn main() -> ExitCode {
    serving::init_logging();
    // Before anything is built (see `install_metrics`).
    serving::install_metrics();
    let demo = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--demo") => true,
        Some("-h" | "--help") => {
            println!(
                "usage: stack [--demo]\n  the knowledge API, the embeddings service and upstream-sim on localhost; --demo runs a scripted outage and stops"
            );
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("stack: unknown argument {other:?} (try --help)");
            return ExitCode::from(2);
        }
    };
    let mut knowledge = match KnowledgeConfig::from_env(&Env::process()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("stack: {e}");
            return ExitCode::from(2);
        }
    };
    let scratch = std::env::temp_dir().join(format!("buttress-stack-{}", std::process::id()));
    if std::env::var_os("JOURNAL_DIR").is_none() {
        knowledge.journal_dir = scratch.join("telemetry");
    }
    if demo && knowledge.policy_file.is_none() {
        // Breakers that probe every 3 s, so the demo sees them close.
        let file = scratch.join("demo-policy.toml");
        let written = std::fs::create_dir_all(&scratch)
            .and_then(|()| std::fs::write(&file, buttress_stack::demo::demo_policy()));
        if let Err(e) = written {
            eprintln!(
                "stack: cannot write the demo policy to {}: {e}",
                file.display()
            );
            return ExitCode::FAILURE;
        }
        knowledge.policy_file = Some(file);
    }
    let mut learner = match LearnerConfig::from_env(&Env::process()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("stack: {e}");
            return ExitCode::from(2);
        }
    };
    if std::env::var_os("CHECKPOINT_DIR").is_none() {
        learner.checkpoint_dir = scratch.join("learner");
    }
    let listeners = match stack::bind(knowledge.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("stack: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (db, redis) = (
        knowledge.database_url.is_some(),
        knowledge.redis_url.is_some(),
    );
    let journal = knowledge.journal_dir.clone();
    let config = StackConfig {
        knowledge,
        learner,
        sim: SimConfig::default(),
    };
    let running = match stack::start(config, listeners).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("stack: {e}");
            return ExitCode::FAILURE;
        }
    };
    let a = running.addresses;
    let k = a.knowledge.port();
    println!("buttress stack");
    println!(
        "  knowledge API   http://127.0.0.1:{k}   (POST /query, /health, /readyz, /metrics, /admin)"
    );
    println!(
        "  embeddings      http://127.0.0.1:{}   (POST /v1/embeddings)",
        a.embeddings.port()
    );
    println!(
        "  upstream-sim    http://127.0.0.1:{}   (the LLM at /llm, Qdrant at /qdrant; PUT /faults)",
        a.sim.port()
    );
    println!(
        "  learner         http://127.0.0.1:{}   (GET /learning/stats: the patterns learned from the telemetry)",
        a.learner.port()
    );
    println!(
        "  documents       {}",
        if db {
            "PostgreSQL (DATABASE_URL)"
        } else {
            "in memory (set DATABASE_URL for PostgreSQL)"
        }
    );
    println!(
        "  limits, cache   {}",
        if redis {
            "Redis (REDIS_URL)"
        } else {
            "in process (set REDIS_URL for Redis)"
        }
    );
    if std::env::var_os("JOURNAL_DIR").is_none() {
        println!(
            "  telemetry       {} (removed at exit; set JOURNAL_DIR to keep it)",
            journal.display()
        );
    } else {
        println!("  telemetry       {}", journal.display());
    }
    println!();
    println!(
        "  curl -s localhost:{k}/query -d '{{\"question\": \"How does a circuit breaker probe?\"}}'"
    );
    println!(
        "  curl -s -X PUT localhost:{}/faults -d '{{\"llm\": {{\"outage\": {{\"for\": \"30s\"}}}}}}'",
        a.sim.port()
    );
    println!("  open http://127.0.0.1:{k}/admin");
    if demo {
        if let Err(e) = buttress_stack::demo::run(&running).await {
            eprintln!("stack: the demo failed: {e}");
            running.stop();
            running.wait().await;
            return ExitCode::FAILURE;
        }
        println!("\nstopping");
    } else {
        println!("Ctrl-C stops it.");
        let _ = tokio::signal::ctrl_c().await;
        println!("stopping");
    }
    running.stop();
    let outcome = running.wait().await;
    if std::env::var_os("JOURNAL_DIR").is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    ExitCode::from(outcome.exit_code() as u8)
}
