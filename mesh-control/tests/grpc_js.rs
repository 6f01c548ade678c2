//! `mesh-control serve` as grpc-js sees it: Node's proxyless gRPC client
//! (`@grpc/grpc-js` with `@grpc/grpc-js-xds`, pinned in
//! `tests/grpc-js/package.json`) asks for `xds:///greeter…:50051`, must
//! ACK every resource the server sends (LDS, RDS, CDS and EDS, no NACK)
//! and route its calls as the YAML says: `end-user: jason` to v3, the
//! rest 20/80 to v1 and v2.
//!
//! The YAML is a Kubernetes Service with a port named `grpc`, a
//! WorkloadEntry per version at a real gRPC upstream on 127.0.0.1 (the
//! service port is a name in the registry; the entries carry the bound
//! ports), a DestinationRule with subsets v1, v2 and v3 and a
//! VirtualService. Each upstream answers every unary call with its
//! version. What the server records of grpc-js's stream is read from
//! `/clients` while the calls run.
//!
//! Node is `MESH_NODE`, else `node`; its packages are those `npm ci`
//! installs in `tests/grpc-js/node_modules` (as `.ci/run` does). When it
//! cannot load them the test says why on stderr and passes, unless
//! `MESH_REQUIRE_PEERS` is set (as `.ci/run` sets it), when it fails.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use support::TempDir;
use support::control::{Control, grpc_upstream};

const HOST: &str = "greeter.default.svc.cluster.local";
const PORT: u16 = 50051;
/// The node grpc-js names in its bootstrap.
const NODE_ID: &str = "sidecar~127.0.0.1~greeter-client.default~default.svc.cluster.local";

/// Calls without the header, which the weighted route takes.
const PLAIN: usize = 200;
/// Calls with `end-user: jason`, which the header route takes.
const HEADER: usize = 50;
/// v1's weight in the split; the measured share may be four standard
/// deviations of a binomial share of [`PLAIN`] draws from it, as grpc-js
/// picks a weighted cluster at random per call.
const V1_SHARE: f64 = 0.20;
/// The longest the script may take for all its calls.
const CLIENT_WAIT: Duration = Duration::from_secs(60);
/// How often the server's record of streams is read.
const POLL: Duration = Duration::from_millis(50);

const TYPES: [&str; 4] = ["LDS", "RDS", "CDS", "EDS"];

/// The Service, a WorkloadEntry per version at `upstreams`, the subsets
/// and the routes.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_js_accepts_what_mesh_control_serves_and_routes_as_the_yaml_says() {
    let Some(grpc_js) = GrpcJs::find().await else {
        return;
    };
    let mut upstreams = Vec::new();
    for version in ["v1", "v2", "v3"] {
        upstreams.push((version, grpc_upstream(version).await));
    }
    let dir = TempDir::new("grpc-js");
    std::fs::write(dir.join("greeter.yaml"), config(&upstreams)).unwrap();
    let control = Control::start(dir.path());
    control
        .wait_for_dump("a configuration", |d| !d["config_version"].is_null())
        .await;
    let bootstrap = dir.join("bootstrap.json");
    std::fs::write(&bootstrap, bootstrap_json(control.xds)).unwrap();

    // grpc-js's stream closes when the script exits and the server forgets
    // it: its record is read while the calls run.
    let run = grpc_js.run(&bootstrap);
    tokio::pin!(run);
    let mut seen = Seen::default();
    let result = loop {
        seen.note(&control.get("/clients").await.1);
        tokio::select! {
            result = &mut run => break result,
            _ = tokio::time::sleep(POLL) => {}
        }
    };

    let versions = &grpc_js.versions;
    assert!(
        seen.nacks.is_empty(),
        "{versions} rejected resources: {:#?}\nmesh-control's stderr:\n{}",
        seen.nacks,
        control.stderr()
    );
    let tally = result.unwrap_or_else(|e| panic!("{versions}: {e}"));
    for kind in TYPES {
        assert!(
            seen.acked.contains_key(kind),
            "{versions} ACKed no {kind}; it ACKed {:?}",
            seen.acked
        );
    }
    eprintln!("{versions}: {tally:?}; ACKed {:?}", seen.acked);

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

