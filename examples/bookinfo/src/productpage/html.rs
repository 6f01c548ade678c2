//! productpage's HTML: the product page and the index, with the texts of
//! Istio's templates (the title, "Book Details", "Book Reviews", the
//! error texts, "Reviews served by:"), stars drawn in the rating's
//! colour.

use std::fmt::Write;

use serde_json::Value;

use super::{Fetched, PRODUCT};

/// `text` with HTML's special characters escaped.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A JSON value as text: a string as it is, anything else as JSON.
fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => escape(s),
        Some(other) => escape(&other.to_string()),
        None => String::new(),
    }
}

const HEAD: &str = "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>Simple Bookstore App</title>\n<style>\n\
body{font-family:sans-serif;margin:0;color:#111827}nav{display:flex;justify-content:space-between;align-items:center;padding:1em 2em;background:#1f2937;color:#fff}\n\
main{max-width:60em;margin:auto;padding:1em 2em}table{border-collapse:collapse}td,th{border:1px solid #d1d5db;padding:.3em .8em}\n\
.stars{display:flex;gap:.2em}.text-black-500{color:#000}.text-red-500{color:#dc2626}.error{color:#dc2626;font-size:1.5em}.muted{color:#4b5563}\n\
section{border-top:1px solid #e5e7eb;padding:.8em 0}blockquote{margin:.5em 0;font-style:italic}\n\
</style>\n</head>\n<body>\n";

/// The navigation bar: the user and `Sign out`, or the sign-in form.
fn nav(out: &mut String, user: Option<&str>) {
    out.push_str("<nav>\n<a href=\"/productpage\" style=\"color:#fff;text-decoration:none\">BookInfo Sample</a>\n");
    match user {
        Some(user) => {
            let _ = writeln!(
                out,
                "<div><span class=\"user\">{}</span> <a href=\"logout\" style=\"color:#fff\">Sign out</a></div>",
                escape(user)
            );
        }
        None => out.push_str(
            "<form method=\"post\" action=\"login\" name=\"login_form\">\n\
             <label>Username <input type=\"text\" name=\"username\" required></label>\n\
             <label>Password <input type=\"password\" name=\"passwd\" required></label>\n\
             <button type=\"submit\" id=\"sign-in-button\">Sign in</button>\n</form>\n",
        ),
    }
    out.push_str("</nav>\n");
}

/// A failure as the template shows it: its heading and its error text.
fn failure(out: &mut String, heading: &str, fetched: &Fetched) {
    let _ = writeln!(
        out,
        "<p class=\"error\">{heading}</p>\n<p class=\"muted\">{}</p>",
        text(fetched.body.get("error"))
    );
}

/// The product page for `user`, of `details` and `reviews` as fetched.
pub(super) fn product_page(user: Option<&str>, details: &Fetched, reviews: &Fetched) -> String {
    let mut out = String::from(HEAD);
    nav(&mut out, user);
    let _ = writeln!(
        out,
        "<main>\n<h1>{}</h1>\n<p>{}</p>",
        escape(PRODUCT.title),
        PRODUCT.description_html
    );
    out.push_str("<div class=\"details\">\n");
    if details.ok() {
        let d = &details.body;
        out.push_str("<h4>Book Details</h4>\n<table>\n<tr><th>ISBN-10</th><th>Publisher</th><th>Pages</th><th>Type</th><th>Language</th></tr>\n");
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n</table>",
            text(d.get("ISBN-10")),
            text(d.get("publisher")),
            text(d.get("pages")),
            text(d.get("type")),
            text(d.get("language")),
        );
    } else {
        failure(&mut out, "Error fetching product details", details);
    }
    out.push_str("</div>\n<div class=\"reviews\">\n");
    if reviews.ok() {
        out.push_str("<h4>Book Reviews</h4>\n");
        let r = &reviews.body;
        let served = served_by(r);
        for review in r
            .get("reviews")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.push_str("<section>\n");
            rating(&mut out, review.get("rating"));
            let _ = writeln!(
                out,
                "<blockquote><p>\"{}\"</p></blockquote>\n<div class=\"reviewer\">{}</div>\n{served}",
                text(review.get("text")),
                text(review.get("reviewer")),
            );
            out.push_str("</section>\n");
        }
    } else {
        failure(&mut out, "Error fetching product reviews", reviews);
    }
    out.push_str("</div>\n</main>\n</body>\n</html>\n");
    out
}

/// `Reviews served by: POD` (`on cluster C` when it names one).
fn served_by(reviews: &Value) -> String {
    let pod = text(reviews.get("podname"));
    let cluster = text(reviews.get("clustername"));
    if cluster.is_empty() || cluster == "null" {
        format!("<p class=\"served\">Reviews served by: <span>{pod}</span></p>\n")
    } else {
        format!(
            "<p class=\"served\">Reviews served by: <span>{pod}</span> on cluster <span>{cluster}</span></p>\n"
        )
    }
}

/// A filled star, and an empty one.
const STAR: &str = "<svg class=\"star\" width=\"20\" height=\"20\" viewBox=\"0 0 20 20\" fill=\"currentColor\"><path d=\"M10 1l2.6 6.2 6.4.5-4.9 4.2 1.5 6.5L10 15l-5.6 3.4 1.5-6.5L1 7.7l6.4-.5z\"/></svg>";
const EMPTY_STAR: &str = "<svg class=\"star-empty\" width=\"20\" height=\"20\" viewBox=\"0 0 20 20\" fill=\"none\" stroke=\"currentColor\"><path d=\"M10 1l2.6 6.2 6.4.5-4.9 4.2 1.5 6.5L10 15l-5.6 3.4 1.5-6.5L1 7.7l6.4-.5z\"/></svg>";

/// A review's rating: its stars in its colour, or its error.
fn rating(out: &mut String, rating: Option<&Value>) {
    let Some(rating) = rating else {
        return;
    };
    let stars = rating
        .get("stars")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .min(5);
    if stars > 0 {
        let color = rating
            .get("color")
            .and_then(Value::as_str)
            .filter(|c| c.chars().all(|c| c.is_ascii_alphanumeric()))
            .unwrap_or("black");
        let _ = write!(
            out,
            "<div class=\"stars text-{color}-500\" data-stars=\"{stars}\" data-color=\"{color}\">"
        );
        for n in 0..5 {
            out.push_str(if n < stars { STAR } else { EMPTY_STAR });
        }
        out.push_str("</div>\n");
    } else if let Some(error) = rating.get("error") {
        let _ = writeln!(out, "<p class=\"text-red-500\">{}</p>", text(Some(error)));
    }
}

/// The index: what bookinfo is, and links to the product page.
pub(super) fn index() -> String {
    let mut out = String::from(HEAD);
    out.push_str(
        "<main>\n<p>Hello! This is a simple bookstore application consisting of three services as shown below</p>\n\
         <table>\n<tr><th>name</th><th>endpoint</th><th>children</th></tr>\n\
         <tr><td>http://details:9080</td><td>details</td><td></td></tr>\n\
         <tr><td>http://reviews:9080</td><td>reviews</td><td>\
         <table><tr><th>name</th><th>endpoint</th></tr><tr><td>http://ratings:9080</td><td>ratings</td></tr></table>\
         </td></tr>\n</table>\n\
         <p>Click on one of the links below to auto generate a request to the backend as a real user or a tester</p>\n\
         <p><a href=\"/productpage?u=normal\">Normal user</a></p>\n\
         <p><a href=\"/productpage?u=test\">Test user</a></p>\n</main>\n</body>\n</html>\n",
    );
    out
}
