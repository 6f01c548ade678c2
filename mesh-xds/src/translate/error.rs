//! What the translation refuses: a mesh value that no xDS resource reads
//! back as the same value, named by the resource, the part of it (a route,
//! an endpoint) and the mesh-core field.

use std::fmt;

/// A mesh value that cannot be written as xDS without changing it. Nothing
/// is dropped silently: a resource is translated whole or not at all.
///
/// ```text
/// RouteConfiguration "outbound|9080||reviews.default.svc.cluster.local": virtual host "reviews", route #0: rate_limit: local rate limits are not expressed in xDS routes
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct TranslateError {
    /// The xDS resource type being written: `RouteConfiguration`,
    /// `Cluster`, `ClusterLoadAssignment`.
    pub type_name: &'static str,
    /// The resource's name.
    pub resource: String,
    /// The part of the resource at fault (`virtual host "reviews", route
    /// #2`, `endpoint 10.0.0.1:9080`); empty for the resource as a whole.
    pub part: String,
    /// The mesh-core field that cannot be expressed, as a path of Rust
    /// field names (`action.forward.rewrite`).
    pub field: String,
    /// Why.
    pub reason: String,
}

impl fmt::Display for TranslateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}: ", self.type_name, self.resource)?;
        if !self.part.is_empty() {
            write!(f, "{}: ", self.part)?;
        }
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// A refusal not yet tied to its resource and part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) field: String,
    pub(crate) reason: String,
}

impl Refused {
    /// The field `field` cannot be expressed, because of `reason`.
    pub(crate) fn new(field: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self {
            field: field.into(),
            reason: reason.to_string(),
        }
    }

    /// The same refusal, its field inside `outer`.
    pub(crate) fn within(self, outer: &str) -> Self {
        let field = match self.field.as_str() {
            "" => outer.to_owned(),
            f if f.starts_with('[') => format!("{outer}{f}"),
            f => format!("{outer}.{f}"),
        };
        Self {
            field,
            reason: self.reason,
        }
    }

    /// Ties the refusal to a resource and a part of it.
    pub(crate) fn at(
        self,
        type_name: &'static str,
        resource: &str,
        part: impl Into<String>,
    ) -> TranslateError {
        TranslateError {
            type_name,
            resource: resource.to_owned(),
            part: part.into(),
            field: self.field,
            reason: self.reason,
        }
    }
}
