//! The command line: which dependencies, how to poll, what to run after.

use std::time::Duration;

use buttress_health::WaitOptions;
use buttress_health::checks::{self, HttpCheck, TcpCheck};

pub(crate) const USAGE: &str = "\
usage: buttress-wait [DEPENDENCY]... [OPTION]... [-- COMMAND [ARG]...]

Waits until every dependency is healthy, then exits 0 or runs COMMAND.

dependencies (at least one):
  --tcp HOST:PORT            healthy when a TCP connection opens
  --http URL                 healthy on a 2xx answer to a GET (http:// only)
    --expect-status CODE       ...on this status instead
    --expect-json KEY=VALUE    ...when the JSON body's KEY (a.b for nested) is VALUE
    --expect-text TEXT         ...when the body contains TEXT
  (each --expect-* applies to the --http before it)

options:
  --interval DURATION        time between probes (default 5s)
  --timeout DURATION         give up after this long (default 3m)
  --probe-timeout DURATION   the longest one probe may take (default 5s)
  -q, --quiet                print nothing but the final error
  -h, --help                 print this

exit: 0 all healthy (or COMMAND's status), 1 timed out, 2 bad arguments";

/// One dependency to wait for.
pub(crate) enum Dependency {
    Tcp(TcpCheck),
    Http(HttpCheck),
}

/// What the command line asks for.
pub(crate) struct Args {
    pub(crate) dependencies: Vec<(String, Dependency)>,
    pub(crate) options: WaitOptions,
    pub(crate) quiet: bool,
    pub(crate) command: Vec<String>,
}

/// Parses the arguments after the program name; the error is the line
/// to print before the usage.
pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut args = args.into_iter();
    let mut parsed = Args {
        dependencies: Vec::new(),
        options: WaitOptions::default(),
        quiet: false,
        command: Vec::new(),
    };
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "-q" | "--quiet" => parsed.quiet = true,
            "--tcp" => {
                let address = value("--tcp")?;
                if !address.contains(':') {
                    return Err(format!("--tcp {address}: write HOST:PORT"));
                }
                parsed
                    .dependencies
                    .push((address.clone(), Dependency::Tcp(checks::tcp(address))));
            }
            "--http" => {
                let url = value("--http")?;
                let check = checks::http(&url).map_err(|e| e.to_string())?;
                parsed.dependencies.push((url, Dependency::Http(check)));
            }
            "--expect-status" | "--expect-json" | "--expect-text" => {
                let v = value(&arg)?;
                let Some((_, Dependency::Http(check))) = parsed.dependencies.last_mut() else {
                    return Err(format!("{arg} must follow an --http"));
                };
                let c = check.clone();
                *check = match arg.as_str() {
                    "--expect-status" => {
                        let code =
                            v.parse::<u16>().ok().and_then(http_status).ok_or_else(|| {
                                format!("--expect-status {v}: not an HTTP status")
                            })?;
                        c.expect_status(code)
                    }
                    "--expect-json" => {
                        let (key, expected) = v
                            .split_once('=')
                            .filter(|(k, _)| !k.is_empty())
                            .ok_or_else(|| format!("--expect-json {v}: write KEY=VALUE"))?;
                        c.expect_json(key, expected)
                    }
                    _ => c.body_contains(v),
                };
            }
            "--interval" => {
                parsed.options = parsed.options.interval(duration(&arg, &value(&arg)?)?)
            }
            "--timeout" => parsed.options = parsed.options.timeout(duration(&arg, &value(&arg)?)?),
            "--probe-timeout" => {
                parsed.options = parsed.options.probe_timeout(duration(&arg, &value(&arg)?)?);
            }
            "--" => {
                parsed.command = args.by_ref().collect();
                if parsed.command.is_empty() {
                    return Err("-- must be followed by a command".to_owned());
                }
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if parsed.dependencies.is_empty() {
        return Err("nothing to wait for: give at least one --tcp or --http".to_owned());
    }
    Ok(Some(parsed))
}

fn http_status(code: u16) -> Option<buttress_health::checks::StatusCode> {
    buttress_health::checks::StatusCode::from_u16(code).ok()
}

fn duration(flag: &str, text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text)
        .map_err(|e| format!("{flag} {text}: {e} (write 500ms, 5s, 3m)"))?;
    if d.is_zero() {
        return Err(format!("{flag} {text}: must be more than zero"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Option<Args>, String> {
        parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn the_stack_scripts_line_parses() {
        let args = parse_line(
            "--tcp 127.0.0.1:5432 --http http://127.0.0.1:8081/health --expect-json status=ok \
             --interval 5s --timeout 3m -- ./server --port 8080",
        )
        .expect("valid")
        .expect("not help");
        let names: Vec<&str> = args.dependencies.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["127.0.0.1:5432", "http://127.0.0.1:8081/health"]);
        assert_eq!(args.options.interval, Duration::from_secs(5));
        assert_eq!(args.options.timeout, Duration::from_secs(180));
        assert_eq!(args.command, ["./server", "--port", "8080"]);
        assert!(!args.quiet);
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        for (line, message) in [
            ("", "nothing to wait for: give at least one --tcp or --http"),
            ("--tcp", "--tcp needs a value"),
            ("--tcp localhost", "--tcp localhost: write HOST:PORT"),
            ("--expect-json a=b", "--expect-json must follow an --http"),
            (
                "--tcp h:1 --expect-text x",
                "--expect-text must follow an --http",
            ),
            (
                "--http http://h/ --expect-json ab",
                "--expect-json ab: write KEY=VALUE",
            ),
            (
                "--http http://h/ --expect-status 1000",
                "--expect-status 1000: not an HTTP status",
            ),
            (
                "--tcp h:1 --interval 0s",
                "--interval 0s: must be more than zero",
            ),
            (
                "--tcp h:1 --frobnicate",
                "unknown argument \"--frobnicate\"",
            ),
            ("--tcp h:1 --", "-- must be followed by a command"),
            (
                "--http https://h/",
                "\"https://h/\": only http:// URLs can be checked, not https://",
            ),
        ] {
            assert_eq!(parse_line(line).err().as_deref(), Some(message), "{line}");
        }
        assert!(
            parse_line("--tcp h:1 --timeout soon")
                .err()
                .expect("an error")
                .starts_with("--timeout soon: ")
        );
        assert!(parse_line("--help").expect("valid").is_none());
    }
}
