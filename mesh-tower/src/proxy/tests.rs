//! The proxy's two sides behind a real `MeshServer`, against a real
//! application server on loopback.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_core::security::MtlsMode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::{Service, ServiceExt};

use super::*;
use crate::server::Body;
use crate::{BoxError, MeshServer};

/// An application that answers with what it was sent (version, host,
/// the headers a proxy changes), and switches to echoing bytes on
/// `Upgrade: echo`.
async fn app() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = hyper::service::service_fn(
                |mut req: http::Request<hyper::body::Incoming>| async move {
                    if req
                        .headers()
                        .get(http::header::UPGRADE)
                        .is_some_and(|u| u == "echo")
                    {
                        let upgraded = hyper::upgrade::on(&mut req);
                        tokio::spawn(async move {
                            let mut io = TokioIo::new(upgraded.await.unwrap());
                            let mut buf = [0u8; 64];
                            while let Ok(n @ 1..) = io.read(&mut buf).await {
                                io.write_all(&buf[..n]).await.unwrap();
                            }
                        });
                        let res = http::Response::builder()
                            .status(101)
                            .header("connection", "upgrade")
                            .header("upgrade", "echo")
                            .body(Full::<Bytes>::default())
                            .unwrap();
                        return Ok::<_, Infallible>(res);
                    }
                    let h = req.headers();
                    let get =
                        |name: &str| h.get(name).map_or("-", |v| v.to_str().unwrap()).to_owned();
                    let text = format!(
                        "{:?} {} host={} keep-alive={} x-hop={} xfcc={} te={}",
                        req.version(),
                        req.uri(),
                        get("host"),
                        get("keep-alive"),
                        get("x-hop"),
                        get("x-forwarded-client-cert"),
                        get("te"),
                    );
                    Ok(http::Response::builder()
                        .header("connection", "x-drop")
                        .header("x-drop", "1")
                        .body(Full::new(Bytes::from(text)))
                        .unwrap())
                },
            );
            tokio::spawn(async move {
                let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = http
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// `service` behind a plain-text `MeshServer` on loopback.
async fn serve<S>(service: S) -> SocketAddr
where
    S: tower::Service<
            http::Request<Body>,
            Response = http::Response<crate::ResponseBody>,
            Error = BoxError,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = MeshServer::builder()
        .mtls(MtlsMode::Disable)
        .build()
        .unwrap();
    tokio::spawn(async move { server.serve(listener, service).await });
    addr
}

/// Writes `head` on a new connection to `addr` and reads until the
/// response head and `body_len` bytes of body have come.
async fn exchange(addr: SocketAddr, head: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                return (stream, text.into_owned());
            }
        }
    }
}

#[tokio::test]
async fn inbound_forwards_http1_with_the_host_kept_and_hop_by_hop_headers_dropped() {
    let app = app().await;
    let sidecar = serve(Inbound::<Body>::new(
        app,
        Some("spiffe://cluster.local/ns/default/sa/me"),
    ))
    .await;
    let (_, res) = exchange(
        sidecar,
        "GET /reviews/0?x=1 HTTP/1.1\r\nhost: reviews:9080\r\nconnection: keep-alive, x-hop\r\n\
         keep-alive: timeout=5\r\nx-hop: 1\r\nte: gzip\r\nx-forwarded-client-cert: URI=spiffe://forged\r\n\r\n",
    )
    .await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert!(
        res.ends_with("HTTP/1.1 /reviews/0?x=1 host=reviews:9080 keep-alive=- x-hop=- xfcc=- te=-"),
        "{res}"
    );
    let lower = res.to_ascii_lowercase();
    assert!(
        !lower.contains("x-drop"),
        "the app's hop-by-hop header passed: {res}"
    );
}

#[tokio::test]
async fn inbound_forwards_http2_as_h2c_and_keeps_te_trailers() {
    let app = app().await;
    let sidecar = serve(Inbound::<Body>::new(app, None)).await;
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    // The client dials the sidecar; the authority says whom for.
    let req = http::Request::get(format!("http://{sidecar}/ratings/0"))
        .header("host", "ratings:9080")
        .header("te", "trailers")
        .body(Full::default())
        .unwrap();
    let res = client.request(req).await.unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body);
    assert!(body.starts_with("HTTP/2.0 http://"), "{body}");
    assert!(body.ends_with("te=trailers"), "{body}");
}

