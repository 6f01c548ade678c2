//! Warnings for the settings of a DestinationRule's traffic policies
//! (the rule's, its subsets' and their ports') that the client reads but
//! does not use: balancer options, connection pool settings without a
//! counterpart, outlier detection's deprecated fields, and TLS.

use mesh_core::policy::Maglev;

use super::super::api::{
    ClientTLSSettings, ConnectionPoolSettings, DestinationRule, LoadBalancerSettings,
    OutlierDetection, SimpleLB, TLSMode, TrafficPolicy,
};
use super::super::yaml::FieldPath;
use super::{ISTIO_MUTUAL_DIALLED, Note, TLS_NOT_DIALLED};

/// The unused settings of a DestinationRule.
pub(crate) fn destination_rule(dr: &DestinationRule) -> Vec<Note> {
    let mut notes = Vec::new();
    let spec = FieldPath::root().key("spec");
    if let Some(tp) = &dr.spec.traffic_policy {
        traffic_policy(&spec.key("trafficPolicy"), tp, &mut notes);
    }
    for (i, subset) in dr.spec.subsets.iter().enumerate() {
        if let Some(tp) = &subset.traffic_policy {
            let at = spec.key("subsets").index(i).key("trafficPolicy");
            traffic_policy(&at, tp, &mut notes);
        }
    }
    notes
}

fn traffic_policy(at: &FieldPath, tp: &TrafficPolicy, notes: &mut Vec<Note>) {
    let mut note = |path: FieldPath, msg: &str| notes.push((path, msg.to_owned()));
    parts(
        at,
        tp.load_balancer.as_ref(),
        tp.connection_pool.as_ref(),
        tp.outlier_detection.as_ref(),
        &mut note,
    );
    if let Some(message) = tp.tls.as_ref().and_then(tls_note) {
        note(at.key("tls"), message);
    }
    if tp.tunnel.is_some() {
        note(
            at.key("tunnel"),
            "tunnelling is not supported by the client; ignored",
        );
    }
    if tp.proxy_protocol.is_some() {
        note(
            at.key("proxyProtocol"),
            "the PROXY protocol is not spoken by the client; ignored",
        );
    }
    if tp.retry_budget.is_some_and(|b| b.min_retry_concurrency > 0) {
        note(
            at.key("retryBudget").key("minRetryConcurrency"),
            "the client's retry budget has a floor of retries per second, not of concurrent retries; ignored",
        );
    }
    for (k, p) in tp.port_level_settings.iter().enumerate() {
        let at = at.key("portLevelSettings").index(k);
        parts(
            &at,
            p.load_balancer.as_ref(),
            p.connection_pool.as_ref(),
            p.outlier_detection.as_ref(),
            &mut note,
        );
        if let Some(message) = p.tls.as_ref().and_then(tls_note) {
            note(at.key("tls"), message);
        }
    }
}

fn parts(
    at: &FieldPath,
    lb: Option<&LoadBalancerSettings>,
    pool: Option<&ConnectionPoolSettings>,
    outlier: Option<&OutlierDetection>,
    note: &mut impl FnMut(FieldPath, &str),
) {
    if let Some(lb) = lb {
        load_balancer(&at.key("loadBalancer"), lb, note);
    }
    if let Some(pool) = pool {
        connection_pool(&at.key("connectionPool"), pool, note);
    }
    if let Some(o) = outlier {
        outlier_detection(&at.key("outlierDetection"), o, note);
    }
}

