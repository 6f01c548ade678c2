use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};

use pin_project::{pin_project, pinned_drop};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::Service;

use super::{Limits, Overflow};
use crate::BoxError;

type Acquire =
    Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, tokio::sync::AcquireError>> + Send>>;

/// The response future of [`CircuitBreaker`](super::CircuitBreaker).
#[pin_project(PinnedDrop)]
pub struct ResponseFuture<S: Service<Req>, Req> {
    #[pin]
    state: State<S, Req>,
}

#[pin_project(project = StateProj)]
enum State<S: Service<Req>, Req> {
    Running {
        #[pin]
        fut: S::Future,
        permit: Option<OwnedSemaphorePermit>,
    },
    Waiting {
        acquire: Acquire,
        limits: Arc<Limits>,
        call: Option<(S, Req)>,
    },
    Overflow(Option<Overflow>),
}

impl<S: Service<Req>, Req> ResponseFuture<S, Req> {
    pub(super) fn running(fut: S::Future, permit: Option<OwnedSemaphorePermit>) -> Self {
        Self {
            state: State::Running { fut, permit },
        }
    }

    pub(super) fn overflow(e: Overflow) -> Self {
        Self {
            state: State::Overflow(Some(e)),
        }
    }

    pub(super) fn waiting(slots: Arc<Semaphore>, limits: Arc<Limits>, svc: S, req: Req) -> Self {
        Self {
            state: State::Waiting {
                acquire: Box::pin(slots.acquire_owned()),
                limits,
                call: Some((svc, req)),
            },
        }
    }
}

impl<S, Req> Future for ResponseFuture<S, Req>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Running { fut, .. } => return fut.poll(cx).map_err(Into::into),
                StateProj::Overflow(e) => {
                    return Poll::Ready(Err(e.take().expect("polled after completion").into()));
                }
                StateProj::Waiting {
                    acquire,
                    limits,
                    call,
                } => {
                    let permit = ready!(acquire.as_mut().poll(cx));
                    limits.pending.fetch_sub(1, Ordering::AcqRel);
                    let (mut svc, req) = call.take().expect("polled after completion");
                    // The semaphore is never closed.
                    let permit = permit.ok();
                    let fut = svc.call(req);
                    this.state.set(State::Running { fut, permit });
                }
            }
        }
    }
}

#[pinned_drop]
impl<S: Service<Req>, Req> PinnedDrop for ResponseFuture<S, Req> {
    fn drop(self: Pin<&mut Self>) {
        if let StateProj::Waiting { limits, .. } = self.project().state.project() {
            limits.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }
}
