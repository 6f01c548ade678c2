//! Locality-aware balancing, Istio's `localityLbSetting`: how a
//! cluster's endpoints are weighed and prioritised for one client by
//! where that client runs. A control plane applies it when it writes the
//! client's endpoints, as istiod does in EDS; the client's balancer then
//! follows the locality weights and priorities it is given.
//!
//! [`LocalityLb::apply`] does, in istiod's order:
//!
//! - **Off** (`enabled: false`): nothing; every locality is one priority.
//! - **Distribute**: the first rule whose `from` matches the client's
//!   locality decides. Each `to` entry's share is split among the
//!   localities it matches by their own weights; localities no entry
//!   matches get no traffic (their endpoints are left out). Priorities
//!   stay as they are.
//! - **Failover**, only when the cluster ejects outliers (otherwise
//!   traffic would never leave a priority): endpoints are prioritised by
//!   nearness to the client: its own sub-zone, then its zone, its region,
//!   and the rest. A `failover` entry for the client's region puts the
//!   region it names before every other.
//! - **Failover priority**: with labels, endpoints are first ordered by
//!   how many of the labels, in order, have the client's values
//!   (`label=value` compares with that value instead); locality failover
//!   then orders each level only when `failover` entries are written too.
//!   The locality's parts count as the topology labels
//!   `topology.kubernetes.io/region`, `topology.kubernetes.io/zone` and
//!   `topology.istio.io/subzone`, on both sides.
//!
//! Each locality is weighted by the sum of its endpoints' weights, as
//! istiod weighs them, unless a distribute rule sets its share.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use crate::{Endpoint, Locality};

/// Locality-aware balancing of one cluster (Istio's
/// `LocalityLoadBalancerSetting`). The default is Istio's: on, with
/// failover by nearness and nothing else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalityLb {
    /// Whether localities are considered at all (`enabled`).
    pub enabled: bool,
    /// Shares by locality (`distribute`); when any is set, failover is not
    /// applied.
    pub distribute: Vec<Distribute>,
    /// Which region takes over from another (`failover`).
    pub failover: Vec<Failover>,
    /// Labels that order failover (`failoverPriority`).
    pub failover_priority: Vec<PriorityLabel>,
}

impl Default for LocalityLb {
    fn default() -> Self {
        Self {
            enabled: true,
            distribute: Vec::new(),
            failover: Vec::new(),
            failover_priority: Vec::new(),
        }
    }
}

/// Where traffic from clients in one locality goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Distribute {
    /// The clients' locality.
    pub from: LocalityPattern,
    /// Destination localities and their shares. Should two overlap, the
    /// first takes a locality both match.
    pub to: Vec<(LocalityPattern, u32)>,
}

/// A region that takes over when another has too few healthy endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failover {
    /// The client's region.
    pub from: String,
    /// The region its traffic fails over to first.
    pub to: String,
}

/// One label of a failover priority: the key, and the value endpoints are
/// compared with when it is not the client's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriorityLabel {
    /// The label's key.
    pub key: String,
    /// `key=value`: compared with this value rather than the client's.
    pub value: Option<String>,
}

impl FromStr for PriorityLabel {
    type Err = InvalidLocality;

    /// `key` or `key=value`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (key, value) = match s.split_once('=') {
            Some((k, v)) => (k, Some(v.to_owned())),
            None => (s, None),
        };
        if key.is_empty() || value.as_ref().is_some_and(|v| v.contains('=')) {
            return Err(InvalidLocality(format!(
                "{s:?} is not a label or label=value"
            )));
        }
        Ok(Self {
            key: key.to_owned(),
            value,
        })
    }
}

/// A locality as rules write it, `region/zone/sub-zone`, where `*` (or a
/// part left out) matches any: `us-east`, `us-east/zone1/*`, `*`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalityPattern {
    parts: [Option<String>; 3],
}

/// A locality pattern or failover label that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidLocality(String);

impl FromStr for LocalityPattern {
    type Err = InvalidLocality;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |why: &str| Err(InvalidLocality(format!("locality {s:?} {why}")));
        if s.is_empty() {
            return invalid("is empty");
        }
        let written: Vec<&str> = s.split('/').collect();
        if written.len() > 3 {
            return invalid("has more than region/zone/sub-zone");
        }
        let mut parts: [Option<String>; 3] = Default::default();
        for (i, part) in written.iter().enumerate() {
            match *part {
                "" => return invalid("has an empty part"),
                "*" if i + 1 < written.len() => return invalid("has a wildcard before its end"),
                "*" => {}
                p if p.contains('*') => return invalid("has a wildcard within a part"),
                p => parts[i] = Some(p.to_owned()),
            }
        }
        Ok(Self { parts })
    }
}

