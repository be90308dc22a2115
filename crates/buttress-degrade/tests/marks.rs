//! The degraded mark: what a caller, a log line and a JSON body read.

use buttress_core::{Name, RejectionKind};
use buttress_degrade::{Degraded, Mark, Reason, Served, Source, X_DEGRADED};

fn mark(source: Source) -> Degraded {
    Degraded::new(
        Reason::Refused(RejectionKind::CircuitOpen),
        Name::new("llm").expect("valid"),
        source,
    )
}

#[test]
fn a_json_object_gets_the_flag_and_the_reason() {
    let mut body = serde_json::json!({"answer": "canned", "request_id": "r-1"});
    mark(Source::Fallback).mark_json(&mut body);
    assert_eq!(
        body,
        serde_json::json!({
            "answer": "canned",
            "request_id": "r-1",
            "degraded": true,
            "degraded_reason": "circuit_open",
        })
    );
    // Anything but an object is left as it is.
    let mut list = serde_json::json!([1, 2]);
    mark(Source::Fallback).mark_json(&mut list);
    assert_eq!(list, serde_json::json!([1, 2]));
}

#[test]
fn the_mark_reads_well_in_a_log() {
    assert_eq!(Source::Fallback.as_str(), "fallback");
    assert_eq!(Source::Stale.as_str(), "stale");
    assert_eq!(
        mark(Source::Stale).to_string(),
        "degraded answer from stale \"llm\": circuit_open"
    );
    assert_eq!(
        mark(Source::Fallback).to_string(),
        "degraded answer from fallback \"llm\": circuit_open"
    );
}

#[test]
fn responses_and_served_values_carry_the_mark() {
    let mut response = http::Response::new(());
    response.mark_degraded(mark(Source::Stale));
    assert_eq!(response.headers()[X_DEGRADED], "circuit_open");
    let carried = response
        .extensions()
        .get::<Degraded>()
        .expect("an extension");
    assert_eq!(carried.source(), Source::Stale);
    assert_eq!(carried.by().as_str(), "llm");

    let mut served = Served::normal(1);
    assert!(!served.is_degraded());
    served.mark_degraded(mark(Source::Fallback));
    assert!(served.is_degraded());
    assert_eq!(served.into_inner(), 1);
}
