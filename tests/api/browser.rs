//! The payment page's live status in headless Chromium (tests/browser/pay_status.mjs).
//! Needs Node.js, Chromium and playwright-core (tests/browser/node_modules): `.ci/run`
//! installs them; elsewhere the test is skipped when they are missing, never in CI.

use std::path::Path;
use std::process::Command;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(payment_page_flips_to_paid_without_reload);

fn browser_tools() -> bool {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let have = Path::new(&chromium).exists()
        && Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/node_modules/playwright-core"
        ))
        .exists()
        && Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    assert!(
        have || std::env::var("CI").is_err(),
        "CI must provide node, chromium and playwright-core"
    );
    have
}

async fn payment_page_flips_to_paid_without_reload(b: Backend) {
    if !browser_tools() {
        eprintln!("node/chromium/playwright-core missing: browser test skipped");
        return;
    }
    let app = TestApp::with_demo(b).await;
    let (_, c) = app.checkout(&[("khay-tra-son-mai-kham-trai", 1)]).await;
    let code = c["payment"]["code"].as_str().unwrap().to_string();
    let amount = c["total_vnd"].as_i64().unwrap().to_string();
    let base = app.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/browser/pay_status.mjs"
            ))
            .args([&base, &code, &amount, BANK_SECRET])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "browser check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let p = app.payment(c["payment"]["code"].as_str().unwrap()).await;
    assert_eq!(p["status"], "paid");
}
