//! What the grpcio tests share: finding a Python with grpcio (or saying
//! why not), tonic health backends that tell which subset answered, the
//! bootstrap grpcio reads, running `health_split.py`, and the 20/80 split
//! each measurement is held to.
//!
//! The Python interpreter is `MESH_PYTHON`, else the workspace's
//! `.ci/venv/bin/python3` (which `.ci/run` makes, with the pinned grpcio),
//! else `python3`. When it cannot import `grpc` and `grpc_health` a test
//! says why on stderr and passes, unless `MESH_REQUIRE_PEERS` is set (as
//! `.ci/run` sets it), when it fails.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use tonic_health::pb::health_server::HealthServer;

/// The listener both clients ask for.
pub(crate) const RATINGS: &str = "ratings.default.svc.cluster.local:9080";
/// The health service the backends report on.
pub(crate) const SERVICE: &str = "ratings";
/// The node grpcio (and `MeshClient`) name in their bootstrap.
pub(crate) const NODE_ID: &str =
    "sidecar~127.0.0.1~ratings-client.default~default.svc.cluster.local";

/// Checks each client sends.
pub(crate) const CHECKS: usize = 1000;
/// v2's weight in the split, and how far a client's measured share may be
/// from it: six standard deviations of a share of 1,000 draws, as grpcio
/// draws at random (at four, one run in tens of thousands fails by chance;
/// a split of 50/50 or the weights swapped still fails every run).
const V2_SHARE: f64 = 0.80;
const TOLERANCE: f64 = 0.08;
/// The longest a client may take for all its checks.
pub(crate) const CLIENT_WAIT: Duration = Duration::from_secs(60);

/// Answers per serving status, e.g. `NOT_SERVING` → 320.
pub(crate) type Tally = BTreeMap<String, usize>;

/// A Python that can run `health_split.py`.
pub(crate) struct Grpcio {
    /// The interpreter.
    pub(crate) python: PathBuf,
    /// `grpc.__version__`, for messages.
    pub(crate) version: String,
}

impl Grpcio {
    /// The interpreter, or `None` after saying on stderr why the test is
    /// skipped; panics instead when `MESH_REQUIRE_PEERS` is set.
    pub(crate) async fn find() -> Option<Self> {
        let python = python();
        match version(&python).await {
            Ok(version) => Some(Self { python, version }),
            Err(reason) if std::env::var_os("MESH_REQUIRE_PEERS").is_some() => {
                panic!("MESH_REQUIRE_PEERS is set: {reason}")
            }
            Err(reason) => {
                eprintln!("skipping: {reason}");
                None
            }
        }
    }

    /// The script's tally of [`CHECKS`] checks of `xds:///`[`RATINGS`],
    /// with the bootstrap at `bootstrap`, or what went wrong with its
    /// stderr.
    pub(crate) async fn run(&self, bootstrap: &Path) -> Result<Tally, String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/grpcio/health_split.py");
        let mut command = tokio::process::Command::new(&self.python);
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
        let answer: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&stdout)
            .map_err(|e| fail(format!("{e} in the output {stdout:?}")))?;
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
async fn version(python: &Path) -> Result<String, String> {
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
pub(crate) async fn health_server(status: tonic_health::ServingStatus) -> SocketAddr {
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

/// A bootstrap for the ADS server at `authority` as Istio's agent writes
/// one for proxyless gRPC.
pub(crate) fn bootstrap_json(authority: &str) -> String {
    let bootstrap = serde_json::json!({
        "xds_servers": [{
            "server_uri": authority,
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

/// Every check answered by v1 (`SERVING`) or v2 (`NOT_SERVING`), v2's
/// share within [`TOLERANCE`] of [`V2_SHARE`].
pub(crate) fn assert_split(client: &str, tally: &Tally) {
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
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> Self {
        let nanos = SystemTime::UNIX_EPOCH.elapsed().unwrap().as_nanos();
        let name = format!("mesh-xds-grpcio-{}-{nanos}", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path).unwrap();
        Self(path)
    }

    /// Writes `text` to the file `name` in it, and returns its path.
    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
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
