//! The synchronous state machine: no clock reads, no I/O, no async.
//!
//! Time comes in as `now`, nanoseconds since the breaker's origin, supplied
//! lazily (`impl FnOnce() -> u64`) so that the closed path, which needs no
//! time unless slow calls or a time window are measured, never reads a
//! clock.
//!
//! # Concurrency
//!
//! The state and its generation live in one atomic word. Admitting a call
//! in the closed state is one load of that word; recording its outcome is a
//! second load (to drop results from an earlier generation) plus the
//! window's lock-free update. Everything rare — every transition, and all of
//! half-open, where exactly N probes must be counted — runs under one
//! mutex, and each transition re-checks the word under it, so two threads
//! can never both move the breaker out of the same state.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use buttress_core::{Outcome, SharedRandom};

use crate::config::{Rules, WindowSpec, nanos};
use crate::state::{Reason, State};
use crate::window::{Counts, Window};
use buttress_core::sync::{AtomicU64, Mutex, Ordering, Padded};

const KIND_BITS: u32 = 3;
const KIND_MASK: u64 = (1 << KIND_BITS) - 1;

const fn word(state: State, generation: u64) -> u64 {
    // The shift leaves the kind's bits zero: adding is or-ing.
    (generation << KIND_BITS) + state as u64
}

const fn state_of(word: u64) -> State {
    State::from_bits(word & KIND_MASK)
}

const fn generation_of(word: u64) -> u64 {
    word >> KIND_BITS
}

/// What kind of admission a ticket records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum TicketKind {
    Closed = 0,
    Disabled = 1,
    Probe = 2,
}

/// Proof of admission: the generation the call was admitted in and its
/// kind, packed in one word so that permits and futures stay small and are
/// moved in whole words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket(u64);

impl Ticket {
    /// A ticket that was already used; never issued by the machine.
    pub(crate) const SPENT: Self = Self(u64::MAX);

    #[inline(always)]
    pub(crate) const fn new(generation: u64, kind: TicketKind) -> Self {
        Self((generation << 2) | kind as u64)
    }

    #[inline(always)]
    pub(crate) const fn generation(self) -> u64 {
        self.0 >> 2
    }

    #[inline(always)]
    pub(crate) const fn kind(self) -> TicketKind {
        match self.0 & 3 {
            0 => TicketKind::Closed,
            1 => TicketKind::Disabled,
            _ => TicketKind::Probe,
        }
    }
}

/// A refused call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) state: State,
    /// When the breaker will next admit a call, when that is known.
    pub(crate) retry_after: Option<Duration>,
}

/// What a call's result means to the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) outcome: Outcome,
    pub(crate) slow: bool,
    pub(crate) retry_after: Option<Duration>,
}

/// A change of state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transition {
    pub(crate) from: State,
    pub(crate) to: State,
    pub(crate) reason: Reason,
    /// The generation of the new state.
    pub(crate) generation: u64,
    /// How long the new state will last, when it is `Open`.
    pub(crate) open_for: Option<Duration>,
}

/// What recording an outcome did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recorded {
    /// False when the outcome was dropped: the breaker changed state since
    /// the call was admitted.
    pub(crate) counted: bool,
    pub(crate) change: Option<Transition>,
}

impl Recorded {
    const STALE: Self = Self {
        counted: false,
        change: None,
    };

    const fn counted(change: Option<Transition>) -> Self {
        Self {
            counted: true,
            change,
        }
    }
}

/// The result of an admission.
pub(crate) type Admission = (Result<Ticket, Refusal>, Option<Transition>);

/// Half-open bookkeeping.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Probes {
    pub(crate) left: u32,
    pub(crate) successes: u32,
    pub(crate) failures: u32,
    pub(crate) slow: u32,
}

#[derive(Debug, Default)]
struct Slow {
    /// Openings in a row since the last healthy close (for backoff).
    openings: u32,
    probes: Probes,
    half_open_since: u64,
}

