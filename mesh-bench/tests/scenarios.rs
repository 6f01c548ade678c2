//! Each scenario run for about a second at a low rate, on loopback: the
//! results' shape (counts add up, histograms hold every request, the
//! proxies' costs are read), a scenario without its parts skipped with
//! why, and the tables and JSON written and compared. No timing is
//! asserted.

use std::path::PathBuf;
use std::time::Duration;

use mesh_bench::client::Protocol;
use mesh_bench::load::{Load, Measured};
use mesh_bench::report::{Machine, Plan as RunPlan, Run};
use mesh_bench::scenario::{Options, Scenario};
use mesh_bench::{Plan, run_scenario};

fn plan() -> Plan {
    let load = |connections, rate| Load {
        connections,
        rate,
        duration: Duration::from_millis(800),
        warmup: Duration::from_millis(200),
        payload: 1024,
    };
    Plan {
        latency: load(2, Some(50.0)),
        saturation: load(4, None),
        progress: None,
    }
}

fn options(protocol: Protocol, sidecar: Option<PathBuf>) -> Options {
    Options {
        protocol,
        sidecar,
        envoy: None,
        cpus: None,
        proxy_threads: 1,
    }
}

/// Counts that add up, and a histogram holding every request.
fn well_formed(m: &Measured, what: &str) {
    assert!(m.requests > 0, "{what}: nothing counted: {m:?}");
    assert_eq!(m.ok + m.failed, m.requests, "{what}: {m:?}");
    assert_eq!(m.failed, 0, "{what}: {m:?}");
    assert_eq!(m.latency.samples, m.requests, "{what}: {m:?}");
    let l = m.latency;
    assert!(
        0 < l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max,
        "{what}: {l:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_and_reports_its_shape() {
    let require = std::env::var_os("MESH_REQUIRE_PEERS").is_some();
    let mut run = Run {
        machine: Machine::here(None, 1),
        plan: RunPlan::default(),
        scenarios: Vec::new(),
    };
    for protocol in [Protocol::Http1, Protocol::H2c] {
        for scenario in Scenario::ALL {
            let what = format!("{} over {protocol:?}", scenario.name());
            let result = run_scenario(scenario, &options(protocol, None), &plan()).await;
            if let Some(why) = &result.skipped {
                // Only a peer that is not there is skipped, and never
                // where .ci/run installed the peers.
                let absent =
                    why.contains("no mesh-sidecar binary") || why.contains("not installed");
                assert!(!require && absent, "{what}: {why}");
                eprintln!("{what} {why}");
                continue;
            }
            well_formed(result.latency.as_ref().unwrap(), &what);
            well_formed(result.saturation.as_ref().unwrap(), &what);
            let names: Vec<&str> = result.proxies.iter().map(|p| p.name.as_str()).collect();
            let expected: &[&str] = match scenario {
                Scenario::Sidecar
                | Scenario::SidecarMtls
                | Scenario::Envoy
                | Scenario::EnvoyMtls => &["outbound", "inbound"],
                Scenario::Haproxy => &["haproxy"],
                _ => &[],
            };
            assert_eq!(names, expected, "{what}");
            for p in &result.proxies {
                let spent = p.cpu_seconds_per_1000.is_some_and(|c| c >= 0.0);
                assert!(spent, "{what}: {p:?}");
                assert!(p.peak_rss_kib.is_some_and(|k| k > 0), "{what}: {p:?}");
            }
            if protocol == Protocol::Http1 {
                run.scenarios.push(result);
            }
        }
    }

    // The tables name every scenario run, and the JSON reads back.
    let markdown = run.markdown();
    for s in &run.scenarios {
        assert!(
            markdown.contains(&format!("| {} |", s.scenario)),
            "{markdown}"
        );
    }
    let json = serde_json::to_string(&run).unwrap();
    let back: Run = serde_json::from_str(&json).unwrap();
    assert_eq!(back.markdown(), markdown);
    let compared = back.compare(&run);
    assert!(
        compared.contains("| direct |") && compared.contains("+0.0 %"),
        "{compared}"
    );
}

#[tokio::test]
async fn a_scenario_without_its_sidecar_is_skipped_with_why() {
    let missing = Some(PathBuf::from("/nonexistent/mesh-sidecar"));
    let result = run_scenario(
        Scenario::Sidecar,
        &options(Protocol::Http1, missing),
        &plan(),
    )
    .await;
    let why = result.skipped.clone().expect("skipped");
    assert!(why.contains("no mesh-sidecar binary"), "{why}");
    assert!(result.latency.is_none() && result.saturation.is_none());
    let run = Run {
        scenarios: vec![result],
        ..Run::default()
    };
    assert!(
        run.markdown()
            .contains("- `sidecar` no mesh-sidecar binary"),
        "{}",
        run.markdown()
    );
}

#[test]
fn compare_prints_the_change_between_two_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut before = Run::default();
    let mut result = mesh_bench::report::ScenarioResult {
        scenario: "direct".into(),
        ..Default::default()
    };
    result.saturation = Some(Measured {
        requests_per_second: 1000.0,
        ..Measured::default()
    });
    before.scenarios.push(result.clone());
    result.saturation.as_mut().unwrap().requests_per_second = 1500.0;
    let after = Run {
        scenarios: vec![result],
        ..Run::default()
    };
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    std::fs::write(&a, serde_json::to_string(&before).unwrap()).unwrap();
    std::fs::write(&b, serde_json::to_string(&after).unwrap()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mesh-bench"))
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("| direct | 1000 | 1500 | +50.0 % |"),
        "{text}"
    );
    // A file that is no run is named.
    std::fs::write(&a, "{").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mesh-bench"))
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("a.json is not a mesh-bench run"));
}

#[test]
fn a_rate_or_duration_that_cannot_be_run_is_named() {
    for (flag, value, says) in [
        (
            "--rate",
            "0",
            "not a positive number of requests per second",
        ),
        ("--duration", "5x", "the unit must be ms, s or m"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mesh-bench"))
            .args(["run", flag, value])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{stderr}");
    }
}
