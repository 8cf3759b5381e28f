//! Pages and journeys in headless Chromium (tests/browser/*.mjs): the payment page's live
//! status, every page at phone widths, the buyer's journey by pointer, at desktop width,
//! without JavaScript and by keyboard alone, and the seller's, moderator's and admin's.
//! Needs Node.js, Chromium and playwright-core (tests/browser/node_modules): `.ci/run` installs
//! them; elsewhere the test is skipped when they are missing, never in CI.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    payment_page_flips_to_paid_without_reload,
    every_page_fits_a_phone_screen,
    buyer_journey_in_a_browser,
    seller_moderator_admin_journeys_on_a_phone,
    seller_moderator_admin_journeys_at_desktop_width,
    buyer_confirms_and_raises_a_request_on_a_phone,
    phone_resets_and_the_helpers_day_on_a_phone,
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

/// Runs `tests/browser/SCRIPT` with `args`; returns its standard output. On failure the
/// screenshots in `shots` are moved where they survive the test's data dir, and the test fails
/// with the script's output.
async fn node(script: &'static str, args: Vec<String>, shots: Option<PathBuf>) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser")
        .join(script);
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node").arg(path).args(args).output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let kept = shots.map(|shots| {
            let keep = std::env::temp_dir()
                .join(format!("cholang-browser-{}", uuid::Uuid::new_v4().simple()));
            let _ = std::fs::rename(&shots, &keep);
            format!(" (screenshots in {})", keep.display())
        });
        panic!(
            "{script} failed{}:\n{stdout}\n{}",
            kept.unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    stdout
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
    let args = vec![app.base.clone(), code.clone(), amount, BANK_SECRET.into()];
    node("pay_status.mjs", args, None).await;
    let p = app.payment(&code).await;
    assert_eq!(p["status"], "paid");
}

