//! bookinfo in a browser: headless Chromium (Debian's `chromium`, which
//! `.ci/run` installs) opens the product page through the gateway under
//! `virtual-service-reviews-test-v2`, as an anonymous user (no stars) and
//! signed in as jason by sending the page's sign-in form (black stars). The
//! screenshot of jason's page is kept in the test's target directory
//! (`bookinfo-jason.png`). Skipped without Chromium unless
//! `MESH_REQUIRE_PEERS` is set.

mod support;

use std::path::{Path, PathBuf};
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
/// standard output, or `None` if it did not finish within 30 s (it is
/// killed then; now and then a headless run never ends).
async fn run(chromium: &Path, url: &str, args: &[&str]) -> Option<String> {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        // Not --disable-background-networking: with it no screenshot is
        // ever taken.
        "--virtual-time-budget=3000",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args)
    .arg(url)
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .ok()?
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// [`run`] until it gives what `good` takes, three times at most.
async fn run_until(
    chromium: &Path,
    url: &str,
    args: &[&str],
    good: impl Fn(&str) -> bool,
) -> String {
    let mut last = String::new();
    for _ in 0..3 {
        if let Some(out) = run(chromium, url, args).await {
            if good(&out) {
                return out;
            }
            last = out;
        }
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_sees_no_stars_and_jason_black_ones() {
    let Some(chromium) = chromium() else {
        return;
    };
    let (state, running) = support::launch(Some("virtual-service-reviews-test-v2")).await;
    let page = format!("http://{}/productpage", running.gateway);
    let anonymous = run_until(&chromium, &page, &["--dump-dom"], |dom| {
        dom.contains("</html>")
    })
    .await;
    assert!(anonymous.contains("The Comedy of Errors"), "{anonymous}");
    assert!(anonymous.contains("Sign in"), "{anonymous}");
    assert!(support::stars(&anonymous).is_empty(), "{anonymous}");

    // The page's sign-in form, as the page serves it, filled in and sent
    // from a page of the test's own (a headless run cannot type).
    for part in [
        "action=\"login\" name=\"login_form\"",
        "name=\"username\"",
        "name=\"passwd\"",
    ] {
        assert!(anonymous.contains(part), "{part} is not in {anonymous}");
    }
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
    let jason = run_until(&chromium, &url, &["--dump-dom"], |dom| {
        dom.contains("Sign out")
    })
    .await;
    assert!(
        jason.contains("jason") && jason.contains("Sign out"),
        "{jason}"
    );
    assert_eq!(
        support::stars(&jason),
        [(5, "black".into()), (4, "black".into())]
    );

    // The screenshot of jason's page as the browser rendered it, without
    // navigating again.
    let rendered = state.path().join("jason.html");
    std::fs::write(&rendered, &jason).unwrap();
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bookinfo-jason.png");
    let _ = std::fs::remove_file(&shot);
    let screenshot = format!("--screenshot={}", shot.display());
    let page = format!("file://{}", rendered.display());
    run_until(
        &chromium,
        &page,
        &[&screenshot, "--window-size=1280,1000"],
        |_| shot.exists(),
    )
    .await;
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG"),
        "no screenshot at {}",
        shot.display()
    );
    eprintln!("screenshot: {}", shot.display());
}
