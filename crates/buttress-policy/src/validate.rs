//! The checks a typed reading cannot make: ranges, names, and the rules
//! each primitive's configuration checks for itself, each problem with the
//! path of the key at fault.

use std::time::Duration;

use buttress_limit::{Networks, Quota};

use crate::document::{CachePolicy, DependencyPolicy, PolicyDocument, REASONS, ServicePolicy};
use crate::error::Path;

/// Longer than any sensible timeout; also the bound the primitives use.
const HUNDRED_YEARS: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Every problem of `doc`, with its path.
pub(crate) fn problems(doc: &PolicyDocument) -> Vec<(Path, String)> {
    let mut out = Vec::new();
    service(&doc.service, &mut out);
    for (name, dep) in &doc.dependencies {
        let at = Path::root().key("dependencies").key(name.clone());
        if let Err(e) = buttress_core::Name::new(name) {
            out.push((at.clone(), format!("not a usable name: {e}")));
        }
        dependency(dep, &at, &mut out);
    }
    out
}

fn service(s: &ServicePolicy, out: &mut Vec<(Path, String)>) {
    let at = Path::root().key("service");
    if let Some(name) = &s.name
        && name.trim().is_empty()
    {
        out.push((at.clone().key("name"), "must not be empty".to_owned()));
    }
    if let Some(inbound) = &s.inbound {
        let at = at.clone().key("inbound");
        quota(&inbound.rate, &at.clone().key("rate"), out);
        for (i, net) in inbound.exempt.iter().enumerate() {
            if let Err(e) = Networks::parse(&[net]) {
                out.push((at.clone().key("exempt").index(i), e.to_string()));
            }
        }
    }
    if let Some(c) = &s.checkpoint {
        let at = at.key("checkpoint");
        if c.every_events.is_none() && c.every.is_none() {
            out.push((at.clone(), "set every_events, every, or both".to_owned()));
        }
        if c.every_events == Some(0) {
            out.push((
                at.clone().key("every_events"),
                "must be at least 1".to_owned(),
            ));
        }
        if let Some(d) = c.every {
            duration(d, &at.key("every"), out);
        }
    }
}

fn dependency(d: &DependencyPolicy, at: &Path, out: &mut Vec<(Path, String)>) {
    for (key, value) in [
        ("timeout", d.timeout),
        ("attempt_timeout", d.attempt_timeout),
    ] {
        if let Some(v) = value {
            duration(v, &at.clone().key(key), out);
        }
    }
    if let Some(r) = &d.retry
        && let Err(e) = r.validate()
    {
        out.push((field(at, "retry", e.field()), bare(&chain(&e))));
    }
    if let Some(q) = &d.rate_limit {
        quota(q, &at.clone().key("rate_limit"), out);
    }
    if let Some(c) = &d.shed
        && let Err(e) = c.validate()
    {
        out.push((at.clone().key("shed"), chain(&e)));
    }
    if let Some(c) = &d.concurrency
        && let Err(e) = c.validate()
    {
        out.push((at.clone().key("concurrency"), chain(&e)));
    }
    if let Some(b) = &d.breaker
        && let Err(e) = b.validate()
    {
        out.push((field(at, "breaker", e.field()), bare(&chain(&e))));
    }
    if let Some(f) = &d.fallback {
        for (i, reason) in f.on.iter().enumerate() {
            if !REASONS.contains(&reason.as_str()) {
                out.push((
                    at.clone().key("fallback").key("on").index(i),
                    format!("unknown reason `{reason}`; one of {}", REASONS.join(", ")),
                ));
            }
        }
    }
    if let Some(c) = &d.cache {
        cache(c, &at.clone().key("cache"), out);
    }
}

fn cache(c: &CachePolicy, at: &Path, out: &mut Vec<(Path, String)>) {
    duration(c.ttl, &at.clone().key("ttl"), out);
    if c.stale_if_error > HUNDRED_YEARS {
        out.push((
            at.clone().key("stale_if_error"),
            "must be at most 100 years".to_owned(),
        ));
    }
    if c.max_entries == 0 {
        out.push((
            at.clone().key("max_entries"),
            "must be at least 1".to_owned(),
        ));
    }
}

fn quota(q: &buttress_limit::QuotaConfig, at: &Path, out: &mut Vec<(Path, String)>) {
    if let Err(e) = Quota::try_from(*q) {
        out.push((at.clone(), e.to_string()));
    }
}

fn duration(d: Duration, at: &Path, out: &mut Vec<(Path, String)>) {
    if d.is_zero() {
        out.push((at.clone(), "must be above zero".to_owned()));
    } else if d > HUNDRED_YEARS {
        out.push((at.clone(), "must be at most 100 years".to_owned()));
    }
}

/// An error and its causes, as one line: "invalid retry budget: budget
/// ratio must be in [0, 100], got 500".
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The path of a primitive's key, dotted as its error names it.
fn field(at: &Path, section: &str, key: Option<&str>) -> Path {
    let at = at.clone().key(section);
    match key {
        Some(k) => at.dotted(k),
        None => at,
    }
}

/// A primitive's message without the key it starts with (the path says
/// it): "failure_rate_threshold must be in (0, 1], got 1.5" → "must be in
/// (0, 1], got 1.5".
fn bare(message: &str) -> String {
    match message.split_once(' ') {
        Some((first, rest))
            if first
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.')
                && (rest.starts_with("must ") || rest.starts_with("is ")) =>
        {
            rest.to_owned()
        }
        _ => message.to_owned(),
    }
}
