use std::sync::Arc;

use mesh_core::gateway::GatewayServer;
use mesh_core::policy::{Pem, ServerTls, TlsVersion};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::*;

/// A root, and leaves it signs.
struct Ca(rcgen::CertifiedIssuer<'static, rcgen::KeyPair>);

/// A certificate and its key, as PEM.
struct Leaf {
    cert: String,
    key: String,
}

impl Ca {
    fn new() -> Self {
        let mut root = rcgen::CertificateParams::default();
        root.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        Self(rcgen::CertifiedIssuer::self_signed(root, key).unwrap())
    }

    fn pem(&self) -> Pem {
        Pem::Inline(self.0.pem())
    }

    /// A leaf for the DNS names `names`.
    fn leaf(&self, names: &[&str]) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let params = rcgen::CertificateParams::new(names).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.0).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// A server `routes` for `names`, presenting `leaf`.
fn server(routes: &str, names: &[&str], leaf: &Leaf) -> GatewayServer {
    GatewayServer {
        routes: routes.into(),
        server_names: names.iter().map(|n| (*n).to_owned()).collect(),
        tls: Some(ServerTls {
            certificate_chain: Pem::Inline(leaf.cert.clone()),
            private_key: Pem::Inline(leaf.key.clone()),
            ..ServerTls::default()
        }),
    }
}

/// A handshake of a client asking for `sni`, trusting `ca` and presenting
/// `client`: the server's route table, or why it refused.
async fn handshake(
    termination: &TlsTermination,
    ca: &Ca,
    sni: &str,
    client: Option<&Leaf>,
) -> Result<String, AcceptError> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.0.pem().as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(crate::tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(leaf.cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let (near, far) = tokio::io::duplex(64 * 1024);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    // An IP address sends no server name.
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    let client = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = connector.connect(name, near).await?;
        // Under TLS 1.3 a refused client certificate shows on reading.
        stream.write_all(b"x").await?;
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await?;
        Ok::<_, std::io::Error>(())
    });
    let accepted = termination.accept(far).await;
    match accepted {
        Ok((mut stream, routes)) => {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await.unwrap();
            stream.write_all(b"y").await.unwrap();
            client.await.unwrap().unwrap();
            Ok(routes.0.to_string())
        }
        Err(e) => Err(e),
    }
}

#[tokio::test]
async fn a_server_is_chosen_by_exact_name_then_wildcard_then_any() {
    let ca = Ca::new();
    let exact = ca.leaf(&["bookinfo.example.com"]);
    let wild = ca.leaf(&["*.example.com", "a.b.example.com"]);
    let any = ca.leaf(&["other.test", "127.0.0.1"]);
    let termination = TlsTermination::new(&[
        server("https.443.wild", &["*.example.com"], &wild),
        server("https.443.exact", &["bookinfo.example.com"], &exact),
        server("https.443.any", &[], &any),
    ])
    .unwrap();
    for (sni, routes) in [
        ("bookinfo.example.com", "https.443.exact"),
        ("BookInfo.Example.com", "https.443.exact"),
        ("a.b.example.com", "https.443.wild"),
        ("other.test", "https.443.any"),
        ("127.0.0.1", "https.443.any"),
    ] {
        let chosen = handshake(&termination, &ca, sni, None).await;
        assert_eq!(chosen.unwrap(), routes, "{sni}");
    }
}

#[tokio::test]
async fn a_name_no_server_takes_is_refused() {
    let ca = Ca::new();
    let leaf = ca.leaf(&["bookinfo.example.com"]);
    let termination =
        TlsTermination::new(&[server("https.443.b", &["bookinfo.example.com"], &leaf)]).unwrap();
    let refused = handshake(&termination, &ca, "other.example.com", None).await;
    let e = refused.unwrap_err();
    assert!(
        matches!(&e, AcceptError::NoServer(Some(n)) if n == "other.example.com"),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "no server of this port is for the server name other.example.com"
    );
}

/// A `MUTUAL` server for `secure.example.com`, its clients' roots `clients`.
fn mutual(leaf: &Leaf, clients: &Ca, tweak: impl FnOnce(&mut ServerTls)) -> TlsTermination {
    let mut server = server("https.443.secure", &["secure.example.com"], leaf);
    let tls = server.tls.as_mut().unwrap();
    tls.client_ca = Some(clients.pem());
    tweak(tls);
    TlsTermination::new(&[server]).unwrap()
}

#[tokio::test]
async fn mutual_takes_a_client_its_roots_sign_and_no_other() {
    let (ca, clients) = (Ca::new(), Ca::new());
    let leaf = ca.leaf(&["secure.example.com"]);
    let client = clients.leaf(&["client.example.com"]);
    let termination = mutual(&leaf, &clients, |_| {});
    let sni = "secure.example.com";
    assert_eq!(
        handshake(&termination, &ca, sni, Some(&client))
            .await
            .unwrap(),
        "https.443.secure"
    );
    let none = handshake(&termination, &ca, sni, None).await.unwrap_err();
    assert!(matches!(none, AcceptError::Handshake(_)), "{none}");
    let stranger = Ca::new().leaf(&["client.example.com"]);
    let other = handshake(&termination, &ca, sni, Some(&stranger)).await;
    assert!(matches!(other, Err(AcceptError::Handshake(_))), "{other:?}");
}

