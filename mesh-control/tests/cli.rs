//! The `mesh-control` commands (`ca`, `translate`, `serve`), run as a user
//! would.

mod support;

use std::process::{Command, Output};

use support::{TempDir, pem_certs, summarize};

const BIN: &str = env!("CARGO_BIN_EXE_mesh-control");

fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

#[test]
fn init_then_issue_writes_istio_layout() {
    let tmp = TempDir::new("cli");
    let (ca, out) = (tmp.join("ca"), tmp.join("out"));
    let init = run(&[
        "ca".as_ref(),
        "init".as_ref(),
        "--dir".as_ref(),
        ca.as_os_str(),
    ]);
    assert!(init.status.success(), "{init:?}");
    assert!(ca.join("root-cert.pem").exists() && ca.join("root-key.pem").exists());

    let issue = run(&[
        "ca".as_ref(),
        "issue".as_ref(),
        "--dir".as_ref(),
        ca.as_os_str(),
        "--identity".as_ref(),
        "spiffe://cluster.local/ns/bookinfo/sa/ratings".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
        "--ttl".as_ref(),
        "1h30m".as_ref(),
    ]);
    assert!(issue.status.success(), "{issue:?}");
    let chain = std::fs::read_to_string(out.join("cert-chain.pem")).unwrap();
    let leaf = summarize(&pem_certs(&chain)[0]);
    assert_eq!(leaf.uris, ["spiffe://cluster.local/ns/bookinfo/sa/ratings"]);
    // Valid from a minute back until 90 minutes on.
    assert_eq!(leaf.not_after - leaf.not_before, 90 * 60 + 60);
    assert!(out.join("key.pem").exists() && out.join("root-cert.pem").exists());

    // A second init refuses, naming the file.
    let again = run(&[
        "ca".as_ref(),
        "init".as_ref(),
        "--dir".as_ref(),
        ca.as_os_str(),
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("root-cert.pem already exists"));
}

#[test]
fn bad_input_fails_with_a_message() {
    let tmp = TempDir::new("cli-bad");
    let ca = tmp.join("ca");
    assert!(
        run(&[
            "ca".as_ref(),
            "init".as_ref(),
            "--dir".as_ref(),
            ca.as_os_str()
        ])
        .status
        .success()
    );
    let issue = |identity: &str, ttl: &str| {
        run(&[
            "ca".as_ref(),
            "issue".as_ref(),
            "--dir".as_ref(),
            ca.as_os_str(),
            "--identity".as_ref(),
            identity.as_ref(),
            "--out".as_ref(),
            tmp.join("out").as_os_str(),
            "--ttl".as_ref(),
            ttl.as_ref(),
        ])
    };

    let bad_id = issue("spiffe://cluster.local/default/ratings", "24h");
    assert!(!bad_id.status.success());
    let stderr = String::from_utf8_lossy(&bad_id.stderr);
    assert!(
        stderr.contains("spiffe://cluster.local/default/ratings"),
        "{stderr}"
    );
    assert!(stderr.contains("is not a workload identity"), "{stderr}");
    assert!(!tmp.join("out").exists());

    let bad_ttl = issue("spiffe://cluster.local/ns/a/sa/b", "1d");
    assert!(!bad_ttl.status.success());
    assert!(String::from_utf8_lossy(&bad_ttl.stderr).contains("is not a lifetime"));

    let missing = run(&[
        "ca".as_ref(),
        "issue".as_ref(),
        "--dir".as_ref(),
        tmp.join("nowhere").as_os_str(),
        "--identity".as_ref(),
        "spiffe://cluster.local/ns/a/sa/b".as_ref(),
        "--out".as_ref(),
        tmp.join("out").as_os_str(),
    ]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("root-cert.pem is missing"));
}

#[test]
fn translate_prints_what_each_kind_of_node_is_served() {
    let tmp = TempDir::new("translate");
    let bookinfo = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../mesh-istio/tests/data/bookinfo"
    );
    for file in ["bookinfo.yaml", "bookinfo-gateway.yaml"] {
        std::fs::copy(format!("{bookinfo}/{file}"), tmp.join(file)).unwrap();
    }
    let translate = |extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "translate".as_ref(),
            "--config".as_ref(),
            tmp.path().as_os_str(),
        ];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        let out = run(&args);
        assert!(out.status.success(), "{out:?}");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["LDS"][0]["name"].as_str().unwrap().to_owned()
    };
    assert_eq!(translate(&[]), "details.default.svc.cluster.local:9080");
    let gateway = "router~10.0.0.9~gw.istio-system~istio-system.svc.cluster.local";
    let labelled = [
        "--envoy",
        "--node",
        gateway,
        "--label",
        "istio=ingressgateway",
    ];
    assert_eq!(translate(&labelled), "10.0.0.9_8080");
}

#[test]
fn translate_never_prints_a_private_key() {
    let tmp = TempDir::new("translate-secret");
    let yaml = "apiVersion: networking.istio.io/v1\nkind: Gateway\n\
        metadata: {name: edge, namespace: istio-system}\n\
        spec:\n  selector: {istio: ingressgateway}\n  servers:\n\
        \x20 - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ['*']\n\
        \x20   tls: {mode: MUTUAL, credentialName: edge-cert}\n---\n\
        apiVersion: v1\nkind: Secret\nmetadata: {name: edge-cert, namespace: istio-system}\n\
        stringData: {tls.crt: THE-CHAIN, tls.key: THE-PRIVATE-KEY, ca.crt: THE-ROOTS}\n";
    std::fs::write(tmp.join("gateway.yaml"), yaml).unwrap();
    let out = run(&[
        "translate".as_ref(),
        "--config".as_ref(),
        tmp.path().as_os_str(),
        "--envoy".as_ref(),
        "--node".as_ref(),
        "router~10.0.0.9~gw.istio-system~istio-system.svc.cluster.local".as_ref(),
        "--label".as_ref(),
        "istio=ingressgateway".as_ref(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    // The listener names its secrets; their contents are not printed.
    assert!(printed.contains("kubernetes://edge-cert"), "{printed}");
    assert!(
        printed.contains("kubernetes://edge-cert-cacert"),
        "{printed}"
    );
    assert!(!printed.contains("THE-"), "{printed}");
}

#[test]
fn serve_and_translate_say_what_is_wrong_with_the_directory() {
    let out = run(&[
        "serve".as_ref(),
        "--config".as_ref(),
        "/nonexistent/mesh".as_ref(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/mesh"), "{stderr}");

    let tmp = TempDir::new("broken");
    std::fs::write(tmp.join("vs.yaml"), "kind: VirtualService\n  bad: [\n").unwrap();
    let out = run(&[
        "translate".as_ref(),
        "--config".as_ref(),
        tmp.path().as_os_str(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("vs.yaml") && stderr.contains("line"),
        "{stderr}"
    );
}
