use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project::pin_project;
use tower::Service;
use tower::util::Oneshot;

use super::load::{EwmaParams, InFlight};
use crate::BoxError;

type Waiting<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

/// The response future of [`Balance`](super::Balance).
#[pin_project(project = Proj)]
pub struct ResponseFuture<S: Service<Req>, Req> {
    #[pin]
    state: State<S, Req>,
}

#[pin_project(project = StateProj)]
enum State<S: Service<Req>, Req> {
    Dispatched {
        #[pin]
        fut: Oneshot<S, Req>,
        in_flight: InFlight,
        ewma: EwmaParams,
    },
    Waiting(Waiting<S::Response>),
    Failed(Option<BoxError>),
}

impl<S: Service<Req>, Req> ResponseFuture<S, Req> {
    pub(super) fn dispatched(fut: Oneshot<S, Req>, in_flight: InFlight, ewma: EwmaParams) -> Self {
        Self {
            state: State::Dispatched {
                fut,
                in_flight,
                ewma,
            },
        }
    }

    pub(super) fn waiting(fut: Waiting<S::Response>) -> Self {
        Self {
            state: State::Waiting(fut),
        }
    }

    pub(super) fn failed(e: BoxError) -> Self {
        Self {
            state: State::Failed(Some(e)),
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
        match self.project().state.project() {
            StateProj::Dispatched {
                fut,
                in_flight,
                ewma,
            } => {
                let res = ready!(fut.poll(cx)).map_err(Into::into);
                match &res {
                    Ok(_) => in_flight.observe(*ewma),
                    // Failing fast must not look fast: an endpoint that
                    // refuses connections would otherwise draw traffic.
                    Err(_) => in_flight.penalize(*ewma),
                }
                Poll::Ready(res)
            }
            StateProj::Waiting(fut) => fut.as_mut().poll(cx),
            StateProj::Failed(e) => Poll::Ready(Err(e.take().expect("polled after completion"))),
        }
    }
}
