use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project::pin_project;
use tokio::time::Sleep;

use super::RequestTimeout;
use crate::BoxError;

/// The response future of [`Timeout`](super::Timeout).
#[pin_project]
#[derive(Debug)]
pub struct ResponseFuture<F> {
    #[pin]
    inner: F,
    #[pin]
    sleep: Option<Sleep>,
    timeout: Duration,
}

impl<F> ResponseFuture<F> {
    /// `inner`, failed with [`RequestTimeout`] if it has not finished
    /// within `timeout`; `None` waits as long as it takes.
    pub(crate) fn within(inner: F, timeout: Option<Duration>) -> Self {
        Self {
            inner,
            sleep: timeout.map(tokio::time::sleep),
            timeout: timeout.unwrap_or_default(),
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(res) = this.inner.poll(cx) {
            return Poll::Ready(res.map_err(Into::into));
        }
        match this.sleep.as_pin_mut() {
            Some(sleep) => sleep
                .poll(cx)
                .map(|()| Err(RequestTimeout(*this.timeout).into())),
            None => Poll::Pending,
        }
    }
}
