//! A `STRICT` `MeshServer` against TLS clients that are not ours, with
//! files as `mesh-control ca issue` writes them: `curl --cert` (OpenSSL,
//! HTTP/2 by ALPN) and `openssl s_client` (HTTP/1.1) are admitted with a
//! mesh certificate, their SPIFFE id seen by the service, and refused
//! without one. Skipped, saying why, where curl or openssl is missing,
//! unless `MESH_REQUIRE_PEERS` is set (as `.ci/run` sets it, having
//! installed them).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;

use bytes::Bytes;
use http_body_util::Full;
use mesh_tower::server::MeshServer;
use mesh_tower::tls::ClientIdentity;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::process::Command;

use support::pki::Ca;

mod support;

const RATINGS: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-ratings";
const REVIEWS: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";

async fn hello<B>(req: http::Request<B>) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let caller = req
        .extensions()
        .get::<ClientIdentity>()
        .map_or("anonymous".into(), |c| c.0.to_string());
    let body = format!("hello {caller} over {:?}", req.version());
    Ok(http::Response::new(Full::new(Bytes::from(body))))
}

/// Whether `command` runs here; says why not, or panics when the peers
/// are required.
fn have(command: &str) -> bool {
    let found = std::process::Command::new(command)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        let reason = format!("{command} is not installed");
        if std::env::var_os("MESH_REQUIRE_PEERS").is_some() {
            panic!("MESH_REQUIRE_PEERS is set: {reason}");
        }
        eprintln!("skipping: {reason}");
    }
    found
}

/// Writes `id`'s certificate, key and the root into `dir`, in Istio's
/// layout.
fn write_certs(ca: &Ca, id: &str, dir: &Path) {
    let (chain, key) = ca.issue(id);
    std::fs::write(dir.join("cert-chain.pem"), chain).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
    std::fs::write(dir.join("root-cert.pem"), ca.pem()).unwrap();
}

/// curl's exit status and body for `https://addr/`, with the client
/// certificate in `certs` when given. `--insecure`: a SPIFFE certificate
/// names no host, and curl checks no chain without one (openssl, below,
/// checks the chain).
async fn curl(addr: SocketAddr, certs: Option<&Path>) -> (bool, String) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "--silent",
        "--show-error",
        "--max-time",
        "10",
        "--http2",
        "--insecure",
    ]);
    if let Some(dir) = certs {
        cmd.arg("--cert")
            .arg(dir.join("cert-chain.pem"))
            .arg("--key")
            .arg(dir.join("key.pem"));
    }
    let out = cmd.arg(format!("https://{addr}/")).output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// An HTTP/1.1 GET through `openssl s_client`, verifying the server's
/// chain against the root: what it printed.
async fn openssl(addr: SocketAddr, roots: &Path, certs: Option<&Path>) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-quiet",
        "-verify_return_error",
        "-alpn",
        "http/1.1",
    ])
    .arg("-connect")
    .arg(addr.to_string())
    .arg("-CAfile")
    .arg(roots);
    if let Some(dir) = certs {
        cmd.arg("-cert")
            .arg(dir.join("cert-chain.pem"))
            .arg("-key")
            .arg(dir.join("key.pem"));
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"GET / HTTP/1.1\r\nhost: ratings\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let out = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("openssl finished")
        .unwrap();
    drop(stdin);
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_and_openssl_are_admitted_with_a_mesh_certificate_and_refused_without() {
    if !have("curl") || !have("openssl") {
        return;
    }
    let ca = Ca::new();
    let tmp = tempfile::tempdir().unwrap();
    let reviews = tmp.path().join("reviews");
    std::fs::create_dir(&reviews).unwrap();
    write_certs(&ca, REVIEWS, &reviews);
    let roots = reviews.join("root-cert.pem");

    let server = MeshServer::builder()
        .identity(ca.identity(RATINGS))
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = server.clone();
    tokio::spawn(async move { serving.serve(listener, tower::service_fn(hello)).await });

    let (ok, body) = curl(addr, Some(&reviews)).await;
    assert!(ok, "curl with a mesh certificate failed");
    assert_eq!(body, format!("hello {REVIEWS} over HTTP/2.0"));
    let (ok, body) = curl(addr, None).await;
    assert!(!ok, "curl without a certificate was answered: {body}");

    let printed = openssl(addr, &roots, Some(&reviews)).await;
    assert!(printed.starts_with("HTTP/1.1 200 OK"), "{printed}");
    assert!(
        printed.ends_with(&format!("hello {REVIEWS} over HTTP/1.1")),
        "{printed}"
    );
    let printed = openssl(addr, &roots, None).await;
    assert!(!printed.contains("200 OK"), "{printed}");

    assert_eq!(server.stats().mtls_connections(), 2);
    assert_eq!(server.stats().handshake_failures(), 2);
}
