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
