//! The generic cell rate algorithm: the synchronous core. No clock reads;
//! time comes in as `now`, nanoseconds since the limiter's origin.
//!
//! The whole state is the *theoretical arrival time* (TAT) in one atomic
//! word: the instant at which the bucket would be full again. A request of
//! cost `n` moves it to `max(tat, now) + n × interval`, and is allowed when
//! that is at most `burst × interval` ahead of now. Every decision is one
//! load and, when it consumes, one compare-and-swap.

use buttress_core::sync::{AtomicU64, Ordering};

use crate::quota::Quota;

/// The outcome of asking for tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Allowed; `remaining` whole tokens are left afterwards.
    Allowed { remaining: u32 },
    /// Not now; enough tokens in `retry_after` nanoseconds.
    Denied { retry_after: u64 },
    /// Never: the cost exceeds the burst.
    Impossible,
}

/// A reservation for waiting mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reservation {
    /// Reserved: the tokens are ours in `wait` nanoseconds. `tat` is the
    /// arrival time this reservation set, `cost` what it took (to give
    /// them back if cancelled).
    Reserved { wait: u64, tat: u64, cost: u64 },
    /// The wait would exceed the maximum: nothing reserved.
    TooLong { retry_after: u64 },
    /// Never: the cost exceeds the burst.
    Impossible,
}

/// The current state of a limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) remaining: u32,
    pub(crate) next_token_in: u64,
}

/// One GCRA step, pure arithmetic: what asking for `cost` tokens at `now`
/// does to a bucket whose arrival time is `tat`, with `interval` nanoseconds
/// per token and `capacity` (burst × interval), for a caller that may wait
/// up to `max_wait` nanoseconds (0: not at all). Every decision of the
/// limiter (take, peek, reserve) is this function; only what is done with
/// its answer differs.
#[inline]
pub(crate) fn step(
    interval: u64,
    capacity: u64,
    tat: u64,
    now: u64,
    cost: u32,
    max_wait: u64,
) -> Step {
    let inc = interval.saturating_mul(u64::from(cost));
    if inc > capacity {
        return Step::Impossible;
    }
    let new_tat = tat.max(now).saturating_add(inc);
    let ahead = new_tat - now;
    let wait = ahead.saturating_sub(capacity);
    if wait > max_wait {
        return Step::Denied { retry_after: wait };
    }
    Step::Take {
        new_tat,
        wait,
        cost: inc,
        // Tokens left once these are taken: `capacity - ahead` when no
        // wait is needed, none otherwise.
        left: capacity.saturating_sub(ahead),
        interval,
    }
}

/// The answer of [`step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The tokens can be had: move the arrival time to `new_tat`; they are
    /// there in `wait` nanoseconds. `cost` is the arrival time they move
    /// it by; `left` the capacity left afterwards, in nanoseconds of
    /// `interval` each.
    Take {
        new_tat: u64,
        wait: u64,
        cost: u64,
        left: u64,
        interval: u64,
    },
    /// Not within the wait allowed; enough tokens in `retry_after`.
    Denied { retry_after: u64 },
    /// Never: the cost exceeds the burst.
    Impossible,
}

impl Step {
    /// As a [`Decision`]; whole tokens left are counted only when
    /// `REMAINING` (a division the yes-or-no paths skip).
    #[inline]
    fn decision<const REMAINING: bool>(self) -> Decision {
        match self {
            Step::Take { left, interval, .. } => Decision::Allowed {
                remaining: if REMAINING {
                    u32::try_from(left / interval).unwrap_or(u32::MAX)
                } else {
                    0
                },
            },
            Step::Denied { retry_after } => Decision::Denied { retry_after },
            Step::Impossible => Decision::Impossible,
        }
    }
}

/// Applies [`step`] to the bucket in `tat_word`, with the interval and
/// capacity `rates` reads: one load and one compare-and-swap when
/// uncontended. After a failed CAS both the state and the rates are read
/// again, so a decision never mixes a quota with a state scaled for
/// another one. Returns the step that was applied (or refused).
#[inline]
fn apply(
    tat_word: &AtomicU64,
    rates: impl Fn() -> (u64, u64),
    now: u64,
    cost: u32,
    max_wait: u64,
) -> Step {
    loop {
        let (t, cap) = rates();
        let tat = tat_word.load(Ordering::Acquire);
        let s = step(t, cap, tat, now, cost, max_wait);
        let Step::Take { new_tat, .. } = s else {
            return s;
        };
        if tat_word
            .compare_exchange_weak(tat, new_tat, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return s;
        }
    }
}

