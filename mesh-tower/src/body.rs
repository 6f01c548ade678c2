//! [`ResponseBody`]: the body of every response the mesh returns — the
//! upstream's body as it streams, or one the mesh wrote itself.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::BoxError;

/// A response body: streamed from the upstream, or written by the mesh.
#[derive(Debug)]
pub struct ResponseBody(Kind);

#[derive(Debug)]
enum Kind {
    Upstream(hyper::body::Incoming),
    Full(Option<Bytes>),
}

impl ResponseBody {
    /// A body holding `bytes`.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self(Kind::Full((!bytes.is_empty()).then_some(bytes)))
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self(Kind::Full(None))
    }
}

/// Envoy's response flag of a response the mesh wrote itself (`NR` for no
/// route, `FI` for a fault abort, `RL` for a rate limit) or gave up
/// retrying (`URX`, the retries spent); a response extension, which the
/// metrics label `response_flags` with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseFlag(pub &'static str);

/// `res`, marked with Envoy's response flag `flag`.
pub(crate) fn flagged(
    mut res: http::Response<ResponseBody>,
    flag: &'static str,
) -> http::Response<ResponseBody> {
    res.extensions_mut().insert(ResponseFlag(flag));
    res
}

/// A response the mesh writes itself (no route, a fault abort, a rate
/// limit, a direct response), with a `text/plain` body when there is one.
pub(crate) fn local_response(
    status: http::StatusCode,
    body: impl Into<Bytes>,
) -> http::Response<ResponseBody> {
    let body = body.into();
    let mut res = http::Response::new(ResponseBody::full(body.clone()));
    *res.status_mut() = status;
    if !body.is_empty() {
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        );
    }
    res
}

/// Whether a request or response with `headers` is gRPC, by its content
/// type.
pub(crate) fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// A trailers-only gRPC response the mesh writes itself: the status and
/// message ride in the headers.
pub(crate) fn local_grpc_response(
    code: mesh_core::GrpcCode,
    message: &'static str,
) -> http::Response<ResponseBody> {
    let mut res = http::Response::new(ResponseBody::empty());
    let h = res.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    h.insert("grpc-status", http::HeaderValue::from(code.0));
    h.insert("grpc-message", http::HeaderValue::from_static(message));
    res
}

impl From<hyper::body::Incoming> for ResponseBody {
    fn from(body: hyper::body::Incoming) -> Self {
        Self(Kind::Upstream(body))
    }
}

