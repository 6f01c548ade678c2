//! Proxyless servers' inbound listeners, as `server_listener` writes them
//! for `mesh-control` and istiod writes them for gRPC, read back as the
//! server on their address enforces them.

use std::net::SocketAddr;

use envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier;
use envoy_types::pb::envoy::config::listener::v3::{FilterChainMatch, Listener};
use envoy_types::pb::envoy::config::rbac::v3 as rbac;
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::Rbac as RbacFilter;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext;
use mesh_core::security::{
    Cidr, InboundPolicy, MtlsMode, Permission, Principal, Rbac, RbacAction, RbacPolicy, ValueMatch,
};
use prost::Message;

use super::*;
use crate::resource::{ServerTls, XdsServer};

const NAME: &str = "xds.istio.io/grpc/lds/inbound/127.0.0.1:50051";

fn addr() -> SocketAddr {
    "127.0.0.1:50051".parse().unwrap()
}

fn value(kind: StringMatch) -> ValueMatch {
    ValueMatch {
        kind,
        ignore_case: false,
    }
}

/// A DENY and an ALLOW filter using every condition the mesh evaluates.
fn every_condition() -> Vec<Rbac> {
    let permissions = vec![
        Permission::And(vec![
            Permission::Header {
                name: ":method".into(),
                value: value(StringMatch::Exact("GET".into())),
            },
            Permission::UrlPath(ValueMatch {
                kind: StringMatch::Prefix("/ratings".into()),
                ignore_case: true,
            }),
        ]),
        Permission::Or(vec![
            Permission::DestinationPort(50051),
            Permission::Not(Box::new(Permission::UrlPath(value(StringMatch::Suffix(
                "/admin".into(),
            ))))),
        ]),
        Permission::Header {
            name: "x-version".into(),
            value: value(regex("v[0-9]+")),
        },
    ];
    let principals = vec![
        Principal::And(vec![
            Principal::Authenticated(Some(value(StringMatch::Exact(
                "spiffe://cluster.local/ns/default/sa/reviews".into(),
            )))),
            Principal::DirectRemoteIp("10.0.0.0/8".parse::<Cidr>().unwrap()),
        ]),
        Principal::Or(vec![
            Principal::Authenticated(None),
            Principal::RemoteIp("2001:db8::/32".parse().unwrap()),
        ]),
        Principal::Not(Box::new(Principal::Header {
            name: "end-user".into(),
            value: value(StringMatch::Contains("jason".into())),
        })),
    ];
    vec![
        Rbac {
            action: RbacAction::Deny,
            policies: vec![(
                "default-deny-admin-0".into(),
                RbacPolicy {
                    permissions: vec![Permission::UrlPath(value(StringMatch::Exact(
                        "/admin".into(),
                    )))],
                    principals: vec![Principal::Any],
                },
            )],
        },
        Rbac {
            action: RbacAction::Allow,
            policies: vec![
                (
                    "default-a-0".into(),
                    RbacPolicy {
                        permissions,
                        principals,
                    },
                ),
                (
                    "default-b-0".into(),
                    RbacPolicy {
                        permissions: vec![Permission::Any],
                        principals: vec![Principal::Any],
                    },
                ),
            ],
        },
    ]
}

fn server_of(l: &Listener) -> Result<XdsServer, String> {
    XdsListener::try_from(l)
        .map(|l| l.server.expect("a server listener"))
        .map_err(|e| e.to_string())
}

#[test]
fn a_mutual_tls_listener_reads_back_as_written() {
    let rbac = every_condition();
    let l = server_listener(NAME, addr(), &rbac, MtlsMode::Strict).unwrap();
    let server = server_of(&l).unwrap();
    assert_eq!(
        server,
        XdsServer {
            address: addr(),
            policy: InboundPolicy {
                mtls: MtlsMode::Strict,
                rbac,
            },
            tls: Some(ServerTls {
                certificate: "default".into(),
                roots: "default".into(),
            }),
        }
    );
}

#[test]
fn a_plain_text_listener_is_disable_and_both_chains_are_permissive() {
    let plain = server_listener(NAME, addr(), &[], MtlsMode::Disable).unwrap();
    let server = server_of(&plain).unwrap();
    assert_eq!(server.policy.mtls, MtlsMode::Disable);
    assert_eq!(server.tls, None);

    let both = server_listener(NAME, addr(), &[], MtlsMode::Permissive).unwrap();
    assert_eq!(server_of(&both).unwrap().policy.mtls, MtlsMode::Permissive);
}

