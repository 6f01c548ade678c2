//! `TrafficPolicy`: how a DestinationRule's host (or one of its subsets or
//! ports) is balanced, pooled, ejected and secured, as Istio's
//! `networking.istio.io/v1` API names it.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Percent, PortSelector};
use crate::Duration;

/// Policies of a host, a subset or a port (Istio's `TrafficPolicy`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficPolicy {
    /// Load balancing.
    pub load_balancer: Option<LoadBalancerSettings>,
    /// Connection pool limits and timeouts.
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// Ejection of failing endpoints.
    pub outlier_detection: Option<OutlierDetection>,
    /// TLS towards the endpoints.
    pub tls: Option<ClientTLSSettings>,
    /// Policies for single ports, replacing the ones above there.
    #[serde(default)]
    pub port_level_settings: Vec<PortTrafficPolicy>,
    /// Tunnelling through a proxy.
    pub tunnel: Option<TunnelSettings>,
    /// PROXY protocol towards the endpoints.
    pub proxy_protocol: Option<ProxyProtocol>,
    /// How many retries may be in flight.
    pub retry_budget: Option<TrafficPolicyRetryBudget>,
}

/// Policies of one port (Istio's `TrafficPolicy.PortTrafficPolicy`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortTrafficPolicy {
    /// The port.
    pub port: Option<PortSelector>,
    /// Load balancing.
    pub load_balancer: Option<LoadBalancerSettings>,
    /// Connection pool limits and timeouts.
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// Ejection of failing endpoints.
    pub outlier_detection: Option<OutlierDetection>,
    /// TLS towards the endpoints.
    pub tls: Option<ClientTLSSettings>,
}

/// A retry budget (Istio's `TrafficPolicy.RetryBudget`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficPolicyRetryBudget {
    /// Retries as a share of active requests; 20 % when absent.
    pub percent: Option<Percent>,
    /// Retries always allowed at once.
    #[serde(default)]
    pub min_retry_concurrency: u32,
}

/// Load-balancing settings: `simple` or `consistentHash`, and locality
/// settings (Istio's `LoadBalancerSettings`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerSettings {
    /// A simple algorithm.
    pub simple: Option<SimpleLB>,
    /// Consistent hashing.
    pub consistent_hash: Option<ConsistentHashLB>,
    /// Locality-weighted balancing and failover.
    pub locality_lb_setting: Option<LocalityLoadBalancerSetting>,
    /// Slow start for new endpoints (deprecated form).
    pub warmup_duration_secs: Option<Duration>,
    /// Slow start for new endpoints.
    pub warmup: Option<WarmupConfiguration>,
}

/// The simple load-balancing algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SimpleLB {
    /// The default.
    Unspecified,
    /// Least requests (Istio's old name for it).
    LeastConn,
    /// Random.
    Random,
    /// Send to the address the caller resolved.
    Passthrough,
    /// Round robin.
    RoundRobin,
    /// Least requests (power of two choices).
    LeastRequest,
}

/// Consistent-hash load balancing (Istio's `ConsistentHashLB`): one hash
/// key and at most one of `ringHash` and `maglev`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsistentHashLB {
    /// Hash a request header.
    pub http_header_name: Option<String>,
    /// Hash a cookie.
    pub http_cookie: Option<HTTPCookie>,
    /// Hash the client's IP address.
    pub use_source_ip: Option<bool>,
    /// Hash a query parameter.
    pub http_query_parameter_name: Option<String>,
    /// Use a ring hash.
    pub ring_hash: Option<RingHash>,
    /// Use Maglev.
    pub maglev: Option<MagLev>,
    /// The ring's minimum size (deprecated form of `ringHash`).
    pub minimum_ring_size: Option<u64>,
}

/// A cookie hashed for consistent hashing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HTTPCookie {
    /// The cookie's name.
    pub name: String,
    /// The path of a generated cookie.
    #[serde(default)]
    pub path: String,
    /// The lifetime of a generated cookie; a cookie is generated when
    /// missing only if it is set.
    pub ttl: Option<Duration>,
}

/// Ring-hash settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RingHash {
    /// The ring's minimum size; 1024 when 0.
    #[serde(default)]
    pub minimum_ring_size: u64,
}

/// Maglev settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MagLev {
    /// The lookup table's size, a prime; 65537 when 0.
    #[serde(default)]
    pub table_size: u64,
}

/// Locality-weighted balancing and failover.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalityLoadBalancerSetting {
    /// Weights by locality.
    #[serde(default)]
    pub distribute: Vec<LocalityDistribute>,
    /// Failover between regions.
    #[serde(default)]
    pub failover: Vec<LocalityFailover>,
    /// Labels that order failover.
    #[serde(default)]
    pub failover_priority: Vec<String>,
    /// Whether locality balancing is on.
    pub enabled: Option<bool>,
}

/// Where traffic from one locality goes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalityDistribute {
    /// The originating locality.
    #[serde(default)]
    pub from: String,
    /// Destination localities and their weights.
    #[serde(default)]
    pub to: BTreeMap<String, u32>,
}

/// Which region takes over from another.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalityFailover {
    /// The failing region.
    #[serde(default)]
    pub from: String,
    /// The region that takes over.
    #[serde(default)]
    pub to: String,
}

