//! The labels of Istio's standard metrics, named and valued as Istio's
//! reference gives them.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock};

use mesh_core::telemetry::WorkloadMetadata;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};

/// What a label reads when its value is not known.
pub const UNKNOWN: &str = "unknown";

static UNKNOWN_VALUE: LazyLock<Arc<str>> = LazyLock::new(|| UNKNOWN.into());

/// Which end of the request recorded it.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Reporter {
    /// The caller (`MeshClient`): `source`.
    Source,
    /// The callee (`MeshServer`): `destination`.
    Destination,
}

impl EncodeLabelValue for Reporter {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(
            &match self {
                Reporter::Source => "source",
                Reporter::Destination => "destination",
            },
            encoder,
        )
    }
}

/// A gRPC status code; empty for a request that is not gRPC.
#[derive(Clone, Copy, Debug, Default, Hash, PartialEq, Eq)]
pub struct GrpcStatus(pub Option<u16>);

impl EncodeLabelValue for GrpcStatus {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        match self.0 {
            Some(code) => EncodeLabelValue::encode(&code, encoder),
            None => EncodeLabelValue::encode(&"", encoder),
        }
    }
}

/// One end of a request: who the workload says it is, and the principal
/// its certificate proves, if any.
#[derive(Clone, Copy, Debug, Default)]
pub struct Peer<'a> {
    /// Its metadata (its own, or what the peer sent).
    pub metadata: Option<&'a WorkloadMetadata>,
    /// Its SPIFFE id, from the connection's certificate.
    pub principal: Option<&'a Arc<str>>,
}

/// The namespace of an end, as Istio's stats filter reads it: the one its
/// certificate proves (`spiffe://DOMAIN/ns/NS/sa/…`) before the one its
/// metadata claims.
fn namespace<'a>(principal: Option<&'a str>, claimed: &'a str) -> &'a str {
    principal
        .and_then(|p| p.split("/ns/").nth(1))
        .and_then(|rest| rest.split('/').next())
        .filter(|ns| !ns.is_empty())
        .unwrap_or(claimed)
}

impl<'a> Peer<'a> {
    /// The label values of this end, in label order.
    fn end_ref(&self) -> EndRef<'a> {
        let m = self.metadata;
        let field = |f: fn(&'a WorkloadMetadata) -> Option<&'a Arc<str>>| {
            m.and_then(f).map_or(UNKNOWN, |v| &**v)
        };
        EndRef {
            workload: field(|m| m.workload_name.as_ref()),
            canonical_service: field(|m| m.canonical_service.as_ref()),
            canonical_revision: m
                .and_then(|m| m.canonical_revision.as_deref())
                .unwrap_or("latest"),
            workload_namespace: namespace(
                self.principal.map(|p| &**p),
                field(|m| m.namespace.as_ref()),
            ),
            principal: self.principal.map_or(UNKNOWN, |p| &**p),
            app: field(|m| m.app.as_ref()),
            version: field(|m| m.version.as_ref()),
            cluster: field(|m| m.cluster_id.as_ref()),
        }
    }
}

/// The label values of one end.
struct EndRef<'a> {
    workload: &'a str,
    canonical_service: &'a str,
    canonical_revision: &'a str,
    workload_namespace: &'a str,
    principal: &'a str,
    app: &'a str,
    version: &'a str,
    cluster: &'a str,
}

/// The labels of one request's metrics.
#[derive(Clone, Debug, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Which end recorded it.
    pub reporter: Reporter,
    /// The caller's workload.
    pub source_workload: Arc<str>,
    /// The caller's canonical service.
    pub source_canonical_service: Arc<str>,
    /// The caller's canonical revision.
    pub source_canonical_revision: Arc<str>,
    /// The caller's namespace.
    pub source_workload_namespace: Arc<str>,
    /// The caller's SPIFFE id.
    pub source_principal: Arc<str>,
    /// The caller's `app` label.
    pub source_app: Arc<str>,
    /// The caller's `version` label.
    pub source_version: Arc<str>,
    /// The caller's cluster.
    pub source_cluster: Arc<str>,
    /// The callee's workload.
    pub destination_workload: Arc<str>,
    /// The callee's namespace.
    pub destination_workload_namespace: Arc<str>,
    /// The callee's SPIFFE id.
    pub destination_principal: Arc<str>,
    /// The callee's `app` label.
    pub destination_app: Arc<str>,
    /// The callee's `version` label.
    pub destination_version: Arc<str>,
    /// The service called, by its host name
    /// (`reviews.default.svc.cluster.local`).
    pub destination_service: Arc<str>,
    /// Its short name (`reviews`).
    pub destination_service_name: Arc<str>,
    /// Its namespace.
    pub destination_service_namespace: Arc<str>,
    /// The callee's canonical service.
    pub destination_canonical_service: Arc<str>,
    /// The callee's canonical revision.
    pub destination_canonical_revision: Arc<str>,
    /// The callee's cluster.
    pub destination_cluster: Arc<str>,
    /// `http` or `grpc`.
    pub request_protocol: &'static str,
    /// The response's status code (0 when there was no response).
    pub response_code: u16,
    /// The gRPC status, for gRPC.
    pub grpc_response_status: GrpcStatus,
    /// Envoy's response flags (`UF`, `URX`, `NR`, …), `-` for none.
    pub response_flags: &'static str,
    /// `mutual_tls` or `none` where the server records it; `unknown` at
    /// the caller, as Istio's proxies record it.
    pub connection_security_policy: &'static str,
}

