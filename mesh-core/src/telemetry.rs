//! Who a workload is, as Istio's proxies tell each other (their metadata
//! exchange) and label their metrics with: its instance, namespace,
//! workload, owner, cluster, and its app, version and canonical service
//! and revision. [`WorkloadMetadata::from_labels`] derives the canonical
//! service and revision from a pod's labels as Istio does.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Istio's label naming a workload's canonical service.
pub const CANONICAL_NAME_LABEL: &str = "service.istio.io/canonical-name";

/// Istio's label naming a workload's canonical revision.
pub const CANONICAL_REVISION_LABEL: &str = "service.istio.io/canonical-revision";

/// A workload's identity for telemetry; `None` where it is not known (a
/// metric label then reads `unknown`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkloadMetadata {
    /// The instance: the pod's name (Istio's `NAME`).
    pub name: Option<Arc<str>>,
    /// Its namespace (`NAMESPACE`).
    pub namespace: Option<Arc<str>>,
    /// The workload the instance belongs to, a Deployment's name, say
    /// (`WORKLOAD_NAME`).
    pub workload_name: Option<Arc<str>>,
    /// What owns it (`OWNER`:
    /// `kubernetes://apis/apps/v1/namespaces/NS/deployments/NAME`).
    pub owner: Option<Arc<str>>,
    /// The cluster it runs in (`CLUSTER_ID`, `Kubernetes` by Istio's
    /// default).
    pub cluster_id: Option<Arc<str>>,
    /// Its `app` label.
    pub app: Option<Arc<str>>,
    /// Its `version` label.
    pub version: Option<Arc<str>>,
    /// Its canonical service ([`CANONICAL_NAME_LABEL`]).
    pub canonical_service: Option<Arc<str>>,
    /// Its canonical revision ([`CANONICAL_REVISION_LABEL`]).
    pub canonical_revision: Option<Arc<str>>,
}

impl WorkloadMetadata {
    /// The instance `name` of the workload `workload_name` in `namespace`,
    /// with a pod's `labels`: `app` and `version` as labelled, the
    /// canonical service from [`CANONICAL_NAME_LABEL`], else
    /// `app.kubernetes.io/name`, else `app`, else the workload's name; the
    /// canonical revision from [`CANONICAL_REVISION_LABEL`], else
    /// `app.kubernetes.io/version`, else `version`, else `latest` (as
    /// Istio's injector derives them).
    pub fn from_labels(
        name: &str,
        namespace: &str,
        workload_name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Self {
        let label = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| labels.get(*k).filter(|v| !v.is_empty()))
                .map(|v| Arc::<str>::from(v.as_str()))
        };
        let text = |s: &str| (!s.is_empty()).then(|| Arc::<str>::from(s));
        Self {
            name: text(name),
            namespace: text(namespace),
            workload_name: text(workload_name),
            owner: None,
            cluster_id: None,
            app: label(&["app"]),
            version: label(&["version"]),
            canonical_service: label(&[CANONICAL_NAME_LABEL, "app.kubernetes.io/name", "app"])
                .or_else(|| text(workload_name)),
            canonical_revision: label(&[
                CANONICAL_REVISION_LABEL,
                "app.kubernetes.io/version",
                "version",
            ])
            .or_else(|| Some("latest".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_service_and_revision_fall_back_as_istio_derives_them() {
        let labels = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>()
        };
        let m = WorkloadMetadata::from_labels(
            "reviews-v2-5f7b-x",
            "default",
            "reviews-v2",
            &labels(&[("app", "reviews"), ("version", "v2")]),
        );
        assert_eq!(m.canonical_service.as_deref(), Some("reviews"));
        assert_eq!(m.canonical_revision.as_deref(), Some("v2"));
        assert_eq!(m.app.as_deref(), Some("reviews"));
        let m = WorkloadMetadata::from_labels(
            "p",
            "shop",
            "cart",
            &labels(&[
                (CANONICAL_NAME_LABEL, "checkout"),
                ("app.kubernetes.io/version", "1.2"),
            ]),
        );
        assert_eq!(m.canonical_service.as_deref(), Some("checkout"));
        assert_eq!(m.canonical_revision.as_deref(), Some("1.2"));
        assert_eq!(m.app, None);
        let m = WorkloadMetadata::from_labels("p", "shop", "cart", &BTreeMap::new());
        assert_eq!(m.canonical_service.as_deref(), Some("cart"));
        assert_eq!(m.canonical_revision.as_deref(), Some("latest"));
    }
}
