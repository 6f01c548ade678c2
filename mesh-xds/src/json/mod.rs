//! xDS resources as protobuf JSON, the form people read them in: the
//! canonical proto3 mapping, as `protojson` and `grpcurl` print it.
//! Envoy's `/config_dump` prints the same values under the proto field
//! names (`eds_cluster_config` where this has `edsClusterConfig`).
//!
//! [`resource_json`] turns a packed resource (a `Listener`,
//! `RouteConfiguration`, `Cluster`, `ClusterLoadAssignment`, or any other
//! message `envoy-types` has) into a [`serde_json::Value`]: field names in
//! camelCase, `"@type"` first in every `Any` and every nested `Any`
//! (`typed_config`, `api_listener`, `typed_per_filter_config`) expanded in
//! place, durations as strings (`"10s"`, `"0.030s"`), enums by name,
//! 64-bit integers as strings, `bytes` as base64 and fields at their
//! default left out.
//!
//! It reads by reflection, with the descriptors that `envoy-types` was
//! generated from (see `descriptors.rs`), so every message of that crate is
//! known, as are `xds.type.v3.TypedStruct` and `udpa.type.v1.TypedStruct`.
//! Nothing is dropped silently: a type without a descriptor, bytes that do
//! not decode as their type, and a field the descriptors do not have (which
//! the JSON would leave out) are each a [`JsonError`] naming the type URL.

mod descriptors;
#[cfg(test)]
mod tests;

use envoy_types::pb::google::protobuf::Any;
use prost_reflect::prost::{DecodeError, Message as _};

use crate::resource::ResourceType;
use prost_reflect::{DynamicMessage, ReflectMessage, Value};

/// A resource that cannot be written as protobuf JSON.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// No descriptor for the type, the resource's or that of an `Any`
    /// inside it.
    #[error("no descriptor for {type_url}")]
    UnknownType {
        /// The type URL (`type.googleapis.com/envoy.config.listener.v3.Listener`).
        type_url: String,
    },
    /// The bytes of the resource, or of an `Any` inside it, are not a
    /// message of their type.
    #[error("{type_url} does not decode")]
    Decode {
        /// The type the bytes claim to be.
        type_url: String,
        /// Why they are not.
        #[source]
        source: DecodeError,
    },
    /// A field the descriptors lack, which the JSON would leave out: the
    /// resource was written from newer protos than these descriptors.
    #[error("{type_url} has field {number} of {message}, which its descriptor lacks")]
    UnknownField {
        /// The type of the resource, or of the `Any` inside it, that
        /// holds the field.
        type_url: String,
        /// The message the field is in (`envoy.config.core.v3.Address`).
        message: String,
        /// The field's number.
        number: u32,
    },
    /// A value protobuf JSON cannot express, such as a duration beyond
    /// ±10,000 years.
    #[error("{type_url} has a value protobuf JSON cannot express")]
    Serialize {
        /// The resource's type.
        type_url: String,
        /// The value and why.
        #[source]
        source: serde_json::Error,
    },
}

impl JsonError {
    /// The type URL the error is about.
    pub fn type_url(&self) -> &str {
        match self {
            Self::UnknownType { type_url }
            | Self::Decode { type_url, .. }
            | Self::UnknownField { type_url, .. }
            | Self::Serialize { type_url, .. } => type_url,
        }
    }
}

/// The resource `any` holds as protobuf JSON, with its `"@type"`.
///
/// ```
/// use mesh_xds::json::resource_json;
/// use mesh_xds::translate;
///
/// let listener = translate::api_listener("reviews:9080", "outbound|9080||reviews");
/// let (_, any) = translate::entry(&listener.name, &listener);
/// let json = resource_json(&any)?;
/// assert_eq!(json["@type"], "type.googleapis.com/envoy.config.listener.v3.Listener");
/// assert_eq!(json["apiListener"]["apiListener"]["rds"]["routeConfigName"], "outbound|9080||reviews");
/// # Ok::<(), mesh_xds::json::JsonError>(())
/// ```
pub fn resource_json(any: &Any) -> Result<serde_json::Value, JsonError> {
    let mut message = decode(&any.type_url, &any.value)?;
    prepare(&mut message, &any.type_url)?;
    let pool = descriptors::pool();
    let desc = pool
        .get_message_by_name("google.protobuf.Any")
        .expect("envoy-types has google.protobuf.Any");
    let mut packed = DynamicMessage::new(desc);
    packed.set_field_by_number(1, Value::String(any.type_url.clone()));
    packed.set_field_by_number(2, Value::Bytes(message.encode_to_vec().into()));
    serde_json::to_value(&packed).map_err(|source| JsonError::Serialize {
        type_url: any.type_url.clone(),
        source,
    })
}

