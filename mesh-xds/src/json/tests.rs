//! Resources as mesh-xds writes them, read back as JSON field by field.

use std::time::Duration;

use crate::translate::{self, ServicePort};
use envoy_types::pb::envoy::config::listener::v3::Listener;
use mesh_core::policy::{LoadBalancer, PeakEwma, RetryPolicy};
use mesh_core::route::{
    AbortSource, FaultAbort, FaultPolicy, Forward, Percent, Route, RouteTable, VirtualHost,
};
use mesh_core::{Cluster, Endpoint, EndpointSet, GrpcCode, MeshConfig};
use prost_reflect::prost::Message;
use serde_json::{Value, json};

use super::*;

const HOST: &str = "reviews.default.svc.cluster.local";
const HCM: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

/// Port 9080 of reviews: a route to v1 with a 3 s timeout and a fault
/// that aborts 1 % of requests with gRPC's UNAVAILABLE, and v1 balanced by least
/// request.
fn reviews() -> ServicePort {
    let v1 = format!("outbound||v1|{HOST}");
    let mut forward = Forward::to(v1.as_str());
    forward.timeout = Some(Some(Duration::from_secs(3)));
    let mut route = Route::forward(forward);
    route.fault = Some(FaultPolicy {
        abort: Some(FaultAbort {
            abort: AbortSource::Grpc(GrpcCode::UNAVAILABLE),
            percent: Percent::from_ppm(10_000),
        }),
        ..FaultPolicy::default()
    });
    let routes =
        RouteTable::new(vec![VirtualHost::new(HOST, [HOST, "reviews"], vec![route])]).unwrap();
    let mut cluster = Cluster::named(&v1);
    cluster.policy.load_balancer = LoadBalancer::LeastRequest;
    let config = MeshConfig::new(routes, [cluster]).unwrap();
    translate::service_port(&config, "reviews:9080", HOST, 9080).unwrap()
}

fn json_of<T: Message + prost_reflect::prost::Name>(m: &T) -> Value {
    let (_, any) = translate::entry("", m);
    resource_json(&any).unwrap()
}

