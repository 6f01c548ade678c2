//! The `bookinfo` command: it prints the page's address, the followed
//! configuration and each admin, then each workload as it is ready; the
//! page answers; Ctrl-C (SIGINT) stops it cleanly. A port already taken,
//! or a scenario that is not one, is a clear error and a non-zero exit.

mod support;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn bookinfo() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bookinfo"));
    command.kill_on_drop(true);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_runs_until_ctrl_c() {
    let mut child = bookinfo()
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut said = Vec::new();
    while !said.iter().any(|l: &String| l == "ready bookinfo") {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("bookinfo said it was ready")
            .unwrap()
            .unwrap_or_else(|| panic!("bookinfo ended: {said:?}"));
        said.push(line);
    }
    let url = said[0].strip_prefix("bookinfo ").unwrap();
    assert!(url.ends_with("/productpage"), "{said:?}");
    assert!(said[1].starts_with("config "), "{said:?}");
    assert!(
        said.iter()
            .any(|l| l.starts_with("admin productpage-v1-0 http://")),
        "{said:?}"
    );
    assert!(
        said.iter().any(|l| l == "ready istio-ingressgateway"),
        "{said:?}"
    );
    let addr = url
        .strip_prefix("http://")
        .and_then(|u| u.strip_suffix("/productpage"))
        .unwrap()
        .parse()
        .unwrap();
    let page = support::page(addr, None).await;
    assert!(page.contains("Book Details"), "{page}");

    let pid = child.id().unwrap().to_string();
    let status = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let ended = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("bookinfo stopped")
        .unwrap();
    assert!(ended.success(), "{ended:?}");
}

#[tokio::test]
async fn a_taken_port_and_an_unknown_scenario_are_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = bookinfo().args(["--port", &port]).output().await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot listen on 127.0.0.1:{port} for the gateway"
        )),
        "{stderr}"
    );

    let out = bookinfo()
        .args(["--port", "0", "--scenario", "nothing-like-it"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no scenario nothing-like-it: there are "),
        "{stderr}"
    );
    assert!(stderr.contains("virtual-service-all-v1"), "{stderr}");
}
