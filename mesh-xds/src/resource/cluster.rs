//! CDS: a `Cluster` into an [`XdsCluster`]: the mesh's [`ClusterPolicy`]
//! for it, where its endpoints come from ([`Discovery`]), and the TLS its
//! transport sockets ask for (a socket that is neither TLS nor plain text
//! is a NACK).
//!
//! ```
//! use envoy_types::pb::envoy::config::cluster::v3::{cluster, Cluster};
//! use envoy_types::pb::envoy::config::core::v3::{
//!     config_source::ConfigSourceSpecifier, AggregatedConfigSource, ConfigSource,
//! };
//! use mesh_core::policy::LoadBalancer;
//! use mesh_xds::resource::{Discovery, XdsCluster};
//!
//! let ads = ConfigSource {
//!     config_source_specifier: Some(ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
//!     ..Default::default()
//! };
//! let proto = Cluster {
//!     name: "outbound|9080|v1|reviews.default.svc.cluster.local".into(),
//!     cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
//!         cluster::DiscoveryType::Eds as i32,
//!     )),
//!     eds_cluster_config: Some(cluster::EdsClusterConfig {
//!         eds_config: Some(ads),
//!         service_name: String::new(),
//!     }),
//!     lb_policy: cluster::LbPolicy::LeastRequest as i32,
//!     ..Default::default()
//! };
//! let converted = XdsCluster::try_from(&proto)?;
//! assert_eq!(converted.policy.load_balancer, LoadBalancer::LeastRequest);
//! assert!(matches!(converted.discovery, Discovery::Eds { .. }));
//! # Ok::<(), mesh_xds::resource::ResourceError>(())
//! ```
//!
//! What is read, with the default when a field is unset:
//!
//! - Discovery: `EDS` (by `eds_cluster_config.service_name`, else the
//!   cluster's name; `eds_config` must be `ads` or `self`, as gRPC
//!   requires), `STATIC` (the `load_assignment`; the default type)
//!   and `LOGICAL_DNS` (exactly one locality with one endpoint, gRFC A37).
//!   `STRICT_DNS`, `ORIGINAL_DST` and custom cluster types (aggregate
//!   clusters included) are NACKed.
//! - Load balancing: see below.
//! - Circuit breakers: the `DEFAULT` priority's `max_requests` and
//!   `max_pending_requests`, 1024 each when unset (Envoy's and gRPC's
//!   default, not Istio's unbounded one: istiod always writes them).
//! - Outlier detection: `consecutive_5xx` (5) when its enforcement is 100 %
//!   (the default), `consecutive_gateway_failure` (5) when its enforcement
//!   is 100 % (default 0 %), `base_ejection_time` (30 s, above zero),
//!   `max_ejection_time` (300 s), `max_ejection_percent` (10, at most 100).
//!   Enforcement between 0 and 100 % cannot be expressed and is NACKed.
//!   Success-rate and failure-percentage detection are not modelled and
//!   are ignored. No `outlier_detection`: none.
//! - `connect_timeout` (5 s, above zero).
//! - Protocol: `HttpProtocolOptions` in `typed_extension_protocol_options`
//!   (`explicit_http_config` HTTP/1.1 or HTTP/2; HTTP/3 is NACKed;
//!   `use_downstream_protocol_config` and `auto_config` use the request's
//!   own), else the deprecated `http2_protocol_options`. Neither set uses
//!   the request's own version, as gRPC and the mesh's default do (Envoy
//!   would speak HTTP/1.1).
//! - Retries and timeouts are a route's in xDS: the policy has no retries
//!   and no timeout of its own.
//! - Transport sockets: an `UpstreamTlsContext` (whole, or by endpoint
//!   metadata through `transport_socket_matches`) is the policy's TLS;
//!   `raw_buffer` is plain text; any other socket is refused.
//!
//! # Load balancing
//!
//! `load_balancing_policy` wins when set: its policies are tried in order
//! and the first the mesh has is used (`round_robin`, `least_request`,
//! `random`, `ring_hash`, `maglev`, the mesh's peak EWMA as a
//! `TypedStruct` of type [`PEAK_EWMA_TYPE_URL`], and `wrr_locality` around
//! one of these); a supported policy with bad parameters is a NACK, and so is a
//! list with no supported policy (gRFC A52). Otherwise `lb_policy`:
//! `ROUND_ROBIN` (the default), `LEAST_REQUEST` (always two choices),
//! `RANDOM`, `RING_HASH` (`ring_hash_lb_config` sizes, 1024 to 8M, XX_HASH
//! only; the client caps the ring it builds, as gRPC does) or `MAGLEV`
//! (`maglev_lb_config.table_size`, 65,537 by default, a prime up to
//! [`MAX_MAGLEV_TABLE_SIZE`]).