impl RequestLabels {
    /// The labels of a request from `source` to `destination` reported by
    /// `reporter`: the service `unknown`, `http`, code 200, no flags, the
    /// security policy unknown, until set.
    pub fn edge(reporter: Reporter, source: Peer<'_>, destination: Peer<'_>) -> Self {
        LabelsRef::edge(reporter, source, destination).to_owned_labels()
    }

    /// Sets the destination service from its host name (see
    /// [`ServiceLabels::of`]).
    pub fn service(self, host: &str) -> Self {
        self.with_service(&ServiceLabels::of(host))
    }

    /// Sets the destination service's labels.
    pub fn with_service(mut self, service: &ServiceLabels) -> Self {
        self.destination_service = service.0.host.clone();
        self.destination_service_name = service.0.name.clone();
        self.destination_service_namespace = service.0.namespace.clone();
        self
    }
}

/// The label set of a request, borrowed from what it came from (the
/// workloads' metadata, the principals, the service): what a request is
/// recorded by, hashed and compared as the [`RequestLabels`] it stands
/// for, so that finding its series takes no reference count and no
/// allocation.
pub(super) struct LabelsRef<'a> {
    pub(super) reporter: Reporter,
    pub(super) source_workload: &'a str,
    pub(super) source_canonical_service: &'a str,
    pub(super) source_canonical_revision: &'a str,
    pub(super) source_workload_namespace: &'a str,
    pub(super) source_principal: &'a str,
    pub(super) source_app: &'a str,
    pub(super) source_version: &'a str,
    pub(super) source_cluster: &'a str,
    pub(super) destination_workload: &'a str,
    pub(super) destination_workload_namespace: &'a str,
    pub(super) destination_principal: &'a str,
    pub(super) destination_app: &'a str,
    pub(super) destination_version: &'a str,
    pub(super) destination_service: &'a str,
    pub(super) destination_service_name: &'a str,
    pub(super) destination_service_namespace: &'a str,
    pub(super) destination_canonical_service: &'a str,
    pub(super) destination_canonical_revision: &'a str,
    pub(super) destination_cluster: &'a str,
    pub(super) request_protocol: &'static str,
    pub(super) response_code: u16,
    pub(super) grpc_response_status: GrpcStatus,
    pub(super) response_flags: &'static str,
    pub(super) connection_security_policy: &'static str,
}

/// Runs `$m!` over the string labels.
macro_rules! string_labels {
    ($m:ident) => {
        $m!(
            source_workload,
            source_canonical_service,
            source_canonical_revision,
            source_workload_namespace,
            source_principal,
            source_app,
            source_version,
            source_cluster,
            destination_workload,
            destination_workload_namespace,
            destination_principal,
            destination_app,
            destination_version,
            destination_service,
            destination_service_name,
            destination_service_namespace,
            destination_canonical_service,
            destination_canonical_revision,
            destination_cluster
        )
    };
}

impl<'a> LabelsRef<'a> {
    /// The labels of a request from `source` to `destination` reported by
    /// `reporter`, as [`RequestLabels::edge`] makes them.
    pub(super) fn edge(reporter: Reporter, source: Peer<'a>, destination: Peer<'a>) -> Self {
        let (s, d) = (source.end_ref(), destination.end_ref());
        Self {
            reporter,
            source_workload: s.workload,
            source_canonical_service: s.canonical_service,
            source_canonical_revision: s.canonical_revision,
            source_workload_namespace: s.workload_namespace,
            source_principal: s.principal,
            source_app: s.app,
            source_version: s.version,
            source_cluster: s.cluster,
            destination_workload: d.workload,
            destination_workload_namespace: d.workload_namespace,
            destination_principal: d.principal,
            destination_app: d.app,
            destination_version: d.version,
            destination_service: UNKNOWN,
            destination_service_name: UNKNOWN,
            destination_service_namespace: UNKNOWN,
            destination_canonical_service: d.canonical_service,
            destination_canonical_revision: d.canonical_revision,
            destination_cluster: d.cluster,
            request_protocol: "http",
            response_code: 200,
            grpc_response_status: GrpcStatus(None),
            response_flags: "-",
            connection_security_policy: UNKNOWN,
        }
    }

