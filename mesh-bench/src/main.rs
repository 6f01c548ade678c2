//! `mesh-bench`: runs the scenarios and prints their tables
//! (`mesh-bench run`), or compares two runs' JSON
//! (`mesh-bench compare A.json B.json`).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mesh_bench::client::Protocol;
use mesh_bench::load::Load;
use mesh_bench::report::{Machine, Run};
use mesh_bench::scenario::{Options, Scenario};
use mesh_bench::{Plan, run_scenario};

#[derive(Parser)]
#[command(
    version,
    about = "The mesh's cost per hop, side by side with bare hyper"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the scenarios: latency at a fixed rate, then saturation.
    Run(RunArgs),
    /// Prints what changed between two runs' JSON.
    Compare {
        /// The earlier run.
        before: PathBuf,
        /// The later run.
        after: PathBuf,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// The scenarios to run; all by default.
    #[arg(long = "scenario", value_enum)]
    scenarios: Vec<Scenario>,
    /// The HTTP version of the load.
    #[arg(long, value_enum, default_value_t = Protocol::Http1)]
    protocol: Protocol,
    /// Request and response body size, bytes.
    #[arg(long, default_value_t = 1024)]
    payload: usize,
    /// Connections of the latency run.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Requests per second of the latency run.
    #[arg(long, default_value_t = 1000.0, value_parser = parse_rate)]
    rate: f64,
    /// Connections of the saturation run.
    #[arg(long, default_value_t = 64)]
    saturation_connections: usize,
    /// How long each run is counted.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// How long each run sends before it counts.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// The CPUs proxies are pinned to (`taskset -c`); the last CPU by
    /// default, `none` for no pinning.
    #[arg(long)]
    cpus: Option<String>,
    /// Each proxy's worker threads.
    #[arg(long, default_value_t = 1)]
    proxy_threads: usize,
    /// The `mesh-sidecar` binary, if not beside this one.
    #[arg(long)]
    sidecar: Option<PathBuf>,
    /// The Envoy binary, if not `MESH_ENVOY`, `.ci/envoy-venv`'s or on
    /// the `PATH`.
    #[arg(long)]
    envoy: Option<PathBuf>,
    /// Where to write the results as JSON.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// A rate of requests per second: a positive number.
fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "{s:?} is not a positive number of requests per second"
        )),
    }
}

/// `10s`, `500ms`, `2m`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration"))?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?}: the unit must be ms, s or m")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run(args),
        Command::Compare { before, after } => {
            let read = |p: &PathBuf| -> anyhow::Result<Run> {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read {}", p.display()))?;
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a mesh-bench run", p.display()))
            };
            let (before, after) = (read(&before)?, read(&after)?);
            write!(std::io::stdout(), "{}", after.compare(&before))?;
            Ok(())
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let cpus = match args.cpus.as_deref() {
        Some("none") => None,
        Some(list) => Some(list.to_owned()),
        None => std::thread::available_parallelism()
            .ok()
            .map(|n| (n.get() - 1).to_string()),
    };
    let options = Options {
        protocol: args.protocol,
        sidecar: args.sidecar,
        envoy: args.envoy,
        cpus: cpus.clone(),
        proxy_threads: args.proxy_threads,
    };
    let load = |connections, rate| Load {
        connections,
        rate,
        duration: args.duration,
        warmup: args.warmup,
        payload: args.payload,
    };
    let plan = Plan {
        latency: load(args.connections, Some(args.rate)),
        saturation: load(args.saturation_connections, None),
        progress: (args.duration >= Duration::from_secs(10)).then_some(Duration::from_secs(5)),
    };
    let scenarios = if args.scenarios.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.scenarios
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut results = Run {
        machine: Machine::here(cpus, args.proxy_threads),
        plan: mesh_bench::report::Plan {
            protocol: format!("{:?}", args.protocol).to_lowercase(),
            payload: args.payload,
            connections: args.connections,
            rate: args.rate,
            saturation_connections: args.saturation_connections,
            seconds: args.duration.as_secs_f64(),
        },
        scenarios: Vec::new(),
    };
    for scenario in scenarios {
        writeln!(std::io::stderr(), "{} …", scenario.name())?;
        let result = runtime.block_on(run_scenario(scenario, &options, &plan));
        results.scenarios.push(result);
    }
    write!(std::io::stdout(), "{}", results.markdown())?;
    if let Some(out) = &args.out {
        let json = serde_json::to_string_pretty(&results)?;
        std::fs::write(out, json).with_context(|| format!("cannot write {}", out.display()))?;
    }
    Ok(())
}
