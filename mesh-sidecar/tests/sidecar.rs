//! End to end on loopback: a plain client → productpage's sidecar
//! (outbound) → mutual TLS → reviews' sidecars (inbound) → plain reviews
//! applications, every part configured by one control plane: a header
//! route, a weighted split, and retries across a sidecar that is killed.

mod support;

use std::net::SocketAddr;

use mesh_core::registry::Instance;
use support::{Sidecar, WAIT, app, certificates, control_plane, get};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PRODUCTPAGE: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage";
const REVIEWS: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";

const MESH: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: default}\n\
spec:\n  selector: {app: reviews}\n  ports: [{name: http, port: 9080}]\n\
---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
metadata: {name: reviews, namespace: default}\n\
spec:\n  host: reviews\n  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL}\n\
\x20 subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n\
---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n\
metadata: {name: reviews, namespace: default}\n\
spec:\n  hosts: [reviews]\n  http:\n\
\x20 - match: [{headers: {end-user: {exact: jason}}}]\n\
\x20   route: [{destination: {host: reviews, subset: v2}}]\n\
\x20 - route:\n\
\x20   - {destination: {host: reviews, subset: v1}, weight: 75}\n\
\x20   - {destination: {host: reviews, subset: v2}, weight: 25}\n\
\x20   retries: {attempts: 3, retryOn: 'connect-failure,reset,refused-stream,503'}\n\
---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\n\
metadata: {name: reviews, namespace: default}\n\
spec:\n  selector: {matchLabels: {app: reviews}}\n  mtls: {mode: STRICT}\n";

/// A reviews instance of `version` behind its sidecar at `inbound`.
fn instance(version: &str, inbound: SocketAddr) -> Instance {
    let mut i = Instance::new(inbound.ip().to_string());
    i.ports.insert("http".into(), inbound.port());
    i.labels.insert("app".into(), "reviews".into());
    i.labels.insert("version".into(), version.into());
    i.service_account = Some("bookinfo-reviews".into());
    i
}

/// `n` requests for reviews through `sidecar`: how many each version
/// answered, and every failure.
async fn requests(sidecar: &Sidecar, n: usize, user: Option<&str>) -> (usize, usize, Vec<String>) {
    let (mut v1, mut v2, mut failed) = (0, 0, Vec::new());
    for _ in 0..n {
        let headers: Vec<(&str, &str)> = user.map(|u| ("end-user", u)).into_iter().collect();
        let (status, body) = get(
            sidecar.outbound(),
            "http://reviews:9080/reviews/0",
            Some(&headers),
        )
        .await;
        match body.split_once(' ') {
            Some(("v1", _)) if status == 200 => v1 += 1,
            Some(("v2", _)) if status == 200 => v2 += 1,
            _ => failed.push(format!("{status} {body}")),
        }
    }
    (v1, v2, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_client_reaches_plain_servers_over_the_meshs_mutual_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    certificates(dir, &[("productpage", PRODUCTPAGE), ("reviews", REVIEWS)]);
    let (plane, xds) = control_plane(&[("mesh.yaml", MESH.to_owned())]).await;
    let (v1a, v1b, v2) = (app("v1").await, app("v1").await, app("v2").await);
    let mut v1a_sidecar = Sidecar::workload(dir, xds, "reviews", "v1", Some(v1a.port())).await;
    let v1b_sidecar = Sidecar::workload(dir, xds, "reviews", "v1", Some(v1b.port())).await;
    let v2_sidecar = Sidecar::workload(dir, xds, "reviews", "v2", Some(v2.port())).await;
    plane.set_instances(
        "test",
        vec![
            instance("v1", v1a_sidecar.inbound()),
            instance("v1", v1b_sidecar.inbound()),
            instance("v2", v2_sidecar.inbound()),
        ],
    );
    let productpage = Sidecar::workload(dir, xds, "productpage", "v1", None).await;
    for sidecar in [&v1a_sidecar, &v1b_sidecar, &v2_sidecar, &productpage] {
        sidecar.ready().await;
    }

    // The application behind the sidecar is told who called, as proven by
    // the caller's certificate.
    let (status, body) = tokio::time::timeout(
        WAIT,
        get(
            productpage.outbound(),
            "http://reviews:9080/reviews/0",
            None,
        ),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}\n{}", productpage.log());
    assert!(body.ends_with(&format!(";URI={PRODUCTPAGE}")), "{body}");
    assert!(body.contains(&format!("By={REVIEWS}")), "{body}");

    // A WebSocket-style upgrade goes through both sidecars and the
    // mutual TLS between them, and becomes a tunnel.
    let mut stream = tokio::net::TcpStream::connect(productpage.outbound())
        .await
        .unwrap();
    stream
        .write_all(b"GET /chat HTTP/1.1\r\nhost: reviews:9080\r\nend-user: jason\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tokio::time::timeout(WAIT, stream.read_exact(&mut byte))
            .await
            .unwrap()
            .unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(
        head.starts_with("HTTP/1.1 101"),
        "{head}\n{}",
        productpage.log()
    );
    stream.write_all(b"ping").await.unwrap();
    let mut echo = [0u8; 4];
    tokio::time::timeout(WAIT, stream.read_exact(&mut echo))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echo, b"ping");

    // The header route.
    let (v1, v2, failed) = requests(&productpage, 20, Some("jason")).await;
    assert_eq!((v1, v2, failed.len()), (0, 20, 0), "{failed:?}");

    // The weighted split: both versions, v1 about three times as often.
    let (v1, v2, failed) = requests(&productpage, 200, None).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert!(v1 > v2 && v2 > 20, "75/25 split gave v1 {v1}, v2 {v2}");

    // One of v1's sidecars dies: its requests are retried elsewhere.
    v1a_sidecar.child.kill().await.unwrap();
    let (v1, v2, failed) = requests(&productpage, 100, None).await;
    assert!(failed.is_empty(), "{failed:?}\n{}", productpage.log());
    assert_eq!(v1 + v2, 100);

    // Its admin shows the routes it routes by, as Envoy's /routes does.
    let (status, routes) = productpage.admin("/routes").await;
    assert_eq!(status, 200);
    let routes: serde_json::Value = serde_json::from_str(&routes).unwrap();
    let text = routes.to_string();
    assert!(
        text.contains("outbound|9080|v2|reviews.default.svc.cluster.local"),
        "{routes:#}"
    );
    assert!(text.contains("jason"), "{routes:#}");

    // Plain text to a STRICT reviews is refused at its sidecar.
    let (status, _) = get(v2_sidecar.inbound(), "http://reviews:9080/reviews/0", None).await;
    assert_eq!(status, 0, "plain text reached a STRICT port");
}