pub(crate) mod ewma;
mod lb;
mod tls;

pub use ewma::PEAK_EWMA_TYPE_URL;
pub use lb::MAX_MAGLEV_TABLE_SIZE;
#[cfg(feature = "translate")]
pub(crate) use tls::TLS_SOCKET;
use tls::upstream_tls;
#[cfg(test)]
mod tests;

use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::cluster::{ClusterDiscoveryType, DiscoveryType};
use envoy_types::pb::envoy::config::cluster::v3::{self as cds, cluster};
use envoy_types::pb::envoy::config::core::v3::RoutingPriority;
use envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::http_protocol_options::{
    UpstreamProtocolOptions, explicit_http_config::ProtocolConfig,
};
use envoy_types::pb::google::protobuf::UInt32Value;
use mesh_core::policy::{
    CircuitBreakers, ClusterPolicy, ConnectionPolicy, LocalityLb, OutlierDetection, Protocol,
    RetryPolicy, TlsMatch,
};
use mesh_core::route::ClusterName;
use prost::Name;

use super::endpoint::{self, Unweighted, XdsLoadAssignment};
use super::error::{At, FieldError, ResourceError};
use super::proto;

/// A `Cluster`, converted.
#[derive(Clone, Debug, PartialEq)]
pub struct XdsCluster {
    /// Its name, as routes refer to it.
    pub name: ClusterName,
    /// Where its endpoints come from.
    pub discovery: Discovery,
    /// How it is balanced, limited and connected to, and secured: its
    /// `transport_socket` is the policy's `tls`, its
    /// `transport_socket_matches` the policy's `tls_matches`.
    pub policy: ClusterPolicy,
}

/// Where a cluster's endpoints come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Discovery {
    /// From EDS, asked for by `service_name`.
    Eds {
        /// The `ClusterLoadAssignment` resource name to subscribe to.
        service_name: String,
    },
    /// Listed in the cluster itself.
    Static(XdsLoadAssignment),
    /// One host name, resolved by DNS (gRFC A37).
    LogicalDns {
        /// The host name.
        host: String,
        /// The port.
        port: u16,
    },
}

impl TryFrom<&cds::Cluster> for XdsCluster {
    type Error = ResourceError;

    fn try_from(c: &cds::Cluster) -> Result<Self, ResourceError> {
        convert(c).map_err(|e| e.in_resource(cds::Cluster::NAME, &c.name))
    }
}

fn convert(c: &cds::Cluster) -> Result<XdsCluster, FieldError> {
    let at = At::ROOT;
    if c.name.is_empty() {
        return Err(at.field("name").error("must not be empty"));
    }
    let timeout_at = at.field("connect_timeout");
    let connect_timeout = match &c.connect_timeout {
        Some(d) => proto::duration(d, &timeout_at)?,
        None => Duration::from_secs(5),
    };
    if connect_timeout.is_zero() {
        return Err(timeout_at.error("must be more than zero"));
    }
    let policy = ClusterPolicy {
        load_balancer: lb::load_balancer(c, &at)?,
        // EDS hands out endpoints already weighed and prioritised.
        locality: LocalityLb::default(),
        retry: RetryPolicy::disabled(),
        timeout: None,
        outlier: match &c.outlier_detection {
            Some(o) => outlier(o, &at.field("outlier_detection"))?,
            None => OutlierDetection::disabled(),
        },
        circuit_breakers: circuit_breakers(c.circuit_breakers.as_ref()),
        connection: ConnectionPolicy {
            connect_timeout,
            protocol: protocol(c, &at)?,
            ..ConnectionPolicy::default()
        },
        rate_limit: None,
        tls: upstream_tls(c.transport_socket.as_ref(), &at.field("transport_socket"))?,
        tls_matches: tls_matches(c, &at.field("transport_socket_matches"))?,
    };
    Ok(XdsCluster {
        name: ClusterName::new(c.name.as_str()),
        discovery: discovery(c, &at)?,
        policy,
    })
}

