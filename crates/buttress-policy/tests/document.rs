//! Reading documents: each malformed one in the table yields its path and
//! line; a complete one reads the same in all three formats.

use buttress_policy::{Format, PolicyDocument};

/// A document, its format, and the first problem expected: its path, its
/// line, and a piece of its message.
struct Case {
    name: &'static str,
    format: Format,
    text: &'static str,
    path: &'static str,
    line: usize,
    says: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "toml syntax",
        format: Format::Toml,
        text: "[service]\nname = \"api\"\n[dependencies.llm\ntimeout = \"1s\"\n",
        path: "(document)",
        line: 3,
        says: "unclosed table, expected `]`",
    },
    Case {
        name: "toml unknown top-level key",
        format: Format::Toml,
        text: "[service]\nname = \"api\"\n\n[servce]\nname = \"x\"\n",
        path: "servce",
        line: 4,
        says: "unknown field `servce`",
    },
    Case {
        name: "toml unknown breaker key",
        format: Format::Toml,
        text: "[dependencies.llm.breaker]\nconsecutive_failures = 3\nopen_for = \"60s\"\n",
        path: "dependencies.llm.breaker.open_for",
        line: 3,
        says: "unknown field `open_for`",
    },
    Case {
        name: "toml wrong type",
        format: Format::Toml,
        text: "[dependencies.db]\ncritical = true\ntimeout = 30\n",
        path: "dependencies.db.timeout",
        line: 3,
        says: "invalid type",
    },
    Case {
        name: "toml bad duration",
        format: Format::Toml,
        text: "[dependencies.db]\ntimeout = \"30 parsecs\"\n",
        path: "dependencies.db.timeout",
        line: 2,
        says: "expected a duration",
    },
    Case {
        name: "toml failure rate out of range",
        format: Format::Toml,
        text: "[service]\nname = \"knowledge-api\"\n\n[dependencies.llm]\ntimeout = \"30s\"\n\n[dependencies.llm.breaker]\nminimum_calls = 5\nfailure_rate_threshold = 1.5\n",
        path: "dependencies.llm.breaker.failure_rate_threshold",
        line: 9,
        says: "must be in (0, 1], got 1.5",
    },
    Case {
        name: "toml zero consecutive failures",
        format: Format::Toml,
        text: "[dependencies.llm.breaker]\nconsecutive_failures = 0\n",
        path: "dependencies.llm.breaker.consecutive_failures",
        line: 2,
        says: "at least 1",
    },
    Case {
        name: "toml zero open period in an inline table",
        format: Format::Toml,
        text: "[dependencies.llm]\nbreaker = { consecutive_failures = 3, open = { kind = \"fixed\", duration = \"0s\" } }\n",
        path: "dependencies.llm.breaker.open.duration",
        line: 2,
        says: "must be above zero",
    },
    Case {
        name: "toml zero attempts",
        format: Format::Toml,
        text: "[dependencies.db]\ntimeout = \"5s\"\n[dependencies.db.retry]\nmax_attempts = 0\n",
        path: "dependencies.db.retry.max_attempts",
        line: 4,
        says: "must be 1 to 1000, got 0",
    },
    Case {
        name: "toml zero rate",
        format: Format::Toml,
        text: "[dependencies.llm]\nrate_limit = { count = 0, per = \"1s\" }\n",
        path: "dependencies.llm.rate_limit",
        line: 2,
        says: "at least one request",
    },
    Case {
        name: "toml watermarks the wrong way round",
        format: Format::Toml,
        text: "[service.backpressure]\nwatermarks = { high = \"50MB\", low = \"100MB\" }\n",
        path: "service.backpressure.watermarks",
        line: 2,
        says: "must be below high",
    },
    Case {
        name: "toml bad exempt network",
        format: Format::Toml,
        text: "[service.inbound]\nrate = { count = 150, per = \"1m\" }\nexempt = [\n  \"127.0.0.0/8\",\n  \"300.1.1.1/8\",\n]\n",
        path: "service.inbound.exempt[1]",
        line: 5,
        says: "300.1.1.1/8",
    },
    Case {
        name: "toml unknown fallback reason",
        format: Format::Toml,
        text: "[dependencies.llm.fallback]\non = [\"timed_out\", \"circuit_opened\"]\n",
        path: "dependencies.llm.fallback.on[1]",
        line: 2,
        says: "unknown reason `circuit_opened`",
    },
    Case {
        name: "toml zero cache ttl",
        format: Format::Toml,
        text: "[dependencies.llm.cache]\nmax_entries = 100\nttl = \"0s\"\n",
        path: "dependencies.llm.cache.ttl",
        line: 3,
        says: "must be above zero",
    },
    Case {
        name: "toml no running slot",
        format: Format::Toml,
        text: "[dependencies.llm]\nconcurrency = { max_running = 0 }\n",
        path: "dependencies.llm.concurrency",
        line: 2,
        says: "max_running must be at least 1",
    },
    Case {
        name: "toml empty checkpoint policy",
        format: Format::Toml,
        text: "[service]\nname = \"learner\"\n[service.checkpoint]\n",
        path: "service.checkpoint",
        line: 3,
        says: "every_events, every, or both",
    },
    Case {
        name: "toml unusable dependency name",
        format: Format::Toml,
        text: "[dependencies.\"  \"]\ntimeout = \"1s\"\n",
        path: "dependencies.  ",
        line: 1,
        says: "not a usable name",
    },
    Case {
        name: "yaml syntax",
        format: Format::Yaml,
        text: "dependencies:\n  llm:\n    timeout: \"30s\n",
        path: "(document)",
        line: 3,
        says: "found unexpected end of stream",
    },
    Case {
        name: "yaml unknown key",
        format: Format::Yaml,
        text: "service:\n  name: api\ndependencies:\n  llm:\n    retry:\n      max_atempts: 3\n",
        path: "dependencies.llm.retry.max_atempts",
        line: 6,
        says: "unknown field `max_atempts`",
    },
    Case {
        name: "yaml threshold",
        format: Format::Yaml,
        text: "dependencies:\n  llm:\n    breaker:\n      minimum_calls: 5\n      failure_rate_threshold: 0\n",
        path: "dependencies.llm.breaker.failure_rate_threshold",
        line: 5,
        says: "must be in (0, 1]",
    },
    Case {
        name: "yaml a second document",
        format: Format::Yaml,
        text: "service:\n  name: a\n---\nservice:\n  name: b\n",
        path: "(document)",
        line: 4,
        says: "one document per file",
    },
    Case {
        name: "yaml bad exempt network",
        format: Format::Yaml,
        text: "service:\n  inbound:\n    rate: { count: 150, per: 1m }\n    exempt:\n      - 127.0.0.0/8\n      - 10.0.0.0/33\n",
        path: "service.inbound.exempt[1]",
        line: 6,
        says: "10.0.0.0/33",
    },
    Case {
        name: "yaml a key that is a list",
        format: Format::Yaml,
        text: "dependencies:\n  ? [a, b]\n  : {}\n",
        path: "(document)",
        line: 2,
        says: "keys that are not plain words",
    },
    Case {
        name: "toml a number in a list of networks",
        format: Format::Toml,
        text: "[service.inbound]\nrate = { count = 1, per = \"1s\" }\nexempt = [\n  \"127.0.0.0/8\",\n  5,\n]\n",
        path: "service.inbound.exempt[1]",
        line: 5,
        says: "invalid type: integer `5`, expected a string",
    },
    Case {
        name: "toml a timeout past 100 years",
        format: Format::Toml,
        text: "[dependencies.db]\ntimeout = \"36501days\"\n",
        path: "dependencies.db.timeout",
        line: 2,
        says: "must be at most 100 years",
    },
    Case {
        name: "toml a stale window past 100 years",
        format: Format::Toml,
        text: "[dependencies.db.cache]\nstale_if_error = \"36501days\"\n",
        path: "dependencies.db.cache.stale_if_error",
        line: 2,
        says: "must be at most 100 years",
    },
    Case {
        name: "toml a retry budget out of range, with its cause",
        format: Format::Toml,
        text: "[dependencies.db.retry]\nbudget = { kind = \"ratio\", ratio = 500.0, min_per_second = 1.0, window = \"10s\" }\n",
        path: "dependencies.db.retry.budget",
        line: 2,
        says: "invalid retry budget: budget ratio must be in [0, 100], got 500",
    },
    Case {
        name: "toml a breaker with no rule",
        format: Format::Toml,
        text: "[dependencies.db]\nbreaker = { failure_rate_threshold = \"off\" }\n",
        path: "dependencies.db.breaker",
        line: 2,
        says: "no trip rule: set consecutive_failures, failure_rate_threshold or slow_call_rate_threshold",
    },
    Case {
        name: "json syntax",
        format: Format::Json,
        text: "{\n  \"service\": {\n    \"name\": \"api\",\n  }\n}\n",
        path: "(document)",
        line: 4,
        says: "trailing comma",
    },
    Case {
        name: "json unknown key",
        format: Format::Json,
        text: "{\n  \"dependencies\": {\n    \"llm\": {\n      \"timeout\": \"30s\",\n      \"breakr\": {}\n    }\n  }\n}\n",
        path: "dependencies.llm.breakr",
        line: 5,
        says: "unknown field `breakr`",
    },
    Case {
        name: "json attempt timeout",
        format: Format::Json,
        text: "{\n  \"dependencies\": {\n    \"db\": {\n      \"attempt_timeout\": \"0s\"\n    }\n  }\n}\n",
        path: "dependencies.db.attempt_timeout",
        line: 4,
        says: "must be above zero",
    },
];

