//! What the sidecar's tests share: the `mesh-sidecar` binary started as a
//! child process, plain applications, and a control plane in the test.

#![allow(dead_code, unreachable_pub)]

pub mod peers;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_control::ControlPlane;
use mesh_control::ca::Ca;
use mesh_control::config_dir::load_texts;
use mesh_core::registry::Instance;
use mesh_xds::server::AdsServer;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

/// How long anything is waited for.
pub const WAIT: Duration = Duration::from_secs(20);

/// A running `mesh-sidecar sidecar`, killed when dropped.
pub struct Sidecar {
    pub child: Child,
    /// Where each of its listeners is, by the name it gives it.
    pub listeners: BTreeMap<String, SocketAddr>,
    pub admin: SocketAddr,
    pub log: PathBuf,
}

impl Sidecar {
    /// `mesh-sidecar sidecar` with every listener on a free port of
    /// 127.0.0.1 and `args`, its log in `dir/NAME.log`; once it has said
    /// where it listens.
    pub async fn start(dir: &Path, name: &str, args: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mesh-sidecar"));
        command.arg("sidecar");
        command.args([
            "--outbound-addr",
            "127.0.0.1:0",
            "--inbound-addr",
            "127.0.0.1:0",
        ]);
        command.args(["--admin-addr", "127.0.0.1:0"]).args(args);
        Self::launch(dir, name, command).await
    }

    /// A sidecar or gateway started by `command` (its own flags given), its log in
    /// `dir/NAME.log`; once it has said where it listens.
    pub async fn launch(dir: &Path, name: &str, mut command: Command) -> Self {
        let log = dir.join(format!("{name}.log"));
        let mut child = command
            .env("RUST_LOG", "info,mesh_tower=debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut addrs = BTreeMap::new();
        // The admin is announced last.
        while !addrs.contains_key("admin") {
            let line = tokio::time::timeout(WAIT, lines.next_line())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "{name} said nothing: {}",
                        std::fs::read_to_string(&log).unwrap()
                    )
                })
                .unwrap()
                .unwrap_or_else(|| {
                    panic!("{name} exited: {}", std::fs::read_to_string(&log).unwrap())
                });
            let (what, addr) = line.split_once(' ').unwrap();
            addrs.insert(what.to_owned(), addr.parse::<SocketAddr>().unwrap());
        }
        Self {
            child,
            admin: addrs["admin"],
            listeners: addrs,
            log,
        }
    }

    /// Its outbound listener.
    pub fn outbound(&self) -> SocketAddr {
        self.listeners["outbound"]
    }

    /// Its inbound listener.
    pub fn inbound(&self) -> SocketAddr {
        self.listeners["inbound"]
    }

    /// `mesh-sidecar sidecar` for the workload `NAME-VERSION` (labels
    /// `app: NAME`, `version: VERSION`) following the control plane at
    /// `xds` with the certificates in `dir/NAME`, in front of the
    /// application on `app_port` (a port nothing listens on without one).
    pub async fn workload(
        dir: &Path,
        xds: SocketAddr,
        name: &str,
        version: &str,
        app_port: Option<u16>,
    ) -> Self {
        let xds = xds.to_string();
        let workload = format!("{name}-{version}");
        let (app, version) = (format!("app={name}"), format!("version={version}"));
        let certs = dir.join(name).display().to_string();
        let port = app_port.unwrap_or_else(free_port).to_string();
        #[rustfmt::skip]
        let args = [
            "--xds", &xds, "--workload", &workload, "--label", &app, "--label", &version,
            "--cert-dir", &certs, "--app-port", &port,
        ];
        Self::start(dir, &format!("{workload}-{port}"), &args).await
    }

    /// What it has logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET path` on its admin: the status and body.
    pub async fn admin(&self, path: &str) -> (u16, String) {
        get(self.admin, &format!("http://{}{path}", self.admin), None).await
    }

    /// Waits for `/ready` to say `LIVE`.
    pub async fn ready(&self) {
        eventually(
            || async { self.admin("/ready").await.0 == 200 },
            || format!("never ready: {}", self.log()),
        )
        .await;
    }
}

/// `mesh-sidecar gateway` listening on `127.0.0.1:PORT`, its admin on a
/// free port; its configuration source is the caller's to add.
pub fn gateway_command(port: u16) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mesh-sidecar"));
    let listen = format!("127.0.0.1:{port}");
    command.args([
        "gateway",
        "--listen",
        &listen,
        "--admin-addr",
        "127.0.0.1:0",
    ]);
    command
}