/// Slow start for new endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WarmupConfiguration {
    /// How long.
    pub duration: Option<Duration>,
    /// The share of traffic at the start.
    pub minimum_percent: Option<f64>,
    /// How fast the share grows.
    pub aggression: Option<f64>,
}

/// Connection pool settings (Istio's `ConnectionPoolSettings`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionPoolSettings {
    /// Connection-level settings.
    pub tcp: Option<TCPSettings>,
    /// Request-level settings.
    pub http: Option<HTTPSettings>,
}

/// TCP settings of a connection pool.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TCPSettings {
    /// Connections to an endpoint at most.
    #[serde(default)]
    pub max_connections: u32,
    /// Time allowed to connect.
    pub connect_timeout: Option<Duration>,
    /// TCP keepalive.
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// Longest life of a connection.
    pub max_connection_duration: Option<Duration>,
    /// Idle time after which a TCP connection is closed.
    pub idle_timeout: Option<Duration>,
}

/// TCP keepalive settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpKeepalive {
    /// Probes before the connection is declared dead.
    #[serde(default)]
    pub probes: u32,
    /// Idle time before probes start.
    pub time: Option<Duration>,
    /// Time between probes.
    pub interval: Option<Duration>,
}

/// HTTP settings of a connection pool.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HTTPSettings {
    /// Requests waiting for a connection, at most.
    #[serde(default)]
    pub http1_max_pending_requests: u32,
    /// Requests in flight, at most.
    #[serde(default)]
    pub http2_max_requests: u32,
    /// Requests per connection, at most.
    #[serde(default)]
    pub max_requests_per_connection: u32,
    /// Retries in flight, at most.
    #[serde(default)]
    pub max_retries: u32,
    /// Idle time after which a pooled connection is closed.
    pub idle_timeout: Option<Duration>,
    /// Whether HTTP/1.1 is upgraded to HTTP/2.
    pub h2_upgrade_policy: Option<H2UpgradePolicy>,
    /// Speak the client's HTTP version to the endpoints.
    #[serde(default)]
    pub use_client_protocol: bool,
    /// Streams per HTTP/2 connection, at most.
    #[serde(default)]
    pub max_concurrent_streams: u32,
}

/// Whether HTTP/1.1 connections are upgraded to HTTP/2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum H2UpgradePolicy {
    /// The mesh's default.
    Default,
    /// Keep HTTP/1.1.
    DoNotUpgrade,
    /// Speak HTTP/2.
    Upgrade,
}

/// Outlier detection (Istio's `OutlierDetection`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutlierDetection {
    /// Count local-origin failures apart from responses.
    #[serde(default)]
    pub split_external_local_origin_errors: bool,
    /// Consecutive local-origin failures that eject.
    pub consecutive_local_origin_failures: Option<u32>,
    /// Consecutive 502/503/504 that eject; 0 disables.
    pub consecutive_gateway_errors: Option<u32>,
    /// Consecutive 5xx that eject; 0 disables.
    pub consecutive_5xx_errors: Option<u32>,
    /// Time between ejection sweeps.
    pub interval: Option<Duration>,
    /// Base ejection time.
    pub base_ejection_time: Option<Duration>,
    /// Most endpoints ejected, in percent.
    #[serde(default)]
    pub max_ejection_percent: u32,
    /// Outlier detection stops below this share of healthy endpoints.
    #[serde(default)]
    pub min_health_percent: u32,
    /// Consecutive errors that eject (deprecated, ignored by Istio).
    #[serde(default)]
    pub consecutive_errors: u32,
}

/// TLS towards the endpoints (Istio's `ClientTLSSettings`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientTLSSettings {
    /// The TLS mode.
    pub mode: Option<TLSMode>,
    /// Client certificate file.
    #[serde(default)]
    pub client_certificate: String,
    /// Private key file.
    #[serde(default)]
    pub private_key: String,
    /// CA certificates file.
    #[serde(default)]
    pub ca_certificates: String,
    /// Kubernetes secret holding the credentials.
    #[serde(default)]
    pub credential_name: String,
    /// Names accepted in the server certificate.
    #[serde(default)]
    pub subject_alt_names: Vec<String>,
    /// SNI sent.
    #[serde(default)]
    pub sni: String,
    /// Skip verifying the server certificate.
    pub insecure_skip_verify: Option<bool>,
    /// Certificate revocation list file.
    #[serde(default)]
    pub ca_crl: String,
}

/// The TLS mode towards the endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TLSMode {
    /// Plain text.
    Disable,
    /// TLS.
    Simple,
    /// Mutual TLS with given certificates.
    Mutual,
    /// Mutual TLS with the mesh's certificates.
    IstioMutual,
}

/// Tunnelling through a proxy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TunnelSettings {
    /// `CONNECT` or `POST`.
    #[serde(default)]
    pub protocol: String,
    /// The host tunnelled to.
    #[serde(default)]
    pub target_host: String,
    /// The port tunnelled to.
    #[serde(default)]
    pub target_port: u32,
}

/// PROXY protocol towards the endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyProtocol {
    /// `V1` or `V2`.
    #[serde(default)]
    pub version: String,
}