/// Transport sockets chosen by endpoint labels, in order.
fn tls_matches(c: &cds::Cluster, at: &At<'_>) -> Result<Vec<TlsMatch>, FieldError> {
    c.transport_socket_matches
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let at = at.index(i);
            Ok(TlsMatch {
                name: m.name.clone(),
                criteria: m
                    .r#match
                    .as_ref()
                    .map(proto::string_fields)
                    .unwrap_or_default(),
                tls: upstream_tls(m.transport_socket.as_ref(), &at.field("transport_socket"))?,
            })
        })
        .collect()
}

fn discovery(c: &cds::Cluster, at: &At<'_>) -> Result<Discovery, FieldError> {
    let type_at = at.field("type");
    let kind = match &c.cluster_discovery_type {
        None => DiscoveryType::Static,
        Some(ClusterDiscoveryType::Type(t)) => DiscoveryType::try_from(*t)
            .map_err(|_| type_at.error(format_args!("unknown type {t}")))?,
        Some(ClusterDiscoveryType::ClusterType(custom)) => {
            let reason = format!("custom cluster types ({}) are not supported", custom.name);
            return Err(at.field("cluster_type").error(reason));
        }
    };
    let assignment_at = at.field("load_assignment");
    match kind {
        DiscoveryType::Eds => {
            let eds_at = at.field("eds_cluster_config");
            let Some(eds) = &c.eds_cluster_config else {
                return Err(eds_at.error("missing: an EDS cluster needs one"));
            };
            proto::same_server(eds.eds_config.as_ref(), &eds_at.field("eds_config"))?;
            let service_name = Some(eds.service_name.as_str())
                .filter(|s| !s.is_empty())
                .unwrap_or(&c.name);
            Ok(Discovery::Eds {
                service_name: service_name.to_owned(),
            })
        }
        DiscoveryType::Static => match &c.load_assignment {
            Some(cla) => endpoint::load_assignment(cla, Unweighted::Keep, &assignment_at)
                .map(Discovery::Static),
            None => Err(assignment_at.error("a STATIC cluster needs one")),
        },
        DiscoveryType::LogicalDns => logical_dns(c, &assignment_at),
        other => Err(type_at.error(format_args!(
            "{} clusters are not supported; use EDS, STATIC or LOGICAL_DNS",
            other.as_str_name()
        ))),
    }
}

/// gRFC A37: exactly one locality with exactly one endpoint.
fn logical_dns(c: &cds::Cluster, at: &At<'_>) -> Result<Discovery, FieldError> {
    let Some(cla) = &c.load_assignment else {
        return Err(at.error("a LOGICAL_DNS cluster needs one"));
    };
    let localities_at = at.field("endpoints");
    let [locality] = cla.endpoints.as_slice() else {
        let n = cla.endpoints.len();
        return Err(localities_at.error(format_args!("{n} localities; LOGICAL_DNS needs one")));
    };
    let locality_at = localities_at.index(0);
    let endpoints_at = locality_at.field("lb_endpoints");
    let [e] = locality.lb_endpoints.as_slice() else {
        let n = locality.lb_endpoints.len();
        return Err(endpoints_at.error(format_args!("{n} endpoints; LOGICAL_DNS needs one")));
    };
    let e_at = endpoints_at.index(0);
    let endpoint_at = e_at.field("endpoint");
    let Some(HostIdentifier::Endpoint(endpoint)) = &e.host_identifier else {
        return Err(endpoint_at.error("missing"));
    };
    let address_at = endpoint_at.field("address");
    let (host, port) = endpoint::host_port(endpoint.address.as_ref(), &address_at)?;
    Ok(Discovery::LogicalDns {
        host: host.to_owned(),
        port,
    })
}

