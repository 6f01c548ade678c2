//! DestinationRules: which one applies to a host, the subsets they define,
//! and their traffic policies turned into [`ClusterPolicy`], merged as
//! Istio merges them: the host's policy, replaced field by field
//! (`loadBalancer`, `connectionPool`, `outlierDetection`, `retryBudget`)
//! by the subset's; a port's `portLevelSettings` entry replaces the
//! policy it belongs to whole, falling back to defaults for what it omits.
//!
//! The defaults are istiod's, not the library's: what no policy sets
//! balances by least requests (`LEAST_REQUEST`) and ejects no endpoint
//! (istiod configures outlier detection only where `outlierDetection` is
//! written).

use std::collections::BTreeSet;

use http::HeaderName;

use crate::cluster::Cluster;
use crate::policy::{
    ClusterPolicy, LoadBalancer, Maglev, OutlierDetection as Outlier, Protocol, RingHash,
};
use crate::route::{ClusterName, HashKey, HashPolicy, Percent};

use super::super::api::{
    ConnectionPoolSettings, ConsistentHashLB, DestinationRule, H2UpgradePolicy,
    LoadBalancerSettings, OutlierDetection, SimpleLB, TrafficPolicy, TrafficPolicyRetryBudget,
};
use super::super::error::{IstioError, IstioErrorKind};
use super::super::yaml::FieldPath;
use super::super::{Sourced, Workload};
use super::{Ctx, Resolved, check};

/// The DestinationRules that apply to the client, by host.
pub(super) struct Rules<'a> {
    /// In the order given, exact hosts and wildcards alike.
    rules: Vec<Rule<'a>>,
}

/// A DestinationRule and its host's FQDN.
pub(super) struct Rule<'a> {
    fqdn: String,
    dr: &'a DestinationRule,
    pub(super) ctx: Ctx<'a>,
    selective: bool,
}

impl<'a> Rules<'a> {
    /// Indexes the rules that apply to `workload` (those whose
    /// `workloadSelector` it matches, or that have none). Two for one host
    /// are an error, unless only one selects workloads: that one wins, as
    /// in Istio.
    pub(super) fn new(
        drs: &'a [Sourced<DestinationRule>],
        workload: &Workload,
    ) -> Result<Self, IstioError> {
        let mut rules: Vec<Rule<'a>> = Vec::new();
        for sourced in drs {
            let dr = &sourced.resource;
            let meta = &dr.metadata;
            let ctx = Ctx::new(sourced, "DestinationRule", &meta.name, meta.namespace());
            let selective = match &dr.spec.workload_selector {
                Some(sel) => {
                    if !sel
                        .match_labels
                        .iter()
                        .all(|(k, v)| workload.labels.get(k) == Some(v))
                    {
                        continue;
                    }
                    true
                }
                None => false,
            };
            let at = FieldPath::root().key("spec").key("host");
            let fqdn =
                check::host_or_wildcard(&ctx, &at, &dr.spec.host, meta.namespace(), workload)?;
            check_subsets(&ctx, dr)?;
            let rule = Rule {
                fqdn,
                dr,
                ctx,
                selective,
            };
            match rules.iter().position(|r| r.fqdn == rule.fqdn) {
                None => rules.push(rule),
                Some(i) if rules[i].selective && !rule.selective => {}
                Some(i) if rule.selective && !rules[i].selective => rules[i] = rule,
                Some(i) => {
                    return Err(rule.ctx.invalid(
                        &at,
                        format!(
                            "host {} also has {}; write one DestinationRule per host",
                            rule.fqdn, rules[i].ctx.label
                        ),
                    ));
                }
            }
        }
        Ok(Self { rules })
    }

