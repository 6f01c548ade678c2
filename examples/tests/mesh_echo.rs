//! `mesh-echo` server and client as processes, with certificates from
//! `mesh-control`'s CA in the layout `mesh-control ca issue` writes: the
//! mutual TLS call the README shows, and what STRICT, PERMISSIVE, an
//! unexpected identity and an AuthorizationPolicy do to it.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use mesh_control::ca::Ca;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const RATINGS: &str = "spiffe://cluster.local/ns/default/sa/ratings";
const REVIEWS: &str = "spiffe://cluster.local/ns/default/sa/reviews";

/// A root in `dir/ca` and workload certificates in `dir/ratings` and
/// `dir/reviews`.
fn certificates(dir: &Path) {
    let ca = Ca::init(dir.join("ca")).unwrap();
    for (id, out) in [(RATINGS, "ratings"), (REVIEWS, "reviews")] {
        let cert = ca.issue(id, Duration::from_secs(3600)).unwrap();
        cert.write(dir.join(out)).unwrap();
    }
}

/// A mesh-echo server with `args`, and the address it listens on.
async fn server(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesh-echo"))
        .args(["server", "--listen", "127.0.0.1:0", "--name", "ratings"])
        .args(args)
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(addr) = line.strip_prefix("listening on ") {
                return addr.to_owned();
            }
        }
        panic!("the server stopped before listening");
    };
    let addr = tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the server listens");
    (child, addr)
}

/// `mesh-echo client ARGS http://ADDR/`, bounded in time.
async fn client(addr: &str, args: &[&str]) -> Output {
    let run = Command::new(env!("CARGO_BIN_EXE_mesh-echo"))
        .arg("client")
        .args(args)
        .arg(format!("http://{addr}/"))
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the client stops by itself")
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn a_mutual_tls_call_names_the_caller_and_strict_refuses_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let certs = |who: &str| dir.path().join(who).display().to_string();
    let (_server, addr) = server(&["--certs", &certs("ratings")]).await;

    let out = client(
        &addr,
        &["--certs", &certs("reviews"), "--expect-id", RATINGS],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("hello {REVIEWS} from ratings\n"));

    let out = client(&addr, &[]).await;
    assert!(!out.status.success());
    assert!(!stdout(&out).contains("hello"), "{}", stdout(&out));

    let out = client(
        &addr,
        &["--certs", &certs("reviews"), "--expect-id", REVIEWS],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!(
            "the server is {RATINGS}, where {REVIEWS} was expected"
        )),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn permissive_answers_plain_text_as_anonymous() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let certs = |who: &str| dir.path().join(who).display().to_string();
    let (_server, addr) = server(&["--certs", &certs("ratings"), "--mode", "permissive"]).await;
    let out = client(&addr, &[]).await;
    assert_eq!(stdout(&out), "hello anonymous from ratings\n");
    let out = client(&addr, &["--certs", &certs("reviews")]).await;
    assert_eq!(stdout(&out), format!("hello {REVIEWS} from ratings\n"));
}

#[tokio::test]
async fn an_authorization_policy_refuses_who_it_does_not_name() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let certs = |who: &str| dir.path().join(who).display().to_string();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ratings-viewer, namespace: default}\n\
         spec:\n  selector: {matchLabels: {app: ratings}}\n  rules:\n  - from: [{source: {principals: [cluster.local/ns/default/sa/productpage]}}]\n",
    )
    .unwrap();
    let policy = policy.display().to_string();
    let (_server, addr) = server(&["--certs", &certs("ratings"), "--policy", &policy]).await;
    let out = client(&addr, &["--certs", &certs("reviews")]).await;
    assert!(!out.status.success());
    assert_eq!(stdout(&out), "RBAC: access denied");
    assert!(stderr(&out).contains("403"), "{}", stderr(&out));
}

#[tokio::test]
async fn the_admin_endpoint_counts_the_calls_with_the_callers_identity() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let certs = |who: &str| dir.path().join(who).display().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesh-echo"))
        .args(["server", "--listen", "127.0.0.1:0", "--name", "ratings"])
        .args(["--certs", &certs("ratings"), "--admin-addr", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut addr, mut admin) = (None, None);
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(a) = line.strip_prefix("admin ") {
                admin = Some(a.to_owned());
            }
            if let Some(a) = line.strip_prefix("listening on ") {
                addr = Some(a.to_owned());
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .unwrap();
    let (addr, admin) = (addr.unwrap(), admin.unwrap());
    let out = client(&addr, &["--certs", &certs("reviews")]).await;
    assert!(out.status.success(), "{}", stderr(&out));

    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let uri = format!("http://{admin}/stats/prometheus").parse().unwrap();
    let res = http.get(uri).await.unwrap();
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&body.to_bytes()).into_owned();
    let line = text
        .lines()
        .find(|l| l.starts_with("istio_requests_total{"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains(&format!("source_principal=\"{REVIEWS}\"")),
        "{line}"
    );
    assert!(line.contains("destination_app=\"ratings\""), "{line}");
    assert!(
        line.contains("connection_security_policy=\"mutual_tls\""),
        "{line}"
    );
    assert!(line.ends_with(" 1"), "{line}");

    // The log level, changed at run time.
    let req = http::Request::post(format!("http://{admin}/logging?level=debug"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let res = http.request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let req = http::Request::post(format!("http://{admin}/logging?level=%5Bnot"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    assert_eq!(http.request(req).await.unwrap().status(), 400);
}

/// A collector that keeps every span's name.
#[derive(Clone, Default)]
struct Collector(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService
    for Collector
{
    async fn export(
        &self,
        request: tonic::Request<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
        >,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse,
        >,
        tonic::Status,
    > {
        let names = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .map(|s| s.name);
        self.0.lock().unwrap().extend(names);
        Ok(tonic::Response::new(Default::default()))
    }
}

#[tokio::test]
async fn otlp_receives_the_servers_spans() {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let (_server, addr) = server(&[
        "--mode",
        "disable",
        "--admin-addr",
        "127.0.0.1:0",
        "--otlp",
        &otlp,
    ])
    .await;
    let out = client(&addr, &[]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let names = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let names = collector.0.lock().unwrap().clone();
            if !names.is_empty() {
                return names;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a span exported");
    assert!(names.iter().any(|n| n.ends_with('/')), "{names:?}");
}
