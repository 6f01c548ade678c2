//! Listeners as istiod writes them for proxyless gRPC, and the filter
//! chains and route sources gRPC rejects; every NACK names its field.

use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ApiConfigSource, ConfigSource, HttpProtocolOptions, SelfConfigSource,
    config_source::ConfigSourceSpecifier,
};
use envoy_types::pb::envoy::config::listener::v3::{ApiListener, Listener};
use envoy_types::pb::envoy::config::route::v3::{self as rds, route, route_action, route_match};
use envoy_types::pb::envoy::extensions::filters::common::fault::v3::{
    FaultDelay, fault_delay::FaultDelaySecifier,
};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::Cors;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::Rbac;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter as ProtoFilter, Rds, http_connection_manager::RouteSpecifier,
    http_filter::ConfigType,
};
use envoy_types::pb::google::protobuf::Any;
use mesh_core::route::{DelaySource, FaultPolicy, Percent};
use prost::{Message, Name};

use super::*;
use crate::resource::proto::build::{any, percent, secs};

const REVIEWS: &str = "reviews.default.svc.cluster.local:9080";

fn filter<T: Message + Name>(name: &str, config: &T) -> ProtoFilter {
    ProtoFilter {
        name: name.into(),
        config_type: Some(ConfigType::TypedConfig(any(config))),
        ..Default::default()
    }
}

fn router() -> ProtoFilter {
    filter("envoy.filters.http.router", &Router::default())
}

/// The fault filter as istiod writes it: no faults of its own.
fn fault() -> ProtoFilter {
    filter("envoy.filters.http.fault", &HttpFault::default())
}

fn optional(mut f: ProtoFilter) -> ProtoFilter {
    f.is_optional = true;
    f
}

fn source(specifier: ConfigSourceSpecifier) -> Option<ConfigSource> {
    Some(ConfigSource {
        config_source_specifier: Some(specifier),
        ..Default::default()
    })
}

/// The manager istiod's proxyless generator writes: RDS over ADS, with
/// `filters`.
fn manager(filters: Vec<ProtoFilter>) -> HttpConnectionManager {
    HttpConnectionManager {
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            config_source: source(ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
            route_config_name: "9080".into(),
        })),
        http_filters: filters,
        ..Default::default()
    }
}

fn packed(api_listener: Any) -> Listener {
    Listener {
        name: REVIEWS.into(),
        api_listener: Some(ApiListener {
            api_listener: Some(api_listener),
        }),
        ..Default::default()
    }
}

fn listener(m: &HttpConnectionManager) -> Listener {
    packed(any(m))
}

fn convert(l: &Listener) -> XdsListener {
    XdsListener::try_from(l).unwrap_or_else(|e| panic!("{e}"))
}

fn nack(l: &Listener) -> String {
    XdsListener::try_from(l).unwrap_err().to_string()
}

fn kinds(l: &XdsListener) -> Vec<(&str, &FilterKind)> {
    let filters = l.http_filters.iter();
    filters.map(|f| (f.name.as_str(), &f.kind)).collect()
}

#[test]
fn a_proxyless_listener_as_istiod_writes_it() {
    let l = convert(&listener(&manager(vec![fault(), router()])));
    assert_eq!(l.name, REVIEWS);
    assert!(
        matches!(&l.routes, RouteSource::Rds { route_config_name } if route_config_name == "9080")
    );
    assert_eq!(
        kinds(&l),
        [
            (
                "envoy.filters.http.fault",
                &FilterKind::Fault(FaultPolicy::default())
            ),
            ("envoy.filters.http.router", &FilterKind::Router),
        ]
    );
    assert_eq!(l.max_stream_duration, None);
    assert!(l.ignored.is_empty());
}

