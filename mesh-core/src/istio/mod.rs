//! Istio's `VirtualService` and `DestinationRule` YAML, read into mesh
//! values (feature `istio`).
//!
//! Two steps, so that the control plane can reuse the first to produce xDS:
//!
//! 1. [`parse`] reads a file of Kubernetes resources (documents separated by
//!    `---`) into [`Resources`]: the serde types of Istio's API
//!    ([`VirtualService`], [`DestinationRule`] and everything under them,
//!    named as in `networking.istio.io/v1`; `v1beta1` and `v1alpha3` are
//!    read too). Other kinds (Gateway, ServiceEntry, Service, Deployment,
//!    ...) are skipped with a [`Warning`], and so is every field the types
//!    do not know.
//! 2. Turning them into mesh values, with Istio's semantics, is a separate
//!    step.
//!
//! Every [`IstioError`] names the file, the document, the resource, the
//! line and the field, and says what was expected.
//!
//! ```
//! use mesh_core::istio;
//!
//! let yaml = r#"
//! apiVersion: networking.istio.io/v1
//! kind: DestinationRule
//! metadata: {name: reviews}
//! spec:
//!   host: reviews
//!   subsets:
//!   - {name: v1, labels: {version: v1}}
//!   - {name: v2, labels: {version: v2}, colour: blue}
//! "#;
//! let (resources, warnings) = istio::parse("reviews.yaml", yaml)?;
//! assert_eq!(resources.destination_rules[0].resource.spec.subsets.len(), 2);
//! assert_eq!(
//!     warnings[0].to_string(),
//!     "reviews.yaml, document 1 (DestinationRule default/reviews), line 9, spec.subsets[1].colour: unknown field; ignored"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod api;
mod duration;
mod error;
mod lint;
mod read;
mod yaml;

pub use api::*;
pub use duration::{Duration, InvalidDuration};
pub use error::{IstioError, IstioErrorKind, Location, Warning};
pub use yaml::Origin;

/// Reads every document of `text`, a file named `source` (for messages),
/// into the resources the client configuration uses and warnings about
/// what it skipped.
pub fn parse(source: &str, text: &str) -> Result<(Resources, Vec<Warning>), IstioError> {
    read::parse(source, text)
}

/// A resource and where it came from.
#[derive(Clone, Debug)]
pub struct Sourced<T> {
    /// The resource.
    pub resource: T,
    /// Where it came from.
    pub origin: Origin,
}

/// The VirtualServices and DestinationRules of one or more files.
#[derive(Clone, Debug, Default)]
pub struct Resources {
    /// VirtualServices, in the order read.
    pub virtual_services: Vec<Sourced<VirtualService>>,
    /// DestinationRules, in the order read.
    pub destination_rules: Vec<Sourced<DestinationRule>>,
}

impl Resources {
    /// Adds the resources of another file after these.
    pub fn extend(&mut self, other: Resources) {
        self.virtual_services.extend(other.virtual_services);
        self.destination_rules.extend(other.destination_rules);
    }
}
