//! `ratings`: the stars each reviewer gave a product, as Istio's ratings
//! service answers them, over HTTP and over gRPC on one port (a request
//! whose content type is `application/grpc` is gRPC).
//!
//! - `GET /ratings/<id>`: `{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}`;
//!   an id that is not a number is `400`
//!   `{"error":"please provide numeric product ID"}`.
//! - `GET /health`: `{"status":"Ratings is healthy"}`.
//! - gRPC `bookinfo.ratings.v1.Ratings/GetRatings` (`proto/ratings.proto`):
//!   the same ratings, as [`GetRatingsResponse`].

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::{Method, Request, Response, StatusCode};
use serde::Serialize;

use crate::http::{Body, json, not_found, product_id};

/// The gRPC service's full name.
pub const SERVICE: &str = "bookinfo.ratings.v1.Ratings";

/// The path of `GetRatings`.
pub const GET_RATINGS: &str = "/bookinfo.ratings.v1.Ratings/GetRatings";

/// `GetRatingsRequest` of `proto/ratings.proto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetRatingsRequest {
    /// The product.
    #[prost(int64, tag = "1")]
    pub product_id: i64,
}

/// `GetRatingsResponse` of `proto/ratings.proto`.
#[derive(Clone, PartialEq, Serialize, prost::Message)]
pub struct GetRatingsResponse {
    /// The product.
    #[prost(int64, tag = "1")]
    pub id: i64,
    /// Stars (1 to 5) by reviewer.
    #[prost(btree_map = "string, int32", tag = "2")]
    pub ratings: BTreeMap<String, i32>,
}

/// The ratings of product `id`: every product has the same two.
pub fn ratings_of(id: i64) -> GetRatingsResponse {
    GetRatingsResponse {
        id,
        ratings: BTreeMap::from([("Reviewer1".to_owned(), 5), ("Reviewer2".to_owned(), 4)]),
    }
}

#[derive(Serialize)]
struct Status {
    status: &'static str,
}

#[derive(Serialize)]
struct Error {
    error: &'static str,
}

/// The ratings service, HTTP and gRPC.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ratings;

impl tonic::server::NamedService for Ratings {
    const NAME: &'static str = SERVICE;
}

impl<B> tower::Service<Request<B>> for Ratings
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send,
{
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let grpc = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes().starts_with(b"application/grpc"));
        Box::pin(async move {
            if !grpc {
                return Ok(http(&req).map(tonic::body::Body::new));
            }
            if req.uri().path() != GET_RATINGS {
                return Ok(tonic::Status::unimplemented(format!(
                    "{} is not a method of {SERVICE}",
                    req.uri().path()
                ))
                .into_http());
            }
            let get = tower::service_fn(|req: tonic::Request<GetRatingsRequest>| async move {
                Ok::<_, tonic::Status>(tonic::Response::new(ratings_of(req.get_ref().product_id)))
            });
            let codec = tonic_prost::ProstCodec::<GetRatingsResponse, GetRatingsRequest>::default();
            Ok(tonic::server::Grpc::new(codec).unary(get, req).await)
        })
    }
}

/// The HTTP answer to `req`.
fn http<B>(req: &Request<B>) -> Response<Body> {
    if req.method() != Method::GET {
        return not_found();
    }
    let path = req.uri().path();
    if path == "/health" {
        let status = Status {
            status: "Ratings is healthy",
        };
        return json(StatusCode::OK, &status);
    }
    match product_id(path, "/ratings/") {
        Some(Ok(id)) => json(StatusCode::OK, &ratings_of(id)),
        Some(Err(_)) => json(
            StatusCode::BAD_REQUEST,
            &Error {
                error: "please provide numeric product ID",
            },
        ),
        None => not_found(),
    }
}

/// A gRPC client of the ratings service over `channel` (a tonic channel,
/// or the mesh's `xds:///` one).
#[derive(Clone, Debug)]
pub struct RatingsClient<T> {
    grpc: tonic::client::Grpc<T>,
}

impl<T> RatingsClient<T>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    /// A client sending over `channel`.
    pub fn new(channel: T) -> Self {
        Self {
            grpc: tonic::client::Grpc::new(channel),
        }
    }

    /// The ratings of `product_id`, with `metadata` (the headers the
    /// caller propagates) sent along.
    pub async fn get_ratings(
        &mut self,
        product_id: i64,
        metadata: tonic::metadata::MetadataMap,
    ) -> Result<GetRatingsResponse, tonic::Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.into().to_string()))?;
        let mut req = tonic::Request::new(GetRatingsRequest { product_id });
        *req.metadata_mut() = metadata;
        let path = http::uri::PathAndQuery::from_static(GET_RATINGS);
        let codec = tonic_prost::ProstCodec::<GetRatingsRequest, GetRatingsResponse>::default();
        let res = self.grpc.unary(req, path, codec).await?;
        Ok(res.into_inner())
    }
}
