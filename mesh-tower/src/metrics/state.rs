//! [`MeshState`]: the mesh's own state as metrics, read when scraped (so
//! it costs requests nothing): each workload certificate's expiry and
//! last reload, each server's connections and refusals, each client's
//! endpoints by health, ejections, retries, circuit-breaker overflows,
//! rate-limited requests and requests refused for want of TLS.
//!
//! | metric | labels |
//! |---|---|
//! | `mesh_certificate_expiration_timestamp_seconds` | `spiffe_id` |
//! | `mesh_certificate_last_reload_timestamp_seconds` | `spiffe_id` |
//! | `mesh_certificate_reload_failing` (1 while the last read failed) | `spiffe_id` |
//! | `mesh_server_connections_total`, `mesh_server_mtls_connections_total`, `mesh_server_handshake_failures_total`, `mesh_server_plaintext_refused_total`, `mesh_server_not_serving_refused_total` | `server` |
//! | `mesh_client_endpoints` | `client`, `cluster`, `health` (`healthy`, `ejected`, `unhealthy`, `draining`) |
//! | `mesh_client_ejections_total`, `mesh_client_circuit_breaker_overflows_total` | `client`, `cluster` |
//! | `mesh_client_retries_total`, `mesh_client_retry_budget_exhausted_total` | `client`, `cluster` |
//! | `mesh_client_rate_limited_total` | `client`, `scope` (`cluster:NAME`, `route:LISTENER/VHOST/ROUTE`) |
//! | `mesh_client_tls_refusals_total` | `client`, `cluster` |
//! | `mesh_xds_acks_total`, `mesh_xds_nacks_total` (feature `xds`) | `client`, `type` (`LDS`, `RDS`, `CDS`, `EDS`) |
//! | `mesh_xds_streams_total` (the first and each reconnection), `mesh_xds_connected`, `mesh_xds_seconds_since_last_accepted` | `client` |

use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::balance::EndpointState;
use crate::client::{ClientReader, ClientStatus, ClusterStatus};
use crate::server::MeshServer;
use crate::tls::IdentitySource;

/// What is read at each scrape.
#[derive(Default)]
pub struct MeshState {
    identities: Vec<IdentitySource>,
    servers: Vec<(String, MeshServer)>,
    clients: Vec<(String, ClientReader)>,
    #[cfg(feature = "xds")]
    xds: Vec<(String, mesh_xds::ads::AdsHandle)>,
}

impl std::fmt::Debug for MeshState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshState")
            .field("identities", &self.identities.len())
            .field("servers", &self.servers.len())
            .field("clients", &self.clients.len())
            .finish()
    }
}

impl MeshState {
    /// Reports `source`'s certificate.
    pub fn identity(mut self, source: IdentitySource) -> Self {
        self.identities.push(source);
        self
    }

    /// Reports `server`'s connections as `name`.
    pub fn server(mut self, name: &str, server: &MeshServer) -> Self {
        self.servers.push((name.to_owned(), server.clone()));
        self
    }

    /// Reports `client`'s [`status`](crate::MeshClient::status) as `name`.
    pub fn client<B>(self, name: &str, client: &crate::MeshClient<B>) -> Self
    where
        B: 'static,
    {
        self.reader(name, ClientReader::new(client))
    }

    /// Reports the client `reader` reads as `name`.
    pub(crate) fn reader(mut self, name: &str, reader: ClientReader) -> Self {
        self.clients.push((name.to_owned(), reader));
        self
    }

    /// Reports the ADS client of `ads` as `name` (feature `xds`).
    #[cfg(feature = "xds")]
    pub fn xds(mut self, name: &str, ads: &mesh_xds::ads::AdsHandle) -> Self {
        self.xds.push((name.to_owned(), ads.clone()));
        self
    }

    /// Reads it at each scrape of `registry`.
    pub fn register(self, registry: &mut Registry) {
        registry.register_collector(Box::new(self));
    }
}

