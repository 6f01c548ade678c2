//! The response future of [`MetadataExchange`](super::MetadataExchange).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project::pin_project;

use super::Local;

/// What is done with the response.
#[derive(Debug)]
enum Then {
    /// Client side: the server's headers are read off it.
    Hear(Arc<Local>),
    /// Server side: this workload's headers are added, each as the caller
    /// sent its own (metadata, id).
    Tell(Arc<Local>, bool, bool),
    /// Server side, to a caller that sent neither: nothing.
    Nothing,
}

/// Resolves to the inner response, its peer metadata headers handled.
#[pin_project]
#[derive(Debug)]
pub struct ResponseFuture<F> {
    #[pin]
    inner: F,
    then: Then,
}

impl<F> ResponseFuture<F> {
    pub(super) fn hearing(inner: F, local: Arc<Local>) -> Self {
        Self {
            inner,
            then: Then::Hear(local),
        }
    }

    pub(super) fn telling(inner: F, telling: Option<(Arc<Local>, bool, bool)>) -> Self {
        let then = match telling {
            Some((local, metadata, id)) => Then::Tell(local, metadata, id),
            None => Then::Nothing,
        };
        Self { inner, then }
    }
}

impl<F, R, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<R>, E>>,
{
    type Output = Result<http::Response<R>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = ready!(this.inner.poll(cx))?;
        match this.then {
            Then::Hear(local) => local.hear_response(&mut res),
            Then::Tell(local, metadata, id) => {
                let headers = res.headers_mut();
                if *metadata {
                    headers.insert(super::PEER_METADATA, local.metadata.clone());
                }
                if *id {
                    headers.insert(super::PEER_METADATA_ID, local.id.clone());
                }
            }
            Then::Nothing => {}
        }
        Poll::Ready(Ok(res))
    }
}
