//! [`ServerStats`]: what a [`MeshServer`](super::MeshServer) accepted and
//! refused at the connection level, as counters.

use std::sync::atomic::{AtomicU64, Ordering};

/// Connection counters of one server.
#[derive(Debug, Default)]
pub struct ServerStats {
    connections: AtomicU64,
    mtls_connections: AtomicU64,
    handshake_failures: AtomicU64,
    plaintext_refused: AtomicU64,
    not_serving_refused: AtomicU64,
}

impl ServerStats {
    /// Connections accepted, in any mode.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Connections that completed a mutual TLS handshake.
    pub fn mtls_connections(&self) -> u64 {
        self.mtls_connections.load(Ordering::Relaxed)
    }

    /// TLS handshakes refused or failed: no client certificate, one from
    /// another root or without a SPIFFE id, no identity to present, a
    /// handshake not finished in time.
    pub fn handshake_failures(&self) -> u64 {
        self.handshake_failures.load(Ordering::Relaxed)
    }

    /// Plain-text connections to a `STRICT` port, closed unanswered.
    pub fn plaintext_refused(&self) -> u64 {
        self.plaintext_refused.load(Ordering::Relaxed)
    }

    /// Connections closed as they were accepted because the server was
    /// not serving.
    pub fn not_serving_refused(&self) -> u64 {
        self.not_serving_refused.load(Ordering::Relaxed)
    }

    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn connection(&self) {
        Self::count(&self.connections);
    }

    pub(super) fn mtls(&self) {
        Self::count(&self.mtls_connections);
    }

    pub(super) fn handshake_failed(&self) {
        Self::count(&self.handshake_failures);
    }

    pub(super) fn plaintext(&self) {
        Self::count(&self.plaintext_refused);
    }

    pub(super) fn not_serving(&self) {
        Self::count(&self.not_serving_refused);
    }
}
