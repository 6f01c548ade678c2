//! productpage on its own port, calling real details, reviews and
//! ratings: the page's texts, stars and error texts, signing in (the
//! user's name going on as `end-user`), the call to reviews tried twice
//! and each call's 3 s timeout (paused time), and the JSON API.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bookinfo::productpage::{Productpage, Upstreams};
use bookinfo::ratings::Ratings;
use bookinfo::reviews::Version;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioExecutor;
use support::{get, recording, reviews, send, serve, stars};

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

/// productpage calling `details`, `reviews` and `ratings`.
async fn productpage(details: SocketAddr, reviews: SocketAddr, ratings: SocketAddr) -> SocketAddr {
    let client: Client =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
    let upstreams = Upstreams {
        details: format!("http://{details}"),
        reviews: format!("http://{reviews}"),
        ratings: format!("http://{ratings}"),
    };
    serve(Productpage::new(client, upstreams)).await
}

/// An address nothing listens on.
async fn nowhere() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn the_page_shows_details_and_reviews_with_the_texts_of_istios() {
    let ratings = serve(Ratings).await;
    let details = serve(tower::service_fn(bookinfo::details::handle)).await;
    let v1 = serve(reviews(Version::V1, ratings)).await;
    let page = productpage(details, v1, ratings).await;
    let (status, html) = get(page, "/productpage", &[]).await;
    assert_eq!(status, 200);
    for text in [
        "<title>Simple Bookstore App</title>",
        "The Comedy of Errors",
        "Wikipedia Summary</a>: The Comedy of Errors is one of <b>William Shakespeare's</b> early plays.",
        "Book Details",
        "<td>1234567890</td><td>PublisherA</td><td>200</td><td>paperback</td><td>English</td>",
        "Book Reviews",
        "\"An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!\"",
        "Reviewer2",
        "Reviews served by: <span>reviews-v1-0</span>",
        "Sign in",
    ] {
        assert!(html.contains(text), "{text:?} is not in {html}");
    }
    assert!(stars(&html).is_empty(), "v1 shows no stars");
    assert!(
        !html.contains("on cluster"),
        "a cluster named null is not shown"
    );

    let v3 = serve(reviews(Version::V3, ratings)).await;
    let page = productpage(details, v3, ratings).await;
    let (_, html) = get(page, "/productpage", &[]).await;
    assert_eq!(stars(&html), [(5, "red".into()), (4, "red".into())]);
    assert_eq!(
        get(page, "/health", &[]).await,
        (200, "Product page is healthy".into())
    );
    let (status, index) = get(page, "/", &[]).await;
    assert_eq!(status, 200);
    assert!(index.contains("/productpage?u=normal"), "{index}");
}

#[tokio::test]
async fn a_signed_in_user_goes_on_as_end_user() {
    let ratings = serve(Ratings).await;
    let details = serve(tower::service_fn(bookinfo::details::handle)).await;
    let (v2, seen) = recording(reviews(Version::V2, ratings)).await;
    let page = productpage(details, v2, ratings).await;

    let form = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("referer", "/productpage?u=test"),
    ];
    let (status, headers, _) = send(
        page,
        http::Method::POST,
        "/login",
        &form,
        "username=jason&passwd=x",
    )
    .await;
    assert_eq!(status, 302);
    assert_eq!(headers["location"], "/productpage?u=test");
    let cookie = headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("session=") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();

    // An end-user header from outside is not taken for the user.
    let forged = [("cookie", session.as_str()), ("end-user", "mallory")];
    let (_, html) = get(page, "/productpage", &forged).await;
    assert!(
        html.contains("jason") && html.contains("Sign out"),
        "{html}"
    );
    assert_eq!(stars(&html), [(5, "black".into()), (4, "black".into())]);
    let sent: Vec<_> = seen.lock().unwrap().clone();
    let users: Vec<_> = sent
        .iter()
        .filter(|(k, _)| k == "end-user")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(users, ["jason"]);

    let (status, headers, _) = send(
        page,
        http::Method::GET,
        "/logout",
        &[("cookie", &session)],
        "",
    )
    .await;
    assert_eq!(status, 302);
    assert!(
        headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let (_, html) = get(page, "/productpage", &[("cookie", &session)]).await;
    assert!(html.contains("Sign in") && !html.contains("Sign out"));
}

