use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project::pin_project;
use tokio::time::Sleep;
use tower::Service;
use tower::util::Oneshot;

use super::ActiveFault;
use crate::{BoxError, ResponseBody};

/// The response future of [`Fault`](super::Fault).
#[pin_project]
pub struct ResponseFuture<S: Service<R>, R> {
    #[pin]
    state: State<S, R>,
}

#[pin_project(project = StateProj)]
enum State<S: Service<R>, R> {
    /// No fault: the inner future.
    Passed(#[pin] S::Future),
    /// Waiting out a delay; then abort or forward.
    Delayed {
        #[pin]
        sleep: Sleep,
        next: Option<(S, R, Option<http::Response<ResponseBody>>)>,
        active: Option<ActiveFault>,
    },
    /// Forwarded after a delay, still counted as an active fault.
    Forwarded(#[pin] Oneshot<S, R>, Option<ActiveFault>),
    /// Aborted.
    Aborted(Option<http::Response<ResponseBody>>, Option<ActiveFault>),
}

impl<S: Service<R>, R> ResponseFuture<S, R> {
    pub(super) fn passed(fut: S::Future) -> Self {
        Self {
            state: State::Passed(fut),
        }
    }

    pub(super) fn delayed(
        delay: Duration,
        inner: S,
        req: R,
        abort: Option<http::Response<ResponseBody>>,
        active: ActiveFault,
    ) -> Self {
        Self {
            state: State::Delayed {
                sleep: tokio::time::sleep(delay),
                next: Some((inner, req, abort)),
                active: Some(active),
            },
        }
    }

    pub(super) fn aborted(
        abort: Option<http::Response<ResponseBody>>,
        active: ActiveFault,
    ) -> Self {
        Self {
            state: State::Aborted(abort, Some(active)),
        }
    }
}

impl<S, R> Future for ResponseFuture<S, R>
where
    S: Service<R, Response = http::Response<ResponseBody>>,
    S::Error: Into<BoxError>,
{
    type Output = Result<http::Response<ResponseBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let next = match this.state.as_mut().project() {
                StateProj::Passed(f) => return f.poll(cx).map_err(Into::into),
                StateProj::Forwarded(f, _) => return f.poll(cx).map_err(Into::into),
                StateProj::Aborted(res, _) => {
                    let res = res.take().expect("polled after completion");
                    return Poll::Ready(Ok(res));
                }
                StateProj::Delayed {
                    sleep,
                    next,
                    active,
                } => {
                    ready!(sleep.poll(cx));
                    let (inner, req, abort) = next.take().expect("polled after completion");
                    match abort {
                        Some(res) => State::Aborted(Some(res), active.take()),
                        None => {
                            State::Forwarded(tower::ServiceExt::oneshot(inner, req), active.take())
                        }
                    }
                }
            };
            this.state.set(next);
        }
    }
}