/// Waits until `check` holds, looking every 20 ms for at most [`WAIT`];
/// panics saying `what` when it never does.
pub async fn eventually<F, Fut>(mut check: F, what: impl FnOnce() -> String)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let held = tokio::time::timeout(WAIT, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    if held.is_err() {
        panic!("{}", what());
    }
}

/// A port of 127.0.0.1 free now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET uri` sent to `addr` whatever the URI names, with `headers`: the
/// status and body (`0` and the error when there was no response).
pub async fn get(addr: SocketAddr, uri: &str, headers: Option<&[(&str, &str)]>) -> (u16, String) {
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let target: http::Uri = uri.parse().unwrap();
    let mut req = http::Request::get(format!("http://{addr}{}", target.path_and_query().unwrap()));
    if let Some(authority) = target.authority() {
        req = req.header("host", authority.as_str());
    }
    for (k, v) in headers.unwrap_or_default() {
        req = req.header(*k, *v);
    }
    match client
        .request(req.body(Full::<Bytes>::default()).unwrap())
        .await
    {
        Ok(res) => {
            let status = res.status().as_u16();
            let body = res
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
        Err(e) => (0, format!("{e:?}")),
    }
}

/// A plain HTTP application on 127.0.0.1 answering `NAME xfcc=…` with the
/// `x-forwarded-client-cert` it was given; on `Upgrade: echo` it switches
/// protocols and echoes what it is sent.
pub async fn app(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = hyper::service::service_fn(
                move |mut req: http::Request<hyper::body::Incoming>| async move {
                    if req.headers().get("upgrade").is_some_and(|u| u == "echo") {
                        return Ok(echo(&mut req));
                    }
                    let xfcc = req
                        .headers()
                        .get("x-forwarded-client-cert")
                        .map_or("-", |v| v.to_str().unwrap_or("?"))
                        .to_owned();
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(format!(
                        "{name} xfcc={xfcc}"
                    )))))
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

/// Switches `req`'s connection to echoing what it is sent.
fn echo(req: &mut http::Request<hyper::body::Incoming>) -> http::Response<Full<Bytes>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upgraded = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgraded.await else { return };
        let mut io = TokioIo::new(upgraded);
        let mut buf = [0u8; 64];
        while let Ok(n @ 1..) = io.read(&mut buf).await {
            if io.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    });
    http::Response::builder()
        .status(101)
        .header("connection", "upgrade")
        .header("upgrade", "echo")
        .body(Full::default())
        .unwrap()
}

/// A control plane serving `files` (name, YAML) over ADS on a free port of
/// 127.0.0.1, until the test's runtime ends.
pub async fn control_plane(files: &[(&str, String)]) -> (ControlPlane, SocketAddr) {
    let plane = ControlPlane::new("cluster.local");
    let loaded = load_texts(
        files.iter().map(|(n, t)| ((*n).to_owned(), t.clone())),
        "cluster.local",
    )
    .unwrap();
    plane.apply(loaded);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AdsServer::new(plane.clone()).into_service())
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (plane, addr)
}

/// A CA in `dir/ca` that has issued each `(name, SPIFFE id)` into
/// `dir/NAME`, Istio's layout.
pub fn certificates(dir: &Path, ids: &[(&str, &str)]) {
    let ca = Ca::init(dir.join("ca")).unwrap();
    for (name, id) in ids {
        ca.issue(id, Duration::from_secs(24 * 3600))
            .unwrap()
            .write(dir.join(name))
            .unwrap();
    }
}

/// `name` (`ratings`, `details`): a service on port 9080 of the workloads
/// labelled `app: NAME`, dialled with the mesh's mutual TLS and taking
/// nothing else.
pub fn service(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\n\
         spec:\n  selector: {{app: {name}}}\n  ports: [{{name: http, port: 9080}}]\n\
         ---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
         metadata: {{name: {name}, namespace: default}}\n\
         spec:\n  host: {name}\n  trafficPolicy:\n    tls: {{mode: ISTIO_MUTUAL}}\n\
         ---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\n\
         metadata: {{name: {name}, namespace: default}}\n\
         spec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  mtls: {{mode: STRICT}}\n"
    )
}

/// An instance of `app` v1 at `addr`, running as `account`.
pub fn instance(app: &str, account: &str, addr: SocketAddr) -> Instance {
    let mut i = Instance::new(addr.ip().to_string());
    i.ports.insert("http".into(), addr.port());
    i.labels.insert("app".into(), app.into());
    i.labels.insert("version".into(), "v1".into());
    i.service_account = Some(account.into());
    i
}
