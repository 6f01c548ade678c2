//! What the ADS transport needs of a protocol variant: state of the world
//! ([`AdsState`] over `StreamAggregatedResources`) or delta
//! ([`DeltaAdsState`] over `DeltaAggregatedResources`).

use std::time::Instant;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use futures_util::Stream;
use futures_util::future::BoxFuture;
use tonic::transport::Channel;
use tonic::{Status, Streaming};

use super::outbox::Merge;
use super::{AdsState, DeltaAdsState, Outcome, ResourceType};

/// One protocol variant's state machine and stream.
pub(super) trait Flavor: Send + 'static {
    /// What the client sends.
    type Request: Merge + Send + 'static;
    /// What the server sends.
    type Response: Send + 'static;

    /// The subscriptions and accepted resources.
    fn state(&self) -> &AdsState;
    fn on_stream_start(&mut self, now: Instant) -> Vec<Self::Request>;
    fn on_stream_end(&mut self);
    fn handle_response(
        &mut self,
        response: &Self::Response,
        now: Instant,
    ) -> Outcome<Self::Request>;
    fn subscribe_listener(&mut self, name: &str, now: Instant) -> Outcome<Self::Request>;
    fn unsubscribe_listener(&mut self, name: &str, now: Instant) -> Outcome<Self::Request>;
    fn mark_missing(&mut self, kind: ResourceType, name: &str) -> Outcome<Self::Request>;
    /// A response's type URL, version and nonce, for logs.
    fn describe(response: &Self::Response) -> (&str, &str, &str);
    /// Opens the stream on `channel`, sending what `outgoing` yields.
    fn open(
        channel: Channel,
        outgoing: impl Stream<Item = Self::Request> + Send + 'static,
    ) -> BoxFuture<'static, Result<Streaming<Self::Response>, Status>>;
}

impl Flavor for AdsState {
    type Request = DiscoveryRequest;
    type Response = DiscoveryResponse;

    fn state(&self) -> &AdsState {
        self
    }
    fn on_stream_start(&mut self, now: Instant) -> Vec<DiscoveryRequest> {
        AdsState::on_stream_start(self, now)
    }
    fn on_stream_end(&mut self) {
        AdsState::on_stream_end(self);
    }
    fn handle_response(&mut self, response: &DiscoveryResponse, now: Instant) -> Outcome {
        AdsState::handle_response(self, response, now)
    }
    fn subscribe_listener(&mut self, name: &str, now: Instant) -> Outcome {
        AdsState::subscribe_listener(self, name, now)
    }
    fn unsubscribe_listener(&mut self, name: &str, now: Instant) -> Outcome {
        AdsState::unsubscribe_listener(self, name, now)
    }
    fn mark_missing(&mut self, kind: ResourceType, name: &str) -> Outcome {
        AdsState::mark_missing(self, kind, name)
    }
    fn describe(response: &DiscoveryResponse) -> (&str, &str, &str) {
        (&response.type_url, &response.version_info, &response.nonce)
    }
    fn open(
        channel: Channel,
        outgoing: impl Stream<Item = DiscoveryRequest> + Send + 'static,
    ) -> BoxFuture<'static, Result<Streaming<DiscoveryResponse>, Status>> {
        Box::pin(async move {
            let mut client = AggregatedDiscoveryServiceClient::new(channel);
            let response = client.stream_aggregated_resources(outgoing).await?;
            Ok(response.into_inner())
        })
    }
}

impl Flavor for DeltaAdsState {
    type Request = DeltaDiscoveryRequest;
    type Response = DeltaDiscoveryResponse;

    fn state(&self) -> &AdsState {
        DeltaAdsState::state(self)
    }
    fn on_stream_start(&mut self, now: Instant) -> Vec<DeltaDiscoveryRequest> {
        DeltaAdsState::on_stream_start(self, now)
    }
    fn on_stream_end(&mut self) {
        DeltaAdsState::on_stream_end(self);
    }
    fn handle_response(
        &mut self,
        response: &DeltaDiscoveryResponse,
        now: Instant,
    ) -> Outcome<DeltaDiscoveryRequest> {
        DeltaAdsState::handle_response(self, response, now)
    }
    fn subscribe_listener(&mut self, name: &str, now: Instant) -> Outcome<DeltaDiscoveryRequest> {
        DeltaAdsState::subscribe_listener(self, name, now)
    }
    fn unsubscribe_listener(&mut self, name: &str, now: Instant) -> Outcome<DeltaDiscoveryRequest> {
        DeltaAdsState::unsubscribe_listener(self, name, now)
    }
    fn mark_missing(&mut self, kind: ResourceType, name: &str) -> Outcome<DeltaDiscoveryRequest> {
        DeltaAdsState::mark_missing(self, kind, name)
    }
    fn describe(response: &DeltaDiscoveryResponse) -> (&str, &str, &str) {
        (
            &response.type_url,
            &response.system_version_info,
            &response.nonce,
        )
    }
    fn open(
        channel: Channel,
        outgoing: impl Stream<Item = DeltaDiscoveryRequest> + Send + 'static,
    ) -> BoxFuture<'static, Result<Streaming<DeltaDiscoveryResponse>, Status>> {
        Box::pin(async move {
            let mut client = AggregatedDiscoveryServiceClient::new(channel);
            let response = client.delta_aggregated_resources(outgoing).await?;
            Ok(response.into_inner())
        })
    }
}
