//! Istio YAML files as a client's configuration (feature `istio`): every
//! `VirtualService` and `DestinationRule` in a file, or in the `.yaml` and
//! `.yml` files of a directory, read with [`mesh_core::istio`] and turned
//! into one [`MeshConfig`].
//!
//! ```no_run
//! # fn run() -> Result<(), mesh_tower::BoxError> {
//! use mesh_core::StaticResolve;
//! use mesh_tower::MeshClient;
//!
//! let (config, warnings) = mesh_tower::istio::load("samples/bookinfo/networking")?;
//! for w in &warnings {
//!     eprintln!("warning: {w}");
//! }
//! let client: MeshClient<http_body_util::Empty<bytes::Bytes>> =
//!     MeshClient::builder(StaticResolve::default()).config(config).build();
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};

use mesh_core::MeshConfig;
use mesh_core::istio::{self, IstioError, Resources, Warning, Workload};

/// Istio files that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file or directory could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A resource is malformed or cannot be honoured; the error names the
    /// file, line and field.
    #[error(transparent)]
    Istio(#[from] IstioError),
}

/// The configuration in `path` (a file, or a directory whose `.yaml` and
/// `.yml` files are read in name order) for a client in namespace
/// `default`, and warnings about what it does not use.
pub fn load(path: impl AsRef<Path>) -> Result<(MeshConfig, Vec<Warning>), LoadError> {
    load_for(path, &Workload::default())
}

/// As [`load`], for a client that is `workload`.
pub fn load_for(
    path: impl AsRef<Path>,
    workload: &Workload,
) -> Result<(MeshConfig, Vec<Warning>), LoadError> {
    let path = path.as_ref();
    let read_err = |source| LoadError::Read {
        path: path.to_owned(),
        source,
    };
    let files = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(read_err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_owned()]
    };
    let mut resources = Resources::default();
    let mut warnings = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| LoadError::Read {
            path: file.clone(),
            source,
        })?;
        let (r, w) = istio::parse(&file.display().to_string(), &text)?;
        resources.extend(r);
        warnings.extend(w);
    }
    let (config, more) = resources.convert(workload)?;
    warnings.extend(more);
    Ok((config, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mesh-istio-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn reads_a_directory_and_names_the_file_at_fault() {
        let d = dir("load");
        std::fs::write(
            d.join("dr.yaml"),
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  subsets: [{name: v1, labels: {version: v1}}]\n",
        )
        .unwrap();
        std::fs::write(
            d.join("vs.yml"),
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews, subset: v1}}]\n",
        )
        .unwrap();
        std::fs::write(d.join("notes.txt"), "not yaml: [").unwrap();
        let (config, warnings) = load(&d).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let names: Vec<_> = config.clusters().map(|c| c.name.to_string()).collect();
        assert_eq!(names, ["outbound||v1|reviews.default.svc.cluster.local"]);

        std::fs::write(d.join("vs.yml"), "kind: VirtualService\nspec: [").unwrap();
        let err = load(&d).unwrap_err().to_string();
        assert!(err.contains("vs.yml"), "{err}");
        let err = load(d.join("missing.yaml")).unwrap_err().to_string();
        assert!(err.contains("missing.yaml"), "{err}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
