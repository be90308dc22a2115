//! The response future of [`RetryService`](crate::RetryService).

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// An attempt is in flight (its timer, if any, is the attempt limit).
    Calling,
    /// Waiting out the backoff (the timer is the delay).
    Sleeping,
    /// Waiting for the retry service to be ready.
    Readying,
}

pin_project! {
    /// Resolves to the first successful (or final) response, retrying on
    /// the way. Dropping it cancels the attempt in flight and any retries.
    pub struct ResponseFuture<S, F, Req, C, K, T> {
        #[pin]
        attempt: Option<F>,
        // The last attempt's result, kept while waiting to retry, so that
        // running out of time returns it.
        last: Option<Result<T, BoxError>>,
        // Boxed, and made only when needed: a `Sleep` is large, and the
        // happy path without an attempt timeout never needs one.
        timer: Option<Pin<Box<Sleep>>>,
        phase: Phase,
        limit: Option<Duration>,
        service: Option<S>,
        spare: Option<Req>,
        run: Run,
        policy: RetryPolicy,
        classifier: C,
        cloner: K,
    }
}

impl<S, F, Req, C, K, T> fmt::Debug for ResponseFuture<S, F, Req, C, K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("phase", &self.phase)
            .field("attempts", &self.policy.attempts(&self.run))
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
            attempt: Some(first),
            last: None,
            timer: limit.map(|d| Box::pin(tokio::time::sleep(d))),
            phase: Phase::Calling,
            limit,
            service,
            spare,
            run,
            policy,
            classifier,
            cloner,
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
            match *this.phase {
                Phase::Calling => {
                    let result = match this.attempt.as_mut().as_pin_mut() {
                        Some(f) => match f.poll(cx) {
                            Poll::Ready(r) => Some(r),
                            Poll::Pending => None,
                        },
                        None => {
                            return Poll::Ready(Err("retry future polled after completion".into()));
                        }
                    };
                    let result = match result {
                        Some(r) => Some(r),
                        None => match this.timer.as_mut() {
                            Some(t) => {
                                ready!(t.as_mut().poll(cx));
                                None // the attempt timed out
                            }
                            None => return Poll::Pending,
                        },
                    };
                    this.attempt.set(None);
                    *this.timer = None;
                    let timed_out = result.is_none();
                    let c = match &result {
                        Some(r) => this.classifier.classify(r),
                        None => Classification::RETRYABLE_FAILURE,
                    };
                    let decision = if this.spare.is_none()
                        && this.policy.attempts(this.run) < this.policy.max_attempts()
                    {
                        // Attempts are left but nothing to send again.
                        this.policy
                            .stop_without_retry(this.run, c, timed_out, Stop::NotCloneable)
                    } else {
                        this.policy.after_attempt(this.run, c, timed_out)
                    };
                    let attempts = this.policy.attempts(this.run);
                    let outcome = match result {
                        Some(r) => r.map_err(Into::into),
                        None => Err(Box::new(AttemptTimedOut::new(
                            this.limit.unwrap_or_default(),
                            attempts,
                        )) as BoxError),
                    };
                    match decision {
                        Decision::Retry { delay, .. } => {
                            *this.last = Some(outcome);
                            *this.timer = Some(Box::pin(tokio::time::sleep(delay)));
                            *this.phase = Phase::Sleeping;
                        }
                        Decision::Stop(_) => return Poll::Ready(outcome),
                    }
                }
                Phase::Sleeping => {
                    if let Some(t) = this.timer.as_mut() {
                        ready!(t.as_mut().poll(cx));
                    }
                    // While waiting for readiness, the deadline still runs.
                    *this.timer = this
                        .policy
                        .time_left(this.run)
                        .map(|d| Box::pin(tokio::time::sleep(d)));
                    *this.phase = Phase::Readying;
                }
                Phase::Readying => {
                    let Some(service) = this.service.as_mut() else {
                        return Poll::Ready(Err("retry service missing".into()));
                    };
                    let ready = match service.poll_ready(cx) {
                        Poll::Ready(r) => r,
                        Poll::Pending => {
                            if let Some(t) = this.timer.as_mut() {
                                ready!(t.as_mut().poll(cx));
                                // Out of time before the service was ready.
                                this.policy.finish(this.run, Stop::Deadline);
                                return Poll::Ready(
                                    this.last
                                        .take()
                                        .unwrap_or_else(|| Err("retry deadline passed".into())),
                                );
                            }
                            return Poll::Pending;
                        }
                    };
                    *this.timer = None;
                    if let Err(e) = ready {
                        return Poll::Ready(Err(e.into()));
                    }
                    if this.policy.out_of_time(this.run) {
                        this.policy.finish(this.run, Stop::Deadline);
                        return Poll::Ready(
                            this.last
                                .take()
                                .unwrap_or_else(|| Err("retry deadline passed".into())),
                        );
                    }
                    let Some(req) = this.spare.take() else {
                        return Poll::Ready(Err("retry request missing".into()));
                    };
                    // Keep a copy for the attempt after this one, if any.
                    if this.policy.attempts(this.run) + 1 < this.policy.max_attempts() {
                        *this.spare = this.cloner.clone_request(&req);
                        if this.spare.is_none() {
                            this.policy.not_cloneable();
                        }
                    }
                    *this.last = None;
                    let limit = this.policy.start_attempt(this.run);
                    *this.limit = limit;
                    this.attempt.set(Some(service.call(req)));
                    *this.timer = limit.map(|d| Box::pin(tokio::time::sleep(d)));
                    if this.spare.is_none() {
                        *this.service = None;
                    }
                    *this.phase = Phase::Calling;
                }
            }
        }
    }
}
