//! The admin's view of the ADS client (feature `xds`): `/config_dump`,
//! Envoy's `ConfigDump` as protobuf JSON (each resource as accepted, with
//! its version, time, client status and NACK), and CSDS (gRFC A40,
//! `envoy.service.status.v3.ClientStatusDiscoveryService`, both its
//! unary and streaming calls) on the admin port's gRPC side.

use std::pin::Pin;

use envoy_types::pb::envoy::service::status::v3::client_status_discovery_service_server::{
    ClientStatusDiscoveryService, ClientStatusDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::status::v3::{ClientStatusRequest, ClientStatusResponse};
use futures_util::{Stream, StreamExt};
use mesh_xds::ads::AdsHandle;
use serde_json::{Value, json};

/// `/config_dump`: what `ads` holds, as Envoy prints it. A config that
/// cannot be written as JSON (a resource of a type these protos do not
/// know) is an error in its place; the other types are still dumped.
pub(super) fn config_dump(ads: &AdsHandle) -> Value {
    let configs: Vec<Value> = ads
        .config_dump()
        .configs
        .iter()
        .map(|config| {
            mesh_xds::json::resource_json(config).unwrap_or_else(
                |e| json!({ "@type": config.type_url, "error": format!("cannot be written: {e}") }),
            )
        })
        .collect();
    json!({ "configs": configs })
}

/// CSDS over `ads`, as a tonic service.
pub(super) fn csds(ads: AdsHandle) -> ClientStatusDiscoveryServiceServer<Csds> {
    ClientStatusDiscoveryServiceServer::new(Csds(ads))
}

/// Answers every CSDS request with the client's one `ClientConfig`,
/// whatever its node matchers (the admin reports one client).
#[derive(Debug)]
pub(super) struct Csds(AdsHandle);

impl Csds {
    fn respond(&self, req: &ClientStatusRequest) -> ClientStatusResponse {
        let mut config = self.0.client_config();
        if req.exclude_resource_contents {
            for c in &mut config.generic_xds_configs {
                c.xds_config = None;
            }
        }
        ClientStatusResponse {
            config: vec![config],
        }
    }
}

type Responses = Pin<Box<dyn Stream<Item = Result<ClientStatusResponse, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl ClientStatusDiscoveryService for Csds {
    type StreamClientStatusStream = Responses;

    async fn stream_client_status(
        &self,
        req: tonic::Request<tonic::Streaming<ClientStatusRequest>>,
    ) -> Result<tonic::Response<Responses>, tonic::Status> {
        let csds = Csds(self.0.clone());
        let responses = req
            .into_inner()
            .map(move |req| req.map(|req| csds.respond(&req)));
        Ok(tonic::Response::new(Box::pin(responses)))
    }

    async fn fetch_client_status(
        &self,
        req: tonic::Request<ClientStatusRequest>,
    ) -> Result<tonic::Response<ClientStatusResponse>, tonic::Status> {
        Ok(tonic::Response::new(self.respond(req.get_ref())))
    }
}