/// Resources by type as one JSON object: each type's name (`LDS`, `RDS`,
/// `CDS`, `EDS`) to the list of its resources, as `mesh-control
/// translate` prints them.
pub fn resources_json(
    resources: &[(ResourceType, Vec<(String, Any)>)],
) -> Result<serde_json::Value, JsonError> {
    let mut out = serde_json::Map::new();
    for (kind, entries) in resources {
        let list = entries
            .iter()
            .map(|(_, any)| resource_json(any))
            .collect::<Result<Vec<_>, _>>()?;
        out.insert(kind.to_string(), list.into());
    }
    Ok(out.into())
}

/// The message of type `type_url` in `bytes`.
fn decode(type_url: &str, bytes: &[u8]) -> Result<DynamicMessage, JsonError> {
    let unknown = || JsonError::UnknownType {
        type_url: type_url.to_owned(),
    };
    let (_, name) = type_url.rsplit_once('/').ok_or_else(unknown)?;
    let desc = descriptors::pool()
        .get_message_by_name(name)
        .ok_or_else(unknown)?;
    DynamicMessage::decode(desc, bytes).map_err(|source| JsonError::Decode {
        type_url: type_url.to_owned(),
        source,
    })
}

/// What a private key is written as.
const REDACTED: &str = "[redacted]";

/// Readies `m` (inside the `Any` of `type_url`) for JSON: refuses what
/// the JSON would drop or fail on (unknown fields in it and in every
/// message under it, and `Any`s that do not decode) and blanks every
/// private key written inline (a `TlsCertificate`'s `private_key`, as in
/// an SDS `Secret`; a file's name stays), in nested `Any`s too, which are packed again: the JSON is
/// for people and logs, and never holds a key, as Envoy's `/config_dump`
/// redacts them.
fn prepare(m: &mut DynamicMessage, type_url: &str) -> Result<(), JsonError> {
    if let Some(field) = m.unknown_fields().next() {
        return Err(JsonError::UnknownField {
            type_url: type_url.to_owned(),
            message: m.descriptor().full_name().to_owned(),
            number: field.number(),
        });
    }
    let desc = m.descriptor();
    if desc.full_name() == "envoy.extensions.transport_sockets.tls.v3.TlsCertificate"
        && let Some(field) = desc.get_field_by_name("private_key")
        && let Value::Message(key) = m.get_field(&field).as_ref()
        && ["inline_string", "inline_bytes"]
            .iter()
            .any(|inline| key.has_field_by_name(inline))
    {
        let mut blank = DynamicMessage::new(key.descriptor());
        blank.set_field_by_name("inline_string", Value::String(REDACTED.to_owned()));
        m.set_field(&field, Value::Message(blank));
    }
    m.fields_mut()
        .try_for_each(|(_, value)| prepare_value(value, type_url))
}

fn prepare_value(value: &mut Value, type_url: &str) -> Result<(), JsonError> {
    match value {
        Value::Message(m) if m.descriptor().full_name() == "google.protobuf.Any" => {
            let url = m.get_field_by_number(1);
            let url = url
                .as_deref()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let bytes = m.get_field_by_number(2);
            let bytes = bytes.as_deref().and_then(Value::as_bytes);
            let mut inner = decode(&url, bytes.map_or(&[][..], |b| &b[..]))?;
            prepare(&mut inner, &url)?;
            m.set_field_by_number(2, Value::Bytes(inner.encode_to_vec().into()));
            Ok(())
        }
        Value::Message(m) => prepare(m, type_url),
        Value::List(values) => values
            .iter_mut()
            .try_for_each(|v| prepare_value(v, type_url)),
        Value::Map(entries) => entries
            .values_mut()
            .try_for_each(|v| prepare_value(v, type_url)),
        _ => Ok(()),
    }
}
