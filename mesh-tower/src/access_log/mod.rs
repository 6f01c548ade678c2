//! Access logs: one line per request, with Envoy's default fields (start
//! time, method, path, protocol, code, flags, bytes in and out, duration,
//! upstream host and cluster, request id, peer identity), as text in
//! Envoy's default format or as JSON, to stderr or a file.
//!
//! Lines are written off the request's path: each goes into a bounded
//! queue ([`AccessLog::with_capacity`], [`DEFAULT_CAPACITY`] by default)
//! that a thread of the log's own drains, so a slow disk stalls no
//! runtime worker; when the queue is full the line is dropped and counted
//! ([`AccessLog::dropped`]), and the request never waits. Requests are
//! logged by [`IstioMetricsLayer::access_log`](crate::metrics::IstioMetricsLayer::access_log)
//! when their response ends.

mod entry;

use std::io::Write;

use tokio::sync::mpsc;

use crate::lossy::{Losses, Lossy};

pub use entry::Entry;

/// How many lines may wait to be written unless told otherwise.
pub const DEFAULT_CAPACITY: usize = 4096;

/// How each line is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Envoy's default text format.
    Text,
    /// One JSON object per line, Envoy's field names as keys.
    Json,
}

/// Where lines go; clones share the queue and the count of lost lines.
#[derive(Clone, Debug)]
pub struct AccessLog {
    queue: Lossy<Entry>,
}

impl AccessLog {
    /// Lines in `format` written to `out` by a thread of their own,
    /// [`DEFAULT_CAPACITY`] waiting at most.
    pub fn new(format: Format, out: impl Write + Send + 'static) -> Self {
        Self::with_capacity(format, out, DEFAULT_CAPACITY)
    }

    /// Lines to stderr.
    pub fn stderr(format: Format) -> Self {
        Self::new(format, std::io::stderr())
    }

    /// As [`new`](Self::new), at most `capacity` lines waiting.
    pub fn with_capacity(
        format: Format,
        out: impl Write + Send + 'static,
        capacity: usize,
    ) -> Self {
        let (queue, rx, losses) = Lossy::channel(capacity);
        let writer = std::thread::Builder::new()
            .name("mesh-access-log".into())
            .spawn(move || drain(rx, format, out, losses));
        if let Err(error) = writer {
            // The queue's far end is gone: every line is counted lost.
            tracing::warn!(%error, "no thread for the access log; its lines are lost");
        }
        Self { queue }
    }

    /// Queues `entry`'s line; drops and counts it when the queue is full.
    pub fn log(&self, entry: Entry) {
        self.queue.send(entry);
    }

    /// How many lines were lost: dropped for want of room, or not
    /// written because writing failed.
    pub fn dropped(&self) -> u64 {
        self.queue.lost()
    }
}

/// Writes each queued line, in batches as they come. A batch that cannot
/// be written is counted as lost (a log is not worth failing
/// requests for), and a warning says so when writing starts failing.
fn drain(
    mut rx: mpsc::Receiver<Entry>,
    format: Format,
    mut out: impl Write + Send,
    mut losses: Losses,
) {
    let mut batch = Vec::new();
    let mut text = String::new();
    while rx.blocking_recv_many(&mut batch, 256) > 0 {
        text.clear();
        let lines = batch.len();
        for entry in batch.drain(..) {
            entry.write(format, &mut text);
        }
        let written = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        if let Some(error) = losses.outcome(lines, written) {
            tracing::warn!(%error, lines, "access log lines not written");
        }
    }
}

#[cfg(test)]
mod tests;
