//! The payment page's live status in headless Chromium (tests/browser/pay_status.mjs).
//! Needs Node.js, Chromium and playwright-core (tests/browser/node_modules): `.ci/run`
//! installs them; elsewhere the test is skipped when they are missing, never in CI.

use std::path::Path;
use std::process::Command;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    payment_page_flips_to_paid_without_reload,
    every_page_fits_a_phone_screen,
);

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

async fn every_page_fits_a_phone_screen(b: Backend) {
    if !browser_tools() {
        eprintln!("node/chromium/playwright-core missing: browser test skipped");
        return;
    }
    let app = TestApp::with_demo(b).await;
    let (_, c) = app.checkout(&[("man-tuyn-1m6-x-2m", 1)]).await;
    let pay = c["payment"]["code"].as_str().unwrap().to_string();
    let order = c["orders"][0]["code"].as_str().unwrap().to_string();
    let journeys = serde_json::json!([
        {"name": "buyer", "login": null, "paths": [
            "/", "/lang/phu-doi", "/lang/phu-doi/bang-gia", "/lang/phu-doi/loai-hang",
            "/shop/man-tuyn-ba-hanh", "/san-pham/man-tuyn-1m6-x-2m", "/tim-kiem?q=man+tuyn",
            "/tim-kiem?q=xyzxyz", "/gio-hang", "/thanh-toan", format!("/pay/{pay}"),
            "/tra-cuu-don", format!("/don-hang/{order}"), "/dang-nhap", "/dang-ky",
            "/quen-mat-khau", "/truy-xuat/KHONG-CO", "/khong-co-trang-nay"]},
        {"name": "seller", "login": [HANH, PW], "paths": [
            "/quan-ly", "/quan-ly/cua-hang/man-tuyn-ba-hanh", "/quan-ly/san-pham/man-tuyn-1m6-x-2m",
            "/quan-ly/san-pham/moi?shop=man-tuyn-ba-hanh", "/quan-ly/san-pham/man-tuyn-1m6-x-2m/lo",
            "/quan-ly/don-hang", "/quan-ly/doanh-thu", "/doi-mat-khau", "/lang/phu-doi/bang-gia"]},
        {"name": "moderator", "login": [MODERATOR, PW], "paths": [
            "/quan-ly", "/lang/phu-doi/bang-gia", "/lang/phu-doi/loai-hang"]},
        {"name": "admin", "login": [cholang::catalog::demo::ADMIN_EMAIL, PW], "paths": [
            "/quan-ly", "/quan-tri/doi-soat", "/quan-tri/chi-tra", "/quan-tri/so-cai",
            "/quan-tri/thong-bao"]},
    ]);
    let shots = app.config.data_dir.join("screenshots");
    let base = app.base.clone();
    let shots_s = shots.display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/browser/fits.mjs"
            ))
            .args([&base, &shots_s, &journeys.to_string()])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    if !out.status.success() {
        // Keep the screenshots of a failing run where they can be looked at.
        let keep =
            std::env::temp_dir().join(format!("cholang-fits-{}", uuid::Uuid::new_v4().simple()));
        let _ = std::fs::rename(&shots, &keep);
        panic!(
            "pages do not fit a phone (screenshots in {}):\n{}\n{}",
            keep.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let n = std::fs::read_dir(&shots).unwrap().count();
    assert!(n >= 2 * 35, "a screenshot per page and width: {n}");
}
