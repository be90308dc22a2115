//! Checks of the error convention: causes stay behind `source()`, and no
//! error's message repeats its cause's.

use std::error::Error;

/// An error and its causes, joined by ": " (what a report prints).
pub fn chain(error: &(dyn Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        out.push_str(": ");
        out.push_str(&e.to_string());
        next = e.source();
    }
    out
}

/// Panics when an error's message, or any cause's, repeats the message of
/// its own cause (a report would print it twice).
pub fn assert_no_repetition(error: &(dyn Error + 'static)) {
    let mut current = error;
    while let Some(source) = current.source() {
        let (outer, inner) = (current.to_string(), source.to_string());
        assert!(
            !outer.contains(&inner),
            "{outer:?} repeats its source {inner:?}"
        );
        current = source;
    }
}
