//! `mesh-control serve` as grpc-js sees it: Node's proxyless gRPC client
//! (`@grpc/grpc-js` with `@grpc/grpc-js-xds`, pinned in
//! `tests/grpc-js/package.json`) asks for `xds:///greeter…:50051`, must
//! ACK every resource the server sends (LDS, RDS, CDS and EDS, no NACK)
//! and route its calls as the YAML says: `end-user: jason` to v3, the
//! rest 20/80 to v1 and v2 (`support/proxyless.rs` has the mesh and the
//! checks; `tests/grpc-js/split.js` makes the calls).
//!
//! Node is `MESH_NODE`, else `node`; its packages are those `npm ci`
//! installs in `tests/grpc-js/node_modules` (as `.ci/run` does). When it
//! cannot load them the test says why on stderr and passes, unless
//! `MESH_REQUIRE_PEERS` is set (as `.ci/run` sets it), when it fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use support::proxyless::Mesh;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_js_accepts_what_mesh_control_serves_and_routes_as_the_yaml_says() {
    let Some(grpc_js) = GrpcJs::find().await else {
        return;
    };
    let mesh = Mesh::start("grpc-js").await;
    let mut script = tokio::process::Command::new(&grpc_js.node);
    script.current_dir(GrpcJs::dir()).arg("split.js");
    mesh.check_routing(&grpc_js.versions, script).await;
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
            Err(reason) => {
                support::missing_peer(&reason);
                None
            }
        }
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
