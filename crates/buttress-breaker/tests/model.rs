//! The breaker, driven through its public API with random sequences of
//! calls, outcomes, cancellations, clock advances and manual controls, must
//! agree step by step with a small reference model written for this test.

use std::collections::VecDeque;
use std::time::Duration;

use buttress_breaker::{BreakerConfig, CircuitBreaker, OpenDuration, Permit, State, Window};
use buttress_core::{FixedRandom, ManualClock, Outcome};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Params {
    consecutive: Option<u32>,
    rate: Option<f64>,
    window: u32,
    minimum: u32,
    permits: u32,
    open_ms: u64,
    exponential: bool,
}

#[derive(Debug, Clone)]
enum Op {
    Acquire,
    Complete(usize, Outcome),
    Drop(usize),
    Advance(u64),
    ForceOpen,
    Disable,
    Reset,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum M {
    Closed,
    Disabled,
    Forced,
    Open { until: u64 },
    HalfOpen { left: u32, ok: u32, failed: u32 },
}

/// The reference: plain sequential code, times in milliseconds.
struct Model {
    p: Params,
    state: M,
    generation: u64,
    run: u32,
    window: VecDeque<bool>,
    openings: u32,
    now: u64,
}

impl Model {
    fn new(p: Params) -> Self {
        Self {
            p,
            state: M::Closed,
            generation: 0,
            run: 0,
            window: VecDeque::new(),
            openings: 0,
            now: 0,
        }
    }

    fn public(&self) -> State {
        match self.state {
            M::Closed => State::Closed,
            M::Disabled => State::Disabled,
            M::Forced => State::ForcedOpen,
            M::Open { .. } => State::Open,
            M::HalfOpen { .. } => State::HalfOpen,
        }
    }

    fn set(&mut self, s: M) {
        self.state = s;
        self.generation += 1;
    }

    fn clear(&mut self) {
        self.run = 0;
        self.window.clear();
    }

    fn open(&mut self) {
        self.openings += 1;
        let ms = if self.p.exponential {
            // doubling from open_ms, capped at 8 × open_ms
            (self.p.open_ms << (self.openings - 1).min(3)).min(8 * self.p.open_ms)
        } else {
            self.p.open_ms
        };
        self.set(M::Open {
            until: self.now + ms,
        });
    }

    /// Admitted: Some((generation, probe)); refused: Err(retry_after in ms).
    fn acquire(&mut self) -> Result<(u64, bool), Option<u64>> {
        if let M::Open { until } = self.state {
            if self.now < until {
                return Err(Some(until - self.now));
            }
            let n = self.p.permits;
            self.set(M::HalfOpen {
                left: n,
                ok: 0,
                failed: 0,
            });
        }
        match &mut self.state {
            M::Closed | M::Disabled => Ok((self.generation, false)),
            M::Forced => Err(None),
            M::HalfOpen { left, .. } if *left > 0 => {
                *left -= 1;
                Ok((self.generation, true))
            }
            _ => Err(None),
        }
    }

    fn probes_to_reopen(&self) -> u32 {
        match self.p.rate {
            None => 1,
            Some(r) => (1..=self.p.permits)
                .find(|k| f64::from(*k) / f64::from(self.p.permits) >= r)
                .unwrap_or(self.p.permits),
        }
    }