    /// The rule for `fqdn`: its own, else the longest wildcard that covers
    /// it.
    fn find(&self, fqdn: &str) -> Option<&Rule<'a>> {
        if let Some(r) = self.rules.iter().find(|r| r.fqdn == fqdn) {
            return Some(r);
        }
        self.rules
            .iter()
            .filter(|r| r.fqdn.starts_with('*') && super::covers(&r.fqdn, fqdn))
            .max_by_key(|r| r.fqdn.len())
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
        let subset_index = match (subset, rule) {
            (None, _) => None,
            (Some(s), None) => {
                return Err(ctx.invalid(
                    at,
                    format!(
                        "subset {s:?} of {fqdn} is not defined: no DestinationRule has host {fqdn}"
                    ),
                ));
            }
            (Some(s), Some(r)) => match r.dr.spec.subsets.iter().position(|x| x.name == s) {
                Some(i) => Some(i),
                None => {
                    let known: Vec<&str> =
                        r.dr.spec.subsets.iter().map(|x| x.name.as_str()).collect();
                    return Err(ctx.invalid(
                        at,
                        format!(
                            "subset {s:?} of {fqdn} is not defined by {} (it defines {})",
                            r.ctx.label,
                            if known.is_empty() {
                                "none".to_owned()
                            } else {
                                known.join(", ")
                            }
                        ),
                    ));
                }
            },
        };
        let mut cluster = Cluster {
            name,
            host: fqdn.into(),
            port,
            subset: Default::default(),
            policy: istio_default(),
            port_policies: Default::default(),
        };
        let Some(rule) = rule else {
            return Ok(Resolved {
                cluster,
                hashes: Vec::new(),
            });
        };
        if let Some(i) = subset_index {
            cluster.subset = rule.dr.spec.subsets[i].labels.clone();
        }
        let (policy, hash) = rule.effective(subset_index, port).policy(&rule.ctx)?;
        cluster.policy = policy;
        let mut hashes: Vec<HashPolicy> = hash.into_iter().collect();
        // Without a port of its own, the cluster stands for istiod's
        // cluster of each service port: those with settings of their own
        // get them.
        if port.is_none() {
            for p in rule.ports(subset_index)? {
                let (policy, hash) = rule.effective(subset_index, Some(p)).policy(&rule.ctx)?;
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
        let name = crate::cluster::istio_cluster_name(fqdn, None, None);
        self.resolve(&rule.ctx, &FieldPath::root(), name, fqdn, None, None)
    }
}

fn check_subsets(ctx: &Ctx<'_>, dr: &DestinationRule) -> Result<(), IstioError> {
    let at = FieldPath::root().key("spec").key("subsets");
    for (i, s) in dr.spec.subsets.iter().enumerate() {
        let at = at.index(i).key("name");
        if s.name.is_empty() {
            return Err(ctx.invalid(&at, "expected a subset name"));
        }
        if dr.spec.subsets[..i].iter().any(|x| x.name == s.name) {
            return Err(ctx.invalid(&at, format!("subset {:?} is defined twice", s.name)));
        }
    }
    Ok(())
}

/// A part of a policy and where it is written.
type Part<'a, T> = Option<(&'a T, FieldPath)>;

fn part<'a, T>(value: &'a Option<T>, at: &FieldPath, key: &str) -> Part<'a, T> {
    value.as_ref().map(|v| (v, at.key(key)))
}

/// The policy parts in force for one cluster.
#[derive(Default)]
struct Effective<'a> {
    load_balancer: Part<'a, LoadBalancerSettings>,
    connection_pool: Part<'a, ConnectionPoolSettings>,
    outlier_detection: Part<'a, OutlierDetection>,
    retry_budget: Part<'a, TrafficPolicyRetryBudget>,
}

impl<'a> Rule<'a> {
    /// The ports the host's policy, and the policy of `subset`, have
    /// `portLevelSettings` entries for.
    fn ports(&self, subset: Option<usize>) -> Result<BTreeSet<u16>, IstioError> {
        let spec = FieldPath::root().key("spec");
        let host = self
            .dr
            .spec
            .traffic_policy
            .as_ref()
            .map(|tp| (tp, spec.key("trafficPolicy")));
        let subset = subset.and_then(|i| {
            let tp = self.dr.spec.subsets[i].traffic_policy.as_ref()?;
            Some((tp, spec.key("subsets").index(i).key("trafficPolicy")))
        });
        let mut ports = BTreeSet::new();
        for (tp, at) in host.into_iter().chain(subset) {
            for (k, p) in tp.port_level_settings.iter().enumerate() {
                let at = at.key("portLevelSettings").index(k).key("port");
                let number = p.port.map_or(0, |p| p.number);
                ports.insert(check::port(&self.ctx, &at.key("number"), number)?);
            }
        }
        Ok(ports)
    }

    fn effective(&self, subset: Option<usize>, port: Option<u16>) -> Effective<'a> {
        let mut e = Effective::default();
        let spec = FieldPath::root().key("spec");
        if let Some(tp) = &self.dr.spec.traffic_policy {
            e.merge(tp, &spec.key("trafficPolicy"), port);
        }
        if let Some(i) = subset
            && let Some(tp) = &self.dr.spec.subsets[i].traffic_policy
        {
            let at = spec.key("subsets").index(i).key("trafficPolicy");
            let mut s = Effective::default();
            let whole = s.merge(tp, &at, port);
            e.load_balancer = s
                .load_balancer
                .or(if whole { None } else { e.load_balancer });
            e.connection_pool = s
                .connection_pool
                .or(if whole { None } else { e.connection_pool });
            e.outlier_detection =
                s.outlier_detection
                    .or(if whole { None } else { e.outlier_detection });
            e.retry_budget = s.retry_budget.or(e.retry_budget);
        }
        e
    }
}

