//! upstream-sim: the LLM server's, the embeddings service's and Qdrant's
//! APIs with scriptable faults (`buttress_stack::sim` has the paths).
//!
//! ```text
//! upstream-sim [--port 8090] [--seed 1] [--collection documents] [--faults JSON]
//! curl -X PUT localhost:8090/faults -d '{"llm": {"outage": {"for": "10s"}}}'
//! ```
//! Flags win over the environment (`PORT`, `BIND`, `SIM_SEED`, `SIM_FAULTS`,
//! `QDRANT_COLLECTION`).

use std::process::ExitCode;

use buttress::health::{Readiness, Shutdown};
use buttress_stack::env::Env;
use buttress_stack::serving;
use buttress_stack::sim::{self, Sim, SimConfig};

const USAGE: &str = "usage: upstream-sim [--port PORT] [--bind ADDR] [--seed N] [--collection NAME] [--faults JSON]
  --faults '{\"llm\": {\"error_rate\": 0.1}, \"qdrant\": {\"latency\": {\"fixed\": \"2s\"}}}'
  faults of an API: latency ({\"fixed\": D} | {\"uniform\": {\"min\": D, \"max\": D}} | {\"p50\": D, \"p99\": D}),
  error_rate, error_status, reset_rate, hang, outage {\"after\": D, \"for\": D}, loading D";

fn main() -> ExitCode {
    serving::init_logging();
    let mut vars = std::collections::BTreeMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let name = match flag.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "--port" => "PORT",
            "--bind" => "BIND",
            "--seed" => "SIM_SEED",
            "--faults" => "SIM_FAULTS",
            "--collection" => "QDRANT_COLLECTION",
            other => {
                eprintln!("upstream-sim: unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        };
        let Some(value) = args.next() else {
            eprintln!("upstream-sim: {flag} needs a value\n{USAGE}");
            return ExitCode::from(2);
        };
        vars.insert(name.to_owned(), value);
    }
    let env = Env::process();
    let lookup = |name: &'static str| vars.get(name).cloned().or_else(|| env.get(name));
    let mut with_flags: std::collections::BTreeMap<String, String> = Default::default();
    for name in [
        "PORT",
        "BIND",
        "SIM_SEED",
        "SIM_FAULTS",
        "QDRANT_COLLECTION",
    ] {
        if let Some(v) = lookup(name) {
            with_flags.insert(name.to_owned(), v);
        }
    }
    let env = Env::from_map(with_flags);
    let (listen, config) = match SimConfig::from_env(&env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("upstream-sim: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("upstream-sim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match serving::bind(listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("upstream-sim: {e}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(address = %listen, seed = config.seed, "upstream-sim listening");
        // SIGTERM (a container's stop) or SIGINT (Ctrl-C): stop accepting,
        // let open requests finish for 2 s, drop the hung ones.
        let shutdown = Shutdown::new(Readiness::new());
        if let Err(e) = shutdown.listen_for_signals() {
            eprintln!("upstream-sim: cannot listen for signals: {e}");
            return ExitCode::FAILURE;
        }
        match sim::serve(listener, Sim::new(config), shutdown.signalled()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("upstream-sim: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
