//! The Envoy launcher of `mesh-control`'s tests (a real Envoy, as a
//! client of a control plane over ADS), with what it needs of its parent.

#[path = "../../../../mesh-control/tests/support/envoy.rs"]
pub(crate) mod envoy;
#[path = "../../../../mesh-control/tests/support/peer.rs"]
mod peer;

pub(crate) use peer::{TempDir, missing_peer};
