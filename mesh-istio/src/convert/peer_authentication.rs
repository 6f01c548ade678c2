//! Istio's `PeerAuthentication` resolved for one port of a workload: the
//! most specific policy that sets a mode wins (the workload's, by its
//! selector, with its port-level setting first; then its namespace's
//! without a selector; then the mesh's, in the root namespace); `UNSET`
//! inherits, and with no policy the mode is PERMISSIVE.

use mesh_core::security::MtlsMode;

use super::super::api::{MutualTlsMode, PeerAuthentication};
use super::super::{ROOT_NAMESPACE, Resources, Sourced, Workload};

/// The mutual TLS mode of `workload`'s port `port`.
pub(crate) fn mode(resources: &Resources, workload: &Workload, port: u16) -> MtlsMode {
    let set = |m: MutualTlsMode| match m {
        MutualTlsMode::Unset => None,
        MutualTlsMode::Disable => Some(MtlsMode::Disable),
        MutualTlsMode::Permissive => Some(MtlsMode::Permissive),
        MutualTlsMode::Strict => Some(MtlsMode::Strict),
    };
    let policies = &resources.peer_authentications;
    let in_namespace =
        |p: &&Sourced<PeerAuthentication>, ns: &str| p.resource.metadata.namespace() == ns;
    let own = policies
        .iter()
        .filter(|p| in_namespace(p, &workload.namespace))
        .find(|p| {
            p.resource.spec.selector.as_ref().is_some_and(|s| {
                !s.match_labels.is_empty()
                    && s.match_labels
                        .iter()
                        .all(|(k, v)| workload.labels.get(k) == Some(v))
            })
        })
        .and_then(|p| {
            let spec = &p.resource.spec;
            let port_level = spec.port_level_mtls.get(&u32::from(port));
            port_level
                .and_then(|m| set(m.mode))
                .or_else(|| spec.mtls.and_then(|m| set(m.mode)))
        });
    let namespace_wide = |ns: &str| {
        policies
            .iter()
            .filter(|p| in_namespace(p, ns) && p.resource.spec.selector.is_none())
            .find_map(|p| p.resource.spec.mtls.and_then(|m| set(m.mode)))
    };
    own.or_else(|| namespace_wide(&workload.namespace))
        .or_else(|| namespace_wide(ROOT_NAMESPACE))
        .unwrap_or_default()
}
