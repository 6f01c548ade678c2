//! Real HTTP servers on 127.0.0.1:0 for the integration tests: each answers
//! with its own name, can add latency, and can be killed and brought back on
//! the same address.

#![allow(dead_code, unreachable_pub)]

pub mod bookinfo;
pub mod envoy;
pub mod pki;
pub mod python;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use mesh_core::{Endpoint, EndpointSet, StaticResolve};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// The workload `APP-VERSION` of namespace `default` (instance
/// `APP-VERSION-0`, labels `app` and `version`, cluster `Kubernetes`), as
/// Istio's metadata names it.
pub fn workload(app: &str, version: &str) -> mesh_core::telemetry::WorkloadMetadata {
    let labels = [("app", app), ("version", version)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    mesh_core::telemetry::WorkloadMetadata {
        cluster_id: Some("Kubernetes".into()),
        ..mesh_core::telemetry::WorkloadMetadata::from_labels(
            &format!("{app}-{version}-0"),
            "default",
            &format!("{app}-{version}"),
            &labels,
        )
    }
}

/// A test server. Dropping it kills it.
pub struct Server {
    pub addr: SocketAddr,
    pub name: String,
    pub hits: Arc<AtomicUsize>,
    /// The `host` header of every request received.
    pub hosts: Arc<std::sync::Mutex<Vec<String>>>,
    delay: Duration,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a server answering `name` after `delay`, on a fresh port.
    pub async fn start(name: &str, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut s = Self {
            addr: listener.local_addr().unwrap(),
            name: name.to_owned(),
            hits: Arc::default(),
            hosts: Arc::default(),
            delay,
            task: None,
        };
        s.serve(listener);
        s
    }

    fn serve(&mut self, listener: TcpListener) {
        let (name, hits, delay) = (self.name.clone(), self.hits.clone(), self.delay);
        let hosts = self.hosts.clone();
        self.task = Some(tokio::spawn(async move {
            // Dropping the set when the task is aborted closes every connection.
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (name, hits, hosts) = (name.clone(), hits.clone(), hosts.clone());
                let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    let (name, hits) = (name.clone(), hits.clone());
                    let host = req.headers().get("host").cloned();
                    if let Some(h) = host.as_ref().and_then(|h| h.to_str().ok()) {
                        hosts.lock().unwrap().push(h.to_owned());
                    }
                    async move {
                        hits.fetch_add(1, Ordering::SeqCst);
                        let path = req.uri().path().to_owned();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        if !delay.is_zero() {
                            tokio::time::sleep(delay).await;
                        }
                        let mut res = hyper::Response::new(Full::new(Bytes::from(format!(
                            "{name}:{}",
                            body.len()
                        ))));
                        res.headers_mut().insert("x-server", name.parse().unwrap());
                        res.headers_mut().insert("x-path", path.parse().unwrap());
                        if let Some(host) = host {
                            res.headers_mut().insert("x-host", host);
                        }
                        Ok::<_, Infallible>(res)
                    }
                });
                conns.spawn(async move {
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        }));
    }

    /// Kills the server and every open connection.
    pub async fn kill(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    /// Brings a killed server back on the same address.
    pub async fn restart(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint::new(self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// A static resolver with `target` pointing at `servers`.
pub fn resolve(target: &str, servers: &[&Server]) -> StaticResolve {
    let r = StaticResolve::default();
    r.set(
        &target.parse().unwrap(),
        EndpointSet::new(servers.iter().map(|s| s.endpoint())),
    );
    r
}

/// An error and its sources, on one line.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Answers `hello CALLER`, the caller being the request's SPIFFE id (its
/// mutual TLS client identity) or `anonymous`.
pub async fn hello<B>(req: http::Request<B>) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let caller = req
        .extensions()
        .get::<mesh_tower::tls::ClientIdentity>()
        .map_or("anonymous".into(), |c| c.0.to_string());
    Ok(http::Response::new(Full::new(Bytes::from(format!(
        "hello {caller}"
    )))))
}

/// `mesh_xds`'s ADS server on a free port of 127.0.0.1 serving `cache`,
/// until the test's runtime ends; its address.
pub async fn serve_ads(cache: &mesh_xds::server::ResourceCache) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(mesh_xds::server::AdsServer::new(cache.clone()).into_service())
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    addr
}

/// Serves [`hello`] with `server` on a free port of 127.0.0.1, until the
/// test's runtime ends; its address.
pub async fn serve_hello(server: &mesh_tower::MeshServer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = server.clone();
    tokio::spawn(async move { server.serve(listener, tower::service_fn(hello)).await });
    addr
}

/// A configuration of `hosts` with every cluster their routes name, each
/// read off its Istio name (`outbound|PORT|SUBSET|HOST`): the service
/// `HOST:PORT`, and for a subset the `version` label named after it.
pub fn config(hosts: Vec<mesh_core::route::VirtualHost>) -> mesh_core::MeshConfig {
    let table = mesh_core::RouteTable::new(hosts).unwrap();
    let clusters: Vec<mesh_core::Cluster> = table
        .clusters()
        .map(|name| {
            let parts: Vec<&str> = name.as_str().split('|').collect();
            let mut subset = std::collections::BTreeMap::new();
            if !parts[2].is_empty() {
                subset.insert("version".to_string(), parts[2].to_string());
            }
            mesh_core::Cluster {
                name: name.clone(),
                discovery: mesh_core::Discovery::Service {
                    host: parts[3].into(),
                    port: parts[1].parse().ok(),
                },
                subset,
                policy: Default::default(),
                port_policies: Default::default(),
            }
        })
        .collect();
    mesh_core::MeshConfig::new(table, clusters).unwrap()
}