#[tokio::test]
async fn inbound_answers_an_unreachable_app_as_envoy_does() {
    let gone = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let mut inbound = Inbound::<Full<Bytes>>::new(gone, None);
    let req = http::Request::get("http://reviews:9080/")
        .body(Full::default())
        .unwrap();
    let res = inbound.ready().await.unwrap().call(req).await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(
        res.extensions().get::<ResponseFlag>(),
        Some(&ResponseFlag("UF"))
    );
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(
        body.ends_with(b"reset reason: connection failure"),
        "{body:?}"
    );

    let req = http::Request::post("http://ratings:9080/Ratings/Get")
        .header("content-type", "application/grpc")
        .body(Full::default())
        .unwrap();
    let res = inbound.ready().await.unwrap().call(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["grpc-status"], "14");
}

#[tokio::test]
async fn inbound_tunnels_an_upgrade() {
    let app = app().await;
    let sidecar = serve(Inbound::<Body>::new(app, None)).await;
    let (mut stream, res) = exchange(
        sidecar,
        "GET /chat HTTP/1.1\r\nhost: chat\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n",
    )
    .await;
    assert!(res.starts_with("HTTP/1.1 101"), "{res}");
    assert!(res.to_ascii_lowercase().contains("upgrade: echo"), "{res}");
    stream.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
}

/// A client standing in for the `MeshClient`: answers with the URI it
/// was asked for.
fn uri_echo() -> impl tower::Service<
    http::Request<Body>,
    Response = http::Response<crate::ResponseBody>,
    Error = BoxError,
    Future = impl Send,
> + Clone {
    tower::service_fn(|req: http::Request<Body>| async move {
        let text = format!(
            "{} upgrade={}",
            req.uri(),
            req.headers().contains_key("upgrade")
        );
        Ok::<_, BoxError>(http::Response::new(crate::ResponseBody::full(text)))
    })
}

#[tokio::test]
async fn outbound_makes_the_target_explicit() {
    let sidecar = serve(Outbound::new(uri_echo())).await;
    let (_, res) = exchange(
        sidecar,
        "GET /reviews/0 HTTP/1.1\r\nhost: reviews:9080\r\n\r\n",
    )
    .await;
    assert!(
        res.ends_with("http://reviews:9080/reviews/0 upgrade=false"),
        "{res}"
    );
    // As to an HTTP proxy: the absolute form wins over Host.
    let (_, res) = exchange(
        sidecar,
        "GET http://ratings:9080/r HTTP/1.1\r\nhost: ratings:9080\r\nproxy-connection: keep-alive\r\n\r\n",
    )
    .await;
    assert!(
        res.ends_with("http://ratings:9080/r upgrade=false"),
        "{res}"
    );
    // Without a port, the scheme's.
    let (_, res) = exchange(sidecar, "GET /p HTTP/1.1\r\nhost: reviews\r\n\r\n").await;
    assert!(res.ends_with("http://reviews:80/p upgrade=false"), "{res}");
    // HTTP/1.0 without a Host names no target.
    let (_, res) = exchange(sidecar, "GET /r HTTP/1.0\r\n\r\n").await;
    assert!(res.starts_with("HTTP/1.0 400"), "{res}");
}

#[tokio::test]
async fn outbound_connect_opens_a_tcp_tunnel() {
    let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = echo.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = echo.accept().await.unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        s.write_all(&buf).await.unwrap();
    });
    let sidecar = serve(Outbound::new(uri_echo())).await;
    let (mut stream, res) = exchange(
        sidecar,
        &format!("CONNECT {target} HTTP/1.1\r\nhost: {target}\r\n\r\n"),
    )
    .await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    stream.write_all(b"opaq").await.unwrap();
    let mut buf = [0u8; 4];
    stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"opaq");

    // Nothing listening: Envoy's connect failure.
    let gone = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let (_, res) = exchange(
        sidecar,
        &format!("CONNECT {gone} HTTP/1.1\r\nhost: {gone}\r\n\r\n"),
    )
    .await;
    assert!(res.starts_with("HTTP/1.1 503"), "{res}");
}
