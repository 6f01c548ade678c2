//! DNS discovery for the mesh: [`DnsResolve`] implements
//! [`mesh_core::Resolve`] over DNS with hickory-resolver, the kube-dns path
//! (`dns:///reviews:9080`).
//!
//! - **A/AAAA**: `reviews:9080` resolves to every address of `reviews`, on
//!   port 9080. Short names go through Kubernetes search domains with
//!   `ndots:5`, as in a pod: `reviews` is tried as
//!   `reviews.default.svc.cluster.local` first.
//! - **SRV**: a host starting with `_` (`_http._tcp.reviews.default.svc.cluster.local`)
//!   resolves to its SRV targets' addresses, with each record's port and its
//!   weight as the endpoint weight; only the lowest priority that has an
//!   address is used.
//! - **Refresh**: one background task per target looks it up again when the
//!   answer's TTL runs out (clamped to 5 s ..= 300 s by default), so new
//!   endpoints show up without a failing request; it stops when the last
//!   [`Resolution`](mesh_core::Resolution) is dropped. Only real changes are
//!   sent.
//! - **Failures**, as Envoy's STRICT_DNS reads them: a target that resolved
//!   keeps its last endpoints when a refresh gets no answer (a timeout, a
//!   server failure or refusal; logged with `tracing::warn!`) and is
//!   retried every 5 s; when DNS answers that the name is gone (NXDOMAIN,
//!   or no records), its endpoints are dropped and requests fail with "the
//!   name no longer resolves", for a deleted Service's addresses are soon
//!   another's. A target that never resolved fails with an error naming
//!   the host and the cause (NXDOMAIN, no records, timeout). Either
//!   switches to ready when a later retry succeeds.
//! - IP address targets resolve at once, without DNS.
//!
//! ```no_run
//! use mesh_core::Resolve;
//! use mesh_dns::{DnsConfig, DnsResolve};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The name servers of /etc/resolv.conf, kube-dns search domains for `bookinfo`.
//! let dns = DnsResolve::new(DnsConfig::kubernetes("bookinfo", "cluster.local"))?;
//! let mut reviews = dns.resolve(&"reviews:9080".parse()?);
//! for endpoint in &reviews.ready().await? {
//!     println!("{}", endpoint.addr);
//! }
//! while let Some(state) = reviews.changed().await {
//!     println!("reviews is now {state:?}");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Features:
//! - `local-server`: [`LocalDns`], a small authoritative DNS server on
//!   loopback whose records change at run time, and which can be made to
//!   fail every query ([`Outage`]) (for laptops, examples and tests).

mod config;
mod error;
mod hickory;
#[cfg(feature = "local-server")]
mod local;
mod lookup;
mod names;
mod refresh;
mod resolve;

pub use config::DnsConfig;
pub use error::DnsError;
#[cfg(feature = "local-server")]
pub use local::{LocalDns, Outage};
pub use resolve::DnsResolve;
