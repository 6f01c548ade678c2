//! Warnings for settings that are read but not used by the client
//! configuration: features of Istio's that belong to gateways, the server
//! side or the control plane, or that the client does not have (yet). Each
//! says what happens instead.

use super::api::kubernetes::{self, IntOrString};
use super::api::{
    CaptureMode, ClientTLSSettings, ConnectionPoolSettings, DestinationRule, Gateway, HTTPRoute,
    LoadBalancerSettings, OutlierDetection, ServerTLSMode, ServiceEntry, Sidecar, SimpleLB,
    TLSMode, TrafficPolicy, VirtualService, WorkloadEntry, WorkloadEntrySpec,
};
use super::yaml::FieldPath;
use mesh_core::policy::Maglev;

/// What is said of a traffic policy's `tls` (or a port's): nothing of
/// `DISABLE`, which is what the client does.
fn tls_note(tls: &ClientTLSSettings) -> Option<&'static str> {
    match tls.mode {
        Some(TLSMode::Disable) | None => None,
        _ if !tls.credential_name.is_empty() => Some(
            "credentialName (a Kubernetes secret) is not read: name the files (clientCertificate, privateKey, caCertificates); TLS without them",
        ),
        _ => Some(TLS_NOT_DIALLED),
    }
}

/// What is said of TLS the mesh's own clients do not dial.
const TLS_NOT_DIALLED: &str = "mesh clients do not dial TLS yet (the control plane serves it to proxyless gRPC and Envoy): their requests to these endpoints fail rather than go out in plain text";

/// What is said of `tls` in a traffic policy or a port's.
const TLS_IGNORED: &str =
    "TLS towards endpoints is not applied yet (mutual TLS comes with the security work); ignored";

/// What is said of a workload's `network`.
const NETWORK_IGNORED: &str = "the client reaches every endpoint directly, as on one network (it does not go through another network's gateway); ignored";

/// A warning's field and message.
pub(crate) type Note = (FieldPath, String);

/// The unused settings of a VirtualService.
pub(crate) fn virtual_service(vs: &VirtualService) -> Vec<Note> {
    let mut notes = Vec::new();
    let spec = FieldPath::root().key("spec");
    let mut note = |path: FieldPath, msg: &str| notes.push((path, msg.to_owned()));
    if !vs.spec.tls.is_empty() {
        note(
            spec.key("tls"),
            "TLS routes are not used by the HTTP client; ignored",
        );
    }
    if !vs.spec.tcp.is_empty() {
        note(
            spec.key("tcp"),
            "TCP routes are not used by the HTTP client; ignored",
        );
    }
    for (i, http) in vs.spec.http.iter().enumerate() {
        http_route(&spec.key("http").index(i), http, &mut note);
    }
    notes
}

fn http_route(at: &FieldPath, http: &HTTPRoute, note: &mut impl FnMut(FieldPath, &str)) {
    for (j, m) in http.matches.iter().enumerate() {
        let at = at.key("match").index(j);
        if !m.stat_prefix.is_empty() {
            note(
                at.key("statPrefix"),
                "statistics prefixes are not used by the client; ignored",
            );
        }
    }
    if http.route.is_empty() {
        for (field, set) in [
            ("timeout", http.timeout.is_some()),
            ("retries", http.retries.is_some()),
            ("mirror", http.mirror.is_some()),
            ("mirrors", !http.mirrors.is_empty()),
        ] {
            if set {
                note(
                    at.key(field),
                    "applies only to forwarded requests; ignored with redirect or directResponse",
                );
            }
        }
    }
    if http.mirror.is_none() {
        for (field, set) in [
            ("mirrorPercentage", http.mirror_percentage.is_some()),
            ("mirrorPercent", http.mirror_percent.is_some()),
        ] {
            if set {
                note(at.key(field), "applies only with mirror; ignored");
            }
        }
    }
    if http.cors_policy.is_some() {
        note(
            at.key("corsPolicy"),
            "CORS is enforced where requests are received, not by the client; ignored",
        );
    }
    if let Some(r) = &http.retries {
        if r.retry_remote_localities.is_some() {
            note(
                at.key("retries").key("retryRemoteLocalities"),
                "the client does not steer retries by locality; ignored",
            );
        }
        if r.retry_ignore_previous_hosts.is_some() {
            note(
                at.key("retries").key("retryIgnorePreviousHosts"),
                "the client's balancer does not track the endpoints a request tried; ignored",
            );
        }
    }
    let Some(fault) = &http.fault else { return };
    let at = at.key("fault");
    if let Some(delay) = &fault.delay {
        if delay.exponential_delay.is_some() {
            note(
                at.key("delay").key("exponentialDelay"),
                "exponential delays are not supported (nor by Istio); no delay is injected for it",
            );
        }
        if delay.percentage.is_none() && delay.percent.is_none() {
            note(
                at.key("delay"),
                "no percentage: as in Istio, the delay applies to no request; set percentage.value: 100 for all",
            );
        }
    }
    if let Some(abort) = &fault.abort {
        if abort.http2_error.is_some() {
            note(
                at.key("abort").key("http2Error"),
                "HTTP/2 error aborts are not supported (nor by Istio); no abort is injected for it",
            );
        }
        if abort.percentage.is_none() {
            note(
                at.key("abort"),
                "no percentage: as in Istio, no request is aborted; set percentage.value: 100 for all",
            );
        }
    }
}

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

