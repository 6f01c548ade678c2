//! `reviews` v1, v2 and v3: two reviews of a product, as Istio's reviews
//! service writes them; v2 and v3 add each reviewer's stars, from
//! `ratings` over gRPC, in black (v2) or red (v3).
//!
//! - `GET /reviews/<id>`: `{"id":"0","podname":…,"clustername":…,
//!   "reviews":[{"reviewer":"Reviewer1","text":…},…]}`, each review with
//!   `"rating":{"stars":5,"color":"black"}` from v2 on, or
//!   `"rating":{"error":"Ratings service is currently unavailable"}` when
//!   ratings does not answer within its timeout (10 s for v2, 2.5 s for
//!   v3, as the originals wait).
//!   An id that is not a number is `404`.
//! - `GET /health`: `{"status":"Reviews is healthy"}`.
//!
//! The headers of [`propagate`](crate::propagate) go on to ratings as
//! gRPC metadata.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::{Method, Request, Response, StatusCode};
use serde::Serialize;

use crate::http::{Body, json, not_found, product_id};
use crate::propagate::propagated;
use crate::ratings::RatingsClient;

/// A version of reviews.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Version {
    /// No ratings.
    V1,
    /// Black stars.
    V2,
    /// Red stars.
    V3,
}

impl Version {
    /// Its label, `v1`.
    pub fn label(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
            Version::V3 => "v3",
        }
    }

    /// The colour of its stars and how long it waits for ratings; `None`
    /// for v1, which shows none.
    fn stars(self) -> Option<(&'static str, Duration)> {
        match self {
            Version::V1 => None,
            Version::V2 => Some(("black", Duration::from_secs(10))),
            Version::V3 => Some(("red", Duration::from_millis(2500))),
        }
    }
}

/// The text of each reviewer's review.
const REVIEWS: [(&str, &str); 2] = [
    (
        "Reviewer1",
        "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!",
    ),
    (
        "Reviewer2",
        "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.",
    ),
];

/// What a ratings failure shows in place of stars.
pub const RATINGS_UNAVAILABLE: &str = "Ratings service is currently unavailable";

/// The answer to `GET /reviews/<id>`.
#[derive(Debug, Serialize)]
struct ProductReviews<'a> {
    id: String,
    podname: &'a str,
    clustername: &'a str,
    reviews: Vec<Review>,
}

#[derive(Debug, Serialize)]
struct Review {
    reviewer: &'static str,
    text: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rating: Option<Rating>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Rating {
    Stars { stars: i32, color: &'static str },
    Error { error: &'static str },
}

#[derive(Serialize)]
struct Status {
    status: &'static str,
}

/// The reviews service of one version; its ratings come over `T`.
#[derive(Clone, Debug)]
pub struct Reviews<T> {
    version: Version,
    pod: Arc<str>,
    cluster: Arc<str>,
    ratings: RatingsClient<T>,
}

impl<T> Reviews<T> {
    /// `version`, running as the pod `pod` in cluster `cluster` (what
    /// its answers say served them), asking `ratings`.
    pub fn new(version: Version, pod: &str, cluster: &str, ratings: RatingsClient<T>) -> Self {
        Self {
            version,
            pod: pod.into(),
            cluster: cluster.into(),
            ratings,
        }
    }
}

impl<T, B> tower::Service<Request<B>> for Reviews<T>
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + Send + 'static,
    T::Future: Send,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<tonic::codegen::StdError> + Send,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.answer(req).await) })
    }
}

impl<T> Reviews<T>
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    async fn answer<B>(mut self, req: Request<B>) -> Response<Body> {
        if req.method() != Method::GET {
            return not_found();
        }
        let path = req.uri().path();
        if path == "/health" {
            let status = Status {
                status: "Reviews is healthy",
            };
            return json(StatusCode::OK, &status);
        }
        // A product id that is not a number matches no route, as the
        // original's integer path parameter does not.
        let Some(Ok(id)) = product_id(path, "/reviews/") else {
            return not_found();
        };
        let ratings = match self.version.stars() {
            None => None,
            Some((color, wait)) => {
                let metadata =
                    tonic::metadata::MetadataMap::from_headers(propagated(req.headers()));
                let asked =
                    tokio::time::timeout(wait, self.ratings.get_ratings(id, metadata)).await;
                Some(match asked {
                    Ok(Ok(ratings)) => Ok((ratings.ratings, color)),
                    Ok(Err(status)) => Err(status.to_string()),
                    Err(_) => Err(format!("no answer within {wait:?}")),
                })
            }
        };
        if let Some(Err(reason)) = &ratings {
            tracing::warn!(%reason, product = id, "ratings unavailable");
        }
        let reviews = REVIEWS
            .iter()
            .map(|&(reviewer, text)| Review {
                reviewer,
                text,
                rating: ratings.as_ref().map(|r| match r {
                    Ok((stars, color)) => match stars.get(reviewer) {
                        Some(&stars) => Rating::Stars { stars, color },
                        None => Rating::Error {
                            error: RATINGS_UNAVAILABLE,
                        },
                    },
                    Err(_) => Rating::Error {
                        error: RATINGS_UNAVAILABLE,
                    },
                }),
            })
            .collect();
        let body = ProductReviews {
            id: id.to_string(),
            podname: &self.pod,
            clustername: &self.cluster,
            reviews,
        };
        json(StatusCode::OK, &body)
    }
}
