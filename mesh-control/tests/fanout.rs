//! 1,000 ADS clients connected to one control plane at once: a
//! VirtualService file edit reaches every one of them. The time it took
//! is printed; `cargo bench -p mesh-control --bench fanout` measures it
//! in a release build for the README.

#[path = "support/fanout.rs"]
mod fanout;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_service_edit_reaches_a_thousand_clients() {
    let report = fanout::run(1_000, Duration::from_secs(120)).await;
    assert_eq!(report.streams, 1_000);
    eprintln!(
        "1,000 clients configured in {:?}; the edit reached the last in {:?}",
        report.connected, report.reached
    );
}
