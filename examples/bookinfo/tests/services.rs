//! Each service on its own, on a real port: the routes, JSON and texts of
//! Istio's bookinfo; reviews asking a real ratings over gRPC, passing the
//! caller's headers on, and showing the ratings error when ratings is
//! down or slower than its version waits.

mod support;

use bookinfo::ratings::{Ratings, RatingsClient};
use bookinfo::reviews::Version;
use support::{channel, get, recording, reviews, serve};
use tokio::net::TcpListener;

#[tokio::test]
async fn details_answers_as_istios_does() {
    let addr = serve(tower::service_fn(bookinfo::details::handle)).await;
    assert_eq!(
        get(addr, "/details/0", &[]).await,
        (
            200,
            r#"{"id":0,"author":"William Shakespeare","year":1595,"type":"paperback","pages":200,"publisher":"PublisherA","language":"English","ISBN-10":"1234567890","ISBN-13":"123-1234567890"}"#.into()
        )
    );
    assert_eq!(
        get(addr, "/details/x", &[]).await,
        (
            400,
            r#"{"error":"please provide numeric product id"}"#.into()
        )
    );
    assert_eq!(
        get(addr, "/health", &[]).await,
        (200, r#"{"status":"Details is healthy"}"#.into())
    );
    assert_eq!(get(addr, "/other", &[]).await.0, 404);
}

#[tokio::test]
async fn ratings_answers_over_http_and_grpc_on_one_port() {
    let addr = serve(Ratings).await;
    assert_eq!(
        get(addr, "/ratings/0", &[]).await,
        (
            200,
            r#"{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}"#.into()
        )
    );
    assert_eq!(
        get(addr, "/ratings/zero", &[]).await,
        (
            400,
            r#"{"error":"please provide numeric product ID"}"#.into()
        )
    );
    assert_eq!(
        get(addr, "/health", &[]).await,
        (200, r#"{"status":"Ratings is healthy"}"#.into())
    );
    let mut client = RatingsClient::new(channel(addr));
    let got = client.get_ratings(3, Default::default()).await.unwrap();
    assert_eq!(got, bookinfo::ratings::ratings_of(3));
    assert_eq!(got.ratings["Reviewer2"], 4);
}

const TEXTS: &str = r#""reviews":[{"reviewer":"Reviewer1","text":"An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"RATING1},{"reviewer":"Reviewer2","text":"Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare."RATING2}]"#;

fn expected(rating1: &str, rating2: &str) -> String {
    format!(
        r#"{{"id":"0","podname":"reviews-v1-0","clustername":"null",{}}}"#,
        TEXTS
            .replace("RATING1", rating1)
            .replace("RATING2", rating2)
    )
}

#[tokio::test]
async fn reviews_v1_shows_no_stars_and_v2_v3_ask_ratings() {
    let (ratings, seen) = recording(Ratings).await;
    let v1 = serve(reviews(Version::V1, ratings)).await;
    assert_eq!(get(v1, "/reviews/0", &[]).await, (200, expected("", "")));
    assert!(seen.lock().unwrap().is_empty(), "v1 does not ask ratings");

    let v2 = serve(reviews(Version::V2, ratings)).await;
    let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let headers = [
        ("end-user", "jason"),
        ("x-request-id", "r-1"),
        ("traceparent", trace),
        ("x-private", "no"),
    ];
    assert_eq!(
        get(v2, "/reviews/0", &headers).await,
        (
            200,
            expected(
                r#","rating":{"stars":5,"color":"black"}"#,
                r#","rating":{"stars":4,"color":"black"}"#
            )
        )
    );
    let sent = seen.lock().unwrap().clone();
    assert!(
        sent.contains(&("end-user".into(), "jason".into())),
        "{sent:?}"
    );
    assert!(
        sent.contains(&("x-request-id".into(), "r-1".into())),
        "{sent:?}"
    );
    assert!(
        sent.contains(&("traceparent".into(), trace.into())),
        "{sent:?}"
    );
    assert!(!sent.iter().any(|(k, _)| k == "x-private"), "{sent:?}");

    let v3 = serve(reviews(Version::V3, ratings)).await;
    let (status, body) = get(v3, "/reviews/0", &[]).await;
    assert_eq!(status, 200);
    assert!(
        body.contains(r#""rating":{"stars":5,"color":"red"}"#),
        "{body}"
    );
    assert_eq!(
        get(v3, "/health", &[]).await,
        (200, r#"{"status":"Reviews is healthy"}"#.into())
    );
    assert_eq!(get(v3, "/reviews/x", &[]).await.0, 404);
}

#[tokio::test]
async fn reviews_shows_the_ratings_error_when_ratings_is_down() {
    let down = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = down.local_addr().unwrap();
    drop(down);
    let v2 = serve(reviews(Version::V2, addr)).await;
    let error = r#","rating":{"error":"Ratings service is currently unavailable"}"#;
    assert_eq!(
        get(v2, "/reviews/0", &[]).await,
        (200, expected(error, error))
    );
}

#[tokio::test(start_paused = true)]
async fn reviews_v3_waits_for_ratings_two_and_a_half_seconds() {
    // A ratings that takes a minute.
    let slow = tower::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        tower::ServiceExt::oneshot(Ratings, req).await
    });
    let ratings = serve(slow).await;
    let v3 = serve(reviews(Version::V3, ratings)).await;
    let started = tokio::time::Instant::now();
    let (status, body) = get(v3, "/reviews/0", &[]).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("Ratings service is currently unavailable"),
        "{body}"
    );
    let waited = started.elapsed();
    assert!(
        (std::time::Duration::from_millis(2500)..std::time::Duration::from_secs(3))
            .contains(&waited),
        "{waited:?}"
    );
}