impl fmt::Display for LocalityPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let written: Vec<&str> = self
            .parts
            .iter()
            .map(|p| p.as_deref().unwrap_or("*"))
            .collect();
        let end = self
            .parts
            .iter()
            .rposition(Option::is_some)
            .map_or(1, |i| (i + 2).min(3));
        f.write_str(&written[..end].join("/"))
    }
}

impl LocalityPattern {
    /// Whether `locality` is one the pattern names.
    pub fn matches(&self, locality: &Locality) -> bool {
        let actual = [&locality.region, &locality.zone, &locality.sub_zone];
        self.parts
            .iter()
            .zip(actual)
            .all(|(want, have)| want.as_ref().is_none_or(|w| w == have))
    }

    /// Whether some locality matches both patterns.
    pub fn overlaps(&self, other: &LocalityPattern) -> bool {
        self.parts.iter().zip(&other.parts).all(|pair| match pair {
            (Some(a), Some(b)) => a == b,
            _ => true,
        })
    }
}

/// The topology labels a locality's parts stand for: region, zone and
/// subzone, as Kubernetes and Istio label workloads.
pub const TOPOLOGY_LABELS: [&str; 3] = [
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.istio.io/subzone",
];

/// The value of the label `key` of a workload at `locality` with
/// `labels`: a topology label is the locality's part when it has one.
fn label<'a>(
    locality: &'a Locality,
    labels: &'a BTreeMap<String, String>,
    key: &str,
) -> Option<&'a str> {
    let parts = [&locality.region, &locality.zone, &locality.sub_zone];
    TOPOLOGY_LABELS
        .iter()
        .position(|t| *t == key)
        .map(|i| parts[i].as_str())
        .filter(|p| !p.is_empty())
        .or_else(|| labels.get(key).map(String::as_str))
}

impl LocalityLb {
    /// The endpoints of a cluster as a client at `locality` with `labels`
    /// is to get them: priorities set, each locality weighted, endpoints of
    /// localities a distribute rule leaves out removed. `ejects` says
    /// whether the cluster ejects outliers, without which there is no
    /// failover.
    pub fn apply(
        &self,
        locality: &Locality,
        labels: &BTreeMap<String, String>,
        ejects: bool,
        mut endpoints: Vec<Endpoint>,
    ) -> Vec<Endpoint> {
        let distribute = self.enabled && !self.distribute.is_empty();
        if self.enabled && !distribute && ejects {
            self.prioritise(locality, labels, &mut endpoints);
        }
        let mut weights: BTreeMap<(u32, Locality), u32> = BTreeMap::new();
        for e in &endpoints {
            *weights.entry((e.priority, e.locality.clone())).or_default() += e.weight.max(1);
        }
        if distribute {
            let rule = self.distribute.iter().find(|d| d.from.matches(locality));
            if let Some(rule) = rule {
                weights = distributed(rule, weights);
            }
        }
        endpoints
            .into_iter()
            .filter_map(|e| {
                let w = *weights.get(&(e.priority, e.locality.clone()))?;
                Some(e.with_locality_weight(w))
            })
            .collect()
    }

    /// Sets failover priorities: by the priority labels, then by nearness
    /// (when no labels are given, or `failover` entries are), ranked
    /// without gaps as EDS requires.
    fn prioritise(
        &self,
        locality: &Locality,
        labels: &BTreeMap<String, String>,
        endpoints: &mut [Endpoint],
    ) {
        let by_labels = !self.failover_priority.is_empty();
        let by_nearness =
            (!by_labels || !self.failover.is_empty()) && *locality != Locality::default();
        let client_labelled = !labels.is_empty() || *locality != Locality::default();
        let key = |e: &Endpoint| {
            let labelled = if by_labels && client_labelled {
                self.label_priority(locality, labels, e)
            } else {
                0
            };
            let near = if by_nearness {
                self.nearness(locality, &e.locality)
            } else {
                0
            };
            (e.priority, labelled, near)
        };
        let used: BTreeSet<_> = endpoints.iter().map(key).collect();
        let rank: BTreeMap<_, u32> = used.into_iter().zip(0..).collect();
        for e in endpoints.iter_mut() {
            e.priority = rank[&key(e)];
        }
    }