    fn complete(&mut self, ticket: (u64, bool), outcome: Outcome) {
        if ticket.0 != self.generation {
            return; // stale
        }
        if ticket.1 {
            let to_reopen = self.probes_to_reopen();
            let permits = self.p.permits;
            let M::HalfOpen { left, ok, failed } = &mut self.state else {
                unreachable!("a current probe implies half-open")
            };
            match outcome {
                Outcome::Ignored => *left += 1,
                Outcome::Success => *ok += 1,
                Outcome::Failure => *failed += 1,
            }
            let (ok, failed) = (*ok, *failed);
            if failed >= to_reopen {
                self.open();
            } else if ok + failed == permits {
                self.clear();
                self.openings = 0;
                self.set(M::Closed);
            }
            return;
        }
        let failed = match outcome {
            Outcome::Ignored => return,
            Outcome::Failure => true,
            Outcome::Success => false,
        };
        self.run = if failed { self.run + 1 } else { 0 };
        self.window.push_back(failed);
        if self.window.len() > self.p.window as usize {
            self.window.pop_front();
        }
        if self.state == M::Disabled || !failed {
            return;
        }
        let by_run = self.p.consecutive.is_some_and(|n| self.run >= n);
        let len = self.window.len();
        let fails = self.window.iter().filter(|f| **f).count();
        let by_rate = self
            .p
            .rate
            .is_some_and(|r| len >= self.p.minimum as usize && fails as f64 / len as f64 >= r);
        if by_run || by_rate {
            self.open();
        }
    }
}

fn params() -> impl Strategy<Value = Params> {
    (
        prop::option::of(1u32..4),
        prop::option::of(prop::sample::select(vec![0.2, 0.5, 0.75, 1.0])),
        1u32..6,
        1u32..4,
        1u32..5,
        prop::sample::select(vec![100u64, 1000]),
        any::<bool>(),
    )
        .prop_filter_map("needs a trip rule", |(c, r, w, m, p, open_ms, exp)| {
            (c.is_some() || r.is_some()).then(|| Params {
                consecutive: c,
                rate: r,
                window: w,
                minimum: m.min(w),
                permits: p,
                open_ms,
                exponential: exp,
            })
        })
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let outcome = prop::sample::select(vec![
        Outcome::Success,
        Outcome::Failure,
        Outcome::Failure,
        Outcome::Ignored,
    ]);
    let op = prop_oneof![
        6 => Just(Op::Acquire),
        6 => (0usize..8, outcome).prop_map(|(i, o)| Op::Complete(i, o)),
        1 => (0usize..8).prop_map(Op::Drop),
        3 => prop::sample::select(vec![1u64, 50, 100, 999, 1000, 5000]).prop_map(Op::Advance),
        1 => Just(Op::ForceOpen),
        1 => Just(Op::Disable),
        1 => Just(Op::Reset),
    ];
    prop::collection::vec(op, 1..120)
}

fn breaker(p: &Params, clock: &ManualClock) -> CircuitBreaker {
    let open = if p.exponential {
        OpenDuration::Exponential {
            initial: Duration::from_millis(p.open_ms),
            multiplier: 2.0,
            max: Duration::from_millis(8 * p.open_ms),
            jitter: 0.0,
        }
    } else {
        OpenDuration::fixed(Duration::from_millis(p.open_ms))
    };
    CircuitBreaker::builder("model")
        .config(
            BreakerConfig::default()
                .consecutive_failures(p.consecutive)
                .failure_rate_threshold(p.rate)
                .window(Window::Count { size: p.window })
                .minimum_calls(p.minimum)
                .open(open)
                .half_open_permits(p.permits),
        )
        .clock(clock.clone())
        .random(FixedRandom::new([0.5]))
        .build()
        .expect("valid config")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn breaker_agrees_with_the_model(p in params(), ops in ops()) {
        let clock = ManualClock::new();
        let sut = breaker(&p, &clock);
        let mut model = Model::new(p);
        let mut live: Vec<(Permit<&CircuitBreaker>, (u64, bool))> = Vec::new();
        for op in ops {
            match op {
                Op::Acquire => {
                    let got = sut.try_acquire();
                    let want = model.acquire();
                    match (got, want) {
                        (Ok(permit), Ok(ticket)) => {
                            prop_assert_eq!(permit.is_probe(), ticket.1);
                            live.push((permit, ticket));
                        }
                        (Err(rejected), Err(after)) => {
                            prop_assert_eq!(rejected.retry_after(), after.map(Duration::from_millis));
                            prop_assert_eq!(rejected.state(), model.public());
                        }
                        (got, want) => prop_assert!(false, "acquire: breaker {:?}, model {:?}", got.map(|_| ()), want),
                    }
                }
                Op::Complete(i, outcome) if !live.is_empty() => {
                    let (permit, ticket) = live.remove(i % live.len());
                    permit.record(outcome);
                    model.complete(ticket, outcome);
                }
                Op::Drop(i) if !live.is_empty() => {
                    let (permit, ticket) = live.remove(i % live.len());
                    drop(permit);
                    model.complete(ticket, Outcome::Ignored);
                }
                Op::Complete(..) | Op::Drop(_) => {}
                Op::Advance(ms) => {
                    clock.advance(Duration::from_millis(ms));
                    model.now += ms;
                }
                Op::ForceOpen => {
                    sut.force_open();
                    if model.state != M::Forced {
                        model.set(M::Forced);
                    }
                }
                Op::Disable => {
                    sut.disable();
                    if model.state != M::Disabled {
                        model.clear();
                        model.set(M::Disabled);
                    }
                }
                Op::Reset => {
                    sut.reset();
                    model.clear();
                    model.openings = 0;
                    model.set(M::Closed);
                }
            }
            prop_assert_eq!(sut.state(), model.public());
            let snap = sut.snapshot();
            prop_assert_eq!(snap.generation, model.generation);
            prop_assert_eq!(snap.openings, model.openings);
            if matches!(model.state, M::Closed | M::Disabled) {
                prop_assert_eq!(snap.consecutive_failures, u64::from(model.run));
                if model.p.rate.is_some() {
                    prop_assert_eq!(snap.calls, model.window.len() as u64);
                    prop_assert_eq!(snap.failures, model.window.iter().filter(|f| **f).count() as u64);
                }
            }
            if let M::HalfOpen { left, .. } = model.state {
                prop_assert_eq!(snap.half_open_permits_left, Some(left));
            }
        }
    }
}
