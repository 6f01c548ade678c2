//! `mesh-bench`: what the mesh costs per hop, measured on one machine in
//! one run. Each [`scenario`] is set up on loopback, driven by the
//! [`load`] generator twice (at a fixed rate for latency, as Istio's
//! harness does, then closed loop for throughput), its proxies' CPU and
//! memory read from `/proc` ([`proxy`]), and torn down; the results go
//! out as markdown and JSON ([`report`]).

pub mod client;
pub mod load;
pub mod proxy;
pub mod report;
pub mod scenario;
pub mod server;

use std::time::Duration;

use load::{Load, Measured};
use report::{ProxyCost, ScenarioResult};
use scenario::{Options, Scenario, SetupError};

/// How each scenario is driven.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The latency run: a fixed rate.
    pub latency: Load,
    /// The throughput run: closed loop.
    pub saturation: Load,
    /// How often long runs say how far they are; `None` for never.
    pub progress: Option<Duration>,
}

/// Sets `scenario` up, runs `plan` against it and tears it down.
pub async fn run_scenario(scenario: Scenario, options: &Options, plan: &Plan) -> ScenarioResult {
    let mut result = ScenarioResult {
        scenario: scenario.name().to_owned(),
        ..ScenarioResult::default()
    };
    let setup = match scenario::setup(scenario, options).await {
        Ok(setup) => setup,
        Err(SetupError::Skipped(why)) => {
            result.skipped = Some(why);
            return result;
        }
        Err(SetupError::Failed(why)) => {
            result.skipped = Some(format!("failed to set up: {why}"));
            return result;
        }
    };
    let cpu = |setup: &scenario::Setup| -> Vec<Option<f64>> {
        setup.proxies.iter().map(|p| p.cpu_seconds()).collect()
    };
    let (send, uri) = (&setup.send, &setup.uri);

    let before = cpu(&setup);
    let latency = load::run(send.clone(), uri, &plan.latency, plan.progress).await;
    let between = cpu(&setup);
    let saturation = load::run(send.clone(), uri, &plan.saturation, plan.progress).await;
    let after = cpu(&setup);

    // The warm-up's CPU is counted with its requests' share of the run.
    let share = |m: &Measured, load: &Load| {
        let whole = (load.warmup + load.duration).as_secs_f64();
        m.requests as f64 * whole / load.duration.as_secs_f64().max(f64::EPSILON)
    };
    result.proxies = setup
        .proxies
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let spent = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
            let at_rate = spent(before[i], between[i]);
            let saturated = spent(between[i], after[i]);
            let sent = share(&latency, &plan.latency);
            let sent_saturated = share(&saturation, &plan.saturation);
            ProxyCost {
                name: p.name.clone(),
                cpu_seconds_per_1000: at_rate.filter(|_| sent > 0.0).map(|c| c * 1000.0 / sent),
                requests_per_cpu_second: saturated.filter(|c| *c > 0.0).map(|c| sent_saturated / c),
                peak_rss_kib: p.peak_rss_kib(),
            }
        })
        .collect();
    result.latency = Some(latency);
    result.saturation = Some(saturation);
    result
}
