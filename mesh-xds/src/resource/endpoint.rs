//! EDS: a `ClusterLoadAssignment` into the mesh's [`EndpointSet`], with
//! each endpoint's locality, locality weight, priority, weight, health and
//! labels, and the assignment's drop overloads.
//!
//! ```
//! use envoy_types::pb::envoy::config::core::v3::{address, socket_address, Address, SocketAddress};
//! use envoy_types::pb::envoy::config::endpoint::v3::{
//!     lb_endpoint, ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
//! };
//! use envoy_types::pb::google::protobuf::UInt32Value;
//! use mesh_xds::resource::XdsLoadAssignment;
//!
//! let at = |ip: &str| LbEndpoint {
//!     host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
//!         address: Some(Address {
//!             address: Some(address::Address::SocketAddress(SocketAddress {
//!                 address: ip.into(),
//!                 port_specifier: Some(socket_address::PortSpecifier::PortValue(9080)),
//!                 ..Default::default()
//!             })),
//!         }),
//!         ..Default::default()
//!     })),
//!     ..Default::default()
//! };
//! let cla = ClusterLoadAssignment {
//!     cluster_name: "outbound|9080||reviews.default.svc.cluster.local".into(),
//!     endpoints: vec![LocalityLbEndpoints {
//!         lb_endpoints: vec![at("10.0.0.1"), at("10.0.0.2")],
//!         load_balancing_weight: Some(UInt32Value { value: 2 }),
//!         ..Default::default()
//!     }],
//!     ..Default::default()
//! };
//! let assignment = XdsLoadAssignment::try_from(&cla)?;
//! assert_eq!(assignment.endpoints.len(), 2);
//! # Ok::<(), mesh_xds::resource::ResourceError>(())
//! ```
//!
//! A locality with no `load_balancing_weight`, or a weight of 0, is left
//! out of an EDS resource, endpoints and all, as gRPC leaves it out (gRFC
//! A27: its balancer weighs localities). The load assignment of a STATIC
//! cluster, which gRPC does not read, keeps it, as Envoy does, with no
//! locality weight (`None`: locality weighting off for it).
//!
//! As gRPC's xDS client and Envoy do, an assignment is rejected (NACK) when
//! an endpoint's address is not an IP address and TCP port (a host name,
//! a named port, a Unix socket, an internal address), when an endpoint's
//! weight, or a STATIC cluster's locality weight, is 0 (Envoy's rule is
//! "at least 1"), when the weights
//! of one locality or of the localities of one priority overflow 32 bits,
//! when priorities skip a number, when one address is listed twice, and
//! for LEDS and named endpoints, which the mesh does not support.
//!
//! Health: `HEALTHY` and `UNKNOWN` endpoints take traffic; `UNHEALTHY`,
//! `TIMEOUT` and `DEGRADED` become [`Health::Unhealthy`] and `DRAINING`
//! [`Health::Draining`], which take none (gRFC A27). Ignored, as
//! gRPC ignores them: `overprovisioning_factor`, `endpoint_stale_after`,
//! additional addresses, health-check configs, host names, proximity.
//!
//! Labels come from endpoint metadata: the string, number and boolean
//! fields under `envoy.lb` (what Envoy's subset balancer reads) and
//! `envoy.transport_socket_match` (where Istio writes `tlsMode`), verbatim;
//! and Istio's `istio.workload` (`name;namespace;service;revision;cluster`)
//! as `service.istio.io/canonical-name` and
//! `service.istio.io/canonical-revision`.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use eds::lb_endpoint::HostIdentifier;
use eds::locality_lb_endpoints::LbConfig;
use envoy_types::pb::envoy::config::core::v3::socket_address::{PortSpecifier, Protocol};
use envoy_types::pb::envoy::config::core::v3::{Address, HealthStatus, Metadata, address};
use envoy_types::pb::envoy::config::endpoint::v3 as eds;
use envoy_types::pb::google::protobuf::value::Kind;
use mesh_core::route::Percent;
use mesh_core::{DropOverload, Endpoint, EndpointSet, Health, Locality};
use prost::Name;

use super::error::{At, FieldError, ResourceError};
use super::proto;

/// A `ClusterLoadAssignment`, converted.
#[derive(Clone, Debug, PartialEq)]
pub struct XdsLoadAssignment {
    /// The resource's name: the cluster's EDS service name.
    pub cluster_name: String,
    /// The endpoints, each with its locality, priority, weight and health,
    /// and the shares of requests to drop before picking one
    /// ([`EndpointSet::drops`]).
    pub endpoints: EndpointSet,
}

