//! Helpers for the tests: a temporary directory, reading what a
//! certificate says, an mTLS gRPC call made with issued files,
//! `mesh-control serve` run as a process, real peers (Envoy, proxyless
//! gRPC clients) and what a test does when one is missing.

#![allow(dead_code)]

pub(crate) mod control;
pub(crate) mod envoy;
pub(crate) mod grpc;
pub(crate) mod mesh;
pub(crate) mod proxyless;

use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

mod peer;
pub(crate) use peer::{TempDir, missing_peer};

/// The DER of each certificate in a PEM file, in order.
pub(crate) fn pem_certs(pem: &str) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .map(|pem| {
            let pem = pem.unwrap();
            assert_eq!(pem.label, "CERTIFICATE");
            pem.contents
        })
        .collect()
}

/// What the tests check in a certificate.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) uris: Vec<String>,
    pub(crate) other_sans: usize,
    pub(crate) san_critical: bool,
    pub(crate) serial: Vec<u8>,
    pub(crate) is_ca: bool,
    pub(crate) subject_empty: bool,
    pub(crate) digital_signature: bool,
    pub(crate) key_encipherment: bool,
    pub(crate) server_auth: bool,
    pub(crate) client_auth: bool,
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
}

pub(crate) fn summarize(der: &[u8]) -> Summary {
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    let mut uris = Vec::new();
    let mut other_sans = 0;
    let mut san_critical = false;
    if let Some(san) = cert.subject_alternative_name().unwrap() {
        san_critical = san.critical;
        for name in &san.value.general_names {
            match name {
                GeneralName::URI(uri) => uris.push(uri.to_string()),
                _ => other_sans += 1,
            }
        }
    }
    let key_usage = cert.key_usage().unwrap().map(|ext| ext.value);
    let eku = cert.extended_key_usage().unwrap().map(|ext| ext.value);
    Summary {
        uris,
        other_sans,
        san_critical,
        serial: cert.raw_serial().to_vec(),
        is_ca: cert
            .basic_constraints()
            .unwrap()
            .is_some_and(|bc| bc.value.ca),
        subject_empty: cert.subject().iter().next().is_none(),
        digital_signature: key_usage.is_some_and(|ku| ku.digital_signature()),
        key_encipherment: key_usage.is_some_and(|ku| ku.key_encipherment()),
        server_auth: eku.is_some_and(|eku| eku.server_auth),
        client_auth: eku.is_some_and(|eku| eku.client_auth),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    }
}
