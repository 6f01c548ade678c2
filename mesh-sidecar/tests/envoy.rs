//! Envoy 1.40 on one side and `mesh-sidecar` on the other, both
//! configured by the same control plane: Envoy's outbound dials the
//! sidecar's inbound over the mesh's mutual TLS, and the sidecar's
//! outbound dials Envoy's inbound.

mod support;

use std::net::SocketAddr;

use mesh_core::registry::Instance;
use support::peers::envoy::Envoy;
use support::{Sidecar, WAIT, app, certificates, control_plane, free_port, get};

const PRODUCTPAGE: &str = "spiffe://cluster.local/ns/default/sa/productpage";
const REVIEWS: &str = "spiffe://cluster.local/ns/default/sa/reviews";
const DETAILS: &str = "spiffe://cluster.local/ns/default/sa/details";

/// reviews on `reviews_port` (behind `mesh-sidecar`) and details on
/// `details_port` (behind Envoy at 127.0.0.2, its application at
/// `details_app`), both STRICT and dialled with ISTIO_MUTUAL.
fn mesh(reviews_port: u16, details_port: u16, details_app: SocketAddr) -> String {
    let mut yaml = String::new();
    for (name, port) in [("reviews", reviews_port), ("details", details_port)] {
        yaml.push_str(&format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\n\
             spec:\n  selector: {{app: {name}}}\n  ports: [{{name: http, port: {port}}}]\n\
             ---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
             metadata: {{name: {name}, namespace: default}}\n\
             spec:\n  host: {name}\n  trafficPolicy: {{tls: {{mode: ISTIO_MUTUAL}}}}\n\
             ---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\n\
             metadata: {{name: {name}, namespace: default}}\n\
             spec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  mtls: {{mode: STRICT}}\n---\n"
        ));
    }
    yaml.push_str(&format!(
        "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
         metadata: {{name: details-v1, namespace: default}}\n\
         spec:\n  address: 127.0.0.2\n  labels: {{app: details, version: v1}}\n  serviceAccount: details\n\
         ---\napiVersion: networking.istio.io/v1\nkind: Sidecar\n\
         metadata: {{name: details, namespace: default}}\n\
         spec:\n  workloadSelector: {{labels: {{app: details}}}}\n\
         \x20 ingress:\n  - port: {{number: {details_port}, protocol: HTTP, name: http}}\n\
         \x20   defaultEndpoint: 127.0.0.1:{}\n    captureMode: NONE\n\
         \x20 egress:\n  - hosts: [\"~/*\"]\n",
        details_app.port()
    ));
    yaml
}

/// Envoy as the node `id` of `app`, its certificates those in `certs`.
fn envoy(xds: SocketAddr, id: &str, app: &str, certs: &std::path::Path) -> Option<Envoy> {
    let file = |name: &str| certs.join(name).display().to_string();
    let (chain, key, root) = (
        file("cert-chain.pem"),
        file("key.pem"),
        file("root-cert.pem"),
    );
    let metadata = [
        ("TLS_CLIENT_CERT_CHAIN", chain.as_str()),
        ("TLS_CLIENT_KEY", key.as_str()),
        ("TLS_CLIENT_ROOT_CERT", root.as_str()),
    ];
    Envoy::start_with(xds, id, &[("app", app)], &metadata)
}

/// Waits for a `200` from `uri` sent to `addr`; its body.
async fn until_ok(addr: SocketAddr, uri: &str, log: impl Fn() -> String) -> String {
    let answered = tokio::time::timeout(WAIT, async {
        loop {
            let (status, body) = get(addr, uri, None).await;
            if status == 200 {
                return body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    answered.unwrap_or_else(|_| panic!("no 200 from {uri} through {addr}: {}", log()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_and_the_sidecar_take_each_others_mutual_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    certificates(
        dir,
        &[
            ("productpage", PRODUCTPAGE),
            ("reviews", REVIEWS),
            ("details", DETAILS),
        ],
    );
    let (reviews_port, details_port) = (free_port(), free_port());
    let details_app = app("details").await;
    let (plane, xds) =
        control_plane(&[("mesh.yaml", mesh(reviews_port, details_port, details_app))]).await;

    // reviews: mesh-sidecar in front of a plain application.
    let reviews_app = app("reviews").await;
    let reviews = Sidecar::workload(dir, xds, "reviews", "v1", Some(reviews_app.port())).await;
    let mut instance = Instance::new("127.0.0.1");
    instance
        .ports
        .insert("http".into(), reviews.inbound().port());
    instance.labels.insert("app".into(), "reviews".into());
    instance.service_account = Some("reviews".into());
    plane.set_instances("test", vec![instance]);
    reviews.ready().await;

    // Envoy as productpage's sidecar → mesh-sidecar's inbound.
    let productpage_node = "sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local";
    let Some(_productpage) = envoy(
        xds,
        productpage_node,
        "productpage",
        &dir.join("productpage"),
    ) else {
        return;
    };
    let envoy_outbound = SocketAddr::from(([127, 0, 0, 1], reviews_port));
    let uri = format!("http://reviews:{reviews_port}/reviews/0");
    let body = until_ok(envoy_outbound, &uri, || reviews.log()).await;
    assert!(
        body.starts_with("reviews xfcc=") && body.ends_with(&format!("URI={PRODUCTPAGE}")),
        "{body}"
    );

    // mesh-sidecar as productpage's → Envoy as details' sidecar.
    let details_node = "sidecar~127.0.0.2~details-v1.default~default.svc.cluster.local";
    let _details =
        envoy(xds, details_node, "details", &dir.join("details")).expect("Envoy, as above");
    let productpage = Sidecar::workload(dir, xds, "productpage", "v1", None).await;
    let uri = format!("http://details:{details_port}/details/0");
    let body = until_ok(productpage.outbound(), &uri, || productpage.log()).await;
    assert!(body.starts_with("details xfcc="), "{body}");
    // STRICT at Envoy: plain text straight to it has no answer.
    let (status, _) = get(SocketAddr::from(([127, 0, 0, 2], details_port)), &uri, None).await;
    assert_eq!(status, 0, "plain text reached a STRICT Envoy");
}
