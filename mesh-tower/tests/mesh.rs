//! The `Mesh` handle: clients and servers it hands out share its identity
//! and discovery. Given a bootstrap as Istio's agent writes it (a control
//! plane and the workload's certificate files as its provider `default`),
//! its server presents that certificate and takes its mode and
//! authorization from the control plane's listener; its client dials the
//! mesh's mutual TLS with the same identity.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use mesh_core::policy::UpstreamTls;
use mesh_core::{Authority, ClusterPolicy, Endpoint, EndpointSet, StaticResolve};
use mesh_tower::server::ServingMode;
use mesh_tower::tls::{IdentityFiles, PeerIdentity};
use mesh_tower::{Mesh, MeshError};
use mesh_xds::Bootstrap;
use mesh_xds::ads::ResourceType;
use mesh_xds::bootstrap::{CertificateProvider, FileWatcher};
use mesh_xds::server::ResourceCache;
use mesh_xds::translate;
use tower::ServiceExt;

use support::pki::Ca;

mod support;

const RATINGS: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-ratings";
const REVIEWS: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";
const WAIT: Duration = Duration::from_secs(10);

/// `id`'s certificate, key and the root written into `dir`.
fn write_certs(ca: &Ca, id: &str, dir: &Path) -> IdentityFiles {
    let files = IdentityFiles::in_dir(dir);
    let (chain, key) = ca.issue(id);
    std::fs::write(&files.certificate_chain, chain).unwrap();
    std::fs::write(&files.private_key, key).unwrap();
    std::fs::write(&files.roots, ca.pem()).unwrap();
    files
}

/// A bootstrap for the ADS server at `xds`, with `files` as the
/// certificate provider `default`, as Istio's agent writes it.
fn bootstrap(xds: SocketAddr, files: Option<&IdentityFiles>) -> Bootstrap {
    let mut bootstrap = Bootstrap::insecure(
        &xds.to_string(),
        "sidecar~127.0.0.1~ratings-v1.default~default.svc.cluster.local",
    )
    .unwrap();
    if let Some(files) = files {
        bootstrap.certificate_providers.insert(
            "default".into(),
            CertificateProvider {
                file_watcher: FileWatcher {
                    certificate_file: Some(files.certificate_chain.clone()),
                    private_key_file: Some(files.private_key.clone()),
                    ca_certificate_file: Some(files.roots.clone()),
                    refresh_interval: Duration::from_secs(600),
                },
            },
        );
    }
    bootstrap
}

#[tokio::test]
async fn a_mesh_from_a_bootstrap_serves_and_dials_with_the_agents_certificates() {
    let ca = Ca::new();
    let tmp = tempfile::tempdir().unwrap();
    let files = write_certs(&ca, RATINGS, tmp.path());
    let cache = ResourceCache::new();
    let xds = support::serve_ads(&cache).await;
    let ratings = Mesh::builder()
        .bootstrap(bootstrap(xds, Some(&files)))
        .build()
        .unwrap();
    assert_eq!(
        ratings
            .identity()
            .unwrap()
            .current()
            .unwrap()
            .id()
            .to_string(),
        RATINGS
    );

    // Its server: the bootstrap's identity, the listener's STRICT mode.
    let server = ratings.server().build().unwrap();
    let addr = support::serve_hello(&server).await;
    let name = format!("{}{addr}", translate::SERVER_LISTENER_PREFIX);
    let inbound =
        translate::server_listener(&name, addr, &[], mesh_core::security::MtlsMode::Strict)
            .unwrap();
    cache.set(
        ResourceType::Listener,
        vec![translate::entry(&name, &inbound)],
    );
    let mut modes = server.serving_mode();
    tokio::time::timeout(WAIT, modes.wait_for(|m| *m == ServingMode::Serving))
        .await
        .expect("serving")
        .unwrap();

    // The xDS client's state on the admin: the listener ACKed, one stream.
    let admin = ratings
        .admin(prometheus_client::registry::Registry::default())
        .build();
    let req = http::Request::get("/stats/prometheus").body(()).unwrap();
    let text = admin
        .respond(&req)
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes();
    let text = String::from_utf8(text.to_vec()).unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in {text}"))
    };
    assert!(value("mesh_xds_acks_total{client=\"mesh\",type=\"LDS\"}") >= 1.0);
    assert_eq!(
        value("mesh_xds_nacks_total{client=\"mesh\",type=\"LDS\"}"),
        0.0
    );
    assert_eq!(value("mesh_xds_streams_total{client=\"mesh\"}"), 1.0);
    assert_eq!(value("mesh_xds_connected{client=\"mesh\"}"), 1.0);
    assert!(value("mesh_xds_seconds_since_last_accepted{client=\"mesh\"}") < 60.0);

    // A client of a mesh given its identity and discovery in code.
    let target: Authority = "ratings:9080".parse().unwrap();
    let resolve = StaticResolve::default();
    resolve.set(&target, EndpointSet::new([Endpoint::new(addr)]));
    let reviews = Mesh::builder()
        .resolve(resolve)
        .identity(ca.identity(REVIEWS))
        .build()
        .unwrap();
    let policy = ClusterPolicy {
        tls: Some(UpstreamTls {
            subject_alt_names: vec![RATINGS.into()],
            ..UpstreamTls::default()
        }),
        ..ClusterPolicy::default()
    };
    let client = reviews
        .client_builder()
        .cluster_policy(target, policy)
        .build::<Empty<Bytes>>();
    let req = http::Request::get("http://ratings:9080/")
        .body(Empty::new())
        .unwrap();
    let res = client.oneshot(req).await.unwrap();
    assert_eq!(
        res.extensions().get::<PeerIdentity>(),
        Some(&PeerIdentity(RATINGS.into()))
    );
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, format!("hello {REVIEWS}"));

    // Plain text: refused, as the listener says.
    let target: Authority = "ratings:9080".parse().unwrap();
    let resolve = StaticResolve::default();
    resolve.set(&target, EndpointSet::new([Endpoint::new(addr)]));
    let plain = Mesh::builder().resolve(resolve).build().unwrap();
    let req = http::Request::get("http://ratings:9080/")
        .body(Empty::new())
        .unwrap();
    assert!(plain.client::<Empty<Bytes>>().oneshot(req).await.is_err());
    assert_eq!(server.stats().plaintext_refused(), 1);
}

