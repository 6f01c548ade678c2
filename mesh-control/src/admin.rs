//! The control plane's admin endpoints, as istiod's debug and Envoy's
//! admin port offer them, on the mesh's own admin
//! ([`mesh_tower::admin`]: HTTP/1.1 and HTTP/2, plain text, with its
//! `/stats`, `/healthz`, `/` and the rest):
//!
//! - `GET /config_dump`: the configuration served (its version, the last
//!   load's errors with file and line, warnings), each class of node with
//!   the names and versions of what it is served, and every NACK a
//!   connected client holds.
//! - `GET /clients`: every connected stream, its node and, per type, the
//!   version it ACKed and its last NACK.
//! - `GET /ready`: 200 once a configuration is served, else 503.
//! - `GET /stats/prometheus`: the control plane's counters and gauges
//!   (`mesh_control_*`), in the OpenMetrics text format.

use std::time::UNIX_EPOCH;

use mesh_tower::admin::Admin;
use mesh_tower::metrics::encode_family;
use mesh_xds::resource::Protocol;
use mesh_xds::server::{AdsServer, ClientStatus};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

use crate::ControlPlane;

/// The admin of `plane` and `server`; serve it on a listener.
pub fn admin(plane: ControlPlane, server: AdsServer) -> Admin {
    let dump = (plane.clone(), server.clone());
    let clients = server.clone();
    let ready = plane.clone();
    Admin::builder(Registry::default())
        .endpoint("/config_dump", move || config_dump(&dump.0, &dump.1))
        .endpoint("/clients", move || {
            Value::Array(clients.clients().iter().map(client).collect())
        })
        .ready_when(move || ready.status().config_version.is_some())
        .collector(State { plane, server })
        .build()
}

fn config_dump(plane: &ControlPlane, server: &AdsServer) -> Value {
    let nacks: Vec<Value> = server
        .clients()
        .iter()
        .flat_map(|c| {
            c.types.iter().filter_map(|(kind, t)| {
                let nack = t.last_nack.as_ref()?;
                Some(json!({
                    "node": c.node_id,
                    "stream": c.stream,
                    "type": kind.to_string(),
                    "version": nack.version,
                    "message": nack.message,
                }))
            })
        })
        .collect();
    let mut dump = serde_json::to_value(plane.status()).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut dump {
        map.insert("nacks".into(), Value::Array(nacks));
    }
    dump
}

fn client(c: &ClientStatus) -> Value {
    let types: serde_json::Map<String, Value> = c
        .types
        .iter()
        .map(|(kind, t)| {
            let nack = t
                .last_nack
                .as_ref()
                .map(|n| json!({"version": n.version, "nonce": n.nonce, "message": n.message}));
            let status = json!({"acked_version": t.acked_version, "last_nack": nack});
            (kind.to_string(), status)
        })
        .collect();
    let since = c
        .connected_since
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    json!({
        "stream": c.stream,
        "node": c.node_id,
        "identity": c.identity,
        "protocol": protocol(c.protocol),
        "connected_since_unix": since,
        "types": types,
    })
}

fn protocol(p: Protocol) -> &'static str {
    match p {
        Protocol::StateOfTheWorld => "sotw",
        Protocol::Delta => "delta",
    }
}

/// The control plane's metrics, read at each scrape.
#[derive(Debug)]
struct State {
    plane: ControlPlane,
    server: AdsServer,
}

/// Label sets as the collector writes them.
type Labels = &'static [(&'static str, &'static str)];

impl Collector for State {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let status = self.plane.status();
        let clients = self.server.clients();
        let counters = self.plane.counters();
        let count = |p: Protocol| clients.iter().filter(|c| c.protocol == p).count() as i64;
        let nacks = clients
            .iter()
            .flat_map(|c| c.types.values())
            .filter(|t| t.last_nack.is_some())
            .count() as i64;
        let gauges =
            |samples: Vec<(Labels, i64)>| samples.into_iter().map(|(l, v)| (l, ConstGauge::new(v)));
        encode_family(
            &mut encoder,
            "mesh_control_xds_clients",
            "ADS streams connected now",
            MetricType::Gauge,
            gauges(vec![
                (&[("protocol", "sotw")], count(Protocol::StateOfTheWorld)),
                (&[("protocol", "delta")], count(Protocol::Delta)),
            ]),
        )?;
        encode_family(
            &mut encoder,
            "mesh_control_xds_rejected",
            "Types whose last response a connected client rejected",
            MetricType::Gauge,
            gauges(vec![(&[], nacks)]),
        )?;
        let loads: [(Labels, ConstCounter); 2] = [
            (
                &[("result", "applied")],
                ConstCounter::new(counters.applied),
            ),
            (
                &[("result", "rejected")],
                ConstCounter::new(counters.rejected),
            ),
        ];
        encode_family(
            &mut encoder,
            "mesh_control_config_loads",
            "Loads of the configuration directory, by outcome",
            MetricType::Counter,
            loads,
        )?;
        encode_family(
            &mut encoder,
            "mesh_control_config_errors",
            "Errors of the last load: non-zero while the previous configuration is served",
            MetricType::Gauge,
            gauges(vec![(&[], status.load_errors.len() as i64)]),
        )?;
        encode_family(
            &mut encoder,
            "mesh_control_node_classes",
            "Kinds of node (shape, namespace, labels) served",
            MetricType::Gauge,
            gauges(vec![(&[], status.nodes.len() as i64)]),
        )
    }
}
