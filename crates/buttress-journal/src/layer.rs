//! [`JournalLayer`]: one journal event per request and response.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use buttress_core::{Clock, SharedClock, default_clock};
use serde::Serialize;
use tower_layer::Layer;
use tower_service::Service;

use crate::journal::{Journal, Queued};
use crate::queue::Estimate;

/// Builds the event a request and its response leave in the journal.
///
/// [`events`] makes one from two closures.
pub trait RecordEvents<Req, Res, E> {
    /// What the request side keeps for the response side (for example the
    /// method and path).
    type Pending;
    /// The event written. It is serialized by the journal's writer thread,
    /// off the request path, so it is sent there (`Send + 'static`).
    type Event: Serialize + Send + 'static;
    /// Called before the request goes to the inner service.
    fn on_request(&self, request: &Req) -> Self::Pending;
    /// Called with the result; `None` records nothing.
    fn on_response(
        &self,
        pending: Self::Pending,
        result: &Result<Res, E>,
        elapsed: Duration,
    ) -> Option<Self::Event>;
}

/// A [`RecordEvents`] made of two closures; see [`events`].
pub struct FnEvents<Q, R, P, Ev> {
    on_request: Q,
    on_response: R,
    _types: PhantomData<fn() -> (P, Ev)>,
}

impl<Q, R, P, Ev> fmt::Debug for FnEvents<Q, R, P, Ev> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnEvents")
    }
}

impl<Q: Clone, R: Clone, P, Ev> Clone for FnEvents<Q, R, P, Ev> {
    fn clone(&self) -> Self {
        FnEvents {
            on_request: self.on_request.clone(),
            on_response: self.on_response.clone(),
            _types: PhantomData,
        }
    }
}

/// Events from two closures: `on_request` sees the request and returns
/// what the response side needs; `on_response` builds the event (or
/// `None`) from that, the result, and the time the inner service took.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use buttress_core::ManualClock;
/// use buttress_fs::SimFs;
/// use buttress_journal::{Journal, JournalConfig, JournalLayer, JournalReader, events};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let fs = SimFs::new();
/// # let journal = Journal::open_with(Arc::new(fs.clone()), Arc::new(ManualClock::new()), "/j", "failures", JournalConfig::default())?;
/// // Keep the path from the request; record failed calls only.
/// let failures = events(
///     |path: &String| path.clone(),
///     |path, result: &Result<u16, std::io::Error>, _took: Duration| {
///         let e = result.as_ref().err()?; // `None`: nothing recorded
///         Some(serde_json::json!({"path": path, "error": e.to_string()}))
///     },
/// );
/// let svc = JournalLayer::new(journal.clone(), failures).layer(service_fn(|path: String| async move {
///     if path == "/boom" { Err(std::io::Error::other("boom")) } else { Ok(200) }
/// }));
/// assert_eq!(svc.clone().oneshot("/ok".to_string()).await?, 200);
/// assert!(svc.oneshot("/boom".to_string()).await.is_err());
/// journal.close()?; // written and synced
///
/// let mut reader = JournalReader::with_fs(Arc::new(fs), "/j", "failures");
/// let record = reader.next_record::<serde_json::Value>()?.expect("one event");
/// assert_eq!(record.event, serde_json::json!({"path": "/boom", "error": "boom"}));
/// assert!(reader.next_record::<serde_json::Value>()?.is_none()); // the success left nothing
/// # Ok(()) }
/// ```
pub fn events<Req, Res, E, Q, R, P, Ev>(on_request: Q, on_response: R) -> FnEvents<Q, R, P, Ev>
where
    Q: Fn(&Req) -> P,
    R: Fn(P, &Result<Res, E>, Duration) -> Option<Ev>,
    Ev: Serialize + Send + 'static,
{
    FnEvents {
        on_request,
        on_response,
        _types: PhantomData,
    }
}

impl<Req, Res, E, Q, R, P, Ev> RecordEvents<Req, Res, E> for FnEvents<Q, R, P, Ev>
where
    Q: Fn(&Req) -> P,
    R: Fn(P, &Result<Res, E>, Duration) -> Option<Ev>,
    Ev: Serialize + Send + 'static,
{
    type Pending = P;
    type Event = Ev;
    fn on_request(&self, request: &Req) -> P {
        (self.on_request)(request)
    }
    fn on_response(&self, pending: P, result: &Result<Res, E>, elapsed: Duration) -> Option<Ev> {
        (self.on_response)(pending, result, elapsed)
    }
}

