//! Failing closed: a request that should travel in TLS a `MeshClient`
//! cannot dial (it has no workload identity here) fails with the reason
//! and never reaches the server in plain text, whatever asked for the
//! TLS: an Istio DestinationRule, or an xDS cluster's transport socket.

/// Why a client without a workload identity refuses.
const NO_IDENTITY: &str = "this client has no workload identity to dial it with \
    (MeshClientBuilder::identity, or the xDS bootstrap's certificate provider `default`)";

#[path = "../../mesh-xds/tests/support/mod.rs"]
mod ads;
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use envoy_types::pb::envoy::config::cluster::v3::cluster::TransportSocketMatch;
use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{
    Address, AggregatedConfigSource, ConfigSource, Metadata, SocketAddress, TransportSocket,
    address, config_source::ConfigSourceSpecifier, socket_address, transport_socket,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateProviderPluginInstance, CertificateValidationContext, CommonTlsContext,
    UpstreamTlsContext, common_tls_context::ValidationContextType,
};
use envoy_types::pb::google::protobuf::{Any, Struct, UInt32Value, Value, value};
use http_body_util::{BodyExt, Full};
use mesh_core::StaticResolve;
use mesh_tower::MeshClient;
use mesh_xds::Bootstrap;
use mesh_xds::ads::{AdsClient, Backoff, ResourceType};
use prost::{Message, Name};
use support::{Server, resolve};
use tower::ServiceExt;

use ads::resources::{listener, route_config_by_prefix};
use ads::{AdsServer, Resource, WAIT};

/// One GET: the body of the answer, or the error in words.
async fn get(client: &MeshClient<Full<Bytes>>, uri: &str) -> Result<String, String> {
    let req = http::Request::get(uri).body(Full::default()).unwrap();
    let res = client
        .clone()
        .oneshot(req)
        .await
        .map_err(|e| e.to_string())?;
    let body = res.into_body().collect().await.map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned())
}

#[tokio::test]
async fn a_destination_rule_asking_for_mutual_tls_fails_its_requests() {
    let reviews = Server::start("reviews", Duration::ZERO).await;
    let ratings = Server::start("ratings", Duration::ZERO).await;
    let dir = std::env::temp_dir().join(format!("mesh-tls-required-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rules.yaml");
    std::fs::write(
        &file,
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
         metadata: {name: reviews, namespace: default}\n\
         spec:\n  host: reviews\n  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL}\n",
    )
    .unwrap();
    let (config, warnings) = mesh_tower::istio::load(&file).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    // The warning says what happens instead.
    assert!(
        warnings.iter().any(|w| w
            .to_string()
            .contains("fail rather than go out in plain text")),
        "{warnings:?}"
    );
    let discovery = resolve("reviews.default.svc.cluster.local:9080", &[&reviews]);
    discovery.set(
        &"ratings:9080".parse().unwrap(),
        mesh_core::EndpointSet::new([ratings.endpoint()]),
    );
    let client: MeshClient<Full<Bytes>> = MeshClient::builder(discovery).config(config).build();
    for _ in 0..3 {
        let err = get(&client, "http://reviews:9080/").await.unwrap_err();
        assert_eq!(
            err,
            format!(
                "cluster outbound|||reviews.default.svc.cluster.local: TLS required, and \
                 {NO_IDENTITY}; the request is not sent in plain text"
            )
        );
    }
    assert_eq!(reviews.hits(), 0);
    // A service without the rule is unaffected.
    assert_eq!(
        get(&client, "http://ratings:9080/").await.unwrap(),
        "ratings:0"
    );
    assert_eq!(
        client.tls_refusals(),
        [("outbound|||reviews.default.svc.cluster.local".to_owned(), 3)].into()
    );
}

const MTLS: &str = "outbound|9080|mtls|reviews.default.svc.cluster.local";
const AUTO: &str = "outbound|9080|auto|reviews.default.svc.cluster.local";

fn any<T: Message + Name>(m: &T) -> Any {
    Any {
        type_url: T::type_url(),
        value: m.encode_to_vec(),
    }
}

/// The mesh's mutual TLS as istiod writes it for proxyless gRPC: the
/// certificate provider instance `default`.
fn mutual_tls() -> TransportSocket {
    let instance = |certificate_name: &str| CertificateProviderPluginInstance {
        instance_name: "default".into(),
        certificate_name: certificate_name.into(),
    };
    let validation = CertificateValidationContext {
        ca_certificate_provider_instance: Some(instance("ROOTCA")),
        ..Default::default()
    };
    let context = UpstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_provider_instance: Some(instance("default")),
            validation_context_type: Some(ValidationContextType::ValidationContext(validation)),
            ..Default::default()
        }),
        ..Default::default()
    };
    TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(any(&context))),
    }
}

