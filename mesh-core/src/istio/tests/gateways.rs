//! Gateways: how they are read, and which proxies implement them.

use std::collections::BTreeMap;

use super::*;
use crate::istio::{ServerTLSMode, TLSProtocol};

/// The Gateway `ingress` of `default` for the proxies labelled
/// `istio: ingressgateway`, serving every host on port 8080 and
/// `*.example.com` with TLS on 8443.
const INGRESS: &str = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: ingress}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 8080, name: http, protocol: HTTP}\n    hosts: ['*']\n  - port: {number: 8443, name: https, protocol: HTTPS}\n    hosts: ['*.example.com']\n    tls: {mode: SIMPLE, credentialName: example-cert}\n";

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn a_gateway_is_read_whole() {
    let (resources, warnings) = read(&format!(
        "{INGRESS}  - port: {{number: 80, name: redirect, protocol: HTTP, targetPort: 8081}}\n    name: plain\n    bind: 0.0.0.0\n    hosts: [prod/app.example.com]\n    tls: {{httpsRedirect: true, minProtocolVersion: TLSV1_2}}\n    colour: blue\n"
    ));
    let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "test.yaml, document 1 (Gateway default/ingress), line 17, spec.servers[2].colour: unknown field; ignored",
            "test.yaml, document 1 (Gateway default/ingress), line 16, spec.servers[2].tls.httpsRedirect: the routes converted for the gateway do not redirect to HTTPS; requests on this port are routed as on the others",
        ]
    );
    let gw = &resources.gateways[0].resource;
    assert_eq!(gw.qualified_name(), "default/ingress");
    assert_eq!(gw.spec.selector, labels(&[("istio", "ingressgateway")]));
    let servers = &gw.spec.servers;
    assert_eq!(servers.len(), 3);
    let port = servers[0].port.as_ref().expect("a port");
    assert_eq!((port.number, port.name.as_str()), (8080, "http"));
    assert_eq!(port.protocol, "HTTP");
    let tls = servers[1].tls.as_ref().expect("TLS");
    assert_eq!(tls.mode, Some(ServerTLSMode::Simple));
    assert_eq!(tls.credential_name, "example-cert");
    let plain = &servers[2];
    assert_eq!(plain.port.as_ref().unwrap().target_port, 8081);
    assert_eq!(
        (plain.name.as_str(), plain.bind.as_str()),
        ("plain", "0.0.0.0")
    );
    assert_eq!(plain.hosts, ["prod/app.example.com"]);
    let tls = plain.tls.as_ref().unwrap();
    assert!(tls.https_redirect);
    assert_eq!(tls.min_protocol_version, Some(TLSProtocol::V1_2));
    // The Kubernetes Gateway API's Gateway is another kind.
    let (resources, warnings) = read(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: k8s}\nspec: {}\n",
    );
    assert!(resources.gateways.is_empty());
    assert!(
        warnings[0].message.contains("is not Istio's"),
        "{warnings:?}"
    );
}

#[test]
fn a_proxy_implements_the_gateways_its_labels_select() {
    let (resources, _) = read(&format!(
        "{INGRESS}---\napiVersion: networking.istio.io/v1beta1\nkind: Gateway\nmetadata: {{name: egress, namespace: istio-system}}\nspec:\n  selector: {{istio: egressgateway}}\n  servers: [{{port: {{number: 80, name: http, protocol: HTTP}}, hosts: ['*']}}]\n---\napiVersion: networking.istio.io/v1alpha3\nkind: Gateway\nmetadata: {{name: everywhere, namespace: edge}}\nspec:\n  servers: [{{port: {{number: 80, name: http, protocol: HTTP}}, hosts: ['*']}}]\n---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: canary}}\nspec:\n  selector: {{istio: ingressgateway, track: canary}}\n  servers: [{{port: {{number: 80, name: http, protocol: HTTP}}, hosts: ['*']}}]\n"
    ));
    let names = |pairs: &[(&str, &str)]| -> Vec<String> {
        resources
            .gateways_for(&labels(pairs))
            .iter()
            .map(|g| g.resource.qualified_name())
            .collect()
    };
    // In any namespace; one without a selector is every gateway's.
    assert_eq!(
        names(&[("istio", "ingressgateway"), ("app", "x")]),
        ["default/ingress", "edge/everywhere"]
    );
    assert_eq!(
        names(&[("istio", "ingressgateway"), ("track", "canary")]),
        ["default/ingress", "edge/everywhere", "default/canary"]
    );
    assert_eq!(
        names(&[("istio", "egressgateway")]),
        ["istio-system/egress", "edge/everywhere"]
    );
    assert_eq!(names(&[]), ["edge/everywhere"]);
}
