//! `mesh-sidecar iptables`: the NAT rules Istio's init container installs
//! (`istio-iptables`), so that a pod's TCP goes through its sidecar
//! without the application knowing: outbound connections are redirected
//! to the outbound listener, except the sidecar's own (its user id) and
//! those to 127.0.0.1; inbound connections to the application's ports are
//! redirected to the inbound listener. `--clean` removes them. The rules
//! are written by [`Rules::commands`] for `iptables` and by
//! [`Rules::nft_script`] for `nft` (the same rules, in a table `ip mesh`
//! of their own), pure, and run with whichever [`Backend`] the machine
//! has.

use std::net::IpAddr;
use std::process::Command;

/// What the rules redirect, and what they leave alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// The sidecar's user id: its own connections are never redirected.
    pub proxy_uid: u32,
    /// Where outbound TCP goes (15001).
    pub outbound_port: u16,
    /// Where inbound TCP goes (15006).
    pub inbound_port: u16,
    /// The inbound ports redirected; empty for every port.
    pub inbound_ports: Vec<u16>,
    /// Inbound ports never redirected (the admin's, say).
    pub exclude_inbound_ports: Vec<u16>,
    /// Outbound destination ports never redirected.
    pub exclude_outbound_ports: Vec<u16>,
    /// Outbound destinations never redirected.
    pub exclude_outbound_ips: Vec<IpAddr>,
}

/// The chains the rules live in, Istio's names.
const CHAINS: [&str; 4] = [
    "ISTIO_INBOUND",
    "ISTIO_REDIRECT",
    "ISTIO_IN_REDIRECT",
    "ISTIO_OUTPUT",
];

/// The tool the rules are installed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `iptables` (legacy or nft-backed).
    Iptables,
    /// `nft`, where iptables is absent.
    Nft,
}

impl Backend {
    /// `iptables` if the machine has it, else `nft`.
    pub fn detect() -> Self {
        let has_iptables = Command::new("iptables")
            .arg("-V")
            .output()
            .is_ok_and(|out| out.status.success());
        if has_iptables {
            Backend::Iptables
        } else {
            Backend::Nft
        }
    }
}

/// The nftables table the rules live in.
const NFT_TABLE: &str = "mesh";

/// A rule that could not be installed or removed.
#[derive(Debug, thiserror::Error)]
pub enum IptablesError {
    /// `iptables` or `nft` could not be run.
    #[error("cannot run {program} (is it installed, and are we root?): {source}")]
    Run {
        /// Which.
        program: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// A rule was refused.
    #[error("{args} failed: {stderr}")]
    Refused {
        /// The rule's arguments.
        args: String,
        /// What iptables said.
        stderr: String,
    },
}

impl Rules {
    /// The `iptables` argument lists that install the rules, in order.
    pub fn commands(&self) -> Vec<Vec<String>> {
        let mut rules: Vec<Vec<String>> = Vec::new();
        let mut add = |args: &str| rules.push(nat(args));
        for chain in CHAINS {
            add(&format!("-N {chain}"));
        }
        add(&format!(
            "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports {}",
            self.outbound_port
        ));
        add(&format!(
            "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports {}",
            self.inbound_port
        ));
        add("-A PREROUTING -p tcp -j ISTIO_INBOUND");
        for port in &self.exclude_inbound_ports {
            add(&format!("-A ISTIO_INBOUND -p tcp --dport {port} -j RETURN"));
        }
        if self.inbound_ports.is_empty() {
            add("-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT");
        }
        for port in &self.inbound_ports {
            add(&format!(
                "-A ISTIO_INBOUND -p tcp --dport {port} -j ISTIO_IN_REDIRECT"
            ));
        }
        add("-A OUTPUT -p tcp -j ISTIO_OUTPUT");
        for port in &self.exclude_outbound_ports {
            add(&format!("-A ISTIO_OUTPUT -p tcp --dport {port} -j RETURN"));
        }
        let uid = self.proxy_uid;
        // The sidecar calling its own workload by a pod address comes
        // back in; its other connections, and the workload's to loopback,
        // stay as they are.
        add("-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN");
        add(&format!(
            "-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --uid-owner {uid} -j ISTIO_IN_REDIRECT"
        ));
        add(&format!(
            "-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner {uid} -j RETURN"
        ));
        add(&format!(
            "-A ISTIO_OUTPUT -m owner --uid-owner {uid} -j RETURN"
        ));
        add("-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN");
        for ip in &self.exclude_outbound_ips {
            let prefix = if ip.is_ipv4() { 32 } else { 128 };
            add(&format!("-A ISTIO_OUTPUT -d {ip}/{prefix} -j RETURN"));
        }
        add("-A ISTIO_OUTPUT -j ISTIO_REDIRECT");
        rules
    }

