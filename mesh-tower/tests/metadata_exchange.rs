//! The peer metadata header against another implementation of its format:
//! Python's `protobuf` (Google's own `google.protobuf.Struct`, which
//! istio/proxy's Go tests encode with too) writes a header as Istio's
//! proxies do, padded and unpadded, and the mesh reads it; the mesh's own
//! header is read back by Python field for field.
//!
//! Python is [`support::python`]'s, with the protobuf `.ci/run` pins.

use std::sync::Arc;

use mesh_core::telemetry::WorkloadMetadata;
use mesh_tower::metadata_exchange::codec;
use support::python::{has, run};

mod support;

/// Encodes the JSON object argv[1] as Istio's header, padded unless
/// argv[2] is `raw`.
const ENCODE: &str = r#"
import base64, json, sys
from google.protobuf import struct_pb2
s = struct_pb2.Struct()
s.update(json.loads(sys.argv[1]))
b = base64.b64encode(s.SerializeToString(deterministic=True)).decode()
print(b.rstrip("=") if sys.argv[2] == "raw" else b)
"#;

/// Decodes the header argv[1] into JSON.
const DECODE: &str = r#"
import base64, json, sys
from google.protobuf import struct_pb2, json_format
s = struct_pb2.Struct()
s.ParseFromString(base64.b64decode(sys.argv[1]))
print(json.dumps(json_format.MessageToDict(s), sort_keys=True))
"#;

#[test]
fn the_header_reads_and_writes_as_google_protobuf_struct_does() {
    if !has(
        "google.protobuf.struct_pb2",
        "the peer metadata interop test",
    ) {
        return;
    }
    // As an Istio 1.14 sidecar sends it: more fields than are kept.
    let istio = serde_json::json!({
        "APP_CONTAINERS": "reviews",
        "CLUSTER_ID": "Kubernetes",
        "INSTANCE_IPS": "10.0.0.7",
        "ISTIO_VERSION": "1.14.5",
        "LABELS": {
            "app": "reviews",
            "pod-template-hash": "58b6479b",
            "security.istio.io/tlsMode": "istio",
            "service.istio.io/canonical-name": "reviews",
            "service.istio.io/canonical-revision": "v3",
            "version": "v3"
        },
        "MESH_ID": "cluster.local",
        "NAME": "reviews-v3-58b6479b-62rv5",
        "NAMESPACE": "default",
        "OWNER": "kubernetes://apis/apps/v1/namespaces/default/deployments/reviews-v3",
        "PLATFORM_METADATA": {},
        "WORKLOAD_NAME": "reviews-v3"
    })
    .to_string();
    let expected = WorkloadMetadata {
        name: Some("reviews-v3-58b6479b-62rv5".into()),
        namespace: Some("default".into()),
        workload_name: Some("reviews-v3".into()),
        owner: Some("kubernetes://apis/apps/v1/namespaces/default/deployments/reviews-v3".into()),
        cluster_id: Some("Kubernetes".into()),
        app: Some("reviews".into()),
        version: Some("v3".into()),
        canonical_service: Some("reviews".into()),
        canonical_revision: Some("v3".into()),
    };
    for padding in ["padded", "raw"] {
        let header = run(ENCODE, &[&istio, padding]).unwrap();
        assert_eq!(
            codec::decode(header.as_bytes()).as_ref(),
            Ok(&expected),
            "{padding}"
        );
    }

    let ours = codec::encode(&WorkloadMetadata {
        app: Some(Arc::from("ratings")),
        ..expected.clone()
    });
    let read: serde_json::Value = serde_json::from_str(&run(DECODE, &[&ours]).unwrap()).unwrap();
    assert_eq!(
        read,
        serde_json::json!({
            "CLUSTER_ID": "Kubernetes",
            "LABELS": {
                "app": "ratings",
                "service.istio.io/canonical-name": "reviews",
                "service.istio.io/canonical-revision": "v3",
                "version": "v3"
            },
            "NAME": "reviews-v3-58b6479b-62rv5",
            "NAMESPACE": "default",
            "OWNER": "kubernetes://apis/apps/v1/namespaces/default/deployments/reviews-v3",
            "WORKLOAD_NAME": "reviews-v3"
        })
    );
}
