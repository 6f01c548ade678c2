/// No endpoint could take the request.
#[derive(Debug, Clone, thiserror::Error)]
#[error("no endpoint available for {target}: {reason}")]
pub struct NoEndpoints {
    pub(super) target: String,
    pub(super) reason: &'static str,
}
