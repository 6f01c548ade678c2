//! One gRPC health check over mTLS between two workloads whose files
//! (`cert-chain.pem`, `key.pem`, `root-cert.pem`) the CA wrote, each side
//! checking the other's SPIFFE id the way proxyless gRPC does: the chain
//! against the root, then the URI SAN (not a DNS name).

use std::path::Path;
use std::sync::{Arc, Mutex};

use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tonic::transport::{Certificate, Endpoint, Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as Status;
use tonic_health::pb::health_client::HealthClient;

/// What the call showed.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The health status the server answered.
    pub(crate) serving: bool,
    /// The client certificate the server saw (DER).
    pub(crate) client_cert: Vec<u8>,
}

/// Serves gRPC health on 127.0.0.1:0 with the server's files, asking for
/// a client certificate signed by its root, and calls it once with the
/// client's files, requiring the server to be `server_id`.
/// A failed handshake or call is `Err` with its error printed.
pub(crate) async fn health_check(
    server_dir: &Path,
    client_dir: &Path,
    server_id: &str,
) -> Result<Outcome, String> {
    let read = |dir: &Path, name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(
            read(server_dir, "cert-chain.pem"),
            read(server_dir, "key.pem"),
        ))
        .client_ca_root(Certificate::from_pem(read(server_dir, "root-cert.pem")));
    let seen = Arc::new(Mutex::new(None::<Vec<u8>>));
    let record = {
        let seen = seen.clone();
        move |req: tonic::Request<()>| {
            let certs = req
                .peer_certs()
                .expect("the client presented a certificate");
            *seen.lock().unwrap() = Some(certs[0].to_vec());
            Ok(req)
        }
    };
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(
        Server::builder()
            .tls_config(tls)
            .unwrap()
            .add_service(tonic::service::interceptor::InterceptedService::new(
                health, record,
            ))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    let channel = mtls_channel(client_dir, server_id, addr).await;
    let response = match channel {
        Ok(channel) => HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map_err(|status| format!("{status:?}")),
        Err(err) => Err(format!("{err:?}")),
    };
    server.abort();
    let response = response?.into_inner();
    let client_cert = seen.lock().unwrap().take().unwrap();
    Ok(Outcome {
        serving: response.status == Status::Serving as i32,
        client_cert,
    })
}

/// A gRPC channel to `addr` over mutual TLS, presenting the files in
/// `client_dir` and requiring the server to be `server_id`.
pub(crate) async fn mtls_channel(
    client_dir: &Path,
    server_id: &str,
    addr: std::net::SocketAddr,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let connector = tls_connector(client_dir, server_id);
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_uri| {
            let connector = connector.clone();
            async move {
                let tcp = TcpStream::connect(addr).await?;
                let name = ServerName::from(addr.ip());
                let tls = connector.connect(name, tcp).await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }))
        .await
}

/// A TLS client presenting the files in `dir` and trusting its
/// `root-cert.pem` for a server whose URI SAN is `server_id`.
fn tls_connector(dir: &Path, server_id: &str) -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(dir.join("root-cert.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let chain = CertificateDer::pem_file_iter(dir.join("cert-chain.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("key.pem")).unwrap();
    let verifier = SpiffeVerifier {
        roots: Arc::new(roots),
        expected: server_id.to_owned(),
        provider: provider.clone(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Verifies a server's chain against the roots and requires its only URI
/// SAN to be the expected SPIFFE id.
#[derive(Debug)]
struct SpiffeVerifier {
    roots: Arc<RootCertStore>,
    expected: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for SpiffeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        let uris = super::summarize(end_entity).uris;
        if uris != [self.expected.clone()] {
            return Err(rustls::Error::General(format!(
                "server identity {uris:?} is not {}",
                self.expected
            )));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
