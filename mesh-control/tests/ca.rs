//! The CA end to end: a root made and read back, workload certificates
//! that carry their SPIFFE id and work for mTLS gRPC, rotation in place,
//! and the errors for what cannot work.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mesh_control::ca::{Ca, CaError};
use support::{TempDir, grpc, pem_certs, summarize};

const DAY: Duration = Duration::from_secs(24 * 3600);
const REVIEWS: &str = "spiffe://cluster.local/ns/default/sa/reviews";
const PRODUCTPAGE: &str = "spiffe://cluster.local/ns/default/sa/productpage";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn issued_certificate_carries_exactly_the_identity() {
    let tmp = TempDir::new("issue");
    let ca = Ca::init(tmp.join("ca")).unwrap();
    let cert = ca.issue(REVIEWS, DAY).unwrap();
    assert_eq!(cert.identity().to_string(), REVIEWS);
    assert_eq!(cert.root_pem(), ca.root_pem());

    let chain = pem_certs(cert.chain_pem());
    assert_eq!(
        chain.len(),
        1,
        "the root signs directly; the chain is the leaf"
    );
    let leaf = summarize(&chain[0]);
    assert_eq!(leaf.uris, [REVIEWS]);
    assert_eq!(leaf.other_sans, 0);
    assert!(!leaf.is_ca);
    assert!(leaf.subject_empty);
    assert!(
        leaf.san_critical,
        "RFC 5280: an empty subject needs a critical SAN"
    );
    assert!(
        leaf.digital_signature && !leaf.key_encipherment,
        "ECDSA keys"
    );
    assert!(leaf.server_auth && leaf.client_auth);
    let issued_at = now();
    assert!(leaf.not_before <= issued_at - 30 && leaf.not_before >= issued_at - 120);
    assert!((leaf.not_after - (issued_at + DAY.as_secs() as i64)).abs() <= 5);
    let not_after = cert
        .not_after()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert_eq!(not_after, leaf.not_after);

    let root = summarize(&pem_certs(ca.root_pem())[0]);
    assert!(root.is_ca);
}