/// Takes `cost` tokens from the bucket whose state is `tat_word` if they
/// are there now. `REMAINING` asks for the tokens left to be counted (a
/// division); the hot paths that only need yes or no skip it and report 0.
#[inline]
pub(crate) fn check_tat<const REMAINING: bool>(
    tat_word: &AtomicU64,
    rates: impl Fn() -> (u64, u64),
    now: u64,
    cost: u32,
) -> Decision {
    apply(tat_word, rates, now, cost, 0).decision::<REMAINING>()
}

/// Re-expresses the debt of `tat_word` (how far it runs ahead of `now`)
/// from interval `old_t` to interval `new_t`: the same number of tokens
/// owed, at the new rate.
pub(crate) fn rescale_tat(tat_word: &AtomicU64, now: u64, old_t: u64, new_t: u64) {
    let _ = tat_word.fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
        // A bucket that owes nothing (its arrival time is past) stays as it is.
        let owed = tat.checked_sub(now)?;
        let debt = u128::from(owed) * u128::from(new_t) / u128::from(old_t.max(1));
        Some(now.saturating_add(u64::try_from(debt).unwrap_or(u64::MAX)))
    });
}

/// A quota that is read and replaced whole: a sequence lock over the
/// interval and the burst, so a check never sees one without the other.
#[derive(Debug)]
pub(crate) struct QuotaCell {
    /// Odd while a change is being written.
    version: AtomicU64,
    interval: AtomicU64,
    /// burst × interval, kept multiplied.
    capacity: AtomicU64,
}

impl QuotaCell {
    pub(crate) fn new(q: Quota) -> Self {
        Self {
            version: AtomicU64::new(0),
            interval: AtomicU64::new(q.interval_nanos()),
            capacity: AtomicU64::new(q.interval_nanos().saturating_mul(u64::from(q.burst()))),
        }
    }

    /// The interval and the capacity (burst × interval) in force.
    #[inline]
    pub(crate) fn rates(&self) -> (u64, u64) {
        loop {
            let v1 = self.version.load(Ordering::Acquire);
            if v1 & 1 == 0 {
                let t = self.interval.load(Ordering::Acquire);
                let cap = self.capacity.load(Ordering::Acquire);
                if self.version.load(Ordering::Acquire) == v1 {
                    return (t, cap);
                }
            }
            // A change is being written: wait for it (under loom, let the
            // writer run).
            #[cfg(loom)]
            loom::thread::yield_now();
            #[cfg(not(loom))]
            std::hint::spin_loop();
        }
    }

    /// Replaces the quota; `while_locked` runs while checks wait (callers
    /// serialise changes).
    pub(crate) fn set(&self, q: Quota, while_locked: impl FnOnce(u64, u64)) {
        let old_t = self.interval.load(Ordering::Acquire);
        self.version.fetch_add(1, Ordering::AcqRel);
        while_locked(old_t, q.interval_nanos());
        self.interval.store(q.interval_nanos(), Ordering::Release);
        self.capacity.store(
            q.interval_nanos().saturating_mul(u64::from(q.burst())),
            Ordering::Release,
        );
        self.version.fetch_add(1, Ordering::AcqRel);
    }
}

#[derive(Debug)]
pub(crate) struct Gcra {
    tat: AtomicU64,
    quota: QuotaCell,
}

impl Gcra {
    pub(crate) fn new(q: Quota) -> Self {
        Self {
            tat: AtomicU64::new(0),
            quota: QuotaCell::new(q),
        }
    }

    /// The quota in force, read without a lock (for refusals, which must
    /// stay cheap under a flood).
    pub(crate) fn current_quota(&self) -> Quota {
        Quota::from_rates(self.quota.rates())
    }

    #[inline]
    fn quota(&self) -> (u64, u64) {
        self.quota.rates()
    }

