//! `mesh-control serve --ca DIR` serving ADS over mutual TLS, as istiod
//! serves 15012: a client without a certificate, or with one from another
//! root, is refused at the handshake; a client is served its
//! certificate's namespace's view, and one claiming another namespace is
//! refused. The plain-text port beside it believes what a node says.

mod support;

use std::path::Path;
use std::time::Duration;

use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use futures_util::StreamExt;
use mesh_control::ca::Ca;
use mesh_xds::ads::ResourceType;
use prost::Message;
use support::TempDir;
use support::control::{Control, WAIT};
use tonic::transport::{Certificate, Endpoint, Identity};

const RATINGS: &str = "ratings.shop.svc.cluster.local:9080";
const REVIEWS: &str = "reviews.default.svc.cluster.local:9080";

/// ratings, seen only in its namespace (shop); reviews, seen everywhere.
const SERVICES: &str = "apiVersion: v1\nkind: Service\n\
    metadata:\n  name: ratings\n  namespace: shop\n  annotations: {networking.istio.io/exportTo: .}\n\
    spec:\n  ports: [{name: http, port: 9080}]\n---\n\
    apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: default}\n\
    spec:\n  selector: {app: reviews}\n  ports: [{name: http, port: 9080}]\n";

/// The names of the listeners a node `namespace` (unsaid when `None`)
/// is first served, asking for ratings and reviews at `url`, with the
/// workload certificate in `certs` trusting the root in `root`; or why
/// it was not served.
async fn listeners(
    url: &str,
    root: &Path,
    certs: Option<&Path>,
    namespace: Option<&str>,
) -> Result<Vec<String>, String> {
    let read = |path: &Path| std::fs::read_to_string(path).unwrap();
    let mut tls =
        tonic::transport::ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(root)));
    if let Some(dir) = certs {
        tls = tls.identity(Identity::from_pem(
            read(&dir.join("cert-chain.pem")),
            read(&dir.join("key.pem")),
        ));
    }
    let mut endpoint = Endpoint::from_shared(url.to_owned()).unwrap();
    if url.starts_with("https") {
        endpoint = endpoint.tls_config(tls).unwrap();
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let mut ads = AggregatedDiscoveryServiceClient::new(channel);
    let mut node = mesh_control::node::node("ratings-client", false, &[]);
    if let Some(ns) = namespace {
        let metadata = node.metadata.get_or_insert_default();
        metadata
            .fields
            .insert("NAMESPACE".into(), prost_types_string(ns));
    }
    let request = DiscoveryRequest {
        node: Some(node),
        resource_names: vec![RATINGS.into(), REVIEWS.into()],
        type_url: ResourceType::Listener.type_url().into(),
        ..DiscoveryRequest::default()
    };
    let call = async {
        let mut responses = ads
            .stream_aggregated_resources(
                futures_util::stream::iter([request]).chain(futures_util::stream::pending()),
            )
            .await?
            .into_inner();
        responses.message().await
    };
    let response = tokio::time::timeout(WAIT, call)
        .await
        .map_err(|_| "no answer".to_owned())?
        .map_err(|status| format!("{:?}: {}", status.code(), status.message()))?
        .ok_or("the stream ended")?;
    let mut names: Vec<String> = response
        .resources
        .iter()
        .map(|any| Listener::decode(&any.value[..]).unwrap().name)
        .collect();
    names.sort();
    Ok(names)
}

fn prost_types_string(s: &str) -> envoy_types::pb::google::protobuf::Value {
    use envoy_types::pb::google::protobuf::value::Kind;
    envoy_types::pb::google::protobuf::Value {
        kind: Some(Kind::StringValue(s.into())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mutual_tls_port_serves_each_client_its_certificates_view() {
    let tmp = TempDir::new("secure-xds");
    let ca = Ca::init(tmp.join("ca")).unwrap();
    let day = Duration::from_secs(24 * 3600);
    for (dir, id) in [
        (
            "default",
            "spiffe://cluster.local/ns/default/sa/productpage",
        ),
        ("shop", "spiffe://cluster.local/ns/shop/sa/client"),
    ] {
        ca.issue(id, day).unwrap().write(tmp.join(dir)).unwrap();
    }
    let other = Ca::init(tmp.join("other-ca")).unwrap();
    other
        .issue("spiffe://cluster.local/ns/shop/sa/client", day)
        .unwrap()
        .write(tmp.join("stranger"))
        .unwrap();
    let config = tmp.join("config");
    std::fs::create_dir_all(&config).unwrap();
    let reviews = support::control::upstream("reviews-v1").await;
    let entry = format!(
        "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
         metadata: {{name: reviews-1, namespace: default}}\n\
         spec:\n  address: {}\n  ports: {{http: {}}}\n  labels: {{app: reviews}}\n",
        reviews.ip(),
        reviews.port()
    );
    std::fs::write(config.join("services.yaml"), format!("{SERVICES}{entry}")).unwrap();
    let ca_dir = tmp.join("ca");
    let control = Control::start_with(
        &config,
        &[
            "--ca",
            ca_dir.to_str().unwrap(),
            "--xds-tls-addr",
            "127.0.0.1:0",
        ],
    );
    let tls = format!("https://{}", control.xds_tls.expect("the mutual TLS port"));
    let root = tmp.join("default").join("root-cert.pem");
    let (default, shop) = (tmp.join("default"), tmp.join("shop"));

    // Each is served its own namespace's view, whatever it leaves unsaid.
    let seen = listeners(&tls, &root, Some(&default), None).await.unwrap();
    assert_eq!(seen, [REVIEWS]);
    let seen = listeners(&tls, &root, Some(&shop), None).await.unwrap();
    assert_eq!(seen, [RATINGS, REVIEWS]);
    // A node may not claim a namespace its certificate is not of.
    let refused = listeners(&tls, &root, Some(&default), Some("shop"))
        .await
        .unwrap_err();
    assert!(
        refused.starts_with("PermissionDenied")
            && refused.contains("says it is in namespace shop")
            && refused.contains("ns/default/sa/productpage) is of namespace default"),
        "{refused}"
    );
    // No certificate, or one of another root: no ADS at all.
    for certs in [None, Some(tmp.join("stranger"))] {
        let refused = listeners(&tls, &root, certs.as_deref(), Some("shop")).await;
        assert!(refused.is_err(), "{certs:?}: {refused:?}");
    }
    // A MeshClient dials it with the bootstrap's `tls` channel
    // credentials (gRFC A65), and routes by what it is served.
    let bootstrap = serde_json::json!({
        "xds_servers": [{
            "server_uri": control.xds_tls.unwrap().to_string(),
            "channel_creds": [{"type": "tls", "config": {
                "ca_certificate_file": root,
                "certificate_file": default.join("cert-chain.pem"),
                "private_key_file": default.join("key.pem"),
            }}],
            "server_features": ["xds_v3"],
        }],
        "node": {"id": "productpage-1"},
    });
    let bootstrap = mesh_xds::Bootstrap::from_json("test", &bootstrap.to_string()).unwrap();
    let client = support::mesh::client_with(&bootstrap);
    support::mesh::wait_for_version(&client, "reviews-v1").await;

    // The plain-text port takes the node at its word.
    let plain = format!("http://{}", control.xds);
    let seen = listeners(&plain, &root, None, Some("shop")).await.unwrap();
    assert_eq!(seen, [RATINGS, REVIEWS]);
}