#[test]
fn root_is_written_private_and_reads_back() {
    let tmp = TempDir::new("load");
    let dir = tmp.join("ca");
    let made = Ca::init(&dir).unwrap();
    let loaded = Ca::load(&dir).unwrap();
    assert_eq!(made.root_pem(), loaded.root_pem());
    assert_eq!(
        std::fs::read_to_string(dir.join("root-cert.pem")).unwrap(),
        made.root_pem()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("root-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A loaded root signs certificates that chain to the same root.
    let cert = loaded.issue(REVIEWS, DAY).unwrap();
    assert_eq!(cert.root_pem(), made.root_pem());
}

#[tokio::test]
async fn issued_files_serve_mtls_grpc_between_two_workloads() {
    let tmp = TempDir::new("mtls");
    let ca = Ca::init(tmp.join("ca")).unwrap();
    ca.issue(REVIEWS, DAY)
        .unwrap()
        .write(tmp.join("reviews"))
        .unwrap();
    ca.issue(PRODUCTPAGE, DAY)
        .unwrap()
        .write(tmp.join("productpage"))
        .unwrap();

    let outcome = grpc::health_check(&tmp.join("reviews"), &tmp.join("productpage"), REVIEWS)
        .await
        .unwrap();
    assert!(outcome.serving);
    assert_eq!(summarize(&outcome.client_cert).uris, [PRODUCTPAGE]);

    // The client really checks who the server is...
    let err = grpc::health_check(&tmp.join("reviews"), &tmp.join("productpage"), PRODUCTPAGE)
        .await
        .unwrap_err();
    assert!(err.contains("is not"), "{err}");

    // ...and certificates from another root are not trusted.
    let other = Ca::init(tmp.join("other-ca")).unwrap();
    other
        .issue(PRODUCTPAGE, DAY)
        .unwrap()
        .write(tmp.join("stranger"))
        .unwrap();
    assert!(
        grpc::health_check(&tmp.join("reviews"), &tmp.join("stranger"), REVIEWS)
            .await
            .is_err()
    );
}

#[test]
fn reissuing_replaces_all_three_files_and_leaves_no_temporaries() {
    let tmp = TempDir::new("rotate");
    let ca = Ca::init(tmp.join("ca")).unwrap();
    let out = tmp.join("out");
    ca.issue(REVIEWS, DAY).unwrap().write(&out).unwrap();
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();
    let (chain1, key1) = (read("cert-chain.pem"), read("key.pem"));

    let second = ca.issue(REVIEWS, DAY).unwrap();
    second.write(&out).unwrap();
    assert_eq!(read("cert-chain.pem"), second.chain_pem());
    assert_eq!(read("key.pem"), second.key_pem());
    assert_eq!(read("root-cert.pem"), ca.root_pem());
    assert_ne!(read("key.pem"), key1);
    assert_ne!(
        summarize(&pem_certs(&read("cert-chain.pem"))[0]).serial,
        summarize(&pem_certs(&chain1)[0]).serial
    );

    // Beside the three, only the `..data` link and the one set it names.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| !name.starts_with(".."))
        .collect();
    names.sort();
    assert_eq!(names, ["cert-chain.pem", "key.pem", "root-cert.pem"]);
    let hidden = std::fs::read_dir(&out)
        .unwrap()
        .filter(|entry| {
            let name = entry.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("..")
        })
        .count();
    assert_eq!(hidden, 2);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn bad_identity_is_refused_by_name() {
    let tmp = TempDir::new("bad-id");
    let ca = Ca::init(tmp.join("ca")).unwrap();
    for bad in [
        "spiffe://cluster.local/reviews",
        "reviews.default.svc.cluster.local",
        "spiffe://cluster.local/ns/default/sa/",
    ] {
        let err = ca.issue(bad, DAY).unwrap_err();
        assert!(matches!(err, CaError::Identity(_)), "{err:?}");
        assert!(err.to_string().contains(bad), "{err}");
    }
    assert!(matches!(
        ca.issue(REVIEWS, Duration::ZERO),
        Err(CaError::ZeroTtl)
    ));
    assert!(matches!(
        ca.issue(REVIEWS, DAY * 365 * 20),
        Err(CaError::OutlivesRoot { .. })
    ));
}

#[test]
fn init_refuses_to_overwrite_a_root() {
    let tmp = TempDir::new("exists");
    let dir = tmp.join("ca");
    let first = Ca::init(&dir).unwrap();
    let err = Ca::init(&dir).unwrap_err();
    assert!(matches!(err, CaError::RootExists { .. }), "{err:?}");
    assert!(err.to_string().contains("root-cert.pem"), "{err}");
    assert_eq!(Ca::load(&dir).unwrap().root_pem(), first.root_pem());

    // A key alone is a root too: nothing is written next to it.
    let lone = tmp.join("lone-key");
    std::fs::create_dir_all(&lone).unwrap();
    std::fs::write(lone.join("root-key.pem"), "x").unwrap();
    let err = Ca::init(&lone).unwrap_err();
    assert!(err.to_string().contains("root-key.pem"), "{err}");
    assert!(!lone.join("root-cert.pem").exists());
}

#[test]
fn load_says_which_file_is_wrong_and_how() {
    let tmp = TempDir::new("broken");
    let good = tmp.join("good");
    Ca::init(&good).unwrap();
    let other = tmp.join("other");
    Ca::init(&other).unwrap();
    let copy = |from: &std::path::Path, to: &std::path::Path, name: &str| {
        std::fs::create_dir_all(to).unwrap();
        std::fs::copy(from.join(name), to.join(name)).unwrap();
    };

    let err = Ca::load(tmp.join("nowhere")).unwrap_err();
    assert!(matches!(err, CaError::Missing { .. }), "{err:?}");
    assert!(
        err.to_string().ends_with("root-cert.pem is missing"),
        "{err}"
    );

    let no_key = tmp.join("no-key");
    copy(&good, &no_key, "root-cert.pem");
    let err = Ca::load(&no_key).unwrap_err();
    assert!(
        err.to_string().ends_with("root-key.pem is missing"),
        "{err}"
    );

    let not_pem = tmp.join("not-pem");
    copy(&good, &not_pem, "root-key.pem");
    std::fs::write(not_pem.join("root-cert.pem"), "hello").unwrap();
    let err = Ca::load(&not_pem).unwrap_err();
    assert!(matches!(err, CaError::NotPem { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("root-cert.pem is not a PEM certificate"),
        "{err}"
    );

    let bad_key = tmp.join("bad-key");
    copy(&good, &bad_key, "root-cert.pem");
    std::fs::write(
        bad_key.join("root-key.pem"),
        "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = Ca::load(&bad_key).unwrap_err();
    assert!(
        err.to_string()
            .contains("root-key.pem is not a PEM private key"),
        "{err}"
    );

    let mismatched = tmp.join("mismatched");
    copy(&good, &mismatched, "root-cert.pem");
    copy(&other, &mismatched, "root-key.pem");
    let err = Ca::load(&mismatched).unwrap_err();
    assert!(matches!(err, CaError::KeyMismatch { .. }), "{err:?}");

    // A workload certificate is not a CA.
    let leaf_dir = tmp.join("leaf");
    let cert = Ca::load(&good).unwrap().issue(REVIEWS, DAY).unwrap();
    std::fs::create_dir_all(&leaf_dir).unwrap();
    std::fs::write(leaf_dir.join("root-cert.pem"), cert.chain_pem()).unwrap();
    std::fs::write(leaf_dir.join("root-key.pem"), cert.key_pem()).unwrap();
    let err = Ca::load(&leaf_dir).unwrap_err();
    assert!(matches!(err, CaError::NotCa { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("root-cert.pem is not a CA certificate"),
        "{err}"
    );
}
