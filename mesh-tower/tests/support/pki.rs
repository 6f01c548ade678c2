//! A certificate authority made in a test, issuing workload certificates
//! (valid through the 2020s, for client and server use) with the SANs
//! asked for.

use std::net::SocketAddr;
use std::time::SystemTime;

use bytes::Bytes;
use mesh_core::policy::UpstreamTls;
use mesh_core::{Authority, ClusterPolicy, Endpoint, EndpointSet, StaticResolve};
use mesh_tower::MeshClient;
use mesh_tower::tls::WorkloadIdentity;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType, date_time_ymd,
};

pub struct Ca(pub CertifiedIssuer<'static, KeyPair>);

impl Ca {
    pub fn new() -> Self {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "mesh test root");
        Self(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    /// The root, as PEM.
    pub fn pem(&self) -> String {
        self.0.pem()
    }

    /// A leaf with `sans`, and its key.
    pub fn leaf(&self, sans: &[SanType]) -> (String, KeyPair) {
        let mut params = CertificateParams::default();
        // No subject, as Istio's workload certificates: the SPIFFE id is
        // the URI SAN (and a leaf named as its issuer would look
        // self-signed to OpenSSL).
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = sans.to_vec();
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2030, 1, 1);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.0).unwrap();
        (cert.pem(), key)
    }

    /// A workload certificate for the SPIFFE id `id` and its key, as PEM.
    pub fn issue(&self, id: &str) -> (String, String) {
        let (chain, key) = self.leaf(&[uri(id)]);
        (chain, key.serialize_pem())
    }

    /// The identity of a workload that is `id`, trusting this CA.
    pub fn identity(&self, id: &str) -> WorkloadIdentity {
        let (chain, key) = self.issue(id);
        let roots = self.pem();
        WorkloadIdentity::from_pem(
            chain.as_bytes(),
            key.as_bytes(),
            roots.as_bytes(),
            SystemTime::now(),
        )
        .unwrap()
    }
}

/// A URI SAN.
pub fn uri(s: &str) -> SanType {
    SanType::URI(s.to_owned().try_into().unwrap())
}

/// A client sending `target` to `addr`; over the mesh's mutual TLS as
/// `identity`, expecting `expect`, when there is one.
pub fn client<B>(
    target: &str,
    addr: SocketAddr,
    tls: Option<(WorkloadIdentity, &str)>,
) -> MeshClient<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<mesh_tower::BoxError>,
{
    let target: Authority = target.parse().unwrap();
    let resolve = StaticResolve::default();
    resolve.set(&target, EndpointSet::new([Endpoint::new(addr)]));
    let builder = MeshClient::builder(resolve);
    match tls {
        None => builder.build(),
        Some((identity, expect)) => builder
            .identity(identity)
            .cluster_policy(
                target,
                ClusterPolicy {
                    tls: Some(UpstreamTls {
                        subject_alt_names: vec![expect.to_owned()],
                        ..UpstreamTls::default()
                    }),
                    ..ClusterPolicy::default()
                },
            )
            .build(),
    }
}
