//! Istio's bookinfo, rebuilt on the mesh: the four services with the
//! routes, JSON and texts of Istio's `samples/bookinfo`, so that its
//! docs, tasks and scripts carry over.
//!
//! - [`details`]: a book's details; a plain hyper service that links
//!   nothing of the mesh, fronted by `mesh-sidecar`.
//! - [`ratings`]: the reviewers' ratings, over HTTP and over gRPC
//!   (`bookinfo.ratings.v1.Ratings`, `proto/ratings.proto`) on one port.
//! - [`reviews`]: v1, v2 and v3, the last two asking ratings over gRPC.
//! - [`productpage`]: the page, from details and reviews; sign-in as a
//!   user, whose name goes on as `end-user`.
//!
//! Every service answers `/health`, and runs on its own too ([`alone`]). [`launch`] runs them all in one
//! process, in a mesh of their own.

pub mod alone;
pub mod details;
pub mod http;
pub mod launch;
pub mod productpage;
pub mod propagate;
pub mod ratings;
pub mod reviews;
