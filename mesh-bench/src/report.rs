//! A run's results: each scenario's latency at a fixed rate, its
//! throughput at saturation and what its proxies cost; as JSON (`--out`),
//! as markdown tables, and two runs compared.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::load::Measured;

/// One run of the tool.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The machine it ran on.
    pub machine: Machine,
    /// How it was run.
    pub plan: Plan,
    /// Each scenario's results, in the tables' order.
    pub scenarios: Vec<ScenarioResult>,
}

/// The machine a run measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Its CPU model, as `/proc/cpuinfo` names it.
    pub cpu: String,
    /// How many CPUs it has.
    pub cpus: usize,
    /// The CPUs proxies were pinned to, if any.
    pub proxy_cpus: Option<String>,
    /// Each proxy's worker threads.
    pub proxy_threads: usize,
}

impl Machine {
    /// This machine.
    pub fn here(proxy_cpus: Option<String>, proxy_threads: usize) -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        Self {
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            proxy_cpus,
            proxy_threads,
        }
    }
}

/// How a run was made.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// `http1` or `h2c`.
    pub protocol: String,
    /// Request and response bodies, bytes.
    pub payload: usize,
    /// Connections of the latency run.
    pub connections: usize,
    /// Requests per second of the latency run.
    pub rate: f64,
    /// Connections of the saturation run.
    pub saturation_connections: usize,
    /// Seconds each run is counted.
    pub seconds: f64,
}

/// One scenario's results.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Its name.
    pub scenario: String,
    /// Why it was not run, if it was not.
    pub skipped: Option<String>,
    /// At the plan's rate.
    pub latency: Option<Measured>,
    /// At saturation.
    pub saturation: Option<Measured>,
    /// What each of its proxies cost.
    pub proxies: Vec<ProxyCost>,
}

/// What one proxy cost, as the kernel counted it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProxyCost {
    /// Its name (`outbound`, `inbound`).
    pub name: String,
    /// CPU seconds per 1,000 requests in the latency run.
    pub cpu_seconds_per_1000: Option<f64>,
    /// Requests per CPU second at saturation.
    pub requests_per_cpu_second: Option<f64>,
    /// Peak resident memory at the end, KiB.
    pub peak_rss_kib: Option<u64>,
}

impl ScenarioResult {
    /// The proxies' CPU seconds per 1,000 requests, summed.
    fn cpu_per_1000(&self) -> Option<f64> {
        if self.proxies.is_empty() {
            return None;
        }
        self.proxies.iter().map(|p| p.cpu_seconds_per_1000).sum()
    }

    /// The proxies' peak memory, summed.
    fn rss_kib(&self) -> Option<u64> {
        if self.proxies.is_empty() {
            return None;
        }
        self.proxies.iter().map(|p| p.peak_rss_kib).sum()
    }

    /// The proxies' requests per CPU second at saturation, over all of
    /// them (requests over their CPU seconds together).
    fn per_core(&self) -> Option<f64> {
        let inverse: Option<f64> = self
            .proxies
            .iter()
            .map(|p| p.requests_per_cpu_second.map(|r| 1.0 / r))
            .sum();
        inverse.filter(|i| *i > 0.0).map(|i| 1.0 / i)
    }
}

impl Run {
    fn get(&self, name: &str) -> Option<&ScenarioResult> {
        self.scenarios.iter().find(|s| s.scenario == name)
    }

    /// The results as markdown: the latency table (percentiles and what
    /// each adds over `direct`), the throughput table (requests per
    /// second, as a share of `direct`'s, and the proxies' cost), and the
    /// scenarios skipped with why.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let plan = &self.plan;
        let m = &self.machine;
        let _ = writeln!(
            out,
            "{} × {}; {} B, {}; proxies: {} thread(s){}\n",
            m.cpus,
            m.cpu,
            plan.payload,
            plan.protocol,
            m.proxy_threads,
            m.proxy_cpus
                .as_ref()
                .map(|c| format!(" on CPU {c}"))
                .unwrap_or_default()
        );
        let direct = self.get("direct");
        let base = direct.and_then(|d| d.latency.as_ref()).map(|l| l.latency);
        let _ = writeln!(
            out,
            "Latency at {} requests/s over {} connections, µs (added over `direct` in brackets):\n",
            plan.rate, plan.connections
        );
        out.push_str("| scenario | requests | failed | p50 | p90 | p99 | p99.9 |\n|---|---|---|---|---|---|---|\n");
        for s in &self.scenarios {
            let Some(l) = &s.latency else { continue };
            let cell = |v: u64, b: Option<u64>| match b {
                Some(b) if s.scenario != "direct" => {
                    format!("{v} ({:+})", v as i64 - b as i64)
                }
                _ => v.to_string(),
            };
            let q = l.latency;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                s.scenario,
                l.requests,
                l.failed,
                cell(q.p50, base.map(|b| b.p50)),
                cell(q.p90, base.map(|b| b.p90)),
                cell(q.p99, base.map(|b| b.p99)),
                cell(q.p999, base.map(|b| b.p999)),
            );
        }
        let floor = direct
            .and_then(|d| d.saturation.as_ref())
            .map(|s| s.requests_per_second);
        let _ = writeln!(
            out,
            "\nSaturation over {} connections:\n",
            plan.saturation_connections
        );
        out.push_str("| scenario | requests/s | of `direct` | failed | proxies' CPU s per 1,000 requests | proxies' requests per CPU second | proxies' peak RSS |\n|---|---|---|---|---|---|---|\n");
        for s in &self.scenarios {
            let Some(sat) = &s.saturation else { continue };
            let share = floor.filter(|f| *f > 0.0).map_or("-".into(), |f| {
                format!("{:.2}", sat.requests_per_second / f)
            });
            let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            let _ = writeln!(
                out,
                "| {} | {:.0} | {} | {} | {} | {} | {} |",
                s.scenario,
                sat.requests_per_second,
                share,
                sat.failed,
                opt(s.cpu_per_1000().map(|c| format!("{c:.3}"))),
                opt(s.per_core().map(|r| format!("{r:.0}"))),
                opt(s.rss_kib().map(|k| format!("{:.1} MiB", k as f64 / 1024.0))),
            );
        }
        let skipped: Vec<_> = self
            .scenarios
            .iter()
            .filter_map(|s| s.skipped.as_ref().map(|why| (&s.scenario, why)))
            .collect();
        if !skipped.is_empty() {
            out.push('\n');
            for (name, why) in skipped {
                let _ = writeln!(out, "- `{name}` {why}");
            }
        }
        out
    }

    /// What changed from `before` to this run, scenario by scenario: the
    /// saturated requests per second and the p99 at the fixed rate.
    pub fn compare(&self, before: &Run) -> String {
        let mut out = String::from(
            "| scenario | requests/s before | after | change | p99 µs before | after | change |\n|---|---|---|---|---|---|---|\n",
        );
        for after in &self.scenarios {
            let Some(old) = before.get(&after.scenario) else {
                continue;
            };
            let rps = |s: &ScenarioResult| s.saturation.as_ref().map(|m| m.requests_per_second);
            let p99 = |s: &ScenarioResult| s.latency.as_ref().map(|m| m.latency.p99 as f64);
            let change = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) if a > 0.0 => format!("{:+.1} %", (b / a - 1.0) * 100.0),
                _ => "-".into(),
            };
            let show = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}"));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                after.scenario,
                show(rps(old)),
                show(rps(after)),
                change(rps(old), rps(after)),
                show(p99(old)),
                show(p99(after)),
                change(p99(old), p99(after)),
            );
        }
        out
    }
}
