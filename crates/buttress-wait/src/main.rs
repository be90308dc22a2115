//! `buttress-wait`: waits until dependencies are healthy, printing each
//! one's progress, then exits 0 or runs a command. See `--help`.

mod args;

use std::process::ExitCode;

use buttress_health::{Check, wait_until_healthy};

use args::{Dependency, USAGE};

fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("buttress-wait: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("buttress-wait: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let dependencies: Vec<(String, Box<dyn Check>)> = args
        .dependencies
        .into_iter()
        .map(|(name, d)| {
            let check: Box<dyn Check> = match d {
                Dependency::Tcp(c) => Box::new(c),
                Dependency::Http(c) => Box::new(c),
            };
            (name, check)
        })
        .collect();
    let quiet = args.quiet;
    let waited = runtime.block_on(wait_until_healthy(dependencies, args.options, |p| {
        if !quiet {
            println!("{p}");
        }
    }));
    if let Err(e) = waited {
        eprintln!("buttress-wait: {e}");
        return ExitCode::from(1);
    }
    drop(runtime);
    if args.command.is_empty() {
        return ExitCode::SUCCESS;
    }
    run(&args.command)
}

/// Becomes `command` (its exit status is the process's).
#[cfg(unix)]
fn run(command: &[String]) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let e = std::process::Command::new(&command[0])
        .args(&command[1..])
        .exec();
    eprintln!("buttress-wait: cannot run {}: {e}", command[0]);
    ExitCode::from(127)
}

/// Runs `command` and exits with its status.
#[cfg(not(unix))]
fn run(command: &[String]) -> ExitCode {
    match std::process::Command::new(&command[0])
        .args(&command[1..])
        .status()
    {
        Ok(status) => ExitCode::from(status.code().unwrap_or(1).clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("buttress-wait: cannot run {}: {e}", command[0]);
            ExitCode::from(127)
        }
    }
}
