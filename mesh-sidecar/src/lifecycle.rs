//! The sidecar's life: its listeners bound with an error that says which
//! one could not be, and the signals and admin requests that stop it
//! ([`Lifecycle`]).

use std::net::SocketAddr;

use mesh_tower::admin::Lifecycle;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A listener that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} for the {what}: {source}")]
pub struct BindError {
    /// Which listener.
    pub what: &'static str,
    /// Where.
    pub addr: SocketAddr,
    /// Why (the address is taken, say).
    pub source: std::io::Error,
}

/// `addr` bound for the listener `what`.
pub async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { what, addr, source })
}

/// Moves `lifecycle` to quitting on SIGTERM or SIGINT, from a task of
/// its own.
pub fn on_signals(lifecycle: watch::Sender<Lifecycle>) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                tracing::warn!("signals cannot be listened for; use POST /quitquitquit");
                return;
            };
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: draining"),
                _ = int.recv() => tracing::info!("SIGINT: draining"),
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        Lifecycle::advance(&lifecycle, Lifecycle::Quitting);
    });
}

/// Completes once `lifecycle` has reached `at`.
pub async fn reached(mut lifecycle: watch::Receiver<Lifecycle>, at: Lifecycle) {
    if lifecycle.wait_for(|now| *now >= at).await.is_err() {
        // The sender is gone: nothing will move it on.
        std::future::pending::<()>().await;
    }
}

/// Writes where each listener is, one `NAME ADDRESS` line each.
pub fn announce(listeners: &[(&str, &TcpListener)]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for (name, listener) in listeners {
        writeln!(out, "{name} {}", listener.local_addr()?)?;
    }
    out.flush()
}
