//! A certificate authority made in a test, issuing workload certificates
//! (valid through the 2020s, for client and server use) with the SANs
//! asked for, and a TLS server presenting one.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_core::policy::UpstreamTls;
use mesh_core::{Authority, ClusterPolicy, Endpoint, EndpointSet, StaticResolve};
use mesh_tower::MeshClient;
use mesh_tower::tls::WorkloadIdentity;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType, date_time_ymd,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

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
                        subject_alt_names: vec![expect.into()],
                        ..UpstreamTls::default()
                    }),
                    ..ClusterPolicy::default()
                },
            )
            .build(),
    }
}

/// A TLS server presenting a certificate for the DNS name `host` from
/// `ca`, offering h2 and http/1.1 by ALPN, and, with `client`, requiring a
/// client certificate from its roots. It answers `hello NAME`: the
/// client's name given with `client` when the client presented one, else
/// `anonymous`.
pub async fn tls_server(ca: &Ca, host: &str, client: Option<(&Ca, &str)>) -> SocketAddr {
    let (chain, key) = ca.leaf(&[SanType::DnsName(host.try_into().unwrap())]);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client {
        Some((roots_ca, _)) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(roots_ca.0.der().clone()).unwrap();
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let client_name = client.map_or("anonymous", |(_, name)| name).to_owned();
    serve_tls(config, move |cert| match cert {
        Some(_) => client_name.clone(),
        None => "anonymous".to_owned(),
    })
    .await
}

/// Serves `config`'s TLS on loopback, answering every request with `hello`
/// and what `caller` makes of the client's certificate, if any.
pub async fn serve_tls<F>(config: rustls::ServerConfig, caller: F) -> SocketAddr
where
    F: Fn(Option<&CertificateDer<'static>>) -> String + Clone + Send + Sync + 'static,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let caller = caller.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let certificate = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
                let caller = caller(certificate);
                let svc = hyper::service::service_fn(move |_req| {
                    let body = format!("hello {caller}");
                    async move {
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(body))))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    addr
}