#[test]
fn each_malformed_document_names_its_path_and_line() {
    let mut failures = Vec::new();
    for case in CASES {
        let problems = match PolicyDocument::parse(case.text, case.format) {
            Ok(_) => {
                failures.push(format!("{}: accepted", case.name));
                continue;
            }
            Err(e) => e.problems().to_vec(),
        };
        let first = &problems[0];
        let seen = (first.path.to_string(), first.line);
        if seen != (case.path.to_owned(), Some(case.line)) || !first.message.contains(case.says) {
            failures.push(format!(
                "{}: expected {} line {} saying {:?}; got {first}",
                case.name, case.path, case.line, case.says
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_problem_is_reported_at_once_in_line_order() {
    let text = r#"
[dependencies.llm]
timeout = "0s"

[dependencies.llm.breaker]
consecutive_failures = 0

[dependencies.db.retry]
max_attempts = 0
"#;
    let e = PolicyDocument::parse(text, Format::Toml).expect_err("three problems");
    let lines: Vec<String> = e.problems().iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "dependencies.llm.timeout: must be above zero, line 3",
            "dependencies.llm.breaker.consecutive_failures: must be at least 1, line 6",
            "dependencies.db.retry.max_attempts: must be 1 to 1000, got 0, line 9",
        ]
    );
    assert!(e.to_string().starts_with("invalid policy (3 problems):"));
}

const FULL: &str = r#"
[service]
name = "knowledge-api"
inbound = { rate = { count = 150, per = "1m" }, exempt = ["127.0.0.0/8", "::1/128", "10.0.0.0/8"] }
backpressure = { watermarks = { high = "100MB", low = "50MB" }, retry_after = "5s" }
checkpoint = { every_events = 100, every = "30s" }

[dependencies.llm]
critical = true
timeout = "30s"
attempt_timeout = "10s"
retry = { max_attempts = 3, backoff = { kind = "full_jitter", base = "100ms", factor = 2.0, max = "2s" }, budget = { kind = "ratio", ratio = 0.2, min_per_second = 5.0, window = "10s" } }
rate_limit = { count = 50, per = "1s", burst = 10 }
concurrency = { max_running = 8, max_queued = 100, timeout = "60s" }
breaker = { consecutive_failures = 3, open = { kind = "fixed", duration = "120s" }, half_open_permits = 1 }
fallback = { on = ["circuit_open", "timed_out"] }
cache = { ttl = "5m", stale_if_error = "1h", max_entries = 1000 }

[dependencies.embeddings]
critical = false
timeout = "5s"
breaker = { consecutive_failures = 5, open = { kind = "fixed", duration = "60s" } }
"#;

#[test]
fn a_complete_document_reads_the_same_in_every_format() {
    let doc = PolicyDocument::parse(FULL, Format::Toml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc.dependencies.len(), 2);
    assert!(!doc.dependencies["embeddings"].critical);
    for format in [Format::Toml, Format::Yaml, Format::Json] {
        let text = doc.to_text(format);
        let again = PolicyDocument::parse(&text, format)
            .unwrap_or_else(|e| panic!("{format} does not read back: {e}\n{text}"));
        assert_eq!(again, doc, "{format}:\n{text}");
    }
}

#[test]
fn an_empty_document_is_an_empty_policy() {
    for (text, format) in [("", Format::Toml), ("", Format::Yaml), ("{}", Format::Json)] {
        assert_eq!(
            PolicyDocument::parse(text, format).expect("empty is valid"),
            PolicyDocument::default()
        );
    }
}

#[test]
fn a_document_built_in_code_is_checked_too() {
    let mut doc = PolicyDocument::default();
    let mut db = buttress_policy::DependencyPolicy::default();
    db.attempt_timeout = Some(std::time::Duration::ZERO);
    doc.dependencies.insert("db".into(), db);
    let e = doc.validate().expect_err("a zero timeout");
    assert_eq!(
        e.to_string(),
        "invalid policy: dependencies.db.attempt_timeout: must be above zero"
    );
    let e = buttress_policy::Policy::new(doc).expect_err("checked before it is built");
    assert_eq!(
        e.problems()[0].path.to_string(),
        "dependencies.db.attempt_timeout"
    );
}

#[test]
fn a_hundred_years_is_the_longest_duration() {
    let text =
        "[dependencies.db]\ntimeout = \"36500days\"\ncache = { stale_if_error = \"36500days\" }\n";
    PolicyDocument::parse(text, Format::Toml).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_message_does_not_repeat_the_key_its_path_names() {
    let e = PolicyDocument::parse(
        "[dependencies.llm]\nbreaker = { consecutive_failures = 3, open = { kind = \"fixed\", duration = \"0s\" } }\n",
        Format::Toml,
    )
    .expect_err("a zero open period");
    assert_eq!(
        e.problems()[0].to_string(),
        "dependencies.llm.breaker.open.duration: must be above zero and at most 100 years, got 0ns, line 2"
    );
}
