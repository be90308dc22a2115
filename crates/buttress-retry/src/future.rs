//! The response future of [`RetryService`](crate::RetryService).
//!
//! It is a state machine whose states are each polled by one small method:
//!
//! ```text
//!   call ──▶ Calling ─────── stop ───────▶ Done
//!             │   ▲
//!       retry │   └──── ready: send the next attempt ────┐
//!             ▼                                          │
//!          Sleeping ── backoff over ──▶ Readying ────────┘
//!                                          │
//!                                          └── out of time ──▶ Done (the last result)
//! ```
//!
//! `Calling` waits for the attempt (cut off by its time limit, if any);
//! `Sleeping` waits out the backoff, keeping the attempt's result;
//! `Readying` waits for the service to be ready while the deadline runs,
//! then sends the next attempt.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use buttress_core::{Classification, Classify};
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;

use crate::attempts::{Decision, Stop};
use crate::error::{AttemptTimedOut, BoxError};
use crate::policy::{RetryPolicy, Run};
use crate::request::CloneRequest;

pin_project! {
    /// Resolves to the first successful (or final) response, retrying on
    /// the way. Dropping it cancels the attempt in flight and any retries.
    pub struct ResponseFuture<S, F, Req, C, K, T> {
        #[pin]
        state: State<F, T>,
        retry: Retry<S, Req, C, K>,
    }
}

// Timers are boxed, and made only when needed: a `Sleep` is large, and the
// happy path without an attempt timeout never needs one.
type Timer = Pin<Box<Sleep>>;

pin_project! {
    #[project = StateProj]
    #[project_replace = StateOwned]
    enum State<F, T> {
        // An attempt is in flight; `timer` cuts it off at `limit`.
        Calling {
            #[pin]
            attempt: F,
            timer: Option<Timer>,
            limit: Option<Duration>,
        },
        // Waiting out the backoff. The attempt's result is kept so that
        // running out of time returns it.
        Sleeping {
            delay: Timer,
            last: Result<T, BoxError>,
        },
        // Waiting for the service to be ready; the deadline still runs.
        Readying {
            deadline: Option<Timer>,
            last: Result<T, BoxError>,
        },
        // Resolved.
        Done,
    }
}

/// What the future needs across attempts.
struct Retry<S, Req, C, K> {
    /// The service for further attempts; dropped with the last one.
    service: Option<S>,
    /// The copy of the request the next attempt sends.
    spare: Option<Req>,
    run: Run,
    policy: RetryPolicy,
    classifier: C,
    cloner: K,
}

/// Where a state leads.
enum Next<F, T> {
    /// Resolve to this.
    Finish(Result<T, BoxError>),
    /// Wait `Duration`, keeping the attempt's result.
    Sleep(Duration, Result<T, BoxError>),
    /// The backoff is over: wait for the service.
    Ready,
    /// Out of time: resolve to the last attempt's result.
    GiveUp,
    /// Send this attempt, with this time limit.
    Call(F, Option<Duration>),
}

impl<S, F, Req, C, K, T> fmt::Debug for ResponseFuture<S, F, Req, C, K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Calling { .. } => "calling",
            State::Sleeping { .. } => "sleeping",
            State::Readying { .. } => "readying",
            State::Done => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .field("attempts", &self.retry.policy.attempts(&self.retry.run))
            .finish_non_exhaustive()
    }
}

impl<S, F, Req, C, K, T> ResponseFuture<S, F, Req, C, K, T> {
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn new(
        first: F,
        limit: Option<Duration>,
        service: Option<S>,
        spare: Option<Req>,
        run: Run,
        policy: RetryPolicy,
        classifier: C,
        cloner: K,
    ) -> Self {
        Self {
            state: State::Calling {
                attempt: first,
                timer: limit.map(sleep),
                limit,
            },
            retry: Retry {
                service,
                spare,
                run,
                policy,
                classifier,
                cloner,
            },
        }
    }
}

impl<S, F, Req, C, K> Future for ResponseFuture<S, F, Req, C, K, S::Response>
where
    S: Service<Req, Future = F>,
    F: Future<Output = Result<S::Response, S::Error>>,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error>,
    K: CloneRequest<Req>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let next = match this.state.as_mut().project() {
                StateProj::Calling {
                    attempt,
                    timer,
                    limit,
                } => {
                    let result = ready!(poll_attempt(attempt, timer, cx));
                    let limit = *limit;
                    // The attempt is over, or cut off: drop it (and its
                    // timer) before deciding what comes next.
                    this.state.set(State::Done);
                    this.retry.after_attempt(result, limit)
                }
                StateProj::Sleeping { delay, .. } => {
                    ready!(delay.as_mut().poll(cx));
                    Next::Ready
                }
                StateProj::Readying { deadline, .. } => {
                    ready!(this.retry.poll_readying(deadline, cx))
                }
                StateProj::Done => {
                    return Poll::Ready(Err("retry future polled after completion".into()));
                }
            };
            match next {
                Next::Finish(result) => {
                    this.state.set(State::Done);
                    return Poll::Ready(result);
                }
                Next::Sleep(delay, last) => this.state.set(State::Sleeping {
                    delay: sleep(delay),
                    last,
                }),
                Next::Ready => {
                    let last = take_last(this.state.as_mut());
                    let deadline = this.retry.policy.time_left(&this.retry.run).map(sleep);
                    this.state.set(State::Readying { deadline, last });
                }
                Next::GiveUp => return Poll::Ready(take_last(this.state)),
                Next::Call(attempt, limit) => this.state.set(State::Calling {
                    attempt,
                    timer: limit.map(sleep),
                    limit,
                }),
            }
        }
    }
}

