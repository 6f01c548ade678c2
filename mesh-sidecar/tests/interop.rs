//! The library and the sidecar are the two halves of one mesh: a
//! `MeshClient` calls a sidecar-fronted application, and a sidecar calls a
//! `MeshServer`, over mutual TLS with the control plane's policy, each side
//! reporting the other with full labels.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use mesh_core::telemetry::WorkloadMetadata;
use mesh_tower::Mesh;
use mesh_tower::tls::ClientIdentity;
use mesh_xds::Bootstrap;
use mesh_xds::bootstrap::{CertificateProvider, FileWatcher};
use support::{Sidecar, WAIT, app, certificates, control_plane, get, instance, service};
use tower::ServiceExt;

const PRODUCTPAGE: &str = "spiffe://cluster.local/ns/default/sa/productpage";
const RATINGS: &str = "spiffe://cluster.local/ns/default/sa/ratings";

/// A library workload `app`-v1 following the control plane at `xds`
/// with the certificates in `certs`.
fn library_mesh(xds: SocketAddr, app: &str, certs: &std::path::Path) -> Mesh {
    let id = format!("sidecar~127.0.0.1~{app}-v1.default~default.svc.cluster.local");
    let mut bootstrap = Bootstrap::insecure(&xds.to_string(), id).unwrap();
    bootstrap
        .node
        .metadata
        .insert("NAMESPACE".into(), "default".into());
    bootstrap.node.metadata.insert(
        "LABELS".into(),
        serde_json::json!({"app": app, "version": "v1", "security.istio.io/tlsMode": "istio"}),
    );
    bootstrap.certificate_providers.insert(
        "default".into(),
        CertificateProvider {
            file_watcher: FileWatcher {
                certificate_file: Some(certs.join("cert-chain.pem")),
                private_key_file: Some(certs.join("key.pem")),
                ca_certificate_file: Some(certs.join("root-cert.pem")),
                refresh_interval: std::time::Duration::from_secs(60),
            },
        },
    );
    let labels: BTreeMap<String, String> =
        [("app".into(), app.into()), ("version".into(), "v1".into())].into();
    let workload = WorkloadMetadata::from_labels(
        &format!("{app}-v1"),
        "default",
        &format!("{app}-v1"),
        &labels,
    );
    Mesh::builder()
        .bootstrap(bootstrap)
        .workload(workload)
        .build()
        .unwrap()
}

/// The `istio_requests_total` series of `text` reported by `reporter`.
fn requests_total<'t>(text: &'t str, reporter: &str) -> Vec<&'t str> {
    let want = format!("reporter=\"{reporter}\"");
    text.lines()
        .filter(|l| l.starts_with("istio_requests_total{") && l.contains(&want))
        .collect()
}

/// Waits until `text()` has a `reporter` series with all of `labels`.
async fn wait_for_series<F, Fut>(what: &str, reporter: &str, labels: &[String], text: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let text = text().await;
            if requests_total(&text, reporter)
                .iter()
                .any(|l| labels.iter().all(|want| l.contains(want.as_str())))
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    if found.is_err() {
        let text = text().await;
        panic!(
            "{what}: no {reporter} series with {labels:?} in {:#?}",
            requests_total(&text, reporter)
        );
    }
}

