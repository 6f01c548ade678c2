//! Transparent interception, as in a pod: inside a network namespace the
//! test makes (root only; skipped, saying why, otherwise), the rules of
//! `mesh-sidecar iptables` send an unmodified `curl http://reviews:9080/`,
//! run as another user, through the sidecar, which routes it by its
//! `Host`; a connection of another protocol is passed through to where it
//! was going, in a second namespace behind a veth pair.

mod support;

use std::path::Path;
use std::process::Command;

use support::{Sidecar, free_port};

/// Runs `program args`, its success and its output.
fn run(program: &str, args: &[&str]) -> (bool, String) {
    match Command::new(program).args(args).output() {
        Ok(out) => (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ),
        Err(e) => (false, e.to_string()),
    }
}

/// `ip netns exec NS program args`.
fn exec(ns: &str, program: &str, args: &[&str]) -> (bool, String) {
    run("ip", &[&["netns", "exec", ns, program], args].concat())
}

/// Network namespaces made for the test, removed (with their `/etc/netns`
/// files) when dropped.
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = run("ip", &["netns", "del", ns]);
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(ns));
        }
    }
}

/// Why the test cannot run here, if it cannot.
fn unable(backend: &str) -> Option<String> {
    if run("id", &["-u"]).1.trim() != "0" {
        return Some("not root: network namespaces and iptables need it".into());
    }
    for (program, arg) in [
        ("ip", "-V"),
        (backend, "-V"),
        ("curl", "-V"),
        ("setpriv", "-V"),
        ("python3", "-V"),
    ] {
        if !run(program, &[arg]).0 {
            return Some(format!("no {program}"));
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmodified_client_goes_through_the_sidecar_by_iptables() {
    intercepted("iptables").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmodified_client_goes_through_the_sidecar_by_nft() {
    intercepted("nft").await;
}

/// The scenario of this file, the rules installed with `backend`.
async fn intercepted(backend: &str) {
    if let Some(why) = unable(backend) {
        eprintln!("skipping: {why}");
        return;
    }
    let id = format!("{backend}-{}", std::process::id());
    let (pod, remote) = (format!("mesh-pod-{id}"), format!("mesh-remote-{id}"));
    let namespaces = Namespaces(vec![pod.clone(), remote.clone()]);
    for ns in &namespaces.0 {
        let (ok, out) = run("ip", &["netns", "add", ns]);
        if !ok {
            eprintln!("skipping: cannot make a network namespace: {out}");
            return;
        }
        assert!(run("ip", &["-n", ns, "link", "set", "lo", "up"]).0);
    }
    // The pod reaches the service range (10.96/16) by a veth pair whose
    // other end is in the second namespace, at 10.96.0.99.
    #[rustfmt::skip]
    let setup: [&[&str]; 8] = [
        &["-n", &pod, "link", "add", "veth-pod", "type", "veth", "peer", "name", "veth-remote"],
        &["-n", &pod, "link", "set", "veth-remote", "netns", &remote],
        &["-n", &pod, "addr", "add", "10.96.0.1/16", "dev", "veth-pod"],
        &["-n", &remote, "addr", "add", "10.96.0.99/16", "dev", "veth-remote"],
        &["-n", &pod, "link", "set", "veth-pod", "up"],
        &["-n", &remote, "link", "set", "veth-remote", "up"],
        &["-n", &pod, "route", "replace", "10.96.0.0/16", "dev", "veth-pod"],
        &["-n", &remote, "route", "replace", "10.96.0.0/16", "dev", "veth-remote"],
    ];
    for args in setup {
        let (ok, out) = run("ip", args);
        assert!(ok, "ip {}: {out}", args.join(" "));
    }
    // `reviews` resolves to a service address nothing answers at.
    let etc = Path::new("/etc/netns").join(&pod);
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("hosts"),
        "127.0.0.1 localhost\n10.96.0.10 reviews\n",
    )
    .unwrap();

    let tmp = tempfile::tempdir().unwrap();
    // reviews' one instance, on the pod's loopback: python's file server.
    let app_port = free_port().to_string();
    let mut app = tokio::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &pod,
            "python3",
            "-m",
            "http.server",
            &app_port,
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // An echo server of a protocol of its own, in the other namespace.
    let echo = "import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                s.bind(('10.96.0.99', 7000)); s.listen()\nc,_=s.accept(); c.sendall(b'echo:' + c.recv(64)); c.close()\n";
    let mut echo = tokio::process::Command::new("ip")
        .args(["netns", "exec", &remote, "python3", "-c", echo])
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let config = tmp.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("reviews.yaml"),
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: reviews, namespace: default}}\n\
             spec:\n  selector: {{app: reviews}}\n  ports: [{{name: http, port: 9080}}]\n\
             ---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
             metadata: {{name: reviews-v1, namespace: default}}\n\
             spec: {{address: 127.0.0.1, ports: {{http: {app_port}}}, labels: {{app: reviews}}}}\n"
        ),
    )
    .unwrap();
    let (config, access_log) = (config.display().to_string(), tmp.path().join("access.log"));
    let log = access_log.display().to_string();
    let mut command = tokio::process::Command::new("ip");
    #[rustfmt::skip]
    command.args([
        "netns", "exec", &pod, env!("CARGO_BIN_EXE_mesh-sidecar"), "sidecar", "--config", &config, "--intercept",
        "--outbound-addr", "127.0.0.1:15001", "--inbound-addr", "127.0.0.1:15006", "--admin-addr", "127.0.0.1:15000",
        "--app-port", "1", "--label", "app=productpage", "--access-log", &log,
    ]);
    let _sidecar = Sidecar::launch(tmp.path(), "pod", command).await;
    let sidecar = env!("CARGO_BIN_EXE_mesh-sidecar");
    let (ok, out) = exec(
        &pod,
        sidecar,
        &[
            "iptables",
            "--proxy-uid",
            "0",
            "--exclude-inbound-ports",
            "15000",
            "--backend",
            backend,
        ],
    );
    assert!(ok, "{out}");

    // The application is up once it takes a connection.
    let probe =
        format!("import socket; socket.create_connection(('127.0.0.1', {app_port}), timeout=1)");
    let up = (0..200).any(|_| {
        exec(&pod, "python3", &["-c", &probe]).0 || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            false
        }
    });
    assert!(up, "the application never came up");

    // As another user, so the rules take its connections.
    let as_nobody = |program: &str, args: &[&str]| {
        let base = [
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            program,
        ];
        exec(&pod, "setpriv", &[&base[..], args].concat())
    };
    let (_, status) = as_nobody(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--retry",
            "20",
            "--retry-connrefused",
            "--retry-delay",
            "0",
            "--max-time",
            "20",
            "http://reviews:9080/",
        ],
    );
    assert_eq!(
        status,
        "200",
        "{}",
        std::fs::read_to_string(tmp.path().join("pod.log")).unwrap_or_default()
    );
    let logged = std::fs::read_to_string(&access_log).unwrap_or_default();
    assert!(
        logged.contains("reviews:9080"),
        "no access log line: {logged:?}"
    );

    // Not HTTP: passed through, untouched, to where it was going.
    // (curl's telnet: what it reads, sent as it is.)
    let client = "printf hello | curl -s --max-time 10 telnet://10.96.0.99:7000";
    let (ok, out) = as_nobody("sh", &["-c", client]);
    assert!(ok && out.trim() == "echo:hello", "{out}");
    let _ = echo.wait().await;
    let _ = app.kill().await;
    drop(namespaces);
}