#[tokio::test]
async fn a_failed_service_shows_its_error_text_and_reviews_is_tried_twice() {
    let ratings = serve(Ratings).await;
    // reviews failing its first call of each pair.
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let v1 = reviews(Version::V1, ratings);
    let flaky = tower::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        let v1 = v1.clone();
        async move {
            if n.is_multiple_of(2) {
                let mut res = http::Response::new(bookinfo::http::Body::default());
                *res.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                return Ok::<_, std::convert::Infallible>(res);
            }
            tower::ServiceExt::oneshot(v1, req).await
        }
    });
    let flaky = serve(flaky).await;
    let page = productpage(nowhere().await, flaky, ratings).await;
    let (status, html) = get(page, "/productpage", &[]).await;
    assert_eq!(status, 200);
    assert!(html.contains("Error fetching product details"), "{html}");
    assert!(
        html.contains("Sorry, product details are currently unavailable for this book."),
        "{html}"
    );
    assert!(
        html.contains("Book Reviews"),
        "the second try served: {html}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let page = productpage(nowhere().await, nowhere().await, ratings).await;
    let (_, html) = get(page, "/productpage", &[]).await;
    assert!(html.contains("Error fetching product reviews"), "{html}");
    assert!(
        html.contains("Sorry, product reviews are currently unavailable for this book."),
        "{html}"
    );
}

#[tokio::test(start_paused = true)]
async fn each_call_waits_three_seconds() {
    let ratings = serve(Ratings).await;
    let slow = tower::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        bookinfo::details::handle(req).await
    });
    let details = serve(slow).await;
    let v1 = serve(reviews(Version::V1, ratings)).await;
    let page = productpage(details, v1, ratings).await;
    let started = tokio::time::Instant::now();
    let (_, html) = get(page, "/productpage", &[]).await;
    assert!(html.contains("Error fetching product details"), "{html}");
    assert!(html.contains("Book Reviews"), "{html}");
    let waited = started.elapsed();
    assert!(
        (std::time::Duration::from_secs(3)..std::time::Duration::from_millis(3500))
            .contains(&waited),
        "{waited:?}"
    );
}

#[tokio::test]
async fn the_api_answers_json_with_the_upstreams_status() {
    let ratings = serve(Ratings).await;
    let details = serve(tower::service_fn(bookinfo::details::handle)).await;
    let v1 = serve(reviews(Version::V1, ratings)).await;
    let page = productpage(details, v1, ratings).await;
    let (status, products) = get(page, "/api/v1/products", &[]).await;
    assert_eq!(status, 200);
    let products: serde_json::Value = serde_json::from_str(&products).unwrap();
    assert_eq!(products[0]["id"], 0);
    assert_eq!(products[0]["title"], "The Comedy of Errors");
    assert!(
        products[0]["descriptionHtml"]
            .as_str()
            .unwrap()
            .starts_with("<a href=")
    );
    let (status, book) = get(page, "/api/v1/products/0", &[]).await;
    assert_eq!(status, 200);
    assert!(book.contains("\"ISBN-13\":\"123-1234567890\""), "{book}");
    assert_eq!(
        get(page, "/api/v1/products/x", &[]).await,
        (
            400,
            r#"{"error":"Sorry, product details are currently unavailable for this book."}"#.into()
        )
    );
    assert_eq!(
        get(page, "/api/v1/products/0/ratings", &[]).await,
        (
            200,
            r#"{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}"#.into()
        )
    );
    let (status, reviews) = get(page, "/api/v1/products/0/reviews", &[]).await;
    assert_eq!(status, 200);
    assert!(
        reviews.contains("\"podname\":\"reviews-v1-0\""),
        "{reviews}"
    );
}