impl Default for ResponseBody {
    fn default() -> Self {
        Self::empty()
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.0 {
            Kind::Upstream(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            Kind::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Kind::Upstream(b) => b.is_end_stream(),
            Kind::Full(b) => b.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Upstream(b) => b.size_hint(),
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}

/// The body of a request past the route layers: the caller's body, or,
/// for a mirrored request, the original teeing its frames to a copy that
/// other requests carry. Built by the [`mirror`](crate::mirror) layer.
#[derive(Debug)]
pub struct RequestBody<B>(Req<B>);

#[derive(Debug)]
enum Req<B> {
    Plain(B),
    Tee {
        body: B,
        copies: Vec<tokio::sync::mpsc::Sender<Copied>>,
    },
    Copy {
        rx: tokio::sync::mpsc::Receiver<Copied>,
        hint: SizeHint,
        done: bool,
    },
}

/// Sends the end marker to every copy and lets them go.
fn end_copies(copies: &mut Vec<tokio::sync::mpsc::Sender<Copied>>) {
    for tx in copies.drain(..) {
        let _ = tx.try_send(Copied::End);
    }
}

/// What the original sends its copy.
#[derive(Debug)]
enum Copied {
    Frame(Frame<Bytes>),
    End,
}

/// A mirrored copy of a request body could not be completed: the original
/// failed, was dropped, or outran the copy's buffer. Only the mirror sees it.
#[derive(Debug, thiserror::Error)]
#[error("the mirrored request body is incomplete")]
pub struct IncompleteCopy;

impl<B> RequestBody<B> {
    /// The caller's body as it is.
    pub fn new(body: B) -> Self {
        Self(Req::Plain(body))
    }
}

impl<B: Body<Data = Bytes>> RequestBody<B> {
    /// `body`, and `n` copies of it fed from its frames as they are read.
    /// Each copy buffers up to `frames` frames; one that falls further
    /// behind is cut off (and fails), so the original is never slowed.
    pub fn tee_many(body: B, n: usize, frames: usize) -> (Self, Vec<RequestBody<B>>) {
        let hint = body.size_hint();
        let (copies, receivers): (Vec<_>, Vec<_>) = (0..n)
            .map(|_| {
                // One more slot, for the end marker.
                let (tx, rx) = tokio::sync::mpsc::channel(frames.max(1) + 1);
                let copy = RequestBody(Req::Copy {
                    rx,
                    hint,
                    done: false,
                });
                (tx, copy)
            })
            .unzip();
        let mut copies = copies;
        if body.is_end_stream() {
            // An empty body may never be polled: end the copies now.
            end_copies(&mut copies);
            return (Self(Req::Plain(body)), receivers);
        }
        (Self(Req::Tee { body, copies }), receivers)
    }
}

impl<B> Body for RequestBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.0 {
            Req::Plain(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            Req::Tee { body, copies } => {
                let polled = std::task::ready!(Pin::new(&mut *body).poll_frame(cx));
                // A copy whose sender is dropped ends; it fails unless it
                // got the end marker.
                match &polled {
                    Some(Ok(frame)) => {
                        let copied = || match frame.data_ref() {
                            Some(data) => Some(Frame::data(data.clone())),
                            None => frame.trailers_ref().map(|t| Frame::trailers(t.clone())),
                        };
                        copies.retain(|tx| {
                            copied().is_some_and(|f| tx.try_send(Copied::Frame(f)).is_ok())
                        });
                    }
                    None => end_copies(copies),
                    Some(Err(_)) => copies.clear(),
                }
                // hyper stops polling a body that says it has ended: end
                // the copies now rather than on a poll that never comes.
                if body.is_end_stream() {
                    end_copies(copies);
                }
                Poll::Ready(polled.map(|r| r.map_err(Into::into)))
            }
            Req::Copy { rx, done, .. } => {
                if *done {
                    return Poll::Ready(None);
                }
                match std::task::ready!(rx.poll_recv(cx)) {
                    Some(Copied::Frame(f)) => Poll::Ready(Some(Ok(f))),
                    Some(Copied::End) => {
                        *done = true;
                        Poll::Ready(None)
                    }
                    None => {
                        *done = true;
                        Poll::Ready(Some(Err(IncompleteCopy.into())))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Req::Plain(b) | Req::Tee { body: b, .. } => b.is_end_stream(),
            Req::Copy { done, .. } => *done,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Req::Plain(b) | Req::Tee { body: b, .. } => b.size_hint(),
            Req::Copy { hint, .. } => *hint,
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    #[tokio::test]
    async fn a_tee_copies_every_frame_and_the_end() {
        let body = http_body_util::Full::new(Bytes::from("abc"));
        let (original, copies) = RequestBody::tee_many(body, 2, 4);
        assert_eq!(original.collect().await.unwrap().to_bytes(), "abc");
        for copy in copies {
            assert_eq!(copy.size_hint().exact(), Some(3));
            assert_eq!(copy.collect().await.unwrap().to_bytes(), "abc");
        }
    }

    #[tokio::test]
    async fn a_copy_that_falls_behind_fails_and_the_original_goes_on() {
        let frames = (0..10).map(|i| Ok::<_, BoxError>(Frame::data(Bytes::from(vec![i; 1]))));
        let body = StreamBody::new(futures_util::stream::iter(frames));
        let (original, mut copies) = RequestBody::tee_many(body, 1, 2);
        let copy = copies.remove(0);
        assert_eq!(original.collect().await.unwrap().to_bytes().len(), 10);
        let err = copy.collect().await.unwrap_err();
        assert!(err.is::<IncompleteCopy>(), "{err}");
    }

    /// Reads `body` as hyper sends one: frames until it says it has ended,
    /// then it is dropped without a final poll.
    async fn read_as_hyper_does<B: Body<Data = Bytes> + Unpin>(mut body: B) -> usize
    where
        B::Error: std::fmt::Debug,
    {
        let mut len = 0;
        while !body.is_end_stream() {
            match body.frame().await {
                Some(frame) => len += frame.unwrap().into_data().map_or(0, |d| d.len()),
                None => break,
            }
        }
        len
    }

    #[tokio::test]
    async fn copies_end_when_the_original_says_it_has_ended() {
        // A body that knows when it has ended, as hyper's senders ask.
        let body = http_body_util::Full::new(Bytes::from("abcdef"));
        let (original, copies) = RequestBody::tee_many(body, 1, 4);
        assert_eq!(read_as_hyper_does(original).await, 6);
        for copy in copies {
            assert_eq!(copy.collect().await.unwrap().to_bytes(), "abcdef");
        }
    }

    #[tokio::test]
    async fn an_empty_body_is_copied_without_being_read() {
        let body = http_body_util::Empty::<Bytes>::new();
        let (_original, mut copies) = RequestBody::tee_many(body, 1, 4);
        let copy = copies.remove(0);
        assert_eq!(copy.collect().await.unwrap().to_bytes(), "");
    }

    #[tokio::test]
    async fn a_dropped_original_fails_the_copy() {
        let body = http_body_util::Full::new(Bytes::from("abc"));
        let (original, mut copies) = RequestBody::tee_many(body, 1, 4);
        drop(original);
        assert!(copies.remove(0).collect().await.is_err());
    }
}
