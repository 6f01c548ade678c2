//! The descriptors of the messages `envoy-types` has, so that its messages
//! can be read by reflection.
//!
//! `envoy-types` generates its Rust types from a descriptor set that its
//! package carries (`src/generated/types.bin`) but does not export.
//! `descriptors.binpb` is that set without its source info (the proto
//! comments): 0.6 MB instead of 3.3 MB, the same messages, fields and
//! enums. Reading with the very set the Rust types came from means a
//! field written through `envoy-types` is a field the JSON knows. The test
//! `descriptors_are_envoy_types_own` compares the file with the set of the
//! `envoy-types` that Cargo resolved; after an upgrade of `envoy-types`,
//! `UPDATE_DESCRIPTORS=1 cargo test -p mesh-xds --features json descriptors` writes it
//! anew.
//!
//! `envoy-types` lacks `xds.type.v3.TypedStruct` and its older twin
//! `udpa.type.v1.TypedStruct`, which the mesh writes for policies that have
//! no Envoy message (mesh-xds declares its own Rust type for them); their
//! two one-message files are added here from their `.proto` source.

use std::sync::LazyLock;

use prost_reflect::DescriptorPool;
use prost_reflect::prost_types::field_descriptor_proto::{Label, Type};
use prost_reflect::prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorProto};

/// `envoy-types`' descriptor set, without source info.
const ENVOY_TYPES: &[u8] = include_bytes!("descriptors.binpb");

/// Every message of `envoy-types`, and the `TypedStruct`s.
pub(super) fn pool() -> &'static DescriptorPool {
    static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
        let mut pool = DescriptorPool::decode(ENVOY_TYPES)
            .expect("descriptors.binpb is a descriptor set (checked by its test)");
        pool.add_file_descriptor_protos([
            typed_struct("xds/type/v3/typed_struct.proto", "xds.type.v3"),
            typed_struct("udpa/type/v1/typed_struct.proto", "udpa.type.v1"),
        ])
        .expect("TypedStruct needs only google.protobuf.Struct");
        pool
    });
    &POOL
}

/// The file of `package.TypedStruct`, as cncf/xds declares it:
///
/// ```proto
/// message TypedStruct {
///   string type_url = 1;
///   google.protobuf.Struct value = 2;
/// }
/// ```
fn typed_struct(file: &str, package: &str) -> FileDescriptorProto {
    let field = |name: &str, number, kind: Type, type_name: Option<&str>| FieldDescriptorProto {
        name: Some(name.to_owned()),
        number: Some(number),
        label: Some(Label::Optional as i32),
        r#type: Some(kind as i32),
        type_name: type_name.map(str::to_owned),
        ..Default::default()
    };
    FileDescriptorProto {
        name: Some(file.to_owned()),
        package: Some(package.to_owned()),
        dependency: vec!["google/protobuf/struct.proto".to_owned()],
        message_type: vec![DescriptorProto {
            name: Some("TypedStruct".to_owned()),
            field: vec![
                field("type_url", 1, Type::String, None),
                field("value", 2, Type::Message, Some(".google.protobuf.Struct")),
            ],
            ..Default::default()
        }],
        syntax: Some("proto3".to_owned()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::process::Command;

    use prost_reflect::prost::Message;
    use prost_reflect::prost_types::FileDescriptorSet;

    use super::*;

    /// The platform this runs on, as rustc names it.
    fn host_triple() -> String {
        let out = Command::new("rustc")
            .arg("-vV")
            .output()
            .expect("rustc runs");
        let info = String::from_utf8_lossy(&out.stdout);
        info.lines()
            .find_map(|l| l.strip_prefix("host: "))
            .expect("rustc -vV names the host")
            .to_owned()
    }

    /// The descriptor set `envoy-types` ships, found through `cargo
    /// metadata` (offline, and for this platform only: Cargo has the
    /// sources it built with, not those of other platforms' crates).
    fn envoy_types_set() -> Vec<u8> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let out = Command::new(cargo)
            .args(["metadata", "--format-version=1", "--offline"])
            .args(["--filter-platform", &host_triple()])
            .args(["--manifest-path", manifest])
            .output()
            .expect("cargo metadata runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let manifests: Vec<&str> = metadata["packages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["name"] == "envoy-types")
            .filter_map(|p| p["manifest_path"].as_str())
            .collect();
        let [manifest] = manifests[..] else {
            panic!("one envoy-types in the dependency graph, not {manifests:?}");
        };
        let path = PathBuf::from(manifest).with_file_name("src/generated/types.bin");
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The set without what JSON does not need: comments and source spans.
    fn without_source_info(set: &[u8]) -> Vec<u8> {
        let mut set = FileDescriptorSet::decode(set).unwrap();
        for file in &mut set.file {
            file.source_code_info = None;
        }
        set.encode_to_vec()
    }

    #[test]
    fn descriptors_are_envoy_types_own() {
        let want = without_source_info(&envoy_types_set());
        if std::env::var_os("UPDATE_DESCRIPTORS").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/json/descriptors.binpb");
            std::fs::write(path, &want).unwrap();
            return;
        }
        assert!(
            want == ENVOY_TYPES,
            "descriptors.binpb is not the descriptor set of the envoy-types in use; \
             write it anew with UPDATE_DESCRIPTORS=1 cargo test -p mesh-xds --features json descriptors"
        );
    }

    #[test]
    fn the_pool_has_envoy_types_and_the_typed_structs() {
        for name in [
            "envoy.config.listener.v3.Listener",
            "envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin",
            "xds.type.v3.TypedStruct",
            "udpa.type.v1.TypedStruct",
        ] {
            assert!(pool().get_message_by_name(name).is_some(), "{name}");
        }
    }
}
