//! Access logs: one line per request, with Envoy's default fields (start
//! time, method, path, protocol, code, flags, bytes in and out, duration,
//! upstream host and cluster, request id, peer identity), as text in
//! Envoy's default format or as JSON, to stderr or a file.
//!
//! Lines are written off the request's path: each goes into a bounded
//! queue ([`AccessLog::with_capacity`], [`DEFAULT_CAPACITY`] by default)
//! that a task drains; when it is full the line is dropped and counted
//! ([`AccessLog::dropped`]), and the request never waits. Requests are
//! logged by [`IstioMetricsLayer::access_log`](crate::metrics::IstioMetricsLayer::access_log)
//! when their response ends.

mod entry;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

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

/// Where lines go; clones share the queue and the count of dropped lines.
#[derive(Clone, Debug)]
pub struct AccessLog {
    tx: mpsc::Sender<Entry>,
    dropped: Arc<AtomicU64>,
}

impl AccessLog {
    /// Lines in `format` written to `out` by a task of the current Tokio
    /// runtime, [`DEFAULT_CAPACITY`] waiting at most.
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
        let (tx, rx) = mpsc::channel(capacity.max(1));
        tokio::spawn(drain(rx, format, out));
        Self {
            tx,
            dropped: Arc::default(),
        }
    }

    /// Queues `entry`'s line; drops and counts it when the queue is full.
    pub fn log(&self, entry: Entry) {
        if self.tx.try_send(entry).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many lines were dropped for want of room.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Writes each queued line, in batches as they come.
async fn drain(mut rx: mpsc::Receiver<Entry>, format: Format, mut out: impl Write + Send) {
    let mut batch = Vec::new();
    let mut text = String::new();
    while rx.recv_many(&mut batch, 256).await > 0 {
        text.clear();
        for entry in batch.drain(..) {
            entry.write(format, &mut text);
        }
        // A log that cannot be written is not worth failing requests for.
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }
}

#[cfg(test)]
mod tests;
