//! A service run on its own (`cargo run -p bookinfo --bin reviews --
//! --version v2`): in the mesh its environment describes
//! ([`Mesh::from_env`]: the xDS bootstrap `GRPC_XDS_BOOTSTRAP` names, as
//! Istio's agent writes it, else DNS discovery), serving until Ctrl-C.

use std::net::SocketAddr;

use mesh_core::security::MtlsMode;
use mesh_tower::{Mesh, MeshServer};
use tokio::net::TcpListener;

/// Why a service cannot run.
#[derive(Debug, thiserror::Error)]
pub enum AloneError {
    /// Its port cannot be listened on.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// The mesh cannot be set up.
    #[error(transparent)]
    Mesh(#[from] mesh_tower::MeshError),
    /// The server cannot be built.
    #[error(transparent)]
    Server(#[from] mesh_tower::server::ServerError),
}

/// The mesh of the environment, and its server: with a control plane,
/// the policy it sends (mutual TLS, authorization); without one, plain
/// text.
pub fn mesh() -> Result<(Mesh, MeshServer), AloneError> {
    let mesh = Mesh::from_env()?;
    let server = if mesh.ads().is_some() {
        mesh.server().build()?
    } else {
        mesh.server().mtls(MtlsMode::Disable).build()?
    };
    Ok((mesh, server))
}

/// `addr`, bound.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, AloneError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| AloneError::Bind(addr, e))
}

/// Completes on Ctrl-C (or at once, if it cannot be waited for).
pub async fn ctrl_c() {
    let _ = tokio::signal::ctrl_c().await;
}

/// Writes `NAME ADDRESS` on standard output: where the service listens,
/// for whoever started it on port 0.
pub fn announce(name: &str, listener: &TcpListener) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{name} {}", listener.local_addr()?)?;
    out.flush()
}
