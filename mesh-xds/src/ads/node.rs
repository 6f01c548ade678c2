//! The bootstrap's [`Node`] as the `Node` proto the first request of a
//! stream carries.

use envoy_types::pb::envoy::config::core::v3 as core;
use envoy_types::pb::google::protobuf::{self as pb, value::Kind};
use serde_json::Value;

use crate::bootstrap::Node;

/// The user agent gRPC's xDS clients report, the mesh's name here.
const USER_AGENT_NAME: &str = "mesh";

/// `node` as xDS sends it, with the mesh's user agent.
pub(super) fn to_proto(node: &Node) -> core::Node {
    let locality = &node.locality;
    let has_locality =
        !(locality.region.is_empty() && locality.zone.is_empty() && locality.sub_zone.is_empty());
    core::Node {
        id: node.id.clone(),
        cluster: node.cluster.clone(),
        metadata: (!node.metadata.is_empty()).then(|| pb::Struct {
            fields: node
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), value(v)))
                .collect(),
        }),
        locality: has_locality.then(|| core::Locality {
            region: locality.region.clone(),
            zone: locality.zone.clone(),
            sub_zone: locality.sub_zone.clone(),
        }),
        user_agent_name: USER_AGENT_NAME.into(),
        user_agent_version_type: Some(core::node::UserAgentVersionType::UserAgentVersion(
            env!("CARGO_PKG_VERSION").into(),
        )),
        ..core::Node::default()
    }
}

/// A JSON value as a `google.protobuf.Value`.
fn value(v: &Value) -> pb::Value {
    let kind = match v {
        Value::Null => Kind::NullValue(pb::NullValue::NullValue as i32),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(pb::ListValue {
            values: items.iter().map(value).collect(),
        }),
        Value::Object(fields) => Kind::StructValue(pb::Struct {
            fields: fields.iter().map(|(k, v)| (k.clone(), value(v))).collect(),
        }),
    };
    pb::Value { kind: Some(kind) }
}