    /// The argument lists that remove what [`commands`](Self::commands)
    /// installs; each may fail when it is not there.
    pub fn clean_commands() -> Vec<Vec<String>> {
        let mut rules = vec![
            nat("-D PREROUTING -p tcp -j ISTIO_INBOUND"),
            nat("-D OUTPUT -p tcp -j ISTIO_OUTPUT"),
        ];
        for chain in CHAINS {
            rules.push(nat(&format!("-F {chain}")));
        }
        for chain in CHAINS {
            rules.push(nat(&format!("-X {chain}")));
        }
        rules
    }

    /// The same rules as an `nft -f` script: a table of their own.
    pub fn nft_script(&self) -> String {
        let uid = self.proxy_uid;
        let mut inbound = String::new();
        for port in &self.exclude_inbound_ports {
            inbound.push_str(&format!("    tcp dport {port} return\n"));
        }
        if self.inbound_ports.is_empty() {
            inbound.push_str("    meta l4proto tcp jump istio_in_redirect\n");
        }
        for port in &self.inbound_ports {
            inbound.push_str(&format!("    tcp dport {port} jump istio_in_redirect\n"));
        }
        let mut output = String::new();
        for port in &self.exclude_outbound_ports {
            output.push_str(&format!("    tcp dport {port} return\n"));
        }
        output.push_str("    oifname \"lo\" ip saddr 127.0.0.6 return\n");
        output.push_str(&format!(
            "    oifname \"lo\" ip daddr != 127.0.0.1 meta skuid {uid} jump istio_in_redirect\n"
        ));
        output.push_str(&format!("    oifname \"lo\" meta skuid != {uid} return\n"));
        output.push_str(&format!("    meta skuid {uid} return\n"));
        output.push_str("    ip daddr 127.0.0.1 return\n");
        for ip in self.exclude_outbound_ips.iter().filter(|ip| ip.is_ipv4()) {
            output.push_str(&format!("    ip daddr {ip} return\n"));
        }
        output.push_str("    jump istio_redirect\n");
        let chain = |name: &str, body: &str| format!("  chain {name} {{\n{body}  }}\n");
        [
            format!("table ip {NFT_TABLE} {{\n"),
            chain(
                "prerouting",
                "    type nat hook prerouting priority dstnat; policy accept;\n    meta l4proto tcp jump istio_inbound\n",
            ),
            chain(
                "output",
                "    type nat hook output priority -100; policy accept;\n    meta l4proto tcp jump istio_output\n",
            ),
            chain(
                "istio_redirect",
                &format!("    meta l4proto tcp redirect to :{}\n", self.outbound_port),
            ),
            chain(
                "istio_in_redirect",
                &format!("    meta l4proto tcp redirect to :{}\n", self.inbound_port),
            ),
            chain("istio_inbound", &inbound),
            chain("istio_output", &output),
            "}\n".to_owned(),
        ]
        .concat()
    }

