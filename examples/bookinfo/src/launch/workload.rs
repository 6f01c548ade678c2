//! One workload of the launcher: its certificate from the launcher's CA,
//! its mesh (a bootstrap to the embedded control plane, as
//! `mesh-sidecar` writes one) and its server on a free port of
//! 127.0.0.1, registered as an instance of its service.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use mesh_control::ca::Ca;
use mesh_core::registry::Instance;
use mesh_core::telemetry::WorkloadMetadata;
use mesh_sidecar::cli::{SourceArgs, WorkloadArgs};

use super::LaunchError;

/// How long a workload's certificate lives.
const CERT_TTL: Duration = Duration::from_secs(24 * 3600);

/// Which workload: `reviews` `v2`, the second of its instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    /// The app (`reviews`), which is its service's name.
    pub app: &'static str,
    /// Its version label.
    pub version: &'static str,
    /// Which of the version's instances (0, 1).
    pub instance: u32,
}

impl Spec {
    /// Its workload's name, as a Deployment's: `reviews-v2`.
    pub fn workload(&self) -> String {
        format!("{}-{}", self.app, self.version)
    }

    /// Its instance's name, as a pod's: `reviews-v2-1`.
    pub fn pod(&self) -> String {
        format!("{}-{}", self.workload(), self.instance)
    }

    /// Its service account, as Istio's bookinfo names them.
    pub fn service_account(&self) -> String {
        format!("bookinfo-{}", self.app)
    }

    /// Its SPIFFE id.
    pub fn spiffe_id(&self) -> String {
        format!(
            "spiffe://cluster.local/ns/default/sa/{}",
            self.service_account()
        )
    }

    /// Its labels.
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app".to_owned(), self.app.to_owned()),
            ("version".to_owned(), self.version.to_owned()),
        ])
    }

    /// Its metadata, for its peers and its metrics' labels.
    pub fn metadata(&self) -> WorkloadMetadata {
        WorkloadMetadata::from_labels(&self.pod(), "default", &self.workload(), &self.labels())
    }

    /// Its instance at `addr`, as the registry knows it.
    pub fn instance(&self, addr: SocketAddr) -> Instance {
        let mut instance = Instance::new(addr.ip().to_string());
        instance.ports.insert("http".into(), addr.port());
        instance.labels = self.labels();
        instance.service_account = Some(self.service_account());
        instance
    }

    /// Issues its certificate from `ca` into `dir/POD`, Istio's layout;
    /// the directory.
    pub fn certify(&self, ca: &Ca, dir: &Path) -> Result<std::path::PathBuf, LaunchError> {
        let out = dir.join(self.pod());
        ca.issue(&self.spiffe_id(), CERT_TTL)
            .and_then(|cert| cert.write(&out))
            .map_err(|e| LaunchError::Certificate(self.pod(), e.to_string()))?;
        Ok(out)
    }

    /// The flags `mesh-sidecar` describes it by, with `xds` its control
    /// plane and its certificates in `certs`.
    pub fn source_and_workload(&self, xds: SocketAddr, certs: &Path) -> (SourceArgs, WorkloadArgs) {
        let source = SourceArgs {
            bootstrap: None,
            xds: Some(xds.to_string()),
            config: None,
        };
        let workload = WorkloadArgs {
            node_id: None,
            namespace: "default".into(),
            workload: self.workload(),
            labels: self.labels().into_iter().collect(),
            instance_ip: [127, 0, 0, 1].into(),
            cluster_domain: "cluster.local".into(),
            cert_dir: Some(certs.to_owned()),
        };
        (source, workload)
    }

    /// Its mesh: following the control plane at `xds`, with its
    /// certificates in `certs`.
    pub async fn mesh(
        &self,
        xds: SocketAddr,
        certs: &Path,
    ) -> Result<mesh_tower::Mesh, LaunchError> {
        let (source, workload) = self.source_and_workload(xds, certs);
        let bootstrap = mesh_sidecar::source::bootstrap(&source, &workload).await?;
        Ok(mesh_tower::Mesh::builder()
            .bootstrap(bootstrap)
            .workload(self.metadata())
            .build()?)
    }
}
