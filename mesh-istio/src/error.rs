//! What goes wrong reading Istio resources, and what is worth a warning:
//! each names the file, the document, the resource, the line (where one is
//! known) and the field.

use std::fmt;
use std::sync::Arc;

use mesh_core::config::ConfigError;
use mesh_core::policy::{InvalidLoadBalancer, InvalidRetryOn};
use mesh_core::route::RouteError;

/// Where in the YAML something is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file (or other source) name given to [`parse`](super::parse).
    pub source: Arc<str>,
    /// The document in the file, counted from 1; `None` for the file as a
    /// whole.
    pub document: Option<usize>,
    /// The resource, such as `VirtualService default/reviews`.
    pub resource: Option<String>,
    /// The line, counted from 1, where it is known.
    pub line: Option<usize>,
    /// The field, such as `spec.http[0].route[0].weight`; empty for the
    /// document as a whole.
    pub path: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)?;
        if let Some(d) = self.document {
            write!(f, ", document {d}")?;
        }
        if let Some(r) = &self.resource {
            write!(f, " ({r})")?;
        }
        if let Some(l) = self.line {
            write!(f, ", line {l}")?;
        }
        if !self.path.is_empty() {
            write!(f, ", {}", self.path)?;
        }
        Ok(())
    }
}

/// Istio resources that cannot be read or cannot be turned into a mesh
/// configuration. [`Display`](fmt::Display) prints where and what; the
/// parser's or the route model's own report is the [`source`](std::error::Error::source).
///
/// ```
/// let yaml = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  http:\n  - route:\n    - destination: {host: r}\n      weight: -1\n";
/// let err = mesh_istio::parse("r.yaml", yaml).unwrap_err();
/// assert!(err.to_string().starts_with("r.yaml, document 1 (VirtualService default/r), line 8"));
/// ```
#[derive(Debug)]
pub struct IstioError {
    location: Box<Location>,
    kind: IstioErrorKind,
}

/// What is wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IstioErrorKind {
    /// The text is not YAML, or a document does not have the shape of its
    /// resource (a wrong type, a missing field, an unknown enum value, a
    /// bad duration); the parser's message says which.
    #[error("the YAML does not parse or does not fit the resource")]
    Yaml(#[source] serde_yaml_ng::Error),
    /// A value Istio would reject, or one the client cannot honour; the
    /// message says what was expected.
    #[error("{0}")]
    Invalid(String),
    /// A setting the route model rejects (a regular expression, a
    /// percentage).
    #[error("invalid route setting")]
    Route(#[source] RouteError),
    /// A retry condition Envoy does not know.
    #[error("invalid retryOn")]
    RetryOn(#[source] InvalidRetryOn),
    /// A load-balancer parameter that cannot be used.
    #[error("invalid load balancer setting")]
    LoadBalancer(#[source] InvalidLoadBalancer),
    /// Routes and clusters that do not fit together.
    #[error("the routes and clusters do not fit together")]
    Config(#[source] ConfigError),
}

impl IstioError {
    pub(crate) fn new(location: Location, kind: IstioErrorKind) -> Self {
        Self {
            location: Box::new(location),
            kind,
        }
    }

    /// Where the error is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// What is wrong.
    pub fn kind(&self) -> &IstioErrorKind {
        &self.kind
    }
}

impl fmt::Display for IstioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.kind)
    }
}

impl std::error::Error for IstioError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

/// Something in the resources that is not used: an unknown field, a kind
/// the client configuration does not read, a setting the client does not
/// apply. Nothing is dropped without one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// Where.
    pub location: Location,
    /// What, and what happens instead.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_prints_what_is_known() {
        let mut l = Location {
            source: "a.yaml".into(),
            document: None,
            resource: None,
            line: None,
            path: String::new(),
        };
        assert_eq!(l.to_string(), "a.yaml");
        l.document = Some(2);
        l.resource = Some("VirtualService default/reviews".into());
        l.line = Some(7);
        l.path = "spec.hosts[0]".into();
        assert_eq!(
            l.to_string(),
            "a.yaml, document 2 (VirtualService default/reviews), line 7, spec.hosts[0]"
        );
        let e = IstioError::new(l, IstioErrorKind::Invalid("expected a host".into()));
        assert!(e.to_string().ends_with("spec.hosts[0]: expected a host"));
        assert!(std::error::Error::source(&e).is_none());
    }
}