#[tokio::test]
async fn a_bootstrap_provider_without_files_is_an_error_naming_it() {
    let cache = ResourceCache::new();
    let xds = support::serve_ads(&cache).await;
    let mut broken = bootstrap(xds, None);
    broken.certificate_providers.insert(
        "default".into(),
        CertificateProvider {
            file_watcher: FileWatcher {
                certificate_file: None,
                private_key_file: None,
                ca_certificate_file: None,
                refresh_interval: Duration::from_secs(600),
            },
        },
    );
    let err = Mesh::builder().bootstrap(broken).build().unwrap_err();
    assert!(matches!(err, MeshError::Identity(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the xDS bootstrap's certificate provider `default` names no certificate, key and roots"
    );

    // No provider at all: a mesh without an identity.
    let mesh = Mesh::builder()
        .bootstrap(bootstrap(xds, None))
        .build()
        .unwrap();
    assert!(mesh.identity().is_none());
    assert!(mesh.ads().is_some());
}

/// Two meshes that know their workloads: the server's requests and the
/// reported client's are in each mesh's metrics, both ends of the edge
/// named, and the admin endpoint serves them.
#[tokio::test]
async fn meshes_that_know_their_workloads_report_the_edge_on_their_admin() {
    use prometheus_client::registry::Registry;

    let workload = |app: &str| support::workload(app, "v1");
    let ca = Ca::new();
    let ratings = Mesh::builder()
        .identity(ca.identity(RATINGS))
        .workload(workload("ratings"))
        .build()
        .unwrap();
    let server = ratings.server().build().unwrap();
    let addr = support::serve_hello(&server).await;

    let target: Authority = "ratings:9080".parse().unwrap();
    let resolve = StaticResolve::default();
    resolve.set(&target, EndpointSet::new([Endpoint::new(addr)]));
    let reviews = Mesh::builder()
        .resolve(resolve)
        .identity(ca.identity(REVIEWS))
        .workload(workload("reviews"))
        .build()
        .unwrap();
    let policy = ClusterPolicy {
        tls: Some(UpstreamTls {
            subject_alt_names: vec![RATINGS.into()],
            ..UpstreamTls::default()
        }),
        ..ClusterPolicy::default()
    };
    let client = reviews.reported(
        reviews
            .client_builder()
            .cluster_policy(target, policy)
            .build(),
    );
    let req = http::Request::get("http://ratings:9080/")
        .body(Empty::new())
        .unwrap();
    let res = client.oneshot(req).await.unwrap();
    res.into_body().collect().await.unwrap();

    let scrape = |mesh: &Mesh| {
        let admin = mesh.admin(Registry::default()).build();
        async move {
            let req = http::Request::get("/stats/prometheus").body(()).unwrap();
            let body = admin.respond(&req).into_body().collect().await.unwrap();
            String::from_utf8(body.to_bytes().to_vec()).unwrap()
        }
    };
    let edge = |reporter: &str| {
        format!(
            "reporter=\"{reporter}\",source_workload=\"reviews-v1\",source_canonical_service=\"reviews\""
        )
    };
    let (source, destination) = (scrape(&reviews).await, scrape(&ratings).await);
    for (text, reporter) in [(&source, "source"), (&destination, "destination")] {
        let line = text
            .lines()
            .find(|l| l.starts_with("istio_requests_total{"))
            .unwrap_or_else(|| panic!("no request counted: {text}"));
        assert!(line.contains(&edge(reporter)), "{line}");
        assert!(
            line.contains("destination_workload=\"ratings-v1\""),
            "{line}"
        );
        assert!(
            line.contains(&format!("destination_principal=\"{RATINGS}\"")),
            "{line}"
        );
        assert!(line.ends_with(" 1"), "{line}");
    }
    // The certificate's state, read at the scrape.
    let expiry = ratings.identity().unwrap().current().unwrap().not_after();
    let secs = expiry
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let line =
        format!("mesh_certificate_expiration_timestamp_seconds{{spiffe_id=\"{RATINGS}\"}} {secs}");
    assert!(
        destination.lines().any(|l| l.starts_with(&line)),
        "{destination}"
    );
    assert!(
        destination.contains(&format!(
            "mesh_certificate_reload_failing{{spiffe_id=\"{RATINGS}\"}} 0"
        )),
        "{destination}"
    );
}