/// A consistent-enough picture of the machine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MachineSnapshot {
    pub(crate) state: State,
    pub(crate) generation: u64,
    pub(crate) consecutive_failures: u64,
    pub(crate) counts: Option<Counts>,
    pub(crate) open_remaining: Option<Duration>,
    pub(crate) probes: Option<Probes>,
    pub(crate) openings: u32,
}

/// The words every call reads; written only at transitions and failures.
#[derive(Debug)]
struct Hot {
    word: AtomicU64,
    /// End of the open period; meaningful while the state is `Open`.
    open_until: AtomicU64,
    consecutive: AtomicU64,
}

/// The circuit breaker's state machine.
#[derive(Debug)]
pub(crate) struct Machine {
    /// Read by every call, written rarely: on cache lines of their own.
    hot: Padded<Hot>,
    /// Read on failures and transitions only, never by a success in the
    /// closed state; swapped whole by [`Machine::set_rules`].
    rules: ArcSwap<Rules>,
    window: Option<Window>,
    slow: Mutex<Slow>,
    random: SharedRandom,
}

impl Machine {
    pub(crate) fn new(rules: Rules, random: SharedRandom) -> Self {
        Self {
            window: rules.window.map(Window::new),
            rules: ArcSwap::from_pointee(rules),
            hot: Padded(Hot {
                word: AtomicU64::new(word(State::Closed, 0)),
                open_until: AtomicU64::new(0),
                consecutive: AtomicU64::new(0),
            }),
            slow: Mutex::new(Slow::default()),
            random,
        }
    }

    /// The window, for tests that recount it.
    #[cfg(all(test, loom))]
    pub(crate) fn window(&self) -> Option<&Window> {
        self.window.as_ref()
    }

    /// The current state, with one load.
    #[inline]
    pub(crate) fn state(&self) -> State {
        state_of(self.hot.0.word.load(Ordering::Acquire))
    }

    /// Admits or refuses a call.
    #[inline(always)]
    pub(crate) fn acquire(&self, now: impl FnOnce() -> u64) -> Admission {
        let w = self.hot.0.word.load(Ordering::Acquire);
        match state_of(w) {
            State::Closed => (Ok(Ticket::new(generation_of(w), TicketKind::Closed)), None),
            State::Disabled => (
                Ok(Ticket::new(generation_of(w), TicketKind::Disabled)),
                None,
            ),
            _ => self.acquire_slow(w, now()),
        }
    }

    #[cold]
    fn acquire_slow(&self, mut w: u64, now: u64) -> Admission {
        loop {
            match state_of(w) {
                State::Closed | State::Disabled => {
                    let kind = if state_of(w) == State::Closed {
                        TicketKind::Closed
                    } else {
                        TicketKind::Disabled
                    };
                    let ticket = Ticket::new(generation_of(w), kind);
                    return (Ok(ticket), None);
                }
                State::ForcedOpen => {
                    return (
                        Err(Refusal {
                            state: State::ForcedOpen,
                            retry_after: None,
                        }),
                        None,
                    );
                }
                State::Open => {
                    let until = self.hot.0.open_until.load(Ordering::Relaxed);
                    if now < until {
                        return (
                            Err(Refusal {
                                state: State::Open,
                                retry_after: Some(Duration::from_nanos(until - now)),
                            }),
                            None,
                        );
                    }
                }
                State::HalfOpen => {}
            }
            // Open and elapsed, or half-open: decide under the lock.
            let mut slow = self.slow.lock();
            let cur = self.hot.0.word.load(Ordering::Acquire);
            if cur != w {
                // Someone moved the breaker meanwhile; look again.
                drop(slow);
                w = cur;
                continue;
            }
            let mut change = None;
            if state_of(w) == State::Open {
                let t = self.enter_half_open(&mut slow, w, now);
                w = word(State::HalfOpen, t.generation);
                change = Some(t);
            } else if let Some(max) = self.rules.load().max_half_open_nanos
                && now.saturating_sub(slow.half_open_since) >= max
            {
                let t = self.enter_open(&mut slow, w, Reason::HalfOpenTimeout, None, now);
                return (
                    Err(Refusal {
                        state: State::Open,
                        retry_after: t.open_for,
                    }),
                    Some(t),
                );
            }
            if slow.probes.left == 0 {
                return (
                    Err(Refusal {
                        state: State::HalfOpen,
                        retry_after: None,
                    }),
                    change,
                );
            }
            slow.probes.left -= 1;
            let ticket = Ticket::new(generation_of(w), TicketKind::Probe);
            return (Ok(ticket), change);
        }
    }