impl<'a> Effective<'a> {
    /// Takes the parts `tp` sets, then its entry for `port`, which replaces
    /// the balancer, pool and ejection parts whole. Returns whether there
    /// was such an entry.
    fn merge(&mut self, tp: &'a TrafficPolicy, at: &FieldPath, port: Option<u16>) -> bool {
        if let Some(p) = part(&tp.load_balancer, at, "loadBalancer") {
            self.load_balancer = Some(p);
        }
        if let Some(p) = part(&tp.connection_pool, at, "connectionPool") {
            self.connection_pool = Some(p);
        }
        if let Some(p) = part(&tp.outlier_detection, at, "outlierDetection") {
            self.outlier_detection = Some(p);
        }
        if let Some(p) = part(&tp.retry_budget, at, "retryBudget") {
            self.retry_budget = Some(p);
        }
        let Some(port) = port else { return false };
        let found = tp
            .port_level_settings
            .iter()
            .position(|p| p.port.is_some_and(|s| s.number == u32::from(port)));
        let Some(k) = found else { return false };
        let p = &tp.port_level_settings[k];
        let at = at.key("portLevelSettings").index(k);
        self.load_balancer = part(&p.load_balancer, &at, "loadBalancer");
        self.connection_pool = part(&p.connection_pool, &at, "connectionPool");
        self.outlier_detection = part(&p.outlier_detection, &at, "outlierDetection");
        true
    }

    /// The cluster policy and the routes' hash policy.
    fn policy(&self, ctx: &Ctx<'_>) -> Result<(ClusterPolicy, Option<HashPolicy>), IstioError> {
        let mut p = istio_default();
        let mut hash = None;
        if let Some((lb, at)) = &self.load_balancer {
            (p.load_balancer, hash) = load_balancer(ctx, at, lb)?;
        }
        if let Some((pool, at)) = &self.connection_pool {
            connection_pool(ctx, at, pool, &mut p)?;
        }
        if let Some((o, at)) = &self.outlier_detection {
            p.outlier = outlier(ctx, at, o)?;
        }
        if let Some((b, at)) = &self.retry_budget
            && let Some(percent) = b.percent
        {
            let share = check::percent(ctx, &at.key("percent").key("value"), percent)?;
            p.retry.budget.retry_ratio = share.ppm() as f32 / Percent::MILLION as f32;
        }
        Ok((p, hash))
    }
}

/// The policy istiod gives a cluster no DestinationRule sets anything for:
/// least requests and no outlier detection, Envoy's and the library's
/// defaults for the rest.
fn istio_default() -> ClusterPolicy {
    ClusterPolicy {
        load_balancer: ISTIO_LOAD_BALANCER,
        outlier: Outlier::disabled(),
        ..ClusterPolicy::default()
    }
}

/// Istio's balancer where none is chosen (`LEAST_REQUEST`).
const ISTIO_LOAD_BALANCER: LoadBalancer = LoadBalancer::LeastRequest;

fn load_balancer(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    lb: &LoadBalancerSettings,
) -> Result<(LoadBalancer, Option<HashPolicy>), IstioError> {
    match (lb.simple, &lb.consistent_hash) {
        (Some(_), Some(_)) => Err(ctx.invalid(at, "expected simple or consistentHash, not both")),
        (Some(simple), None) => Ok((
            match simple {
                SimpleLB::Unspecified | SimpleLB::Passthrough => ISTIO_LOAD_BALANCER,
                SimpleLB::LeastConn | SimpleLB::LeastRequest => LoadBalancer::LeastRequest,
                SimpleLB::Random => LoadBalancer::Random,
                SimpleLB::RoundRobin => LoadBalancer::RoundRobin,
            },
            None,
        )),
        (None, Some(h)) => {
            let (lb, hash) = consistent_hash(ctx, &at.key("consistentHash"), h)?;
            Ok((lb, Some(hash)))
        }
        (None, None) => Ok((ISTIO_LOAD_BALANCER, None)),
    }
}

