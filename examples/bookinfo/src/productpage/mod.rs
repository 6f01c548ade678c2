//! `productpage`: the page people see, as Istio's productpage serves it,
//! from details and reviews, each call with a 3 s timeout and the call to
//! reviews tried twice (the original's deliberate bug, which Istio's
//! fault-injection task relies on). Always `200`: a service that fails
//! shows its error text in its place.
//!
//! - `GET /productpage`: the page (HTML).
//! - `GET /` and `/index.html`: the index.
//! - `POST /login` (form `username`, `passwd`): signs the user in (the
//!   `session` cookie) and redirects back; `GET /logout` signs out. A
//!   signed-in user's calls carry `end-user: USER`, which routes match.
//! - `GET /api/v1/products`, `/api/v1/products/<id>` (details),
//!   `…/<id>/reviews`, `…/<id>/ratings` (ratings over HTTP): JSON, with
//!   the upstream's status.
//! - `GET /health`: `Product page is healthy`.
//!
//! The headers of [`propagate`](crate::propagate) go on to every call,
//! but for `end-user`, which is the session's.

mod html;
mod session;

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use serde::Serialize;
use serde_json::Value;
use tower::ServiceExt;

pub use session::Sessions;

use crate::http::{Body, json, not_found, with_type};
use crate::propagate::propagated;

/// How long each call waits for its answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// The largest login form read.
const MAX_FORM: usize = 8 * 1024;

/// The one product.
#[derive(Debug, Serialize)]
pub struct Product {
    /// Its id.
    pub id: i64,
    /// Its title.
    pub title: &'static str,
    /// What it is, as HTML.
    #[serde(rename = "descriptionHtml")]
    pub description_html: &'static str,
}

/// The Comedy of Errors.
pub const PRODUCT: Product = Product {
    id: 0,
    title: "The Comedy of Errors",
    description_html: "<a href=\"https://en.wikipedia.org/wiki/The_Comedy_of_Errors\">Wikipedia Summary</a>: The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his shortest and one of his most farcical comedies, with a major part of the humour coming from slapstick and mistaken identity, in addition to puns and word play.",
};

/// What a call to a service gave: its status and JSON, or the status
/// and error the page shows in its place (`500` when nothing answered).
#[derive(Debug)]
pub struct Fetched {
    /// The status.
    pub status: StatusCode,
    /// The JSON.
    pub body: Value,
}

impl Fetched {
    fn ok(&self) -> bool {
        self.status == StatusCode::OK
    }
}

/// Where productpage's services are.
#[derive(Clone, Debug)]
pub struct Upstreams {
    /// details (`http://details:9080`).
    pub details: String,
    /// reviews (`http://reviews:9080`).
    pub reviews: String,
    /// ratings (`http://ratings:9080`).
    pub ratings: String,
}

impl Default for Upstreams {
    /// Istio's: each service by its short name, on port 9080.
    fn default() -> Self {
        Self {
            details: "http://details:9080".into(),
            reviews: "http://reviews:9080".into(),
            ratings: "http://ratings:9080".into(),
        }
    }
}

/// The productpage service, calling its services through `client` (the
/// mesh's client, or any HTTP client service).
#[derive(Clone, Debug)]
pub struct Productpage<C> {
    client: C,
    upstreams: Arc<Upstreams>,
    sessions: Sessions,
}

