//! A workload identity read from Istio's proxyless file layout, with
//! certificates from a CA made here: a good one loads with its SPIFFE id
//! and expiry; every way the files can be wrong is an error naming the
//! file and the cause, and the key never shows in what is printed.

use std::path::Path;
use std::time::{Duration, SystemTime};

use mesh_tower::tls::{IdentityCause, IdentityFiles, Part, WorkloadIdentity};
use rcgen::SanType;
use support::pki::{Ca, uri};

mod support;

const REVIEWS: &str = "spiffe://cluster.local/ns/default/sa/reviews";

/// 2026, when the leaves are valid.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000)
}

fn write(dir: &Path, chain: &str, key: &str, roots: &str) -> IdentityFiles {
    let files = IdentityFiles::in_dir(dir);
    std::fs::write(&files.certificate_chain, chain).unwrap();
    std::fs::write(&files.private_key, key).unwrap();
    std::fs::write(&files.roots, roots).unwrap();
    files
}

#[test]
fn a_good_identity_loads_with_its_id_and_expiry() {
    let ca = Ca::new();
    let (chain, key) = ca.leaf(&[uri(REVIEWS)]);
    let dir = tempfile::tempdir().unwrap();
    let files = write(dir.path(), &chain, &key.serialize_pem(), &ca.pem());
    let identity = WorkloadIdentity::load(&files, now()).unwrap();
    assert_eq!(identity.id().to_string(), REVIEWS);
    let expiry = identity
        .not_after()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    assert_eq!(expiry.as_secs(), 1_893_456_000, "2030-01-01");
    assert_eq!(identity.roots().len(), 1);
    assert_eq!(identity.certified_key().cert.len(), 1);
    let printed = format!("{identity:?}");
    assert!(
        !printed.contains("PRIVATE") && printed.contains(REVIEWS),
        "{printed}"
    );
}

#[test]
fn every_bad_file_is_named_with_its_cause() {
    let ca = Ca::new();
    let (chain, key) = ca.leaf(&[uri(REVIEWS)]);
    let key = key.serialize_pem();
    let root = ca.pem();
    let (_, other_key) = ca.leaf(&[uri(REVIEWS)]);
    let (dns_only, dns_key) = ca.leaf(&[SanType::DnsName("reviews".try_into().unwrap())]);
    let (two_ids, two_key) =
        ca.leaf(&[uri(REVIEWS), uri("spiffe://cluster.local/ns/default/sa/x")]);
    let (not_workload, nw_key) = ca.leaf(&[uri("spiffe://cluster.local/reviews")]);
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, String, String, String, SystemTime, Part)> = vec![
        (
            "garbage chain",
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n".into(),
            key.clone(),
            root.clone(),
            now(),
            Part::CertificateChain,
        ),
        (
            "empty chain",
            String::new(),
            key.clone(),
            root.clone(),
            now(),
            Part::CertificateChain,
        ),
        (
            "no key",
            chain.clone(),
            String::new(),
            root.clone(),
            now(),
            Part::PrivateKey,
        ),
        (
            "another key",
            chain.clone(),
            other_key.serialize_pem(),
            root.clone(),
            now(),
            Part::PrivateKey,
        ),
        (
            "expired",
            chain.clone(),
            key.clone(),
            root.clone(),
            now() + Duration::from_secs(10 * 365 * 86_400),
            Part::CertificateChain,
        ),
        (
            "not yet valid",
            chain.clone(),
            key.clone(),
            root.clone(),
            SystemTime::UNIX_EPOCH,
            Part::CertificateChain,
        ),
        (
            "no SPIFFE id",
            dns_only,
            dns_key.serialize_pem(),
            root.clone(),
            now(),
            Part::CertificateChain,
        ),
        (
            "two SPIFFE ids",
            two_ids,
            two_key.serialize_pem(),
            root.clone(),
            now(),
            Part::CertificateChain,
        ),
        (
            "not a workload id",
            not_workload,
            nw_key.serialize_pem(),
            root.clone(),
            now(),
            Part::CertificateChain,
        ),
        (
            "no roots",
            chain.clone(),
            key.clone(),
            String::new(),
            now(),
            Part::Roots,
        ),
    ];
    for (case, chain, key, roots, at, part) in cases {
        let files = write(dir.path(), &chain, &key, &roots);
        let e = WorkloadIdentity::load(&files, at).expect_err(case);
        assert_eq!(e.part, part, "{case}: {e}");
        let file = match part {
            Part::CertificateChain => &files.certificate_chain,
            Part::PrivateKey => &files.private_key,
            Part::Roots => &files.roots,
        };
        assert_eq!(e.from.as_ref(), Some(file), "{case}");
        let text = e.to_string();
        assert!(text.contains(&file.display().to_string()), "{case}: {text}");
        assert!(!text.contains("PRIVATE KEY"), "{case}: {text}");
        let expected = match case {
            "another key" => matches!(e.cause, IdentityCause::KeyMismatch),
            "expired" => matches!(e.cause, IdentityCause::Expired(_)),
            "not yet valid" => matches!(e.cause, IdentityCause::NotYetValid(_)),
            "no SPIFFE id" => matches!(e.cause, IdentityCause::NoSpiffeId),
            "two SPIFFE ids" => matches!(e.cause, IdentityCause::SeveralSpiffeIds(_)),
            "not a workload id" => matches!(e.cause, IdentityCause::InvalidSpiffeId(_)),
            "no key" | "empty chain" | "no roots" => matches!(e.cause, IdentityCause::Missing(_)),
            _ => matches!(e.cause, IdentityCause::Parse(_)),
        };
        assert!(expected, "{case}: {e:?}");
    }
    // A file that is not there.
    std::fs::remove_file(dir.path().join("key.pem")).unwrap();
    let e = WorkloadIdentity::load(&IdentityFiles::in_dir(dir.path()), now()).unwrap_err();
    assert!(matches!(e.cause, IdentityCause::Read(_)), "{e:?}");
    assert!(e.to_string().contains("key.pem: cannot be read"), "{e}");
}

