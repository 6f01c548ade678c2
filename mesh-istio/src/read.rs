//! Reading a YAML file of Kubernetes resources: every document is looked
//! at; VirtualServices, DestinationRules, Gateways, ServiceEntries,
//! WorkloadEntries and Kubernetes Services are read whole, with a warning for each field
//! that is not known; other kinds are skipped with a warning.

use std::sync::Arc;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::api::{
    AuthorizationPolicy, DestinationRule, Gateway, PeerAuthentication, ServiceEntry, Sidecar,
    VirtualService, WorkloadEntry, kubernetes,
};
use super::error::{IstioError, IstioErrorKind, Warning};
use super::yaml::{FieldPath, Origin, Text};
use super::{Resources, Sourced, lint};

/// The API versions of `networking.istio.io` read.
const VERSIONS: [&str; 3] = ["v1", "v1beta1", "v1alpha3"];

/// Kubernetes' own metadata fields, set by the API server; not worth a
/// warning.
const BOOKKEEPING: [&str; 11] = [
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "ownerReferences",
    "finalizers",
    "generateName",
    "selfLink",
];

/// What every document is first read as.
#[derive(Deserialize)]
#[serde(
    rename_all = "camelCase",
    expecting = "a Kubernetes resource (a map with apiVersion and kind)"
)]
struct Header {
    api_version: Option<String>,
    kind: Option<String>,
    metadata: Option<HeaderMeta>,
}

#[derive(Deserialize)]
struct HeaderMeta {
    name: Option<String>,
    namespace: Option<String>,
}

impl Header {
    /// `Kind namespace/name`, for messages.
    fn label(&self) -> String {
        let kind = self.kind.as_deref().unwrap_or("resource");
        let meta = self.metadata.as_ref();
        let name = meta.and_then(|m| m.name.as_deref()).unwrap_or("<unnamed>");
        let ns = meta
            .and_then(|m| m.namespace.as_deref())
            .filter(|n| !n.is_empty())
            .unwrap_or("default");
        format!("{kind} {ns}/{name}")
    }
}

enum Class {
    VirtualService,
    DestinationRule,
    Gateway,
    ServiceEntry,
    WorkloadEntry,
    Sidecar,
    Service,
    Secret,
    AuthorizationPolicy,
    PeerAuthentication,
    Skip(String),
}

fn classify(h: &Header) -> Result<Class, String> {
    let (Some(api), Some(kind)) = (h.api_version.as_deref(), h.kind.as_deref()) else {
        return Err("expected a Kubernetes resource with apiVersion and kind".into());
    };
    let (group, version) = api.split_once('/').unwrap_or(("", api));
    let class = match kind {
        "VirtualService" => Class::VirtualService,
        "DestinationRule" => Class::DestinationRule,
        "Gateway" => Class::Gateway,
        "ServiceEntry" => Class::ServiceEntry,
        "WorkloadEntry" => Class::WorkloadEntry,
        "Sidecar" => Class::Sidecar,
        // Kubernetes' core group: `v1` alone.
        "Service" if api == "v1" => return Ok(Class::Service),
        "Secret" if api == "v1" => return Ok(Class::Secret),
        "AuthorizationPolicy" | "PeerAuthentication" => return security(kind, api),
        "List" => {
            return Ok(Class::Skip(
                "the items of a List are not read; write them as documents of their own (separated by ---)".into(),
            ));
        }
        _ => {
            return Ok(Class::Skip(format!(
                "{kind} ({api}) is not used by the client configuration or the service registry; skipped"
            )));
        }
    };
    if group != "networking.istio.io" {
        return Ok(Class::Skip(format!(
            "{kind} of {api} is not Istio's; skipped"
        )));
    }
    if !VERSIONS.contains(&version) {
        return Err(format!(
            "apiVersion {api} is not read; expected networking.istio.io/v1, v1beta1 or v1alpha3"
        ));
    }
    Ok(class)
}

