//! What the bookinfo tests share: services on free ports of 127.0.0.1,
//! a plain HTTP client, and services that remember what they were sent.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bookinfo::ratings::RatingsClient;
use bookinfo::reviews::{Reviews, Version};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

/// Serves `service` on a free port of 127.0.0.1.
pub async fn serve<S, B>(service: S) -> SocketAddr
where
    S: tower::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(bookinfo::http::serve_plain(listener, service));
    addr
}

/// `GET path` on `addr` with `headers`: the status and body.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let (status, _, body) = send(addr, http::Method::GET, path, headers, "").await;
    (status, body)
}

/// `METHOD path` on `addr` with `headers` and `body`: the status,
/// headers and body.
pub async fn send(
    addr: SocketAddr,
    method: http::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, http::HeaderMap, String) {
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let res = client.request(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status.as_u16(),
        parts.headers,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

pub fn channel(addr: SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy()
}

/// What ratings was sent, by header name.
pub type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// `service` on a free port, remembering the headers of each call.
pub async fn recording<S, B>(service: S) -> (SocketAddr, Seen)
where
    S: tower::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let seen = Seen::default();
    let record = seen.clone();
    let service = tower::ServiceBuilder::new()
        .map_request(move |req: http::Request<hyper::body::Incoming>| {
            let mut seen = record.lock().unwrap();
            for (k, v) in req.headers() {
                seen.push((k.to_string(), v.to_str().unwrap_or("").to_owned()));
            }
            req
        })
        .service(service);
    (serve(service).await, seen)
}

pub fn reviews(version: Version, ratings: SocketAddr) -> Reviews<tonic::transport::Channel> {
    Reviews::new(
        version,
        "reviews-v1-0",
        "null",
        RatingsClient::new(channel(ratings)),
    )
}
