//! The answer a layer gives at once (a refusal), held by its response
//! future until the one poll that hands it over.

use std::task::Poll;

/// An answer handed over once: what the response future of a refused call
/// holds. Polling it after it was taken breaks the `Future` contract; it
/// then pends forever instead of panicking (the error type belongs to the
/// rejection handler, so no error can be made up).
///
/// ```
/// use std::task::Poll;
/// use buttress_core::Answer;
///
/// let mut answer = Answer::new(Err::<u32, &str>("refused"));
/// assert_eq!(answer.take(), Poll::Ready(Err("refused")));
/// assert_eq!(answer.take(), Poll::Pending);
/// ```
#[derive(Debug)]
pub struct Answer<T>(Option<T>);

impl<T> Answer<T> {
    /// Holds `value` until it is taken.
    pub fn new(value: T) -> Self {
        Answer(Some(value))
    }

    /// The answer the first time, `Pending` after.
    #[inline]
    pub fn take(&mut self) -> Poll<T> {
        match self.0.take() {
            Some(value) => Poll::Ready(value),
            None => Poll::Pending,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of a layer that either calls its inner service
    /// or answers at once without it (a refusal): the inner future, or an
    /// [`Answer`]. The inner service's error converts into the layer's.
    ///
    /// ```
    /// use buttress_core::CalledOrAnswered;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let called = CalledOrAnswered::<_, u32, Box<dyn std::error::Error + Send + Sync>>::called(
    ///     async { Ok::<u32, std::io::Error>(7) },
    /// );
    /// assert_eq!(called.await.unwrap(), 7);
    /// let refused = CalledOrAnswered::<std::future::Ready<Result<u32, std::io::Error>>, u32, _>::answered(
    ///     Err::<u32, Box<dyn std::error::Error + Send + Sync>>("refused".into()),
    /// );
    /// assert_eq!(refused.await.unwrap_err().to_string(), "refused");
    /// # });
    /// ```
    pub struct CalledOrAnswered<F, T, E> {
        #[pin]
        kind: Kind<F, T, E>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<F, T, E> {
        Called { #[pin] inner: F },
        Answered { answer: Answer<Result<T, E>> },
    }
}

impl<F, T, E> CalledOrAnswered<F, T, E> {
    /// The inner service's future.
    pub fn called(inner: F) -> Self {
        Self {
            kind: Kind::Called { inner },
        }
    }

    /// An answer given without the inner service.
    pub fn answered(answer: Result<T, E>) -> Self {
        Self {
            kind: Kind::Answered {
                answer: Answer::new(answer),
            },
        }
    }
}

impl<F, T, E> std::fmt::Debug for CalledOrAnswered<F, T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CalledOrAnswered").finish_non_exhaustive()
    }
}

impl<F, T, E, E2> std::future::Future for CalledOrAnswered<F, T, E2>
where
    F: std::future::Future<Output = Result<T, E>>,
    E2: From<E>,
{
    type Output = Result<T, E2>;

    #[inline]
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { inner } => inner.poll(cx).map_err(E2::from),
            KindProj::Answered { answer } => answer.take(),
        }
    }
}
