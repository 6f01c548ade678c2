//! The servers at the end of every scenario: bare hyper-util (HTTP/1.1
//! and h2c told apart per connection) and the mesh's `MeshServer`, each
//! answering a request with a body as large as the one it was sent.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use mesh_tower::MeshServer;
use tokio::net::TcpListener;

/// Answers with as many bytes as the request's body had.
async fn answer<B>(req: http::Request<B>) -> Result<http::Response<Full<Bytes>>, Infallible>
where
    B: http_body::Body,
{
    let size = match req.into_body().collect().await {
        Ok(body) => body.to_bytes().len(),
        Err(_) => 0,
    };
    Ok(http::Response::new(Full::new(Bytes::from(vec![
        b'y';
        size
    ]))))
}

/// A listener on a free port of 127.0.0.1, and its address.
pub async fn loopback() -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// The bare server on a free port, until the runtime ends; its address.
pub async fn bare() -> std::io::Result<SocketAddr> {
    let (listener, addr) = loopback().await?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(answer);
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// `server` on a free port, until the runtime ends; its address.
pub async fn mesh(server: MeshServer) -> std::io::Result<SocketAddr> {
    let (listener, addr) = loopback().await?;
    tokio::spawn(async move { server.serve(listener, tower::service_fn(answer)).await });
    Ok(addr)
}
