//! [`CountedBody`]: a request body whose bytes and, for gRPC, messages are
//! counted as it streams, for `istio_request_bytes` and
//! `istio_request_messages_total`; the request is recorded when its
//! response ends, with what the request body carried by then.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use http_body::{Body, Frame, SizeHint};
use pin_project::pin_project;

use super::grpc::Tally;

/// What a request body carried so far, as the body publishes it for the
/// request's record.
#[derive(Debug, Default)]
pub(super) struct Carried {
    bytes: AtomicU64,
    messages: AtomicU64,
}

impl Carried {
    /// The body bytes and gRPC messages so far.
    pub(super) fn so_far(&self) -> (u64, u64) {
        (
            self.bytes.load(Ordering::Relaxed),
            self.messages.load(Ordering::Relaxed),
        )
    }
}

/// The body of a request the mesh's metrics layer passed on: the body as
/// it came, counted on its way when the request is recorded. What a
/// [`MeshServer`](crate::MeshServer)'s service is given
/// ([`server::Body`](crate::server::Body)), and what a
/// [`Mesh::reported`](crate::Mesh::reported) client sends.
#[pin_project]
#[derive(Debug)]
pub struct CountedBody<B> {
    #[pin]
    inner: B,
    /// The count (the body's own, so its frames take no lock) and where
    /// it is published.
    counting: Option<(Tally, Arc<Carried>)>,
}

impl<B> CountedBody<B> {
    /// `inner`, counted (its gRPC messages too when `grpc`); and where
    /// the count is read.
    pub(super) fn counted(inner: B, grpc: bool) -> (Self, Arc<Carried>) {
        let carried = Arc::<Carried>::default();
        let counting = Some((Tally::new(0, grpc), carried.clone()));
        (Self { inner, counting }, carried)
    }

    /// The body, not counted.
    pub fn uncounted(inner: B) -> Self {
        Self {
            inner,
            counting: None,
        }
    }

    /// The body within.
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B: Body> Body for CountedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let (Some((tally, carried)), Some(Ok(frame))) = (this.counting, &frame)
            && let Some(data) = frame.data_ref()
        {
            tally.feed(data);
            carried.bytes.store(tally.bytes, Ordering::Relaxed);
            let messages = tally.messages().unwrap_or(0);
            carried.messages.store(messages, Ordering::Relaxed);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    fn message(len: u8) -> Vec<u8> {
        let mut m = vec![0, 0, 0, 0, len];
        m.resize(5 + usize::from(len), 1);
        m
    }

    #[tokio::test]
    async fn a_streamed_body_is_counted_as_it_goes_by() {
        // Three messages, cut across four frames.
        let all = [message(10), message(0), message(20)].concat();
        let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> =
            [&all[..3], &all[3..17], &all[17..30], &all[30..]]
                .into_iter()
                .map(|piece| Ok(Frame::data(Bytes::copy_from_slice(piece))))
                .collect();
        let (body, carried) =
            CountedBody::counted(StreamBody::new(futures_util::stream::iter(frames)), true);
        let mut body = std::pin::pin!(body);
        body.frame().await.unwrap().unwrap();
        assert_eq!(carried.so_far(), (3, 0), "a prefix not yet whole");
        let rest = body.collect().await.unwrap().to_bytes();
        assert_eq!(rest.len(), all.len() - 3);
        assert_eq!(carried.so_far(), (all.len() as u64, 3));

        // Not gRPC: bytes only.
        let (body, carried) =
            CountedBody::counted(http_body_util::Full::new(Bytes::from("hello")), false);
        body.collect().await.unwrap();
        assert_eq!(carried.so_far(), (5, 0));
    }
}