#[test]
fn the_fault_filter_carries_the_default_fault() {
    let delay = HttpFault {
        delay: Some(FaultDelay {
            percentage: Some(percent(10)),
            fault_delay_secifier: Some(FaultDelaySecifier::FixedDelay(secs(5))),
        }),
        ..Default::default()
    };
    let l = convert(&listener(&manager(vec![filter("fault", &delay), router()])));
    let FilterKind::Fault(policy) = &l.http_filters[0].kind else {
        panic!("a fault filter: {:?}", l.http_filters[0]);
    };
    let delay = policy.delay.as_ref().expect("a delay");
    assert_eq!(delay.delay, DelaySource::Fixed(Duration::from_secs(5)));
    assert_eq!(delay.percent, Percent::new(10.0).unwrap());

    let bad = HttpFault {
        upstream_cluster: "ratings".into(),
        ..Default::default()
    };
    let err = nack(&listener(&manager(vec![filter("fault", &bad), router()])));
    assert_eq!(
        err,
        format!(
            "Listener {REVIEWS:?}: api_listener.api_listener.http_filters[0].typed_config.upstream_cluster: faults limited to one cluster are not supported"
        )
    );
}

#[test]
fn routes_come_from_ads_or_self_only() {
    let mut m = manager(vec![router()]);
    let RouteSpecifier::Rds(rds) = m.route_specifier.as_mut().unwrap() else {
        unreachable!()
    };
    rds.config_source = source(ConfigSourceSpecifier::Self_(SelfConfigSource::default()));
    convert(&listener(&m));

    let RouteSpecifier::Rds(rds) = m.route_specifier.as_mut().unwrap() else {
        unreachable!()
    };
    rds.config_source = source(ConfigSourceSpecifier::ApiConfigSource(
        ApiConfigSource::default(),
    ));
    let err = nack(&listener(&m));
    assert!(
        err.contains("api_listener.api_listener.rds.config_source: must be ads or self"),
        "{err}"
    );
    let RouteSpecifier::Rds(rds) = m.route_specifier.as_mut().unwrap() else {
        unreachable!()
    };
    rds.config_source = None;
    let err = nack(&listener(&m));
    assert!(
        err.contains("rds.config_source: missing: must be ads or self"),
        "{err}"
    );

    m.route_specifier = None;
    assert!(
        nack(&listener(&m)).ends_with("neither rds nor route_config: the listener has no routes")
    );
}

