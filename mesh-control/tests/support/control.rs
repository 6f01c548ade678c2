//! `mesh-control serve` as a child process on free loopback ports, HTTP
//! and gRPC upstreams that answer with their name, and a plain GET for the
//! admin endpoints.

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How long anything the tests wait for may take.
pub(crate) const WAIT: Duration = Duration::from_secs(15);

/// A running `mesh-control serve`; dropping it kills it.
pub(crate) struct Control {
    child: Child,
    pub(crate) xds: SocketAddr,
    /// ADS over mutual TLS, when started with `--ca`.
    pub(crate) xds_tls: Option<SocketAddr>,
    pub(crate) admin: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Control {
    /// Starts it on `config`, and waits for the addresses it prints.
    pub(crate) fn start(config: &Path) -> Self {
        Self::start_with(config, &[])
    }

    /// As [`start`](Self::start), with more arguments to `serve`.
    pub(crate) fn start_with(config: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mesh-control"))
            .args([
                "serve",
                "--xds-addr",
                "127.0.0.1:0",
                "--admin-addr",
                "127.0.0.1:0",
            ])
            .args(args)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mesh-control starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let into = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                into.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        // `xds ADDR`, `xds-tls ADDR` with a CA, then `admin ADDR`.
        let mut addrs = std::collections::BTreeMap::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        while !addrs.contains_key("admin") {
            let line = lines.next().expect("an address line").unwrap();
            let (name, addr) = line.split_once(' ').expect(&line);
            addrs.insert(name.to_owned(), addr.trim().parse::<SocketAddr>().unwrap());
        }
        Self {
            child,
            xds: addrs["xds"],
            xds_tls: addrs.get("xds-tls").copied(),
            admin: addrs["admin"],
            stderr,
        }
    }

    /// Everything it wrote to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// `GET path` on the admin port: the status and the body.
    pub(crate) async fn get(&self, path: &str) -> (u16, String) {
        http_get(self.admin, "admin", path, &[])
            .await
            .expect("the admin port answers")
    }

    /// `/config_dump` as JSON.
    pub(crate) async fn config_dump(&self) -> serde_json::Value {
        let (status, body) = self.get("/config_dump").await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Polls `/config_dump` until `pred` holds, within [`WAIT`].
    pub(crate) async fn wait_for_dump(
        &self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let found = tokio::time::timeout(WAIT, async {
            loop {
                let dump = self.config_dump().await;
                if pred(&dump) {
                    return dump;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        match found {
            Ok(dump) => dump,
            Err(_) => panic!(
                "no config dump with {what}: {:#}\nstderr:\n{}",
                self.config_dump().await,
                self.stderr()
            ),
        }
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` with `Host: host` and `headers` over a fresh HTTP/1.1
/// connection to `addr`: the status and the body.
pub(crate) async fn http_get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (status, _, body) = exchange(stream, host, path, headers).await?;
    Ok((status, body))
}

/// `GET path` with `Host: host` and `headers` over `stream`, which the
/// server closes after: the status, the head and the body.
pub(crate) async fn exchange<S>(
    mut stream: S,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String, String)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut bytes = Vec::new();
    // A TLS peer may close without close_notify once it has answered.
    if let Err(e) = stream.read_to_end(&mut bytes).await
        && (bytes.is_empty() || e.kind() != std::io::ErrorKind::UnexpectedEof)
    {
        return Err(e);
    }
    let response = String::from_utf8_lossy(&bytes);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, head.to_owned(), body.to_owned()))
}

/// A port of 127.0.0.1 held for a peer that must be told its port (a
/// listener the control plane writes) rather than report it, and that
/// binds with `SO_REUSEPORT` as Envoy's listeners and gRPC's servers do.
///
/// The port is bound, not listened on, with `SO_REUSEPORT` alone: no
/// other socket can take it meanwhile (the kernel's port-0 choice passes
/// over it, and a bind without `SO_REUSEPORT` is refused), the peer's
/// bind joins it, and connections go to the peer, the only socket
/// listening. Held until dropped, so there is no window between a probe
/// and the peer's bind.
pub(crate) struct ReservedPort {
    port: u16,
    _socket: tokio::net::TcpSocket,
}

impl ReservedPort {
    pub(crate) fn new() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
        socket.set_reuseport(true).expect("SO_REUSEPORT");
        socket
            .bind(([127, 0, 0, 1], 0).into())
            .expect("a port of 127.0.0.1");
        let port = socket.local_addr().expect("the port bound").port();
        Self {
            port,
            _socket: socket,
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

/// An HTTP server on a free port of 127.0.0.1 answering every request
/// with `name`, until the test's runtime ends.
pub(crate) async fn upstream(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = hyper::service::service_fn(move |_req| async move {
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(name))))
            });
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A gRPC server on a free port of 127.0.0.1 answering every unary call,
/// whatever its method, with one message holding `name`, until the test's
/// runtime ends. Its clients read the answer with an identity
/// deserializer, so no `.proto` is needed on either side.
pub(crate) async fn grpc_upstream(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // A length-prefixed message: not compressed, its length, its bytes.
    let mut message = vec![0];
    message.extend_from_slice(&(name.len() as u32).to_be_bytes());
    message.extend_from_slice(name.as_bytes());
    let message = Bytes::from(message);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let message = message.clone();
            let service = hyper::service::service_fn(move |_req| {
                let message = message.clone();
                async move {
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                    let body = Full::new(message)
                        .with_trailers(async move { Some(Ok::<_, Infallible>(trailers)) });
                    let response = hyper::Response::builder()
                        .header("content-type", "application/grpc")
                        .body(body)
                        .unwrap();
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A `MeshServer` on a free port of 127.0.0.1 answering every request
/// with `name`, presenting the workload certificate in `dir`, taking only
/// the mesh's mutual TLS (`STRICT`) and only from `caller` (an ALLOW
/// policy on its SPIFFE id), until the test's runtime ends.
pub(crate) async fn mtls_upstream(
    name: &'static str,
    dir: &std::path::Path,
    caller: &str,
) -> SocketAddr {
    use mesh_core::security::{
        MtlsMode, Permission, Principal, Rbac, RbacAction, RbacPolicy, ValueMatch,
    };
    use mesh_tower::server::MeshServer;
    use mesh_tower::tls::{IdentityFiles, IdentitySource};

    let identity = IdentitySource::from_files(IdentityFiles::in_dir(dir)).unwrap();
    let only_caller = Rbac {
        action: RbacAction::Allow,
        policies: vec![(
            "caller".into(),
            RbacPolicy {
                permissions: vec![Permission::Any],
                principals: vec![Principal::Authenticated(Some(ValueMatch::exact(caller)))],
            },
        )],
    };
    let server = MeshServer::builder()
        .identity(identity)
        .mtls(MtlsMode::Strict)
        .rbac(vec![only_caller])
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = tower::service_fn(
        move |_req: hyper::Request<mesh_tower::server::Body>| async move {
            Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(name))))
        },
    );
    tokio::spawn(async move { server.serve(listener, service).await });
    addr
}