    /// Replaces the quota, keeping the tokens owed: the debt is re-expressed
    /// at the new rate while checks wait.
    pub(crate) fn set_quota(&self, q: Quota, now: u64) {
        self.quota
            .set(q, |old_t, new_t| rescale_tat(&self.tat, now, old_t, new_t));
    }

    /// Takes `cost` tokens if they are there, counting those left.
    #[cfg(test)]
    #[inline]
    pub(crate) fn check(&self, now: u64, cost: u32) -> Decision {
        check_tat::<true>(&self.tat, || self.quota.rates(), now, cost)
    }

    /// Takes `cost` tokens if they are there; `remaining` is not counted.
    #[inline]
    pub(crate) fn take(&self, now: u64, cost: u32) -> Decision {
        check_tat::<false>(&self.tat, || self.quota.rates(), now, cost)
    }

    /// Whether `cost` tokens are there, without taking them.
    #[inline]
    pub(crate) fn peek(&self, now: u64, cost: u32) -> Decision {
        let (t, cap) = self.quota();
        let tat = self.tat.load(Ordering::Acquire);
        step(t, cap, tat, now, cost, 0).decision::<true>()
    }

    /// Reserves `cost` tokens, now or up to `max_wait` ahead: waiters are
    /// served in the order their reservations land, first come first served.
    pub(crate) fn reserve(&self, now: u64, cost: u32, max_wait: u64) -> Reservation {
        match apply(&self.tat, || self.quota.rates(), now, cost, max_wait) {
            Step::Take {
                new_tat,
                wait,
                cost,
                ..
            } => Reservation::Reserved {
                wait,
                tat: new_tat,
                cost,
            },
            Step::Denied { retry_after } => Reservation::TooLong { retry_after },
            Step::Impossible => Reservation::Impossible,
        }
    }