fn load_balancer(
    at: &FieldPath,
    lb: &LoadBalancerSettings,
    note: &mut impl FnMut(FieldPath, &str),
) {
    if lb.simple == Some(SimpleLB::Passthrough) {
        note(
            at.key("simple"),
            "PASSTHROUGH sends to the address the application resolved; the client balances over the discovered endpoints by least requests (Istio's default) instead",
        );
    }
    if lb.locality_lb_setting.is_some() {
        note(
            at.key("localityLbSetting"),
            "applied by the control plane to the endpoints it serves each client (priorities and locality weights); a client discovering endpoints itself takes them as discovery gives them",
        );
    }
    if lb.warmup_duration_secs.is_some() || lb.warmup.is_some() {
        let field = if lb.warmup.is_some() {
            "warmup"
        } else {
            "warmupDurationSecs"
        };
        note(
            at.key(field),
            "slow start is not supported by the client; new endpoints get their full share at once",
        );
    }
    let maglev = lb.consistent_hash.as_ref().and_then(|h| h.maglev.as_ref());
    if maglev.is_some_and(|m| m.table_size > Maglev::MAX_CLIENT_TABLE_SIZE) {
        let message = format!(
            "the mesh's xDS clients refuse a Maglev table above {} slots (Envoy takes it)",
            Maglev::MAX_CLIENT_TABLE_SIZE
        );
        note(
            at.key("consistentHash").key("maglev").key("tableSize"),
            &message,
        );
    }
    if let Some(cookie) = lb
        .consistent_hash
        .as_ref()
        .and_then(|h| h.http_cookie.as_ref())
    {
        let generates = cookie.ttl.is_some_and(|t| !t.get().is_zero());
        if generates || !cookie.path.is_empty() {
            note(
                at.key("consistentHash").key("httpCookie"),
                "the client hashes the cookie when a request carries it but does not set one (Envoy does when ttl is set); requests without it are spread",
            );
        }
    }
}

fn connection_pool(
    at: &FieldPath,
    pool: &ConnectionPoolSettings,
    note: &mut impl FnMut(FieldPath, &str),
) {
    if let Some(tcp) = &pool.tcp {
        let at = at.key("tcp");
        if tcp.max_connections > 0 {
            note(
                at.key("maxConnections"),
                "the client has no limit on connections per cluster (it limits requests); ignored",
            );
        }
        if tcp.tcp_keepalive.is_some() {
            note(
                at.key("tcpKeepalive"),
                "TCP keepalive is not set by the client; ignored",
            );
        }
        if tcp.max_connection_duration.is_some() {
            note(
                at.key("maxConnectionDuration"),
                "connections are not closed by age; ignored",
            );
        }
        if tcp.idle_timeout.is_some() {
            note(
                at.key("idleTimeout"),
                "the TCP idle timeout is for TCP proxying; HTTP connections use http.idleTimeout; ignored",
            );
        }
    }
    if let Some(http) = &pool.http {
        let at = at.key("http");
        for (field, set) in [
            (
                "maxRequestsPerConnection",
                http.max_requests_per_connection > 0,
            ),
            ("maxRetries", http.max_retries > 0),
            ("maxConcurrentStreams", http.max_concurrent_streams > 0),
        ] {
            if set {
                note(
                    at.key(field),
                    "not supported by the client's connection pool; ignored",
                );
            }
        }
    }
}

fn outlier_detection(at: &FieldPath, o: &OutlierDetection, note: &mut impl FnMut(FieldPath, &str)) {
    if o.interval.is_some() {
        note(
            at.key("interval"),
            "the client ejects an endpoint as soon as it reaches a threshold, without sweeps; ignored",
        );
    }
    if o.min_health_percent > 0 {
        note(
            at.key("minHealthPercent"),
            "not supported by the client; ejection is bounded by maxEjectionPercent only",
        );
    }
    if o.split_external_local_origin_errors || o.consecutive_local_origin_failures.is_some() {
        let field = if o.split_external_local_origin_errors {
            "splitExternalLocalOriginErrors"
        } else {
            "consecutiveLocalOriginFailures"
        };
        note(
            at.key(field),
            "local-origin failures are counted with responses; ignored",
        );
    }
    if o.consecutive_errors > 0 {
        note(
            at.key("consecutiveErrors"),
            "deprecated and ignored by Istio; use consecutive5xxErrors or consecutiveGatewayErrors",
        );
    }
}

/// What is said of a traffic policy's `tls` (or a port's): nothing of
/// `DISABLE`, which is what the client does.
fn tls_note(tls: &ClientTLSSettings) -> Option<&'static str> {
    match tls.mode {
        Some(TLSMode::Disable) | None => None,
        _ if !tls.credential_name.is_empty() => Some(
            "credentialName (a Kubernetes secret) is not read: name the files (clientCertificate, privateKey, caCertificates); TLS without them",
        ),
        Some(TLSMode::IstioMutual) => Some(ISTIO_MUTUAL_DIALLED),
        _ => Some(TLS_NOT_DIALLED),
    }
}
