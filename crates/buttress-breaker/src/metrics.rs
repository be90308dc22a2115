//! Metric handles, registered once when the breaker is built so that the
//! call path only increments them.
//!
//! Install the `metrics` recorder before building breakers: handles taken
//! before a recorder exists stay no-ops.

use metrics::{Counter, Gauge};

use buttress_core::{Name, Outcome};

use crate::state::State;

#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    name: Name,
    success: Counter,
    failure: Counter,
    ignored: Counter,
    slow: Counter,
    rejected: Counter,
    state: Gauge,
}

impl Metrics {
    pub(crate) fn new(name: &Name) -> Self {
        let label = name.to_string();
        let calls = |outcome: &'static str| metrics::counter!("buttress_breaker_calls_total", "name" => label.clone(), "outcome" => outcome);
        let m = Self {
            name: name.clone(),
            success: calls("success"),
            failure: calls("failure"),
            ignored: calls("ignored"),
            slow: metrics::counter!("buttress_breaker_slow_calls_total", "name" => label.clone()),
            rejected: metrics::counter!("buttress_breaker_rejected_total", "name" => label.clone()),
            state: metrics::gauge!("buttress_breaker_state", "name" => label),
        };
        m.state.set(f64::from(State::Closed as u8));
        m
    }

    #[inline]
    pub(crate) fn recorded(&self, outcome: Outcome, slow: bool) {
        match outcome {
            Outcome::Success => self.success.increment(1),
            Outcome::Failure => self.failure.increment(1),
            Outcome::Ignored => self.ignored.increment(1),
        }
        if slow {
            self.slow.increment(1);
        }
    }

    #[inline]
    pub(crate) fn rejected(&self) {
        self.rejected.increment(1);
    }

    /// Counts a transition and sets the gauge to the state as it is now.
    pub(crate) fn transition(&self, from: State, to: State, now: State) {
        self.state.set(f64::from(now as u8));
        metrics::counter!(
            "buttress_breaker_transitions_total",
            "name" => self.name.to_string(),
            "from" => from.as_str(),
            "to" => to.as_str()
        )
        .increment(1);
    }
}
