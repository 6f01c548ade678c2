//! Traffic policies into [`ClusterPolicy`], merged as Istio merges them:
//! the host's policy, replaced field by field (`loadBalancer`,
//! `connectionPool`, `outlierDetection`, `retryBudget`) by the subset's; a
//! port's `portLevelSettings` entry replaces the policy it belongs to
//! whole, falling back to defaults for what it omits.
//!
//! The defaults are istiod's, not the library's: what no policy sets
//! balances by least requests (`LEAST_REQUEST`) and ejects no endpoint
//! (istiod configures outlier detection only where `outlierDetection` is
//! written).

use std::collections::BTreeSet;

use http::HeaderName;

use mesh_core::policy::{
    ClusterPolicy, LoadBalancer, Maglev, OutlierDetection as Outlier, Protocol, RingHash, TlsFiles,
    UpstreamTls,
};
use mesh_core::route::{HashKey, HashPolicy, Percent};

use super::super::api::{
    ClientTLSSettings, ConnectionPoolSettings, ConsistentHashLB, H2UpgradePolicy,
    LoadBalancerSettings, OutlierDetection, SimpleLB, TLSMode, TrafficPolicy,
    TrafficPolicyRetryBudget,
};
use super::super::error::{IstioError, IstioErrorKind};
use super::super::yaml::FieldPath;
use super::{Ctx, check, locality};

/// A traffic policy as written: the policy, the rule it is in and its
/// field.
pub(super) type Written<'r> = (&'r TrafficPolicy, &'r Ctx<'r>, FieldPath);

/// A part of a policy, the rule it is in and its field.
struct Part<'r, T> {
    value: &'r T,
    ctx: &'r Ctx<'r>,
    at: FieldPath,
}

fn part<'r, T>(
    value: &'r Option<T>,
    ctx: &'r Ctx<'r>,
    at: &FieldPath,
    key: &str,
) -> Option<Part<'r, T>> {
    value.as_ref().map(|value| Part {
        value,
        ctx,
        at: at.key(key),
    })
}

/// The ports the host's policy, and the subset's, have
/// `portLevelSettings` entries for.
pub(super) fn ports(
    host: Option<&Written<'_>>,
    subset: Option<&Written<'_>>,
) -> Result<BTreeSet<u16>, IstioError> {
    let mut ports = BTreeSet::new();
    for (tp, ctx, at) in host.into_iter().chain(subset) {
        for (k, p) in tp.port_level_settings.iter().enumerate() {
            let at = at
                .key("portLevelSettings")
                .index(k)
                .key("port")
                .key("number");
            ports.insert(check::port(ctx, &at, p.port.map_or(0, |p| p.number))?);
        }
    }
    Ok(ports)
}

/// The cluster policy of requests to `port` (any, for `None`) under the
/// host's policy and the subset's, and the hash policy its balancer
/// expects of routes.
pub(super) fn cluster_policy(
    host: Option<&Written<'_>>,
    subset: Option<&Written<'_>>,
    port: Option<u16>,
) -> Result<(ClusterPolicy, Option<HashPolicy>), IstioError> {
    let mut e = Effective::default();
    if let Some((tp, ctx, at)) = host {
        e.merge(tp, ctx, at, port);
    }
    if let Some((tp, ctx, at)) = subset {
        let mut s = Effective::default();
        let whole = s.merge(tp, ctx, at, port);
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
        e.tls = s.tls.or(e.tls);
    }
    e.policy()
}

/// The policy parts in force for one cluster.
#[derive(Default)]
struct Effective<'r> {
    load_balancer: Option<Part<'r, LoadBalancerSettings>>,
    connection_pool: Option<Part<'r, ConnectionPoolSettings>>,
    outlier_detection: Option<Part<'r, OutlierDetection>>,
    retry_budget: Option<Part<'r, TrafficPolicyRetryBudget>>,
    tls: Option<Part<'r, ClientTLSSettings>>,
}