    /// Records the outcome of an admitted call.
    #[inline(always)]
    pub(crate) fn record(
        &self,
        ticket: Ticket,
        verdict: Verdict,
        now: impl FnOnce() -> u64,
    ) -> Recorded {
        let w = self.hot.0.word.load(Ordering::Acquire);
        if generation_of(w) != ticket.generation() {
            // Admitted before a change of state: it does not count now.
            return Recorded::STALE;
        }
        if ticket.kind() == TicketKind::Probe {
            return self.record_probe(ticket, verdict, now());
        }
        Recorded::counted(self.record_closed(ticket, verdict, now))
    }

    #[inline(always)]
    fn record_closed(
        &self,
        ticket: Ticket,
        verdict: Verdict,
        now: impl FnOnce() -> u64,
    ) -> Option<Transition> {
        let failed = match verdict.outcome {
            Outcome::Ignored => return None,
            Outcome::Failure => true,
            Outcome::Success => false,
        };
        let consecutive = if failed {
            self.hot.0.consecutive.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            // Load first: in a healthy service the counter is already zero
            // and the cache line stays shared.
            if self.hot.0.consecutive.load(Ordering::Relaxed) != 0 {
                self.hot.0.consecutive.store(0, Ordering::Relaxed);
            }
            0
        };
        let mut now = Lazy::new(now);
        if let Some(window) = &self.window {
            let t = if window.needs_time() { now.get() } else { 0 };
            window.record(failed, verdict.slow, t);
        }
        if ticket.kind() == TicketKind::Disabled || !(failed || verdict.slow) {
            return None;
        }
        let rules = self.rules.load();
        if failed && let Some(hint) = hint(&rules, verdict.retry_after) {
            return self.trip(
                ticket.generation(),
                Reason::RetryAfter,
                Some(hint),
                now.get(),
            );
        }
        let reason = self.trip_reason(&rules, consecutive, &mut now)?;
        self.trip(ticket.generation(), reason, None, now.get())
    }

    fn trip_reason(
        &self,
        rules: &Rules,
        consecutive: u64,
        now: &mut Lazy<impl FnOnce() -> u64>,
    ) -> Option<Reason> {
        if let Some(n) = rules.consecutive
            && consecutive >= u64::from(n)
        {
            return Some(Reason::ConsecutiveFailures);
        }
        let window = self.window.as_ref()?;
        let t = window.needs_time().then(|| now.get());
        let counts = window.counts(t);
        if counts.calls < u64::from(rules.minimum_calls) {
            return None;
        }
        if let Some(thr) = rules.failure_rate
            && counts.failure_rate().is_some_and(|r| r >= thr)
        {
            return Some(Reason::FailureRate);
        }
        if let Some(thr) = rules.slow_rate
            && counts.slow_rate().is_some_and(|r| r >= thr)
        {
            return Some(Reason::SlowCallRate);
        }
        None
    }

    #[cold]
    fn trip(
        &self,
        generation: u64,
        reason: Reason,
        hint: Option<u64>,
        now: u64,
    ) -> Option<Transition> {
        let mut slow = self.slow.lock();
        let w = self.hot.0.word.load(Ordering::Acquire);
        if w != word(State::Closed, generation) {
            return None; // another thread already moved it
        }
        Some(self.enter_open(&mut slow, w, reason, hint, now))
    }

