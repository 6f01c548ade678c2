//! The DNS server the tests run: [`mesh_dns::LocalDns`] for the zone
//! `default.svc.cluster.local`, with the panicking helpers tests want.

// Each test crate uses part of this module.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};

use mesh_dns::{LocalDns, Outage};

/// The zone every test server serves.
pub(crate) const ZONE: &str = "default.svc.cluster.local.";

/// A running DNS server authoritative for [`ZONE`].
pub(crate) struct TestDns(LocalDns);

impl TestDns {
    pub(crate) async fn start() -> Self {
        Self(LocalDns::start(ZONE).await.unwrap())
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.0.addr()
    }

    pub(crate) async fn set_addresses(&self, label: &str, ttl: u32, ips: &[IpAddr]) {
        self.0.set_addresses(label, ttl, ips).await.unwrap();
    }

    pub(crate) async fn set_srv(&self, label: &str, ttl: u32, records: &[(u16, u16, u16, &str)]) {
        self.0.set_srv(label, ttl, records).await.unwrap();
    }

    pub(crate) fn set_outage(&self, outage: Option<Outage>) {
        self.0.set_outage(outage);
    }

    pub(crate) async fn stop(&mut self) {
        self.0.stop().await;
    }
}
