//! The crypto provider every TLS connection of the mesh uses: rustls's
//! `ring`, with the TLS 1.3 suites in BoringSSL's (and so Envoy's) order,
//! AES-128-GCM first: the cheapest per byte where AES is in hardware, and
//! what a handshake between the mesh and Envoy settles on either way.

use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::crypto::ring::{self, cipher_suite};

/// The mesh's crypto provider, made once.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            let mut provider = ring::default_provider();
            let first = [
                cipher_suite::TLS13_AES_128_GCM_SHA256,
                cipher_suite::TLS13_AES_256_GCM_SHA384,
                cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
            ];
            provider
                .cipher_suites
                .retain(|s| !first.iter().any(|f| f.suite() == s.suite()));
            provider.cipher_suites.splice(0..0, first);
            Arc::new(provider)
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_128_leads_and_nothing_is_lost() {
        let suites = crypto_provider().cipher_suites.clone();
        assert_eq!(
            suites[0].suite(),
            cipher_suite::TLS13_AES_128_GCM_SHA256.suite()
        );
        assert_eq!(suites.len(), ring::default_provider().cipher_suites.len());
    }
}
