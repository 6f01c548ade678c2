//! Tests of reading and converting Istio resources: bad input and the
//! errors and warnings it gets, and the finer points of the mapping.

mod errors;
mod gateways;
mod policies;
mod registry;
mod routes;
mod rules;
mod security;
mod sidecars;

use http::Request;

use super::{Resources, Warning, Workload, parse};
use mesh_core::cluster::Cluster;
use mesh_core::route::{ClusterName, Forward, Route, RouteAction};
use mesh_core::{Authority, MeshConfig};

/// An error and its sources, as a report prints them.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A VirtualService `reviews` in `default` with `body` under `spec` after
/// `hosts` (which is on line 5).
fn vs(body: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: reviews}}\nspec:\n  hosts: [reviews]\n{body}"
    )
}

/// The bookinfo DestinationRule of `reviews` with subsets v1 and v2.
const DR: &str = "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n";

fn read(yaml: &str) -> (Resources, Vec<Warning>) {
    parse("test.yaml", yaml).unwrap_or_else(|e| panic!("{}", chain(&e)))
}

fn config_for(yaml: &str, workload: &Workload) -> MeshConfig {
    let (resources, _) = read(yaml);
    resources
        .to_mesh_config_for(workload)
        .unwrap_or_else(|e| panic!("{}", chain(&e)))
}

fn config(yaml: &str) -> MeshConfig {
    config_for(yaml, &Workload::default())
}

/// The configuration of `yaml` for the default client and the warnings of
/// converting it (not those of reading it).
fn convert(yaml: &str) -> (MeshConfig, Vec<Warning>) {
    let (resources, _) = read(yaml);
    resources
        .convert(&Workload::default())
        .unwrap_or_else(|e| panic!("{}", chain(&e)))
}

/// The error reading and converting `yaml`, with its sources.
fn error(yaml: &str) -> String {
    match parse("test.yaml", yaml) {
        Err(e) => chain(&e),
        Ok((resources, _)) => chain(&resources.to_mesh_config().expect_err("an error")),
    }
}

fn request(uri: &str, headers: &[(&str, &str)]) -> Request<()> {
    let mut b = Request::get(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).expect("request")
}

fn route<'c>(c: &'c MeshConfig, uri: &str, headers: &[(&str, &str)]) -> Option<&'c Route> {
    let req = request(uri, headers);
    let target = Authority::from_uri(req.uri()).expect("authority");
    c.routes()
        .find(&target, &req)
        .map(|id| c.routes().route(id))
}

fn forward<'c>(c: &'c MeshConfig, uri: &str, headers: &[(&str, &str)]) -> &'c Forward {
    match &route(c, uri, headers).expect("a route").action {
        RouteAction::Forward(f) => f,
        other => panic!("not forwarded: {other:?}"),
    }
}

fn cluster_of<'c>(c: &'c MeshConfig, name: &str) -> &'c Cluster {
    c.cluster(&ClusterName::from(name))
        .unwrap_or_else(|| panic!("no cluster {name}"))
}

/// The cluster `uri` goes to, or `None` without a route.
fn cluster(c: &MeshConfig, uri: &str, headers: &[(&str, &str)]) -> Option<String> {
    let r = route(c, uri, headers)?;
    match &r.action {
        RouteAction::Forward(f) => Some(f.destination.pick(0).to_string()),
        other => Some(format!("{other:?}")),
    }
}

const V1: &str = "outbound||v1|reviews.default.svc.cluster.local";
const V2: &str = "outbound||v2|reviews.default.svc.cluster.local";
