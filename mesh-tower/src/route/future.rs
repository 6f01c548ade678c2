use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project::pin_project;

use mesh_core::route::HeaderMutation;

use crate::{BoxError, ResponseBody};

/// The response future of [`Route`](super::Route).
#[pin_project]
#[derive(Debug)]
pub struct ResponseFuture<F> {
    #[pin]
    state: State<F>,
}

#[pin_project(project = StateProj)]
#[derive(Debug)]
enum State<F> {
    /// Forwarded, with the route's response header changes, if any.
    Forwarded(#[pin] F, Option<HeaderMutation>),
    /// Answered here, or failed.
    Done(Option<Result<http::Response<ResponseBody>, BoxError>>),
}

impl<F> ResponseFuture<F> {
    pub(super) fn forwarded(fut: F, response_headers: Option<HeaderMutation>) -> Self {
        Self {
            state: State::Forwarded(fut, response_headers),
        }
    }

    pub(super) fn local(res: http::Response<ResponseBody>) -> Self {
        Self {
            state: State::Done(Some(Ok(res))),
        }
    }

    pub(super) fn failed(e: BoxError) -> Self {
        Self {
            state: State::Done(Some(Err(e))),
        }
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<ResponseBody>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<http::Response<ResponseBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Forwarded(fut, response_headers) => {
                let mut res = ready!(fut.poll(cx)).map_err(Into::into)?;
                if let Some(changes) = response_headers {
                    changes.apply(res.headers_mut());
                }
                Poll::Ready(Ok(res))
            }
            StateProj::Done(r) => Poll::Ready(r.take().expect("polled after completion")),
        }
    }
}