/// The metrics of a library mesh, as its admin serves them.
async fn library_metrics(mesh: &Mesh) -> String {
    let admin = mesh
        .admin(prometheus_client::registry::Registry::default())
        .build();
    let res = admin.respond(&http::Request::get("/stats/prometheus").body(()).unwrap());
    let body = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

fn label(name: &str, value: &str) -> String {
    format!("{name}=\"{value}\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mesh_client_and_a_sidecar_are_two_halves_of_one_edge() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    certificates(dir, &[("productpage", PRODUCTPAGE), ("ratings", RATINGS)]);
    let (plane, xds) = control_plane(&[
        ("ratings.yaml", service("ratings")),
        ("details.yaml", service("details")),
    ])
    .await;

    // ratings: a plain application behind a sidecar.
    let ratings_app = app("ratings").await;
    let ratings = Sidecar::workload(dir, xds, "ratings", "v1", Some(ratings_app.port())).await;

    // details: the library's server, as workload details (the ratings
    // identity is the one it has certificates for).
    let details_mesh = library_mesh(xds, "details", &dir.join("ratings"));
    let details_server = details_mesh.server().build().unwrap();
    let details_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let details_addr = details_listener.local_addr().unwrap();
    let hello = tower::service_fn(|req: http::Request<mesh_tower::server::Body>| async move {
        let caller = req
            .extensions()
            .get::<ClientIdentity>()
            .map_or("-".into(), |c| c.0.to_string());
        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(format!(
            "details caller={caller}"
        )))))
    });
    {
        let server = details_server.clone();
        tokio::spawn(async move { server.serve(details_listener, hello).await });
    }

    plane.set_instances(
        "test",
        vec![
            instance("ratings", "ratings", ratings.inbound()),
            instance("details", "ratings", details_addr),
        ],
    );

    // productpage: the library's client, and a sidecar of the same
    // workload for the other direction.
    let productpage = library_mesh(xds, "productpage", &dir.join("productpage"));
    let client = productpage.reported(productpage.client());
    let productpage_sidecar = Sidecar::workload(dir, xds, "productpage", "v1", None).await;
    ratings.ready().await;
    let mut serving = details_server.serving_mode();
    tokio::time::timeout(
        WAIT,
        serving.wait_for(|m| *m == mesh_tower::server::ServingMode::Serving),
    )
    .await
    .expect("details serving")
    .unwrap();

    // MeshClient → ratings' sidecar → ratings.
    let req = http::Request::get("http://ratings:9080/ratings/0")
        .body(Full::<Bytes>::default())
        .unwrap();
    let res = tokio::time::timeout(WAIT, client.clone().oneshot(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    assert!(body.ends_with(&format!("URI={PRODUCTPAGE}")), "{body}");

    // productpage's sidecar → details' MeshServer.
    let (status, body) = get(
        productpage_sidecar.outbound(),
        "http://details:9080/details/0",
        None,
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (200, format!("details caller={PRODUCTPAGE}").as_str()),
        "{}",
        productpage_sidecar.log()
    );

    // Each edge, as each side reports it, with the other side's labels.
    let mtls = label("connection_security_policy", "mutual_tls");
    let from_productpage = [
        label("source_workload", "productpage-v1"),
        label("source_canonical_service", "productpage"),
        label("source_principal", PRODUCTPAGE),
    ];
    let ratings_edge: Vec<String> = from_productpage
        .iter()
        .cloned()
        .chain([
            label("destination_workload", "ratings-v1"),
            label("destination_canonical_service", "ratings"),
            label("response_code", "200"),
        ])
        .collect();
    wait_for_series("MeshClient", "source", &ratings_edge, || {
        library_metrics(&productpage)
    })
    .await;
    let ratings_inbound: Vec<String> = ratings_edge.iter().cloned().chain([mtls.clone()]).collect();
    wait_for_series(
        "ratings' sidecar",
        "destination",
        &ratings_inbound,
        || async { ratings.admin("/stats/prometheus").await.1 },
    )
    .await;

    let details_edge: Vec<String> = from_productpage
        .iter()
        .cloned()
        .chain([
            label("destination_workload", "details-v1"),
            label("destination_canonical_service", "details"),
            label("response_code", "200"),
        ])
        .collect();
    wait_for_series("productpage's sidecar", "source", &details_edge, || async {
        productpage_sidecar.admin("/stats/prometheus").await.1
    })
    .await;
    let details_inbound: Vec<String> = details_edge.iter().cloned().chain([mtls]).collect();
    wait_for_series(
        "details' MeshServer",
        "destination",
        &details_inbound,
        || library_metrics(&details_mesh),
    )
    .await;
}
