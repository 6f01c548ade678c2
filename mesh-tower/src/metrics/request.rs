//! [`CountedBody`]: a request body whose bytes and, for gRPC, messages are
//! counted as it streams, for `istio_request_bytes` and
//! `istio_request_messages_total`; the request is recorded when its
//! response ends, with what the request body carried by then.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project::pin_project;

use super::grpc::GrpcMessages;

/// What a request body carried so far; shared between the body and the
/// request's record.
#[derive(Debug, Default)]
pub(super) struct Carried {
    inner: Mutex<CarriedSoFar>,
}

#[derive(Debug, Default)]
struct CarriedSoFar {
    bytes: u64,
    /// For gRPC: the messages, counted as they go by.
    messages: Option<GrpcMessages>,
}

impl Carried {
    /// Counts gRPC messages too when `grpc`.
    pub(super) fn new(grpc: bool) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(CarriedSoFar {
                bytes: 0,
                messages: grpc.then(GrpcMessages::default),
            }),
        })
    }

    /// The body bytes and (for gRPC) messages so far.
    pub(super) fn so_far(&self) -> (u64, Option<u64>) {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        (
            inner.bytes,
            inner.messages.as_ref().map(GrpcMessages::count),
        )
    }

    fn feed(&self, data: &impl Buf) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.bytes += data.remaining() as u64;
        if let Some(messages) = &mut inner.messages {
            messages.feed(data);
        }
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
    carried: Option<Arc<Carried>>,
}

impl<B> CountedBody<B> {
    pub(super) fn new(inner: B, carried: Option<Arc<Carried>>) -> Self {
        Self { inner, carried }
    }

    /// The body, not counted.
    pub fn uncounted(inner: B) -> Self {
        Self::new(inner, None)
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
        if let (Some(carried), Some(Ok(frame))) = (this.carried, &frame)
            && let Some(data) = frame.data_ref()
        {
            carried.feed(data);
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
        let carried = Carried::new(true);
        let body = CountedBody::new(
            StreamBody::new(futures_util::stream::iter(frames)),
            Some(carried.clone()),
        );
        let mut body = std::pin::pin!(body);
        body.frame().await.unwrap().unwrap();
        assert_eq!(carried.so_far(), (3, Some(0)), "a prefix not yet whole");
        let rest = body.collect().await.unwrap().to_bytes();
        assert_eq!(rest.len(), all.len() - 3);
        assert_eq!(carried.so_far(), (all.len() as u64, Some(3)));

        // Not gRPC: bytes only.
        let carried = Carried::new(false);
        let body = CountedBody::new(
            http_body_util::Full::new(Bytes::from("hello")),
            Some(carried.clone()),
        );
        body.collect().await.unwrap();
        assert_eq!(carried.so_far(), (5, None));
    }
}
