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
