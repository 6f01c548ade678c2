//! Warnings for settings that are read but not used by the client
//! configuration: features of Istio's that belong to gateways, the server
//! side or the control plane, or that the client does not have (yet). Each
//! says what happens instead.

mod traffic_policy;

use super::api::kubernetes::{self, IntOrString};
use super::api::{
    CaptureMode, Gateway, HTTPRoute, ServerTLSMode, ServiceEntry, Sidecar, VirtualService,
    WorkloadEntry, WorkloadEntrySpec,
};
use super::yaml::FieldPath;

pub(crate) use traffic_policy::destination_rule;

/// What is said of TLS with files of the rule's own, which the mesh's own
/// clients do not dial.
const TLS_NOT_DIALLED: &str = "mesh clients do not dial TLS with files of their own yet (the control plane serves it to proxyless gRPC and Envoy): their requests to these endpoints fail rather than go out in plain text";

/// What is said of the mesh's mutual TLS.
const ISTIO_MUTUAL_DIALLED: &str = "mesh clients dial this with their workload identity (MeshClientBuilder::identity), checking the server's SPIFFE id against subjectAltNames (any identity of the mesh's roots when none is named); without an identity their requests fail rather than go out in plain text";

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