    #[cold]
    fn record_probe(&self, ticket: Ticket, verdict: Verdict, now: u64) -> Recorded {
        let mut slow = self.slow.lock();
        let w = self.hot.0.word.load(Ordering::Acquire);
        if w != word(State::HalfOpen, ticket.generation()) {
            return Recorded::STALE;
        }
        let rules = self.rules.load();
        if let Some(max) = rules.max_half_open_nanos
            && now.saturating_sub(slow.half_open_since) >= max
        {
            return Recorded::counted(Some(self.enter_open(
                &mut slow,
                w,
                Reason::HalfOpenTimeout,
                None,
                now,
            )));
        }
        match verdict.outcome {
            Outcome::Ignored => {
                // The permit goes back, so half-open can never run dry of
                // probes that will not report.
                slow.probes.left += 1;
                return Recorded::counted(None);
            }
            Outcome::Failure => {
                if let Some(hint) = hint(&rules, verdict.retry_after) {
                    return Recorded::counted(Some(self.enter_open(
                        &mut slow,
                        w,
                        Reason::RetryAfter,
                        Some(hint),
                        now,
                    )));
                }
                slow.probes.failures += 1;
            }
            Outcome::Success => slow.probes.successes += 1,
        }
        if verdict.slow {
            slow.probes.slow += 1;
        }
        let p = slow.probes;
        if p.failures >= rules.probe_failures_to_reopen {
            return Recorded::counted(Some(self.enter_open(
                &mut slow,
                w,
                Reason::ProbesFailed,
                None,
                now,
            )));
        }
        if rules.probe_slow_to_reopen.is_some_and(|k| p.slow >= k) {
            return Recorded::counted(Some(self.enter_open(
                &mut slow,
                w,
                Reason::ProbesSlow,
                None,
                now,
            )));
        }
        if p.successes + p.failures >= rules.half_open_permits {
            slow.openings = 0;
            return Recorded::counted(Some(self.enter_closed(
                &mut slow,
                w,
                Reason::ProbesSucceeded,
            )));
        }
        Recorded::counted(None)
    }

    // --- transitions; each is called with the lock held and the word checked.

    fn publish(
        &self,
        from_word: u64,
        to: State,
        reason: Reason,
        open_for: Option<Duration>,
    ) -> Transition {
        let generation = generation_of(from_word) + 1;
        self.hot
            .0
            .word
            .store(word(to, generation), Ordering::Release);
        Transition {
            from: state_of(from_word),
            to,
            reason,
            generation,
            open_for,
        }
    }

    fn enter_open(
        &self,
        slow: &mut Slow,
        from: u64,
        reason: Reason,
        hint: Option<u64>,
        now: u64,
    ) -> Transition {
        let period = match hint {
            Some(h) => h,
            None => {
                slow.openings = slow.openings.saturating_add(1);
                // A user's random source that panics must not strand the
                // breaker mid-transition with the lock held.
                let u = catch_unwind(AssertUnwindSafe(|| self.random.unit())).unwrap_or(0.0);
                nanos(self.rules.load().open.period(slow.openings, u))
            }
        };
        self.hot
            .0
            .open_until
            .store(now.saturating_add(period), Ordering::Relaxed);
        slow.probes = Probes::default();
        self.publish(
            from,
            State::Open,
            reason,
            Some(Duration::from_nanos(period)),
        )
    }

    fn enter_half_open(&self, slow: &mut Slow, from: u64, now: u64) -> Transition {
        slow.probes = Probes {
            left: self.rules.load().half_open_permits,
            ..Probes::default()
        };
        slow.half_open_since = now;
        self.publish(from, State::HalfOpen, Reason::OpenElapsed, None)
    }

    fn enter_closed(&self, slow: &mut Slow, from: u64, reason: Reason) -> Transition {
        slow.probes = Probes::default();
        // Publish the new generation before clearing, so that no outcome of
        // the old generation passes its check while the (possibly long)
        // clear runs. A fresh outcome racing the clear may be erased: an
        // undercount, never a false trip.
        let t = self.publish(from, State::Closed, reason, None);
        self.clear_counts();
        t
    }

