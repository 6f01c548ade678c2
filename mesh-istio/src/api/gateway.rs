//! `Gateway`: the ports, protocols and hosts a gateway proxy at the edge
//! of the mesh serves, and the gateway proxies that serve them (Istio's
//! `networking.istio.io/v1` `Gateway`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ObjectMeta, string_map};

/// A `Gateway` resource.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    /// `networking.istio.io/v1`, `v1beta1` or `v1alpha3`.
    pub api_version: String,
    /// `Gateway`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// The servers and the proxies that implement them.
    pub spec: GatewaySpec,
}

impl Gateway {
    /// `namespace/name`, as a VirtualService's `gateways` names it once
    /// its short names are completed.
    ///
    /// ```
    /// let mut gw = mesh_istio::Gateway::default();
    /// gw.metadata.name = "bookinfo-gateway".into();
    /// assert_eq!(gw.qualified_name(), "default/bookinfo-gateway");
    /// ```
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.metadata.namespace(), self.metadata.name)
    }

    /// Whether a gateway proxy with `labels` implements it: it carries
    /// every label of the `selector`. A Gateway without a selector is
    /// implemented by every gateway proxy, as in istiod.
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.spec
            .selector
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// The servers of a Gateway and the proxies that implement it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    /// Labels of the gateway proxies (pods or VMs) that implement it, in
    /// any namespace.
    #[serde(default, deserialize_with = "string_map")]
    pub selector: BTreeMap<String, String>,
    /// What the proxies serve, one entry per port and set of hosts.
    #[serde(default)]
    pub servers: Vec<Server>,
}

/// A port of the gateway proxy and the hosts it serves there (Istio's
/// `Server`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Server {
    /// The port the proxy listens on; required.
    pub port: Option<Port>,
    /// The address or Unix socket the listener binds to; all addresses
    /// when empty.
    #[serde(default)]
    pub bind: String,
    /// The hosts served, `[namespace/]dnsName`: `dnsName` may be `*` or
    /// `*.suffix`; `namespace` (`*` any, `.` the Gateway's own) restricts
    /// the VirtualServices whose hosts it takes. Without one, any
    /// namespace's.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// TLS on the port, and redirection of plain HTTP to HTTPS.
    pub tls: Option<ServerTLSSettings>,
    /// Where traffic goes by default (not implemented by Istio).
    #[serde(default)]
    pub default_endpoint: String,
    /// A name for statistics, unique among the servers.
    #[serde(default)]
    pub name: String,
}

/// A port of a gateway proxy (Istio's `Port`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Port {
    /// The port number; required (0 when absent).
    #[serde(default)]
    pub number: u32,
    /// `HTTP`, `HTTPS`, `HTTP2`, `GRPC`, `TCP`, `TLS`, ... (any case).
    #[serde(default)]
    pub protocol: String,
    /// The port's name.
    #[serde(default)]
    pub name: String,
    /// The port the proxy's workload listens on (deprecated); 0 for
    /// `number`.
    #[serde(default)]
    pub target_port: u32,
}

/// TLS on a gateway port (Istio's `ServerTLSSettings`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerTLSSettings {
    /// Answer every plain-HTTP request with a redirect to HTTPS.
    #[serde(default)]
    pub https_redirect: bool,
    /// How connections are secured; `PASSTHROUGH` when absent.
    pub mode: Option<ServerTLSMode>,
    /// The file of the server certificate.
    #[serde(default)]
    pub server_certificate: String,
    /// The file of the server's private key.
    #[serde(default)]
    pub private_key: String,
    /// The file of the CA certificates client certificates are verified
    /// with.
    #[serde(default)]
    pub ca_certificates: String,
    /// The file of the certificate revocation list.
    #[serde(default)]
    pub ca_crl: String,
    /// The secret holding the certificate, key and CA certificates.
    #[serde(default)]
    pub credential_name: String,
    /// Secrets holding one certificate each (such as an RSA and an ECDSA
    /// one), in place of `credentialName`.
    #[serde(default)]
    pub credential_names: Vec<String>,
    /// Certificates by file, one per key type, in place of
    /// `serverCertificate` and `privateKey`.
    #[serde(default)]
    pub tls_certificates: Vec<TLSCertificate>,
    /// Names the client certificate must carry.
    #[serde(default)]
    pub subject_alt_names: Vec<String>,
    /// Base64 SHA-256 hashes of the SPKIs of the client certificates
    /// accepted.
    #[serde(default)]
    pub verify_certificate_spki: Vec<String>,
    /// Hex SHA-256 hashes of the client certificates accepted.
    #[serde(default)]
    pub verify_certificate_hash: Vec<String>,
    /// The lowest TLS version accepted.
    pub min_protocol_version: Option<TLSProtocol>,
    /// The highest TLS version accepted.
    pub max_protocol_version: Option<TLSProtocol>,
    /// The cipher suites accepted; Envoy's default when empty.
    #[serde(default)]
    pub cipher_suites: Vec<String>,
}

/// How a gateway port secures connections (Istio's
/// `ServerTLSSettings.TLSmode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerTLSMode {
    /// TLS is not terminated: connections are routed by SNI (TLS routes).
    Passthrough,
    /// TLS terminated with the server's certificate.
    Simple,
    /// Mutual TLS: clients must present a certificate.
    Mutual,
    /// Passed through and routed by the cluster the SNI names, for
    /// traffic between networks.
    AutoPassthrough,
    /// Mutual TLS with the mesh's certificates.
    IstioMutual,
    /// Mutual TLS when the client presents a certificate, else TLS.
    OptionalMutual,
}

/// A TLS version (Istio's `ServerTLSSettings.TLSProtocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum TLSProtocol {
    /// Envoy's choice.
    #[serde(rename = "TLS_AUTO")]
    Auto,
    /// TLS 1.0.
    #[serde(rename = "TLSV1_0")]
    V1_0,
    /// TLS 1.1.
    #[serde(rename = "TLSV1_1")]
    V1_1,
    /// TLS 1.2.
    #[serde(rename = "TLSV1_2")]
    V1_2,
    /// TLS 1.3.
    #[serde(rename = "TLSV1_3")]
    V1_3,
}

/// A certificate and key by file (Istio's `ServerTLSSettings.TLSCertificate`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TLSCertificate {
    /// The file of the server certificate.
    #[serde(default)]
    pub server_certificate: String,
    /// The file of the private key.
    #[serde(default)]
    pub private_key: String,
    /// The file of the CA certificates.
    #[serde(default)]
    pub ca_certificates: String,
}
