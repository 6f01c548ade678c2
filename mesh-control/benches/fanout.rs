//! How long a VirtualService edit takes to reach 1,000 ADS clients of one
//! control plane: from the file write (the directory is polled every
//! 200 ms) through conversion, translation and the ADS server to the last
//! client holding the new routes.
//!
//! `cargo bench -p mesh-control --bench fanout`

#![allow(clippy::print_stdout)]

#[path = "../tests/support/fanout.rs"]
mod fanout;

use std::time::Duration;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(fanout::run(1_000, Duration::from_secs(120)));
    println!(
        "1,000 ADS clients of mesh-control: all configured {:?} after starting; \
         a VirtualService edit reached the last of them in {:?} ({} streams)",
        report.connected, report.reached, report.streams
    );
}