/// An EDS cluster over ADS with `tls` for every endpoint, or Istio's auto
/// mTLS: mutual TLS for endpoints labelled `tlsMode: istio`, plain text
/// for the rest.
fn cluster(name: &str, tls: Option<TransportSocket>) -> Resource {
    let auto = tls.is_none();
    let c = Cluster {
        name: name.into(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32,
        )),
        eds_cluster_config: Some(cluster::EdsClusterConfig {
            eds_config: Some(ConfigSource {
                config_source_specifier: Some(ConfigSourceSpecifier::Ads(
                    AggregatedConfigSource {},
                )),
                ..Default::default()
            }),
            service_name: name.into(),
        }),
        transport_socket: tls,
        transport_socket_matches: if auto {
            vec![
                TransportSocketMatch {
                    name: "tlsMode-istio".into(),
                    r#match: Some(labels(&[("tlsMode", "istio")])),
                    transport_socket: Some(mutual_tls()),
                },
                TransportSocketMatch {
                    name: "tlsMode-disabled".into(),
                    r#match: Some(Struct::default()),
                    transport_socket: Some(TransportSocket {
                        name: "envoy.transport_sockets.raw_buffer".into(),
                        config_type: None,
                    }),
                },
            ]
        } else {
            vec![]
        },
        ..Default::default()
    };
    Resource {
        name: name.into(),
        any: any(&c),
    }
}

fn labels(pairs: &[(&str, &str)]) -> Struct {
    Struct {
        fields: pairs
            .iter()
            .map(|(k, v)| {
                let v = Value {
                    kind: Some(value::Kind::StringValue((*v).into())),
                };
                ((*k).into(), v)
            })
            .collect(),
    }
}