    /// Installs the rules with `backend`, first removing any left from
    /// before; stops at the first refused.
    pub fn install(&self, backend: Backend) -> Result<(), IptablesError> {
        clean(backend);
        match backend {
            Backend::Iptables => {
                for args in self.commands() {
                    iptables(&args)?;
                }
                Ok(())
            }
            Backend::Nft => nft(&["-f", "-"], Some(&self.nft_script())),
        }
    }
}

/// The arguments of one rule of the `nat` table, written as `iptables`
/// takes them after `-t nat`.
fn nat(args: &str) -> Vec<String> {
    ["-t", "nat"]
        .into_iter()
        .chain(args.split(' '))
        .map(str::to_owned)
        .collect()
}

/// Removes the rules, ignoring those not there.
pub fn clean(backend: Backend) {
    match backend {
        Backend::Iptables => {
            for args in Rules::clean_commands() {
                let _ = iptables(&args);
            }
        }
        Backend::Nft => {
            let _ = nft(&["delete", "table", "ip", NFT_TABLE], None);
        }
    }
}

/// Runs `iptables args`.
fn iptables(args: &[String]) -> Result<(), IptablesError> {
    let run = |source| IptablesError::Run {
        program: "iptables",
        source,
    };
    let out = Command::new("iptables").args(args).output().map_err(run)?;
    refused(out, || format!("iptables {}", args.join(" ")))
}

/// Runs `nft args`, with `input` on its standard input.
fn nft(args: &[&str], input: Option<&str>) -> Result<(), IptablesError> {
    use std::io::Write;
    use std::process::Stdio;
    let run = |source| IptablesError::Run {
        program: "nft",
        source,
    };
    let mut child = Command::new("nft")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(run)?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(input.as_bytes()).map_err(run)?;
    }
    let out = child.wait_with_output().map_err(run)?;
    refused(out, || format!("nft {}", args.join(" ")))
}

/// `Ok` if `out` says its command succeeded, else what it said.
fn refused(out: std::process::Output, args: impl Fn() -> String) -> Result<(), IptablesError> {
    if out.status.success() {
        return Ok(());
    }
    Err(IptablesError::Refused {
        args: args(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_are_istios() {
        let rules = Rules {
            proxy_uid: 1337,
            outbound_port: 15001,
            inbound_port: 15006,
            inbound_ports: vec![9080],
            exclude_inbound_ports: vec![15000],
            exclude_outbound_ports: vec![],
            exclude_outbound_ips: vec!["10.0.0.9".parse().unwrap()],
        };
        let lines: Vec<String> = rules.commands().iter().map(|r| r.join(" ")).collect();
        let want = [
            "-t nat -N ISTIO_INBOUND",
            "-t nat -N ISTIO_REDIRECT",
            "-t nat -N ISTIO_IN_REDIRECT",
            "-t nat -N ISTIO_OUTPUT",
            "-t nat -A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
            "-t nat -A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006",
            "-t nat -A PREROUTING -p tcp -j ISTIO_INBOUND",
            "-t nat -A ISTIO_INBOUND -p tcp --dport 15000 -j RETURN",
            "-t nat -A ISTIO_INBOUND -p tcp --dport 9080 -j ISTIO_IN_REDIRECT",
            "-t nat -A OUTPUT -p tcp -j ISTIO_OUTPUT",
            "-t nat -A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN",
            "-t nat -A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT",
            "-t nat -A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN",
            "-t nat -A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN",
            "-t nat -A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN",
            "-t nat -A ISTIO_OUTPUT -d 10.0.0.9/32 -j RETURN",
            "-t nat -A ISTIO_OUTPUT -j ISTIO_REDIRECT",
        ];
        assert_eq!(lines, want);
        let all = Rules {
            inbound_ports: vec![],
            ..rules.clone()
        };
        assert!(
            all.commands()
                .iter()
                .any(|r| r.join(" ") == "-t nat -A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT")
        );
        let script = rules.nft_script();
        for line in [
            "table ip mesh {",
            "    type nat hook output priority -100; policy accept;",
            "    meta l4proto tcp redirect to :15001",
            "    meta l4proto tcp redirect to :15006",
            "    tcp dport 15000 return",
            "    tcp dport 9080 jump istio_in_redirect",
            "    oifname \"lo\" ip daddr != 127.0.0.1 meta skuid 1337 jump istio_in_redirect",
            "    oifname \"lo\" meta skuid != 1337 return",
            "    ip daddr 10.0.0.9 return",
            "    jump istio_redirect",
        ] {
            assert!(
                script.lines().any(|l| l == line),
                "{line:?} not in\n{script}"
            );
        }
        let clean: Vec<String> = Rules::clean_commands()
            .iter()
            .map(|r| r.join(" "))
            .collect();
        assert_eq!(clean[0], "-t nat -D PREROUTING -p tcp -j ISTIO_INBOUND");
        assert_eq!(clean.last().unwrap(), "-t nat -X ISTIO_OUTPUT");
    }
}
