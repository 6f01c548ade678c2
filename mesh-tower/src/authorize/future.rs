use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use http_body_util::Either;
use pin_project::pin_project;

use crate::ResponseBody;

/// The response future of [`Authorize`](super::Authorize).
#[pin_project(project = Projected)]
#[derive(Debug)]
pub enum ResponseFuture<F> {
    /// The request went through.
    Inner(#[pin] F),
    /// It was refused with this response.
    Refused(Option<Response<ResponseBody>>),
}

impl<F> ResponseFuture<F> {
    pub(super) fn inner(f: F) -> Self {
        Self::Inner(f)
    }

    pub(super) fn refused(res: Response<ResponseBody>) -> Self {
        Self::Refused(Some(res))
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<Either<B, ResponseBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Projected::Inner(f) => f.poll(cx).map_ok(|res| res.map(Either::Left)),
            Projected::Refused(res) => {
                let res = res.take().expect("polled after completion");
                Poll::Ready(Ok(res.map(Either::Right)))
            }
        }
    }
}