/// Endpoints at `addrs`, with Istio's transport socket labels where given.
fn endpoints(name: &str, addrs: &[(SocketAddr, Option<&str>)]) -> Resource {
    let lb_endpoints = addrs
        .iter()
        .map(|(addr, tls_mode)| LbEndpoint {
            host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                address: Some(Address {
                    address: Some(address::Address::SocketAddress(SocketAddress {
                        address: addr.ip().to_string(),
                        port_specifier: Some(socket_address::PortSpecifier::PortValue(
                            addr.port().into(),
                        )),
                        ..Default::default()
                    })),
                }),
                ..Default::default()
            })),
            metadata: tls_mode.map(|mode| Metadata {
                filter_metadata: [(
                    "envoy.transport_socket_match".to_owned(),
                    labels(&[("tlsMode", mode)]),
                )]
                .into(),
                ..Default::default()
            }),
            load_balancing_weight: Some(UInt32Value { value: 1 }),
            ..Default::default()
        })
        .collect();
    let assignment = ClusterLoadAssignment {
        cluster_name: name.into(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints,
            load_balancing_weight: Some(UInt32Value {
                value: addrs.len() as u32,
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    Resource {
        name: name.into(),
        any: any(&assignment),
    }
}

#[tokio::test]
async fn xds_clusters_with_tls_are_never_dialled_in_plain_text() {
    let mtls = Server::start("mtls", Duration::ZERO).await;
    let sidecar = Server::start("sidecar", Duration::ZERO).await;
    let plain = Server::start("plain", Duration::ZERO).await;
    let server = AdsServer::start().await;
    let host = "reviews.default.svc.cluster.local:9080";
    server.set(
        ResourceType::Listener.type_url(),
        vec![listener(host, "reviews")],
    );
    server.set(
        ResourceType::RouteConfig.type_url(),
        vec![route_config_by_prefix(
            "reviews",
            &[host],
            &[("/mtls", MTLS), ("/", AUTO)],
        )],
    );
    server.set(
        ResourceType::Cluster.type_url(),
        vec![cluster(MTLS, Some(mutual_tls())), cluster(AUTO, None)],
    );
    server.set(
        ResourceType::LoadAssignment.type_url(),
        vec![
            endpoints(MTLS, &[(mtls.addr, None)]),
            endpoints(AUTO, &[(sidecar.addr, Some("istio")), (plain.addr, None)]),
        ],
    );
    let bootstrap = Bootstrap::insecure(
        &server.authority(),
        "sidecar~127.0.0.1~productpage.default~default.svc.cluster.local",
    )
    .unwrap();
    let ads = AdsClient::new(&bootstrap)
        .with_backoff(Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
        })
        .spawn()
        .unwrap();
    let client: MeshClient<Full<Bytes>> = MeshClient::builder(StaticResolve::default())
        .xds(ads)
        .build();

    let uri = format!("http://{host}/mtls");
    let err = tokio::time::timeout(WAIT, get(&client, &uri))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        err,
        format!(
            "cluster {MTLS}: TLS required, and {NO_IDENTITY}; the request is not sent in \
             plain text"
        )
    );

    // Auto mTLS: the endpoint with a sidecar must get mutual TLS and is
    // refused; the other takes plain text.
    let (mut served, mut refused) = (0, 0);
    for _ in 0..20 {
        match get(&client, &format!("http://{host}/")).await {
            Ok(body) => {
                assert_eq!(body, "plain:0");
                served += 1;
            }
            Err(e) => {
                assert!(
                    e.starts_with(&format!("cluster {AUTO}: TLS required")),
                    "{e}"
                );
                refused += 1;
            }
        }
    }
    assert!(
        served > 0 && refused > 0,
        "{served} served, {refused} refused"
    );
    assert_eq!((mtls.hits(), sidecar.hits()), (0, 0));
    assert_eq!(client.tls_refusals()[MTLS], 1);
    assert_eq!(client.tls_refusals()[AUTO], refused);

    // The plain endpoint gets a sidecar, at the same address: from then
    // on it must get mutual TLS too, and is refused.
    server.set(
        ResourceType::LoadAssignment.type_url(),
        vec![
            endpoints(MTLS, &[(mtls.addr, None)]),
            endpoints(AUTO, &[(plain.addr, Some("istio"))]),
        ],
    );
    // Until then, round robin alternates the refused sidecar and the
    // plain endpoint: three refusals in a row say the change is in.
    let refused_at_last = tokio::time::timeout(WAIT, async {
        let mut in_a_row = 0;
        while in_a_row < 3 {
            match get(&client, &format!("http://{host}/")).await {
                Ok(_) => in_a_row = 0,
                Err(_) => in_a_row += 1,
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(refused_at_last.is_ok(), "still plain text to the sidecar");
    let hits = plain.hits();
    for _ in 0..5 {
        let e = get(&client, &format!("http://{host}/")).await.unwrap_err();
        assert!(
            e.starts_with(&format!("cluster {AUTO}: TLS required")),
            "{e}"
        );
    }
    assert_eq!(plain.hits(), hits);
}

/// An xDS client takes its workload certificate from the bootstrap's
/// certificate provider `default`, as Istio's agent writes it; while its
/// files do not load (an agent that has not written them yet), requests
/// that need mutual TLS fail before connecting, naming the file.
#[tokio::test]
async fn a_bootstrap_certificate_that_does_not_load_is_the_reason_given() {
    use mesh_xds::bootstrap::{CertificateProvider, FileWatcher};

    let mtls = Server::start("mtls", Duration::ZERO).await;
    let server = AdsServer::start().await;
    let host = "reviews.default.svc.cluster.local:9080";
    server.set(
        ResourceType::Listener.type_url(),
        vec![listener(host, "reviews")],
    );
    server.set(
        ResourceType::RouteConfig.type_url(),
        vec![route_config_by_prefix("reviews", &[host], &[("/", MTLS)])],
    );
    server.set(
        ResourceType::Cluster.type_url(),
        vec![cluster(MTLS, Some(mutual_tls()))],
    );
    server.set(
        ResourceType::LoadAssignment.type_url(),
        vec![endpoints(MTLS, &[(mtls.addr, None)])],
    );
    let dir = tempfile::tempdir().unwrap();
    let mut bootstrap = Bootstrap::insecure(
        &server.authority(),
        "sidecar~127.0.0.1~productpage.default~default.svc.cluster.local",
    )
    .unwrap();
    let missing = dir.path().join("cert-chain.pem");
    bootstrap.certificate_providers.insert(
        "default".into(),
        CertificateProvider {
            file_watcher: FileWatcher {
                certificate_file: Some(missing.clone()),
                private_key_file: Some(dir.path().join("key.pem")),
                ca_certificate_file: Some(dir.path().join("root-cert.pem")),
                refresh_interval: Duration::from_secs(600),
            },
        },
    );
    let ads = AdsClient::new(&bootstrap).spawn().unwrap();
    let client: MeshClient<Full<Bytes>> = MeshClient::builder(StaticResolve::default())
        .xds(ads)
        .build();
    let req = http::Request::get(format!("http://{host}/"))
        .body(Full::default())
        .unwrap();
    let err = tokio::time::timeout(WAIT, client.clone().oneshot(req))
        .await
        .unwrap()
        .unwrap_err();
    // The reason, under the connection failure it is.
    let chain = support::error_chain(&*err);
    assert!(
        chain.contains("this workload's certificate has not loaded: "),
        "{chain}"
    );
    assert!(chain.contains(&missing.display().to_string()), "{chain}");
    assert_eq!(mtls.hits(), 0);
}
