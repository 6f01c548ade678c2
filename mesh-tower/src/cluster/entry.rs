//! One cluster's stack, as the cache keeps it: circuit breaker → balancer
//! → outlier detection → an endpoint service per endpoint (pooled
//! connections, over mutual TLS where the endpoint must get it and the
//! client can dial it, else [`TlsRequired`]), with
//! the cluster's own rate limit, timeout, retry policy and retry budget
//! beside it for the requests whose route sets none.

use std::sync::Arc;
use std::time::Duration;

use mesh_core::policy::{ClusterPolicy, RetryPolicy};
use mesh_core::route::ClusterName;
use mesh_core::{Endpoint, Resolution};
use tower::{Layer, ServiceExt};

use super::{EndpointService, NewEndpoint};
use crate::balance::Balance;
use crate::circuit::{CircuitBreaker, CircuitBreakerLayer, Limits};
use crate::client::ClusterStatus;
use crate::endpoint::{TlsRefusals, TlsRequired};
use crate::metadata_exchange::MetadataExchangeLayer;
use crate::outlier::{Outlier, OutlierDetector, OutlierLayer};
use crate::rate_limit::RateLimiter;
use crate::retry::Budget;
use crate::split::SelectedCluster;
use crate::{BoxError, RequestBody, ResponseBody};

/// The part of a cluster's stack below the retries: circuit → balance →
/// outlier → endpoint. Its clones share it.
pub(crate) type CoreService<B> = CircuitBreaker<Balance<Outlier<EndpointService<B>>>>;

/// One cluster, built for one port.
pub(crate) struct Entry<B> {
    core: CoreService<B>,
    /// Tells this workload's metadata to the cluster's servers, and hears
    /// theirs; only for clusters the mesh was configured with.
    exchange: Option<MetadataExchangeLayer>,
    timeout: Option<Duration>,
    retry: Arc<RetryPolicy>,
    budget: Arc<Budget>,
    rate_limit: Option<Arc<RateLimiter>>,
}

impl<B> Entry<B> {
    /// What the cluster is doing now, as `name`.
    pub(crate) fn status(&self, name: String) -> ClusterStatus {
        let balance = self.core.get_ref();
        let limits = self.core.limits();
        ClusterStatus {
            name,
            endpoints: balance.endpoints(),
            resolve_error: balance.resolve_error().map(|e| e.to_string()),
            circuit_breakers: *limits.thresholds(),
            circuit_breaker_overflows: limits.overflows(),
            rate_limited: self.rate_limit.as_ref().map_or(0, |l| l.limited()),
            retries: self.budget.retries(),
            retry_budget_exhausted: self.budget.exhausted(),
            ejections: balance.ejections(),
        }
    }
}

/// What a cluster is built with, besides its policy and endpoints.
pub(crate) struct Build<'a, B> {
    pub(crate) name: &'a str,
    pub(crate) new_endpoint: &'a NewEndpoint<B>,
    pub(crate) tls_refusals: &'a TlsRefusals,
    pub(crate) ring_size_cap: u64,
    pub(crate) exchange: Option<&'a MetadataExchangeLayer>,
}

impl<B> Entry<B>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    /// The cluster `build.name`: its endpoints from `resolution`, each
    /// reached as `policy` says.
    pub(crate) fn new(build: Build<'_, B>, resolution: Resolution, policy: &ClusterPolicy) -> Self {
        let detector = OutlierDetector::new(policy.outlier);
        let new_endpoint = {
            let detector = detector.clone();
            let make = build.new_endpoint.clone();
            let policy = policy.clone();
            let name: Arc<str> = build.name.into();
            let refusals = build.tls_refusals.clone();
            move |endpoint: Endpoint| {
                let tls = policy.tls_for(&endpoint.labels);
                let service = make(&endpoint, &policy, tls).unwrap_or_else(|reason| {
                    let refusing = TlsRequired::new(&name, &reason, &refusals);
                    EndpointService::new(move |req| Box::pin(refusing.clone().oneshot(req)))
                });
                OutlierLayer::new(detector.clone(), endpoint.addr).layer(service)
            }
        };
        let balance = Balance::new(
            resolution,
            new_endpoint,
            policy.load_balancer.with_ring_size_cap(build.ring_size_cap),
            Some(detector),
        );
        let core = CircuitBreakerLayer::new(Limits::new(policy.circuit_breakers)).layer(balance);
        Self {
            core,
            exchange: build.exchange.cloned(),
            timeout: policy.timeout,
            retry: Arc::new(policy.retry.clone()),
            budget: Arc::new(Budget::new(policy.retry.budget)),
            rate_limit: policy
                .rate_limit
                .clone()
                .map(|p| Arc::new(RateLimiter::new(p))),
        }
    }

    /// Sends `req` through the cluster: its rate limit, then `timeout` and
    /// `retry` where given (a route's), else the cluster's own, with the
    /// cluster's retry budget; the response names `name`, if given, as
    /// the [`SelectedCluster`]. One allocation: the future.
    pub(crate) fn call(
        &self,
        mut req: http::Request<RequestBody<B>>,
        timeout: Option<Option<Duration>>,
        retry: Option<&Arc<RetryPolicy>>,
        name: Option<&ClusterName>,
    ) -> super::ResponseFuture {
        let name = name.cloned();
        if let Some(exchange) = &self.exchange {
            exchange.tell(req.headers_mut());
        }
        let exchange = self.exchange.clone();
        let named = move |mut res: http::Response<ResponseBody>| {
            if let Some(name) = name {
                res.extensions_mut().insert(SelectedCluster(name));
            }
            if let Some(exchange) = exchange {
                exchange.hear(&mut res);
            }
            res
        };
        if let Some(refused) = self.rate_limit.as_ref().and_then(|l| l.check(&req)) {
            return Box::pin(std::future::ready(Ok(named(refused))));
        }
        let retry = retry.unwrap_or(&self.retry).clone();
        let attempts = crate::retry::retry(self.core.clone(), retry, self.budget.clone(), req);
        let attempts =
            crate::timeout::ResponseFuture::within(attempts, timeout.unwrap_or(self.timeout));
        Box::pin(async move { Ok(named(attempts.await?.map(ResponseBody::from))) })
    }
}
