//! A proxyless gRPC client (grpc-js, grpcio) routing through
//! `mesh-control serve`: a mesh of three gRPC upstreams of `greeter`, the
//! YAML that routes `end-user: jason` to v3 and the rest 20/80 to v1 and
//! v2, a bootstrap in Istio's proxyless shape, and the check that the
//! client ACKed every resource type, NACKed nothing and routed as the YAML
//! says.
//!
//! The client is a script run with `xds:///HOST:PORT PLAIN HEADER`: it
//! sends [`PLAIN`] unary calls without metadata, then [`HEADER`] with
//! `end-user: jason`, one after the other, and prints one JSON object:
//! `{"plain": {VERSION: COUNT, ...}, "header": {...}}`, plus `"error"`
//! (and exit status 1) at the first failed call.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;

use super::TempDir;
use super::control::{Control, grpc_upstream};

const HOST: &str = "greeter.default.svc.cluster.local";
const PORT: u16 = 50051;
/// The node the client names in its bootstrap.
const NODE_ID: &str = "sidecar~127.0.0.1~greeter-client.default~default.svc.cluster.local";

/// Calls without the header, which the weighted route takes.
const PLAIN: usize = 200;
/// Calls with `end-user: jason`, which the header route takes.
const HEADER: usize = 50;
/// v1's weight in the split; the measured share may be four standard
/// deviations of a binomial share of [`PLAIN`] draws from it, as a gRPC
/// client picks a weighted cluster at random per call.
const V1_SHARE: f64 = 0.20;
/// The longest the script may take for all its calls.
const CLIENT_WAIT: Duration = Duration::from_secs(60);
/// How often the server's record of streams is read.
const POLL: Duration = Duration::from_millis(50);

const TYPES: [&str; 4] = ["LDS", "RDS", "CDS", "EDS"];

/// The Service, a WorkloadEntry per version at `upstreams`, the subsets
/// and the routes. The service port is a name in the registry; the
/// entries carry the ports the upstreams bound.
fn config(upstreams: &[(&str, SocketAddr)]) -> String {
    let mut yaml = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: greeter, namespace: default}}\n\
         spec:\n  selector: {{app: greeter}}\n  ports: [{{name: grpc, port: {PORT}}}]\n"
    );
    for (version, addr) in upstreams {
        yaml.push_str(&format!(
            "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
             metadata: {{name: greeter-{version}, namespace: default}}\n\
             spec:\n  address: {}\n  ports: {{grpc: {}}}\n  labels: {{app: greeter, version: {version}}}\n",
            addr.ip(),
            addr.port()
        ));
    }
    yaml.push_str(&format!(
        "---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: greeter, namespace: default}}
spec:
  host: {HOST}
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
  - {{name: v3, labels: {{version: v3}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: greeter, namespace: default}}
spec:
  hosts: [{HOST}]
  http:
  - match:
    - headers:
        end-user: {{exact: jason}}
    route:
    - destination: {{host: {HOST}, subset: v3}}
  - route:
    - destination: {{host: {HOST}, subset: v1}}
      weight: 20
    - destination: {{host: {HOST}, subset: v2}}
      weight: 80
"
    ));
    yaml
}