impl TryFrom<&eds::ClusterLoadAssignment> for XdsLoadAssignment {
    type Error = ResourceError;

    fn try_from(cla: &eds::ClusterLoadAssignment) -> Result<Self, ResourceError> {
        let in_resource =
            |e: FieldError| e.in_resource(eds::ClusterLoadAssignment::NAME, &cla.cluster_name);
        if cla.cluster_name.is_empty() {
            let at = At::ROOT.field("cluster_name");
            return Err(in_resource(at.error("must not be empty")));
        }
        load_assignment(cla, Unweighted::LeaveOut, &At::ROOT).map_err(in_resource)
    }
}

/// What becomes of a locality without a weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unweighted {
    /// Left out, endpoints and all (EDS, as gRPC reads it).
    LeaveOut,
    /// Kept without a locality weight; a weight of 0 is an error (a
    /// STATIC cluster's assignment, as Envoy reads it).
    Keep,
}

/// An assignment at `at`: the resource itself, or a cluster's
/// `load_assignment`.
pub(crate) fn load_assignment(
    cla: &eds::ClusterLoadAssignment,
    unweighted: Unweighted,
    at: &At<'_>,
) -> Result<XdsLoadAssignment, FieldError> {
    let localities_at = at.field("endpoints");
    let mut endpoints = Vec::new();
    let mut seen: HashMap<SocketAddr, (usize, usize)> = HashMap::new();
    let mut priority_weights: BTreeMap<u32, u64> = BTreeMap::new();
    for (i, l) in cla.endpoints.iter().enumerate() {
        let at = localities_at.index(i);
        if let Some(LbConfig::LedsClusterLocalityConfig(_)) = &l.lb_config {
            let at = at.field("leds_cluster_locality_config");
            return Err(at.error("LEDS is not supported"));
        }
        let locality = l
            .locality
            .as_ref()
            .map_or_else(Locality::default, |l| Locality {
                region: l.region.clone(),
                zone: l.zone.clone(),
                sub_zone: l.sub_zone.clone(),
            });
        let locality_weight = match (l.load_balancing_weight, unweighted) {
            (Some(w), _) if w.value > 0 => Some(w.value),
            (_, Unweighted::LeaveOut) => continue,
            (None, Unweighted::Keep) => None,
            (Some(_), Unweighted::Keep) => {
                return Err(at
                    .field("load_balancing_weight")
                    .error("must be at least 1"));
            }
        };
        let priority_weight = priority_weights.entry(l.priority).or_default();
        *priority_weight += u64::from(locality_weight.unwrap_or(0));
        if *priority_weight > u64::from(u32::MAX) {
            let reason = format!(
                "the locality weights of priority {} sum to more than 2^32 - 1",
                l.priority
            );
            return Err(at.field("load_balancing_weight").error(reason));
        }
        let list_at = at.field("lb_endpoints");
        let mut total = 0u64;
        for (j, e) in l.lb_endpoints.iter().enumerate() {
            let at = list_at.index(j);
            let endpoint = lb_endpoint(e, &at)?;
            if let Some((i, j)) = seen.insert(endpoint.addr, (i, j)) {
                let endpoint_at = at.field("endpoint");
                let at = endpoint_at.field("address");
                let reason = format!("{} is also endpoints[{i}].lb_endpoints[{j}]", endpoint.addr);
                return Err(at.error(reason));
            }
            total += u64::from(endpoint.weight);
            endpoints.push(Endpoint {
                locality: locality.clone(),
                locality_weight,
                priority: l.priority,
                ..endpoint
            });
        }
        if total > u64::from(u32::MAX) {
            return Err(list_at.error("the weights sum to more than 2^32 - 1"));
        }
    }
    if let Some(missing) = (0u32..)
        .zip(priority_weights.keys())
        .find(|(want, have)| want != *have)
        .map(|(want, _)| want)
    {
        let reason = format!("no locality has priority {missing}; priorities must not skip one");
        return Err(localities_at.error(reason));
    }
    let policy_at = at.field("policy");
    let drops_at = policy_at.field("drop_overloads");
    let drop_overloads = cla
        .policy
        .iter()
        .flat_map(|p| p.drop_overloads.iter().enumerate())
        .map(|(i, d)| {
            let percent = match &d.drop_percentage {
                Some(p) => proto::fraction(p, &drops_at.index(i).field("drop_percentage"))?,
                None => Percent::NONE,
            };
            Ok(DropOverload {
                category: d.category.clone(),
                percent,
            })
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    Ok(XdsLoadAssignment {
        cluster_name: cla.cluster_name.clone(),
        endpoints: EndpointSet::new(endpoints).with_drops(drop_overloads),
    })
}

fn lb_endpoint(e: &eds::LbEndpoint, at: &At<'_>) -> Result<Endpoint, FieldError> {
    let endpoint_at = at.field("endpoint");
    let endpoint = match &e.host_identifier {
        Some(HostIdentifier::Endpoint(endpoint)) => endpoint,
        Some(HostIdentifier::EndpointName(_)) => {
            let at = at.field("endpoint_name");
            return Err(at.error("named endpoints are not supported"));
        }
        None => return Err(endpoint_at.error("missing")),
    };
    let address_at = endpoint_at.field("address");
    let (host, port) = host_port(endpoint.address.as_ref(), &address_at)?;
    let ip: IpAddr = host.parse().map_err(|_| {
        let socket_at = address_at.field("socket_address");
        socket_at
            .field("address")
            .error(format_args!("{host:?} is not an IP address"))
    })?;
    let weight = match e.load_balancing_weight {
        None => 1,
        Some(w) if w.value == 0 => {
            return Err(at
                .field("load_balancing_weight")
                .error("must be at least 1"));
        }
        Some(w) => w.value,
    };
    let health = match HealthStatus::try_from(e.health_status) {
        Ok(HealthStatus::Unknown) => Health::Unknown,
        Ok(HealthStatus::Healthy) => Health::Healthy,
        Ok(HealthStatus::Unhealthy | HealthStatus::Timeout | HealthStatus::Degraded) => {
            Health::Unhealthy
        }
        Ok(HealthStatus::Draining) => Health::Draining,
        Err(_) => {
            let at = at.field("health_status");
            return Err(at.error(format_args!("unknown status {}", e.health_status)));
        }
    };
    Ok(Endpoint {
        weight,
        health,
        labels: labels(e.metadata.as_ref()),
        ..Endpoint::new(SocketAddr::new(ip, port))
    })
}

/// The host and TCP port of a socket address (a host name is returned as
/// written: LOGICAL_DNS clusters resolve it).
pub(crate) fn host_port<'a>(
    address: Option<&'a Address>,
    at: &At<'_>,
) -> Result<(&'a str, u16), FieldError> {
    let sa = match address.and_then(|a| a.address.as_ref()) {
        None => return Err(at.error("missing")),
        Some(address::Address::SocketAddress(sa)) => sa,
        Some(address::Address::Pipe(_)) => {
            return Err(at.field("pipe").error("Unix sockets are not supported"));
        }
        Some(address::Address::EnvoyInternalAddress(_)) => {
            let at = at.field("envoy_internal_address");
            return Err(at.error("internal addresses are not supported"));
        }
    };
    let at = at.field("socket_address");
    if sa.protocol != Protocol::Tcp as i32 {
        return Err(at.field("protocol").error("only TCP is supported"));
    }
    if sa.address.is_empty() {
        return Err(at.field("address").error("must not be empty"));
    }
    let port = match &sa.port_specifier {
        Some(PortSpecifier::PortValue(p)) => {
            u16::try_from(*p).ok().filter(|p| *p != 0).ok_or_else(|| {
                at.field("port_value")
                    .error(format_args!("{p} is not a port"))
            })?
        }
        Some(PortSpecifier::NamedPort(_)) => {
            return Err(at
                .field("named_port")
                .error("named ports are not supported"));
        }
        None => return Err(at.field("port_value").error("missing")),
    };
    Ok((&sa.address, port))
}

/// Metadata sections whose fields are labels as they are.
const LABEL_SECTIONS: [&str; 2] = ["envoy.lb", "envoy.transport_socket_match"];

fn labels(metadata: Option<&Metadata>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let Some(m) = metadata else {
        return labels;
    };
    for section in LABEL_SECTIONS {
        if let Some(s) = m.filter_metadata.get(section) {
            labels.extend(proto::string_fields(s));
        }
    }
    let workload = m
        .filter_metadata
        .get("istio")
        .and_then(|s| s.fields.get("workload"))
        .and_then(|v| match &v.kind {
            Some(Kind::StringValue(s)) => Some(s.as_str()),
            _ => None,
        });
    if let Some(workload) = workload {
        let parts: Vec<&str> = workload.split(';').collect();
        if let [_, _, service, revision, ..] = parts[..] {
            for (key, value) in [
                ("service.istio.io/canonical-name", service),
                ("service.istio.io/canonical-revision", revision),
            ] {
                if !value.is_empty() {
                    labels.insert(key.to_owned(), value.to_owned());
                }
            }
        }
    }
    labels
}

#[cfg(test)]
pub(crate) mod tests;
