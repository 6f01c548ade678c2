//! Bookinfo's reviews v1, v2, v3 and ratings as real servers, registered
//! under their cluster-local names with `version` labels.

use std::time::Duration;

use bytes::Bytes;
use mesh_core::{EndpointSet, MeshConfig, StaticResolve};
use mesh_tower::MeshClient;

use super::Server;

pub const REVIEWS: &str = "reviews.default.svc.cluster.local";
pub const RATINGS: &str = "ratings.default.svc.cluster.local";

/// Bookinfo's reviews v1, v2, v3 and ratings, registered under their
/// cluster-local names with `version` labels.
pub struct Bookinfo {
    pub reviews: Vec<Server>,
    pub ratings: Server,
    pub resolve: StaticResolve,
}

impl Bookinfo {
    pub async fn start() -> Self {
        let mut reviews = Vec::new();
        for v in ["v1", "v2", "v3"] {
            reviews.push(Server::start(&format!("reviews-{v}"), Duration::ZERO).await);
        }
        let ratings = Server::start("ratings-v1", Duration::ZERO).await;
        let resolve = StaticResolve::default();
        let labelled = |s: &Server, v: &str| {
            let mut e = s.endpoint();
            e.labels.insert("version".into(), v.into());
            e
        };
        resolve.set(
            &format!("{REVIEWS}:9080").parse().unwrap(),
            EndpointSet::new(
                reviews
                    .iter()
                    .zip(["v1", "v2", "v3"])
                    .map(|(s, v)| labelled(s, v)),
            ),
        );
        resolve.set(
            &format!("{RATINGS}:9080").parse().unwrap(),
            EndpointSet::new([labelled(&ratings, "v1")]),
        );
        Self {
            reviews,
            ratings,
            resolve,
        }
    }

    /// A client routing by `config`, with fixed draws.
    pub fn client<B>(&self, config: MeshConfig) -> MeshClient<B>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<mesh_tower::BoxError>,
    {
        MeshClient::builder(self.resolve.clone())
            .config(config)
            .seed(42)
            .build()
    }
}

/// The configuration of Istio's bookinfo samples `files`, with the
/// DestinationRules of every subset (the `istio` feature).
#[cfg(feature = "istio")]
pub fn samples(files: &[&str]) -> MeshConfig {
    let dir = std::env::temp_dir().join(format!(
        "mesh-bookinfo-{}-{}",
        std::process::id(),
        files.join("+")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../mesh-istio/tests/data/bookinfo"
    );
    for f in files.iter().chain(&["destination-rule-all.yaml"]) {
        std::fs::copy(format!("{data}/{f}"), dir.join(f)).unwrap();
    }
    let (config, warnings) = mesh_tower::istio::load(&dir).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    std::fs::remove_dir_all(&dir).unwrap();
    config
}
