//! [`NewService`]: builds one service per target (an endpoint, a cluster).

/// Builds a service for a target, as linkerd's `NewService`: the balancer
/// uses one to make a service per endpoint, the client one per cluster.
///
/// Any `Fn(T) -> S` is a `NewService<T>`.
pub trait NewService<T> {
    /// The service built.
    type Service;

    /// Builds the service for `target`.
    fn new_service(&self, target: T) -> Self::Service;
}

impl<T, S, F: Fn(T) -> S> NewService<T> for F {
    type Service = S;

    fn new_service(&self, target: T) -> S {
        self(target)
    }
}
