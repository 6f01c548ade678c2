use std::convert::Infallible;

use tower::{Layer, ServiceExt};

use super::*;

fn workload(name: &str, app: &str) -> WorkloadMetadata {
    let labels = [("app".to_owned(), app.to_owned())].into();
    WorkloadMetadata::from_labels(&format!("{name}-0"), "default", name, &labels)
}

fn id(name: &str) -> HeaderValue {
    HeaderValue::try_from(format!(
        "sidecar~10.0.0.1~{name}-0.default~default.svc.cluster.local"
    ))
    .unwrap()
}

/// What the application behind the server saw.
#[derive(Clone, Debug, Default)]
struct Seen {
    peer: Option<PeerMetadata>,
    exchange_headers: usize,
}

/// A server exchanging metadata as ratings, in front of an application
/// that answers with what it saw.
fn ratings()
-> impl Service<http::Request<()>, Response = http::Response<Seen>, Error = Infallible> + Clone {
    let app = tower::service_fn(|req: http::Request<()>| async move {
        let exchange_headers = [PEER_METADATA, PEER_METADATA_ID]
            .iter()
            .filter(|h| req.headers().contains_key(*h))
            .count();
        let seen = Seen {
            peer: req.extensions().get::<PeerMetadata>().cloned(),
            exchange_headers,
        };
        Ok::<_, Infallible>(http::Response::new(seen))
    });
    MetadataExchangeLayer::new(Side::Server, &workload("ratings", "ratings"), id("ratings"))
        .layer(app)
}

#[tokio::test]
async fn each_side_learns_the_others_metadata_and_the_application_sees_no_header() {
    let client =
        MetadataExchangeLayer::new(Side::Client, &workload("reviews", "reviews"), id("reviews"))
            .layer(ratings());
    for _ in 0..2 {
        let res = client
            .clone()
            .oneshot(http::Request::new(()))
            .await
            .unwrap();
        assert!(!res.headers().contains_key(PEER_METADATA));
        assert!(!res.headers().contains_key(PEER_METADATA_ID));
        let server = res.extensions().get::<PeerMetadata>().unwrap();
        assert_eq!(*server.0, workload("ratings", "ratings"));
        let seen = res.into_body();
        assert_eq!(seen.exchange_headers, 0);
        assert_eq!(*seen.peer.unwrap().0, workload("reviews", "reviews"));
    }
}

#[tokio::test]
async fn a_caller_outside_the_mesh_is_told_nothing_and_bad_metadata_is_no_error() {
    // No headers: no peer, and the response carries none of ours.
    let res = ratings().oneshot(http::Request::new(())).await.unwrap();
    assert!(res.headers().is_empty());
    assert!(res.into_body().peer.is_none());

    // Only the id: it is answered with the id alone.
    let mut req = http::Request::new(());
    req.headers_mut().insert(PEER_METADATA_ID, id("stranger"));
    let res = ratings().oneshot(req).await.unwrap();
    assert_eq!(res.headers().get(PEER_METADATA_ID), Some(&id("ratings")));
    assert!(!res.headers().contains_key(PEER_METADATA));

    // Metadata that does not read: unknown, taken off, no error.
    let mut req = http::Request::new(());
    req.headers_mut()
        .insert(PEER_METADATA, HeaderValue::from_static("%%%not-base64"));
    let res = ratings().oneshot(req).await.unwrap();
    assert!(res.headers().contains_key(PEER_METADATA));
    let seen = res.into_body();
    assert!(seen.peer.is_none());
    assert_eq!(seen.exchange_headers, 0);
}

#[test]
fn peers_are_decoded_once_and_kept_up_to_a_bound() {
    let local = Local::new(&workload("ratings", "ratings"), id("ratings"));
    let header = |n: usize| {
        let mut headers = HeaderMap::new();
        let peer = workload(&format!("caller{n}"), "caller");
        headers.insert(PEER_METADATA, codec::encode(&peer).try_into().unwrap());
        headers
    };
    let (first, _, _) = local.hear(&mut header(0));
    let (again, _, _) = local.hear(&mut header(0));
    assert!(Arc::ptr_eq(&first.unwrap().0, &again.unwrap().0));
    for n in 1..CACHED + 10 {
        let (peer, metadata, _) = local.hear(&mut header(n));
        assert!(peer.is_some() && metadata);
    }
    assert_eq!(local.peers.read().unwrap().len(), CACHED);
}

#[test]
fn metadata_that_does_not_read_is_remembered_as_unknown() {
    let local = Local::new(&workload("ratings", "ratings"), id("ratings"));
    let broken = || {
        let mut headers = HeaderMap::new();
        headers.insert(PEER_METADATA, HeaderValue::from_static("%%%not-base64"));
        headers
    };
    for _ in 0..2 {
        let (peer, metadata, _) = local.hear(&mut broken());
        assert!(peer.is_none() && metadata);
    }
    let peers = local.peers.read().unwrap();
    assert_eq!(peers.len(), 1);
    assert!(peers.values().all(Option::is_none));
}
