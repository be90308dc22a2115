//! Live changes of a retry policy's settings.

use std::time::Duration;

use buttress_retry::{
    Backoff, BudgetConfig, ConfigError, RetryClassifier, RetryPolicy, retry_blocking_with,
};

fn attempts(policy: &RetryPolicy) -> (u32, Vec<Duration>) {
    let mut waits = Vec::new();
    let e = retry_blocking_with(
        policy,
        &RetryClassifier,
        |d| waits.push(d),
        || Err::<(), _>("down"),
    )
    .expect_err("always fails");
    (e.attempts(), waits)
}

#[test]
fn the_next_request_follows_the_new_settings() {
    let policy = RetryPolicy::builder("db")
        .max_attempts(2)
        .backoff(Backoff::Constant {
            delay: Duration::from_secs(1),
        })
        .no_budget()
        .build()
        .expect("valid");
    assert_eq!(attempts(&policy), (2, vec![Duration::from_secs(1)]));
    let mut c = policy.config();
    c.max_attempts = 3;
    c.backoff = Backoff::Constant {
        delay: Duration::from_secs(2),
    };
    policy.reconfigure(c.clone()).expect("valid change");
    assert_eq!(policy.config(), c);
    assert_eq!(
        attempts(&policy),
        (3, vec![Duration::from_secs(2), Duration::from_secs(2)])
    );
}

#[test]
fn a_clone_sees_the_change() {
    let policy = RetryPolicy::builder("db")
        .max_attempts(2)
        .build()
        .expect("valid");
    let clone = policy.clone();
    let mut c = policy.config();
    c.max_attempts = 4;
    policy.reconfigure(c).expect("valid change");
    assert_eq!(clone.max_attempts(), 4);
}

#[test]
fn invalid_settings_and_budget_changes_are_refused_whole() {
    let policy = RetryPolicy::builder("db")
        .max_attempts(2)
        .build()
        .expect("valid");
    let before = policy.config();
    let mut bad = before.clone();
    bad.max_attempts = 9;
    bad.deadline = Some(Duration::ZERO);
    let e = policy.reconfigure(bad).expect_err("a zero deadline");
    assert_eq!(e.field(), Some("deadline"));
    let mut other_budget = before.clone();
    other_budget.budget = BudgetConfig::None;
    assert_eq!(
        policy.reconfigure(other_budget),
        Err(ConfigError::BudgetChanged)
    );
    assert_eq!(ConfigError::BudgetChanged.field(), Some("budget"));
    assert_eq!(policy.config(), before);
    assert_eq!(policy.max_attempts(), 2);
}