/// The API versions of `security.istio.io` read.
const SECURITY_VERSIONS: [&str; 2] = ["v1", "v1beta1"];

fn security(kind: &str, api: &str) -> Result<Class, String> {
    let (group, version) = api.split_once('/').unwrap_or(("", api));
    if group != "security.istio.io" {
        return Ok(Class::Skip(format!(
            "{kind} of {api} is not Istio's; skipped"
        )));
    }
    if !SECURITY_VERSIONS.contains(&version) {
        return Err(format!(
            "apiVersion {api} is not read; expected security.istio.io/v1 or v1beta1"
        ));
    }
    Ok(match kind {
        "AuthorizationPolicy" => Class::AuthorizationPolicy,
        _ => Class::PeerAuthentication,
    })
}

/// Reads every document of `text`.
pub(super) fn parse(source: &str, text: &str) -> Result<(Resources, Vec<Warning>), IstioError> {
    let source: Arc<str> = source.into();
    let shared = Text::new(text);
    let mut resources = Resources::default();
    let mut warnings = Vec::new();
    let mut again = serde_yaml_ng::Deserializer::from_str(text);
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let whole = again.next();
        let origin = Origin::in_text(source.clone(), i + 1, shared.clone());
        let header =
            Option::<Header>::deserialize(doc).map_err(|e| yaml_error(&origin, None, e))?;
        let Some(header) = header else {
            continue; // an empty document
        };
        let label = header.label();
        let class = classify(&header).map_err(|msg| {
            let at = origin.locate(Some(&label), &FieldPath::root().key("apiVersion"));
            IstioError::new(at, IstioErrorKind::Invalid(msg))
        })?;
        let (class, whole) = match (class, whole) {
            (Class::Skip(message), _) => {
                let location = origin.locate(Some(&label), &FieldPath::root().key("kind"));
                warnings.push(Warning { location, message });
                continue;
            }
            (class, Some(whole)) => (class, whole),
            // Both readers read the same text: the second has every
            // document the first has.
            (_, None) => continue,
        };
        let ctx = Doc {
            origin: &origin,
            label: &label,
            warnings: &mut warnings,
        };
        match class {
            Class::VirtualService => {
                let vs: VirtualService = ctx.read(whole, lint::virtual_service)?;
                resources.virtual_services.push(Sourced {
                    resource: vs,
                    origin,
                });
            }
            Class::DestinationRule => {
                let dr: DestinationRule = ctx.read(whole, lint::destination_rule)?;
                resources.destination_rules.push(Sourced {
                    resource: dr,
                    origin,
                });
            }
            Class::Gateway => {
                let gw: Gateway = ctx.read(whole, lint::gateway)?;
                resources.gateways.push(Sourced {
                    resource: gw,
                    origin,
                });
            }
            Class::ServiceEntry => {
                let se: ServiceEntry = ctx.read(whole, lint::service_entry)?;
                resources.service_entries.push(Sourced {
                    resource: se,
                    origin,
                });
            }
            Class::WorkloadEntry => {
                let we: WorkloadEntry = ctx.read(whole, lint::workload_entry)?;
                resources.workload_entries.push(Sourced {
                    resource: we,
                    origin,
                });
            }
            Class::Sidecar => {
                let sidecar: Sidecar = ctx.read(whole, lint::sidecar)?;
                resources.sidecars.push(Sourced {
                    resource: sidecar,
                    origin,
                });
            }
            Class::Service => {
                let service: kubernetes::Service = ctx.read(whole, lint::service)?;
                resources.services.push(Sourced {
                    resource: service,
                    origin,
                });
            }
            Class::Secret => {
                let secret: kubernetes::Secret = ctx.read(whole, |_| Vec::new())?;
                resources.secrets.push(Sourced {
                    resource: secret,
                    origin,
                });
            }
            Class::AuthorizationPolicy => {
                let policy: AuthorizationPolicy = ctx.read_strictly(whole)?;
                resources.authorization_policies.push(Sourced {
                    resource: policy,
                    origin,
                });
            }
            Class::PeerAuthentication => {
                let policy: PeerAuthentication = ctx.read_strictly(whole)?;
                resources.peer_authentications.push(Sourced {
                    resource: policy,
                    origin,
                });
            }
            Class::Skip(_) => {}
        }
    }
    Ok((resources, warnings))
}

