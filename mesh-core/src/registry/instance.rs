//! An instance of a workload that serves services: where it runs and the
//! labels services select it by, as Istio's `WorkloadEntry` describes one
//! (or a pod, or a process a launcher started).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use crate::endpoint::{Endpoint, Locality};

use super::ServicePort;

/// One workload instance (a WorkloadEntry's fields).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Instance {
    /// Its address: an IP address, or a host name (a DNS ServiceEntry's
    /// endpoints), which [`Registry::endpoints`](super::Registry::endpoints)
    /// leaves to the caller to resolve.
    pub address: String,
    /// Its ports by the name of the service port they serve, where they
    /// differ from the service's (a WorkloadEntry's `ports`).
    pub ports: BTreeMap<String, u16>,
    /// Its labels, by which services and subsets select it.
    pub labels: BTreeMap<String, String>,
    /// Where it runs.
    pub locality: Option<Locality>,
    /// Its load-balancing weight; `None` for the default, 1.
    pub weight: Option<u32>,
    /// Its namespace: only services of this namespace select it.
    pub namespace: String,
    /// The service account it runs as, if known.
    pub service_account: Option<String>,
}

impl Instance {
    /// An instance at `address` in namespace `default`, with no ports of
    /// its own, no labels, no locality and the default weight.
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            namespace: "default".into(),
            ..Self::default()
        }
    }

    /// The endpoint serving `port` of a service, or `None` when the address
    /// is not an IP address.
    pub fn endpoint(&self, port: &ServicePort) -> Option<Endpoint> {
        let ip: IpAddr = self.address.parse().ok()?;
        let mut e = Endpoint::new(SocketAddr::new(ip, port.instance_port(self)))
            .with_weight(self.weight.unwrap_or(1));
        e.locality = self.locality.clone().unwrap_or_default();
        e.labels = self.labels.clone();
        Some(e)
    }
}

/// The locality Istio writes as `region/zone/subzone` (a WorkloadEntry's
/// `locality`, the `istio-locality` label with `/`): parts left out are
/// empty, parts after the third ignored, as Istio's `SplitLocalityLabel`
/// reads it. `None` for an empty string.
///
/// ```
/// use mesh_core::registry::parse_locality;
/// let l = parse_locality("us-east/zone1/sub").unwrap();
/// assert_eq!((l.region.as_str(), l.zone.as_str(), l.sub_zone.as_str()), ("us-east", "zone1", "sub"));
/// assert_eq!(parse_locality("us-east").unwrap().zone, "");
/// assert_eq!(parse_locality(""), None);
/// ```
pub fn parse_locality(label: &str) -> Option<Locality> {
    if label.is_empty() {
        return None;
    }
    let mut parts = label.split('/').map(str::to_owned);
    Some(Locality {
        region: parts.next().unwrap_or_default(),
        zone: parts.next().unwrap_or_default(),
        sub_zone: parts.next().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::Protocol;
    use super::*;

    #[test]
    fn an_endpoint_at_the_instance_with_its_labels_locality_and_weight() {
        let port = ServicePort {
            number: 9080,
            name: "http".into(),
            protocol: Protocol::Http,
            target_port: None,
        };
        let mut i = Instance::new("10.0.0.7");
        i.labels.insert("version".into(), "v2".into());
        i.locality = parse_locality("us-east/zone1/sub");
        i.weight = Some(5);
        let e = i.endpoint(&port).expect("an IP address");
        assert_eq!(e.addr, "10.0.0.7:9080".parse().unwrap());
        assert_eq!(e.weight, 5);
        assert_eq!(e.locality.zone, "zone1");
        assert_eq!(e.labels["version"], "v2");

        i.weight = Some(0);
        assert_eq!(i.endpoint(&port).unwrap().weight, 1);
        i.address = "::1".into();
        assert_eq!(
            i.endpoint(&port).unwrap().addr,
            "[::1]:9080".parse().unwrap()
        );
        i.address = "api.example.com".into();
        assert_eq!(i.endpoint(&port), None);
    }

    #[test]
    fn localities_with_fewer_and_more_parts() {
        let l = parse_locality("r/z").unwrap();
        assert_eq!((l.region.as_str(), l.zone.as_str()), ("r", "z"));
        assert_eq!(l.sub_zone, "");
        assert_eq!(parse_locality("r/z/s/x").unwrap().sub_zone, "s");
    }
}
