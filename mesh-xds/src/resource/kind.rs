//! What both ends of an ADS stream speak of: the resource types, and the
//! two variants of the protocol.

use std::fmt;

/// The resource types, in the order their watches chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    /// LDS: `Listener`.
    Listener,
    /// RDS: `RouteConfiguration`.
    RouteConfig,
    /// CDS: `Cluster`.
    Cluster,
    /// EDS: `ClusterLoadAssignment`.
    LoadAssignment,
    /// SDS: `Secret`, the certificates a listener names, as istiod serves
    /// a gateway's.
    Secret,
}

impl ResourceType {
    /// Every type, in chain order.
    pub const ALL: [ResourceType; 5] = [
        ResourceType::Listener,
        ResourceType::RouteConfig,
        ResourceType::Cluster,
        ResourceType::LoadAssignment,
        ResourceType::Secret,
    ];

    /// Its v3 type URL.
    pub fn type_url(self) -> &'static str {
        match self {
            ResourceType::Listener => "type.googleapis.com/envoy.config.listener.v3.Listener",
            ResourceType::RouteConfig => {
                "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
            }
            ResourceType::Cluster => "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            ResourceType::LoadAssignment => {
                "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
            }
            ResourceType::Secret => {
                "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
            }
        }
    }

    /// The type a v3 type URL names, if it is one of [`ALL`](Self::ALL).
    pub fn from_type_url(url: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.type_url() == url)
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResourceType::Listener => "LDS",
            ResourceType::RouteConfig => "RDS",
            ResourceType::Cluster => "CDS",
            ResourceType::LoadAssignment => "EDS",
            ResourceType::Secret => "SDS",
        })
    }
}

/// Which variant of the xDS protocol a stream speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// `StreamAggregatedResources`: every response carries every resource
    /// of its type.
    #[default]
    StateOfTheWorld,
    /// `DeltaAggregatedResources`: requests and responses carry only what
    /// changed.
    Delta,
}