/// Records one event per request and response in a [`Journal`].
///
/// The event goes through the journal's bounded queue and the response is
/// never held for durability. When the queue is full the journal's overflow
/// policy applies: `Drop` drops and counts the event and the response goes
/// on at once; `Wait` holds the response until there is space. A failed or
/// closed journal never fails a response.
///
/// The event is queued as it is and serialized by the journal's writer
/// thread, so the request path pays for a push onto a vector, not for
/// JSON: this is why events must be `Send + 'static`. In the queue's bound
/// an event counts as the size this layer's records had when last written.
/// What a direct append would report to its caller is logged at `debug`
/// and the event skipped: an event that does not serialize, is larger than
/// [`max_record_bytes`](crate::JournalConfig::max_record_bytes), or whose
/// `Serialize` panics (caught, so the writer goes on). Events keep their
/// order with each other and with the appends around them.
///
/// The time the inner service took (the `elapsed` given to
/// [`RecordEvents::on_response`]) is read from the layer's clock:
/// [`default_clock`](buttress_core::default_clock) (the CPU's time-stamp
/// counter, or tokio's clock when the layer is built inside a runtime whose
/// time is paused), or the one given to [`clock`](JournalLayer::clock).
///
/// ```
/// use std::time::Duration;
/// use buttress_journal::{Journal, JournalConfig, JournalLayer, Overflow, events};
/// use tower::{ServiceBuilder, service_fn};
///
/// # fn run(journal: Journal) {
/// let svc = ServiceBuilder::new()
///     .layer(JournalLayer::new(
///         journal,
///         events(
///             |req: &String| req.len(),
///             |len, result: &Result<String, std::io::Error>, took: Duration| {
///                 Some(serde_json::json!({"len": len, "ok": result.is_ok(), "us": took.as_micros() as u64}))
///             },
///         ),
///     ))
///     .service(service_fn(|req: String| async move { Ok::<_, std::io::Error>(req) }));
/// # let _ = svc; }
/// ```
pub struct JournalLayer<F> {
    journal: Journal,
    events: Arc<F>,
    clock: SharedClock,
    estimate: Arc<Estimate>,
}

/// What every call of a service needs, behind one `Arc` so that a call
/// clones one pointer.
struct Hooks<F> {
    journal: Journal,
    events: Arc<F>,
    clock: SharedClock,
    /// The size of this layer's records, which the queue counts an event
    /// as before the writer serializes it.
    estimate: Arc<Estimate>,
}

impl<F> JournalLayer<F> {
    /// Records the events `events` builds in `journal`, timing calls with
    /// [`default_clock`](buttress_core::default_clock).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use buttress_core::ManualClock;
    /// use buttress_fs::SimFs;
    /// use buttress_journal::{Journal, JournalConfig, JournalLayer, JournalReader, events};
    /// use tower::{Layer, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let fs = SimFs::new();
    /// let journal = Journal::open_with(
    ///     Arc::new(fs.clone()),
    ///     Arc::new(ManualClock::new()),
    ///     "/telemetry",
    ///     "calls",
    ///     JournalConfig::default(),
    /// )?;
    /// let layer = JournalLayer::new(
    ///     journal.clone(),
    ///     events(
    ///         |x: &u32| *x,
    ///         |x, result: &Result<u32, std::io::Error>, _took: Duration| {
    ///             Some(serde_json::json!({"in": x, "out": result.as_ref().ok()}))
    ///         },
    ///     ),
    /// );
    /// let svc = layer.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x * 2) }));
    /// assert_eq!(svc.oneshot(21).await?, 42); // the response does not wait for the disk
    /// journal.close()?; // written and synced
    ///
    /// let mut reader = JournalReader::with_fs(Arc::new(fs), "/telemetry", "calls");
    /// let record = reader.next_record::<serde_json::Value>()?.expect("one event");
    /// assert_eq!(record.event, serde_json::json!({"in": 21, "out": 42}));
    /// # Ok(()) }
    /// ```
    pub fn new(journal: Journal, events: F) -> Self {
        JournalLayer {
            journal,
            events: Arc::new(events),
            clock: default_clock(),
            estimate: Arc::default(),
        }
    }

    /// Times calls with `clock` (default:
    /// [`default_clock`](buttress_core::default_clock)): the `elapsed` given
    /// to [`RecordEvents::on_response`] is measured on it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_core::ManualClock;
    /// use buttress_journal::{Journal, JournalLayer, events};
    ///
    /// # fn run(journal: Journal) {
    /// let clock = ManualClock::new();
    /// let layer = JournalLayer::new(
    ///     journal,
    ///     events(
    ///         |_: &String| (),
    ///         |(), _: &Result<(), std::io::Error>, took: Duration| {
    ///             Some(serde_json::json!({"ms": took.as_millis() as u64}))
    ///         },
    ///     ),
    /// )
    /// .clock(clock.clone());
    /// # let _ = layer; }
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }
}

