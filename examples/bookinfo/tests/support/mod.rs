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

/// The stars a page shows, as `(count, colour)` per review.
pub fn stars(page: &str) -> Vec<(u32, String)> {
    page.match_indices("data-stars=\"")
        .map(|(i, m)| {
            let rest = &page[i + m.len()..];
            let count = rest[..rest.find('"').unwrap()].parse().unwrap();
            let color = rest.split("data-color=\"").nth(1).unwrap();
            (count, color[..color.find('"').unwrap()].to_owned())
        })
        .collect()
}

/// The pod a page's reviews were served by.
pub fn served_by(page: &str) -> Option<String> {
    let at = page.find("Reviews served by: <span>")? + "Reviews served by: <span>".len();
    Some(page[at..at + page[at..].find('<')?].to_owned())
}

/// bookinfo started with `scenario` (one of `scenarios/`), every
/// workload ready; its state directory goes with the first.
pub async fn launch(scenario: Option<&str>) -> (tempfile::TempDir, bookinfo::launch::Running) {
    launch_with(scenario, true).await
}

/// As [`launch`], with mutual TLS or without.
pub async fn launch_with(
    scenario: Option<&str>,
    mtls: bool,
) -> (tempfile::TempDir, bookinfo::launch::Running) {
    let state = tempfile::tempdir().unwrap();
    let options = bookinfo::launch::Options {
        port: 0,
        config: bookinfo::launch::CONFIG.into(),
        scenario: scenario.map(|s| bookinfo::launch::scenario(s).unwrap()),
        mtls,
        state: state.path().to_owned(),
    };
    let running = bookinfo::launch::start(&options).await.unwrap();
    for w in &running.workloads {
        let ready = bookinfo::launch::Running::ready(w, std::time::Duration::from_secs(20)).await;
        assert!(ready, "{} never ready", w.name);
    }
    (state, running)
}

/// Signs `user` in through `gateway`: the session cookie.
pub async fn sign_in(gateway: SocketAddr, user: &str) -> String {
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let body = format!("username={user}&passwd=x");
    let (status, headers, _) = send(gateway, http::Method::POST, "/login", &form, &body).await;
    assert_eq!(status, 302);
    let cookie = headers["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

/// The product page through `gateway`, signed in with `cookie` if given.
pub async fn page(gateway: SocketAddr, cookie: Option<&str>) -> String {
    let headers: Vec<(&str, &str)> = cookie.map(|c| ("cookie", c)).into_iter().collect();
    let (status, page) = get(gateway, "/productpage", &headers).await;
    assert_eq!(status, 200, "{page}");
    page
}
