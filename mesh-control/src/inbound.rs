//! A proxyless gRPC server's inbound listener, as istiod's `grpc`
//! generator writes it (gRFC A36): asked for by name
//! `xds.istio.io/grpc/lds/inbound/HOST:PORT` (the template Istio's
//! bootstrap gives), on that address, with one filter chain whose HTTP
//! connection manager runs the workload's RBAC filters (see
//! [`authz`]) and the router, over an inline route
//! configuration whose one route only marks requests as not forwarded.
//!
//! Mutual TLS follows the workload's `PeerAuthentication`: STRICT gives
//! the chain a TLS context requiring a client certificate, from gRPC's
//! certificate provider instance `default` (certificate `default`, roots
//! `ROOTCA`), as Istio's agent names them. PERMISSIVE is plain text, as
//! istiod serves it to gRPC (whose filter chain matching cannot tell the
//! two apart), unless the workload carries
//! `security.istio.io/tlsMode: istio`, when it is STRICT. DISABLE and
//! no policy are plain text.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use envoy_types::pb::envoy::config::route::v3::{
    NonForwardingAction, Route, RouteConfiguration, RouteMatch, VirtualHost, route, route_match,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager::RouteSpecifier,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateProviderPluginInstance, CertificateValidationContext, CommonTlsContext,
    DownstreamTlsContext, common_tls_context,
};
use envoy_types::pb::google::protobuf::BoolValue;
use mesh_istio::{MutualTlsMode, PeerAuthentication, Resources, Sourced};
use mesh_xds::translate::{self, socket_address};

use crate::any;
use crate::authz::{self, AuthzError, ROOT_NAMESPACE};

/// The prefix of an inbound listener's name.
pub const PREFIX: &str = "xds.istio.io/grpc/lds/inbound/";

