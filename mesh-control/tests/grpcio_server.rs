//! grpcio's xDS-enabled gRPC server (gRFC A36) as a client of
//! `mesh-control serve`: it takes its inbound listener by the name Istio's
//! bootstrap template gives, enforces the AuthorizationPolicy in it as
//! RBAC (A41), and, once a PeerAuthentication turns STRICT, refuses plain
//! text and serves mutual TLS with certificates from the mesh's CA through
//! its `file_watcher` certificate provider (A29).
//!
//! The Python interpreter is `MESH_PYTHON`, else the workspace's
//! `.ci/venv/bin/python3` (which `.ci/run` makes, with the pinned grpcio),
//! else `python3`. When it cannot import `grpc` and `grpc_health` the test
//! says why and passes, unless `MESH_REQUIRE_PEERS` is set.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use mesh_control::ca::Ca;
use support::TempDir;
use support::control::{Control, WAIT, free_port};
use support::grpc::mtls_channel;
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const DAY: Duration = Duration::from_secs(24 * 3600);
const RATINGS_ID: &str = "spiffe://cluster.local/ns/default/sa/ratings";
const PRODUCTPAGE_ID: &str = "spiffe://cluster.local/ns/default/sa/productpage";

/// Denies requests from the user `blocked` to ratings.
const DENY_BLOCKED: &str = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
    metadata: {name: no-blocked, namespace: default}\n\
    spec:\n  selector: {matchLabels: {app: ratings}}\n  action: DENY\n\
    \x20 rules:\n  - when: [{key: 'request.headers[x-user]', values: [blocked]}]\n";

/// Mutual TLS only, for ratings.
const STRICT: &str = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n\
    metadata: {name: ratings, namespace: default}\n\
    spec:\n  selector: {matchLabels: {app: ratings}}\n  mtls: {mode: STRICT}\n";

/// The interpreter to use, if it has grpcio.
async fn python() -> Option<PathBuf> {
    let python = std::env::var_os("MESH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/venv/bin/python3");
            if venv.exists() {
                venv
            } else {
                "python3".into()
            }
        });
    let ok = tokio::process::Command::new(&python)
        .args(["-c", "import grpc, grpc_health"])
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    let reason = format!("{} cannot import grpc and grpc_health", python.display());
    if std::env::var_os("MESH_REQUIRE_PEERS").is_some() {
        panic!("MESH_REQUIRE_PEERS is set: {reason}");
    }
    eprintln!("skipping: {reason}");
    None
}

/// The gRPC bootstrap of the ratings server: Istio's proxyless shape, with
/// its certificates from `certs`.
fn bootstrap(xds: SocketAddr, certs: &Path) -> serde_json::Value {
    let file = |name: &str| certs.join(name).display().to_string();
    serde_json::json!({
        "xds_servers": [{
            "server_uri": xds.to_string(),
            "channel_creds": [{"type": "insecure"}],
            "server_features": ["xds_v3"],
        }],
        "node": {
            "id": "sidecar~127.0.0.1~ratings-v1.default~default.svc.cluster.local",
            "metadata": {
                "GENERATOR": "grpc",
                "NAMESPACE": "default",
                "LABELS": {"app": "ratings", "version": "v1"},
            },
            "locality": {},
        },
        "server_listener_resource_name_template": "xds.istio.io/grpc/lds/inbound/%s",
        "certificate_providers": {"default": {
            "plugin_name": "file_watcher",
            "config": {
                "certificate_file": file("cert-chain.pem"),
                "private_key_file": file("key.pem"),
                "ca_certificate_file": file("root-cert.pem"),
                "refresh_interval": "1s",
            },
        }},
    })
}

/// One health check as `user`: its status code.
async fn check(channel: Channel, user: &str) -> Code {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    request
        .metadata_mut()
        .insert("x-user", user.parse().unwrap());
    match HealthClient::new(channel).check(request).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// A plain-text channel to `addr`, if one connects.
async fn plaintext(addr: SocketAddr) -> Option<Channel> {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .ok()
}

/// Retries `attempt` until it gives `want`, within [`WAIT`].
async fn eventually<F, Fut>(what: &str, want: Code, attempt: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Code>,
{
    let mut last = Code::Unknown;
    let reached = tokio::time::timeout(WAIT, async {
        loop {
            last = attempt().await;
            if last == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "{what}: wanted {want:?}, last {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_xds_server_enforces_authorization_and_strict_mtls() {
    let Some(python) = python().await else {
        return;
    };
    let tmp = TempDir::new("grpcio-server");
    let ca = Ca::init(tmp.join("ca")).unwrap();
    ca.issue(RATINGS_ID, DAY)
        .unwrap()
        .write(tmp.join("ratings"))
        .unwrap();
    ca.issue(PRODUCTPAGE_ID, DAY)
        .unwrap()
        .write(tmp.join("productpage"))
        .unwrap();
    let config = tmp.join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("authz.yaml"), DENY_BLOCKED).unwrap();
    let control = Control::start(&config);
    let bootstrap_file = tmp.join("bootstrap.json");
    std::fs::write(
        &bootstrap_file,
        bootstrap(control.xds, &tmp.join("ratings")).to_string(),
    )
    .unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/grpcio/xds_server.py");
    let mut server = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(free_port().to_string())
        .env("GRPC_XDS_BOOTSTRAP", &bootstrap_file)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the grpcio server starts");
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let port: u16 = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("the server prints its port")
        .unwrap()
        .expect("a port line")
        .trim()
        .parse()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    // It serves once its listener arrives, with the DENY policy in it.
    let plain = || async {
        match plaintext(addr).await {
            Some(channel) => check(channel, "alice").await,
            None => Code::Unavailable,
        }
    };
    eventually("plain text before STRICT", Code::Ok, plain).await;
    let channel = plaintext(addr).await.unwrap();
    assert_eq!(
        check(channel.clone(), "blocked").await,
        Code::PermissionDenied
    );
    assert_eq!(check(channel, "alice").await, Code::Ok);
    let dump = control.config_dump().await;
    assert_eq!(dump["nacks"], serde_json::json!([]), "{dump:#}");

    // STRICT: plain text is refused, mutual TLS with the CA's files
    // serves, and the policy still holds.
    std::fs::write(config.join("peer.yaml"), STRICT).unwrap();
    let mtls = || async {
        match mtls_channel(&tmp.join("productpage"), RATINGS_ID, addr).await {
            Ok(channel) => check(channel, "alice").await,
            Err(_) => Code::Unavailable,
        }
    };
    eventually("mutual TLS under STRICT", Code::Ok, mtls).await;
    assert_ne!(
        plain().await,
        Code::Ok,
        "plain text is refused under STRICT"
    );
    let channel = mtls_channel(&tmp.join("productpage"), RATINGS_ID, addr)
        .await
        .unwrap();
    assert_eq!(check(channel, "blocked").await, Code::PermissionDenied);
    let dump = control.config_dump().await;
    assert_eq!(dump["nacks"], serde_json::json!([]), "{dump:#}");
}
