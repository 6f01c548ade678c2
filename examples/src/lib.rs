//! Shared pieces of the examples: small demo services on loopback, so every
//! example runs on its own with one command.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::health_server::HealthServer;

/// Starts an HTTP server on `127.0.0.1:0` that answers every request with
/// `hello from NAME`, and returns its address.
pub async fn hello_server(name: &'static str) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let svc = hyper::service::service_fn(move |_req| async move {
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(format!(
                    "hello from {name}"
                )))))
            });
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// Starts a gRPC server on `127.0.0.1:0` serving the standard health service,
/// with `service` reported as serving, and returns its address.
pub async fn health_server(service: &'static str) -> std::io::Result<SocketAddr> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(service, tonic_health::ServingStatus::Serving)
        .await;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _reporter = reporter;
        tonic::transport::Server::builder()
            .add_service::<HealthServer<_>>(health)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
    });
    Ok(addr)
}