/// A bootstrap for the ADS server at `xds` as Istio's agent writes one
/// for proxyless gRPC; grpc-js requires the node's locality.
fn bootstrap_json(xds: SocketAddr) -> String {
    let bootstrap = serde_json::json!({
        "xds_servers": [{
            "server_uri": xds.to_string(),
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

/// The upstreams, `mesh-control serve` on their YAML, and a bootstrap
/// file naming it.
pub(crate) struct Mesh {
    control: Control,
    bootstrap: PathBuf,
    _dir: TempDir,
}

impl Mesh {
    pub(crate) async fn start(name: &str) -> Self {
        let mut upstreams = Vec::new();
        for version in ["v1", "v2", "v3"] {
            upstreams.push((version, grpc_upstream(version).await));
        }
        let dir = TempDir::new(name);
        std::fs::write(dir.join("greeter.yaml"), config(&upstreams)).unwrap();
        let control = Control::start(dir.path());
        control
            .wait_for_dump("a configuration", |d| !d["config_version"].is_null())
            .await;
        let bootstrap = dir.join("bootstrap.json");
        std::fs::write(&bootstrap, bootstrap_json(control.xds)).unwrap();
        Self {
            control,
            bootstrap,
            _dir: dir,
        }
    }

    /// Runs `script` (a command naming the client's script) with the
    /// target and counts, and the bootstrap in `GRPC_XDS_BOOTSTRAP`, and
    /// checks what the server recorded of its stream and what it counted.
    /// `client` names the client and its versions, for messages.
    pub(crate) async fn check_routing(&self, client: &str, mut script: tokio::process::Command) {
        script
            .arg(format!("xds:///{HOST}:{PORT}"))
            .arg(PLAIN.to_string())
            .arg(HEADER.to_string())
            .env("GRPC_XDS_BOOTSTRAP", &self.bootstrap)
            .env_remove("GRPC_XDS_BOOTSTRAP_CONFIG");
        // The client's stream closes when the script exits and the server
        // forgets it: its record is read while the calls run.
        let run = run(script);
        tokio::pin!(run);
        let mut seen = Seen::default();
        let result = loop {
            seen.note(&self.control.get("/clients").await.1);
            tokio::select! {
                result = &mut run => break result,
                _ = tokio::time::sleep(POLL) => {}
            }
        };

        assert!(
            seen.nacks.is_empty(),
            "{client} rejected resources: {:#?}\nmesh-control's stderr:\n{}",
            seen.nacks,
            self.control.stderr()
        );
        let tally = result.unwrap_or_else(|e| panic!("{client}: {e}"));
        for kind in TYPES {
            assert!(
                seen.acked.contains_key(kind),
                "{client} ACKed no {kind}; it ACKed {:?}",
                seen.acked
            );
        }
        eprintln!("{client}: {tally:?}; ACKed {:?}", seen.acked);

        let to = |calls: &BTreeMap<String, usize>, v: &str| calls.get(v).copied().unwrap_or(0);
        assert_eq!(to(&tally.header, "v3"), HEADER, "{tally:?}");
        assert_eq!(
            to(&tally.plain, "v1") + to(&tally.plain, "v2"),
            PLAIN,
            "{tally:?}"
        );
        let share = to(&tally.plain, "v1") as f64 / PLAIN as f64;
        let tolerance = 4.0 * (V1_SHARE * (1.0 - V1_SHARE) / PLAIN as f64).sqrt();
        assert!(
            (share - V1_SHARE).abs() <= tolerance,
            "v1 took {share:.3} of the calls, not {V1_SHARE} ± {tolerance:.3}: {tally:?}"
        );
    }
}

/// The Python interpreter to run grpcio with: `MESH_PYTHON`, else the
/// workspace's `.ci/venv/bin/python3` (which `.ci/run` makes, with the
/// pinned grpcio), else `python3`; `None` when it cannot import `grpc`
/// and `grpc_health` (see [`missing_peer`](super::missing_peer)).
pub(crate) async fn grpcio() -> Option<PathBuf> {
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
    super::missing_peer(&format!(
        "{} cannot import grpc and grpc_health; .ci/run installs them into .ci/venv",
        python.display()
    ));
    None
}

/// The grpcio script in `tests/grpcio/` named `name`.
pub(crate) fn grpcio_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/grpcio")
        .join(name)
}

/// What a script counted: answers per upstream, with and without the
/// header.
#[derive(Debug, Deserialize)]
struct Tally {
    #[serde(default)]
    plain: BTreeMap<String, usize>,
    #[serde(default)]
    header: BTreeMap<String, usize>,
    error: Option<String>,
}

/// The script's tally, or what went wrong with its stderr (printed too
/// when it worked: gRPC's traces, `GRPC_TRACE` and `GRPC_VERBOSITY`, pass
/// through). It is killed after [`CLIENT_WAIT`].
async fn run(mut script: tokio::process::Command) -> Result<Tally, String> {
    script
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
        script.env_remove(var);
    }
    let child = script.spawn().map_err(|e| format!("cannot start: {e}"))?;
    let out = tokio::time::timeout(CLIENT_WAIT, child.wait_with_output())
        .await
        .map_err(|_| format!("not done within {CLIENT_WAIT:?}; killed"))?
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let fail = |what: String| format!("{what} ({}); stderr:\n{stderr}", out.status);
    let tally: Tally =
        serde_json::from_str(&stdout).map_err(|e| fail(format!("{e} in the output {stdout:?}")))?;
    if let Some(error) = &tally.error {
        return Err(fail(format!("a call failed: {error}; before it {tally:?}")));
    }
    if !out.status.success() {
        return Err(fail("exited".into()));
    }
    // Empty unless asked for, e.g. with GRPC_TRACE=xds_client.
    if !stderr.is_empty() {
        eprintln!("the script's stderr:\n{stderr}");
    }
    Ok(tally)
}

/// What the server recorded of the client's streams (those of
/// [`NODE_ID`]) over every reading of `/clients`: per type the last
/// version ACKed, and every NACK.
#[derive(Default)]
struct Seen {
    acked: BTreeMap<String, String>,
    nacks: Vec<(String, serde_json::Value)>,
}

impl Seen {
    fn note(&mut self, clients: &str) {
        let Ok(serde_json::Value::Array(clients)) = serde_json::from_str(clients) else {
            return;
        };
        for client in clients.iter().filter(|c| c["node"] == NODE_ID) {
            let Some(types) = client["types"].as_object() else {
                continue;
            };
            for (kind, status) in types {
                if let Some(version) = status["acked_version"].as_str() {
                    self.acked.insert(kind.clone(), version.to_owned());
                }
                if !status["last_nack"].is_null() {
                    let entry = (kind.clone(), status["last_nack"].clone());
                    if !self.nacks.contains(&entry) {
                        self.nacks.push(entry);
                    }
                }
            }
        }
    }
}
