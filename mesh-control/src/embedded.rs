//! A control plane inside another program: a directory of Istio YAML
//! served over ADS on a free port of 127.0.0.1, followed on change, for
//! as long as the program's runtime runs. `mesh-sidecar --config` and
//! `mesh-bench` serve their directories so.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use mesh_xds::server::AdsServer;

use crate::ControlPlane;

/// Why a directory is not served.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// The directory does not load; its errors were logged.
    #[error("the configuration in {0} does not load (its errors are logged above)")]
    Config(PathBuf),
    /// No port could be listened on.
    #[error("the embedded control plane cannot listen on 127.0.0.1: {0}")]
    Listen(std::io::Error),
}

/// Serves `dir` (its names completed with `cluster_domain`) over ADS on
/// a free port of 127.0.0.1, following its edits, until the runtime
/// ends; its address.
pub async fn serve_dir(dir: &Path, cluster_domain: &str) -> Result<SocketAddr, EmbeddedError> {
    let plane = ControlPlane::new(cluster_domain);
    if !crate::watch::load_into(&plane, dir).await {
        return Err(EmbeddedError::Config(dir.to_owned()));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(EmbeddedError::Listen)?;
    let addr = listener.local_addr().map_err(EmbeddedError::Listen)?;
    tokio::spawn(crate::watch::watch(plane.clone(), dir.to_owned()));
    let serving = tonic::transport::Server::builder()
        .add_service(AdsServer::new(plane).into_service())
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
    tokio::spawn(async move {
        if let Err(error) = serving.await {
            tracing::error!(%error, %addr, "the embedded control plane stopped");
        }
    });
    Ok(addr)
}
