//! The sidecar's life as a process: ready only once configured, drained
//! on SIGTERM with nothing in flight lost, stopped by `/quitquitquit`, a
//! taken port a clear error; and bad input at its edge.

mod support;

use std::time::Duration;

use support::{Sidecar, WAIT, eventually, free_port, get};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Plain text to `ratings` (no certificates needed), and a service whose
/// one endpoint, 127.0.0.1:`gone`, takes no connections, from a directory
/// the sidecar's own control plane serves.
fn plain(gone: u16) -> String {
    format!(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n\
         metadata: {{name: ratings, namespace: default}}\n\
         spec:\n  selector: {{matchLabels: {{app: ratings}}}}\n  mtls: {{mode: DISABLE}}\n\
         ---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
         metadata: {{name: gone, namespace: default}}\n\
         spec:\n  hosts: [gone.example]\n  ports: [{{number: 80, name: http, protocol: HTTP}}]\n\
         \x20 resolution: STATIC\n  endpoints: [{{address: 127.0.0.1, ports: {{http: {gone}}}}}]\n"
    )
}

/// A sidecar for a ratings application on `app_port`, from a YAML
/// directory in `dir`.
async fn ratings(dir: &std::path::Path, app_port: u16) -> Sidecar {
    ratings_with(dir, app_port, &[]).await
}

/// As [`ratings`], with more flags.
async fn ratings_with(dir: &std::path::Path, app_port: u16, more: &[&str]) -> Sidecar {
    let config = dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("mesh.yaml"), plain(free_port())).unwrap();
    let config = config.display().to_string();
    let port = app_port.to_string();
    let log = dir.join("access.log").display().to_string();
    #[rustfmt::skip]
    let args = [
        "--config", &config, "--label", "app=ratings", "--app-port", &port,
        "--drain-timeout", "10s", "--access-log", &log,
    ];
    let sidecar = Sidecar::start(dir, "ratings", &[&args[..], more].concat()).await;
    sidecar.ready().await;
    sidecar
}

/// A plain application whose every answer takes `delay`.
async fn slow_app(delay: Duration) -> std::net::SocketAddr {
    use std::convert::Infallible;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = hyper::service::service_fn(move |_req| async move {
                tokio::time::sleep(delay).await;
                Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(
                    bytes::Bytes::from("slow"),
                )))
            });
            tokio::spawn(async move {
                let http = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                );
                let _ = http
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn exit_status(sidecar: &mut Sidecar) -> std::process::ExitStatus {
    tokio::time::timeout(WAIT, sidecar.child.wait())
        .await
        .unwrap_or_else(|_| panic!("still running: {}", sidecar.log()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_what_is_in_flight_then_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let app = slow_app(Duration::from_millis(500)).await;
    let mut sidecar = ratings(tmp.path(), app.port()).await;
    let inbound = sidecar.inbound();
    let in_flight: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn(async move { get(inbound, "http://ratings:9080/ratings/0", None).await })
        })
        .collect();
    // Let them reach the application, then ask the sidecar to stop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = sidecar.child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    for request in in_flight {
        let (status, body) = request.await.unwrap();
        assert_eq!((status, body.as_str()), (200, "slow"), "{}", sidecar.log());
    }
    assert!(
        exit_status(&mut sidecar).await.success(),
        "{}",
        sidecar.log()
    );
    assert!(
        TcpStream::connect(inbound).await.is_err(),
        "still taking connections"
    );
}

