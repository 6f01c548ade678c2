//! Finished spans on their way to an exporter: a sampled span's
//! [`SpanRecord`] goes into a [`SpanSink`], a bounded queue an exporter
//! task drains ([`OtlpExporter`](super::OtlpExporter), feature `otlp`);
//! when the queue is full the span is dropped and counted, and the request
//! never waits.

use std::time::SystemTime;

use mesh_core::trace::{SpanContext, SpanId};
use tokio::sync::mpsc;

use crate::lossy::{Losses, Lossy};

/// Which side of a request a span is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    /// A request taken.
    Server,
    /// A request sent.
    Client,
}

/// A finished span.
#[derive(Clone, Debug)]
pub struct SpanRecord {
    /// The span, in its trace.
    pub context: SpanContext,
    /// Its parent, if it has one.
    pub parent: Option<SpanId>,
    /// Server or client.
    pub kind: SpanKind,
    /// Its name: the request's authority and path, as Envoy names its
    /// spans.
    pub name: String,
    /// When the request began.
    pub start: SystemTime,
    /// When its response came.
    pub end: SystemTime,
    /// Envoy's and OpenTelemetry's attributes: `http.request.method`,
    /// `url.path`, `http.response.status_code`, `upstream_cluster`,
    /// `upstream_host`, `response_flags`, `peer.id`, `guid:x-request-id`,
    /// `rpc.system`.
    pub attributes: Vec<(&'static str, String)>,
    /// Whether it failed (no response, or a 5xx).
    pub error: bool,
}

/// Where finished spans go; clones share the queue and the count of spans
/// lost.
#[derive(Clone, Debug)]
pub struct SpanSink {
    queue: Lossy<SpanRecord>,
}

impl SpanSink {
    /// A sink, and the queue's far end an exporter drains; at most
    /// `capacity` spans wait.
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<SpanRecord>) {
        let (sink, rx, _) = Self::counted(capacity);
        (sink, rx)
    }

    /// As [`channel`](Self::channel), with the count an exporter adds the
    /// spans it fails to send to.
    pub(crate) fn counted(capacity: usize) -> (Self, mpsc::Receiver<SpanRecord>, Losses) {
        let (queue, rx, losses) = Lossy::channel(capacity);
        (Self { queue }, rx, losses)
    }

    /// Queues `span`; drops and counts it when the queue is full.
    pub fn send(&self, span: SpanRecord) {
        self.queue.send(span);
    }

    /// How many spans were lost: dropped for want of room, or not
    /// exported (the collector refused them or could not be reached).
    pub fn dropped(&self) -> u64 {
        self.queue.lost()
    }
}