/// What `split.js` counted: answers per upstream, with and without the
/// header.
#[derive(Debug, Deserialize)]
struct Tally {
    #[serde(default)]
    plain: BTreeMap<String, usize>,
    #[serde(default)]
    header: BTreeMap<String, usize>,
    error: Option<String>,
}

/// A Node that can load the pinned packages.
struct GrpcJs {
    node: PathBuf,
    /// Node's and the packages' versions, for messages.
    versions: String,
}

impl GrpcJs {
    /// The package directory: `package.json`, `split.js`, `node_modules`.
    fn dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/grpc-js")
    }

    /// Node, or `None` after saying on stderr why the test is skipped;
    /// panics instead when `MESH_REQUIRE_PEERS` is set.
    async fn find() -> Option<Self> {
        let node: PathBuf = std::env::var_os("MESH_NODE")
            .filter(|n| !n.is_empty())
            .map_or_else(|| "node".into(), Into::into);
        match versions(&node).await {
            Ok(versions) => Some(Self { node, versions }),
            Err(reason) if std::env::var_os("MESH_REQUIRE_PEERS").is_some() => {
                panic!("MESH_REQUIRE_PEERS is set: {reason}")
            }
            Err(reason) => {
                eprintln!("skipping: {reason}");
                None
            }
        }
    }

    /// The script's tally of [`PLAIN`] and [`HEADER`] calls to
    /// `xds:///HOST:PORT` with the bootstrap at `bootstrap`, or what went
    /// wrong with its stderr (printed too when it worked: gRPC's traces,
    /// `GRPC_TRACE` and `GRPC_VERBOSITY`, pass through). It is killed
    /// after [`CLIENT_WAIT`].
    async fn run(&self, bootstrap: &Path) -> Result<Tally, String> {
        let mut command = tokio::process::Command::new(&self.node);
        command
            .current_dir(Self::dir())
            .arg("split.js")
            .arg(format!("xds:///{HOST}:{PORT}"))
            .arg(PLAIN.to_string())
            .arg(HEADER.to_string())
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
        let tally: Tally = serde_json::from_str(&stdout)
            .map_err(|e| fail(format!("{e} in the output {stdout:?}")))?;
        if let Some(error) = &tally.error {
            return Err(fail(format!("a call failed: {error}; before it {tally:?}")));
        }
        if !out.status.success() {
            return Err(fail("exited".into()));
        }
        // Empty unless asked for, e.g. with GRPC_TRACE=xds_client.
        if !stderr.is_empty() {
            eprintln!("split.js's stderr:\n{stderr}");
        }
        Ok(tally)
    }
}

/// Node's, grpc-js's and grpc-js-xds's versions, or why `node` cannot
/// load the packages.
async fn versions(node: &Path) -> Result<String, String> {
    let cannot = |why: String| {
        format!(
            "{} cannot load @grpc/grpc-js-xds from {} ({why}); .ci/run installs node and \
             runs `npm ci` there, or set MESH_NODE",
            node.display(),
            GrpcJs::dir().display()
        )
    };
    let probe = tokio::process::Command::new(node)
        .current_dir(GrpcJs::dir())
        .args([
            "-e",
            "require('@grpc/grpc-js-xds');\
             const v = (p) => require(p + '/package.json').version;\
             console.log(`node ${process.version}, grpc-js ${v('@grpc/grpc-js')}, \
             grpc-js-xds ${v('@grpc/grpc-js-xds')}`);",
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
        let first = stderr
            .lines()
            .find(|l| l.starts_with("Error"))
            .or(stderr.lines().last())
            .unwrap_or("no message");
        return Err(cannot(format!("{}: {first}", out.status)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// What the server recorded of grpc-js's streams (those of [`NODE_ID`])
/// over every reading of `/clients`: per type the last version ACKed, and
/// every NACK.
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
