use tower::Layer;

use super::{Route, SharedConfig};

/// Applies [`Route`] with one shared configuration.
#[derive(Clone, Debug)]
pub struct RouteLayer {
    config: SharedConfig,
    passthrough: bool,
}

impl RouteLayer {
    /// Routes by `config`.
    pub fn new(config: SharedConfig) -> Self {
        Self {
            config,
            passthrough: false,
        }
    }

    /// See [`Route::passthrough`].
    pub fn passthrough(mut self, passthrough: bool) -> Self {
        self.passthrough = passthrough;
        self
    }
}

impl<S> Layer<S> for RouteLayer {
    type Service = Route<S>;

    fn layer(&self, inner: S) -> Route<S> {
        Route::new(inner, self.config.clone()).passthrough(self.passthrough)
    }
}
