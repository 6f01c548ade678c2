//! The mesh's own balancer in a cluster's `load_balancing_policy`:
//! peak-EWMA power of two choices (linkerd's), as a custom policy in the
//! way gRFC A52 names one, a `TypedStruct` in the policy's `typed_config`.
//!
//! The `TypedStruct` (`xds.type.v3.TypedStruct`, or the older
//! `udpa.type.v1.TypedStruct`) has [`PEAK_EWMA_TYPE_URL`] for its
//! `type_url`; its `value` may set `default_rtt` and `decay`, as protobuf
//! JSON durations (`"0.030s"`). A control plane lists it first and a
//! standard policy after it: gRPC and Envoy skip what they do not know.
//! A `TypedStruct` naming another policy is skipped here in the same way.

use std::time::Duration;

use envoy_types::pb::google::protobuf::{self as pb, Any, value::Kind};
use mesh_core::policy::{LoadBalancer, PeakEwma};
use prost::Message;

use crate::resource::error::{At, FieldError};
use crate::resource::proto;

/// The `type_url` of the peak-EWMA policy's `TypedStruct`.
pub const PEAK_EWMA_TYPE_URL: &str =
    "type.googleapis.com/mesh.load_balancing_policies.peak_ewma.v1.PeakEwma";

/// `xds.type.v3.TypedStruct` (and `udpa.type.v1.TypedStruct`, the same
/// fields): a policy's name and its configuration as JSON.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct TypedStruct {
    #[prost(string, tag = "1")]
    pub(crate) type_url: String,
    #[prost(message, optional, tag = "2")]
    pub(crate) value: Option<pb::Struct>,
}

pub(crate) const TYPED_STRUCTS: [&str; 2] = ["xds.type.v3.TypedStruct", "udpa.type.v1.TypedStruct"];

/// The peak-EWMA policy `any` holds, `None` if it holds another.
pub(super) fn peak_ewma(any: &Any, at: &At<'_>) -> Result<Option<LoadBalancer>, FieldError> {
    let type_name = |url: &str| url.rsplit('/').next().unwrap_or_default().to_owned();
    if !TYPED_STRUCTS.contains(&type_name(&any.type_url).as_str()) {
        return Ok(None);
    }
    let typed = TypedStruct::decode(any.value.as_slice())
        .map_err(|e| at.error(format_args!("cannot decode: {e}")))?;
    if type_name(&typed.type_url) != type_name(PEAK_EWMA_TYPE_URL) {
        return Ok(None);
    }
    let mut ewma = PeakEwma::default();
    let value_at = at.field("value");
    for (key, value) in typed.value.iter().flat_map(|v| &v.fields) {
        let field_at = value_at.key(key);
        let slot = match key.as_str() {
            "default_rtt" => &mut ewma.default_rtt,
            "decay" => &mut ewma.decay,
            _ => return Err(field_at.error("unknown; peak EWMA has default_rtt and decay")),
        };
        *slot =
            match &value.kind {
                Some(Kind::StringValue(s)) => proto::json_duration(s)
                    .filter(|d| *d > Duration::ZERO)
                    .ok_or_else(|| field_at.error("a duration above zero, such as \"0.030s\""))?,
                _ => return Err(field_at.error("a duration string, such as \"0.030s\"")),
            };
    }
    Ok(Some(LoadBalancer::PeakEwma(ewma)))
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::cluster::v3::load_balancing_policy::Policy;
    use envoy_types::pb::envoy::config::cluster::v3::{Cluster, LoadBalancingPolicy};
    use envoy_types::pb::envoy::config::core::v3::TypedExtensionConfig;
    use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
    use envoy_types::pb::envoy::extensions::load_balancing_policies::round_robin::v3::RoundRobin;
    use prost::Name;

    use super::*;
    use crate::resource::XdsCluster;

    fn typed_struct(kind: &str, type_url: &str, fields: &[(&str, Kind)]) -> Any {
        let value = pb::Struct {
            fields: fields
                .iter()
                .map(|(k, v)| {
                    (
                        (*k).to_owned(),
                        pb::Value {
                            kind: Some(v.clone()),
                        },
                    )
                })
                .collect(),
        };
        let typed = TypedStruct {
            type_url: type_url.into(),
            value: Some(value),
        };
        Any {
            type_url: format!("type.googleapis.com/{kind}"),
            value: typed.encode_to_vec(),
        }
    }

    /// A cluster whose policies are `anys`, in order.
    fn balanced_by(anys: Vec<Any>) -> Result<LoadBalancer, String> {
        let policies = anys
            .into_iter()
            .map(|any| Policy {
                typed_extension_config: Some(TypedExtensionConfig {
                    name: "policy".into(),
                    typed_config: Some(any),
                }),
            })
            .collect();
        let c = Cluster {
            name: "c".into(),
            load_balancing_policy: Some(LoadBalancingPolicy { policies }),
            load_assignment: Some(ClusterLoadAssignment {
                cluster_name: "c".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        XdsCluster::try_from(&c)
            .map(|c| c.policy.load_balancer)
            .map_err(|e| e.to_string())
    }

    fn round_robin() -> Any {
        Any {
            type_url: RoundRobin::type_url(),
            value: RoundRobin::default().encode_to_vec(),
        }
    }

    fn string(s: &str) -> Kind {
        Kind::StringValue(s.into())
    }

    #[test]
    fn peak_ewma_is_named_by_a_typed_struct() {
        let ewma = typed_struct(
            "xds.type.v3.TypedStruct",
            PEAK_EWMA_TYPE_URL,
            &[("default_rtt", string("0.050s")), ("decay", string("5s"))],
        );
        assert_eq!(
            balanced_by(vec![ewma, round_robin()]),
            Ok(LoadBalancer::PeakEwma(PeakEwma {
                default_rtt: Duration::from_millis(50),
                decay: Duration::from_secs(5),
            }))
        );
        // The older TypedStruct, with the defaults.
        let old = typed_struct("udpa.type.v1.TypedStruct", PEAK_EWMA_TYPE_URL, &[]);
        assert_eq!(
            balanced_by(vec![old]),
            Ok(LoadBalancer::PeakEwma(PeakEwma::default()))
        );
        // Another custom policy is skipped for the next, as gRPC skips it.
        let other = typed_struct(
            "xds.type.v3.TypedStruct",
            "type.googleapis.com/x.Other",
            &[],
        );
        assert_eq!(
            balanced_by(vec![other, round_robin()]),
            Ok(LoadBalancer::RoundRobin)
        );
    }

    #[test]
    fn bad_peak_ewma_settings_are_nacked_by_field() {
        let with = |fields: &[(&str, Kind)]| {
            balanced_by(vec![typed_struct(
                "xds.type.v3.TypedStruct",
                PEAK_EWMA_TYPE_URL,
                fields,
            )])
            .unwrap_err()
        };
        let at = "Cluster \"c\": load_balancing_policy.policies[0].typed_extension_config.typed_config.value";
        assert_eq!(
            with(&[("decay", string("0s"))]),
            format!("{at}[\"decay\"]: a duration above zero, such as \"0.030s\"")
        );
        assert_eq!(
            with(&[("default_rtt", Kind::NumberValue(30.0))]),
            format!("{at}[\"default_rtt\"]: a duration string, such as \"0.030s\"")
        );
        assert_eq!(
            with(&[("rtt", string("1s"))]),
            format!("{at}[\"rtt\"]: unknown; peak EWMA has default_rtt and decay")
        );
    }
}
