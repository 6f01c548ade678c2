//! Endpoint sets as EDS: an [`EndpointSet`] into a `ClusterLoadAssignment`
//! that [`XdsLoadAssignment`](crate::resource::XdsLoadAssignment) reads
//! back as the same set.
//!
//! Endpoints are grouped into one `LocalityLbEndpoints` per priority and
//! locality (in that order), carrying the locality's weight; each endpoint
//! keeps its weight and health, and its labels become string fields of
//! its `envoy.lb` metadata. Drop overloads are written in parts per
//! million.
//!
//! Refused: an endpoint without a locality weight (EDS leaves such a
//! locality out, as gRPC does), endpoints of one locality and priority
//! with different locality weights, a weight of 0, and priorities that
//! skip a number.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier;
use envoy_types::pb::envoy::config::core::v3::{
    Address, HealthStatus, Locality as ProtoLocality, Metadata, SocketAddress, address,
};
use envoy_types::pb::envoy::config::endpoint::v3 as eds;
use envoy_types::pb::google::protobuf::{self as pb, UInt32Value, value::Kind};
use mesh_core::{Endpoint, EndpointSet, Health, Locality};
use prost::Name;

use super::error::{Refused, TranslateError};
use super::fraction;

/// The metadata section whose string fields are an endpoint's labels.
const LB_METADATA: &str = "envoy.lb";

/// The EDS resource `name` holding `endpoints`.
///
/// ```
/// use mesh_core::{Endpoint, EndpointSet};
/// use mesh_xds::resource::XdsLoadAssignment;
/// use mesh_xds::translate;
///
/// let set: EndpointSet = [Endpoint::new("10.0.0.1:9080".parse()?)
///     .with_locality_weight(1)
///     .with_label("version", "v1")]
/// .into_iter()
/// .collect();
/// let cla = translate::load_assignment("outbound|9080|v1|reviews.default.svc.cluster.local", &set)?;
/// assert_eq!(XdsLoadAssignment::try_from(&cla)?.endpoints, set);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load_assignment(
    name: &str,
    endpoints: &EndpointSet,
) -> Result<eds::ClusterLoadAssignment, TranslateError> {
    let type_name = eds::ClusterLoadAssignment::NAME;
    let mut groups: BTreeMap<(u32, &Locality), (u32, Vec<eds::LbEndpoint>)> = BTreeMap::new();
    for e in endpoints {
        let refuse = |r: Refused| r.at(type_name, name, format!("endpoint {}", e.addr));
        let weight = e.locality_weight.filter(|w| *w > 0).ok_or_else(|| {
            refuse(Refused::new(
                "locality_weight",
                "EDS leaves out a locality without a weight",
            ))
        })?;
        let group = groups
            .entry((e.priority, &e.locality))
            .or_insert_with(|| (weight, Vec::new()));
        if group.0 != weight {
            return Err(refuse(Refused::new(
                "locality_weight",
                format_args!(
                    "{weight}, but another endpoint of its locality and priority has {}",
                    group.0
                ),
            )));
        }
        group.1.push(lb_endpoint(e).map_err(refuse)?);
    }
    let mut priorities: Vec<u32> = groups.keys().map(|(p, _)| *p).collect();
    priorities.dedup();
    if let Some(missing) = (0u32..)
        .zip(&priorities)
        .find(|(want, have)| want != *have)
        .map(|(want, _)| want)
    {
        let reason = format!("no endpoint has priority {missing}; priorities must not skip one");
        return Err(Refused::new("priority", reason).at(type_name, name, ""));
    }
    let drop_overloads = endpoints
        .drops()
        .iter()
        .map(|d| eds::cluster_load_assignment::policy::DropOverload {
            category: d.category.clone(),
            drop_percentage: Some(fraction(d.percent)),
        })
        .collect::<Vec<_>>();
    Ok(eds::ClusterLoadAssignment {
        cluster_name: name.to_owned(),
        endpoints: groups
            .into_iter()
            .map(
                |((priority, locality), (weight, lb_endpoints))| eds::LocalityLbEndpoints {
                    locality: Some(ProtoLocality {
                        region: locality.region.clone(),
                        zone: locality.zone.clone(),
                        sub_zone: locality.sub_zone.clone(),
                    }),
                    lb_endpoints,
                    load_balancing_weight: Some(UInt32Value { value: weight }),
                    priority,
                    ..Default::default()
                },
            )
            .collect(),
        policy: (!drop_overloads.is_empty()).then(|| eds::cluster_load_assignment::Policy {
            drop_overloads,
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn lb_endpoint(e: &Endpoint) -> Result<eds::LbEndpoint, Refused> {
    if e.weight == 0 {
        return Err(Refused::new("weight", "must be at least 1"));
    }
    if e.addr.port() == 0 {
        return Err(Refused::new("addr", "port 0 is not a port in EDS"));
    }
    let health = match e.health {
        Health::Unknown => HealthStatus::Unknown,
        Health::Healthy => HealthStatus::Healthy,
        Health::Unhealthy => HealthStatus::Unhealthy,
        Health::Draining => HealthStatus::Draining,
    };
    let metadata = (!e.labels.is_empty()).then(|| {
        let fields = e
            .labels
            .iter()
            .map(|(k, v)| {
                let kind = Some(Kind::StringValue(v.clone()));
                (k.clone(), pb::Value { kind })
            })
            .collect();
        Metadata {
            filter_metadata: [(LB_METADATA.to_owned(), pb::Struct { fields })].into(),
            ..Default::default()
        }
    });
    Ok(eds::LbEndpoint {
        host_identifier: Some(eds::lb_endpoint::HostIdentifier::Endpoint(eds::Endpoint {
            address: Some(Address {
                address: Some(address::Address::SocketAddress(SocketAddress {
                    address: e.addr.ip().to_string(),
                    port_specifier: Some(PortSpecifier::PortValue(u32::from(e.addr.port()))),
                    ..Default::default()
                })),
            }),
            ..Default::default()
        })),
        health_status: health as i32,
        metadata,
        load_balancing_weight: Some(UInt32Value { value: e.weight }),
    })
}