fn yaml_error(origin: &Origin, label: Option<&str>, e: serde_yaml_ng::Error) -> IstioError {
    let line = e.location().map(|l| l.line());
    IstioError::new(origin.at_line(label, line), IstioErrorKind::Yaml(e))
}

/// Named resources, for checks common to every kind.
trait Named {
    fn name(&self) -> &str;
}

macro_rules! named {
    ($($kind:ty),*) => {$(
        impl Named for $kind {
            fn name(&self) -> &str {
                &self.metadata.name
            }
        }
    )*};
}

named!(
    VirtualService,
    DestinationRule,
    Gateway,
    ServiceEntry,
    WorkloadEntry,
    Sidecar,
    kubernetes::Service,
    kubernetes::Secret,
    AuthorizationPolicy,
    PeerAuthentication
);

struct Doc<'a> {
    origin: &'a Origin,
    label: &'a str,
    warnings: &'a mut Vec<Warning>,
}

impl Doc<'_> {
    /// Reads the document as a `T`, warning about unknown fields and about
    /// what `lint` finds unused.
    fn read<'de, T: DeserializeOwned + Named>(
        self,
        doc: serde_yaml_ng::Deserializer<'de>,
        lint: fn(&T) -> Vec<lint::Note>,
    ) -> Result<T, IstioError> {
        self.read_as(doc, lint, false)
    }

    /// Reads a security policy: an unknown field in its `spec` is an
    /// error, as a policy read without it could allow what it denies (a
    /// source whose only field is unknown would match everyone).
    fn read_strictly<'de, T: DeserializeOwned + Named>(
        self,
        doc: serde_yaml_ng::Deserializer<'de>,
    ) -> Result<T, IstioError> {
        self.read_as(doc, |_| Vec::new(), true)
    }

    fn read_as<'de, T: DeserializeOwned + Named>(
        mut self,
        doc: serde_yaml_ng::Deserializer<'de>,
        lint: fn(&T) -> Vec<lint::Note>,
        strict_spec: bool,
    ) -> Result<T, IstioError> {
        let mut unknown = Vec::new();
        let value: T =
            serde_ignored::deserialize(doc, |p| unknown.push(FieldPath::from_ignored(&p)))
                .map_err(|e| yaml_error(self.origin, Some(self.label), e))?;
        if value.name().is_empty() {
            let at = self.origin.locate(
                Some(self.label),
                &FieldPath::root().key("metadata").key("name"),
            );
            return Err(IstioError::new(
                at,
                IstioErrorKind::Invalid("expected a name".into()),
            ));
        }
        for path in unknown {
            let keys = path.keys();
            let bookkeeping = match keys.as_slice() {
                ["status", ..] => true,
                ["metadata", field, ..] => BOOKKEEPING.contains(field),
                _ => false,
            };
            if strict_spec && keys.first() == Some(&"spec") {
                let at = self.origin.locate(Some(self.label), &path);
                return Err(IstioError::new(
                    at,
                    IstioErrorKind::Invalid(
                        "unknown field: a security policy is enforced whole or refused".into(),
                    ),
                ));
            }
            if !bookkeeping {
                self.warn(&path, "unknown field; ignored".into());
            }
        }
        for (path, message) in lint(&value) {
            self.warn(&path, message);
        }
        Ok(value)
    }

    fn warn(&mut self, path: &FieldPath, message: String) {
        let location = self.origin.locate(Some(self.label), path);
        self.warnings.push(Warning { location, message });
    }
}