/// The inbound listener `name` (`PREFIX` and the address the server
/// listens on) for a workload in `namespace` with `labels`; `None` when
/// the name does not end in an address.
pub fn listener(
    name: &str,
    resources: &Resources,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Option<Result<Listener, AuthzError>> {
    let addr: SocketAddr = name.strip_prefix(PREFIX)?.parse().ok()?;
    let strict = match mode(resources, namespace, labels, addr.port()) {
        MutualTlsMode::Strict => true,
        MutualTlsMode::Permissive => {
            labels.get("security.istio.io/tlsMode").map(String::as_str) == Some("istio")
        }
        MutualTlsMode::Disable | MutualTlsMode::Unset => false,
    };
    let routes = RouteConfiguration {
        name: "inbound".into(),
        virtual_hosts: vec![VirtualHost {
            name: "inbound".into(),
            domains: vec!["*".into()],
            routes: vec![Route {
                r#match: Some(RouteMatch {
                    path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
                    ..Default::default()
                }),
                action: Some(route::Action::NonForwardingAction(
                    NonForwardingAction::default(),
                )),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let manager = match connection_manager("", routes, resources, namespace, labels) {
        Ok(m) => m,
        Err(e) => return Some(Err(e)),
    };
    let suffix = if strict { "mtls" } else { "plaintext" };
    let chain = FilterChain {
        name: format!("inbound-{suffix}"),
        filters: vec![Filter {
            name: format!("inbound-hcm{suffix}"),
            config_type: Some(filter::ConfigType::TypedConfig(any(&manager))),
        }],
        transport_socket: strict.then(|| translate::downstream_tls_socket(&tls())),
        ..Default::default()
    };
    Some(Ok(Listener {
        name: name.to_owned(),
        address: Some(socket_address(addr)),
        filter_chains: vec![chain],
        ..Default::default()
    }))
}

/// The HTTP connection manager of a workload's inbound requests, in
/// `namespace` with `labels`: its AuthorizationPolicies' RBAC filters
/// (DENY, then ALLOW), then the router, over the inline `routes`.
pub(crate) fn connection_manager(
    stat_prefix: &str,
    routes: RouteConfiguration,
    resources: &Resources,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Result<HttpConnectionManager, AuthzError> {
    let mut filters = authz::rbac_filters(resources, namespace, labels)?;
    filters.push(translate::router_filter());
    Ok(HttpConnectionManager {
        stat_prefix: stat_prefix.to_owned(),
        route_specifier: Some(RouteSpecifier::RouteConfig(routes)),
        http_filters: filters,
        ..Default::default()
    })
}

/// The mutual TLS mode of port `port` of a workload, as Istio resolves
/// it: the most specific policy that sets one (the workload's, with its
/// port-level setting first; then its namespace's; then the mesh's, in the
/// root namespace).
pub fn mode(
    resources: &Resources,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    port: u16,
) -> MutualTlsMode {
    let set = |m: MutualTlsMode| (m != MutualTlsMode::Unset).then_some(m);
    let policies = &resources.peer_authentications;
    let in_namespace =
        |p: &&Sourced<PeerAuthentication>, ns: &str| p.resource.metadata.namespace() == ns;
    let workload = policies
        .iter()
        .filter(|p| in_namespace(p, namespace))
        .find(|p| {
            p.resource.spec.selector.as_ref().is_some_and(|s| {
                !s.match_labels.is_empty()
                    && s.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
        })
        .and_then(|p| {
            let spec = &p.resource.spec;
            let port_level = spec.port_level_mtls.get(&u32::from(port));
            port_level
                .and_then(|m| set(m.mode))
                .or_else(|| spec.mtls.and_then(|m| set(m.mode)))
        });
    let namespace_wide = |ns: &str| {
        policies
            .iter()
            .filter(|p| in_namespace(p, ns) && p.resource.spec.selector.is_none())
            .find_map(|p| p.resource.spec.mtls.and_then(|m| set(m.mode)))
    };
    workload
        .or_else(|| namespace_wide(namespace))
        .or_else(|| namespace_wide(ROOT_NAMESPACE))
        .unwrap_or(MutualTlsMode::Permissive)
}

/// A server TLS context requiring a client certificate, both from gRPC's
/// certificate provider instance `default`.
fn tls() -> DownstreamTlsContext {
    let instance = |certificate_name: &str| CertificateProviderPluginInstance {
        instance_name: "default".into(),
        certificate_name: certificate_name.into(),
    };
    DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_provider_instance: Some(instance("default")),
            validation_context_type: Some(
                common_tls_context::ValidationContextType::ValidationContext(
                    CertificateValidationContext {
                        ca_certificate_provider_instance: Some(instance("ROOTCA")),
                        ..Default::default()
                    },
                ),
            ),
            ..Default::default()
        }),
        require_client_certificate: Some(BoolValue { value: true }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::core::v3::address;
    use envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier;

    use super::*;

    fn resources(yaml: &str) -> Resources {
        mesh_istio::parse("peer.yaml", yaml).unwrap().0
    }

    const MESH_STRICT: &str = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n\
        metadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n";

    #[test]
    fn the_most_specific_policy_sets_the_mode() {
        let labels = BTreeMap::from([("app".to_owned(), "ratings".to_owned())]);
        assert_eq!(
            mode(&resources(""), "default", &labels, 80),
            MutualTlsMode::Permissive
        );
        let r = resources(MESH_STRICT);
        assert_eq!(mode(&r, "default", &labels, 80), MutualTlsMode::Strict);
        let workload = "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\n\
            metadata: {name: ratings, namespace: default}\n\
            spec:\n  selector: {matchLabels: {app: ratings}}\n  mtls: {mode: UNSET}\n\
            \x20 portLevelMtls: {8080: {mode: DISABLE}}\n";
        let r = resources(&format!("{MESH_STRICT}{workload}"));
        assert_eq!(mode(&r, "default", &labels, 8080), MutualTlsMode::Disable);
        // UNSET inherits.
        assert_eq!(mode(&r, "default", &labels, 9080), MutualTlsMode::Strict);
    }

    #[test]
    fn a_listener_is_on_the_address_it_is_named_for() {
        let name = format!("{PREFIX}127.0.0.1:50051");
        let l = listener(&name, &resources(MESH_STRICT), "default", &BTreeMap::new())
            .unwrap()
            .unwrap();
        let Some(address::Address::SocketAddress(a)) = l.address.unwrap().address else {
            panic!()
        };
        assert_eq!(a.address, "127.0.0.1");
        assert_eq!(a.port_specifier, Some(PortSpecifier::PortValue(50051)));
        assert!(l.filter_chains[0].transport_socket.is_some());
        assert!(listener("reviews:9080", &resources(""), "default", &BTreeMap::new()).is_none());
    }
}