    /// How many of the priority labels, from the first that differs on,
    /// `e` does not share with the client: 0 when it shares them all.
    fn label_priority(
        &self,
        locality: &Locality,
        labels: &BTreeMap<String, String>,
        e: &Endpoint,
    ) -> usize {
        let n = self.failover_priority.len();
        self.failover_priority
            .iter()
            .position(|l| {
                let want = match &l.value {
                    Some(v) => Some(v.as_str()),
                    None => label(locality, labels, &l.key),
                };
                want != label(&e.locality, &e.labels, &l.key)
            })
            .map_or(0, |i| n - i)
    }

    /// 0 for the client's own sub-zone, 1 its zone, 2 its region, 3 the
    /// rest; 4 for regions a `failover` entry for the client's region does
    /// not name.
    fn nearness(&self, client: &Locality, l: &Locality) -> u8 {
        match (
            l.region == client.region,
            l.zone == client.zone,
            l.sub_zone == client.sub_zone,
        ) {
            (true, true, true) => 0,
            (true, true, false) => 1,
            (true, false, _) => 2,
            (false, ..) => match self.failover.iter().find(|f| f.from == client.region) {
                Some(f) if f.to != l.region => 4,
                _ => 3,
            },
        }
    }
}

/// The locality weights under `rule`: each `to` entry's share split
/// among the localities it takes by their weights, rounded up; localities
/// no entry takes are gone.
fn distributed(
    rule: &Distribute,
    weights: BTreeMap<(u32, Locality), u32>,
) -> BTreeMap<(u32, Locality), u32> {
    let mut left = weights;
    let mut out = BTreeMap::new();
    for (pattern, share) in &rule.to {
        let (taken, rest): (BTreeMap<_, _>, BTreeMap<_, _>) =
            left.into_iter().partition(|((_, l), _)| pattern.matches(l));
        left = rest;
        let total: u64 = taken.values().map(|w| u64::from(*w)).sum();
        for (group, w) in taken {
            let weight = (u64::from(w) * u64::from(*share)).div_ceil(total);
            if weight > 0 {
                out.insert(group, u32::try_from(weight).unwrap_or(u32::MAX));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(locality: &str) -> Locality {
        let mut parts = locality.split('/').map(str::to_owned);
        Locality {
            region: parts.next().unwrap_or_default(),
            zone: parts.next().unwrap_or_default(),
            sub_zone: parts.next().unwrap_or_default(),
        }
    }

    fn endpoints(localities: &[&str]) -> Vec<Endpoint> {
        localities
            .iter()
            .enumerate()
            .map(|(i, l)| {
                Endpoint::new(format!("10.0.0.{i}:80").parse().unwrap()).with_locality(at(l))
            })
            .collect()
    }

    /// (locality, priority, locality weight) of each endpoint.
    fn shape(out: &[Endpoint]) -> Vec<(String, u32, u32)> {
        out.iter()
            .map(|e| {
                let l = &e.locality;
                let name = format!("{}/{}/{}", l.region, l.zone, l.sub_zone);
                (name, e.priority, e.locality_weight.unwrap())
            })
            .collect()
    }

    fn pattern(s: &str) -> LocalityPattern {
        s.parse().unwrap()
    }

    #[test]
    fn patterns_read_and_match_as_istio_writes_them() {
        let p = pattern("us-east/zone1/*");
        assert!(p.matches(&at("us-east/zone1/rack9")));
        assert!(!p.matches(&at("us-east/zone2/rack9")));
        assert!(pattern("us-east").matches(&at("us-east/zone2/x")));
        assert!(pattern("*").matches(&at("eu/a/b")));
        assert_eq!(p.to_string(), "us-east/zone1/*");
        assert_eq!(pattern("us-east").to_string(), "us-east/*");
        assert_eq!(pattern("*").to_string(), "*");
        assert!(p.overlaps(&pattern("us-east")));
        assert!(p.overlaps(&pattern("us-east/zone1/rack1")));
        assert!(!p.overlaps(&pattern("us-east/zone2")));
        for bad in ["", "*/zone1", "us-*", "a/b/c/d", "a//c"] {
            assert!(bad.parse::<LocalityPattern>().is_err(), "{bad}");
        }
        let label: PriorityLabel = "topology.istio.io/network=net-2".parse().unwrap();
        assert_eq!(label.value.as_deref(), Some("net-2"));
        assert!("=x".parse::<PriorityLabel>().is_err());
    }

    #[test]
    fn failover_by_nearness_only_when_outliers_are_ejected() {
        let lb = LocalityLb::default();
        let eps = endpoints(&["r1/a/1", "r1/a/2", "r1/b/1", "r2/c/1"]);
        let none = BTreeMap::new();
        let out = lb.apply(&at("r1/a/1"), &none, true, eps.clone());
        let priorities: Vec<u32> = out.iter().map(|e| e.priority).collect();
        assert_eq!(priorities, [0, 1, 2, 3]);
        let flat = lb.apply(&at("r1/a/1"), &none, false, eps.clone());
        assert!(flat.iter().all(|e| e.priority == 0));
        let off = LocalityLb {
            enabled: false,
            ..LocalityLb::default()
        };
        assert!(
            off.apply(&at("r1/a/1"), &none, true, eps)
                .iter()
                .all(|e| e.priority == 0)
        );
    }

    #[test]
    fn a_failover_entry_puts_its_region_before_the_others() {
        let lb = LocalityLb {
            failover: vec![Failover {
                from: "r1".into(),
                to: "r3".into(),
            }],
            ..LocalityLb::default()
        };
        let eps = endpoints(&["r1/a/1", "r2/a/1", "r3/a/1"]);
        let out = lb.apply(&at("r1/a/1"), &BTreeMap::new(), true, eps);
        let priorities: Vec<u32> = out.iter().map(|e| e.priority).collect();
        assert_eq!(priorities, [0, 2, 1]);
    }

    #[test]
    fn distribute_splits_by_share_and_leaves_out_what_it_does_not_name() {
        let lb = LocalityLb {
            distribute: vec![
                Distribute {
                    from: pattern("r2/*"),
                    to: vec![(pattern("r2"), 100)],
                },
                Distribute {
                    from: pattern("r1/a/*"),
                    to: vec![(pattern("r1/a"), 80), (pattern("r1/b"), 20)],
                },
            ],
            ..LocalityLb::default()
        };
        // Zone b has two sub-zones, the second with twice the weight.
        let mut eps = endpoints(&["r1/a/1", "r1/b/1", "r1/b/2", "r9/z/1"]);
        eps[2].weight = 2;
        let out = lb.apply(&at("r1/a/7"), &BTreeMap::new(), true, eps.clone());
        assert_eq!(
            shape(&out),
            [
                ("r1/a/1".into(), 0, 80),
                ("r1/b/1".into(), 0, 7),
                ("r1/b/2".into(), 0, 14),
            ]
        );
        // No rule for the client: weights as istiod sums them.
        let out = lb.apply(&at("r5/a/1"), &BTreeMap::new(), true, eps);
        assert_eq!(
            shape(&out).iter().map(|s| s.2).collect::<Vec<_>>(),
            [1, 1, 2, 1]
        );
    }

    #[test]
    fn failover_priority_orders_by_labels_then_by_failover() {
        let labels = |net: &str| BTreeMap::from([("topology.istio.io/network".into(), net.into())]);
        let mut eps = endpoints(&["r1/a/1", "r1/a/1", "r2/a/1", "r2/a/1"]);
        for (e, net) in eps.iter_mut().zip(["n1", "n2", "n1", "n2"]) {
            e.labels = labels(net);
        }
        let lb = LocalityLb {
            failover_priority: vec![
                "topology.istio.io/network".parse().unwrap(),
                "topology.kubernetes.io/region".parse().unwrap(),
            ],
            ..LocalityLb::default()
        };
        let client = at("r1/a/1");
        let out = lb.apply(&client, &labels("n1"), true, eps.clone());
        let priorities: Vec<u32> = out.iter().map(|e| e.priority).collect();
        // Same network and region, same network, then other networks.
        assert_eq!(priorities, [0, 2, 1, 2]);

        // With failover entries, nearness orders each level too.
        let lb = LocalityLb {
            failover_priority: vec!["topology.istio.io/network".parse().unwrap()],
            failover: vec![Failover {
                from: "r1".into(),
                to: "r2".into(),
            }],
            ..LocalityLb::default()
        };
        let out = lb.apply(&client, &labels("n1"), true, eps.clone());
        let priorities: Vec<u32> = out.iter().map(|e| e.priority).collect();
        assert_eq!(priorities, [0, 2, 1, 3]);

        // An overridden value: endpoints on n2 first, whatever the client's.
        let lb = LocalityLb {
            failover_priority: vec!["topology.istio.io/network=n2".parse().unwrap()],
            ..LocalityLb::default()
        };
        let out = lb.apply(&client, &labels("n1"), true, eps);
        let priorities: Vec<u32> = out.iter().map(|e| e.priority).collect();
        assert_eq!(priorities, [1, 0, 1, 0]);
    }
}
