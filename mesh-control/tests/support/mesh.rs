//! A `MeshClient` following a control plane over `xds:///`, and requests
//! through it to reviews, whose upstreams answer with their version.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use mesh_core::StaticResolve;
use mesh_tower::MeshClient;
use mesh_xds::Bootstrap;
use mesh_xds::ads::AdsClient;
use tower::ServiceExt;

use super::control::WAIT;

/// The service the requests go to.
pub(crate) const TARGET: &str = "reviews.default.svc.cluster.local:9080";

const BOOKINFO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../mesh-istio/tests/data/bookinfo"
);

/// The text of Istio's bookinfo sample `file`.
pub(crate) fn bookinfo(file: &str) -> String {
    std::fs::read_to_string(format!("{BOOKINFO}/{file}")).unwrap()
}

/// A client of the control plane at `xds`.
pub(crate) fn client(xds: SocketAddr) -> MeshClient<Full<Bytes>> {
    client_with(&Bootstrap::insecure(&xds.to_string(), "productpage-v1").unwrap())
}

/// A client with `bootstrap`.
pub(crate) fn client_with(bootstrap: &Bootstrap) -> MeshClient<Full<Bytes>> {
    MeshClient::builder(StaticResolve::default())
        .xds(AdsClient::start(bootstrap).unwrap())
        .build()
}

/// Which version answered, or why there was no answer.
pub(crate) async fn get(
    client: &MeshClient<Full<Bytes>>,
    user: Option<&str>,
) -> Result<String, String> {
    let mut req = http::Request::get(format!("http://{TARGET}/reviews/0"));
    if let Some(user) = user {
        req = req.header("end-user", user);
    }
    let res = client
        .clone()
        .oneshot(req.body(Full::default()).unwrap())
        .await
        .map_err(|e| e.to_string())?;
    if res.status() != 200 {
        return Err(format!("status {}", res.status()));
    }
    let body = res.into_body().collect().await.map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned())
}

/// Waits until a request without a user goes to `version`.
pub(crate) async fn wait_for_version(client: &MeshClient<Full<Bytes>>, version: &str) {
    tokio::time::timeout(WAIT, async {
        while get(client, None).await.ok().as_deref() != Some(version) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("requests never reached {version}"));
}