impl<C> Productpage<C> {
    /// productpage calling `upstreams` through `client`.
    pub fn new(client: C, upstreams: Upstreams) -> Self {
        Self {
            client,
            upstreams: Arc::new(upstreams),
            sessions: Sessions::default(),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<C, RB, B> tower::Service<Request<B>> for Productpage<C>
where
    C: tower::Service<Request<Full<Bytes>>, Response = Response<RB>>
        + Clone
        + Send
        + Sync
        + 'static,
    C::Future: Send,
    C::Error: Into<BoxError>,
    RB: http_body::Body<Data = Bytes> + Send,
    RB::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
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

impl<C, RB> Productpage<C>
where
    C: tower::Service<Request<Full<Bytes>>, Response = Response<RB>>
        + Clone
        + Send
        + Sync
        + 'static,
    C::Future: Send,
    C::Error: Into<BoxError>,
    RB: http_body::Body<Data = Bytes> + Send,
    RB::Error: Into<BoxError>,
{
    async fn answer<B>(self, req: Request<B>) -> Response<Body>
    where
        B: http_body::Body + Send,
        B::Error: Into<BoxError>,
    {
        let path = req.uri().path().to_owned();
        match (req.method().clone(), path.as_str()) {
            (Method::GET, "/" | "/index.html") => html_page(html::index()),
            (Method::GET, "/health") => with_type(
                StatusCode::OK,
                "text/html; charset=utf-8",
                "Product page is healthy",
            ),
            (Method::POST, "/login") => self.login(req).await,
            (Method::GET, "/logout") => self.logout(&req),
            (Method::GET, "/productpage") => {
                let (user, headers) = (self.user(&req), self.outgoing(&req));
                self.product_page(user, headers).await
            }
            (Method::GET, "/api/v1/products") => json(StatusCode::OK, &[PRODUCT]),
            (Method::GET, api) if api.starts_with("/api/v1/products/") => {
                let headers = self.outgoing(&req);
                self.api(headers, &api["/api/v1/products/".len()..]).await
            }
            _ => not_found(),
        }
    }

    /// The user signed in on `req`'s session, if any.
    fn user<B>(&self, req: &Request<B>) -> Option<String> {
        session::token(req.headers()).and_then(|t| self.sessions.user(t))
    }

    /// The headers calls made for `req` carry.
    fn outgoing<B>(&self, req: &Request<B>) -> http::HeaderMap {
        let mut headers = propagated(req.headers());
        headers.remove("end-user");
        if let Some(user) = self.user(req).and_then(|u| HeaderValue::try_from(u).ok()) {
            headers.insert("end-user", user);
        }
        headers
    }

    async fn product_page(&self, user: Option<String>, headers: http::HeaderMap) -> Response<Body> {
        let id = PRODUCT.id;
        let (details, reviews) = tokio::join!(
            self.fetch(
                format!("{}/details/{id}", self.upstreams.details),
                &headers,
                1,
                "details"
            ),
            self.fetch(
                format!("{}/reviews/{id}", self.upstreams.reviews),
                &headers,
                2,
                "reviews"
            ),
        );
        html_page(html::product_page(user.as_deref(), &details, &reviews))
    }

    async fn api(&self, headers: http::HeaderMap, rest: &str) -> Response<Body> {
        let (id, call) = match rest.split_once('/') {
            None => (rest, None),
            Some((id, what)) => (id, Some(what)),
        };
        let fetched = match call {
            None => {
                let url = format!("{}/details/{id}", self.upstreams.details);
                self.fetch(url, &headers, 1, "details").await
            }
            Some("reviews") => {
                let url = format!("{}/reviews/{id}", self.upstreams.reviews);
                self.fetch(url, &headers, 2, "reviews").await
            }
            Some("ratings") => {
                let url = format!("{}/ratings/{id}", self.upstreams.ratings);
                self.fetch(url, &headers, 1, "ratings").await
            }
            Some(_) => return not_found(),
        };
        json(fetched.status, &fetched.body)
    }

    /// `GET url` with `headers`, tried `attempts` times, each within
    /// [`CALL_TIMEOUT`]: its JSON, or the error the page shows for
    /// `what` (`details`) with the last status (`500` when nothing
    /// answered).
    async fn fetch(
        &self,
        url: String,
        headers: &http::HeaderMap,
        attempts: u32,
        what: &str,
    ) -> Fetched {
        let mut status = StatusCode::INTERNAL_SERVER_ERROR;
        for _ in 0..attempts {
            match tokio::time::timeout(CALL_TIMEOUT, self.get(&url, headers)).await {
                Ok(Ok(fetched)) if fetched.ok() => return fetched,
                Ok(Ok(fetched)) => status = fetched.status,
                Ok(Err(error)) => {
                    tracing::warn!(%url, %error, "call failed");
                    status = StatusCode::INTERNAL_SERVER_ERROR;
                }
                Err(_) => {
                    tracing::warn!(%url, "call timed out");
                    status = StatusCode::INTERNAL_SERVER_ERROR;
                }
            }
        }
        let error = format!("Sorry, product {what} are currently unavailable for this book.");
        Fetched {
            status,
            body: serde_json::json!({ "error": error }),
        }
    }

    async fn get(&self, url: &str, headers: &http::HeaderMap) -> Result<Fetched, BoxError> {
        let mut req = Request::get(url).body(Full::default())?;
        *req.headers_mut() = headers.clone();
        let res = self.client.clone().oneshot(req).await.map_err(Into::into)?;
        let status = res.status();
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(Into::into)?
            .to_bytes();
        let body = match serde_json::from_slice(&body) {
            Ok(json) => json,
            Err(_) if status != StatusCode::OK => Value::Null,
            Err(e) => return Err(format!("{url} answered what is not JSON: {e}").into()),
        };
        Ok(Fetched { status, body })
    }

    async fn login<B>(&self, req: Request<B>) -> Response<Body>
    where
        B: http_body::Body,
        B::Error: Into<BoxError>,
    {
        let back = referer(&req);
        let form = match Limited::new(req.into_body(), MAX_FORM).collect().await {
            Ok(form) => form.to_bytes(),
            Err(_) => {
                return with_type(StatusCode::BAD_REQUEST, "text/plain", "unreadable form\n");
            }
        };
        let Some(user) = form_field(&form, "username").filter(|u| !u.is_empty()) else {
            return with_type(StatusCode::BAD_REQUEST, "text/plain", "no username\n");
        };
        let token = self.sessions.start(&user);
        let cookie = format!("{}={token}; HttpOnly; Path=/", session::COOKIE);
        redirect(&back, &cookie)
    }

    fn logout<B>(&self, req: &Request<B>) -> Response<Body> {
        if let Some(token) = session::token(req.headers()) {
            self.sessions.end(token);
        }
        let cookie = format!(
            "{}=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/",
            session::COOKIE
        );
        redirect(&referer(req), &cookie)
    }
}

/// `html` as a page.
fn html_page(html: String) -> Response<Body> {
    with_type(StatusCode::OK, "text/html; charset=utf-8", html)
}

/// Where a sign-in or sign-out goes back to: the page it came from, else
/// the product page.
fn referer<B>(req: &Request<B>) -> String {
    req.headers()
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .unwrap_or("/productpage")
        .to_owned()
}

/// `302` to `location`, setting `cookie`.
fn redirect(location: &str, cookie: &str) -> Response<Body> {
    let mut res = with_type(StatusCode::FOUND, "text/plain", "Redirecting...\n");
    let headers = res.headers_mut();
    if let Ok(location) = HeaderValue::try_from(location) {
        headers.insert(header::LOCATION, location);
    }
    if let Ok(cookie) = HeaderValue::try_from(cookie) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    res
}

/// The field `name` of a URL-encoded form.
fn form_field(form: &[u8], name: &str) -> Option<String> {
    form.split(|b| *b == b'&').find_map(|pair| {
        let (key, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        (decode(key)? == name).then(|| decode(value)).flatten()
    })
}

/// URL-decoded `bytes` (`+` a space), if they are UTF-8.
fn decode(bytes: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                // Digit by digit: `from_str_radix` would take `%+1` as 0x01.
                let digit = |at: usize| char::from(*bytes.get(at)?).to_digit(16);
                out.push((digit(i + 1)? * 16 + digit(i + 2)?) as u8);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_are_url_decoded() {
        let form = b"username=jason+b%C3%B6hm&passwd=x%26y";
        assert_eq!(form_field(form, "username").as_deref(), Some("jason böhm"));
        assert_eq!(form_field(form, "passwd").as_deref(), Some("x&y"));
        assert_eq!(form_field(form, "other"), None);
        assert_eq!(form_field(b"username=%zz", "username"), None);
        assert_eq!(form_field(b"username=%4", "username"), None);
        assert_eq!(form_field(b"username=%+1", "username"), None);
    }
}
