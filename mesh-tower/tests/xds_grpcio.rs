//! The same xDS configuration through a real proxyless gRPC client —
//! grpcio, gRPC's C core under Python — and through `MeshClient`: both
//! must accept every resource (an ACK of each of LDS, RDS, CDS and EDS, no
//! NACK) and split requests the same way.
//!
//! The resources are istiod's for a 20/80 split of `ratings` over subsets
//! v1 and v2; v1's health server answers `SERVING` for `ratings` and v2's
//! `NOT_SERVING`, so each answer says which subset took the check. grpcio
//! runs `tests/grpcio/health_split.py` with `GRPC_XDS_BOOTSTRAP` naming a
//! bootstrap written here; `MeshClient` reads the same kind of file. Each
//! client has an ADS server of its own, serving identical resources, so
//! what each server records is one client's.
//!
//! The Python interpreter is `MESH_PYTHON`, else the workspace's
//! `.ci/venv/bin/python3` (which `.ci/run` makes, with the pinned grpcio),
//! else `python3`. When it cannot import `grpc` and `grpc_health` the test
//! says why on stderr and passes, unless `MESH_REQUIRE_PEERS` is set (as
//! `.ci/run` sets it), when it fails.

#[path = "../../mesh-xds/tests/support/mod.rs"]
mod ads;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use mesh_core::StaticResolve;
use mesh_tower::MeshClient;
use mesh_xds::Bootstrap;
use mesh_xds::ads::{AdsClient, ResourceType};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::HealthServer;

use ads::AdsServer;
use ads::resources::{eds_cluster, istio_route_config, listener, locality_load_assignment};

const RATINGS: &str = "ratings.default.svc.cluster.local:9080";
const V1: &str = "outbound|9080|v1|ratings.default.svc.cluster.local";
const V2: &str = "outbound|9080|v2|ratings.default.svc.cluster.local";
/// The health service the backends report on.
const SERVICE: &str = "ratings";
const NODE_ID: &str = "sidecar~127.0.0.1~ratings-client.default~default.svc.cluster.local";

/// Checks each client sends.
const CHECKS: usize = 400;
/// v2's weight in the split, and how far a client's measured share may be
/// from it: four standard deviations of a share of 400 draws, as grpcio
/// draws at random.
const V2_SHARE: f64 = 0.80;
const TOLERANCE: f64 = 0.08;
/// The longest a client may take for all its checks.
const CLIENT_WAIT: Duration = Duration::from_secs(60);

/// Answers per serving status, e.g. `NOT_SERVING` → 320.
type Tally = BTreeMap<String, usize>;

#[tokio::test]
async fn grpcio_and_the_mesh_client_accept_the_same_xds_config_and_split_alike() {
    let python = python();
    let grpcio_version = match grpcio_version(&python).await {
        Ok(version) => version,
        Err(reason) if std::env::var_os("MESH_REQUIRE_PEERS").is_some() => {
            panic!("MESH_REQUIRE_PEERS is set: {reason}")
        }
        Err(reason) => {
            eprintln!("skipping: {reason}");
            return;
        }
    };
    let v1 = health_server(tonic_health::ServingStatus::Serving).await;
    let v2 = health_server(tonic_health::ServingStatus::NotServing).await;
    let dir = TempDir::new();

    let server = AdsServer::start().await;
    serve(&server, v1, v2);
    let bootstrap = dir.write("grpcio.json", &bootstrap_json(&server));
    let grpcio = run_grpcio(&python, &bootstrap).await;
    assert_all_acked(&server, "grpcio").await;
    let grpcio = grpcio.unwrap_or_else(|e| panic!("grpcio {grpcio_version}: {e}"));

    let server = AdsServer::start().await;
    serve(&server, v1, v2);
    let bootstrap = dir.write("mesh.json", &bootstrap_json(&server));
    let mesh = run_mesh(&bootstrap).await;
    assert_all_acked(&server, "MeshClient").await;

    eprintln!("grpcio {grpcio_version}: {grpcio:?}; MeshClient: {mesh:?}");
    assert_split("grpcio", &grpcio);
    assert_split("MeshClient", &mesh);
}

