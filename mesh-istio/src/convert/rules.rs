//! DestinationRules: those istiod applies to the client, merged per host as
//! it merges them, and the cluster of a destination with the subset and
//! policies they give it.
//!
//! A rule applies only where its `exportTo` exports it. Of the rules of one
//! host, istiod applies those of the client's namespace, else those of the
//! service's. A rule with a
//! `workloadSelector` applies only to the workloads of its own namespace it
//! selects, and in place of the rules without one. The rules applied are
//! merged as istiod's `mergeDestinationRule` merges them: their subsets are
//! joined, the first definition of a name kept, and the first top-level
//! `trafficPolicy` is the host's; what the merge drops is warned about.

use std::collections::{BTreeMap, HashMap, HashSet};

use mesh_core::cluster::{Cluster, Discovery};
use mesh_core::route::ClusterName;

use super::super::api::{DestinationRule, Subset};
use super::super::error::{IstioError, Warning};
use super::super::yaml::FieldPath;
use super::super::{Sourced, Workload};
use super::policy::{self, Written};
use super::{Ctx, Resolved, check, exported, kubernetes_service, wildcards};

/// The DestinationRules that apply to the client, merged by host.
pub(super) struct Rules<'a> {
    /// In the order their hosts were first given, exact hosts and
    /// wildcards alike.
    rules: Vec<Rule<'a>>,
    /// Exact hosts, to their rule.
    exact: HashMap<String, usize>,
    /// Wildcard hosts (`*.suffix`, `*`), to their rule.
    wildcards: HashMap<String, usize>,
}

/// A DestinationRule that applies to the client.
struct Source<'a> {
    dr: &'a DestinationRule,
    ctx: Ctx<'a>,
}

/// The DestinationRules of one host that apply to the client, merged.
pub(super) struct Rule<'a> {
    fqdn: String,
    /// The rules merged, in the order given.
    sources: Vec<Source<'a>>,
    /// The rule whose top-level `trafficPolicy` is the host's: the first
    /// that has one.
    policy: Option<usize>,
    /// The subsets, as the rule and the index in it of the first
    /// definition of each name.
    subsets: Vec<(usize, usize)>,
}

/// A rule that applies to the client, before the rules of its host are
/// merged.
struct Candidate<'a> {
    source: Source<'a>,
    namespace: &'a str,
    selector: Option<&'a BTreeMap<String, String>>,
}

impl<'a> Rules<'a> {
    /// The rules of `drs` that apply to `workload`, merged by host, and
    /// warnings about what merging drops.
    pub(super) fn new(
        drs: &'a [Sourced<DestinationRule>],
        workload: &Workload,
        warnings: &mut Vec<Warning>,
    ) -> Result<Self, IstioError> {
        let mut hosts: Vec<(String, Vec<Candidate<'a>>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for sourced in drs {
            let dr = &sourced.resource;
            let meta = &dr.metadata;
            let namespace = meta.namespace();
            if !exported(&dr.spec.export_to, namespace, workload) {
                continue;
            }
            let selector = dr.spec.workload_selector.as_ref().map(|s| &s.match_labels);
            if let Some(labels) = selector
                && !(namespace == workload.namespace
                    && labels
                        .iter()
                        .all(|(k, v)| workload.labels.get(k) == Some(v)))
            {
                continue;
            }
            let ctx = Ctx::new(sourced, "DestinationRule", &meta.name, namespace);
            let at = FieldPath::root().key("spec").key("host");
            let fqdn = check::host_or_wildcard(&ctx, &at, &dr.spec.host, namespace, workload)?;
            check_subsets(&ctx, dr)?;
            let i = *index.entry(fqdn.clone()).or_insert_with(|| {
                hosts.push((fqdn, Vec::new()));
                hosts.len() - 1
            });
            hosts[i].1.push(Candidate {
                source: Source { dr, ctx },
                namespace,
                selector,
            });
        }
        let mut rules = Rules {
            rules: Vec::with_capacity(hosts.len()),
            exact: HashMap::new(),
            wildcards: HashMap::new(),
        };
        for (fqdn, candidates) in hosts {
            let sources = applied(&fqdn, candidates, workload, warnings)?;
            let rule = merge(fqdn, sources, warnings);
            let by_host = match rule.fqdn.starts_with('*') {
                true => &mut rules.wildcards,
                false => &mut rules.exact,
            };
            by_host.insert(rule.fqdn.clone(), rules.rules.len());
            rules.rules.push(rule);
        }
        Ok(rules)
    }