/// A watched source reads its files again every refresh interval, on the
/// runtime's clock (paused here), and stops when the last clone is gone.
#[tokio::test(start_paused = true)]
async fn a_watched_source_follows_its_files() {
    use mesh_tower::tls::IdentitySource;

    let ca = Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let (chain, key) = ca.leaf(&[uri(REVIEWS)]);
    let files = write(dir.path(), &chain, &key.serialize_pem(), &ca.pem());
    let source = IdentitySource::from_files(files.clone())
        .unwrap()
        .watch(Duration::from_secs(60));
    let before = source.current().unwrap();
    let (chain, key) = ca.leaf(&[uri(REVIEWS)]);
    write(dir.path(), &chain, &key.serialize_pem(), &ca.pem());
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(
        std::sync::Arc::ptr_eq(&before, &source.current().unwrap()),
        "not before the interval"
    );
    tokio::time::sleep(Duration::from_secs(31)).await;
    let after = source.current().unwrap();
    assert!(!std::sync::Arc::ptr_eq(&before, &after));
    assert_ne!(before.certified_key().cert, after.certified_key().cert);
    assert!(source.reloaded_at().is_some());
    assert!(source.last_error().is_none());
}

/// Files an agent has not written yet: the source has no identity, and the
/// reason, until they appear and check out.
#[test]
fn a_pending_source_has_its_identity_once_the_files_check_out() {
    use mesh_tower::tls::IdentitySource;

    let ca = Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let source = IdentitySource::pending(IdentityFiles::in_dir(dir.path()));
    assert!(source.current().is_none());
    let reason = source.last_error().unwrap();
    assert!(
        reason.contains("cert-chain.pem: cannot be read"),
        "{reason}"
    );
    let (chain, key) = ca.leaf(&[uri(REVIEWS)]);
    write(dir.path(), &chain, &key.serialize_pem(), &ca.pem());
    assert!(source.reload().unwrap());
    assert_eq!(source.current().unwrap().id().to_string(), REVIEWS);
    assert!(source.last_error().is_none());
}

/// A source of the user's own (an agent's API, as SPIRE's Workload API
/// is): what it gives is checked as files are, a new certificate replaces
/// the old on reload, and a failure, whether the agent's or the
/// certificate's, keeps the last good one and says why.
#[test]
fn a_certificate_source_of_code_rotates_and_keeps_the_last_good_identity() {
    use std::sync::{Arc, Mutex};

    use mesh_tower::tls::{CertificateSource, IdentityError, IdentitySource};

    /// What the agent hands out now: PEM chain, key and roots, or why it
    /// cannot be reached.
    type Handed = Result<(String, String, String), String>;

    struct Agent(Arc<Mutex<Handed>>);

    impl CertificateSource for Agent {
        fn load(&self, now: SystemTime) -> Result<WorkloadIdentity, IdentityError> {
            match &*self.0.lock().unwrap() {
                Ok((chain, key, roots)) => WorkloadIdentity::from_pem(
                    chain.as_bytes(),
                    key.as_bytes(),
                    roots.as_bytes(),
                    now,
                ),
                Err(why) => Err(IdentityError {
                    part: Part::CertificateChain,
                    from: None,
                    cause: IdentityCause::Unavailable(why.clone()),
                }),
            }
        }
    }

    let ca = Ca::new();
    let issue = || {
        let (chain, key) = ca.issue(REVIEWS);
        Ok((chain, key, ca.pem()))
    };
    let handed = Arc::new(Mutex::new(issue()));
    let source = IdentitySource::from_source(Agent(handed.clone())).unwrap();
    let first = source.current().unwrap();
    assert_eq!(first.id().to_string(), REVIEWS);

    // Rotated: the next read takes the new certificate.
    *handed.lock().unwrap() = issue();
    assert!(source.reload().unwrap(), "another certificate");
    let second = source.current().unwrap();
    assert_ne!(first.certified_key().cert, second.certified_key().cert);

    // The agent is down: its reason, and the last good identity stays.
    *handed.lock().unwrap() = Err("the agent's socket refused the connection".into());
    let e = source.reload().unwrap_err();
    assert_eq!(
        e.to_string(),
        "certificate chain: could not be had: the agent's socket refused the connection"
    );
    assert_eq!(source.last_error(), Some(e.to_string()));
    assert!(std::sync::Arc::ptr_eq(&second, &source.current().unwrap()));

    // A key that is not the certificate's: refused the same way.
    let (chain, _) = ca.issue(REVIEWS);
    let (_, other_key) = ca.issue(REVIEWS);
    *handed.lock().unwrap() = Ok((chain, other_key, ca.pem()));
    let e = source.reload().unwrap_err();
    assert!(matches!(e.cause, IdentityCause::KeyMismatch), "{e}");
    assert!(std::sync::Arc::ptr_eq(&second, &source.current().unwrap()));

    // Back: the error clears.
    *handed.lock().unwrap() = issue();
    assert!(source.reload().unwrap());
    assert!(source.last_error().is_none());

    // A source that has nothing at start has no identity until it does.
    let down: Handed = Err("not started".into());
    let pending = IdentitySource::pending(Agent(Arc::new(Mutex::new(down))));
    assert!(pending.current().is_none());
    assert_eq!(
        pending.last_error().as_deref(),
        Some("certificate chain: could not be had: not started")
    );
}