/// The unused settings of a Gateway. Its ports, TLS and binding are the
/// control plane's, for the listeners of the gateway proxy; the routes use
/// its hosts.
pub(crate) fn gateway(gw: &Gateway) -> Vec<Note> {
    let mut notes = Vec::new();
    let servers = FieldPath::root().key("spec").key("servers");
    for (i, server) in gw.spec.servers.iter().enumerate() {
        let at = servers.index(i);
        if !server.bind.is_empty() {
            notes.push((
                at.key("bind"),
                "the gateway's listeners bind the proxy's own address; ignored".to_owned(),
            ));
        }
        let https = server
            .port
            .as_ref()
            .is_some_and(|p| p.protocol.eq_ignore_ascii_case("HTTPS"));
        let Some(tls) = server.tls.as_ref().filter(|_| https) else {
            continue;
        };
        let files = !tls.server_certificate.is_empty() || !tls.tls_certificates.is_empty();
        let secret = !tls.credential_name.is_empty() || !tls.credential_names.is_empty();
        if matches!(
            tls.mode,
            Some(ServerTLSMode::IstioMutual | ServerTLSMode::OptionalMutual)
        ) {
            notes.push((
                at.key("tls"),
                "the mesh's own certificates are not served to gateways; this server is not served (use SIMPLE or MUTUAL with a credentialName or certificate files)".to_owned(),
            ));
        } else if secret && files {
            notes.push((
                at.key("tls"),
                "the Secret credentialName names is served, as istiod serves it; the files are ignored".to_owned(),
            ));
        }
        let credential_names = if tls.credential_name.is_empty() {
            tls.credential_names.len()
        } else {
            tls.credential_names.len() + 1
        };
        if credential_names > 1 {
            notes.push((
                at.key("tls").key("credentialNames"),
                "only the first Secret is served (credentialName, else the first of credentialNames)".to_owned(),
            ));
        }
        if tls.tls_certificates.len() > 1 {
            notes.push((
                at.key("tls").key("tlsCertificates"),
                "only the first certificate is served".to_owned(),
            ));
        }
    }
    notes
}

/// The unused settings of a Sidecar: listeners are bound where they are
/// reached (`captureMode: NONE`), as nothing redirects traffic here.
pub(crate) fn sidecar(sc: &Sidecar) -> Vec<Note> {
    let mut notes = Vec::new();
    let spec = FieldPath::root().key("spec");
    let captured = |mode: CaptureMode| mode == CaptureMode::Iptables;
    let capture_note = "nothing redirects traffic to the sidecar here (no iptables): the listener binds its address, as with captureMode NONE";
    if sc
        .spec
        .workload_selector
        .as_ref()
        .is_some_and(|s| s.labels.is_empty())
    {
        notes.push((
            spec.key("workloadSelector"),
            "selects by no labels: it applies to every workload in the namespace, ahead of the namespace's Sidecar without a selector".to_owned(),
        ));
    }
    for (i, l) in sc.spec.ingress.iter().enumerate() {
        let at = spec.key("ingress").index(i);
        if captured(l.capture_mode) {
            notes.push((at.key("captureMode"), capture_note.to_owned()));
        }
        if l.tls.is_some() {
            notes.push((
                at.key("tls"),
                "the listener takes the mesh's mutual TLS as PeerAuthentication says, not TLS of its own; ignored".to_owned(),
            ));
        }
        if l.connection_pool.is_some() {
            notes.push((
                at.key("connectionPool"),
                "connections to the workload are not limited; ignored".to_owned(),
            ));
        }
    }
    for (i, l) in sc.spec.egress.iter().enumerate() {
        if captured(l.capture_mode) {
            let at = spec.key("egress").index(i).key("captureMode");
            notes.push((at, capture_note.to_owned()));
        }
    }
    if sc.spec.outbound_traffic_policy.is_some() {
        notes.push((
            spec.key("outboundTrafficPolicy"),
            "the sidecar's listeners serve the registry's services only; ignored".to_owned(),
        ));
    }
    notes
}

/// The unused settings of a ServiceEntry.
pub(crate) fn service_entry(se: &ServiceEntry) -> Vec<Note> {
    let mut notes = Vec::new();
    let spec = FieldPath::root().key("spec");
    if !se.spec.subject_alt_names.is_empty() {
        notes.push((spec.key("subjectAltNames"), TLS_IGNORED.to_owned()));
    }
    for (i, e) in se.spec.endpoints.iter().enumerate() {
        workload(&spec.key("endpoints").index(i), e, &mut notes);
    }
    notes
}

/// The unused settings of a WorkloadEntry.
pub(crate) fn workload_entry(we: &WorkloadEntry) -> Vec<Note> {
    let mut notes = Vec::new();
    workload(&FieldPath::root().key("spec"), &we.spec, &mut notes);
    notes
}

fn workload(at: &FieldPath, w: &WorkloadEntrySpec, notes: &mut Vec<Note>) {
    if !w.network.is_empty() {
        notes.push((at.key("network"), NETWORK_IGNORED.to_owned()));
    }
}

/// The unused settings of a Kubernetes Service.
pub(crate) fn service(service: &kubernetes::Service) -> Vec<Note> {
    let mut notes = Vec::new();
    let spec = FieldPath::root().key("spec");
    if service.spec.service_type.as_deref() == Some("ExternalName") {
        notes.push((
            spec.key("type"),
            "an ExternalName service is not read as an alias of its externalName; the service has no endpoints".to_owned(),
        ));
    }
    for (i, port) in service.spec.ports.iter().enumerate() {
        if let Some(IntOrString::String(name)) = &port.target_port {
            notes.push((
                spec.key("ports").index(i).key("targetPort"),
                format!(
                    "a named targetPort ({name}) names a container port, which is not known here; endpoints get the port an instance gives for the port's name, else the service port"
                ),
            ));
        }
    }
    notes
}
