//! What an ADS client holds, in the shapes tools read it in: Envoy's
//! admin `ConfigDump` (its `/config_dump`: `ListenersConfigDump`,
//! `RoutesConfigDump`, `ClustersConfigDump`, `EndpointsConfigDump`, and
//! `SecretsConfigDump` when secrets are held, each resource as it was
//! accepted with its version, time and NACK, a secret's private key
//! redacted as Envoy redacts it) and
//! CSDS's `ClientConfig` (gRFC A40: one `GenericXdsConfig` per subscribed
//! resource, as `grpcdebug` and `istioctl x proxy-status` read it).

use std::time::{Instant, SystemTime};

use envoy_types::pb::envoy::admin::v3::{
    self as admin, ClientResourceStatus, ClustersConfigDump, EndpointsConfigDump,
    ListenersConfigDump, RoutesConfigDump, SecretsConfigDump, UpdateFailureState,
    clusters_config_dump, endpoints_config_dump, listeners_config_dump, routes_config_dump,
    secrets_config_dump,
};
use envoy_types::pb::envoy::service::status::v3::{ClientConfig, ConfigStatus, client_config};
use envoy_types::pb::google::protobuf::{Any, Timestamp};
use prost::{Message, Name};

use super::state::RawResource;
use super::{AdsView, ResourceType};
use crate::bootstrap::Node;
use crate::resource::ResourceError;

/// One moment on both clocks: the monotonic one the client's state is
/// given, and the wall clock dumps print.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// The state's clock (Tokio's, so that paused time agrees).
    pub instant: Instant,
    /// The wall clock.
    pub wall: SystemTime,
}

impl Clock {
    /// `at` on the wall clock.
    fn wall(&self, at: Instant) -> Timestamp {
        let t = self.wall - self.instant.saturating_duration_since(at);
        let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        Timestamp {
            seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(since.subsec_nanos()).unwrap_or(0),
        }
    }
}

/// One subscribed resource, as the client holds it.
#[derive(Clone, Debug)]
pub struct ResourceStatus<'a> {
    /// Its type.
    pub kind: ResourceType,
    /// Its name.
    pub name: &'a str,
    /// Requested (nothing received yet), does not exist, ACKed, or NACKed
    /// (its last copy rejected; an earlier accepted copy may be in use).
    pub status: ClientResourceStatus,
    /// The copy in use, as it came.
    pub accepted: Option<&'a RawResource>,
    /// The version of the copy in use: its own under delta, its
    /// response's under state of the world.
    pub version: &'a str,
    /// Why its last copy was rejected.
    pub error: Option<&'a ResourceError>,
    /// When the rejected copy came, for one NACKed; else when the
    /// type's last response was handled.
    pub last_attempt: Option<Instant>,
}