/// Seconds since the epoch.
fn seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Writes one family of metrics read at scrape time, a sample per label
/// set; nothing when there is no sample. For collectors of an
/// application's own (a control plane's, say) as for [`MeshState`].
pub fn encode_family<L: EncodeLabelSet, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: impl IntoIterator<Item = (L, M)>,
) -> Result<(), std::fmt::Error> {
    let mut samples = samples.into_iter().peekable();
    if samples.peek().is_none() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in samples {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for MeshState {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let certs: Vec<_> = self
            .identities
            .iter()
            .filter_map(|source| {
                let id = source.current()?;
                Some((id.id().to_string(), id.not_after(), source))
            })
            .collect();
        let per_cert = |f: &dyn Fn(&IdentitySource, SystemTime) -> f64| {
            certs
                .iter()
                .map(|(id, expiry, source)| {
                    (
                        vec![("spiffe_id", id.clone())],
                        ConstGauge::new(f(source, *expiry)),
                    )
                })
                .collect::<Vec<_>>()
        };
        encode_family(
            &mut encoder,
            "mesh_certificate_expiration_timestamp_seconds",
            "When the workload certificate expires",
            MetricType::Gauge,
            per_cert(&|_, expiry| seconds(expiry)),
        )?;
        encode_family(
            &mut encoder,
            "mesh_certificate_last_reload_timestamp_seconds",
            "When the workload certificate was last read and checked out",
            MetricType::Gauge,
            per_cert(&|source, _| source.reloaded_at().map_or(0.0, seconds)),
        )?;
        encode_family(
            &mut encoder,
            "mesh_certificate_reload_failing",
            "1 while the last read of the certificate failed",
            MetricType::Gauge,
            per_cert(&|source, _| f64::from(u8::from(source.last_error().is_some()))),
        )?;
        let per_server = |f: fn(&crate::server::ServerStats) -> u64| {
            self.servers
                .iter()
                .map(|(name, server)| {
                    (
                        vec![("server", name.clone())],
                        ConstCounter::new(f(server.stats())),
                    )
                })
                .collect::<Vec<_>>()
        };
        for (name, help, f) in [
            (
                "mesh_server_connections",
                "Connections accepted",
                crate::server::ServerStats::connections as fn(&_) -> u64,
            ),
            (
                "mesh_server_mtls_connections",
                "Connections secured by mutual TLS",
                crate::server::ServerStats::mtls_connections,
            ),
            (
                "mesh_server_handshake_failures",
                "TLS handshakes refused or failed",
                crate::server::ServerStats::handshake_failures,
            ),
            (
                "mesh_server_plaintext_refused",
                "Plain-text connections to a STRICT port, closed",
                crate::server::ServerStats::plaintext_refused,
            ),
            (
                "mesh_server_not_serving_refused",
                "Connections closed while the server was not serving",
                crate::server::ServerStats::not_serving_refused,
            ),
        ] {
            encode_family(&mut encoder, name, help, MetricType::Counter, per_server(f))?;
        }
        self.encode_clients(&mut encoder)?;
        #[cfg(feature = "xds")]
        self.encode_xds(&mut encoder)?;
        Ok(())
    }
}

/// Labels of a sample.
type Labels = Vec<(&'static str, String)>;

impl MeshState {
    fn encode_clients(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let statuses: Vec<(&str, ClientStatus)> = self
            .clients
            .iter()
            .map(|(name, client)| (name.as_str(), client.status()))
            .collect();
        let of_client = |client: &str, more: (&'static str, String)| -> Labels {
            vec![("client", client.to_owned()), more]
        };
        let per_cluster = |f: fn(&ClusterStatus) -> u64| {
            statuses
                .iter()
                .flat_map(|(client, status)| {
                    status.clusters.iter().map(move |c| {
                        let labels = of_client(client, ("cluster", c.name.clone()));
                        (labels, ConstCounter::new(f(c)))
                    })
                })
                .collect::<Vec<_>>()
        };
        let endpoints: Vec<(Labels, ConstGauge<i64>)> = statuses
            .iter()
            .flat_map(|(client, status)| {
                status.clusters.iter().flat_map(move |c| {
                    EndpointState::ALL.into_iter().map(move |state| {
                        let n = c.endpoints.iter().filter(|e| e.state == state).count();
                        let mut labels = of_client(client, ("cluster", c.name.clone()));
                        labels.push(("health", state.as_str().to_owned()));
                        (labels, ConstGauge::new(n as i64))
                    })
                })
            })
            .collect();
        encode_family(
            encoder,
            "mesh_client_endpoints",
            "Endpoints of each cluster, by health: healthy, ejected by outlier detection, or reported unhealthy or draining by discovery",
            MetricType::Gauge,
            endpoints,
        )?;
        for (name, help, f) in [
            (
                "mesh_client_ejections",
                "Endpoints ejected by outlier detection",
                (|c: &ClusterStatus| c.ejections) as fn(&_) -> u64,
            ),
            (
                "mesh_client_circuit_breaker_overflows",
                "Requests refused because the cluster's circuit breaker was full",
                |c| c.circuit_breaker_overflows,
            ),
            ("mesh_client_retries", "Retries taken", |c| c.retries),
            (
                "mesh_client_retry_budget_exhausted",
                "Retries refused because the cluster's retry budget was spent",
                |c| c.retry_budget_exhausted,
            ),
        ] {
            encode_family(encoder, name, help, MetricType::Counter, per_cluster(f))?;
        }
        let counted = |f: fn(&ClientStatus) -> Vec<(&'static str, String, u64)>| {
            statuses
                .iter()
                .flat_map(|(client, status)| {
                    f(status).into_iter().map(move |(label, value, n)| {
                        (of_client(client, (label, value)), ConstCounter::new(n))
                    })
                })
                .collect::<Vec<_>>()
        };
        encode_family(
            encoder,
            "mesh_client_rate_limited",
            "Requests refused by a local rate limit, a cluster's (`cluster:NAME`) or a route's (`route:LISTENER/VHOST/ROUTE`)",
            MetricType::Counter,
            counted(|status| {
                let clusters = status
                    .clusters
                    .iter()
                    .filter(|c| c.rate_limited > 0)
                    .map(|c| ("scope", format!("cluster:{}", c.name), c.rate_limited));
                let routes = status
                    .route_rate_limited
                    .iter()
                    .map(|(route, n)| ("scope", format!("route:{route}"), *n));
                clusters.chain(routes).collect()
            }),
        )?;
        encode_family(
            encoder,
            "mesh_client_tls_refusals",
            "Requests refused because the TLS their cluster asks for could not be dialled",
            MetricType::Counter,
            counted(|status| {
                status
                    .tls_refusals
                    .iter()
                    .map(|(cluster, n)| ("cluster", cluster.clone(), *n))
                    .collect()
            }),
        )
    }
}

#[cfg(feature = "xds")]
impl MeshState {
    fn encode_xds(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use mesh_xds::ads::ResourceType;
        let per_type = |count: fn(&mesh_xds::ads::AdsStats, ResourceType) -> u64| {
            self.xds
                .iter()
                .flat_map(|(name, ads)| {
                    ResourceType::ALL.into_iter().map(move |kind| {
                        let labels = vec![("client", name.clone()), ("type", kind.to_string())];
                        (labels, ConstCounter::new(count(ads.stats(), kind)))
                    })
                })
                .collect::<Vec<_>>()
        };
        encode_family(
            encoder,
            "mesh_xds_acks",
            "Responses accepted whole",
            MetricType::Counter,
            per_type(mesh_xds::ads::AdsStats::acks),
        )?;
        encode_family(
            encoder,
            "mesh_xds_nacks",
            "Responses with a resource rejected",
            MetricType::Counter,
            per_type(mesh_xds::ads::AdsStats::nacks),
        )?;
        let per_client = |f: &dyn Fn(&mesh_xds::ads::AdsHandle) -> Option<f64>| {
            self.xds
                .iter()
                .filter_map(|(name, ads)| Some((vec![("client", name.clone())], f(ads)?)))
                .collect::<Vec<_>>()
        };
        let counters = |values: Vec<(Vec<(&'static str, String)>, f64)>| {
            values
                .into_iter()
                .map(|(l, v)| (l, ConstCounter::new(v as u64)))
                .collect::<Vec<_>>()
        };
        let gauges = |values: Vec<(Vec<(&'static str, String)>, f64)>| {
            values
                .into_iter()
                .map(|(l, v)| (l, ConstGauge::new(v)))
                .collect::<Vec<_>>()
        };
        encode_family(
            encoder,
            "mesh_xds_streams",
            "Streams started to the control plane",
            MetricType::Counter,
            counters(per_client(&|ads| Some(ads.stats().streams() as f64))),
        )?;
        encode_family(
            encoder,
            "mesh_xds_connected",
            "1 while a stream to the control plane is up",
            MetricType::Gauge,
            gauges(per_client(&|ads| {
                Some(f64::from(u8::from(ads.updates().borrow().connected)))
            })),
        )?;
        encode_family(
            encoder,
            "mesh_xds_seconds_since_last_accepted",
            "Seconds since a response was last accepted whole",
            MetricType::Gauge,
            gauges(per_client(&|ads| {
                let at = ads.stats().last_accepted()?;
                Some(
                    SystemTime::now()
                        .duration_since(at)
                        .unwrap_or_default()
                        .as_secs_f64(),
                )
            })),
        )
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;

    use super::*;

    #[test]
    fn nothing_to_read_writes_nothing() {
        let mut registry = Registry::default();
        MeshState::default().register(&mut registry);
        let mut out = String::new();
        encode(&mut out, &registry).unwrap();
        assert_eq!(out, "# EOF\n");
    }
}