    fn clear_counts(&self) {
        self.hot.0.consecutive.store(0, Ordering::Relaxed);
        if let Some(window) = &self.window {
            window.clear();
        }
    }

    // --- by hand

    /// The rules in force.
    pub(crate) fn rules(&self) -> Arc<Rules> {
        self.rules.load_full()
    }

    /// Puts `rules` in force for every decision from now on, keeping the
    /// state, the counts and the open period already running; refused when
    /// the window would change shape, since its counts cannot be carried
    /// over. Taken under the lock the transitions hold, so a transition
    /// decides with one set of rules or the other, never a mix.
    pub(crate) fn set_rules(&self, rules: Rules) -> Result<(), WindowShape> {
        let _slow = self.slow.lock();
        let old = self.rules.load();
        if old.window != rules.window {
            return Err(WindowShape {
                from: old.window,
                to: rules.window,
            });
        }
        self.rules.store(Arc::new(rules));
        Ok(())
    }

    /// Opens the breaker until [`Machine::reset`].
    pub(crate) fn force_open(&self) -> Option<Transition> {
        let mut slow = self.slow.lock();
        let w = self.hot.0.word.load(Ordering::Acquire);
        if state_of(w) == State::ForcedOpen {
            return None;
        }
        slow.probes = Probes::default();
        Some(self.publish(w, State::ForcedOpen, Reason::ForcedOpen, None))
    }

    /// Admits everything and never trips, still counting.
    pub(crate) fn disable(&self) -> Option<Transition> {
        let mut slow = self.slow.lock();
        let w = self.hot.0.word.load(Ordering::Acquire);
        if state_of(w) == State::Disabled {
            return None;
        }
        slow.probes = Probes::default();
        let t = self.publish(w, State::Disabled, Reason::Disabled, None);
        self.clear_counts();
        Some(t)
    }

    /// Closes the breaker with empty counts. Results of calls admitted before
    /// the reset are dropped. Returns a transition even from `Closed`, since
    /// the generation changes.
    pub(crate) fn reset(&self) -> Transition {
        let mut slow = self.slow.lock();
        let w = self.hot.0.word.load(Ordering::Acquire);
        slow.openings = 0;
        self.enter_closed(&mut slow, w, Reason::Reset)
    }

    /// A picture of the machine at `now`.
    pub(crate) fn snapshot(&self, now: u64) -> MachineSnapshot {
        let slow = self.slow.lock();
        let w = self.hot.0.word.load(Ordering::Acquire);
        let state = state_of(w);
        let counts = self
            .window
            .as_ref()
            .map(|win| win.counts(win.needs_time().then_some(now)));
        MachineSnapshot {
            state,
            generation: generation_of(w),
            consecutive_failures: self.hot.0.consecutive.load(Ordering::Relaxed),
            counts,
            open_remaining: (state == State::Open).then(|| {
                Duration::from_nanos(
                    self.hot
                        .0
                        .open_until
                        .load(Ordering::Relaxed)
                        .saturating_sub(now),
                )
            }),
            probes: (state == State::HalfOpen).then_some(slow.probes),
            openings: slow.openings,
        }
    }
}

/// A new window shape refused by [`Machine::set_rules`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowShape {
    pub(crate) from: Option<WindowSpec>,
    pub(crate) to: Option<WindowSpec>,
}

/// A `Retry-After` hint that should open the breaker, clamped.
fn hint(rules: &Rules, retry_after: Option<Duration>) -> Option<u64> {
    let max = rules.retry_after_max_nanos?;
    let hint = nanos(retry_after?);
    (hint > 0).then(|| hint.min(max))
}

/// A value computed at most once, on first use.
struct Lazy<F> {
    f: Option<F>,
    v: u64,
}

impl<F: FnOnce() -> u64> Lazy<F> {
    fn new(f: F) -> Self {
        Self { f: Some(f), v: 0 }
    }

    fn get(&mut self) -> u64 {
        if let Some(f) = self.f.take() {
            self.v = f();
        }
        self.v
    }
}
