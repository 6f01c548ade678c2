use std::time::Duration;

use tower::Layer;

use super::Timeout;

/// Applies [`Timeout`] to a service.
#[derive(Clone, Copy, Debug, Default)]
pub struct TimeoutLayer {
    timeout: Option<Duration>,
}

impl TimeoutLayer {
    /// A layer with the given timeout; `None` means no timeout.
    pub fn new(timeout: Option<Duration>) -> Self {
        Self { timeout }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout::new(inner, self.timeout)
    }
}
