//! The admin's page for people, rendered by headless Chromium (Debian's
//! `chromium`, which `.ci/run` installs) against a live admin: a client
//! following a real ADS server, with one route configuration NACKed and a
//! workload certificate. The page must run without a console error, show
//! each part, compute request rates after its second refresh, and load
//! nothing from another origin. The screenshot is kept in the test's
//! target directory (`admin-page.png`). Skipped without Chromium unless
//! `MESH_REQUIRE_PEERS` is set.

#[path = "../../mesh-xds/tests/support/mod.rs"]
mod ads;
mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use mesh_core::StaticResolve;
use mesh_tower::MeshClient;
use mesh_tower::admin::Admin;
use mesh_tower::tls::IdentitySource;
use mesh_xds::Bootstrap;
use mesh_xds::ads::{AdsClient, ResourceType};
use support::Server;
use tower::ServiceExt;

use ads::resources::{
    bad_route_config, eds_cluster, listener, load_assignment_at, weighted_route_config,
};
use ads::{AdsServer, WAIT};

const REVIEWS: &str = "reviews.default.svc.cluster.local:9080";
const V1: &str = "outbound|9080|v1|reviews.default.svc.cluster.local";

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("MESH_CHROMIUM").map_or("/usr/bin/chromium".into(), PathBuf::from);
    if path.exists() {
        return Some(path);
    }
    let why = format!("no Chromium at {}", path.display());
    assert!(std::env::var_os("MESH_REQUIRE_PEERS").is_none(), "{why}");
    eprintln!("skipped: {why}");
    None
}

/// Runs headless Chromium on `url` with `args`, letting the page's timers
/// run for `budget` of virtual time; its stdout and stderr.
async fn run_chromium(chromium: &PathBuf, url: &str, args: &[&str]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=7000",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args)
    .arg(url);
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::task::spawn_blocking(move || cmd.output()),
    )
    .await
    .expect("chromium did not finish")
    .unwrap()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_renders_every_part_without_an_error() {
    let Some(chromium) = chromium() else {
        return;
    };
    let v1 = Server::start("v1", Duration::ZERO).await;
    let server = AdsServer::start().await;
    server.set(
        ResourceType::Listener.type_url(),
        vec![listener(REVIEWS, "reviews")],
    );
    let routes = weighted_route_config("reviews", &[REVIEWS], &[(V1, 100)]);
    server.set(ResourceType::RouteConfig.type_url(), vec![routes]);
    server.set(ResourceType::Cluster.type_url(), vec![eds_cluster(V1)]);
    server.set(
        ResourceType::LoadAssignment.type_url(),
        vec![load_assignment_at(V1, &[v1.addr])],
    );
    let bootstrap = Bootstrap::insecure(
        &server.authority(),
        "sidecar~127.0.0.1~productpage.default~default.svc.cluster.local",
    )
    .unwrap();
    let ads = AdsClient::new(&bootstrap).spawn().unwrap();
    let client: MeshClient<Full<Bytes>> = MeshClient::builder(StaticResolve::default())
        .xds(ads.clone())
        .build();
    let uri = format!("http://{REVIEWS}/");
    for _ in 0..5 {
        let req = http::Request::get(&uri).body(Full::default()).unwrap();
        let res = tokio::time::timeout(WAIT, client.clone().oneshot(req))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(res.status(), 200);
        res.into_body().collect().await.unwrap();
    }
    server.set(
        ResourceType::RouteConfig.type_url(),
        vec![bad_route_config("reviews", V1)],
    );
    let mut updates = ads.updates();
    tokio::time::timeout(
        WAIT,
        updates.wait_for(|v| v.rejected(ResourceType::RouteConfig, "reviews").is_some()),
    )
    .await
    .unwrap()
    .unwrap();

    let ca = support::pki::Ca::new();
    let identity = ca.identity("spiffe://cluster.local/ns/default/sa/productpage");
    let admin = Admin::builder(Default::default())
        .identity(IdentitySource::from(identity))
        .xds("mesh", &ads)
        .client("app", &client)
        .build();
    admin.set_ready(true);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let serving = tokio::spawn(admin.serve(listener));
    // Traffic while the page refreshes, so that its rates move.
    let traffic = tokio::spawn({
        let client = client.clone();
        async move {
            for _ in 0..2000 {
                let req = http::Request::get(&uri).body(Full::default()).unwrap();
                if let Ok(res) = client.clone().oneshot(req).await {
                    let _ = res.into_body().collect().await;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });

    let (dom, log) = run_chromium(&chromium, &url, &["--dump-dom"]).await;
    let console_errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") && (l.contains("ERROR") || l.contains("Uncaught")))
        .collect();
    assert!(console_errors.is_empty(), "{console_errors:#?}");
    assert!(dom.contains("data-errors=\"0\""), "{dom}");
    let refreshes = dom
        .split("data-refreshes=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0);
    assert!(refreshes >= 2, "refreshed {refreshes} times\n{dom}");
    for part in [
        V1,
        &v1.addr.to_string(),
        "class=\"healthy\"",
        "reviews.default.svc.cluster.local:9080",
        "NACKED",
        "regex",
        "spiffe://cluster.local/ns/default/sa/productpage",
        "LIVE",
    ] {
        assert!(dom.contains(part), "no {part} in\n{dom}");
    }
    // A rate from two refreshes: a number, not the dash of the first.
    let rate = dom
        .split("class=\"num rate\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or("");
    assert!(rate.parse::<f64>().is_ok(), "rate {rate:?}\n{dom}");
    assert!(
        !dom.contains("http://") || !dom.contains("<script src"),
        "no script from elsewhere"
    );

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("admin-page.png");
    let _ = std::fs::remove_file(&shot);
    let screenshot = format!("--screenshot={}", shot.display());
    run_chromium(&chromium, &url, &[&screenshot, "--window-size=1280,1100"]).await;
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG"),
        "no screenshot at {}",
        shot.display()
    );
    eprintln!("screenshot: {}", shot.display());
    traffic.abort();
    serving.abort();
}
