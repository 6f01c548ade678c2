//! `details`: a book's details by product id, as Istio's details service
//! answers them. A plain hyper service: it links nothing of the mesh,
//! which reaches it through `mesh-sidecar`.
//!
//! - `GET /details/<id>`: the book (`{"id":0,"author":"William
//!   Shakespeare",…}`); an id that is not a number is `400`
//!   `{"error":"please provide numeric product id"}`.
//! - `GET /health`: `{"status":"Details is healthy"}`.

use std::convert::Infallible;

use http::{Method, Request, Response, StatusCode};
use serde::Serialize;

use crate::http::{Body, json, not_found, product_id};

/// A book's details, its fields in the order Istio's service writes them.
#[derive(Debug, Serialize)]
pub struct Details {
    /// The product id asked for.
    pub id: i64,
    /// Its author.
    pub author: &'static str,
    /// The year it was written.
    pub year: u32,
    /// Its binding.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Its page count.
    pub pages: u32,
    /// Its publisher.
    pub publisher: &'static str,
    /// Its language.
    pub language: &'static str,
    /// Its 10-digit ISBN.
    #[serde(rename = "ISBN-10")]
    pub isbn_10: &'static str,
    /// Its 13-digit ISBN.
    #[serde(rename = "ISBN-13")]
    pub isbn_13: &'static str,
}

impl Details {
    /// The details of product `id`: every product is the same book.
    pub fn of(id: i64) -> Self {
        Self {
            id,
            author: "William Shakespeare",
            year: 1595,
            kind: "paperback",
            pages: 200,
            publisher: "PublisherA",
            language: "English",
            isbn_10: "1234567890",
            isbn_13: "123-1234567890",
        }
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

/// Answers one request.
pub async fn handle<B>(req: Request<B>) -> Result<Response<Body>, Infallible> {
    if req.method() != Method::GET {
        return Ok(not_found());
    }
    let path = req.uri().path();
    if path == "/health" {
        let status = Status {
            status: "Details is healthy",
        };
        return Ok(json(StatusCode::OK, &status));
    }
    Ok(match product_id(path, "/details/") {
        Some(Ok(id)) => json(StatusCode::OK, &Details::of(id)),
        Some(Err(_)) => json(
            StatusCode::BAD_REQUEST,
            &Error {
                error: "please provide numeric product id",
            },
        ),
        None => not_found(),
    })
}