    /// The rule for `fqdn`: its own, else the longest wildcard that covers
    /// it.
    fn find(&self, fqdn: &str) -> Option<&Rule<'a>> {
        let i = self.exact.get(fqdn).or_else(|| {
            wildcards(fqdn)
                .find_map(|w| self.wildcards.get(&w))
                .or_else(|| self.wildcards.get("*"))
        })?;
        Some(&self.rules[*i])
    }

    /// The rules of exact hosts, in the order given.
    pub(super) fn exact_hosts(&self) -> impl Iterator<Item = (String, &Rule<'a>)> {
        self.rules
            .iter()
            .filter(|r| !r.fqdn.starts_with('*'))
            .map(|r| (r.fqdn.clone(), r))
    }

    /// The cluster `name` of `fqdn`, its `port` and `subset`, with the
    /// policies of the host's rule; a subset no rule defines is an error at
    /// `at` in `ctx`.
    pub(super) fn resolve(
        &self,
        ctx: &Ctx<'_>,
        at: &FieldPath,
        name: ClusterName,
        fqdn: &str,
        port: Option<u16>,
        subset: Option<&str>,
    ) -> Result<Resolved, IstioError> {
        let rule = self.find(fqdn);
        let subset = match (subset, rule) {
            (None, _) => None,
            (Some(s), None) => {
                return Err(ctx.invalid(
                    at,
                    format!(
                        "subset {s:?} of {fqdn} is not defined: no DestinationRule has host {fqdn}"
                    ),
                ));
            }
            (Some(s), Some(r)) => Some(r.subset(s).ok_or_else(|| {
                let known: Vec<&str> = r.subsets().map(|x| x.name.as_str()).collect();
                let by: Vec<&str> = r.sources.iter().map(|s| s.ctx.label.as_str()).collect();
                ctx.invalid(
                    at,
                    format!(
                        "subset {s:?} of {fqdn} is not defined by {} (it defines {})",
                        by.join(" or "),
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                )
            })?),
        };
        let mut cluster = Cluster {
            name,
            discovery: Discovery::Service {
                host: fqdn.into(),
                port,
            },
            subset: Default::default(),
            policy: policy::istio_default(),
            port_policies: Default::default(),
        };
        let Some(rule) = rule else {
            return Ok(Resolved {
                cluster,
                hashes: Vec::new(),
            });
        };
        if let Some(s) = subset {
            cluster.subset = rule.definition(s).labels.clone();
        }
        let host = rule.host_policy();
        let own = subset.and_then(|s| rule.subset_policy(s));
        let (mut policy, hash) = policy::cluster_policy(host.as_ref(), own.as_ref(), port)?;
        policy::default_sni(&mut policy, fqdn);
        cluster.policy = policy;
        let mut hashes: Vec<_> = hash.into_iter().collect();
        // Without a port of its own, the cluster stands for istiod's
        // cluster of each service port: those with settings of their own
        // get them.
        if port.is_none() {
            for p in policy::ports(host.as_ref(), own.as_ref())? {
                let (mut policy, hash) =
                    policy::cluster_policy(host.as_ref(), own.as_ref(), Some(p))?;
                policy::default_sni(&mut policy, fqdn);
                if let Some(h) = hash
                    && !hashes.contains(&h)
                {
                    hashes.push(h);
                }
                cluster.port_policies.insert(p, policy);
            }
        }
        Ok(Resolved { cluster, hashes })
    }

    /// The whole-service cluster of an exact host's rule, port-less.
    pub(super) fn resolve_default(
        &self,
        rule: &Rule<'a>,
        fqdn: &str,
    ) -> Result<Resolved, IstioError> {
        let name = mesh_core::cluster::istio_cluster_name(fqdn, None, None);
        self.resolve(rule.ctx(), &FieldPath::root(), name, fqdn, None, None)
    }
}

impl<'a> Rule<'a> {
    /// The first of the rules merged, for messages.
    pub(super) fn ctx(&self) -> &Ctx<'a> {
        &self.sources[0].ctx
    }

    /// The subset named `name`.
    fn subset(&self, name: &str) -> Option<(usize, usize)> {
        self.subsets
            .iter()
            .copied()
            .find(|s| self.definition(*s).name == name)
    }

    fn subsets(&self) -> impl Iterator<Item = &Subset> {
        self.subsets.iter().map(|s| self.definition(*s))
    }

    fn definition(&self, (source, i): (usize, usize)) -> &'a Subset {
        &self.sources[source].dr.spec.subsets[i]
    }

    /// The host's `trafficPolicy`.
    fn host_policy(&self) -> Option<Written<'_>> {
        let source = &self.sources[self.policy?];
        let at = FieldPath::root().key("spec").key("trafficPolicy");
        Some((source.dr.spec.traffic_policy.as_ref()?, &source.ctx, at))
    }

    /// The `trafficPolicy` of a subset.
    fn subset_policy(&self, (source, i): (usize, usize)) -> Option<Written<'_>> {
        let source_rule = &self.sources[source];
        let tp = source_rule.dr.spec.subsets[i].traffic_policy.as_ref()?;
        let at = FieldPath::root()
            .key("spec")
            .key("subsets")
            .index(i)
            .key("trafficPolicy");
        Some((tp, &source_rule.ctx, at))
    }
}

