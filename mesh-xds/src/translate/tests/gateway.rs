//! Gateway ports, as `gateway_listener` writes them for Envoy
//! gateways and `mesh-control` for proxyless ones, with the secrets
//! `server_tls_secrets` writes, read back as a gateway serves them.

use std::net::SocketAddr;

use envoy_types::pb::envoy::config::listener::v3::{FilterChainMatch, Listener};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use mesh_core::gateway::{GatewayPort, GatewayServer};
use mesh_core::policy::{Pem, ServerTls, TlsVersion};

use super::*;
use crate::resource::{XdsGateway, XdsListener, XdsSecret};

fn addr() -> SocketAddr {
    "0.0.0.0:8443".parse().unwrap()
}

fn listener(servers: &[GatewayServer]) -> Listener {
    let port = GatewayPort {
        number: 8443,
        servers: servers.to_vec(),
    };
    gateway_listener("0.0.0.0_8443", addr(), "gateway", &port)
}

fn gateway(l: &Listener) -> XdsGateway {
    XdsListener::try_from(l)
        .unwrap()
        .gateway
        .expect("a gateway")
}

/// A `MUTUAL` server with every check, from files.
fn mutual_from_files() -> GatewayServer {
    GatewayServer {
        routes: "https.8443.api.edge.istio-system".into(),
        server_names: vec!["api.example.com".into(), "*.api.example.com".into()],
        tls: Some(ServerTls {
            certificate_chain: Pem::File("/certs/cert.pem".into()),
            private_key: Pem::File("/certs/key.pem".into()),
            client_ca: Some(Pem::File("/certs/ca.pem".into())),
            crl: Some(Pem::File("/certs/crl.pem".into())),
            subject_alt_names: vec![
                "spiffe://cluster.local/ns/a/sa/b".into(),
                "client.example.com".into(),
            ],
            verify_certificate_spki: vec!["c3BraQ==".into()],
            verify_certificate_hash: vec!["ab".repeat(32)],
            min_version: Some(TlsVersion::V1_2),
            max_version: Some(TlsVersion::V1_3),
            cipher_suites: vec!["ECDHE-RSA-AES256-GCM-SHA384".into()],
            ..ServerTls::default()
        }),
    }
}

/// A `SIMPLE` server whose certificate is a Kubernetes Secret's.
fn simple_from_secret() -> GatewayServer {
    GatewayServer {
        routes: "https.8443.web.edge.istio-system".into(),
        server_names: vec!["www.example.com".into()],
        tls: Some(ServerTls {
            credential: Some("web-cert".into()),
            certificate_chain: Pem::Inline("CHAIN".into()),
            private_key: Pem::Inline("KEY".into()),
            ..ServerTls::default()
        }),
    }
}

#[test]
fn servers_from_files_read_back_as_written() {
    let servers = vec![mutual_from_files()];
    let g = gateway(&listener(&servers));
    assert_eq!(g.address, addr());
    assert_eq!(g.secret_names().count(), 0);
    assert_eq!(g.servers(|_| None).unwrap(), servers);
}

#[test]
fn a_plain_text_port_is_one_server_for_any_name() {
    let servers = vec![GatewayServer {
        routes: "http.8080".into(),
        server_names: Vec::new(),
        tls: None,
    }];
    let converted = XdsListener::try_from(&listener(&servers)).unwrap();
    assert!(converted.server.is_none());
    let g = converted.gateway.unwrap();
    assert_eq!(g.servers(|_| None).unwrap(), servers);
}