fn consistent_hash(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    h: &ConsistentHashLB,
) -> Result<(LoadBalancer, HashPolicy), IstioError> {
    let keys = [
        h.http_header_name.is_some(),
        h.http_cookie.is_some(),
        h.use_source_ip.is_some(),
        h.http_query_parameter_name.is_some(),
    ];
    let expected =
        "expected one of httpHeaderName, httpCookie, useSourceIp and httpQueryParameterName";
    if keys.iter().filter(|k| **k).count() != 1 {
        return Err(ctx.invalid(at, expected));
    }
    let key = if let Some(name) = &h.http_header_name {
        HashKey::Header(HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            ctx.invalid(
                &at.key("httpHeaderName"),
                format!("{name:?} is not a valid header name"),
            )
        })?)
    } else if let Some(cookie) = &h.http_cookie {
        HashKey::Cookie(cookie.name.clone())
    } else if let Some(query) = &h.http_query_parameter_name {
        HashKey::QueryParameter(query.clone())
    } else if h.use_source_ip == Some(true) {
        HashKey::SourceIp
    } else {
        return Err(ctx.invalid(
            &at.key("useSourceIp"),
            "useSourceIp: false hashes nothing; set it to true or choose another key",
        ));
    };
    let lb_error = |at: FieldPath| move |e| ctx.error(&at, IstioErrorKind::LoadBalancer(e));
    let lb = match (h.ring_hash, h.maglev) {
        (Some(_), Some(_)) => {
            return Err(ctx.invalid(at, "expected ringHash or maglev, not both"));
        }
        (None, Some(m)) => {
            let size = if m.table_size == 0 {
                Maglev::default().table_size
            } else {
                m.table_size
            };
            LoadBalancer::Maglev(
                Maglev::new(size).map_err(lb_error(at.key("maglev").key("tableSize")))?,
            )
        }
        (ring, None) => {
            let (min, at) = match (ring, h.minimum_ring_size) {
                (Some(r), _) => (
                    r.minimum_ring_size,
                    at.key("ringHash").key("minimumRingSize"),
                ),
                (None, Some(n)) => (n, at.key("minimumRingSize")),
                (None, None) => (0, at.clone()),
            };
            let default = RingHash::default();
            let min = if min == 0 { default.min_ring_size } else { min };
            LoadBalancer::RingHash(RingHash::new(min, default.max_ring_size).map_err(lb_error(at))?)
        }
    };
    Ok((
        lb,
        HashPolicy {
            key,
            terminal: false,
        },
    ))
}

fn connection_pool(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    pool: &ConnectionPoolSettings,
    p: &mut ClusterPolicy,
) -> Result<(), IstioError> {
    if let Some(t) = pool.tcp.as_ref().and_then(|t| t.connect_timeout) {
        p.connection.connect_timeout =
            check::at_least_1ms(ctx, &at.key("tcp").key("connectTimeout"), t.get())?;
    }
    let Some(http) = &pool.http else {
        return Ok(());
    };
    let at = at.key("http");
    if http.http1_max_pending_requests > 0 {
        p.circuit_breakers.max_pending_requests = http.http1_max_pending_requests;
    }
    if http.http2_max_requests > 0 {
        p.circuit_breakers.max_requests = http.http2_max_requests;
    }
    if let Some(t) = http.idle_timeout {
        p.connection.idle_timeout = check::at_least_1ms(ctx, &at.key("idleTimeout"), t.get())?;
    }
    if !http.use_client_protocol && http.h2_upgrade_policy == Some(H2UpgradePolicy::Upgrade) {
        p.connection.protocol = Protocol::Http2;
    }
    Ok(())
}

/// A written `outlierDetection`: Envoy's defaults (5 consecutive 5xx eject)
/// for what it leaves out, as istiod passes it on.
fn outlier(ctx: &Ctx<'_>, at: &FieldPath, o: &OutlierDetection) -> Result<Outlier, IstioError> {
    let mut out = Outlier::default();
    if let Some(n) = o.consecutive_5xx_errors {
        out.consecutive_5xx = (n > 0).then_some(n);
    }
    if let Some(n) = o.consecutive_gateway_errors {
        out.consecutive_gateway_errors = (n > 0).then_some(n);
    }
    if let Some(t) = o.base_ejection_time {
        out.base_ejection_time = check::at_least_1ms(ctx, &at.key("baseEjectionTime"), t.get())?;
    }
    match o.max_ejection_percent {
        0 => {}
        n @ 1..=100 => out.max_ejection_percent = n,
        n => {
            return Err(ctx.invalid(
                &at.key("maxEjectionPercent"),
                format!("{n} is not a percentage from 0 to 100"),
            ));
        }
    }
    Ok(out)
}