/// Of the rules of `fqdn` that apply to the client, those istiod applies:
/// those of the client's namespace, else of the service's, else of the one
/// namespace they are in; and of these, the ones that select the client
/// with the first selector that does, else those that select no workload.
fn applied<'a>(
    fqdn: &str,
    candidates: Vec<Candidate<'a>>,
    workload: &Workload,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<Source<'a>>, IstioError> {
    let in_namespace = |ns: &str| candidates.iter().any(|c| c.namespace == ns);
    let service = kubernetes_service(fqdn, workload).map(|(_, ns)| ns);
    let namespace = if in_namespace(&workload.namespace) {
        workload.namespace.as_str()
    } else if let Some(ns) = service.filter(|ns| in_namespace(ns)) {
        ns
    } else {
        let first = &candidates[0];
        if let Some(other) = candidates.iter().find(|c| c.namespace != first.namespace) {
            return Err(other.source.ctx.invalid(
                &FieldPath::root().key("spec").key("host"),
                format!(
                    "host {fqdn} also has {} in namespace {}; istiod applies the rules of the client's namespace, else of the service's, else of its root namespace, which the client does not know: keep the rules of one host in one namespace",
                    first.source.ctx.describe(),
                    first.namespace
                ),
            ));
        }
        first.namespace
    };
    let candidates: Vec<Candidate<'a>> = candidates
        .into_iter()
        .filter(|c| c.namespace == namespace)
        .collect();
    let selective = candidates
        .iter()
        .find(|c| c.selector.is_some())
        .map(|c| (c.selector, c.source.ctx.describe()));
    let mut out = Vec::new();
    for c in candidates {
        match &selective {
            None => out.push(c.source),
            Some((selector, _)) if c.selector == *selector => out.push(c.source),
            // Rules that select no workload give way to one that selects
            // the client.
            Some(_) if c.selector.is_none() => {}
            Some((_, first)) => warnings.push(c.source.ctx.warning(
                &FieldPath::root().key("spec").key("workloadSelector"),
                format!(
                    "{first} also selects this client for host {fqdn}, with another workloadSelector; istiod applies only the first rule that selects a client, so this one is not used"
                ),
            )),
        }
    }
    Ok(out)
}

/// The rules `sources` of `fqdn` as one, as istiod merges them: subsets
/// joined, the first definition of a name kept; the first top-level
/// `trafficPolicy` the host's.
fn merge<'a>(fqdn: String, sources: Vec<Source<'a>>, warnings: &mut Vec<Warning>) -> Rule<'a> {
    let spec = FieldPath::root().key("spec");
    let policy = sources
        .iter()
        .position(|s| s.dr.spec.traffic_policy.is_some());
    let mut subsets = Vec::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, source) in sources.iter().enumerate() {
        if policy.is_some_and(|p| p < i) && source.dr.spec.traffic_policy.is_some() {
            warnings.push(source.ctx.warning(
                &spec.key("trafficPolicy"),
                format!(
                    "the trafficPolicy of {fqdn} is that of {}, the first rule of the host that has one, as istiod merges them; this one is not used",
                    sources[policy.unwrap_or(0)].ctx.describe()
                ),
            ));
        }
        for (k, subset) in source.dr.spec.subsets.iter().enumerate() {
            match names.get(subset.name.as_str()) {
                Some(first) => warnings.push(source.ctx.warning(
                    &spec.key("subsets").index(k).key("name"),
                    format!(
                        "subset {:?} of {fqdn} is also defined by {}; istiod keeps the first definition, so this one is not used",
                        subset.name,
                        sources[*first].ctx.describe()
                    ),
                )),
                None => {
                    names.insert(&subset.name, i);
                    subsets.push((i, k));
                }
            }
        }
    }
    Rule {
        fqdn,
        sources,
        policy,
        subsets,
    }
}

fn check_subsets(ctx: &Ctx<'_>, dr: &DestinationRule) -> Result<(), IstioError> {
    let at = FieldPath::root().key("spec").key("subsets");
    let mut names = HashSet::new();
    for (i, s) in dr.spec.subsets.iter().enumerate() {
        let at = at.index(i).key("name");
        if s.name.is_empty() {
            return Err(ctx.invalid(&at, "expected a subset name"));
        }
        if !names.insert(s.name.as_str()) {
            return Err(ctx.invalid(&at, format!("subset {:?} is defined twice", s.name)));
        }
    }
    Ok(())
}