#[test]
fn certificates_by_sds_come_from_the_secrets() {
    let mut mutual = simple_from_secret();
    mutual.routes = "https.8443.mtls.edge.istio-system".into();
    mutual.server_names = vec!["mtls.example.com".into()];
    let tls = mutual.tls.as_mut().unwrap();
    tls.credential = Some("mtls-cert".into());
    tls.client_ca = Some(Pem::Inline("ROOTS".into()));
    tls.crl = Some(Pem::Inline("CRL".into()));
    let servers = vec![simple_from_secret(), mutual];
    let g = gateway(&listener(&servers));
    let mut names: Vec<&str> = g.secret_names().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "kubernetes://mtls-cert",
            "kubernetes://mtls-cert-cacert",
            "kubernetes://web-cert"
        ]
    );
    assert_eq!(
        g.servers(|_| None).unwrap_err(),
        "waiting for secret \"kubernetes://web-cert\""
    );

    let secrets: Vec<(String, XdsSecret)> = servers
        .iter()
        .flat_map(|s| server_tls_secrets(s.tls.as_ref().unwrap()))
        .map(|s: Secret| (s.name.clone(), XdsSecret::try_from(&s).unwrap()))
        .collect();
    let secret = |name: &str| secrets.iter().find(|(n, _)| n == name).map(|(_, s)| s);
    let resolved = g.servers(secret).unwrap();
    for (got, sent) in resolved.iter().zip(&servers) {
        let (got_tls, sent_tls) = (got.tls.as_ref().unwrap(), sent.tls.as_ref().unwrap());
        assert_eq!(got.routes, sent.routes);
        assert_eq!(got.server_names, sent.server_names);
        assert_eq!(got_tls.certificate_chain, sent_tls.certificate_chain);
        assert_eq!(got_tls.private_key, sent_tls.private_key);
        assert_eq!(got_tls.client_ca, sent_tls.client_ca);
        assert_eq!(got_tls.crl, sent_tls.crl);
        // Named by the secret it came from, for errors.
        let sds = format!("kubernetes://{}", sent_tls.credential.as_ref().unwrap());
        assert_eq!(got_tls.credential.as_deref(), Some(sds.as_str()));
    }

    // A secret of the wrong kind is named.
    let wrong = |name: &str| secret(&format!("{name}-cacert")).or(secret(name));
    let e = g.servers(wrong).unwrap_err();
    assert!(e.contains("holds roots"), "{e}");
}

#[test]
fn what_a_gateway_cannot_honour_is_refused_by_field() {
    // TLS and plain text on one port.
    let plain = GatewayServer {
        routes: "http.8443".into(),
        server_names: Vec::new(),
        tls: None,
    };
    let e = XdsListener::try_from(&listener(&[mutual_from_files(), plain.clone()])).unwrap_err();
    assert_eq!(e.field, "filter_chains");

    // Server names on a plain-text chain.
    let mut named = listener(&[plain]);
    named.filter_chains[0].filter_chain_match = Some(FilterChainMatch {
        server_names: vec!["a.example.com".into()],
        ..Default::default()
    });
    let e = XdsListener::try_from(&named).unwrap_err();
    assert_eq!(e.field, "filter_chains[0].filter_chain_match.server_names");

    // Matching on the destination port.
    let mut ported = listener(&[mutual_from_files()]);
    ported.filter_chains[0]
        .filter_chain_match
        .as_mut()
        .unwrap()
        .destination_port = Some(envoy_types::pb::google::protobuf::UInt32Value { value: 1 });
    let e = XdsListener::try_from(&ported).unwrap_err();
    assert_eq!(e.field, "filter_chains[0].filter_chain_match");
    assert_eq!(e.resource, "0.0.0.0_8443");
}

#[test]
fn client_roots_without_requiring_a_certificate_are_refused() {
    use envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType;
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext;
    use prost::Message;

    let mut l = listener(&[mutual_from_files()]);
    let socket = l.filter_chains[0].transport_socket.as_mut().unwrap();
    let Some(ConfigType::TypedConfig(any)) = &mut socket.config_type else {
        unreachable!()
    };
    let mut context = DownstreamTlsContext::decode(any.value.as_slice()).unwrap();
    context.require_client_certificate = None;
    any.value = context.encode_to_vec();
    let e = XdsListener::try_from(&l).unwrap_err();
    assert_eq!(
        e.field,
        "filter_chains[0].transport_socket.typed_config.require_client_certificate"
    );
}
