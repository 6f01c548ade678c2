//! bookinfo in a browser: headless Chromium (Debian's `chromium`, which
//! `.ci/run` installs) opens the product page through the gateway under
//! `virtual-service-reviews-test-v2`, as an anonymous user (no stars) and
//! signed in as jason through the page's own form (black stars). The
//! screenshot of jason's page is kept in the test's target directory
//! (`bookinfo-jason.png`). Skipped without Chromium unless
//! `MESH_REQUIRE_PEERS` is set.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("MESH_CHROMIUM").map_or("/usr/bin/chromium".into(), PathBuf::from);
    if path.exists() {
        return Some(path);
    }
    let why = format!("no Chromium at {}", path.display());
    assert!(std::env::var_os("MESH_REQUIRE_PEERS").is_none(), "{why}");
    eprintln!("skipped: {why}");
    None
}

/// Headless Chromium on `url` with `args`, in a profile of its own: its
/// standard output.
async fn run(chromium: &Path, url: &str, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        // Not --disable-background-networking: with it no screenshot of a
        // page navigated to is ever taken.
        "--virtual-time-budget=3000",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args)
    .arg(url);
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || cmd.output()),
    )
    .await
    .expect("chromium finished")
    .unwrap()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_sees_no_stars_and_jason_black_ones() {
    let Some(chromium) = chromium() else {
        return;
    };
    let (state, running) = support::launch(Some("virtual-service-reviews-test-v2")).await;
    let page = format!("http://{}/productpage", running.gateway);
    let anonymous = run(&chromium, &page, &["--dump-dom"]).await;
    assert!(anonymous.contains("The Comedy of Errors"), "{anonymous}");
    assert!(anonymous.contains("Sign in"), "{anonymous}");
    assert!(support::stars(&anonymous).is_empty(), "{anonymous}");

    // The page's own sign-in form, filled and sent as a person would.
    let sign_in = state.path().join("sign-in.html");
    std::fs::write(
        &sign_in,
        format!(
            "<!DOCTYPE html><html><body onload=\"document.forms[0].submit()\">\
             <form method=\"post\" action=\"http://{}/login\" name=\"login_form\">\
             <input name=\"username\" value=\"jason\"><input type=\"password\" name=\"passwd\" value=\"x\">\
             </form></body></html>",
            running.gateway
        ),
    )
    .unwrap();
    let url = format!("file://{}", sign_in.display());
    // The form's navigation races Chromium's virtual clock now and then:
    // a run that ends before it is run again.
    let mut jason = String::new();
    for _ in 0..3 {
        jason = run(&chromium, &url, &["--dump-dom"]).await;
        if jason.contains("Sign out") {
            break;
        }
    }
    assert!(
        jason.contains("jason") && jason.contains("Sign out"),
        "{jason}"
    );
    assert_eq!(
        support::stars(&jason),
        [(5, "black".into()), (4, "black".into())]
    );

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bookinfo-jason.png");
    let _ = std::fs::remove_file(&shot);
    let screenshot = format!("--screenshot={}", shot.display());
    for _ in 0..3 {
        run(&chromium, &url, &[&screenshot, "--window-size=1280,1000"]).await;
        if shot.exists() {
            break;
        }
    }
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG"),
        "no screenshot at {}",
        shot.display()
    );
    eprintln!("screenshot: {}", shot.display());
}