    /// Sets the destination service's labels.
    pub(super) fn with_service(mut self, service: &'a ServiceLabels) -> Self {
        self.destination_service = &service.0.host;
        self.destination_service_name = &service.0.name;
        self.destination_service_namespace = &service.0.namespace;
        self
    }

    /// The owned label set.
    pub(super) fn to_owned_labels(&self) -> RequestLabels {
        macro_rules! owned {
            ($($f:ident),*) => {
                RequestLabels {
                    reporter: self.reporter,
                    $($f: Arc::from(self.$f),)*
                    request_protocol: self.request_protocol,
                    response_code: self.response_code,
                    grpc_response_status: self.grpc_response_status,
                    response_flags: self.response_flags,
                    connection_security_policy: self.connection_security_policy,
                }
            };
        }
        string_labels!(owned)
    }
}

/// Hashes the labels that tell edges apart (the ends' workloads and
/// namespaces, the service) and the response's; the rest (principals,
/// apps, versions, canonical names, clusters) follow from those in any
/// real mesh, and equality still compares them. Half the bytes of the
/// whole set, hashed on every request.
impl Hash for LabelsRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.reporter.hash(state);
        self.source_workload.hash(state);
        self.source_workload_namespace.hash(state);
        self.destination_workload.hash(state);
        self.destination_workload_namespace.hash(state);
        self.destination_service.hash(state);
        state.write_u16(self.response_code);
        self.grpc_response_status.hash(state);
        self.response_flags.hash(state);
        self.request_protocol.hash(state);
        self.connection_security_policy.hash(state);
    }
}

/// As its borrowed form, so that either finds the same series.
impl Hash for RequestLabels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.borrowed().hash(state);
    }
}

impl hashbrown::Equivalent<RequestLabels> for LabelsRef<'_> {
    fn equivalent(&self, key: &RequestLabels) -> bool {
        macro_rules! same {
            ($($f:ident),*) => {
                self.reporter == key.reporter
                    $(&& self.$f == &*key.$f)*
                    && self.request_protocol == key.request_protocol
                    && self.response_code == key.response_code
                    && self.grpc_response_status == key.grpc_response_status
                    && self.response_flags == key.response_flags
                    && self.connection_security_policy == key.connection_security_policy
            };
        }
        string_labels!(same)
    }
}

impl RequestLabels {
    /// The same labels, borrowed.
    pub(super) fn borrowed(&self) -> LabelsRef<'_> {
        macro_rules! borrowed {
            ($($f:ident),*) => {
                LabelsRef {
                    reporter: self.reporter,
                    $($f: &self.$f,)*
                    request_protocol: self.request_protocol,
                    response_code: self.response_code,
                    grpc_response_status: self.grpc_response_status,
                    response_flags: self.response_flags,
                    connection_security_policy: self.connection_security_policy,
                }
            };
        }
        string_labels!(borrowed)
    }
}

/// A service's labels, made once and shared by the requests to it (a
/// clone is one reference count).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceLabels(Arc<ServiceNames>);

#[derive(Debug, PartialEq, Eq)]
struct ServiceNames {
    host: Arc<str>,
    name: Arc<str>,
    namespace: Arc<str>,
}

impl ServiceLabels {
    /// The service's host name.
    pub fn host(&self) -> &str {
        &self.0.host
    }

    /// The service's host name, shared.
    pub(crate) fn shared_host(&self) -> &Arc<str> {
        &self.0.host
    }

    /// The labels of the service whose host name is `host`
    /// (`NAME.NAMESPACE.svc.DOMAIN`; any other host names the service by
    /// its first label, the namespace unknown).
    pub fn of(host: &str) -> Self {
        let mut parts = host.split('.');
        let name = parts.next().filter(|n| !n.is_empty());
        let namespace = match (parts.next(), parts.next()) {
            (Some(ns), Some("svc")) => Some(ns),
            _ => None,
        };
        Self(Arc::new(ServiceNames {
            host: host.into(),
            name: name.map_or_else(|| UNKNOWN_VALUE.clone(), Arc::from),
            namespace: namespace.map_or_else(|| UNKNOWN_VALUE.clone(), Arc::from),
        }))
    }
}
