//! A proxy in its own process (a `mesh-sidecar`), started pinned to the
//! CPUs asked for (`taskset`), and what it costs as the kernel counts it:
//! CPU seconds (`/proc/PID/stat`'s user and system time) and peak
//! resident memory (`/proc/PID/status`'s `VmHWM`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a proxy has to say where it listens.
const STARTUP: Duration = Duration::from_secs(20);

/// Why a proxy could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// It could not be spawned.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// It exited, or said nothing, before saying where it listens.
    #[error("{name} did not start: {log}")]
    Startup {
        /// Its name.
        name: String,
        /// What it logged.
        log: String,
    },
}

/// A running proxy, killed when dropped.
#[derive(Debug)]
pub struct Proxy {
    /// Its name in the results.
    pub name: String,
    child: Child,
    /// Its listeners, by the name it announces them with.
    pub listeners: BTreeMap<String, SocketAddr>,
    log: PathBuf,
}

impl Proxy {
    /// Starts `program` with `args` pinned to `cpus` (when `taskset` is
    /// there and `cpus` is given), its log in `dir/NAME.log`, and waits
    /// until it has announced its listeners (`NAME ADDR` lines on
    /// standard output, the admin last), as `mesh-sidecar` does.
    pub async fn start(
        name: &str,
        program: &Path,
        args: &[String],
        cpus: Option<&str>,
        dir: &Path,
    ) -> Result<Self, ProxyError> {
        let mut proxy = Self::spawn(name, program, args, cpus, dir)?;
        let stdout = proxy.child.stdout.take().ok_or_else(|| proxy.failed())?;
        let mut lines = BufReader::new(stdout).lines();
        while !proxy.listeners.contains_key("admin") {
            let line = tokio::time::timeout(STARTUP, lines.next_line()).await;
            let Ok(Ok(Some(line))) = line else {
                return Err(proxy.failed());
            };
            if let Some((what, addr)) = line.split_once(' ')
                && let Ok(addr) = addr.parse()
            {
                proxy.listeners.insert(what.to_owned(), addr);
            }
        }
        Ok(proxy)
    }

    /// As [`start`](Self::start), for a proxy that announces nothing:
    /// ready once `listener` (named `what`) takes connections.
    pub async fn start_on(
        name: &str,
        program: &Path,
        args: &[String],
        cpus: Option<&str>,
        dir: &Path,
        (what, listener): (&str, SocketAddr),
    ) -> Result<Self, ProxyError> {
        let mut proxy = Self::spawn(name, program, args, cpus, dir)?;
        let deadline = tokio::time::Instant::now() + STARTUP;
        while tokio::net::TcpStream::connect(listener).await.is_err() {
            let exited = proxy.child.try_wait().ok().flatten().is_some();
            if exited || tokio::time::Instant::now() > deadline {
                return Err(proxy.failed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        proxy.listeners.insert(what.to_owned(), listener);
        Ok(proxy)
    }

    fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        cpus: Option<&str>,
        dir: &Path,
    ) -> Result<Self, ProxyError> {
        let log = dir.join(format!("{name}.log"));
        let mut command = match cpus.filter(|_| taskset()) {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpus]).arg(program);
                c
            }
            None => Command::new(program),
        };
        let spawn = |source| ProxyError::Spawn {
            program: program.display().to_string(),
            source,
        };
        let stderr = std::fs::File::create(&log).map_err(spawn)?;
        let child = command
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(spawn)?;
        Ok(Self {
            name: name.to_owned(),
            child,
            listeners: BTreeMap::new(),
            log,
        })
    }

    /// Why it did not start: what it logged.
    fn failed(&self) -> ProxyError {
        ProxyError::Startup {
            name: self.name.clone(),
            log: self.log(),
        }
    }

    /// The listener it announced as `name`.
    pub fn listener(&self, name: &str) -> Option<SocketAddr> {
        self.listeners.get(name).copied()
    }

    /// What it has logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The CPU seconds it has used so far, user and system; `None` off
    /// Linux or once it has exited.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let pid = self.child.id()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command may hold spaces: fields count from after its `)`.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line.
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(ticks as f64 / clock_ticks())
    }

    /// Its peak resident memory so far, in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    }
}

/// Whether `taskset` can be run.
fn taskset() -> bool {
    std::process::Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`; 100, Linux's
/// on every common platform, when that cannot be asked).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// `program` on the `PATH`, if it is there.
pub fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// A free port of 127.0.0.1, for a proxy that must be told its port.
pub fn free_port() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// The `mesh-sidecar` binary: `explicit`, else beside this program (or
/// its parent directory, for a test binary in `deps/`).
pub fn find_sidecar(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return path.exists().then(|| path.to_owned());
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir, dir.parent()?]
        .into_iter()
        .map(|d| d.join("mesh-sidecar"))
        .find(|p| p.exists())
}