#[tokio::test]
async fn mutual_checks_names_and_hashes_when_listed() {
    let (ca, clients) = (Ca::new(), Ca::new());
    let leaf = ca.leaf(&["secure.example.com"]);
    let client = clients.leaf(&["client.example.com"]);
    let der = CertificateDer::from_pem_slice(client.cert.as_bytes()).unwrap();
    let sni = "secure.example.com";

    let named = mutual(&leaf, &clients, |t| {
        t.subject_alt_names = vec!["client.example.com".into()];
    });
    assert!(handshake(&named, &ca, sni, Some(&client)).await.is_ok());
    let misnamed = mutual(&leaf, &clients, |t| {
        t.subject_alt_names = vec!["admin.example.com".into()];
    });
    let e = handshake(&misnamed, &ca, sni, Some(&client))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains(r#"its names ["client.example.com"] are none of the subjectAltNames ["admin.example.com"]"#),
        "{e}"
    );

    let digest = sha256(&der);
    let colons: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    let hashed = mutual(&leaf, &clients, |t| {
        t.verify_certificate_hash = vec!["00".repeat(32), colons.join(":")];
    });
    assert!(handshake(&hashed, &ca, sni, Some(&client)).await.is_ok());
    let unhashed = mutual(&leaf, &clients, |t| {
        t.verify_certificate_hash = vec!["00".repeat(32)];
    });
    let e = handshake(&unhashed, &ca, sni, Some(&client))
        .await
        .unwrap_err();
    assert!(matches!(e, AcceptError::ClientCertificate(_)), "{e}");

    let (_, parsed) = X509Certificate::from_der(&der).unwrap();
    let spki = base64::engine::general_purpose::STANDARD
        .encode(sha256(parsed.tbs_certificate.subject_pki.raw));
    let pinned = mutual(&leaf, &clients, |t| t.verify_certificate_spki = vec![spki]);
    assert!(handshake(&pinned, &ca, sni, Some(&client)).await.is_ok());
    let other = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
    let mispinned = mutual(&leaf, &clients, |t| t.verify_certificate_spki = vec![other]);
    let e = handshake(&mispinned, &ca, sni, Some(&client))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("verifyCertificateSpki"), "{e}");
}

fn refused(tweak: impl FnOnce(&mut ServerTls)) -> String {
    let leaf = Ca::new().leaf(&["a.example.com"]);
    let mut server = server("https.443.a.gw.default", &["a.example.com"], &leaf);
    tweak(server.tls.as_mut().unwrap());
    TlsTermination::new(&[server]).unwrap_err().to_string()
}

#[test]
fn what_cannot_be_set_up_is_named() {
    let missing = refused(|t| t.private_key = Pem::File("/nonexistent/key.pem".into()));
    assert!(
        missing.starts_with(
            "the TLS of Gateway server https.443.a.gw.default: privateKey: /nonexistent/key.pem:"
        ),
        "{missing}"
    );
    let garbage = refused(|t| {
        t.credential = Some("bookinfo-credential".into());
        t.certificate_chain = Pem::Inline("not pem".into());
    });
    assert_eq!(
        garbage,
        "the TLS of Gateway server https.443.a.gw.default (Secret bookinfo-credential): serverCertificate: inline PEM: no certificate"
    );
    let old = refused(|t| t.max_version = Some(TlsVersion::V1_1));
    assert!(
        old.ends_with(
            "maxProtocolVersion is below TLS 1.2, and this gateway speaks TLS 1.2 and 1.3 only"
        ),
        "{old}"
    );
    let suites = refused(|t| t.cipher_suites = vec!["AES128-SHA".into()]);
    assert!(
        suites.contains(r#"none of the cipherSuites ["AES128-SHA"]"#),
        "{suites}"
    );
    let unrooted = refused(|t| t.subject_alt_names = vec!["client.example.com".into()]);
    assert!(
        unrooted.ends_with("no caCertificates ask clients for one"),
        "{unrooted}"
    );
    let hash = refused(|t| {
        t.client_ca = Some(Pem::Inline(String::new()));
        t.verify_certificate_hash = vec!["abc".into()];
    });
    assert!(
        hash.ends_with(r#"verifyCertificateHash "abc" is not a SHA-256 hash"#),
        "{hash}"
    );
    let plain = TlsTermination::new(&[GatewayServer {
        routes: "http.80".into(),
        server_names: Vec::new(),
        tls: None,
    }])
    .unwrap_err();
    assert_eq!(
        plain.to_string(),
        "the TLS of Gateway server http.80: it serves plain text"
    );
}

#[test]
fn versions_and_suites_narrow_what_rustls_speaks() {
    let tls12 = [&rustls::version::TLS12];
    assert_eq!(
        versions(None, Some(TlsVersion::V1_2)).unwrap().len(),
        tls12.len()
    );
    assert_eq!(
        versions(Some(TlsVersion::V1_3), None).unwrap()[0].version,
        rustls::ProtocolVersion::TLSv1_3
    );
    assert_eq!(versions(Some(TlsVersion::V1_0), None).unwrap().len(), 2);
    let narrowed =
        provider(&["[ECDHE-RSA-AES128-GCM-SHA256|ECDHE-RSA-CHACHA20-POLY1305]".into()]).unwrap();
    let tls12: Vec<_> = narrowed
        .cipher_suites
        .iter()
        .filter(|s| matches!(s, rustls::SupportedCipherSuite::Tls12(_)))
        .map(|s| s.suite())
        .collect();
    assert_eq!(
        tls12,
        [
            CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        ]
    );
    assert!(
        narrowed
            .cipher_suites
            .iter()
            .any(|s| matches!(s, rustls::SupportedCipherSuite::Tls13(_)))
    );
    assert_eq!(hex("0a:FF"), Some(vec![0x0a, 0xff]));
    assert_eq!(hex("0g"), None);
    assert_eq!(hex("+1"), None);
}
