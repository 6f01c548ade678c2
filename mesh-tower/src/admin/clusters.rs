//! `/clusters`: each client's clusters and endpoints, in the shape of
//! Envoy's admin `/clusters`: one `CLUSTER::HOST::STAT::VALUE` line per
//! fact (`rq_active`, `rq_error`, `rq_success`, `rq_total`,
//! `health_flags`, `weight`, `region`, `zone`, `sub_zone`, `priority`),
//! or with `?format=json` Envoy's `ClusterStatuses` JSON.

use std::fmt::Write;

use serde_json::{Value, json};

use crate::balance::{EndpointState, EndpointStatus};
use crate::client::{ClientStatus, ClusterStatus};

/// The text form, for every client (a cluster's `mesh_client` line names
/// its client).
pub(super) fn text(clients: &[(String, ClientStatus)]) -> String {
    let mut out = String::new();
    for (client, status) in clients {
        for c in &status.clusters {
            cluster_text(&mut out, client, c);
        }
    }
    out
}

fn cluster_text(out: &mut String, client: &str, c: &ClusterStatus) {
    let name = &c.name;
    let _ = writeln!(out, "{name}::observability_name::{name}");
    let _ = writeln!(out, "{name}::mesh_client::{client}");
    let limits = &c.circuit_breakers;
    let _ = writeln!(
        out,
        "{name}::default_priority::max_pending_requests::{}",
        limits.max_pending_requests
    );
    let _ = writeln!(
        out,
        "{name}::default_priority::max_requests::{}",
        limits.max_requests
    );
    let _ = writeln!(out, "{name}::added_via_api::true");
    if let Some(error) = &c.resolve_error {
        let _ = writeln!(out, "{name}::resolve_error::{error}");
    }
    for e in &c.endpoints {
        let host = format!("{name}::{}", e.endpoint.addr);
        let locality = &e.endpoint.locality;
        let facts: [(&str, String); 11] = [
            ("rq_active", e.active.to_string()),
            ("rq_error", e.errors.to_string()),
            ("rq_success", success(e).to_string()),
            ("rq_total", e.requests.to_string()),
            ("health_flags", e.state.envoy_health_flags().to_owned()),
            ("weight", e.endpoint.weight.to_string()),
            ("region", locality.region.clone()),
            ("zone", locality.zone.clone()),
            ("sub_zone", locality.sub_zone.clone()),
            ("priority", e.endpoint.priority.to_string()),
            ("times_ejected", e.times_ejected.to_string()),
        ];
        for (stat, value) in facts {
            let _ = writeln!(out, "{host}::{stat}::{value}");
        }
    }
}

/// Requests that ended and did not fail.
fn success(e: &EndpointStatus) -> u64 {
    e.requests
        .saturating_sub(e.errors)
        .saturating_sub(u64::from(e.active))
}

/// The JSON form: Envoy's `ClusterStatuses`.
pub(super) fn json(clients: &[(String, ClientStatus)]) -> Value {
    let statuses: Vec<Value> = clients
        .iter()
        .flat_map(|(client, status)| status.clusters.iter().map(move |c| cluster_json(client, c)))
        .collect();
    json!({ "cluster_statuses": statuses })
}

fn cluster_json(client: &str, c: &ClusterStatus) -> Value {
    let hosts: Vec<Value> = c.endpoints.iter().map(host_json).collect();
    json!({
        "name": c.name,
        "mesh_client": client,
        "added_via_api": true,
        "circuit_breakers": {
            "thresholds": [{
                "max_requests": c.circuit_breakers.max_requests,
                "max_pending_requests": c.circuit_breakers.max_pending_requests,
            }]
        },
        "resolve_error": c.resolve_error,
        "host_statuses": hosts,
    })
}

fn host_json(e: &EndpointStatus) -> Value {
    let counter = |name: &str, value: u64| json!({ "name": name, "value": value.to_string() });
    let eds = match e.state {
        EndpointState::Unhealthy => "UNHEALTHY",
        EndpointState::Draining => "DRAINING",
        EndpointState::Healthy | EndpointState::Ejected => "HEALTHY",
    };
    let mut health = json!({ "eds_health_status": eds });
    if e.state == EndpointState::Ejected {
        health["failed_outlier_check"] = json!(true);
    }
    let locality = &e.endpoint.locality;
    json!({
        "address": {
            "socket_address": {
                "address": e.endpoint.addr.ip().to_string(),
                "port_value": e.endpoint.addr.port(),
            }
        },
        "stats": [
            counter("rq_error", e.errors),
            counter("rq_success", success(e)),
            counter("rq_total", e.requests),
            { "name": "rq_active", "type": "GAUGE", "value": e.active.to_string() },
        ],
        "health_status": health,
        "weight": e.endpoint.weight,
        "priority": e.endpoint.priority,
        "locality": {
            "region": locality.region,
            "zone": locality.zone,
            "sub_zone": locality.sub_zone,
        },
        "times_ejected": e.times_ejected,
    })
}
