//! The boxed error carried between layers, and its classification.
//!
//! Each layer has its own small typed error; between layers they travel as a
//! [`BoxError`]. [`classify`] walks an error's source chain to the typed error
//! that says what kind of failure it was, so retry and outlier decisions never
//! depend on error text.

use mesh_core::{FailureKind, UpstreamError};

/// The error type every layer returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The kind of failure an error is, found by walking its source chain.
///
/// ```
/// use mesh_core::{FailureKind, UpstreamError};
/// let err: mesh_tower::BoxError = Box::new(UpstreamError::new(
///     FailureKind::ConnectFailure,
///     "127.0.0.1:1".parse().unwrap(),
///     std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
/// ));
/// assert_eq!(mesh_tower::classify(&*err), FailureKind::ConnectFailure);
/// ```
pub fn classify(err: &(dyn std::error::Error + 'static)) -> FailureKind {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(e) = e.downcast_ref::<UpstreamError>() {
            return e.kind();
        }
        if e.is::<crate::timeout::RequestTimeout>() || e.is::<crate::retry::PerTryTimeout>() {
            return FailureKind::Timeout;
        }
        if e.is::<crate::circuit::Overflow>() {
            return FailureKind::Overflow;
        }
        if e.is::<crate::balance::NoEndpoints>() || e.is::<mesh_core::ResolveError>() {
            return FailureKind::NoHealthyUpstream;
        }
        next = e.source();
    }
    FailureKind::Local
}

/// Whether `err`, or any error in its source chain, is an `E`.
///
/// ```
/// use mesh_tower::error::is_caused_by;
/// use mesh_tower::timeout::RequestTimeout;
/// let err: mesh_tower::BoxError = Box::new(RequestTimeout(std::time::Duration::from_secs(1)));
/// assert!(is_caused_by::<RequestTimeout>(&*err));
/// assert!(!is_caused_by::<std::io::Error>(&*err));
/// ```
pub fn is_caused_by<E: std::error::Error + 'static>(
    err: &(dyn std::error::Error + 'static),
) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.is::<E>() {
            return true;
        }
        next = e.source();
    }
    false
}