fn sleep(d: Duration) -> Timer {
    Box::pin(tokio::time::sleep(d))
}

/// `Calling`: the attempt's result, or `None` once its time limit passed.
#[inline]
fn poll_attempt<F: Future>(
    attempt: Pin<&mut F>,
    timer: &mut Option<Timer>,
    cx: &mut Context<'_>,
) -> Poll<Option<F::Output>> {
    if let Poll::Ready(result) = attempt.poll(cx) {
        return Poll::Ready(Some(result));
    }
    match timer {
        Some(t) => t.as_mut().poll(cx).map(|()| None),
        None => Poll::Pending,
    }
}

/// Ends the future, giving back the result kept while waiting to retry.
fn take_last<F, T>(state: Pin<&mut State<F, T>>) -> Result<T, BoxError> {
    match state.project_replace(State::Done) {
        StateOwned::Sleeping { last, .. } | StateOwned::Readying { last, .. } => last,
        _ => Err("retry deadline passed".into()),
    }
}

impl<S, Req, C, K> Retry<S, Req, C, K> {
    /// After an attempt (`None`: it timed out after `limit`): retry after a
    /// delay, or finish with its result.
    #[inline]
    fn after_attempt<T, E, F>(
        &mut self,
        result: Option<Result<T, E>>,
        limit: Option<Duration>,
    ) -> Next<F, T>
    where
        C: Classify<T, E>,
        E: Into<BoxError>,
    {
        let timed_out = result.is_none();
        let c = match &result {
            Some(r) => self.classifier.classify(r),
            None => Classification::RETRYABLE_FAILURE,
        };
        let decision = if self.spare.is_none()
            && self.policy.attempts(&self.run) < self.policy.max_attempts()
        {
            // Attempts are left but nothing to send again.
            self.policy
                .stop_without_retry(&mut self.run, c, timed_out, Stop::NotCloneable)
        } else {
            self.policy.after_attempt(&mut self.run, c, timed_out)
        };
        let outcome = match result {
            Some(r) => r.map_err(Into::into),
            None => Err(self.timed_out(limit)),
        };
        match decision {
            Decision::Retry { delay, .. } => Next::Sleep(delay, outcome),
            Decision::Stop(_) => Next::Finish(outcome),
        }
    }

    #[cold]
    fn timed_out(&self, limit: Option<Duration>) -> BoxError {
        let attempts = self.policy.attempts(&self.run);
        Box::new(AttemptTimedOut::new(limit.unwrap_or_default(), attempts))
    }

    /// `Readying`: once the service is ready, send the next attempt; give
    /// up if the deadline passes first.
    fn poll_readying<F, T>(
        &mut self,
        deadline: &mut Option<Timer>,
        cx: &mut Context<'_>,
    ) -> Poll<Next<F, T>>
    where
        S: Service<Req, Future = F, Response = T>,
        S::Error: Into<BoxError>,
        K: CloneRequest<Req>,
    {
        let Some(service) = self.service.as_mut() else {
            return Poll::Ready(Next::Finish(Err("retry service missing".into())));
        };
        let ready = match service.poll_ready(cx) {
            Poll::Ready(r) => r,
            Poll::Pending => {
                if let Some(t) = deadline.as_mut() {
                    ready!(t.as_mut().poll(cx));
                    // Out of time before the service was ready.
                    self.policy.finish(&self.run, Stop::Deadline);
                    return Poll::Ready(Next::GiveUp);
                }
                return Poll::Pending;
            }
        };
        if let Err(e) = ready {
            return Poll::Ready(Next::Finish(Err(e.into())));
        }
        if self.policy.out_of_time(&self.run) {
            self.policy.finish(&self.run, Stop::Deadline);
            return Poll::Ready(Next::GiveUp);
        }
        let Some(req) = self.spare.take() else {
            return Poll::Ready(Next::Finish(Err("retry request missing".into())));
        };
        // Keep a copy for the attempt after this one, if any.
        if self.policy.attempts(&self.run) + 1 < self.policy.max_attempts() {
            self.spare = self.cloner.clone_request(&req);
            if self.spare.is_none() {
                self.policy.not_cloneable();
            }
        }
        let limit = self.policy.start_attempt(&mut self.run);
        let attempt = service.call(req);
        if self.spare.is_none() {
            self.service = None;
        }
        Poll::Ready(Next::Call(attempt, limit))
    }
}