#[test]
fn a_listener_has_its_connection_manager_expanded() {
    let json = json_of(&reviews().listener);
    assert_eq!(
        json["@type"],
        "type.googleapis.com/envoy.config.listener.v3.Listener"
    );
    assert_eq!(json["name"], "reviews:9080");
    let hcm = &json["apiListener"]["apiListener"];
    assert_eq!(hcm["@type"], HCM);
    assert_eq!(
        hcm["rds"]["routeConfigName"],
        format!("outbound|9080||{HOST}")
    );
    assert_eq!(hcm["rds"]["configSource"], json!({"ads": {}}));
    let filters: Vec<(&Value, &Value)> = hcm["httpFilters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (&f["name"], &f["typedConfig"]["@type"]))
        .collect();
    assert_eq!(
        filters,
        [
            (
                &json!("envoy.filters.http.fault"),
                &json!("type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault")
            ),
            (
                &json!("envoy.filters.http.router"),
                &json!("type.googleapis.com/envoy.extensions.filters.http.router.v3.Router")
            ),
        ]
    );
}

#[test]
fn a_route_has_its_timeout_as_a_string_and_its_fault_expanded() {
    let json = json_of(&reviews().route_configuration);
    let vh = &json["virtualHosts"][0];
    assert_eq!(vh["domains"][1], format!("{HOST}:9080"));
    let route = &vh["routes"][0];
    assert_eq!(
        route["route"]["cluster"],
        format!("outbound|9080|v1|{HOST}")
    );
    assert_eq!(route["route"]["timeout"], "3s");
    let fault = &route["typedPerFilterConfig"]["envoy.filters.http.fault"];
    assert_eq!(
        fault["@type"],
        "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
    );
    assert_eq!(
        fault["abort"],
        json!({"grpcStatus": 14, "percentage": {"numerator": 10000, "denominator": "MILLION"}})
    );
}

#[test]
fn a_cluster_has_eds_over_ads_and_its_policies_by_name() {
    let json = json_of(&reviews().clusters[0]);
    let name = format!("outbound|9080|v1|{HOST}");
    assert_eq!(json["name"], name);
    assert_eq!(json["type"], "EDS");
    assert_eq!(
        json["edsClusterConfig"],
        json!({"edsConfig": {"ads": {}}, "serviceName": name})
    );
    assert_eq!(json["connectTimeout"], "10s");
    assert_eq!(json["lbPolicy"], "LEAST_REQUEST");
    assert_eq!(json["outlierDetection"]["baseEjectionTime"], "30s");
    assert_eq!(json["outlierDetection"]["consecutive5xx"], 5);
    let policies = &json["loadBalancingPolicy"]["policies"];
    assert_eq!(
        policies[0]["typedExtensionConfig"]["typedConfig"]["@type"],
        "type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest"
    );
    assert_eq!(
        policies[1]["typedExtensionConfig"]["typedConfig"]["@type"],
        "type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin"
    );
}

#[test]
fn a_typed_struct_policy_is_expanded_with_its_struct() {
    let mut c = Cluster::named("outbound|9080|v1|reviews");
    c.policy.retry = RetryPolicy::disabled();
    c.policy.load_balancer = LoadBalancer::PeakEwma(PeakEwma::default());
    let json = json_of(&translate::cluster(&c).unwrap());
    let typed = &json["loadBalancingPolicy"]["policies"][0]["typedExtensionConfig"]["typedConfig"];
    assert_eq!(
        typed["@type"],
        "type.googleapis.com/xds.type.v3.TypedStruct"
    );
    assert_eq!(
        typed["value"],
        json!({"default_rtt": "0.030s", "decay": "10s"})
    );
    assert!(typed["typeUrl"].as_str().unwrap().ends_with("PeakEwma"));
}

#[test]
fn a_load_assignment_has_its_endpoints_addresses() {
    let set = EndpointSet::new([Endpoint::new("10.0.0.1:9080".parse().unwrap())
        .with_weight(3)
        .with_locality_weight(1)
        .with_label("version", "v1")]);
    let json = json_of(&translate::load_assignment("outbound|9080|v1|reviews", &set).unwrap());
    assert_eq!(json["clusterName"], "outbound|9080|v1|reviews");
    let lb = &json["endpoints"][0]["lbEndpoints"][0];
    assert_eq!(
        lb["endpoint"]["address"]["socketAddress"],
        json!({"address": "10.0.0.1", "portValue": 9080})
    );
    assert_eq!(lb["loadBalancingWeight"], 3);
    assert_eq!(
        lb["metadata"]["filterMetadata"]["envoy.lb"],
        json!({"version": "v1"})
    );
}

#[test]
fn an_unknown_type_is_named() {
    let any = Any {
        type_url: "type.googleapis.com/mesh.Unheard".into(),
        value: vec![],
    };
    let err = resource_json(&any).unwrap_err();
    assert!(matches!(err, JsonError::UnknownType { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "no descriptor for type.googleapis.com/mesh.Unheard"
    );
}

/// `reviews:9080`, its connection manager holding `inner` instead of
/// itself.
fn listener_holding(inner: Any) -> Any {
    let mut l: Listener = reviews().listener;
    l.api_listener.as_mut().unwrap().api_listener = Some(inner);
    translate::entry(&l.name, &l).1
}

#[test]
fn an_unknown_type_inside_is_named() {
    let err = resource_json(&listener_holding(Any {
        type_url: "type.googleapis.com/mesh.Unheard".into(),
        value: vec![1, 2, 3],
    }))
    .unwrap_err();
    assert_eq!(err.type_url(), "type.googleapis.com/mesh.Unheard");
}

#[test]
fn bytes_that_are_not_their_type_are_named() {
    // Field 1 (a Listener's name) as a varint, where a string must be.
    let err = resource_json(&listener_holding(Any {
        type_url: "type.googleapis.com/envoy.config.listener.v3.Listener".into(),
        value: vec![0x08, 0x01],
    }))
    .unwrap_err();
    assert!(matches!(err, JsonError::Decode { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "type.googleapis.com/envoy.config.listener.v3.Listener does not decode"
    );
}

#[test]
fn a_field_the_descriptors_lack_is_refused_not_dropped() {
    let mut l = reviews().listener;
    let mut hcm = l.api_listener.take().unwrap().api_listener.unwrap();
    // Field 999 as a varint: no HttpConnectionManager field has it.
    hcm.value.extend([0xb8, 0x3e, 0x01]);
    let err = resource_json(&listener_holding(hcm)).unwrap_err();
    let JsonError::UnknownField {
        type_url,
        message,
        number,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(type_url, HCM);
    assert_eq!(
        message,
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    );
    assert_eq!(*number, 999);
}

#[test]
fn private_keys_are_redacted_in_secrets_and_in_nested_contexts() {
    use mesh_core::policy::{Pem, ServerTls};
    let mut tls = ServerTls {
        certificate_chain: Pem::Inline("THE-CHAIN".into()),
        private_key: Pem::Inline("THE-KEY".into()),
        ..ServerTls::default()
    };
    // Inline in a listener's transport socket, an Any inside an Any.
    let chain = translate::EnvoyChain {
        routes: "https.443",
        server_names: &[],
        tls: Some(&tls),
    };
    let addr = "127.0.0.1:443".parse().unwrap();
    let listener = translate::envoy_listener_chains("l", addr, "gw", &[chain]);
    let json = json_of(&listener).to_string();
    assert!(
        json.contains("THE-CHAIN") && !json.contains("THE-KEY"),
        "{json}"
    );
    assert!(json.contains("[redacted]"), "{json}");
    // A file's name is no secret.
    let files = ServerTls {
        certificate_chain: "/certs/chain.pem".into(),
        private_key: "/certs/key.pem".into(),
        ..ServerTls::default()
    };
    let chain = translate::EnvoyChain {
        routes: "https.443",
        server_names: &[],
        tls: Some(&files),
    };
    let listener = translate::envoy_listener_chains("l", addr, "gw", &[chain]);
    assert!(json_of(&listener).to_string().contains("/certs/key.pem"));
    // An SDS secret.
    tls.credential = Some("edge".into());
    let secret = &translate::server_tls_secrets(&tls)[0];
    let json = json_of(secret);
    assert_eq!(json["name"], "kubernetes://edge");
    assert_eq!(
        json["tlsCertificate"],
        json!({"certificateChain": {"inlineString": "THE-CHAIN"}, "privateKey": {"inlineString": "[redacted]"}})
    );
}