/// `POST path` on the sidecar's admin: its status line.
async fn post(sidecar: &Sidecar, path: &str) -> String {
    let mut stream = TcpStream::connect(sidecar.admin).await.unwrap();
    let req = format!("POST {path} HTTP/1.1\r\nhost: admin\r\ncontent-length: 0\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    String::from_utf8_lossy(&head).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quitquitquit_stops_it_and_a_get_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let app = slow_app(Duration::ZERO).await;
    let mut sidecar = ratings(tmp.path(), app.port()).await;
    assert_eq!(
        get(sidecar.inbound(), "http://ratings:9080/", None).await.0,
        200
    );
    assert_eq!(sidecar.admin("/quitquitquit").await.0, 405);
    assert_eq!(post(&sidecar, "/quitquitquit").await, "HTTP/1.1 200");
    assert!(
        exit_status(&mut sidecar).await.success(),
        "{}",
        sidecar.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_listeners_stops_taking_connections_and_the_admin_stays() {
    let tmp = tempfile::tempdir().unwrap();
    let app = slow_app(Duration::ZERO).await;
    let mut sidecar = ratings(tmp.path(), app.port()).await;
    assert_eq!(post(&sidecar, "/drain_listeners").await, "HTTP/1.1 200");
    let refused = |addr| async move { TcpStream::connect(addr).await.is_err() };
    eventually(
        || async { refused(sidecar.inbound()).await && refused(sidecar.outbound()).await },
        || "the listeners still take connections".into(),
    )
    .await;
    // Still running, its admin answering, until told to quit.
    assert_eq!(sidecar.admin("/healthz").await.0, 200);
    assert!(sidecar.child.try_wait().unwrap().is_none());
    assert_eq!(post(&sidecar, "/quitquitquit").await, "HTTP/1.1 200");
    assert!(
        exit_status(&mut sidecar).await.success(),
        "{}",
        sidecar.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_already_taken_is_named_and_the_exit_is_not_0() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mesh-sidecar"))
        .args(["sidecar", "--config", "/nonexistent", "--app-port", "1"])
        .args([
            "--outbound-addr",
            "127.0.0.1:0",
            "--inbound-addr",
            "127.0.0.1:0",
            "--admin-addr",
            &addr,
        ])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr} for the admin")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_that_does_not_load_is_named_and_the_exit_is_not_0() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("bad.yaml"), "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec: {hosts: 7}\n").unwrap();
    let dir = tmp.path().display().to_string();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mesh-sidecar"))
        .args(["sidecar", "--config", &dir, "--app-port", "1"])
        .args([
            "--outbound-addr",
            "127.0.0.1:0",
            "--inbound-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
        ])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.yaml"), "{stderr}");
    assert!(
        stderr.contains(&format!("the configuration in {dir} does not load")),
        "{stderr}"
    );
}

/// Reads what `stream` sends until it closes (or 5 s pass).
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut got)).await;
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_at_the_edge_is_answered_and_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let app = slow_app(Duration::ZERO).await;
    let sidecar = ratings(tmp.path(), app.port()).await;
    for listener in [sidecar.outbound(), sidecar.inbound()] {
        let mut stream = TcpStream::connect(listener).await.unwrap();
        stream
            .write_all(b"GARBAGE\x01 / HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let res = read_to_close(&mut stream).await;
        assert!(res.starts_with("HTTP/1.1 400"), "{listener}: {res}");

        let mut stream = TcpStream::connect(listener).await.unwrap();
        let huge = format!(
            "GET / HTTP/1.1\r\nhost: ratings\r\nx-big: {}\r\n\r\n",
            "a".repeat(100 * 1024)
        );
        let _ = stream.write_all(huge.as_bytes()).await;
        let res = read_to_close(&mut stream).await;
        assert!(res.starts_with("HTTP/1.1 431"), "{listener}: {res}");
    }
    // Nothing listens where the outbound request goes: Envoy's 503, and
    // its flag in the access log.
    let (status, body) = get(sidecar.outbound(), "http://gone.example/", None).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("connection failure"),
        "{body}: {}",
        sidecar.log()
    );
    let log = tmp.path().join("access.log");
    let logged = tokio::time::timeout(WAIT, async {
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.contains("gone.example")) {
                return line.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("no access log line for gone.example");
    assert!(logged.contains(" 503 UF "), "{logged}");
    // The sidecar is still there.
    assert_eq!(
        get(sidecar.inbound(), "http://ratings:9080/", None).await.0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_file_as_istios_agent_writes_it_is_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let (_plane, xds) = support::control_plane(&[("mesh.yaml", plain(free_port()))]).await;
    let bootstrap = serde_json::json!({
        "xds_servers": [{
            "server_uri": xds.to_string(),
            "channel_creds": [{"type": "insecure"}],
            "server_features": ["xds_v3"],
        }],
        "node": {
            "id": "sidecar~127.0.0.1~ratings-v1.default~default.svc.cluster.local",
            "metadata": {"NAMESPACE": "default", "LABELS": {"app": "ratings", "version": "v1"}},
        },
        "server_listener_resource_name_template": "xds.istio.io/grpc/lds/inbound/%s",
    });
    let file = tmp.path().join("bootstrap.json");
    std::fs::write(&file, bootstrap.to_string()).unwrap();
    let app = slow_app(Duration::ZERO).await;
    let (file, port) = (file.display().to_string(), app.port().to_string());
    let sidecar = Sidecar::start(
        tmp.path(),
        "ratings",
        &["--bootstrap", &file, "--app-port", &port],
    )
    .await;
    sidecar.ready().await;
    assert_eq!(
        get(sidecar.inbound(), "http://ratings:9080/", None).await,
        (200, "slow".into())
    );
    let (_, dump) = sidecar.admin("/config_dump").await;
    assert!(
        dump.contains("xds.istio.io/grpc/lds/inbound/127.0.0.1:"),
        "{dump}"
    );
}

/// The sidecar's resident memory, from `/proc`, in KiB.
fn rss_kib(sidecar: &Sidecar) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", sidecar.child.id().unwrap())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_slow_connections_stay_bounded_and_are_cut() {
    const SLOW: usize = 1000;
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("skipped: no /proc to read the sidecar's memory from");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let app = slow_app(Duration::ZERO).await;
    let sidecar = ratings_with(tmp.path(), app.port(), &["--header-read-timeout", "2s"]).await;
    let before = rss_kib(&sidecar);
    // Each sends half a request head and waits.
    let mut slow = Vec::with_capacity(SLOW);
    for i in 0..SLOW {
        let target = if i % 2 == 0 {
            sidecar.inbound()
        } else {
            sidecar.outbound()
        };
        let mut stream = TcpStream::connect(target).await.unwrap_or_else(|e| {
            panic!(
                "connection {i} (raise the open-file limit above {}): {e}",
                2 * SLOW
            )
        });
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: ratings\r\nx-slow: ")
            .await
            .unwrap();
        slow.push(stream);
    }
    // Served alongside them.
    assert_eq!(
        get(sidecar.inbound(), "http://ratings:9080/", None).await.0,
        200
    );
    let during = rss_kib(&sidecar);
    eprintln!("rss before {before} KiB, with {SLOW} slow connections {during} KiB");
    assert!(
        during < before + 64 * 1024,
        "{SLOW} slow connections took {} KiB (from {before} KiB)",
        during - before
    );
    // Cut once the head has not come in time: each is closed.
    for (i, stream) in slow.iter_mut().enumerate() {
        let mut buf = Vec::new();
        let closed = tokio::time::timeout(WAIT, stream.read_to_end(&mut buf)).await;
        assert!(closed.is_ok(), "slow connection {i} still open");
    }
    assert_eq!(
        get(sidecar.inbound(), "http://ratings:9080/", None).await.0,
        200
    );
}