/// The `DEFAULT` priority's thresholds; Envoy's 1024 where unset.
fn circuit_breakers(c: Option<&cds::CircuitBreakers>) -> CircuitBreakers {
    const ENVOY_DEFAULT: u32 = 1024;
    let default = c.and_then(|c| {
        c.thresholds
            .iter()
            .find(|t| t.priority == RoutingPriority::Default as i32)
    });
    let or_default = |v: Option<UInt32Value>| v.map_or(ENVOY_DEFAULT, |v| v.value);
    CircuitBreakers {
        max_requests: or_default(default.and_then(|t| t.max_requests)),
        max_pending_requests: or_default(default.and_then(|t| t.max_pending_requests)),
    }
}

fn outlier(o: &cds::OutlierDetection, at: &At<'_>) -> Result<OutlierDetection, FieldError> {
    // Enforcement is a percentage: only never and always can be expressed.
    let enforced = |v: Option<UInt32Value>, default: u32, field: &'static str| match v
        .map_or(default, |v| v.value)
    {
        0 => Ok(false),
        100 => Ok(true),
        p => Err(at
            .field(field)
            .error(format_args!("{p}%: only 0 and 100 are supported"))),
    };
    let threshold =
        |on: bool, v: Option<UInt32Value>| on.then(|| v.map_or(5, |v| v.value)).filter(|n| *n > 0);
    let on_5xx = enforced(
        o.enforcing_consecutive_5xx,
        100,
        "enforcing_consecutive_5xx",
    )?;
    let on_gateway = enforced(
        o.enforcing_consecutive_gateway_failure,
        0,
        "enforcing_consecutive_gateway_failure",
    )?;
    let base_at = at.field("base_ejection_time");
    let base_ejection_time = match &o.base_ejection_time {
        Some(d) => proto::duration(d, &base_at)?,
        None => Duration::from_secs(30),
    };
    if base_ejection_time.is_zero() {
        return Err(base_at.error("must be more than zero"));
    }
    let max_at = at.field("max_ejection_time");
    let max_ejection_time = proto::opt_duration(o.max_ejection_time.as_ref(), &max_at)?;
    let max_ejection_percent = o.max_ejection_percent.map_or(10, |v| v.value);
    if max_ejection_percent > 100 {
        let at = at.field("max_ejection_percent");
        return Err(at.error(format_args!("{max_ejection_percent} is more than 100")));
    }
    Ok(OutlierDetection {
        consecutive_5xx: threshold(on_5xx, o.consecutive_5xx),
        consecutive_gateway_errors: threshold(on_gateway, o.consecutive_gateway_failure),
        base_ejection_time,
        max_ejection_time: max_ejection_time.unwrap_or(Duration::from_secs(300)),
        max_ejection_percent,
    })
}

#[allow(deprecated)] // http2_protocol_options & co.: older control planes send them
fn protocol(c: &cds::Cluster, at: &At<'_>) -> Result<Protocol, FieldError> {
    let options_at = at.field("typed_extension_protocol_options");
    let typed = c
        .typed_extension_protocol_options
        .iter()
        .find(|(_, any)| proto::is::<HttpProtocolOptions>(any));
    if let Some((key, any)) = typed {
        let at = options_at.key(key);
        let options: HttpProtocolOptions = proto::unpack(any, &at)?;
        return match options.upstream_protocol_options {
            Some(UpstreamProtocolOptions::ExplicitHttpConfig(e)) => match e.protocol_config {
                Some(ProtocolConfig::HttpProtocolOptions(_)) => Ok(Protocol::Http1),
                Some(ProtocolConfig::Http2ProtocolOptions(_)) => Ok(Protocol::Http2),
                Some(ProtocolConfig::Http3ProtocolOptions(_)) => {
                    let at = at.field("explicit_http_config");
                    Err(at
                        .field("http3_protocol_options")
                        .error("HTTP/3 is not supported"))
                }
                None => Err(at.field("explicit_http_config").error("no protocol")),
            },
            Some(
                UpstreamProtocolOptions::UseDownstreamProtocolConfig(_)
                | UpstreamProtocolOptions::AutoConfig(_),
            )
            | None => Ok(Protocol::UseClientProtocol),
        };
    }
    if c.http2_protocol_options.is_some() {
        let downstream = cluster::ClusterProtocolSelection::UseDownstreamProtocol as i32;
        return Ok(match c.protocol_selection == downstream {
            true => Protocol::UseClientProtocol,
            false => Protocol::Http2,
        });
    }
    Ok(Protocol::UseClientProtocol)
}