/// The listener `server_listener` writes for mutual TLS, changed by `f`;
/// the NACK it gets.
fn refused(f: impl FnOnce(&mut Listener)) -> String {
    let mut l = server_listener(NAME, addr(), &every_condition(), MtlsMode::Strict).unwrap();
    f(&mut l);
    server_of(&l).unwrap_err()
}

fn tls_context(l: &mut Listener, f: impl FnOnce(&mut DownstreamTlsContext)) {
    use envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType;
    let socket = l.filter_chains[0].transport_socket.as_mut().unwrap();
    let Some(ConfigType::TypedConfig(any)) = &mut socket.config_type else {
        panic!("a typed config");
    };
    let mut context = DownstreamTlsContext::decode(any.value.as_slice()).unwrap();
    f(&mut context);
    any.value = context.encode_to_vec();
}

#[test]
fn what_a_server_cannot_enforce_is_refused_by_field() {
    let e = refused(|l| tls_context(l, |c| c.require_client_certificate = None));
    assert!(
        e.contains("filter_chains[0].transport_socket.typed_config.require_client_certificate: must be true"),
        "{e}"
    );

    let e = refused(|l| {
        l.filter_chains[0].filter_chain_match = Some(FilterChainMatch {
            destination_port: Some(envoy_types::pb::google::protobuf::UInt32Value { value: 1 }),
            ..Default::default()
        });
    });
    assert!(
        e.contains(
            "filter_chains[0].filter_chain_match: matching on anything but transport_protocol"
        ),
        "{e}"
    );

    let e = refused(|l| {
        let chain = l.filter_chains[0].clone();
        l.filter_chains.push(chain);
    });
    assert!(
        e.contains("more than one chain of the same transport"),
        "{e}"
    );

    let e = refused(|l| {
        let plain = server_listener(NAME, addr(), &[], MtlsMode::Disable).unwrap();
        l.filter_chains.push(plain.filter_chains[0].clone());
    });
    assert!(
        e.contains("filter_chains[1]: its RBAC filters differ"),
        "{e}"
    );

    let e = refused(|l| {
        if let Some(address) = &mut l.address
            && let Some(envoy_types::pb::envoy::config::core::v3::address::Address::SocketAddress(
                s,
            )) = &mut address.address
        {
            s.port_specifier = Some(PortSpecifier::NamedPort("http".into()));
        }
    });
    assert!(
        e.contains("address.socket_address.port_value: must be a port"),
        "{e}"
    );
}

#[test]
fn rbac_the_mesh_cannot_evaluate_is_refused_not_left_out() {
    let metadata = rbac::Principal {
        identifier: Some(rbac::principal::Identifier::FilterState(Default::default())),
    };
    let policy = rbac::Policy {
        permissions: vec![rbac::Permission {
            rule: Some(rbac::permission::Rule::Any(true)),
        }],
        principals: vec![metadata],
        ..Default::default()
    };
    let config = RbacFilter {
        rules: Some(rbac::Rbac {
            action: rbac::rbac::Action::Deny as i32,
            policies: [("default-deny-0".to_owned(), policy)].into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut l = server_listener(NAME, addr(), &every_condition(), MtlsMode::Strict).unwrap();
    let chain = &mut l.filter_chains[0];
    let Some(envoy_types::pb::envoy::config::listener::v3::filter::ConfigType::TypedConfig(any)) =
        &mut chain.filters[0].config_type
    else {
        panic!("a typed config");
    };
    let mut manager =
        envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager::decode(
            any.value.as_slice(),
        )
        .unwrap();
    let Some(envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_filter::ConfigType::TypedConfig(rbac_any)) =
        &mut manager.http_filters[0].config_type
    else {
        panic!("a typed config");
    };
    rbac_any.value = config.encode_to_vec();
    any.value = manager.encode_to_vec();
    let e = server_of(&l).unwrap_err();
    assert!(
        e.contains(r#"http_filters[0].typed_config.rules.policies["default-deny-0"].principals[0].filter_state: is not supported"#),
        "{e}"
    );
}
