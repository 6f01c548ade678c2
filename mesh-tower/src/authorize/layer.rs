use tower::Layer;

use super::{Authorize, SharedPolicy};

/// Applies [`Authorize`] to a service.
#[derive(Clone, Debug, Default)]
pub struct AuthorizeLayer {
    policy: SharedPolicy,
}

impl AuthorizeLayer {
    /// A layer deciding requests by `policy`.
    pub fn new(policy: impl Into<SharedPolicy>) -> Self {
        Self {
            policy: policy.into(),
        }
    }
}

impl<S> Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Authorize<S> {
        Authorize::new(inner, self.policy.clone())
    }
}
