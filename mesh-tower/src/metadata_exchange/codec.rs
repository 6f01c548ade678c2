//! The value of `x-envoy-peer-metadata`, as istio/proxy's metadata exchange
//! writes it: standard base64 (padded; read either way) of a serialized
//! `google.protobuf.Struct` whose string fields are `NAME`, `NAMESPACE`,
//! `WORKLOAD_NAME`, `OWNER` and `CLUSTER_ID`, and whose `LABELS` struct
//! carries `app`, `version` and the canonical service and revision. Other
//! fields older proxies send (`ISTIO_VERSION`, `INSTANCE_IPS`, every label)
//! are read past; nothing else of the peer's is kept.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use mesh_core::telemetry::{CANONICAL_NAME_LABEL, CANONICAL_REVISION_LABEL, WorkloadMetadata};
use prost::Message;
use prost_types::{Struct, Value, value::Kind};

/// The longest header value read: Istio's are a few hundred bytes.
pub const MAX_ENCODED_LEN: usize = 8 * 1024;

/// Standard base64, written padded and read with or without padding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A peer's metadata header that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Longer than [`MAX_ENCODED_LEN`].
    #[error("peer metadata of {0} bytes is longer than {MAX_ENCODED_LEN}")]
    TooLong(usize),
    /// Not base64.
    #[error("peer metadata is not base64: {0}")]
    Base64(String),
    /// Not a serialized `google.protobuf.Struct`.
    #[error("peer metadata is not a protobuf Struct: {0}")]
    Protobuf(String),
}

/// `metadata` as the header's value.
pub fn encode(metadata: &WorkloadMetadata) -> String {
    let mut fields = BTreeMap::new();
    let put = |into: &mut BTreeMap<String, Value>, key: &str, value: &Option<Arc<str>>| {
        if let Some(v) = value {
            into.insert(key.to_owned(), string(v));
        }
    };
    put(&mut fields, "NAME", &metadata.name);
    put(&mut fields, "NAMESPACE", &metadata.namespace);
    put(&mut fields, "WORKLOAD_NAME", &metadata.workload_name);
    put(&mut fields, "OWNER", &metadata.owner);
    put(&mut fields, "CLUSTER_ID", &metadata.cluster_id);
    let mut labels = BTreeMap::new();
    put(&mut labels, "app", &metadata.app);
    put(&mut labels, "version", &metadata.version);
    put(
        &mut labels,
        CANONICAL_NAME_LABEL,
        &metadata.canonical_service,
    );
    put(
        &mut labels,
        CANONICAL_REVISION_LABEL,
        &metadata.canonical_revision,
    );
    if !labels.is_empty() {
        let labels = Kind::StructValue(Struct { fields: labels });
        fields.insert("LABELS".to_owned(), Value { kind: Some(labels) });
    }
    BASE64.encode(Struct { fields }.encode_to_vec())
}

/// The metadata in a header's value.
pub fn decode(value: &[u8]) -> Result<WorkloadMetadata, DecodeError> {
    if value.len() > MAX_ENCODED_LEN {
        return Err(DecodeError::TooLong(value.len()));
    }
    let bytes = BASE64
        .decode(value)
        .map_err(|e| DecodeError::Base64(e.to_string()))?;
    let fields = Struct::decode(bytes.as_slice())
        .map_err(|e| DecodeError::Protobuf(e.to_string()))?
        .fields;
    let text = |fields: &BTreeMap<String, Value>, key: &str| match fields.get(key)?.kind.as_ref()? {
        Kind::StringValue(s) if !s.is_empty() => Some(Arc::<str>::from(s.as_str())),
        _ => None,
    };
    let labels = match fields.get("LABELS").and_then(|v| v.kind.as_ref()) {
        Some(Kind::StructValue(s)) => s.fields.clone(),
        _ => BTreeMap::new(),
    };
    Ok(WorkloadMetadata {
        name: text(&fields, "NAME"),
        namespace: text(&fields, "NAMESPACE"),
        workload_name: text(&fields, "WORKLOAD_NAME"),
        owner: text(&fields, "OWNER"),
        cluster_id: text(&fields, "CLUSTER_ID"),
        app: text(&labels, "app"),
        version: text(&labels, "version"),
        canonical_service: text(&labels, CANONICAL_NAME_LABEL),
        canonical_revision: text(&labels, CANONICAL_REVISION_LABEL),
    })
}

fn string(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reviews() -> WorkloadMetadata {
        let labels = [("app", "reviews"), ("version", "v2")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        WorkloadMetadata {
            owner: Some(
                "kubernetes://apis/apps/v1/namespaces/default/deployments/reviews-v2".into(),
            ),
            cluster_id: Some("Kubernetes".into()),
            ..WorkloadMetadata::from_labels(
                "reviews-v2-7d8f-abcde",
                "default",
                "reviews-v2",
                &labels,
            )
        }
    }

    #[test]
    fn what_is_written_reads_back() {
        let m = reviews();
        assert_eq!(decode(encode(&m).as_bytes()), Ok(m));
        assert_eq!(
            decode(encode(&WorkloadMetadata::default()).as_bytes()),
            Ok(WorkloadMetadata::default())
        );
    }

    #[test]
    fn unpadded_base64_and_fields_it_does_not_keep_are_read() {
        let mut s = Struct::decode(BASE64.decode(encode(&reviews())).unwrap().as_slice()).unwrap();
        s.fields.insert("ISTIO_VERSION".into(), string("1.14.5"));
        s.fields.insert("INSTANCE_IPS".into(), string("10.0.0.7"));
        s.fields.insert(
            "PLATFORM_METADATA".into(),
            Value {
                kind: Some(Kind::StructValue(Struct::default())),
            },
        );
        let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(s.encode_to_vec());
        assert_eq!(decode(unpadded.as_bytes()), Ok(reviews()));
    }

    #[test]
    fn what_is_not_metadata_is_an_error() {
        assert!(matches!(
            decode(b"not base64!"),
            Err(DecodeError::Base64(_))
        ));
        // Base64 of bytes that are no Struct (a field of wire type 7).
        let junk = BASE64.encode([0x0f, 0xff, 0xff]);
        assert!(matches!(
            decode(junk.as_bytes()),
            Err(DecodeError::Protobuf(_))
        ));
        let long = vec![b'A'; MAX_ENCODED_LEN + 4];
        assert_eq!(
            decode(&long),
            Err(DecodeError::TooLong(MAX_ENCODED_LEN + 4))
        );
    }
}