async fn every_page_fits_a_phone_screen(b: Backend) {
    if !browser_tools() {
        eprintln!("node/chromium/playwright-core missing: browser test skipped");
        return;
    }
    let app = TestApp::with_demo_and(b, &[("PAYOUT_ACCOUNT_HOLD_HOURS", "0")]).await;
    let (_, c) = app.checkout(&[("man-tuyn-1m6-x-2m", 1)]).await;
    let pay = c["payment"]["code"].as_str().unwrap().to_string();
    let order = c["orders"][0]["code"].as_str().unwrap().to_string();
    // Money on the admin's payout pages: a run (with its "did not go through" form) and a
    // shop held in the preview.
    let run = money_for_the_admin_pages(&app).await;
    // A printed batch with scans on every shop: the batch list and labels have data.
    cholang::demo::origin::load(&app.db).await.unwrap();
    let (batch, batched): (String, String) = sqlx::query_as(
        "SELECT b.code, p.slug FROM batches b JOIN products p ON p.id = b.product_id
         JOIN shops s ON s.id = p.shop_id WHERE s.slug = 'man-tuyn-ba-hanh' ORDER BY b.id LIMIT 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    app.transfer(c["total_vnd"].as_i64().unwrap(), &pay).await;
    // The digital team: a helper with two households (Thanh Hương's, Văn Toàn's).
    cholang::demo::catalog::digital_team(&app.db).await.unwrap();
    let token = cholang::orders::store::buyer_token(&app.config.secret_key, &order);
    let journeys = serde_json::json!([
        {"name": "buyer", "login": null, "paths": [
            "/", "/lang/phu-doi", "/lang/phu-doi/bang-gia", "/lang/phu-doi/loai-hang",
            "/shop/man-tuyn-ba-hanh", "/san-pham/man-tuyn-1m6-x-2m", "/tim-kiem?q=man+tuyn",
            "/tim-kiem?q=xyzxyz", "/gio-hang", "/thanh-toan", format!("/pay/{pay}"),
            "/tra-cuu-don", format!("/don-hang/{order}"), "/dang-nhap", "/dang-ky",
            "/quen-mat-khau", "/dat-lai-mat-khau", format!("/truy-xuat/{batch}"), "/truy-xuat/KHONG-CO",
            "/khong-co-trang-nay", "/tra-cuu-don?ma=CL", "/lang/phu-doi/so-lieu",
            "/chia-se?duong-dan=%2Fsan-pham%2Fman-tuyn-1m6-x-2m", "/xac-nhan-so-dien-thoai?so=0977123456"]},
        // A buyer who opened the receipt's link: the order page and its two steps.
        {"name": "buyer-proven", "login": null, "paths": [
            format!("/don-hang/{order}?t={token}"), format!("/don-hang/{order}/da-nhan"),
            format!("/don-hang/{order}/yeu-cau"), format!("/don-hang/{pay}"), format!("/pay/{pay}")]},
        {"name": "seller", "login": [HANH, PW], "paths": [
            "/quan-ly", "/quan-ly/cua-hang/man-tuyn-ba-hanh", "/quan-ly/san-pham/man-tuyn-1m6-x-2m",
            "/quan-ly/san-pham/moi?shop=man-tuyn-ba-hanh", format!("/quan-ly/san-pham/{batched}/lo"),
            format!("/quan-ly/lo/{batch}"),
            "/quan-ly/don-hang", "/quan-ly/doanh-thu", "/doi-mat-khau", "/lang/phu-doi/bang-gia",
            "/tai-khoan/so-dien-thoai", "/quan-ly/cua-hang/man-tuyn-ba-hanh/nguoi-giup"]},
        {"name": "moderator", "login": [MODERATOR, PW], "paths": [
            "/quan-ly", "/lang/phu-doi/bang-gia", "/lang/phu-doi/loai-hang", "/quan-tri/yeu-cau",
            "/quan-ly/lang/phu-doi/to-cong-nghe"]},
        {"name": "helper", "login": [cholang::demo::catalog::HELPER_PHONE, PW], "paths": [
            "/quan-ly", "/quan-ly/giup-ho", "/quan-ly/san-pham/dao-thai-inox-can-go"]},
        {"name": "admin", "login": [cholang::demo::catalog::ADMIN_EMAIL, PW], "paths": [
            "/quan-ly", "/quan-tri/doi-soat", "/quan-tri/chi-tra", format!("/quan-tri/chi-tra/{run}"),
            "/quan-tri/so-cai", "/quan-tri/so-cai?shop=man-tuyn-ba-hanh", "/quan-tri/thong-bao", "/quan-tri/yeu-cau"]},
        // The API's reference is long by nature: it must fit a phone, not the page budget.
        {"name": "docs", "login": null, "max_weight": 1_500_000, "paths": ["/api/docs"]},
    ]);
    let shots = app.config.data_dir.join("screenshots");
    let args = vec![
        app.base.clone(),
        shots.display().to_string(),
        journeys.to_string(),
    ];
    node("fits.mjs", args, Some(shots.clone())).await;
    let n = std::fs::read_dir(&shots).unwrap().count();
    assert!(n >= 2 * 35, "a screenshot per page and width: {n}");
}

/// Bà Hạnh paid out in a bank-app run, Minh Đức's money held (no account): the run's code.
async fn money_for_the_admin_pages(app: &TestApp) -> String {
    let hanh = app.api_login(HANH, PW).await;
    let duc = app.api_login(DUC, PW).await;
    let (s, v) = app
        .api(
            "PUT",
            "/shops/man-tuyn-ba-hanh/payout-account",
            Some(&hanh),
            Some(serde_json::json!({"bank_bin": "970405", "account_no": "1234567890", "account_name": "Nguyen Thi Hanh", "password": PW})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for (slug, token) in [
        ("man-tuyn-2-cua-1m8-x-2m", &hanh),
        ("ghe-dau-go-xoan", &duc),
    ] {
        let (_, c) = app.checkout(&[(slug, 1)]).await;
        app.transfer(
            c["total_vnd"].as_i64().unwrap(),
            c["payment"]["code"].as_str().unwrap(),
        )
        .await;
        let order = c["orders"][0]["code"].as_str().unwrap();
        for to in ["accepted", "shipped", "delivered"] {
            let (s, v) = app
                .api(
                    "POST",
                    &format!("/orders/{order}/transitions"),
                    Some(token),
                    Some(serde_json::json!({"to": to})),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
        // The buyer confirmed receipt: the money is released (buyer protection).
        app.buyer_received(order).await;
        if slug.starts_with("man") {
            let admin = app.api_login(cholang::demo::catalog::ADMIN_EMAIL, PW).await;
            let (s, v) = app
                .api(
                    "POST",
                    "/payout-runs",
                    Some(&admin),
                    Some(serde_json::json!({"method": "bank_app"})),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
        }
    }
    // A request waiting for a decision, and a refund on its way to a buyer's bank (the
    // decisions page with data).
    for accept in [false, true] {
        let (_, c) = app.checkout(&[("man-tuyn-tre-em-1m2", 1)]).await;
        app.transfer(
            c["total_vnd"].as_i64().unwrap(),
            c["payment"]["code"].as_str().unwrap(),
        )
        .await;
        let order = c["orders"][0]["code"].as_str().unwrap();
        for to in ["accepted", "shipped"] {
            app.api(
                "POST",
                &format!("/orders/{order}/transitions"),
                Some(&hanh),
                Some(serde_json::json!({"to": to})),
            )
            .await;
        }
        let (s, v) = app
            .api(
                "POST",
                &format!("/orders/{order}/requests"),
                None,
                Some(
                    serde_json::json!({"phone": "0987654321", "reason": "damaged",
                    "text": "Màn bị rách một góc khi mở hộp ra xem"}),
                ),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let id = v["request"]["id"].as_i64().unwrap();
        let answer = if accept {
            serde_json::json!({"answer": "accept"})
        } else {
            serde_json::json!({"answer": "reply", "text": "Hàng gửi đi còn nguyên vẹn"})
        };
        app.api(
            "POST",
            &format!("/requests/{id}/answer"),
            Some(&hanh),
            Some(answer),
        )
        .await;
        let (s, v) = if accept {
            app.api(
                "PUT",
                &format!("/requests/{id}/refund-account"),
                None,
                Some(
                    serde_json::json!({"phone": "0987654321", "bank_bin": "970436",
                    "account_no": "0011001234567", "account_name": "Nguyen Thi Mai"}),
                ),
            )
            .await
        } else {
            app.api(
                "POST",
                &format!("/requests/{id}/escalate"),
                None,
                Some(serde_json::json!({"phone": "0987654321"})),
            )
            .await
        };
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    sqlx::query_scalar("SELECT code FROM payout_runs")
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

/// The buyer's whole journey (tests/browser/buyer.mjs) four times: on a phone, at desktop
/// width, with JavaScript disabled and by keyboard alone. Each run must end with its payment
/// paid and two orders (two shops) that the buyer's phone number finds.
async fn buyer_journey_in_a_browser(b: Backend) {
    if !browser_tools() {
        eprintln!("node/chromium/playwright-core missing: browser test skipped");
        return;
    }
    // The demo's shops deliver themselves at a fee, and Phú Đôi's ship by GHN too (a local
    // stand-in): the journey picks a ward, sees the fees and, on a phone, chooses GHN.
    let (ghn, _) = crate::carriers::start_carriers().await;
    let app = TestApp::with_demo_and(
        b,
        &[
            ("GHN_TOKEN", crate::carriers::GHN_TOKEN),
            ("GHN_SHOP_ID", crate::carriers::GHN_SHOP),
            ("GHN_API_URL", &ghn),
        ],
    )
    .await;
    cholang::demo::shipping::load(&app.db).await.unwrap();
    sqlx::query(
        "UPDATE shop_shipping SET methods = 'self,ghn'
         WHERE shop_id IN (SELECT s.id FROM shops s JOIN villages v ON v.id = s.village_id WHERE v.slug = 'phu-doi')",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    let shots = app.config.data_dir.join("screenshots");
    let args = vec![
        app.base.clone(),
        shots.display().to_string(),
        BANK_SECRET.into(),
    ];
    let out = node("buyer.mjs", args, Some(shots.clone())).await;
    let runs: Vec<serde_json::Value> = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let modes: Vec<&str> = runs.iter().map(|r| r["mode"].as_str().unwrap()).collect();
    assert_eq!(modes, ["phone", "desktop", "nojs", "keyboard"]);
    for run in &runs {
        let code = run["payment"].as_str().unwrap();
        let p = app.payment(code).await;
        assert_eq!(p["status"], "paid", "{run}");
        let (s, tracked) = app
            .api(
                "POST",
                "/orders/lookup",
                None,
                Some(serde_json::json!({"code": code, "phone": run["phone"]})),
            )
            .await;
        assert_eq!(s, 200, "{run}: {tracked}");
        assert_eq!(
            tracked["checkout"]["orders"].as_array().unwrap().len(),
            2,
            "{run}"
        );
    }
    // A screenshot of every step of every run.
    let n = std::fs::read_dir(&shots).unwrap().count();
    assert!(n >= 4 * 13, "screenshots: {n}");
}

/// tests/browser/team.mjs at 360 px: a phone-only seller's reset by the code on her phone, a
/// reset code given in person by the village head, and a helper bringing a household online
/// and working for another; then the database is asked whether each happened.
async fn phone_resets_and_the_helpers_day_on_a_phone(b: Backend) {
    if !browser_tools() {
        eprintln!("node/chromium/playwright-core missing: browser test skipped");
        return;
    }
    let app = TestApp::with_demo(b).await;
    cholang::demo::catalog::digital_team(&app.db).await.unwrap();
    let shots = app.config.data_dir.join("shots");
    let setup = serde_json::json!({
        "width": 360, "height": 740,
        "mail_dir": app.config.mail_dir(),
        "password": PW,
        "seller": HANH,
        "seller2": HUONG,
        "moderator": MODERATOR,
        "helper": cholang::demo::catalog::HELPER_PHONE,
        "household": {"name": "Bà Nguyễn Thị Tư", "phone": "0977400400", "shop": "Màn tuyn Bà Tư"},
        "helped_owner": TOAN,
        "helped_product": "dao-thai-inox-can-go",
    });
    let args = vec![
        app.base.clone(),
        shots.display().to_string(),
        setup.to_string(),
    ];
    node("team.mjs", args, Some(shots)).await;
    app.api_login(HANH, "mat-khau-moi-cua-hanh").await;
    app.api_login(HUONG, "mat-khau-tai-cho-1").await;
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM households WHERE phone = '0977400400' AND confirmed_at IS NOT NULL")
            .await,
        1
    );
    assert_eq!(app.stock("dao-thai-inox-can-go").await, 77);
    assert_eq!(
        app.scalar(
            "SELECT COUNT(*) FROM helper_actions WHERE action LIKE 'sửa sản phẩm “Dao thái%'"
        )
        .await,
        1
    );
}

async fn seller_moderator_admin_journeys_on_a_phone(b: Backend) {
    seller_moderator_admin_journeys(b, (390, 844)).await
}

async fn seller_moderator_admin_journeys_at_desktop_width(b: Backend) {
    seller_moderator_admin_journeys(b, (1280, 800)).await
}

/// tests/browser/seller.mjs: the seller's day (a product with a photo, stock, a price voted
/// through, an order delivered, Telegram notices), the moderator's approval and the admin's
/// reconciliation, all by clicking; then the database is asked whether each of it happened.
async fn seller_moderator_admin_journeys(b: Backend, (width, height): (u32, u32)) {
    if !browser_tools() {
        eprintln!("node/chromium/playwright-core missing: browser test skipped");
        return;
    }
    let tg = FakeProvider::start(|_| {
        (
            200,
            serde_json::json!({"ok": true, "result": {"message_id": 1}}).to_string(),
        )
    })
    .await;
    let app = TestApp::with_demo_and(
        b,
        &[("TELEGRAM_BOT_TOKEN", "1:X"), ("TELEGRAM_API_URL", &tg.url)],
    )
    .await;
    // A paid order for Bà Hạnh's shop.
    let (_, c) = app.checkout(&[("man-tuyn-2-cua-1m8-x-2m", 1)]).await;
    let total = c["total_vnd"].as_i64().unwrap();
    app.transfer(total, c["payment"]["code"].as_str().unwrap())
        .await;
    let order = c["orders"][0]["code"].as_str().unwrap().to_string();
    // A checkout waiting for its money, and a transfer that forgot the payment code.
    let (_, w) = app.checkout(&[("ghe-dau-go-xoan", 1)]).await;
    let waiting = w["payment"]["code"].as_str().unwrap().to_string();
    let description = "chuyen tien mua ghe dau go";
    let t = app
        .transfer(w["total_vnd"].as_i64().unwrap(), description)
        .await;
    assert_eq!(t["outcome"]["result"], "unmatched", "{t}");
    let (_, before) = app
        .api("GET", "/villages/phu-doi/proposals", None, None)
        .await;
    let demo_proposal = before["proposals"][0]["id"].as_i64().unwrap();

    let photo = app.config.data_dir.join("net.png");
    std::fs::write(&photo, png_bytes()).unwrap();
    let shots = app.config.data_dir.join("screenshots");
    let setup = serde_json::json!({
        "width": width, "height": height, "password": PW,
        "seller": HANH, "voters": [HUONG, DUC], "moderator": MODERATOR,
        "admin": cholang::demo::catalog::ADMIN_EMAIL,
        "photo": photo, "order": order, "new_price": 250_000,
        "assign": {"payment": waiting, "description": description},
        "telegram_chat": "5550001",
    });
    let args = vec![
        app.base.clone(),
        shots.display().to_string(),
        setup.to_string(),
    ];
    let out = node("seller.mjs", args, Some(shots.clone())).await;
    let done: serde_json::Value = out
        .lines()
        .find(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .expect("seller.mjs says what it did");

    // The product exists with its photo and the edited stock.
    let slug = done["product"].as_str().unwrap();
    assert_eq!(app.stock(slug).await, 20);
    let photos: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM product_photos ph JOIN products p ON p.id = ph.product_id WHERE p.slug = $1",
    )
    .bind(slug.to_string())
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(photos, 1);
    // The voted price is every listing's price.
    app.search_synced().await;
    let (_, s) = app.search("q=man+chup+tu+bung").await;
    let prices: Vec<i64> = s["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["name"].as_str().unwrap().starts_with("Màn chụp tự bung"))
        .map(|h| h["price_vnd"].as_i64().unwrap())
        .collect();
    assert!(
        !prices.is_empty() && prices.iter().all(|p| *p == 250_000),
        "{prices:?}"
    );
    // The order went all the way, with its tracking code.
    let (status, tracking): (String, Option<String>) =
        sqlx::query_as("SELECT status, tracking_code FROM orders WHERE code = $1")
            .bind(order.clone())
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(status, "delivered");
    assert_eq!(tracking.as_deref(), Some("VTP123456789"));
    // The test notice reaches the chat id typed in the settings.
    app.notifier().run_once().await.unwrap();
    let sent = tg.requests();
    assert!(
        sent.iter()
            .any(|r| r.path.ends_with("/sendMessage") && r.body.contains("5550001")),
        "{sent:?}"
    );
    // The moderator approved the demo's open proposal.
    let (_, p) = app
        .api("GET", &format!("/proposals/{demo_proposal}"), None, None)
        .await;
    assert_eq!(done["approved"], format!("de-xuat-{demo_proposal}"));
    assert_eq!(p["proposal"]["status"], "approved", "{p}");
    // The admin's assignment paid the waiting checkout.
    assert_eq!(app.payment(&waiting).await["status"], "paid");
    let n = std::fs::read_dir(&shots).unwrap().count();
    assert!(n >= 20, "screenshots: {n}");
}

/// Buyer protection on a phone, with and without JavaScript: the receipt link, the
/// confirmation step, the request form with a photo; the server agrees afterwards.
async fn buyer_confirms_and_raises_a_request_on_a_phone(b: Backend) {
    if !browser_tools() {
        eprintln!("node/chromium/playwright-core missing: browser test skipped");
        return;
    }
    let app = TestApp::with_demo(b).await;
    let hanh = app.api_login(HANH, PW).await;
    let photo = app.config.data_dir.join("torn.png");
    std::fs::write(&photo, png_bytes()).unwrap();
    for mode in ["phone", "nojs"] {
        let mut links = Vec::new();
        let mut orders = Vec::new();
        for _ in 0..2 {
            let (_, c) = app.checkout(&[("man-tuyn-2-cua-1m8-x-2m", 1)]).await;
            app.transfer(
                c["total_vnd"].as_i64().unwrap(),
                c["payment"]["code"].as_str().unwrap(),
            )
            .await;
            let order = c["orders"][0]["code"].as_str().unwrap().to_string();
            for to in ["accepted", "shipped", "delivered"] {
                let (s, v) = app
                    .api(
                        "POST",
                        &format!("/orders/{order}/transitions"),
                        Some(&hanh),
                        Some(serde_json::json!({"to": to})),
                    )
                    .await;
                assert_eq!(s, StatusCode::OK, "{v}");
            }
            let t = cholang::orders::store::buyer_token(&app.config.secret_key, &order);
            links.push(format!("/don-hang/{order}?t={t}"));
            orders.push(order);
        }
        let shots = app.config.data_dir.join(format!("screenshots-{mode}"));
        let args = vec![
            app.base.clone(),
            shots.display().to_string(),
            links[0].clone(),
            links[1].clone(),
            photo.display().to_string(),
            mode.to_string(),
        ];
        node("protection.mjs", args, Some(shots)).await;
        let (_, v) = app.api("GET", "/orders", Some(&hanh), None).await;
        let release = |code: &str| {
            v["orders"]
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["code"] == code)
                .unwrap()["release"]["state"]
                .clone()
        };
        assert_eq!(release(&orders[0]), "released", "{mode}");
        assert_eq!(release(&orders[1]), "frozen", "{mode}");
        let (_, r) = app
            .api(
                "GET",
                &format!("/orders/{}/requests", orders[1]),
                Some(&hanh),
                None,
            )
            .await;
        assert_eq!(r["requests"][0]["amount_vnd"], 60_000, "{mode}: {r}");
        assert_eq!(
            r["requests"][0]["buyer_photos"].as_array().unwrap().len(),
            1,
            "{mode}: {r}"
        );
    }
}