impl AdsView {
    /// Every subscribed resource, type by type (LDS, RDS, CDS, EDS) and
    /// by name.
    pub fn resources(&self) -> Vec<ResourceStatus<'_>> {
        ResourceType::ALL
            .into_iter()
            .flat_map(|kind| {
                let common = self.common(kind);
                common.subscribed.iter().map(move |(name, watch)| {
                    let accepted = common.raw.get(name).map(|r| &**r);
                    let nacked = common.nacked.get(name);
                    let error = nacked.map(|n| &n.error);
                    let status = if error.is_some() {
                        ClientResourceStatus::Nacked
                    } else if accepted.is_some() {
                        ClientResourceStatus::Acked
                    } else if watch.does_not_exist {
                        ClientResourceStatus::DoesNotExist
                    } else {
                        ClientResourceStatus::Requested
                    };
                    let version = common
                        .versions
                        .get(name)
                        .or(accepted.map(|r| &r.version))
                        .map_or("", String::as_str);
                    ResourceStatus {
                        kind,
                        name,
                        status,
                        accepted,
                        version,
                        error,
                        last_attempt: nacked.map(|n| n.at).or(common.updated_at),
                    }
                })
            })
            .collect()
    }

    /// Envoy's `ConfigDump`: one config dump per type, each with the
    /// type's last accepted version and every subscribed resource.
    pub fn config_dump(&self, clock: Clock) -> admin::ConfigDump {
        let mut listeners = ListenersConfigDump {
            version_info: self.common(ResourceType::Listener).version.clone(),
            ..Default::default()
        };
        let mut routes = RoutesConfigDump::default();
        let mut clusters = ClustersConfigDump {
            version_info: self.common(ResourceType::Cluster).version.clone(),
            ..Default::default()
        };
        let mut endpoints = EndpointsConfigDump::default();
        let mut secrets = SecretsConfigDump::default();
        for r in self.resources() {
            let resource = r.accepted.map(|a| a.any.clone());
            let last_updated = r.accepted.map(|a| clock.wall(a.accepted_at));
            let error_state = r.error.map(|e| failure(e, &r, clock));
            let client_status = r.status as i32;
            let version_info = r.version.to_owned();
            match r.kind {
                ResourceType::Listener => {
                    let active_state =
                        resource.map(|listener| listeners_config_dump::DynamicListenerState {
                            version_info,
                            listener: Some(listener),
                            last_updated,
                        });
                    listeners
                        .dynamic_listeners
                        .push(listeners_config_dump::DynamicListener {
                            name: r.name.to_owned(),
                            active_state,
                            error_state,
                            client_status,
                            ..Default::default()
                        });
                }
                ResourceType::RouteConfig => {
                    routes
                        .dynamic_route_configs
                        .push(routes_config_dump::DynamicRouteConfig {
                            version_info,
                            route_config: resource,
                            last_updated,
                            error_state,
                            client_status,
                        });
                }
                ResourceType::Cluster => {
                    clusters
                        .dynamic_active_clusters
                        .push(clusters_config_dump::DynamicCluster {
                            version_info,
                            cluster: resource,
                            last_updated,
                            error_state,
                            client_status,
                        });
                }
                ResourceType::LoadAssignment => {
                    endpoints.dynamic_endpoint_configs.push(
                        endpoints_config_dump::DynamicEndpointConfig {
                            version_info,
                            endpoint_config: resource,
                            last_updated,
                            error_state,
                            client_status,
                        },
                    );
                }
                ResourceType::Secret => {
                    secrets
                        .dynamic_active_secrets
                        .push(secrets_config_dump::DynamicSecret {
                            name: r.name.to_owned(),
                            version_info,
                            last_updated,
                            secret: resource,
                            error_state,
                            client_status,
                        });
                }
            }
        }
        let mut configs = vec![
            pack(&listeners),
            pack(&routes),
            pack(&clusters),
            pack(&endpoints),
        ];
        if !secrets.dynamic_active_secrets.is_empty() {
            configs.push(pack(&secrets));
        }
        admin::ConfigDump { configs }
    }

    /// CSDS's `ClientConfig` for the client of `node`: a
    /// `GenericXdsConfig` per subscribed resource.
    pub fn client_config(&self, node: &Node, clock: Clock) -> ClientConfig {
        let generic_xds_configs = self
            .resources()
            .into_iter()
            .map(|r| client_config::GenericXdsConfig {
                type_url: r.kind.type_url().to_owned(),
                name: r.name.to_owned(),
                version_info: r.version.to_owned(),
                xds_config: r.accepted.map(|a| a.any.clone()),
                last_updated: r.accepted.map(|a| clock.wall(a.accepted_at)),
                // A management server's field; a client says its
                // state in `client_status`.
                config_status: ConfigStatus::Unknown as i32,
                client_status: r.status as i32,
                error_state: r.error.map(|e| failure(e, &r, clock)),
                is_static_resource: false,
            })
            .collect();
        ClientConfig {
            node: Some(super::node::to_proto(node)),
            generic_xds_configs,
            ..Default::default()
        }
    }
}

/// What a NACK of `r` said.
fn failure(error: &ResourceError, r: &ResourceStatus<'_>, clock: Clock) -> UpdateFailureState {
    UpdateFailureState {
        details: error.to_string(),
        last_update_attempt: r.last_attempt.map(|at| clock.wall(at)),
        ..Default::default()
    }
}

fn pack<T: Message + Name>(m: &T) -> Any {
    Any {
        type_url: T::type_url(),
        value: m.encode_to_vec(),
    }
}
