//! The clients a scenario's load goes through: bare hyper-util (pooled,
//! HTTP/1.1 or h2c, to the request's host or always to one address) and
//! any tower service, the mesh's `MeshClient` among them.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use tower::ServiceExt;

use crate::load::Send;

/// The HTTP version the load is sent in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// HTTP/1.1 with keep-alive.
    #[default]
    Http1,
    /// HTTP/2 over plain text, with prior knowledge.
    H2c,
}

impl Protocol {
    /// The mesh's name for it.
    pub fn mesh(self) -> mesh_core::policy::Protocol {
        match self {
            Protocol::Http1 => mesh_core::policy::Protocol::Http1,
            Protocol::H2c => mesh_core::policy::Protocol::Http2,
        }
    }
}

/// A bare hyper-util client speaking `protocol`, connecting to `via`
/// whatever the request's host (a proxy's listener), or to the host.
pub fn hyper(protocol: Protocol, via: Option<SocketAddr>) -> Send {
    let mut builder = Client::builder(TokioExecutor::new());
    builder.pool_max_idle_per_host(usize::MAX);
    if protocol == Protocol::H2c {
        builder.http2_only(true);
    }
    match via {
        None => {
            let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
            connector.set_nodelay(true);
            sender(builder.build(connector))
        }
        Some(addr) => {
            let connector = tower::service_fn(move |_: http::Uri| {
                Box::pin(async move {
                    let stream = tokio::net::TcpStream::connect(addr).await?;
                    stream.set_nodelay(true)?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                })
            });
            sender(builder.build(connector))
        }
    }
}

fn sender<C>(client: Client<C, Full<Bytes>>) -> Send
where
    C: hyper_util::client::legacy::connect::Connect + Clone + std::marker::Send + Sync + 'static,
{
    Arc::new(move |req| {
        let client = client.clone();
        Box::pin(async move {
            let res = client.request(req).await.map_err(|e| chain(&e))?;
            let status = res.status().as_u16();
            res.into_body().collect().await.map_err(|e| chain(&e))?;
            Ok(status)
        })
    })
}

/// `client`: the mesh's, or any tower service of HTTP.
pub fn service<S, B>(client: S) -> Send
where
    S: tower::Service<http::Request<Full<Bytes>>, Response = http::Response<B>>
        + Clone
        + std::marker::Send
        + Sync
        + 'static,
    S::Future: std::marker::Send,
    S::Error: Into<mesh_tower::BoxError>,
    B: http_body::Body + std::marker::Send,
    B::Data: std::marker::Send,
    B::Error: Into<mesh_tower::BoxError>,
{
    Arc::new(move |req| {
        let client = client.clone();
        Box::pin(async move {
            let res = client.oneshot(req).await.map_err(|e| chain(&*e.into()))?;
            let status = res.status().as_u16();
            res.into_body()
                .collect()
                .await
                .map_err(|e| chain(&*e.into()))?;
            Ok(status)
        })
    })
}

/// `e` and its sources, as one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
