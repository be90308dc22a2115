//! Metric handles, registered when the policy is built (install the
//! recorder first).

use metrics::{Counter, Histogram};

use buttress_core::Name;

use crate::attempts::{RetryReason, Stop};

#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    attempts: Histogram,
    failure: Counter,
    timeout: Counter,
    retry_after: Counter,
    budget_exhausted: Counter,
    gave_up: Counter,
    not_cloneable: Counter,
}

impl Metrics {
    pub(crate) fn new(name: &Name) -> Self {
        let label = name.to_string();
        let retries = |reason: &'static str| metrics::counter!("buttress_retry_retries_total", "name" => label.clone(), "reason" => reason);
        Self {
            attempts: metrics::histogram!("buttress_retry_attempts", "name" => label.clone()),
            failure: retries(RetryReason::Failure.as_str()),
            timeout: retries(RetryReason::Timeout.as_str()),
            retry_after: retries(RetryReason::RetryAfter.as_str()),
            budget_exhausted: metrics::counter!("buttress_retry_budget_exhausted_total", "name" => label.clone()),
            gave_up: metrics::counter!("buttress_retry_gave_up_total", "name" => label.clone()),
            not_cloneable: metrics::counter!("buttress_retry_not_cloneable_total", "name" => label),
        }
    }

    pub(crate) fn retry(&self, reason: RetryReason) {
        match reason {
            RetryReason::Failure => self.failure.increment(1),
            RetryReason::Timeout => self.timeout.increment(1),
            RetryReason::RetryAfter => self.retry_after.increment(1),
        }
    }

    #[inline]
    pub(crate) fn finished(&self, attempts: u32, stop: Stop) {
        self.attempts.record(f64::from(attempts));
        if stop == Stop::BudgetExhausted {
            self.budget_exhausted.increment(1);
        }
        if stop.gave_up() {
            self.gave_up.increment(1);
        }
    }

    pub(crate) fn not_cloneable(&self) {
        self.not_cloneable.increment(1);
    }
}
