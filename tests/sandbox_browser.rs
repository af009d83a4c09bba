//! The sandbox page in a real browser (Debian's Chromium, driven by Playwright): propose a
//! restore, approve it as two responders, see the user reactivated. A screenshot lands in
//! `target/sandbox.png` for people to look at.
//!
//! Needs `/usr/bin/chromium` and `npm ci` in `tests/browser` (`.ci/run` installs both). Where
//! they are missing the test says so and passes, unless `COUNTERSIGN_REQUIRE_BROWSER` is set,
//! as CI sets it.

mod support;

use std::path::Path;
use std::process::Command;

use support::sandbox::start_sandbox;

fn browser_missing() -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    if !Path::new(&chromium).exists() {
        return Some(format!("{chromium} is missing (apt-get install chromium)"));
    }
    if !manifest
        .join("tests/browser/node_modules/playwright-core")
        .exists()
    {
        return Some("tests/browser/node_modules is missing (cd tests/browser && npm ci)".into());
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node is missing".into());
    }
    None
}

#[tokio::test]
async fn a_restore_is_proposed_and_approved_by_two_in_the_browser() {
    if let Some(missing) = browser_missing() {
        assert!(
            std::env::var_os("COUNTERSIGN_REQUIRE_BROWSER").is_none(),
            "browser test required but {missing}"
        );
        eprintln!("skipped: {missing}");
        return;
    }
    let base = start_sandbox().await;
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let screenshot = manifest.join("target/sandbox.png");

    let output = tokio::process::Command::new("node")
        .arg(manifest.join("tests/browser/sandbox.mjs"))
        .arg(&base)
        .arg(&screenshot)
        .output()
        .await
        .expect("node runs");

    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the browser run failed:\n{report}");
    assert!(screenshot.exists());
}