impl<'r> Effective<'r> {
    /// Takes the parts `tp` sets, then its entry for `port`, which replaces
    /// the balancer, pool and ejection parts whole. Returns whether there
    /// was such an entry.
    fn merge(
        &mut self,
        tp: &'r TrafficPolicy,
        ctx: &'r Ctx<'r>,
        at: &FieldPath,
        port: Option<u16>,
    ) -> bool {
        if let Some(p) = part(&tp.load_balancer, ctx, at, "loadBalancer") {
            self.load_balancer = Some(p);
        }
        if let Some(p) = part(&tp.connection_pool, ctx, at, "connectionPool") {
            self.connection_pool = Some(p);
        }
        if let Some(p) = part(&tp.outlier_detection, ctx, at, "outlierDetection") {
            self.outlier_detection = Some(p);
        }
        if let Some(p) = part(&tp.retry_budget, ctx, at, "retryBudget") {
            self.retry_budget = Some(p);
        }
        if let Some(p) = part(&tp.tls, ctx, at, "tls") {
            self.tls = Some(p);
        }
        let Some(port) = port else { return false };
        let found = tp
            .port_level_settings
            .iter()
            .position(|p| p.port.is_some_and(|s| s.number == u32::from(port)));
        let Some(k) = found else { return false };
        let p = &tp.port_level_settings[k];
        let at = at.key("portLevelSettings").index(k);
        self.load_balancer = part(&p.load_balancer, ctx, &at, "loadBalancer");
        self.connection_pool = part(&p.connection_pool, ctx, &at, "connectionPool");
        self.outlier_detection = part(&p.outlier_detection, ctx, &at, "outlierDetection");
        if let Some(tls) = part(&p.tls, ctx, &at, "tls") {
            self.tls = Some(tls);
        }
        true
    }

    /// The cluster policy and the routes' hash policy.
    fn policy(&self) -> Result<(ClusterPolicy, Option<HashPolicy>), IstioError> {
        let mut p = istio_default();
        let mut hash = None;
        if let Some(Part { value, ctx, at }) = &self.load_balancer {
            (p.load_balancer, hash) = load_balancer(ctx, at, value)?;
            if let Some(s) = &value.locality_lb_setting {
                p.locality = locality::locality_lb(ctx, &at.key("localityLbSetting"), s)?;
            }
        }
        if let Some(Part { value, ctx, at }) = &self.connection_pool {
            connection_pool(ctx, at, value, &mut p)?;
        }
        if let Some(Part { value, ctx, at }) = &self.outlier_detection {
            p.outlier = outlier(ctx, at, value)?;
        }
        if let Some(Part { value, ctx, at }) = &self.retry_budget
            && let Some(percent) = value.percent
        {
            let share = check::percent(ctx, &at.key("percent").key("value"), percent)?;
            p.retry.budget.retry_ratio = share.ppm() as f32 / Percent::MILLION as f32;
        }
        if let Some(Part { value, .. }) = &self.tls {
            p.tls = upstream_tls(value);
        }
        Ok((p, hash))
    }
}

/// Istio's `ISTIO_MUTUAL` as the mesh's mutual TLS, `SIMPLE` and `MUTUAL`
/// as TLS with the files the rule names; `DISABLE` is plain text.
fn upstream_tls(tls: &ClientTLSSettings) -> Option<UpstreamTls> {
    let file = |f: &String| (!f.is_empty()).then(|| f.clone());
    let files = match tls.mode? {
        TLSMode::Disable => return None,
        TLSMode::IstioMutual => None,
        TLSMode::Simple => Some(TlsFiles {
            ca_certificates: file(&tls.ca_certificates),
            ..TlsFiles::default()
        }),
        TLSMode::Mutual => Some(TlsFiles {
            client_certificate: file(&tls.client_certificate),
            private_key: file(&tls.private_key),
            ca_certificates: file(&tls.ca_certificates),
        }),
    };
    Some(UpstreamTls {
        sni: (!tls.sni.is_empty()).then(|| tls.sni.clone()),
        subject_alt_names: tls
            .subject_alt_names
            .iter()
            .map(|n| n.as_str().into())
            .collect(),
        files,
    })
}

/// `SIMPLE` and `MUTUAL` without an `sni` or `subjectAltNames` send and
/// check the service's host `fqdn`, as Istio's proxies do by default
/// (their SNI is the request's host, which names the service): a name to
/// check the server's certificate for, which the system's roots need.
pub(super) fn default_sni(policy: &mut ClusterPolicy, fqdn: &str) {
    if let Some(tls) = &mut policy.tls
        && tls.files.is_some()
        && tls.sni.is_none()
        && tls.subject_alt_names.is_empty()
        && !fqdn.starts_with('*')
    {
        tls.sni = Some(fqdn.to_owned());
    }
}

/// The policy istiod gives a cluster no DestinationRule sets anything for:
/// least requests and no outlier detection, Envoy's and the library's
/// defaults for the rest.
pub(super) fn istio_default() -> ClusterPolicy {
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
