//! The synchronous core: after each attempt, retry (after how long, and
//! why) or stop (and why). No clock reads, no sleeping: time and the random
//! draw come in as arguments.

use std::fmt;
use std::time::Duration;

use buttress_core::{Classification, Outcome};

use crate::backoff::Backoff;

/// Why a retry is made; the `reason` label of `buttress_retry_retries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryReason {
    /// The attempt failed with a retryable error; the backoff chose the
    /// delay.
    Failure,
    /// The attempt took longer than `attempt_timeout`.
    Timeout,
    /// The attempt failed and the server (or a breaker) said when to come
    /// back; that hint set the delay.
    RetryAfter,
}

impl RetryReason {
    /// A short lower-case name.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use buttress_retry::{RetryClassifier, RetryEvent, RetryPolicy, RetryReason, retry_blocking_with};
    ///
    /// let reasons = Arc::new(Mutex::new(Vec::new()));
    /// let seen = Arc::clone(&reasons);
    /// let policy = RetryPolicy::builder("db")
    ///     .max_attempts(3)
    ///     .on_event(move |e| {
    ///         if let RetryEvent::Retrying { reason, .. } = e {
    ///             seen.lock().unwrap().push(reason.as_str());
    ///         }
    ///     })
    ///     .build()?;
    /// let _ = retry_blocking_with(&policy, &RetryClassifier, |_| {}, || Err::<(), _>("down"));
    /// assert_eq!(*reasons.lock().unwrap(), ["failure", "failure"]);
    /// assert_eq!(RetryReason::RetryAfter.to_string(), "retry_after"); // `Display` agrees
    /// # Ok::<(), buttress_retry::ConfigError>(())
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Failure => "failure",
            Self::Timeout => "timeout",
            Self::RetryAfter => "retry_after",
        }
    }
}

impl fmt::Display for RetryReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why retrying stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stop {
    /// The attempt succeeded (or its outcome is ignored and not retryable).
    Done,
    /// The failure is not retryable (a client error, a non-idempotent
    /// request).
    NotRetryable,
    /// `max_attempts` attempts were made.
    MaxAttempts,
    /// The next delay would end past the deadline.
    Deadline,
    /// The server's `Retry-After` lies past the deadline.
    RetryAfterPastDeadline,
    /// The server's `Retry-After` (or an open breaker's remaining time) is
    /// longer than the policy waits (`max_retry_after`): retrying earlier
    /// would only be refused again.
    RetryAfterTooLong,
    /// The retry budget refused.
    BudgetExhausted,
    /// The request could not be cloned for another attempt.
    NotCloneable,
}

impl Stop {
    /// A short lower-case name.
    ///
    /// ```
    /// use buttress_retry::{RetryClassifier, RetryPolicy, Stop, retry_blocking_with};
    ///
    /// let policy = RetryPolicy::builder("db").max_attempts(2).build()?;
    /// let e = retry_blocking_with(&policy, &RetryClassifier, |_| {}, || Err::<(), _>("down"))
    ///     .unwrap_err();
    /// assert_eq!(e.stop().as_str(), "max_attempts");
    /// assert_eq!(Stop::BudgetExhausted.to_string(), "budget_exhausted"); // `Display` agrees
    /// # Ok::<(), buttress_retry::ConfigError>(())
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::NotRetryable => "not_retryable",
            Self::MaxAttempts => "max_attempts",
            Self::Deadline => "deadline",
            Self::RetryAfterPastDeadline => "retry_after_past_deadline",
            Self::RetryAfterTooLong => "retry_after_too_long",
            Self::BudgetExhausted => "budget_exhausted",
            Self::NotCloneable => "not_cloneable",
        }
    }

    /// Whether retrying stopped while the last attempt had failed in a way
    /// that could have been retried: the caller "gave up".
    ///
    /// ```
    /// use buttress_core::{Classification, classify_fn};
    /// use buttress_retry::{RetryPolicy, Stop, retry_blocking_with};
    ///
    /// let classifier = classify_fn(|r: &Result<(), &str>| match r {
    ///     Ok(_) => Classification::SUCCESS,
    ///     Err(e) if *e == "forbidden" => Classification::FATAL_FAILURE,
    ///     Err(_) => Classification::RETRYABLE_FAILURE,
    /// });
    /// let policy = RetryPolicy::builder("api").max_attempts(2).build()?;
    /// // Still failing when the attempts ran out: given up.
    /// let e = retry_blocking_with(&policy, &classifier, |_| {}, || Err("busy")).unwrap_err();
    /// assert!(e.stop().gave_up());
    /// // A failure that no retry could fix: stopped, but not given up.
    /// let e = retry_blocking_with(&policy, &classifier, |_| {}, || Err("forbidden")).unwrap_err();
    /// assert_eq!(e.stop(), Stop::NotRetryable);
    /// assert!(!e.stop().gave_up());
    /// assert!(!Stop::Done.gave_up());
    /// # Ok::<(), buttress_retry::ConfigError>(())
    /// ```
    pub const fn gave_up(self) -> bool {
        matches!(
            self,
            Self::MaxAttempts
                | Self::Deadline
                | Self::RetryAfterPastDeadline
                | Self::RetryAfterTooLong
                | Self::BudgetExhausted
                | Self::NotCloneable
        )
    }
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Retry {
        delay: Duration,
        reason: RetryReason,
    },
    Stop(Stop),
}