fn inline_routes(cluster: &str) -> rds::RouteConfiguration {
    let r = rds::Route {
        r#match: Some(rds::RouteMatch {
            path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
            ..Default::default()
        }),
        action: Some(route::Action::Route(rds::RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.into())),
            ..Default::default()
        })),
        ..Default::default()
    };
    rds::RouteConfiguration {
        name: "inline".into(),
        virtual_hosts: vec![rds::VirtualHost {
            name: "reviews".into(),
            domains: vec!["reviews".into()],
            routes: vec![r],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn an_inline_route_config_is_converted_as_rds_would() {
    let mut m = manager(vec![router()]);
    m.route_specifier = Some(RouteSpecifier::RouteConfig(inline_routes(
        "outbound|9080||reviews.default.svc.cluster.local",
    )));
    let l = convert(&listener(&m));
    let RouteSource::Inline(rc) = &l.routes else {
        panic!("inline routes: {:?}", l.routes);
    };
    assert_eq!(rc.name, "inline");
    assert_eq!(rc.table.clusters().count(), 1);

    // Its NACK is the listener's, with the route configuration's field.
    m.route_specifier = Some(RouteSpecifier::RouteConfig(inline_routes("")));
    let err = nack(&listener(&m));
    assert!(
        err.starts_with(&format!(
            "Listener {REVIEWS:?}: api_listener.api_listener.route_config.virtual_hosts[0].routes[0]"
        )),
        "{err}"
    );
}

#[test]
fn the_router_must_end_the_chain() {
    let err = nack(&listener(&manager(vec![fault()])));
    assert_eq!(
        err,
        format!(
            "Listener {REVIEWS:?}: api_listener.api_listener.http_filters[0]: the last filter must be the router, not \"envoy.filters.http.fault\""
        )
    );
    let err = nack(&listener(&manager(vec![])));
    assert!(
        err.ends_with("http_filters: no router filter: a chain must end with the router"),
        "{err}"
    );
    let err = nack(&listener(&manager(vec![router(), fault()])));
    assert!(
        err.ends_with(
            "http_filters[0]: the router (\"envoy.filters.http.router\") must be the last filter"
        ),
        "{err}"
    );
    let mut disabled = router();
    disabled.disabled = true;
    let err = nack(&listener(&manager(vec![disabled])));
    assert!(err.ends_with("http_filters[0].disabled: the router cannot be disabled"));
}

#[test]
fn unknown_filters_are_left_out_only_when_optional() {
    let cors = || filter("envoy.filters.http.cors", &Cors::default());
    let l = convert(&listener(&manager(vec![
        optional(cors()),
        router(),
        optional(filter("after", &Cors::default())),
    ])));
    assert_eq!(
        kinds(&l),
        [("envoy.filters.http.router", &FilterKind::Router)]
    );
    assert_eq!(l.ignored.len(), 2);
    assert_eq!(
        l.ignored[0].field,
        "api_listener.api_listener.http_filters[0].typed_config"
    );
    assert!(l.ignored[0].reason.contains("optional filter \"envoy.filters.http.cors\" left out: unsupported filter type \"type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors\""));

    let err = nack(&listener(&manager(vec![cors(), router()])));
    assert_eq!(
        err,
        format!(
            "Listener {REVIEWS:?}: api_listener.api_listener.http_filters[0].typed_config: filter \"envoy.filters.http.cors\": unsupported filter type \"type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors\""
        )
    );
}

#[test]
fn filters_need_a_config_and_a_unique_name() {
    let mut bare = fault();
    bare.config_type = None;
    let err = nack(&listener(&manager(vec![bare, router()])));
    assert!(
        err.ends_with("http_filters[0]: filter \"envoy.filters.http.fault\" has no typed_config")
    );
    let err = nack(&listener(&manager(vec![fault(), fault(), router()])));
    assert!(err.ends_with("http_filters[1].name: \"envoy.filters.http.fault\" names two filters"));
    let mut unnamed = fault();
    unnamed.name.clear();
    let err = nack(&listener(&manager(vec![unnamed, router()])));
    assert!(err.ends_with("http_filters[0].name: must not be empty"));
}

#[test]
fn rbac_is_kept_packed() {
    let rbac = any(&Rbac::default());
    let l = convert(&listener(&manager(vec![
        filter("envoy.filters.http.rbac", &Rbac::default()),
        router(),
    ])));
    let FilterKind::Rbac(config) = &l.http_filters[0].kind else {
        panic!("rbac: {:?}", l.http_filters[0]);
    };
    assert_eq!(config.type_url, rbac.type_url);
    assert_eq!(config.value, rbac.value);
}

#[test]
fn max_stream_duration_limits_every_stream() {
    let mut m = manager(vec![router()]);
    m.common_http_protocol_options = Some(HttpProtocolOptions {
        max_stream_duration: Some(secs(30)),
        ..Default::default()
    });
    let l = convert(&listener(&m));
    assert_eq!(l.max_stream_duration, Some(Duration::from_secs(30)));
    m.common_http_protocol_options = Some(HttpProtocolOptions {
        max_stream_duration: Some(secs(0)),
        ..Default::default()
    });
    assert_eq!(convert(&listener(&m)).max_stream_duration, None);
}

#[test]
fn only_a_connection_manager_in_an_api_listener() {
    let err = nack(&packed(any(&Cluster::default())));
    assert_eq!(
        err,
        format!(
            "Listener {REVIEWS:?}: api_listener.api_listener: \"type.googleapis.com/envoy.config.cluster.v3.Cluster\" is not an HttpConnectionManager (type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager)"
        )
    );
    let garbage = Any {
        type_url: HttpConnectionManager::type_url(),
        value: vec![0xff, 0xff, 0xff],
    };
    let err = nack(&packed(garbage));
    assert!(
        err.starts_with(&format!(
            "Listener {REVIEWS:?}: api_listener.api_listener: cannot decode"
        )),
        "{err}"
    );

    let server = Listener {
        name: "0.0.0.0_9080".into(),
        ..Default::default()
    };
    assert_eq!(
        nack(&server),
        "Listener \"0.0.0.0_9080\": address: a server listener needs a socket address"
    );
}
