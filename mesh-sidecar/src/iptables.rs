//! `mesh-sidecar iptables`: the NAT rules Istio's init container installs
//! (`istio-iptables`), so that a pod's TCP goes through its sidecar
//! without the application knowing: outbound connections are redirected
//! to the outbound listener, except the sidecar's own (its user id) and
//! those to 127.0.0.1; inbound connections to the application's ports are
//! redirected to the inbound listener. `--clean` removes them. The rules
//! are written by [`Rules::commands`], pure, and run with `iptables`.

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

/// A rule that could not be installed or removed.
#[derive(Debug, thiserror::Error)]
pub enum IptablesError {
    /// `iptables` could not be run.
    #[error("cannot run iptables (is it installed, and are we root?): {0}")]
    Run(std::io::Error),
    /// A rule was refused.
    #[error("iptables {args} failed: {stderr}")]
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
        let mut nat = |args: &str| {
            rules.push(
                ["-t", "nat"]
                    .iter()
                    .map(|s| (*s).to_owned())
                    .chain(args.split(' ').map(str::to_owned))
                    .collect(),
            )
        };
        for chain in CHAINS {
            nat(&format!("-N {chain}"));
        }
        nat(&format!(
            "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports {}",
            self.outbound_port
        ));
        nat(&format!(
            "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports {}",
            self.inbound_port
        ));
        nat("-A PREROUTING -p tcp -j ISTIO_INBOUND");
        for port in &self.exclude_inbound_ports {
            nat(&format!("-A ISTIO_INBOUND -p tcp --dport {port} -j RETURN"));
        }
        if self.inbound_ports.is_empty() {
            nat("-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT");
        }
        for port in &self.inbound_ports {
            nat(&format!(
                "-A ISTIO_INBOUND -p tcp --dport {port} -j ISTIO_IN_REDIRECT"
            ));
        }
        nat("-A OUTPUT -p tcp -j ISTIO_OUTPUT");
        for port in &self.exclude_outbound_ports {
            nat(&format!("-A ISTIO_OUTPUT -p tcp --dport {port} -j RETURN"));
        }
        let uid = self.proxy_uid;
        // The sidecar calling its own workload by a pod address comes
        // back in; its other connections, and the workload's to loopback,
        // stay as they are.
        nat("-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN");
        nat(&format!(
            "-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --uid-owner {uid} -j ISTIO_IN_REDIRECT"
        ));
        nat(&format!(
            "-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner {uid} -j RETURN"
        ));
        nat(&format!(
            "-A ISTIO_OUTPUT -m owner --uid-owner {uid} -j RETURN"
        ));
        nat("-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN");
        for ip in &self.exclude_outbound_ips {
            let prefix = if ip.is_ipv4() { 32 } else { 128 };
            nat(&format!("-A ISTIO_OUTPUT -d {ip}/{prefix} -j RETURN"));
        }
        nat("-A ISTIO_OUTPUT -j ISTIO_REDIRECT");
        rules
    }

    /// The argument lists that remove what [`commands`](Self::commands)
    /// installs; each may fail when it is not there.
    pub fn clean_commands() -> Vec<Vec<String>> {
        let nat = |args: &str| -> Vec<String> {
            ["-t", "nat"]
                .iter()
                .map(|s| (*s).to_owned())
                .chain(args.split(' ').map(str::to_owned))
                .collect()
        };
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

    /// Installs the rules with `iptables`, first removing any left from
    /// before; stops at the first refused.
    pub fn install(&self) -> Result<(), IptablesError> {
        clean();
        for args in self.commands() {
            run(&args)?;
        }
        Ok(())
    }
}

/// Removes the rules, ignoring those not there.
pub fn clean() {
    for args in Rules::clean_commands() {
        let _ = run(&args);
    }
}

/// Runs `iptables args`.
fn run(args: &[String]) -> Result<(), IptablesError> {
    let out = Command::new("iptables")
        .args(args)
        .output()
        .map_err(IptablesError::Run)?;
    if out.status.success() {
        return Ok(());
    }
    Err(IptablesError::Refused {
        args: args.join(" "),
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
            ..rules
        };
        assert!(
            all.commands()
                .iter()
                .any(|r| r.join(" ") == "-t nat -A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT")
        );
        let clean: Vec<String> = Rules::clean_commands()
            .iter()
            .map(|r| r.join(" "))
            .collect();
        assert_eq!(clean[0], "-t nat -D PREROUTING -p tcp -j ISTIO_INBOUND");
        assert_eq!(clean.last().unwrap(), "-t nat -X ISTIO_OUTPUT");
    }
}
