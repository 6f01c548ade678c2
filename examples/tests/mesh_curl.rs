//! `mesh-curl` against a real ADS server and real HTTP servers.

#[path = "../../mesh-xds/tests/support/mod.rs"]
mod ads;

use std::net::SocketAddr;
use std::process::Output;
use std::time::Duration;

use ads::AdsServer;
use ads::resources::{eds_cluster, listener, load_assignment_at, weighted_route_config};
use examples::hello_server;
use mesh_xds::ads::ResourceType;

const ECHO: &str = "echo";
const V1: &str = "outbound|80|v1|echo.default.svc.cluster.local";
const V2: &str = "outbound|80|v2|echo.default.svc.cluster.local";

/// Serves listener `echo` splitting 20/80 over `v1` and `v2`.
fn serve(server: &AdsServer, v1: SocketAddr, v2: SocketAddr) {
    server.set(
        ResourceType::Listener.type_url(),
        vec![listener(ECHO, "echo-routes")],
    );
    server.set(
        ResourceType::RouteConfig.type_url(),
        vec![weighted_route_config(
            "echo-routes",
            &["echo"],
            &[(V1, 20), (V2, 80)],
        )],
    );
    server.set(
        ResourceType::Cluster.type_url(),
        vec![eds_cluster(V1), eds_cluster(V2)],
    );
    server.set(
        ResourceType::LoadAssignment.type_url(),
        vec![load_assignment_at(V1, &[v1]), load_assignment_at(V2, &[v2])],
    );
}

/// Runs mesh-curl against `server` with `args`, bounded in time.
async fn mesh_curl(server: &str, args: &[&str]) -> Output {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_mesh-curl"))
        .args([
            "--xds",
            server,
            "--node-id",
            "sidecar~127.0.0.1~curl.default~default.svc.cluster.local",
        ])
        .args(["--max-time", "30"])
        .args(args)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("mesh-curl stops by itself")
        .expect("mesh-curl runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The count on the line starting with `prefix`.
fn count(report: &str, prefix: &str) -> u32 {
    report
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or_else(|| panic!("no line {prefix:?} in:\n{report}"))
}

#[tokio::test]
async fn one_request_prints_the_body_and_many_print_a_tally() {
    let v1 = hello_server("v1").await.unwrap();
    let v2 = hello_server("v2").await.unwrap();
    let server = AdsServer::start().await;
    serve(&server, v1, v2);

    for protocol in [&[][..], &["--delta"][..]] {
        let out = mesh_curl(
            &server.authority(),
            &[protocol, &["http://echo/x"]].concat(),
        )
        .await;
        assert!(out.status.success(), "{}", stderr(&out));
        let body = stdout(&out);
        assert!(body == "hello from v1" || body == "hello from v2", "{body}");
    }

    let out = mesh_curl(
        &server.authority(),
        &[
            "-n",
            "500",
            "-X",
            "PUT",
            "-d",
            "x",
            "-H",
            "x-test: 1",
            "http://echo/x",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout(&out);
    assert_eq!(count(&report, "status 200:"), 500, "{report}");
    let v2_served = count(&report, &format!("cluster {V2}:"));
    assert!((350..=450).contains(&v2_served), "{report}");
    assert_eq!(
        count(&report, &format!("  endpoint {v2}:")),
        v2_served,
        "{report}"
    );
    assert_eq!(
        count(&report, &format!("  endpoint {v1}:")),
        500 - v2_served
    );
}

#[tokio::test]
async fn a_rejected_target_or_an_unreachable_server_is_an_error_that_says_why() {
    let server = AdsServer::start().await;
    // A listener with no api_listener: rejected, with no earlier copy.
    let mut bad = listener(ECHO, "echo-routes");
    let mut l = <envoy_types::pb::envoy::config::listener::v3::Listener as prost::Message>::decode(
        bad.any.value.as_slice(),
    )
    .unwrap();
    l.api_listener = None;
    bad.any.value = prost::Message::encode_to_vec(&l);
    server.set(ResourceType::Listener.type_url(), vec![bad]);
    let out = mesh_curl(&server.authority(), &["http://echo/"]).await;
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.starts_with("mesh-curl: xds:///echo: LDS resource \"echo\" was rejected"),
        "{err}"
    );

    // Nothing listens on a port just freed.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap().to_string();
    drop(free);
    let out = mesh_curl(&addr, &["--connect-timeout", "1", "http://echo/"]).await;
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot reach the xDS server {addr}")),
        "{err}"
    );

    let out = mesh_curl(&addr, &["https://echo/"]).await;
    assert!(stderr(&out).contains("expected http://HOST[:PORT]/path"));
}
