//! Istio YAML files as a client's configuration (feature `istio`): every
//! `VirtualService` and `DestinationRule` in a file, or in the `.yaml` and
//! `.yml` files of a directory, read with [`mesh_istio`] and turned
//! into one [`MeshConfig`]; and as a server's ([`inbound_policy`]): its
//! `PeerAuthentication` and `AuthorizationPolicy`. A file larger than [`MAX_FILE_SIZE`] is an
//! error rather than read into memory.
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

use std::io::Read;
use std::path::{Path, PathBuf};

use mesh_core::MeshConfig;
use mesh_core::security::InboundPolicy;
use mesh_istio::{IstioError, Resources, Warning, Workload};

/// The largest file read, 16 MiB: far more than any set of Istio resources
/// takes, and little enough to hold in memory.
pub const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

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
    /// A file is larger than the most read from one file.
    #[error("{path} is larger than {limit} bytes, the most read from one file")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, [`MAX_FILE_SIZE`].
        limit: u64,
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
    let (resources, mut warnings) = read_resources(path)?;
    let (config, more) = resources.convert(workload)?;
    warnings.extend(more);
    Ok((config, warnings))
}

/// What `workload`'s port `port` asks of its callers by the
/// `PeerAuthentication` and `AuthorizationPolicy` resources in `path`
/// (read as [`load`] reads it), for a [`MeshServer`](crate::MeshServer),
/// and warnings about what they leave out.
///
/// ```no_run
/// # async fn run() -> Result<(), mesh_tower::BoxError> {
/// use mesh_istio::Workload;
/// use mesh_tower::MeshServer;
///
/// let ratings = Workload { labels: [("app".into(), "ratings".into())].into(), ..Workload::default() };
/// let (policy, _warnings) = mesh_tower::istio::inbound_policy("security/", &ratings, 9080)?;
/// let server = MeshServer::builder().policy(policy);
/// # Ok(()) }
/// ```
pub fn inbound_policy(
    path: impl AsRef<Path>,
    workload: &Workload,
    port: u16,
) -> Result<(InboundPolicy, Vec<Warning>), LoadError> {
    let (resources, mut warnings) = read_resources(path)?;
    warnings.extend(resources.check_authorization()?);
    Ok((resources.inbound_policy(workload, port)?, warnings))
}

/// Every resource in `path` (a file, or the `.yaml` and `.yml` files of a
/// directory, in name order), and warnings about them.
pub fn read_resources(path: impl AsRef<Path>) -> Result<(Resources, Vec<Warning>), LoadError> {
    let path = path.as_ref();
    let files = if path.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
        yaml_files(path, entries.map(|e| e.map(|e| e.path())))?
    } else {
        vec![path.to_owned()]
    };
    let mut resources = Resources::default();
    let mut warnings = Vec::new();
    for file in files {
        let text = read(&file, MAX_FILE_SIZE)?;
        let (r, w) = mesh_istio::parse(&file.display().to_string(), &text)?;
        resources.extend(r);
        warnings.extend(w);
    }
    Ok((resources, warnings))
}

/// The `.yaml` and `.yml` files among the entries of `dir`, in name order;
/// an entry that cannot be read is an error.
fn yaml_files(
    dir: &Path,
    entries: impl Iterator<Item = std::io::Result<PathBuf>>,
) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|source| LoadError::Read {
            path: dir.to_owned(),
            source,
        })?;
        if path.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The text of `path`, at most `limit` bytes of it.
fn read(path: &Path, limit: u64) -> Result<String, LoadError> {
    let read_error = |source| LoadError::Read {
        path: path.to_owned(),
        source,
    };
    let too_large = || LoadError::TooLarge {
        path: path.to_owned(),
        limit,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    if file.metadata().map_err(read_error)?.len() > limit {
        return Err(too_large());
    }
    // The size can be wrong (a file still growing, a special file): stop
    // one byte past the limit whatever it says.
    let mut text = String::new();
    file.take(limit + 1)
        .read_to_string(&mut text)
        .map_err(read_error)?;
    if text.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use mesh_istio::IstioErrorKind;

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

        std::fs::write(
            d.join("vs.yml"),
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews, subset: v9}}]\n",
        )
        .unwrap();
        let LoadError::Istio(e) = load(&d).unwrap_err() else {
            panic!("not an Istio error")
        };
        let at = e.location();
        assert_eq!(&*at.source, d.join("vs.yml").display().to_string());
        assert_eq!(
            (at.document, at.resource.as_deref(), at.line),
            (Some(1), Some("VirtualService default/reviews"), Some(7))
        );
        assert_eq!(at.path, "spec.http[0].route[0].destination.subset");
        let IstioErrorKind::Invalid(reason) = e.kind() else {
            panic!("{e}")
        };
        assert_eq!(
            reason,
            "subset \"v9\" of reviews.default.svc.cluster.local is not defined by DestinationRule default/reviews (it defines v1)"
        );

        let missing = d.join("missing.yaml");
        match load(&missing).unwrap_err() {
            LoadError::Read { path, source } => {
                assert_eq!(path, missing);
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("{other}"),
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_file_over_the_limit_is_not_read() {
        let d = dir("large");
        let big = d.join("big.yaml");
        // Sparse: nothing is written, and nothing is read.
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_FILE_SIZE + 1)
            .unwrap();
        let err = load(&d).unwrap_err();
        assert!(
            matches!(&err, LoadError::TooLarge { path, limit } if *path == big && *limit == MAX_FILE_SIZE),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "{} is larger than 16777216 bytes, the most read from one file",
                big.display()
            )
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// A file whose size says less than it holds is cut at the limit too.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_that_understates_its_size_is_not_read_past_the_limit() {
        let status = Path::new("/proc/self/status");
        assert_eq!(std::fs::metadata(status).unwrap().len(), 0);
        assert!(matches!(
            read(status, 10),
            Err(LoadError::TooLarge { limit: 10, .. })
        ));
        assert!(read(status, MAX_FILE_SIZE).unwrap().contains("Name:"));
    }

    #[test]
    fn an_unreadable_directory_entry_is_an_error() {
        let dir = Path::new("/etc/istio");
        let entries = vec![
            Ok(dir.join("a.yaml")),
            Err(std::io::Error::other("bad entry")),
            Ok(dir.join("b.yml")),
        ];
        match yaml_files(dir, entries.into_iter()) {
            Err(LoadError::Read { path, source }) => {
                assert_eq!(path, dir);
                assert_eq!(source.to_string(), "bad entry");
            }
            other => panic!("{other:?}"),
        }
        let entries = [dir.join("b.yml"), dir.join("c.txt"), dir.join("a.yaml")];
        let files = yaml_files(dir, entries.into_iter().map(Ok)).unwrap();
        assert_eq!(files, [dir.join("a.yaml"), dir.join("b.yml")]);
    }
}
