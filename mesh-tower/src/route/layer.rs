use tower::Layer;

use super::{Route, SharedConfig};

/// Applies [`Route`] with one shared configuration.
#[derive(Clone, Debug)]
pub struct RouteLayer {
    config: SharedConfig,
}

impl RouteLayer {
    /// Routes by `config`.
    pub fn new(config: SharedConfig) -> Self {
        Self { config }
    }
}

impl<S> Layer<S> for RouteLayer {
    type Service = Route<S>;

    fn layer(&self, inner: S) -> Route<S> {
        Route::new(inner, self.config.clone())
    }
}