impl<F> Clone for JournalLayer<F> {
    fn clone(&self) -> Self {
        JournalLayer {
            journal: self.journal.clone(),
            events: self.events.clone(),
            clock: self.clock.clone(),
            estimate: self.estimate.clone(),
        }
    }
}

impl<F> fmt::Debug for JournalLayer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalLayer")
            .field("journal", &self.journal.name())
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl<S, F> Layer<S> for JournalLayer<F> {
    type Service = JournalService<S, F>;
    fn layer(&self, inner: S) -> Self::Service {
        JournalService {
            inner,
            hooks: Arc::new(Hooks {
                journal: self.journal.clone(),
                events: self.events.clone(),
                clock: self.clock.clone(),
                estimate: self.estimate.clone(),
            }),
        }
    }
}

/// The service of [`JournalLayer`].
pub struct JournalService<S, F> {
    inner: S,
    hooks: Arc<Hooks<F>>,
}

impl<S: Clone, F> Clone for JournalService<S, F> {
    fn clone(&self) -> Self {
        JournalService {
            inner: self.inner.clone(),
            hooks: self.hooks.clone(),
        }
    }
}

impl<S: fmt::Debug, F> fmt::Debug for JournalService<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalService")
            .field("inner", &self.inner)
            .field("journal", &self.hooks.journal.name())
            .finish_non_exhaustive()
    }
}

impl<S, F, Req> Service<Req> for JournalService<S, F>
where
    S: Service<Req>,
    F: RecordEvents<Req, S::Response, S::Error>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = future::ResponseFuture<S::Future, F, Req, F::Pending, S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let pending = self.hooks.events.on_request(&request);
        let started = self.hooks.clock.now();
        future::ResponseFuture::new(
            self.inner.call(request),
            self.hooks.clone(),
            pending,
            started,
        )
    }
}

/// The response future of [`JournalService`].
pub mod future {
    use super::*;

    pin_project_lite::pin_project! {
        /// Runs the inner future, then records the event.
        pub struct ResponseFuture<Fut, F, Req, P, Res, E> {
            #[pin]
            inner: Fut,
            hooks: Arc<Hooks<F>>,
            pending: Option<P>,
            started: std::time::Instant,
            waiting: Option<(Pin<Box<dyn Future<Output = ()> + Send>>, Result<Res, E>)>,
            _request: PhantomData<fn(Req)>,
        }
    }

    impl<Fut, F, Req, P, Res, E> ResponseFuture<Fut, F, Req, P, Res, E> {
        pub(super) fn new(
            inner: Fut,
            hooks: Arc<Hooks<F>>,
            pending: P,
            started: std::time::Instant,
        ) -> Self {
            ResponseFuture {
                inner,
                hooks,
                pending: Some(pending),
                started,
                waiting: None,
                _request: PhantomData,
            }
        }
    }

    impl<Fut, F, Req, P, Res, E> fmt::Debug for ResponseFuture<Fut, F, Req, P, Res, E> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("ResponseFuture").finish_non_exhaustive()
        }
    }

    impl<Fut, F, Req, P, Res, E> Future for ResponseFuture<Fut, F, Req, P, Res, E>
    where
        Fut: Future<Output = Result<Res, E>>,
        F: RecordEvents<Req, Res, E, Pending = P>,
    {
        type Output = Result<Res, E>;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let this = self.project();
            if this.waiting.is_none() {
                let result = ready!(this.inner.poll(cx));
                let Some(pending) = this.pending.take() else {
                    return Poll::Ready(result);
                };
                let elapsed = this
                    .hooks
                    .clock
                    .now()
                    .saturating_duration_since(*this.started);
                let Some(event) = this.hooks.events.on_response(pending, &result, elapsed) else {
                    return Poll::Ready(result);
                };
                let hooks = &**this.hooks;
                match hooks.journal.queue_event(event, &hooks.estimate) {
                    Queued::Done => return Poll::Ready(result),
                    Queued::Wait(wait) => *this.waiting = Some((wait, result)),
                }
            }
            if let Some((wait, _)) = this.waiting.as_mut() {
                ready!(wait.as_mut().poll(cx));
            }
            match this.waiting.take() {
                Some((_, result)) => Poll::Ready(result),
                None => unreachable!("set above"),
            }
        }
    }
}