    /// Gives back a reservation that will not be used, if no later one was
    /// made on top of it (later reservations count on its tokens being
    /// spent, so then it stays spent). Returns whether it was given back.
    pub(crate) fn cancel(&self, tat: u64, cost: u64) -> bool {
        self.tat
            .compare_exchange(tat, tat - cost, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Tokens left now and the time until one more.
    pub(crate) fn state(&self, now: u64) -> State {
        let (t, cap) = self.quota();
        let debt = self.tat.load(Ordering::Acquire).max(now) - now;
        let available = cap.saturating_sub(debt) / t;
        let burst = cap / t;
        let next_token_in = if available >= burst {
            0
        } else {
            // Debt must fall to cap − (available + 1) × t.
            debt - (cap - (available + 1) * t)
        };
        State {
            remaining: u32::try_from(available).unwrap_or(u32::MAX),
            next_token_in,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::time::Duration;

    const MS: u64 = 1_000_000;

    fn gcra(per_sec: u64, burst: u32) -> Gcra {
        Gcra::new(
            Quota::per_second(per_sec)
                .expect("valid")
                .with_burst(burst)
                .expect("valid"),
        )
    }

    #[test]
    fn a_full_bucket_allows_the_burst_then_one_per_interval() {
        let g = gcra(10, 3); // one token per 100 ms, 3 at once
        assert_eq!(g.check(0, 1), Decision::Allowed { remaining: 2 });
        assert_eq!(g.check(0, 1), Decision::Allowed { remaining: 1 });
        assert_eq!(g.check(0, 1), Decision::Allowed { remaining: 0 });
        assert_eq!(
            g.check(0, 1),
            Decision::Denied {
                retry_after: 100 * MS
            }
        );
        assert_eq!(g.check(99 * MS, 1), Decision::Denied { retry_after: MS });
        assert_eq!(g.check(100 * MS, 1), Decision::Allowed { remaining: 0 });
        // A long pause refills to the burst, not beyond.
        assert_eq!(g.check(10_000 * MS, 1), Decision::Allowed { remaining: 2 });
    }

    #[test]
    fn weighted_costs_and_impossible_ones() {
        let g = gcra(10, 5);
        assert_eq!(g.check(0, 3), Decision::Allowed { remaining: 2 });
        assert_eq!(
            g.check(0, 3),
            Decision::Denied {
                retry_after: 100 * MS
            }
        );
        assert_eq!(g.check(0, 6), Decision::Impossible);
        assert_eq!(g.check(0, 2), Decision::Allowed { remaining: 0 });
    }

    #[test]
    fn peek_does_not_consume() {
        let g = gcra(10, 1);
        for _ in 0..3 {
            assert_eq!(g.peek(0, 1), Decision::Allowed { remaining: 0 });
        }
        assert_eq!(g.check(0, 1), Decision::Allowed { remaining: 0 });
        assert_eq!(
            g.peek(0, 1),
            Decision::Denied {
                retry_after: 100 * MS
            }
        );
    }

    #[test]
    fn state_reports_tokens_and_the_next_one() {
        let g = gcra(10, 3);
        assert_eq!(
            g.state(0),
            State {
                remaining: 3,
                next_token_in: 0
            }
        );
        g.check(0, 1);
        g.check(0, 1);
        assert_eq!(
            g.state(0),
            State {
                remaining: 1,
                next_token_in: 100 * MS
            }
        );
        assert_eq!(
            g.state(30 * MS),
            State {
                remaining: 1,
                next_token_in: 70 * MS
            }
        );
        assert_eq!(
            g.state(100 * MS),
            State {
                remaining: 2,
                next_token_in: 100 * MS
            }
        );
        assert_eq!(
            g.state(200 * MS),
            State {
                remaining: 3,
                next_token_in: 0
            }
        );
    }

    #[test]
    fn the_quota_changes_without_losing_state() {
        let g = gcra(10, 2);
        g.check(0, 1);
        g.check(0, 1); // empty: TAT = 200 ms
        g.set_quota(
            Quota::per_second(100)
                .expect("valid")
                .with_burst(20)
                .expect("valid"),
            0,
        );
        // Two tokens were owed; at 10 ms a token they are 20 ms of debt, so
        // 18 of the new burst of 20 are left.
        assert_eq!(g.state(0).remaining, 18);
        assert_eq!(g.check(0, 1), Decision::Allowed { remaining: 17 });
        let _ = Duration::ZERO;
    }

    #[test]
    fn a_quota_change_rescales_only_what_is_owed_at_that_moment() {
        // One token per 100 ms, burst 4; four taken at 1 s: the arrival
        // time is 1.4 s, 400 ms (four tokens) owed.
        let g = gcra(10, 4);
        for _ in 0..4 {
            assert!(matches!(g.check(1_000 * MS, 1), Decision::Allowed { .. }));
        }
        // At 1.2 s two tokens are still owed: 200 ms at the old rate,
        // 20 ms at one token per 10 ms. The time already past is not debt.
        let faster = Quota::per_second(100)
            .expect("valid")
            .with_burst(4)
            .expect("valid");
        g.set_quota(faster, 1_200 * MS);
        assert_eq!(
            g.state(1_200 * MS),
            State {
                remaining: 2,
                next_token_in: 10 * MS
            }
        );
        // A bucket that owes nothing is left alone: a full one stays full.
        let g = gcra(10, 4);
        g.set_quota(faster, 5_000 * MS);
        assert_eq!(g.state(5_000 * MS).remaining, 4);
        // Owing exactly nothing at the moment of the change is the same.
        let g = gcra(10, 1);
        g.check(1_000 * MS, 1);
        g.set_quota(faster, 1_100 * MS);
        assert_eq!(g.state(1_100 * MS).remaining, 4);
    }

    #[test]
    fn reservations_queue_in_order_and_give_back_when_last() {
        let g = gcra(10, 1);
        assert_eq!(g.check(0, 1), Decision::Allowed { remaining: 0 });
        let Reservation::Reserved {
            wait: w1,
            tat: t1,
            cost,
        } = g.reserve(0, 1, 1_000 * MS)
        else {
            panic!("reserved")
        };
        let Reservation::Reserved {
            wait: w2, tat: t2, ..
        } = g.reserve(0, 1, 1_000 * MS)
        else {
            panic!("reserved")
        };
        assert_eq!((w1, w2), (100 * MS, 200 * MS), "first come, first served");
        assert!(!g.cancel(t1, cost), "a later reservation depends on it");
        assert!(g.cancel(t2, cost), "the last one can be given back");
        assert_eq!(
            g.reserve(0, 1, 150 * MS),
            Reservation::TooLong {
                retry_after: 200 * MS
            }
        );
        assert_eq!(g.reserve(0, 2, u64::MAX), Reservation::Impossible);
    }
}
