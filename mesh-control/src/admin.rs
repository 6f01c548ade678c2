//! The control plane's admin endpoints, as istiod's debug and Envoy's
//! admin port offer them (HTTP/1.1 and HTTP/2, plaintext):
//!
//! - `GET /config_dump`: the configuration served (its version, the last
//!   load's errors with file and line, warnings), each class of node with
//!   the names and versions of what it is served, and every NACK a
//!   connected client holds.
//! - `GET /clients`: every connected stream, its node and, per type, the
//!   version it ACKed and its last NACK.
//! - `GET /ready`: 200 once a configuration is served, else 503.
//! - `GET /stats/prometheus`: counters and gauges in Prometheus' text
//!   format.

use std::convert::Infallible;
use std::fmt::Write;
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use mesh_xds::resource::Protocol;
use mesh_xds::server::{AdsServer, ClientStatus};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::ControlPlane;

/// Serves the admin endpoints for `plane` and `server` on `listener`
/// until the task is dropped.
pub async fn serve(listener: TcpListener, plane: ControlPlane, server: AdsServer) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "admin: cannot accept a connection");
                continue;
            }
        };
        let (plane, server) = (plane.clone(), server.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let response = respond(&req, &plane, &server);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond<B>(req: &Request<B>, plane: &ControlPlane, server: &AdsServer) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match req.uri().path() {
        "/config_dump" => json_response(config_dump(plane, server)),
        "/clients" => json_response(Value::Array(server.clients().iter().map(client).collect())),
        "/ready" => match plane.status().config_version {
            Some(_) => text(StatusCode::OK, "LIVE\n".into()),
            None => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "no configuration loaded yet\n".into(),
            ),
        },
        "/stats/prometheus" => text(StatusCode::OK, prometheus(plane, server)),
        _ => text(
            StatusCode::NOT_FOUND,
            "/config_dump /clients /ready /stats/prometheus\n".into(),
        ),
    }
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

fn prometheus(plane: &ControlPlane, server: &AdsServer) -> String {
    let status = plane.status();
    let clients = server.clients();
    let counters = plane.counters();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let count = |p: Protocol| clients.iter().filter(|c| c.protocol == p).count() as u64;
    metric(
        "mesh_control_xds_clients",
        "gauge",
        "ADS streams connected now.",
        &[
            ("{protocol=\"sotw\"}", count(Protocol::StateOfTheWorld)),
            ("{protocol=\"delta\"}", count(Protocol::Delta)),
        ],
    );
    let nacks = clients
        .iter()
        .flat_map(|c| c.types.values())
        .filter(|t| t.last_nack.is_some())
        .count() as u64;
    metric(
        "mesh_control_xds_rejected",
        "gauge",
        "Types whose last response a connected client rejected.",
        &[("", nacks)],
    );
    metric(
        "mesh_control_config_loads_total",
        "counter",
        "Loads of the configuration directory, by outcome.",
        &[
            ("{result=\"applied\"}", counters.applied),
            ("{result=\"rejected\"}", counters.rejected),
        ],
    );
    metric(
        "mesh_control_config_errors",
        "gauge",
        "Errors of the last load: non-zero while the previous configuration is served.",
        &[("", status.load_errors.len() as u64)],
    );
    metric(
        "mesh_control_node_classes",
        "gauge",
        "Kinds of node (shape, namespace, labels) served.",
        &[("", status.nodes.len() as u64)],
    );
    out
}

fn json_response(value: Value) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec_pretty(&value).unwrap_or_default();
    response(StatusCode::OK, "application/json", body)
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    response(status, "text/plain; version=0.0.4", body.into_bytes())
}

fn response(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    response
}