/// The rules the core needs, validated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Backoff,
    pub(crate) deadline: Option<Duration>,
    pub(crate) honor_retry_after: bool,
    /// The longest hint waited for; a longer one stops the retry.
    pub(crate) max_retry_after: Duration,
}

/// The state of one request's retries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempts {
    /// Attempts made so far (the first included).
    made: u32,
    previous_delay: Duration,
}

impl Attempts {
    /// Before the first attempt.
    pub(crate) const fn new() -> Self {
        Self {
            made: 0,
            previous_delay: Duration::ZERO,
        }
    }

    /// An attempt starts.
    pub(crate) fn start(&mut self) {
        self.made = self.made.saturating_add(1);
    }

    /// Attempts made so far.
    pub(crate) fn made(&self) -> u32 {
        self.made
    }

    /// The decision after an attempt whose result was classified as `c`
    /// (`timed_out` when the attempt timeout cut it off), `elapsed` after
    /// the first attempt started, with `u` uniform in [0, 1). The budget is
    /// asked last, through `withdraw`, only when everything else allows a
    /// retry, so a retry that would not be made never spends a token.
    pub(crate) fn decide(
        &mut self,
        rules: &Rules,
        c: Classification,
        timed_out: bool,
        elapsed: Duration,
        u: f64,
        withdraw: impl FnOnce() -> bool,
    ) -> Decision {
        if !timed_out && (c.outcome == Outcome::Success || !c.retryable) {
            return Decision::Stop(if c.outcome == Outcome::Failure {
                Stop::NotRetryable
            } else {
                Stop::Done
            });
        }
        if self.made >= rules.max_attempts {
            return Decision::Stop(Stop::MaxAttempts);
        }
        let mut delay = rules.backoff.delay(self.made, self.previous_delay, u);
        let mut reason = if timed_out {
            RetryReason::Timeout
        } else {
            RetryReason::Failure
        };
        if rules.honor_retry_after
            && let Some(hint) = c.retry_after
        {
            // Coming back before the hint would only be refused again (an
            // open breaker refuses every call until its time is up): wait
            // the whole hint, or stop now.
            if rules
                .deadline
                .is_some_and(|deadline| elapsed.saturating_add(hint) >= deadline)
            {
                return Decision::Stop(Stop::RetryAfterPastDeadline);
            }
            if hint > rules.max_retry_after {
                return Decision::Stop(Stop::RetryAfterTooLong);
            }
            if hint > delay {
                delay = hint;
                reason = RetryReason::RetryAfter;
            }
        }
        // A wait that ends at the deadline leaves no time for the attempt.
        if rules
            .deadline
            .is_some_and(|deadline| elapsed.saturating_add(delay) >= deadline)
        {
            return Decision::Stop(Stop::Deadline);
        }
        if !withdraw() {
            return Decision::Stop(Stop::BudgetExhausted);
        }
        self.previous_delay = delay;
        Decision::Retry { delay, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rules(max_attempts: u32, deadline: Option<u64>) -> Rules {
        Rules {
            max_attempts,
            backoff: Backoff::Exponential {
                base: Duration::from_secs(1),
                factor: 2.0,
                max: Duration::from_secs(10),
            },
            deadline: deadline.map(Duration::from_secs),
            honor_retry_after: true,
            max_retry_after: Duration::from_secs(10),
        }
    }

    const FAIL: Classification = Classification::RETRYABLE_FAILURE;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// The labels are the `reason` and `stop` values of the metrics and
    /// logs: dashboards and alerts match on them, so they are pinned here.
    #[test]
    fn reasons_and_stops_carry_their_labels() {
        for (reason, label) in [
            (RetryReason::Failure, "failure"),
            (RetryReason::Timeout, "timeout"),
            (RetryReason::RetryAfter, "retry_after"),
        ] {
            assert_eq!(reason.as_str(), label);
            assert_eq!(reason.to_string(), label);
        }
        // Whether the caller gave up: stopped while the last failure could
        // still have been retried.
        for (stop, label, gave_up) in [
            (Stop::Done, "done", false),
            (Stop::NotRetryable, "not_retryable", false),
            (Stop::MaxAttempts, "max_attempts", true),
            (Stop::Deadline, "deadline", true),
            (
                Stop::RetryAfterPastDeadline,
                "retry_after_past_deadline",
                true,
            ),
            (Stop::RetryAfterTooLong, "retry_after_too_long", true),
            (Stop::BudgetExhausted, "budget_exhausted", true),
            (Stop::NotCloneable, "not_cloneable", true),
        ] {
            assert_eq!(stop.as_str(), label);
            assert_eq!(stop.to_string(), label);
            assert_eq!(stop.gave_up(), gave_up, "{label}");
        }
    }

    #[test]
    fn retries_until_the_attempt_limit() {
        let r = rules(3, None);
        let mut a = Attempts::new();
        a.start();
        assert_eq!(
            a.decide(&r, FAIL, false, secs(0), 0.0, || true),
            Decision::Retry {
                delay: secs(1),
                reason: RetryReason::Failure
            }
        );
        a.start();
        assert_eq!(
            a.decide(&r, FAIL, false, secs(1), 0.0, || true),
            Decision::Retry {
                delay: secs(2),
                reason: RetryReason::Failure
            }
        );
        a.start();
        assert_eq!(
            a.decide(&r, FAIL, false, secs(3), 0.0, || true),
            Decision::Stop(Stop::MaxAttempts)
        );
    }

    #[test]
    fn success_and_fatal_errors_stop() {
        let r = rules(3, None);
        let mut a = Attempts::new();
        a.start();
        assert_eq!(
            a.decide(&r, Classification::SUCCESS, false, secs(0), 0.0, || true),
            Decision::Stop(Stop::Done)
        );
        assert_eq!(
            a.decide(
                &r,
                Classification::FATAL_FAILURE,
                false,
                secs(0),
                0.0,
                || true
            ),
            Decision::Stop(Stop::NotRetryable)
        );
        // A timeout is retried whatever the (absent) result said.
        assert!(matches!(
            a.decide(&r, Classification::IGNORED, true, secs(0), 0.0, || true),
            Decision::Retry {
                reason: RetryReason::Timeout,
                ..
            }
        ));
    }

    #[test]
    fn never_sleeps_past_the_deadline() {
        let r = rules(10, Some(4));
        let mut a = Attempts::new();
        a.start();
        assert!(matches!(
            a.decide(&r, FAIL, false, secs(0), 0.0, || true),
            Decision::Retry { .. }
        )); // 1 s
        a.start();
        assert!(matches!(
            a.decide(&r, FAIL, false, secs(1), 0.0, || true),
            Decision::Retry { .. }
        )); // 2 s, ends at 3
        a.start();
        // 4 s more would end at 7 > 4: give up now.
        assert_eq!(
            a.decide(&r, FAIL, false, secs(3), 0.0, || true),
            Decision::Stop(Stop::Deadline)
        );
    }

    #[test]
    fn retry_after_sets_a_floor_or_stops_when_too_long_or_past_the_deadline() {
        let r = rules(5, Some(30));
        let mut a = Attempts::new();
        a.start();
        let hint = FAIL.with_retry_after(Some(secs(7)));
        assert_eq!(
            a.decide(&r, hint, false, secs(0), 0.0, || true),
            Decision::Retry {
                delay: secs(7),
                reason: RetryReason::RetryAfter
            }
        );
        // A hint no longer than the backoff's delay changes nothing: the
        // backoff chose the wait, and the reason says so.
        let mut b = Attempts::new();
        b.start();
        let same = FAIL.with_retry_after(Some(secs(1)));
        assert_eq!(
            b.decide(&r, same, false, secs(0), 0.0, || true),
            Decision::Retry {
                delay: secs(1),
                reason: RetryReason::Failure
            }
        );
        a.start();
        // Exactly the longest wait allowed: waited for in full.
        let longest = FAIL.with_retry_after(Some(secs(10)));
        assert_eq!(
            a.decide(&r, longest, false, secs(1), 0.0, || true),
            Decision::Retry {
                delay: secs(10),
                reason: RetryReason::RetryAfter
            }
        );
        // Longer than the policy waits: stop, instead of retrying early
        // into a refusal.
        let huge = FAIL.with_retry_after(Some(secs(10) + Duration::from_nanos(1)));
        assert_eq!(
            a.decide(&r, huge, false, secs(1), 0.0, || true),
            Decision::Stop(Stop::RetryAfterTooLong)
        );
        assert!(Stop::RetryAfterTooLong.gave_up());
        // A longer wait allowed: the whole hint is waited for.
        let patient = Rules {
            max_retry_after: secs(60),
            ..rules(5, None)
        };
        let hint_60 = FAIL.with_retry_after(Some(secs(60)));
        assert_eq!(
            a.decide(&patient, hint_60, false, secs(1), 0.0, || true),
            Decision::Retry {
                delay: secs(60),
                reason: RetryReason::RetryAfter
            }
        );
        a.start();
        let past = FAIL.with_retry_after(Some(secs(29)));
        assert_eq!(
            a.decide(&r, past, false, secs(5), 0.0, || true),
            Decision::Stop(Stop::RetryAfterPastDeadline)
        );
        // Ignored when told to.
        let r = Rules {
            honor_retry_after: false,
            ..rules(5, None)
        };
        let mut a = Attempts::new();
        a.start();
        assert_eq!(
            a.decide(&r, hint, false, secs(0), 0.0, || true),
            Decision::Retry {
                delay: secs(1),
                reason: RetryReason::Failure
            }
        );
    }

    #[test]
    fn the_budget_is_asked_last() {
        let r = rules(1, None);
        let mut a = Attempts::new();
        a.start();
        assert_eq!(
            a.decide(&r, FAIL, false, secs(0), 0.0, || panic!(
                "not asked when the limit stops anyway"
            )),
            Decision::Stop(Stop::MaxAttempts)
        );
        let r = rules(3, None);
        assert_eq!(
            a.decide(&r, FAIL, false, secs(0), 0.0, || false),
            Decision::Stop(Stop::BudgetExhausted)
        );
    }

    proptest! {
        /// Whatever the results and times, attempts never exceed the limit,
        /// every delay is within [0, max], and the waits never end past the
        /// deadline.
        #[test]
        fn limits_hold(
            max_attempts in 1u32..8,
            deadline in prop::option::of(1u64..60),
            hints in prop::collection::vec(prop::option::of(0u64..100), 1..20),
            work in prop::collection::vec(0u64..5, 1..20),
            us in prop::collection::vec(0.0f64..1.0, 1..20),
        ) {
            let r = Rules {
                max_attempts,
                backoff: Backoff::FullJitter { base: secs(1), factor: 2.0, max: secs(10) },
                deadline: deadline.map(secs),
                honor_retry_after: true,
                max_retry_after: secs(10),
            };
            let mut a = Attempts::new();
            let mut elapsed = Duration::ZERO;
            for i in 0.. {
                a.start();
                prop_assert!(a.made() <= max_attempts);
                elapsed += secs(work[i % work.len()]);
                let c = FAIL.with_retry_after(hints[i % hints.len()].map(secs));
                match a.decide(&r, c, false, elapsed, us[i % us.len()], || true) {
                    Decision::Retry { delay, .. } => {
                        prop_assert!(delay <= secs(10));
                        elapsed += delay;
                        if let Some(d) = deadline {
                            prop_assert!(elapsed < secs(d), "slept to or past the deadline");
                        }
                    }
                    Decision::Stop(_) => break,
                }
            }
        }
    }
}
