//! `localityLbSetting` into [`LocalityLb`], checked as Istio's validation
//! checks it: `distribute` or `failover`, not both; each distribute rule's
//! shares from 1 to 100 adding up to 100, over localities that do not
//! overlap; failover between two different regions, named without
//! wildcards; no topology label in `failoverPriority` beside `failover`.

use mesh_core::policy::{Distribute, Failover, LocalityLb, LocalityPattern, PriorityLabel};

use super::super::api::LocalityLoadBalancerSetting;
use super::super::error::IstioError;
use super::super::yaml::FieldPath;
use super::Ctx;
use mesh_core::policy::TOPOLOGY_LABELS;

pub(super) fn locality_lb(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    s: &LocalityLoadBalancerSetting,
) -> Result<LocalityLb, IstioError> {
    if !s.distribute.is_empty() && !s.failover.is_empty() {
        return Err(ctx.invalid(at, "expected distribute or failover, not both"));
    }
    let pattern = |at: &FieldPath, written: &str| {
        written
            .parse::<LocalityPattern>()
            .map_err(|e| ctx.invalid(at, e.to_string()))
    };
    let mut distribute: Vec<Distribute> = Vec::new();
    for (i, d) in s.distribute.iter().enumerate() {
        let at = at.key("distribute").index(i);
        let from = pattern(&at.key("from"), &d.from)?;
        let earlier = distribute.iter().zip(&s.distribute);
        if let Some((_, e)) = earlier.clone().find(|(e, _)| e.from.overlaps(&from)) {
            return Err(ctx.invalid(
                &at.key("from"),
                format!("{} overlaps {}, an earlier rule's", d.from, e.from),
            ));
        }
        let mut to: Vec<(LocalityPattern, u32)> = Vec::new();
        for (written, share) in &d.to {
            let at = at.key("to").key(written);
            let p = pattern(&at, written)?;
            if !(1..=100).contains(share) {
                return Err(ctx.invalid(&at, format!("{share} is not a share from 1 to 100")));
            }
            let other = to
                .iter()
                .zip(d.to.keys())
                .find(|((o, _), _)| o.overlaps(&p));
            if let Some((_, other)) = other {
                return Err(ctx.invalid(&at, format!("{written} overlaps {other}")));
            }
            to.push((p, *share));
        }
        let total: u32 = to.iter().map(|(_, w)| w).sum();
        if total != 100 {
            return Err(ctx.invalid(
                &at.key("to"),
                format!("the shares add up to {total}, not 100"),
            ));
        }
        distribute.push(Distribute { from, to });
    }
    let mut failover = Vec::new();
    for (i, f) in s.failover.iter().enumerate() {
        let at = at.key("failover").index(i);
        for (field, region) in [("from", &f.from), ("to", &f.to)] {
            if region.is_empty() || region.contains(['/', '*']) {
                return Err(ctx.invalid(
                    &at.key(field),
                    format!(
                        "{region:?} is not a region (failover names regions, without wildcards)"
                    ),
                ));
            }
        }
        if f.from == f.to {
            return Err(ctx.invalid(&at, "from and to must be different regions"));
        }
        failover.push(Failover {
            from: f.from.clone(),
            to: f.to.clone(),
        });
    }
    let mut failover_priority = Vec::new();
    for (i, written) in s.failover_priority.iter().enumerate() {
        let at = at.key("failoverPriority").index(i);
        let label: PriorityLabel = written
            .parse()
            .map_err(|e: mesh_core::policy::InvalidLocality| ctx.invalid(&at, e.to_string()))?;
        // `failover` orders by the topology labels already.
        if !failover.is_empty() && TOPOLOGY_LABELS.contains(&label.key.as_str()) {
            return Err(ctx.invalid(
                &at,
                format!(
                    "{} cannot be used with failover, which orders by locality itself",
                    label.key
                ),
            ));
        }
        failover_priority.push(label);
    }
    Ok(LocalityLb {
        enabled: s.enabled.unwrap_or(true),
        distribute,
        failover,
        failover_priority,
    })
}
