//! Mesh values into the xDS resources proxyless clients and Envoy read:
//! the reverse of [`resource`](crate::resource), for a control plane that
//! serves what it holds as `mesh-core` values. Where gRPC and Envoy read a
//! resource differently, the `…_for` functions take the [`Peer`] to write
//! for; the others write for gRPC.
//!
//! | mesh value | xDS resource | read back by |
//! |---|---|---|
//! | [`VirtualHost`](mesh_core::route::VirtualHost)s | [`route_configuration`], [`route_configuration_for`] (RDS), [`virtual_host`] | [`XdsRouteConfig`](crate::resource::XdsRouteConfig) |
//! | [`Cluster`](mesh_core::Cluster) | [`cluster`], [`cluster_for`] (CDS, EDS over ADS) | [`XdsCluster`](crate::resource::XdsCluster) |
//! | a target and a route configuration name | [`api_listener`] (LDS) | [`XdsListener`](crate::resource::XdsListener) |
//! | an address and a route configuration name | [`envoy_listener`] (LDS, for Envoy) | Envoy |
//! | [`EndpointSet`](mesh_core::EndpointSet) | [`load_assignment`] (EDS) | [`XdsLoadAssignment`](crate::resource::XdsLoadAssignment) |
//! | a server's [`Rbac`](mesh_core::security::Rbac) filters and address | [`server_listener`] (LDS, a proxyless gRPC server's) | gRPC servers |
//! | the same, an application's address and [`InboundTls`] | [`sidecar_inbound`] (LDS and CDS, an Envoy sidecar's inbound port) | Envoy |
//! | a [`MeshConfig`](mesh_core::MeshConfig) and one service port | [`service_routes`]: its virtual host and clusters as xDS keeps them, still mesh values; [`service_port`]: those and the listener written, in istiod's names (the EDS resources are the caller's, from its registry) | the ADS client |
//! | a `MeshConfig` and some of its virtual hosts | [`port_routes`], as [`service_routes`] for routes that send to many services (a gateway's) | |
//!
//! The rule is that a resource reads back, through this crate's own
//! conversion, as the value it was written from (the inbound listeners,
//! which only servers read, are checked against Envoy and gRPC). What a
//! resource cannot say exactly is refused with a [`TranslateError`]
//! naming the resource, the part (the virtual host and route, the
//! endpoint) and the mesh-core field, never dropped silently; each module
//! lists what it refuses and the little it leaves to the caller (a
//! cluster's endpoints are its EDS resource's, so its
//! [`Discovery`](mesh_core::Discovery) and subset labels are not written
//! into CDS). The one place where values are moved rather than written as
//! they are is [`port_routes`] (and so [`service_routes`] and
//! [`service_port`]), which puts a cluster's retries and timeout on the
//! routes, where xDS keeps them, as istiod does.

mod cluster;
mod endpoint;
mod error;
mod inbound;
mod listener;
mod rbac;
mod route;
mod service;
#[cfg(test)]
mod tests;
mod tls;

use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::config_source::ConfigSourceSpecifier;
use envoy_types::pb::envoy::config::core::v3::{AggregatedConfigSource, ConfigSource};
use envoy_types::pb::envoy::r#type::v3::FractionalPercent;
use envoy_types::pb::envoy::r#type::v3::fractional_percent::DenominatorType;
use envoy_types::pb::google::protobuf::{self as pb, Any};
use mesh_core::route::Percent;
use prost::{Message, Name};

pub use cluster::{cluster, cluster_for, static_cluster};
pub use endpoint::load_assignment;
pub use error::TranslateError;
pub use inbound::{
    InboundTls, SERVER_LISTENER_PREFIX, SidecarInbound, server_listener, server_listener_address,
    sidecar_inbound,
};
pub use listener::{
    EnvoyChain, api_listener, api_listener_on, connection_manager_filter, envoy_listener,
    envoy_listener_chains, gateway_listener, router_filter, socket_address, tls_inspector,
};
pub use rbac::{ALLOW_FILTER, DENY_FILTER};
pub use route::{route_configuration, route_configuration_for, virtual_host};
pub use service::{PortedRoutes, ServicePort, port_routes, service_port, service_routes};
pub(crate) use tls::{SanMatchers, tls_transport_socket};
pub use tls::{downstream_tls_socket, server_tls_secrets, server_tls_transport_socket};

/// The xDS client a resource is written for, where gRPC and Envoy read
/// one differently.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Peer {
    /// A proxyless gRPC client, and the mesh's own: a cluster's server
    /// identities as the untyped SAN matchers gRPC checks.
    #[default]
    Grpc,
    /// Envoy: typed SAN matchers; a cluster that distributes traffic by
    /// locality weighs its localities by their EDS weights (gRPC always
    /// does); route configurations do not validate the clusters they name,
    /// which arrive by CDS.
    Envoy,
}

/// The name Envoy and istiod give the fault filter, under which routes
/// carry their fault policy.
const FAULT_FILTER: &str = "envoy.filters.http.fault";

/// "Fetch it over the ADS stream this came on."
fn ads() -> ConfigSource {
    ConfigSource {
        config_source_specifier: Some(ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
        ..Default::default()
    }
}

/// A resource named `name`, packed as a
/// [`ResourceCache`](crate::server::ResourceCache) takes it.
pub fn entry<T: Message + Name>(name: &str, m: &T) -> (String, Any) {
    (name.to_owned(), any(m))
}

pub(crate) fn any<T: Message + Name>(m: &T) -> Any {
    Any {
        type_url: T::type_url(),
        value: m.encode_to_vec(),
    }
}

/// A protobuf duration; beyond protobuf's bound of 10,000 years, which
/// Envoy enforces, it is that bound.
fn duration(d: Duration) -> pb::Duration {
    const MAX_SECONDS: u64 = 315_576_000_000;
    if d.as_secs() >= MAX_SECONDS {
        return pb::Duration {
            seconds: MAX_SECONDS as i64,
            nanos: 0,
        };
    }
    pb::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// A share in parts per million, exactly as [`Percent`] keeps it.
fn fraction(p: Percent) -> FractionalPercent {
    FractionalPercent {
        numerator: p.ppm(),
        denominator: DenominatorType::Million as i32,
    }
}

/// A duration as protobuf JSON writes it: seconds with 0, 3, 6 or 9
/// decimals and an `s` (`"0.030s"`).
fn json_duration(d: Duration) -> String {
    let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
    match nanos {
        0 => format!("{secs}s"),
        n if n % 1_000_000 == 0 => format!("{secs}.{:03}s", n / 1_000_000),
        n if n % 1_000 == 0 => format!("{secs}.{:06}s", n / 1_000),
        n => format!("{secs}.{n:09}s"),
    }
}
