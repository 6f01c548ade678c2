//! A directory of Istio YAML, read whole: every `*.yaml` and `*.yml`
//! file in it (not below it), in name order, each a stream of documents.
//!
//! A load either succeeds for every file or reports every file that
//! failed, each error naming the file, document, resource, line and field
//! ([`IstioError`]'s location); the caller keeps serving what it had.
//! [`fingerprint`] tells cheaply whether anything changed since.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use mesh_core::registry::Registry;
use mesh_istio::{Gateway, IstioError, Resources, Warning, Workload};
use xxhash_rust::xxh64::Xxh64;

/// What a directory held at one moment.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The Istio resources of every file, in file then document order.
    pub resources: Resources,
    /// The services and endpoints they define.
    pub registry: Registry,
    /// What was read and not used.
    pub warnings: Vec<Warning>,
    /// The [`fingerprint`] of what was read.
    pub fingerprint: u64,
}

/// Why a directory could not be loaded, one error per cause.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The directory or a file in it could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// What could not be read.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file does not parse, or the resources do not fit together.
    #[error("{}", Chain(.0))]
    Istio(#[source] IstioError),
}

/// An error and its sources, on one line.
struct Chain<'a>(&'a dyn std::error::Error);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

/// The files of `dir` that are read, in name order.
fn files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let read = |source| LoadError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read)? {
        let path = entry.map_err(read)?.path();
        let yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        if yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads every file of `dir` and checks that its resources convert into
/// a registry and into mesh configurations, for a client in
/// `cluster_domain`'s `default` namespace and for each Gateway's
/// proxies, and that its authorization policies can be enforced.
pub fn load(dir: &Path, cluster_domain: &str) -> Result<Loaded, Vec<LoadError>> {
    let mut texts = Vec::new();
    let mut errors = Vec::new();
    for path in files(dir).map_err(|e| vec![e])? {
        match std::fs::read_to_string(&path) {
            Ok(text) => texts.push((path.display().to_string(), text)),
            Err(source) => errors.push(LoadError::Read { path, source }),
        }
    }
    match load_texts(texts, cluster_domain) {
        Ok(loaded) if errors.is_empty() => Ok(loaded),
        Ok(_) => Err(errors),
        Err(more) => Err(errors.into_iter().chain(more).collect()),
    }
}

/// As [`load`], for files already read: `(name, text)` pairs, the name
/// used in messages. What an embedding program hands the control plane.
pub fn load_texts(
    files: impl IntoIterator<Item = (String, String)>,
    cluster_domain: &str,
) -> Result<Loaded, Vec<LoadError>> {
    let mut resources = Resources::default();
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    let mut hasher = Xxh64::new(0);
    for (name, text) in files {
        hash_file(&mut hasher, name.as_bytes(), text.as_bytes());
        match mesh_istio::parse(&name, &text) {
            Ok((r, w)) => {
                resources.extend(r);
                warnings.extend(w);
            }
            Err(e) => errors.push(LoadError::Istio(e)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let workload = Workload {
        cluster_domain: cluster_domain.to_owned(),
        ..Workload::default()
    };
    // As a sidecar in `default` sees them, and as each Gateway's proxies
    // do, and every Sidecar, so that a broken Gateway, Secret or Sidecar
    // is found now rather than when a proxy it applies to connects.
    let gateways = resources.gateways.iter().map(|g| Workload {
        namespace: proxy_namespace(&resources, &g.resource),
        cluster_domain: cluster_domain.to_owned(),
        labels: g.resource.spec.selector.clone(),
        gateways: vec![g.resource.qualified_name()],
    });
    let checked = resources.registry(cluster_domain).and_then(|registry| {
        let (_, mut warnings) = resources.convert(&workload)?;
        for gateway in gateways {
            for w in resources.convert(&gateway)?.1 {
                if !warnings.contains(&w) {
                    warnings.push(w);
                }
            }
        }
        resources.check_sidecars()?;
        warnings.extend(resources.check_authorization()?);
        Ok((registry, ((), warnings)))
    });
    match checked {
        Ok((registry, (_, more))) => {
            warnings.extend(more);
            Ok(Loaded {
                resources,
                registry,
                warnings,
                fingerprint: hasher.digest(),
            })
        }
        Err(e) => Err(vec![LoadError::Istio(e)]),
    }
}

/// Where the proxies of `gateway` are taken to run when it is checked:
/// the namespace of a Secret its servers name (the proxies read their
/// certificates from their own namespace), else the Gateway's.
fn proxy_namespace(resources: &Resources, gateway: &Gateway) -> String {
    let named: Vec<&String> = gateway
        .spec
        .servers
        .iter()
        .filter_map(|s| s.tls.as_ref())
        .flat_map(|t| std::iter::once(&t.credential_name).chain(&t.credential_names))
        .collect();
    resources
        .secrets
        .iter()
        .find(|s| named.contains(&&s.resource.metadata.name))
        .map_or(gateway.metadata.namespace(), |s| {
            s.resource.metadata.namespace()
        })
        .to_owned()
}

/// A digest of the names and contents of the files [`load`] reads: equal
/// digests, equal loads.
pub fn fingerprint(dir: &Path) -> Result<u64, LoadError> {
    let mut hasher = Xxh64::new(0);
    for path in files(dir)? {
        let bytes = std::fs::read(&path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        hash_file(&mut hasher, path.display().to_string().as_bytes(), &bytes);
    }
    Ok(hasher.digest())
}

fn hash_file(hasher: &mut Xxh64, name: &[u8], bytes: &[u8]) {
    hasher.update(name);
    hasher.update(&[0]);
    hasher.update(&(bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    const VS: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - route: [{destination: {host: r}}]\n";

    fn dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn every_yaml_file_is_read_and_others_are_not() {
        let d = dir(&[("a.yaml", VS), ("notes.txt", "not: [yaml")]);
        let loaded = load(d.path(), "cluster.local").unwrap();
        assert_eq!(loaded.resources.virtual_services.len(), 1);
        assert_eq!(loaded.fingerprint, fingerprint(d.path()).unwrap());
    }

    #[test]
    fn a_broken_file_is_reported_with_its_name_and_line() {
        let d = dir(&[
            ("a.yaml", VS),
            ("b.yaml", "kind: VirtualService\n  bad: [\n"),
        ]);
        let errors = load(d.path(), "cluster.local").unwrap_err();
        assert_eq!(errors.len(), 1);
        let message = errors[0].to_string();
        assert!(message.contains("b.yaml"), "{message}");
        assert!(message.contains("line"), "{message}");
    }

    #[test]
    fn resources_that_do_not_fit_together_are_an_error() {
        let vs = VS.replace("{host: r}", "{host: r, subset: v9}");
        let d = dir(&[("a.yaml", &vs)]);
        let message = load(d.path(), "cluster.local").unwrap_err()[0].to_string();
        assert!(message.contains("v9"), "{message}");
    }

    #[test]
    fn a_broken_gateway_is_found_when_loading() {
        let gateway = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\n\
            spec:\n  selector: {istio: ingressgateway}\n  servers: [{hosts: ['*']}]\n";
        let d = dir(&[("gw.yaml", gateway)]);
        let message = load(d.path(), "cluster.local").unwrap_err()[0].to_string();
        assert!(message.contains("gw.yaml"), "{message}");
        assert!(message.contains("port"), "{message}");
    }

    #[test]
    fn a_gateway_server_left_out_is_warned_about_when_loading() {
        let server = |name: &str| {
            format!(
                "  - port: {{number: 443, name: {name}, protocol: HTTPS}}\n    hosts: ['*']\n    tls: {{mode: SIMPLE, serverCertificate: /c, privateKey: /k}}\n"
            )
        };
        let gateway = format!(
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: gw}}\nspec:\n  servers:\n{}{}",
            server("a"),
            server("b")
        );
        let d = dir(&[("gw.yaml", &gateway)]);
        let loaded = load(d.path(), "cluster.local").unwrap();
        let text: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 1, "{text:?}");
        assert!(text[0].contains("spec.servers[1]"), "{text:?}");
        assert!(
            text[0].contains("serves host * with TLS on port 443 already"),
            "{text:?}"
        );
    }

    #[test]
    fn a_broken_secret_a_gateway_names_is_found_when_loading() {
        let gateway = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  servers:\n\
            \x20 - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ['*']\n    tls: {mode: SIMPLE, credentialName: cert}\n";
        // In the namespace of the gateway proxies, not the Gateway's.
        let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: cert, namespace: istio-system}\ndata: {tls.crt: '!', tls.key: '!'}\n";
        let d = dir(&[("gw.yaml", gateway), ("secret.yaml", secret)]);
        let message = load(d.path(), "cluster.local").unwrap_err()[0].to_string();
        assert!(message.contains("secret.yaml"), "{message}");
        assert!(message.contains("data.tls.crt: not base64"), "{message}");
    }

    #[test]
    fn a_broken_sidecar_is_found_when_loading() {
        // It selects no workload the control plane knows of yet.
        let sidecar = "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: reviews}\n\
            spec:\n  workloadSelector: {labels: {app: reviews}}\n  egress:\n  - hosts: [reviews]\n";
        let d = dir(&[("sidecar.yaml", sidecar)]);
        let message = load(d.path(), "cluster.local").unwrap_err()[0].to_string();
        assert!(message.contains("sidecar.yaml"), "{message}");
        assert!(message.contains("spec.egress[0].hosts[0]"), "{message}");
    }

    #[test]
    fn an_edit_changes_the_fingerprint() {
        let d = dir(&[("a.yaml", VS)]);
        let before = fingerprint(d.path()).unwrap();
        std::fs::write(d.path().join("a.yaml"), VS.replace("[r]", "[s]")).unwrap();
        assert_ne!(before, fingerprint(d.path()).unwrap());
    }

    #[test]
    fn a_missing_directory_is_reported() {
        let errors = load(Path::new("/nonexistent/mesh"), "cluster.local").unwrap_err();
        assert!(errors[0].to_string().starts_with("/nonexistent/mesh: "));
    }
}