/// `MESH_PYTHON`, else the workspace's `.ci/venv`, else `python3`.
fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("MESH_PYTHON").filter(|p| !p.is_empty()) {
        return python.into();
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let venv = workspace.join(".ci/venv/bin/python3");
    match venv.exists() {
        true => venv,
        false => "python3".into(),
    }
}

/// grpcio's version, or why `python` cannot run the script.
async fn grpcio_version(python: &Path) -> Result<String, String> {
    let cannot = |why: String| {
        format!(
            "{} cannot import grpc and grpc_health ({why}); .ci/run installs grpcio and \
             grpcio-health-checking into .ci/venv, or set MESH_PYTHON",
            python.display()
        )
    };
    let probe = tokio::process::Command::new(python)
        .args([
            "-c",
            "import grpc, grpc_health.v1.health_pb2_grpc; print(grpc.__version__)",
        ])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(Duration::from_secs(30), probe).await {
        Err(_) => return Err(cannot("no answer within 30 s".into())),
        Ok(Err(e)) => return Err(cannot(e.to_string())),
        Ok(Ok(out)) => out,
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or("no message");
        return Err(cannot(format!("{}: {last}", out.status)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A tonic health server on 127.0.0.1 reporting `status` for [`SERVICE`].
async fn health_server(status: tonic_health::ServingStatus) -> SocketAddr {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter.set_service_status(SERVICE, status).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service::<HealthServer<_>>(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    addr
}

/// What istiod's `grpc` generator sends for `ratings` with a
/// VirtualService weighting subsets v1 and v2 20/80.
fn serve(server: &AdsServer, v1: SocketAddr, v2: SocketAddr) {
    let domains = [
        "ratings.default.svc.cluster.local",
        RATINGS,
        "ratings",
        "ratings:9080",
        "ratings.default.svc",
        "ratings.default",
    ];
    let routes = istio_route_config(RATINGS, &domains, &[(V1, 20), (V2, 80)]);
    let locality = ("us-east1", "us-east1-b");
    server.set(
        ResourceType::Listener.type_url(),
        vec![listener(RATINGS, RATINGS)],
    );
    server.set(ResourceType::RouteConfig.type_url(), vec![routes]);
    server.set(
        ResourceType::Cluster.type_url(),
        vec![eds_cluster(V1), eds_cluster(V2)],
    );
    server.set(
        ResourceType::LoadAssignment.type_url(),
        vec![
            locality_load_assignment(V1, locality, &[v1]),
            locality_load_assignment(V2, locality, &[v2]),
        ],
    );
}

/// A bootstrap for `server` as Istio's agent writes one for proxyless gRPC.
fn bootstrap_json(server: &AdsServer) -> String {
    let bootstrap = serde_json::json!({
        "xds_servers": [{
            "server_uri": server.authority(),
            "channel_creds": [{"type": "insecure"}],
            "server_features": ["xds_v3"],
        }],
        "node": {
            "id": NODE_ID,
            "locality": {"region": "us-east1", "zone": "us-east1-b"},
            "metadata": {"GENERATOR": "grpc", "NAMESPACE": "default"},
        },
        "server_listener_resource_name_template": "xds.istio.io/grpc/lds/inbound/%s",
    });
    serde_json::to_string_pretty(&bootstrap).unwrap()
}

/// The script's tally, or what went wrong with its stderr.
async fn run_grpcio(python: &Path, bootstrap: &Path) -> Result<Tally, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/grpcio/health_split.py");
    let mut command = tokio::process::Command::new(python);
    command
        .arg(script)
        .arg(format!("xds:///{RATINGS}"))
        .arg(SERVICE)
        .arg(CHECKS.to_string())
        .env("GRPC_XDS_BOOTSTRAP", bootstrap)
        .env_remove("GRPC_XDS_BOOTSTRAP_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // gRPC sends even its control-plane channel through a proxy named here.
    for var in [
        "grpc_proxy",
        "https_proxy",
        "http_proxy",
        "HTTPS_PROXY",
        "HTTP_PROXY",
    ] {
        command.env_remove(var);
    }
    let child = command.spawn().map_err(|e| format!("cannot start: {e}"))?;
    let out = tokio::time::timeout(CLIENT_WAIT, child.wait_with_output())
        .await
        .map_err(|_| format!("not done within {CLIENT_WAIT:?}; killed"))?
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let fail = |what: String| format!("{what} ({}); stderr:\n{stderr}", out.status);
    let answer: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&stdout).map_err(|e| fail(format!("{e} in the output {stdout:?}")))?;
    if let Some(error) = answer.get("error") {
        return Err(fail(format!("a check failed: {error}")));
    }
    if !out.status.success() {
        return Err(fail("exited".into()));
    }
    answer
        .into_iter()
        .map(|(status, n)| match n.as_u64() {
            Some(n) => Ok((status, n as usize)),
            None => Err(fail(format!("{status}: {n} is not a count"))),
        })
        .collect()
}

/// `MeshClient`'s tally, from the bootstrap at `path`.
async fn run_mesh(path: &Path) -> Tally {
    let bootstrap = Bootstrap::from_file(path).expect("the bootstrap grpcio reads");
    let client: MeshClient<tonic::body::Body> = MeshClient::builder(StaticResolve::default())
        .xds(AdsClient::start(&bootstrap).unwrap())
        // Seeded: its share is the same on every run.
        .seed(7)
        .build();
    let channel = client.channel_to(&format!("xds:///{RATINGS}")).unwrap();
    let mut health = HealthClient::new(channel);
    let checks = async {
        let mut tally = Tally::new();
        for i in 0..CHECKS {
            let request = HealthCheckRequest {
                service: SERVICE.into(),
            };
            let response = health
                .check(request)
                .await
                .unwrap_or_else(|e| panic!("MeshClient: check {i}: {e}"));
            let status = response.into_inner().status().as_str_name();
            *tally.entry(status.to_owned()).or_default() += 1;
        }
        tally
    };
    tokio::time::timeout(CLIENT_WAIT, checks)
        .await
        .unwrap_or_else(|_| panic!("MeshClient: not done within {CLIENT_WAIT:?}"))
}

/// No NACK, and an ACK of each type, from the one client of `server`.
async fn assert_all_acked(server: &AdsServer, client: &str) {
    let nacks: Vec<String> = server
        .requests()
        .into_iter()
        .filter_map(|r| Some(format!("{}: {}", r.type_url, r.error?)))
        .collect();
    assert!(nacks.is_empty(), "{client} rejected resources: {nacks:#?}");
    for kind in [
        ResourceType::Listener,
        ResourceType::RouteConfig,
        ResourceType::Cluster,
        ResourceType::LoadAssignment,
    ] {
        let url = kind.type_url();
        server
            .wait_for_request(|r| r.type_url == url && r.is_ack())
            .await;
    }
}

/// Every check answered by v1 or v2, v2's share within [`TOLERANCE`].
fn assert_split(client: &str, tally: &Tally) {
    let serving = tally.get("SERVING").copied().unwrap_or(0);
    let not_serving = tally.get("NOT_SERVING").copied().unwrap_or(0);
    assert_eq!(serving + not_serving, CHECKS, "{client}: {tally:?}");
    let v2_share = not_serving as f64 / CHECKS as f64;
    assert!(
        (v2_share - V2_SHARE).abs() <= TOLERANCE,
        "{client}: v2 took {v2_share:.3} of the checks, not {V2_SHARE} ± {TOLERANCE}: {tally:?}"
    );
}

/// A directory of its own under the system's temporary directory, removed
/// when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let nanos = SystemTime::UNIX_EPOCH.elapsed().unwrap().as_nanos();
        let name = format!("mesh-xds-grpcio-{}-{nanos}", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path).unwrap();
        Self(path)
    }

    /// Writes `text` to the file `name` in it, and returns its path.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
