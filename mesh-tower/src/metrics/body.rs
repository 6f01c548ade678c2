//! [`MeasuredBody`]: a response body that records its request's metrics
//! when it ends — its last frame, or its drop for one cut short — with the
//! bytes it and its request carried, the time since the request began
//! and, for gRPC, the messages each way and the status its trailers give.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http_body::{Body, Frame, SizeHint};
use pin_project::{pin_project, pinned_drop};

use super::grpc::Tally;
use super::layer::Edge;
use super::request::Carried;
use super::{GrpcStatus, Recorded};
use crate::access_log::{AccessLog, Entry};

/// What is recorded once the body ends.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) edge: Edge,
    pub(super) start: Instant,
    /// The request's head.
    pub(super) request_bytes: u64,
    /// What its body carried, if it had one.
    pub(super) request_body: Option<Arc<Carried>>,
    /// The response's head and what its body carried, counted as it goes.
    pub(super) response: Tally,
    /// The access log, and the request's line so far.
    pub(super) log: Option<(AccessLog, Box<Entry>)>,
}

impl Pending {
    /// Records the request now.
    pub(super) fn record(self) {
        let (body_bytes, request_messages) = self
            .request_body
            .as_ref()
            .map_or((0, 0), |carried| carried.so_far());
        let recorded = Recorded {
            duration: self.start.elapsed(),
            request_bytes: self.request_bytes + body_bytes,
            response_bytes: self.response.bytes,
            request_messages: self.edge.grpc.then_some(request_messages),
            response_messages: self.response.messages(),
        };
        self.edge
            .metrics()
            .record_ref(&self.edge.labels(), recorded);
        if let Some((log, mut entry)) = self.log {
            entry.response_code = self.edge.response_code;
            entry.response_flags = self.edge.response_flags;
            entry.bytes_received = recorded.request_bytes;
            entry.bytes_sent = recorded.response_bytes;
            entry.duration = recorded.duration;
            log.log(*entry);
        }
    }
}

/// A response body whose request is recorded when it ends.
#[pin_project(PinnedDrop)]
#[derive(Debug)]
pub struct MeasuredBody<B> {
    #[pin]
    inner: B,
    pending: Option<Pending>,
    /// Whether all of it was read (or there is nothing to read).
    ended: bool,
}

impl<B: Body> MeasuredBody<B> {
    pub(super) fn new(inner: B, pending: Option<Pending>) -> Self {
        let ended = inner.is_end_stream();
        Self {
            inner,
            pending,
            ended,
        }
    }
}

impl<B: Body> Body for MeasuredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        if let Some(pending) = this.pending.as_mut() {
            match &frame {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        pending.response.feed(data);
                    }
                    if let Some(trailers) = frame.trailers_ref()
                        && let Some(status) = super::layer::grpc_status(trailers)
                    {
                        pending.edge.grpc_response_status = GrpcStatus(Some(status));
                    }
                }
                Some(Err(_)) => pending.edge.response_flags = "UPE",
                None => {}
            }
        }
        *this.ended = frame.is_none() || this.inner.is_end_stream();
        if (*this.ended || matches!(frame, Some(Err(_))))
            && let Some(pending) = this.pending.take()
        {
            pending.record();
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

#[pinned_drop]
impl<B> PinnedDrop for MeasuredBody<B> {
    fn drop(self: Pin<&mut Self>) {
        let this = self.project();
        if let Some(mut pending) = this.pending.take() {
            // Dropped before its end: the peer went away mid-response.
            if !*this.ended {
                pending.edge.response_flags = "DC";
            }
            pending.record();
        }
    }
}
