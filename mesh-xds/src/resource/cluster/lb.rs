//! A cluster's load-balancing policy: the `load_balancing_policy` list of
//! typed policies when there is one (gRFC A52: the first the mesh supports
//! wins; `wrr_locality` is read through to the policy it wraps; the mesh's
//! own peak EWMA is a custom policy, see [`ewma`](super::ewma)), else the
//! `lb_policy` enum with its `ring_hash_lb_config` or `maglev_lb_config`.

use envoy_types::pb::envoy::config::cluster::v3::cluster::{self, LbPolicy};
use envoy_types::pb::envoy::config::cluster::v3::{Cluster, LoadBalancingPolicy};
use envoy_types::pb::envoy::extensions::load_balancing_policies as policies;
use envoy_types::pb::google::protobuf::{Any, UInt64Value};
use mesh_core::policy::{InvalidLoadBalancer, LoadBalancer, Maglev, RingHash};
use policies::least_request::v3::LeastRequest;
use policies::maglev::v3::Maglev as TypedMaglev;
use policies::random::v3::Random;
use policies::ring_hash::v3::RingHash as TypedRingHash;
use policies::ring_hash::v3::ring_hash::HashFunction;
use policies::round_robin::v3::RoundRobin;
use policies::wrr_locality::v3::WrrLocality;

use crate::resource::error::{At, FieldError};
use crate::resource::proto;

/// How deep `wrr_locality` may nest (gRPC's limit).
const MAX_DEPTH: usize = 16;

/// The cluster's balancer, with its parameters checked.
pub(super) fn load_balancer(c: &Cluster, at: &At<'_>) -> Result<LoadBalancer, FieldError> {
    if let Some(policy) = &c.load_balancing_policy {
        return typed(policy, &at.field("load_balancing_policy"), 0);
    }
    let lb_at = at.field("lb_policy");
    match LbPolicy::try_from(c.lb_policy) {
        Ok(LbPolicy::RoundRobin) => Ok(LoadBalancer::RoundRobin),
        Ok(LbPolicy::LeastRequest) => Ok(LoadBalancer::LeastRequest),
        Ok(LbPolicy::Random) => Ok(LoadBalancer::Random),
        Ok(LbPolicy::RingHash) => {
            let config = match &c.lb_config {
                Some(cluster::LbConfig::RingHashLbConfig(r)) => *r,
                _ => Default::default(),
            };
            let at = at.field("ring_hash_lb_config");
            let xx = cluster::ring_hash_lb_config::HashFunction::XxHash as i32;
            if config.hash_function != xx {
                return Err(at.field("hash_function").error("only XX_HASH is supported"));
            }
            ring(config.minimum_ring_size, config.maximum_ring_size, &at)
        }
        Ok(LbPolicy::Maglev) => {
            let size = match &c.lb_config {
                Some(cluster::LbConfig::MaglevLbConfig(m)) => m.table_size,
                _ => None,
            };
            maglev(size, &at.field("maglev_lb_config"))
        }
        Ok(p @ (LbPolicy::ClusterProvided | LbPolicy::LoadBalancingPolicyConfig)) => {
            Err(lb_at.error(format_args!("{} is not supported", p.as_str_name())))
        }
        Err(_) => Err(lb_at.error(format_args!("unknown policy {}", c.lb_policy))),
    }
}

/// A ring with Envoy's and gRPC's defaults (1024 to 8M entries).
fn ring(
    min: Option<UInt64Value>,
    max: Option<UInt64Value>,
    at: &At<'_>,
) -> Result<LoadBalancer, FieldError> {
    let min = min.map_or(1024, |v| v.value);
    let max = max.map_or(RingHash::MAX_RING_SIZE, |v| v.value);
    RingHash::new(min, max)
        .map(LoadBalancer::RingHash)
        .map_err(|e| match e {
            InvalidLoadBalancer::RingSize(size) if size == max && size != min => {
                at.field("maximum_ring_size").error(e)
            }
            e => at.field("minimum_ring_size").error(e),
        })
}

