/// No endpoint could take the request.
#[derive(Debug, Clone, thiserror::Error)]
#[error("no endpoint available for {target}: {reason}")]
pub struct NoEndpoints {
    pub(super) target: String,
    pub(super) reason: &'static str,
}

/// A request shed by the control plane's drop policy (xDS
/// `drop_overloads`) before any endpoint was picked.
#[derive(Debug, Clone, thiserror::Error)]
#[error("request to {target} dropped by the control plane (drop category {category:?})")]
pub struct Dropped {
    pub(super) target: String,
    pub(super) category: String,
}

impl Dropped {
    /// The drop category that shed the request.
    pub fn category(&self) -> &str {
        &self.category
    }
}