/// The largest Maglev table a control plane may ask of the client.
pub const MAX_MAGLEV_TABLE_SIZE: u64 = Maglev::MAX_CLIENT_TABLE_SIZE;

/// A Maglev table, 65,537 entries unless set, at most
/// [`MAX_MAGLEV_TABLE_SIZE`].
fn maglev(size: Option<UInt64Value>, at: &At<'_>) -> Result<LoadBalancer, FieldError> {
    let at = at.field("table_size");
    let size = size.map_or(Maglev::default().table_size, |v| v.value);
    if size > MAX_MAGLEV_TABLE_SIZE {
        return Err(at.error(format_args!(
            "maglev table size {size} is above the {MAX_MAGLEV_TABLE_SIZE} this client builds"
        )));
    }
    Maglev::new(size)
        .map(LoadBalancer::Maglev)
        .map_err(|e| at.error(e))
}

fn typed(
    policy: &LoadBalancingPolicy,
    at: &At<'_>,
    depth: usize,
) -> Result<LoadBalancer, FieldError> {
    if depth > MAX_DEPTH {
        return Err(at.error(format_args!("nested more than {MAX_DEPTH} deep")));
    }
    let list_at = at.field("policies");
    for (i, p) in policy.policies.iter().enumerate() {
        let at = list_at.index(i);
        let config_at = at.field("typed_extension_config");
        let any = p
            .typed_extension_config
            .as_ref()
            .and_then(|c| c.typed_config.as_ref());
        let Some(any) = any else {
            return Err(config_at.field("typed_config").error("missing"));
        };
        let at = config_at.field("typed_config");
        if let Some(lb) = one(any, &at, depth)? {
            return Ok(lb);
        }
    }
    let names: Vec<&str> = policy
        .policies
        .iter()
        .filter_map(|p| p.typed_extension_config.as_ref()?.typed_config.as_ref())
        .map(|any| any.type_url.rsplit('/').next().unwrap_or_default())
        .collect();
    let reason = match names.as_slice() {
        [] => "no policy".to_owned(),
        names => format!("none is supported: {}", names.join(", ")),
    };
    Err(list_at.error(reason))
}

/// One typed policy; `None` for one the mesh does not have, which gRPC
/// skips for the next.
fn one(any: &Any, at: &At<'_>, depth: usize) -> Result<Option<LoadBalancer>, FieldError> {
    if proto::is::<RoundRobin>(any) {
        return Ok(Some(LoadBalancer::RoundRobin));
    }
    if proto::is::<Random>(any) {
        return Ok(Some(LoadBalancer::Random));
    }
    if proto::is::<LeastRequest>(any) {
        // `choice_count` other than 2 is read as 2: the mesh's least
        // request is power of two choices.
        proto::unpack::<LeastRequest>(any, at)?;
        return Ok(Some(LoadBalancer::LeastRequest));
    }
    if proto::is::<TypedRingHash>(any) {
        let r: TypedRingHash = proto::unpack(any, at)?;
        match HashFunction::try_from(r.hash_function) {
            Ok(HashFunction::DefaultHash | HashFunction::XxHash) => {}
            _ => return Err(at.field("hash_function").error("only XX_HASH is supported")),
        }
        return ring(r.minimum_ring_size, r.maximum_ring_size, at).map(Some);
    }
    if proto::is::<TypedMaglev>(any) {
        let m: TypedMaglev = proto::unpack(any, at)?;
        return maglev(m.table_size, at).map(Some);
    }
    if let Some(ewma) = super::ewma::peak_ewma(any, at)? {
        return Ok(Some(ewma));
    }
    if proto::is::<WrrLocality>(any) {
        // Locality weights are honoured by every balancer of the mesh: the
        // wrapper only says which policy picks within a locality.
        let w: WrrLocality = proto::unpack(any, at)?;
        let inner_at = at.field("endpoint_picking_policy");
        let Some(inner) = &w.endpoint_picking_policy else {
            return Err(inner_at.error("missing"));
        };
        return typed(inner, &inner_at, depth + 1).map(Some);
    }
    Ok(None)
}
