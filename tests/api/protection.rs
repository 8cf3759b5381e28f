//! Buyer protection (issue 28): a seller's money is released only when the buyer has the
//! goods; buyers without accounts prove themselves by the receipt link or the checkout phone;
//! requests freeze the release and every outcome posts its journals; refunds are paid to the
//! buyer's bank through payOS (a lost answer retried with the same key) or the bank app,
//! confirmed by the feed. The sweep's clock is passed in (a test hook), never slept for.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;
use crate::payouts::{FakePayos, Mode, app_with_payos, balance};

on_both_backends!(
    a_sellers_delivered_releases_only_after_the_window,
    the_buyers_confirmation_releases_at_once_and_proof_is_required,
    a_request_freezes_release_and_each_outcome_posts_its_journals,
    a_refund_goes_to_the_buyers_bank_through_payos_with_one_key,
    the_seller_and_the_moderator_work_from_their_pages,
);

const NET: &str = "man-tuyn-2-cua-1m8-x-2m"; // Bà Hạnh, 180.000 ₫
const CHEAP_NET: &str = "man-tuyn-tre-em-1m2"; // Bà Hạnh, 95.000 ₫
const STOOL: &str = "ghe-dau-go-xoan"; // Minh Đức, 120.000 ₫
const HOOK: &str = "moc-treo-man-inox"; // Văn Toàn, 30.000 ₫
const TOAN: &str = "0912000104";
const BUYER_PHONE: &str = "0987 654 321";
const DAY: i64 = 86_400_000;

/// A paid order of one product: its code.
async fn paid(app: &TestApp, slug: &str) -> String {
    let (s, c) = app.checkout(&[(slug, 1)]).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    app.transfer(
        c["total_vnd"].as_i64().unwrap(),
        c["payment"]["code"].as_str().unwrap(),
    )
    .await;
    c["orders"][0]["code"].as_str().unwrap().to_string()
}

async fn moves(app: &TestApp, token: &str, order: &str, to: &[&str]) {
    for t in to {
        let (s, v) = app
            .api(
                "POST",
                &format!("/orders/{order}/transitions"),
                Some(token),
                Some(json!({"to": t})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{t}: {v}");
    }
}

async fn account(app: &TestApp, account: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(
        "SELECT CAST(COALESCE(SUM(amount_vnd), 0) AS BIGINT) FROM ledger_entries WHERE account = $1",
    )
    .bind(account.to_string())
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

async fn sweep(app: &TestApp, at: i64) -> usize {
    cholang::protection::store::sweep(&app.db, &app.config, at)
        .await
        .unwrap()
}

async fn release_of(app: &TestApp, token: &str, order: &str) -> Value {
    let (s, v) = app.api("GET", "/orders", Some(token), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["code"] == order)
        .unwrap_or_else(|| panic!("{order} not in {v}"))["release"]
        .clone()
}

async fn buyer(app: &TestApp, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
    app.api(method, path, None, Some(body)).await
}

fn with_phone(mut v: Value) -> Value {
    v["phone"] = json!(BUYER_PHONE);
    v
}

async fn a_sellers_delivered_releases_only_after_the_window(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let hanh = app.api_login(HANH, PW).await;
    let order = paid(&app, NET).await;
    moves(&app, &hanh, &order, &["accepted", "shipped", "delivered"]).await;
    let now = cholang::domain::now_ms();
    // The seller's word alone releases nothing.
    let bal = balance(&app, &hanh, "man-tuyn-ba-hanh").await;
    assert_eq!(
        (bal["pending_vnd"].as_i64(), bal["available_vnd"].as_i64()),
        (Some(180_000), Some(0)),
        "{bal}"
    );
    let r = release_of(&app, &hanh, &order).await;
    assert_eq!(
        (r["state"].as_str(), r["reason"].as_str()),
        (Some("waiting"), Some("delivered")),
        "{r}"
    );
    let at = r["at"].as_i64().unwrap();
    assert!((at - (now + 3 * DAY)).abs() < 60_000, "{r}");
    // The seller reads when and why, in words.
    app.login_page(HANH, PW).await;
    let page = app.page("/quan-ly/don-hang?tab=tat-ca").await;
    assert!(
        page.contains("Chờ người mua xác nhận — tự động ngày"),
        "{page}"
    );
    // Not before the window.
    assert_eq!(sweep(&app, now + 3 * DAY - 60_000).await, 0);
    // The buyer extends once by 3 days ("Chưa nhận được hàng"); a second time is refused.
    let (s, v) = buyer(
        &app,
        "POST",
        &format!("/orders/{order}/extend"),
        with_phone(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        (v["release"]["at"].as_i64().unwrap() - (now + 6 * DAY)).abs() < 60_000,
        "{v}"
    );
    let (s, v) = buyer(
        &app,
        "POST",
        &format!("/orders/{order}/extend"),
        with_phone(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(sweep(&app, now + 3 * DAY + 60_000).await, 0);
    assert_eq!(
        balance(&app, &hanh, "man-tuyn-ba-hanh").await["available_vnd"],
        0
    );
    // After the extended window: released once.
    assert_eq!(sweep(&app, now + 6 * DAY + 60_000).await, 1);
    assert_eq!(sweep(&app, now + 6 * DAY + 60_000).await, 0);
    let bal = balance(&app, &hanh, "man-tuyn-ba-hanh").await;
    assert_eq!(
        (bal["pending_vnd"].as_i64(), bal["available_vnd"].as_i64()),
        (Some(0), Some(180_000)),
        "{bal}"
    );
    assert_eq!(release_of(&app, &hanh, &order).await["state"], "released");
    // Shipped and nothing heard: SHIPPED_RELEASE_DAYS (10) after shipping.
    let other = paid(&app, CHEAP_NET).await;
    moves(&app, &hanh, &other, &["accepted", "shipped"]).await;
    let now = cholang::domain::now_ms();
    assert_eq!(sweep(&app, now + 10 * DAY - 60_000).await, 0);
    assert_eq!(sweep(&app, now + 10 * DAY + 60_000).await, 1);
}

async fn the_buyers_confirmation_releases_at_once_and_proof_is_required(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let hanh = app.api_login(HANH, PW).await;
    let order = paid(&app, NET).await;
    moves(&app, &hanh, &order, &["accepted"]).await;
    // Proven, but nothing shipped yet: nothing to confirm.
    let (s, v) = buyer(
        &app,
        "POST",
        &format!("/orders/{order}/receipt"),
        with_phone(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    moves(&app, &hanh, &order, &["shipped"]).await;
    // No proof, a wrong phone, a wrong link and an order that does not exist read the same.
    let path = format!("/orders/{order}/receipt");
    let refused = [
        buyer(&app, "POST", &path, json!({})).await,
        buyer(&app, "POST", &path, json!({"phone": "0900000000"})).await,
        buyer(
            &app,
            "POST",
            &path,
            json!({"token": "00ff00ff00ff00ff00ff00ff00ff00ff"}),
        )
        .await,
        buyer(
            &app,
            "POST",
            "/orders/CLZZZZZZZZ-1/receipt",
            with_phone(json!({})),
        )
        .await,
    ];
    for (s, v) in &refused {
        assert_eq!(*s, StatusCode::NOT_FOUND, "{v}");
        assert_eq!(v["error"]["code"], refused[0].1["error"]["code"], "{v}");
        assert_eq!(
            v["error"]["message"], refused[0].1["error"]["message"],
            "{v}"
        );
    }
    let (s, _) = app
        .api(
            "GET",
            &format!("/orders/{order}/requests?phone=0900000000"),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        balance(&app, &hanh, "man-tuyn-ba-hanh").await["pending_vnd"],
        180_000
    );
    // The receipt email's signed link proves the buyer: released at once.
    let token = cholang::orders::store::buyer_token(&app.config.secret_key, &order);
    let (s, v) = buyer(&app, "POST", &path, json!({"token": token})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["release"]["state"].as_str(),
            v["release"]["reason"].as_str(),
            v["order"]["status"].as_str()
        ),
        (Some("released"), Some("buyer_confirmed"), Some("delivered")),
        "{v}"
    );
    let bal = balance(&app, &hanh, "man-tuyn-ba-hanh").await;
    assert_eq!(
        (bal["pending_vnd"].as_i64(), bal["available_vnd"].as_i64()),
        (Some(0), Some(180_000)),
        "{bal}"
    );
    let (s, _) = buyer(&app, "POST", &path, json!({"token": token})).await;
    assert_eq!(s, StatusCode::CONFLICT, "once");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM ledger_journals WHERE kind = 'order_released'")
            .await,
        1
    );
    // The same on the page: the link from the email, the confirmation step, the button.
    let second = paid(&app, CHEAP_NET).await;
    moves(&app, &hanh, &second, &["accepted", "shipped"]).await;
    let anon = &app; // no session: a buyer's browser
    let r = anon.get(&format!("/don-hang/{second}")).await;
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Nhập số điện thoại"),
        "unproven: the phone form only"
    );
    assert!(!page.contains("Đã nhận được hàng"));
    let t = cholang::orders::store::buyer_token(&app.config.secret_key, &second);
    let r = anon.get(&format!("/don-hang/{second}?t={t}")).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "the link is remembered, then a clean URL"
    );
    let page = anon.page(&format!("/don-hang/{second}")).await;
    assert!(page.contains("Đã nhận được hàng"), "{page}");
    assert!(page.contains("Có vấn đề với đơn hàng"));
    assert!(page.contains("zalo.me/"), "the seller's Zalo");
    let step = anon.page(&format!("/don-hang/{second}/da-nhan")).await;
    assert!(
        step.contains("Đúng, tôi đã nhận đủ hàng"),
        "a confirmation step"
    );
    let r = anon
        .submit(
            &format!("/don-hang/{second}/da-nhan"),
            &format!("/don-hang/{second}/da-nhan"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = anon.page(&format!("/don-hang/{second}")).await;
    assert!(
        page.contains("Người mua xác nhận đã nhận được hàng"),
        "{page}"
    );
    assert_eq!(
        balance(&app, &hanh, "man-tuyn-ba-hanh").await["available_vnd"],
        275_000
    );
}

async fn open_request(app: &TestApp, order: &str, body: Value) -> (StatusCode, Value) {
    buyer(
        app,
        "POST",
        &format!("/orders/{order}/requests"),
        with_phone(body),
    )
    .await
}

async fn a_request_freezes_release_and_each_outcome_posts_its_journals(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let hanh = app.api_login(HANH, PW).await;
    let moderator = app.api_login(MODERATOR, PW).await;
    let admin = app.api_login(cholang::demo::catalog::ADMIN_EMAIL, PW).await;
    // A: damaged, 60.000 of 180.000 asked; the seller replies, the buyer escalates, the
    // village moderator decides a partial refund.
    let a = paid(&app, NET).await;
    moves(&app, &hanh, &a, &["accepted", "shipped", "delivered"]).await;
    let (s, v) = open_request(
        &app,
        &a,
        json!({"reason": "damaged", "text": "Màn bị rách một góc khi mở hộp", "amount_vnd": 60_000}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["release"]["state"], "frozen");
    let ra = v["request"]["id"].as_i64().unwrap();
    let (s, _) = open_request(
        &app,
        &a,
        json!({"reason": "damaged", "text": "Lần thứ hai cùng đơn"}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "one open request per order");
    let (s, v) = open_request(&app, &a, json!({"reason": "lost", "text": "x"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["fields"]["reason"].is_string() && v["error"]["fields"]["text"].is_string(),
        "{v}"
    );
    // Who may read it: the buyer with proof, the shop, the village moderator; not another seller.
    let duc = app.api_login(DUC, PW).await;
    let path = format!("/orders/{a}/requests");
    assert_eq!(
        app.api("GET", &path, Some(&duc), None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.api("GET", &path, Some(&hanh), None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.api("GET", &path, Some(&moderator), None).await.0,
        StatusCode::OK
    );
    let (s, v) = app
        .api("GET", &format!("{path}?phone=0987654321"), None, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["requests"][0]["reason"], "damaged");
    // No decision before escalation; the seller replies, the buyer escalates.
    let decide = |id: i64, token: String, body: Value| {
        let app = &app;
        async move {
            app.api(
                "POST",
                &format!("/requests/{id}/decision"),
                Some(&token),
                Some(body),
            )
            .await
        }
    };
    let partial = json!({"outcome": "partial", "amount_vnd": 60_000,
        "reason": "Ảnh cho thấy màn rách một góc; hoàn 60.000 ₫ để người mua tự khâu lại"});
    assert_eq!(
        decide(ra, moderator.clone(), partial.clone()).await.0,
        StatusCode::CONFLICT
    );
    let (s, v) = app
        .api(
            "POST",
            &format!("/requests/{ra}/answer"),
            Some(&duc),
            Some(json!({"answer": "accept"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "another shop: {v}");
    let (s, v) = app
        .api(
            "POST",
            &format!("/requests/{ra}/answer"),
            Some(&hanh),
            Some(json!({"answer": "reply", "text": "Hàng gửi đi còn nguyên, chị xem lại giúp"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["request"]["status"], "replied");
    // Frozen whatever the date (the delivered window was 3 days).
    let now = cholang::domain::now_ms();
    assert_eq!(sweep(&app, now + 30 * DAY).await, 0, "frozen");
    assert_eq!(
        balance(&app, &hanh, "man-tuyn-ba-hanh").await["pending_vnd"],
        180_000
    );
    let (s, v) = buyer(
        &app,
        "POST",
        &format!("/requests/{ra}/escalate"),
        with_phone(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["request"]["status"], "escalated");
    // The seller never decides their own case; a decision needs a reason.
    assert_eq!(
        decide(ra, hanh.clone(), partial.clone()).await.0,
        StatusCode::FORBIDDEN
    );
    let (s, v) = decide(
        ra,
        moderator.clone(),
        json!({"outcome": "partial", "amount_vnd": 60_000, "reason": "ok"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = decide(ra, moderator.clone(), partial).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["request"]["status"].as_str(),
            v["request"]["refund_vnd"].as_i64()
        ),
        (Some("refunded"), Some(60_000)),
        "{v}"
    );
    assert_eq!(v["release"]["state"], "released");
    let bal = balance(&app, &hanh, "man-tuyn-ba-hanh").await;
    assert_eq!(
        (bal["pending_vnd"].as_i64(), bal["available_vnd"].as_i64()),
        (Some(0), Some(120_000)),
        "{bal}"
    );
    assert_eq!(account(&app, "refunds_due").await, -60_000);
    // Both sides read the decision and its reason.
    let (_, v) = app
        .api("GET", &format!("{path}?phone=0987654321"), None, None)
        .await;
    assert!(
        v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["words"].as_str().unwrap().contains("tự khâu lại")),
        "{v}"
    );
    // The refund goes to the bank account the buyer gives, by the bank app; the bank feed
    // confirms it: refunds due → in transit → out of the collecting account.
    let (s, v) = buyer(&app, "PUT", &format!("/requests/{ra}/refund-account"),
        with_phone(json!({"bank_bin": "970436", "account_no": "0011 0012 34567", "account_name": "Nguyễn Thị Mai"}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let refund = &v["refunds"][0];
    assert_eq!(
        (
            refund["amount_vnd"].as_i64(),
            refund["status"].as_str(),
            refund["method"].as_str()
        ),
        (Some(60_000), Some("pending"), Some("bank_app")),
        "{v}"
    );
    assert!(
        refund["vietqr_payload"].is_string(),
        "a VietQR per transfer: {v}"
    );
    assert_eq!(
        (
            account(&app, "refunds_due").await,
            account(&app, "refunds_in_transit").await
        ),
        (0, -60_000)
    );
    let code = refund["code"].as_str().unwrap().to_string();
    let r = app
        .bank_webhook(&json!({"id": "OUT-R1", "amount": -60_000, "description": format!("CHO LANG {code}"), "account_number": "1017595600"}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(account(&app, "refunds_in_transit").await, 0);
    assert_eq!(
        app.scalar("SELECT refunded_vnd FROM orders WHERE refund_owed_vnd > 0")
            .await,
        60_000
    );
    // B: not received, the seller accepts: the whole order goes back.
    let bo = paid(&app, CHEAP_NET).await;
    moves(&app, &hanh, &bo, &["accepted", "shipped"]).await;
    let (_, v) = open_request(
        &app,
        &bo,
        json!({"reason": "not_received", "text": "Hai tuần rồi chưa thấy hàng"}),
    )
    .await;
    let rb = v["request"]["id"].as_i64().unwrap();
    let (s, v) = app
        .api(
            "POST",
            &format!("/requests/{rb}/answer"),
            Some(&hanh),
            Some(json!({"answer": "accept"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, o) = app
        .api("GET", "/orders?status=refund_due", Some(&hanh), None)
        .await;
    assert!(
        o["orders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["code"] == bo.as_str()),
        "{o}"
    );
    assert_eq!(account(&app, "refunds_due").await, -95_000);
    // C: the seller does not answer in time: escalated by the sweep; the admin releases.
    let duc_order = paid(&app, STOOL).await;
    moves(
        &app,
        &duc,
        &duc_order,
        &["accepted", "shipped", "delivered"],
    )
    .await;
    let (_, v) = open_request(
        &app,
        &duc_order,
        json!({"reason": "wrong_item", "text": "Ghế khác màu trong ảnh"}),
    )
    .await;
    let rc = v["request"]["id"].as_i64().unwrap();
    let (s, _) = buyer(
        &app,
        "POST",
        &format!("/requests/{rc}/escalate"),
        with_phone(json!({})),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "the seller still has time to answer"
    );
    sweep(&app, cholang::domain::now_ms() + 3 * DAY + 60_000).await;
    let (s, v) = decide(
        rc,
        admin.clone(),
        json!({"outcome": "release", "reason": "Màu gỗ xoan tự nhiên khác nhau, đúng mô tả"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        balance(&app, &duc, "do-go-minh-duc").await["available_vnd"],
        120_000
    );
    // D: the goods go back first; the refund follows RETURN_DAYS after they were sent.
    let toan = app.api_login(TOAN, PW).await;
    let d = paid(&app, HOOK).await;
    moves(&app, &toan, &d, &["accepted", "shipped"]).await;
    let (_, v) = open_request(
        &app,
        &d,
        json!({"reason": "missing_items", "text": "Thiếu 2 móc trong túi"}),
    )
    .await;
    let rd = v["request"]["id"].as_i64().unwrap();
    app.api(
        "POST",
        &format!("/requests/{rd}/answer"),
        Some(&toan),
        Some(json!({"answer": "reply", "text": "Tôi đếm đủ rồi mới gửi"})),
    )
    .await;
    buyer(
        &app,
        "POST",
        &format!("/requests/{rd}/escalate"),
        with_phone(json!({})),
    )
    .await;
    let (s, v) = decide(rd, admin.clone(), json!({"outcome": "refund", "return_first": true, "reason": "Người mua gửi trả túi móc để người bán kiểm tra lại"})).await;
    assert_eq!(
        (s, v["request"]["status"].as_str()),
        (StatusCode::OK, Some("awaiting_return")),
        "{v}"
    );
    let (s, v) = buyer(
        &app,
        "POST",
        &format!("/requests/{rd}/escalate"),
        with_phone(json!({"action": "return_sent", "tracking": "GHN123456"})),
    )
    .await;
    assert_eq!(
        (s, v["request"]["status"].as_str()),
        (StatusCode::OK, Some("return_sent")),
        "{v}"
    );
    assert_eq!(sweep(&app, cholang::domain::now_ms() + DAY).await, 0);
    let due_before = account(&app, "refunds_due").await;
    sweep(&app, cholang::domain::now_ms() + 8 * DAY).await;
    assert_eq!(account(&app, "refunds_due").await - due_before, -30_000);
    let (_, v) = app
        .api("GET", &format!("/orders/{d}/requests"), Some(&toan), None)
        .await;
    assert_eq!(v["requests"][0]["status"], "refunded", "{v}");
    // The moderator's page lists nothing left; the admin's refund list holds B's and D's
    // owed money only once the buyers give accounts.
    assert_eq!(app.scalar("SELECT COUNT(*) FROM refund_payouts").await, 1);
}

async fn a_refund_goes_to_the_buyers_bank_through_payos_with_one_key(b: Backend) {
    let payos = FakePayos::start(Mode::DuplicateOnRetry).await;
    let app = app_with_payos(b, &payos, &[]).await;
    let hanh = app.api_login(HANH, PW).await;
    let order = paid(&app, NET).await;
    moves(&app, &hanh, &order, &["accepted", "shipped"]).await;
    // The request by multipart with photos: a fifth photo is refused, a picture that is not
    // one is refused, and nothing is stored; two photos go through the photo pipeline.
    let form = |photos: usize, bytes: Vec<u8>| {
        let mut f = reqwest::multipart::Form::new()
            .text("phone", BUYER_PHONE)
            .text("reason", "not_received")
            .text("text", "Chưa nhận được hàng sau 10 ngày");
        for i in 0..photos {
            f = f.part(
                "photo",
                reqwest::multipart::Part::bytes(bytes.clone()).file_name(format!("{i}.png")),
            );
        }
        f
    };
    let url = app.url(&format!("/api/v1/orders/{order}/requests"));
    let post = |f: reqwest::multipart::Form| {
        let (client, url) = (app.client.clone(), url.clone());
        async move {
            let r = client.post(url).multipart(f).send().await.unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let (s, v) = post(form(5, png_bytes())).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = post(form(1, b"not a picture".to_vec())).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM order_requests").await, 0);
    let (s, v) = post(form(2, png_bytes())).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        v["request"]["buyer_photos"].as_array().unwrap().len(),
        2,
        "{v}"
    );
    let thumb = v["request"]["buyer_photos"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.get(&thumb).await.status(), StatusCode::OK);
    let id = v["request"]["id"].as_i64().unwrap();
    // The account first, then the seller accepts: the payout is created at once.
    let (s, v) = buyer(&app, "PUT", &format!("/requests/{id}/refund-account"),
        with_phone(json!({"bank_bin": "970436", "account_no": "0011001234567", "account_name": "NGUYEN THI MAI"}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        v["refunds"].as_array().unwrap().is_empty(),
        "nothing owed yet: {v}"
    );
    let (s, _) = app
        .api(
            "POST",
            &format!("/requests/{id}/answer"),
            Some(&hanh),
            Some(json!({"answer": "accept"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(account(&app, "refunds_in_transit").await, -180_000);
    let follow = || async {
        sqlx::query("UPDATE refund_payouts SET next_check_at = 0 WHERE next_check_at IS NOT NULL")
            .execute(&app.db.pool)
            .await
            .unwrap();
        cholang::payouts::payos::run_once(
            &app.db,
            &app.config,
            cholang::refund_payouts::PAYOS_BOOKS,
        )
        .await
        .unwrap();
    };
    let status = || async {
        sqlx::query_scalar::<_, String>("SELECT status FROM refund_payouts")
            .fetch_one(&app.db.pool)
            .await
            .unwrap()
    };
    // The first answer is lost (502): asked again later with the same key.
    follow().await;
    assert_eq!(status().await, "pending");
    // The retry is refused as a duplicate: looked up by reference, found, followed.
    follow().await;
    assert_eq!(status().await, "sent");
    assert_eq!(
        (payos.posts(), payos.created()),
        (2, 1),
        "one payout at payOS"
    );
    follow().await;
    assert_eq!(status().await, "paid");
    assert_eq!(account(&app, "refunds_in_transit").await, 0);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM ledger_journals WHERE kind = 'refund_failed'")
            .await,
        0
    );
    let (_, o) = app
        .api("GET", "/orders?status=refunded", Some(&hanh), None)
        .await;
    assert!(
        o["orders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["code"] == order.as_str()),
        "{o}"
    );
    // The buyer was told by email at each step (sent, paid).
    assert_eq!(
        app.scalar(
            "SELECT COUNT(*) FROM notice_events WHERE kind IN ('refund_sent', 'refund_paid')"
        )
        .await,
        2
    );
}

async fn the_seller_and_the_moderator_work_from_their_pages(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let hanh = app.api_login(HANH, PW).await;
    let order = paid(&app, NET).await;
    moves(&app, &hanh, &order, &["accepted", "shipped", "delivered"]).await;
    let (_, v) = open_request(
        &app,
        &order,
        json!({"reason": "not_as_described", "text": "Màu màn khác với ảnh trên trang", "amount_vnd": 50_000}),
    )
    .await;
    let id = v["request"]["id"].as_i64().unwrap();
    // The seller reads the request on the order list and replies with a photo.
    app.login_page(HANH, PW).await;
    let page = app.page("/quan-ly/don-hang?tab=tat-ca").await;
    assert!(page.contains("Màu màn khác với ảnh trên trang"), "{page}");
    assert!(
        page.contains("Đồng ý hoàn 50.000 ₫") && page.contains("Đồng ý hoàn toàn bộ 180.000 ₫")
    );
    assert!(page.contains("Người mua có yêu cầu trả hàng / hoàn tiền — tạm giữ tiền"));
    let r = submit_multipart(
        &app,
        "/quan-ly/don-hang",
        &format!("/quan-ly/yeu-cau/{id}/tra-loi"),
        &[("answer", "reply"), ("text", "")],
        None,
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "an empty reply"
    );
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Viết trả lời cho người mua")
    );
    let r = submit_multipart(
        &app,
        "/quan-ly/don-hang",
        &format!("/quan-ly/yeu-cau/{id}/tra-loi"),
        &[
            ("answer", "reply"),
            ("text", "Màu thật dưới nắng, tôi gửi ảnh chụp lại"),
        ],
        Some((png_bytes(), "that.png")),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, v) = app
        .api(
            "GET",
            &format!("/orders/{order}/requests"),
            Some(&hanh),
            None,
        )
        .await;
    assert_eq!(v["requests"][0]["status"], "replied", "{v}");
    assert_eq!(
        v["requests"][0]["seller_photos"].as_array().unwrap().len(),
        1
    );
    // The buyer escalates; the village moderator decides on the decisions page.
    let (s, _) = buyer(
        &app,
        "POST",
        &format!("/requests/{id}/escalate"),
        with_phone(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    app.login_page(MODERATOR, PW).await;
    assert!(
        app.page("/quan-ly")
            .await
            .contains("Yêu cầu trả hàng / hoàn tiền (1 chờ quyết định)")
    );
    let page = app.page("/quan-tri/yeu-cau").await;
    assert!(
        page.contains(&order) && page.contains("Màu thật dưới nắng"),
        "{page}"
    );
    let r = app
        .submit(
            "/quan-tri/yeu-cau",
            &format!("/quan-tri/yeu-cau/{id}/quyet-dinh"),
            &[
                ("outcome", "partial"),
                ("amount_vnd", "50.000"),
                ("reason", "ngắn"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("ít nhất 15 chữ") && html.contains(">ngắn</textarea>"),
        "typed kept"
    );
    let r = app
        .submit(
            "/quan-tri/yeu-cau",
            &format!("/quan-tri/yeu-cau/{id}/quyet-dinh"),
            &[
                ("outcome", "partial"),
                ("amount_vnd", "50.000"),
                ("reason", "Màu lệch so với ảnh, người bán bù 50.000 ₫"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let bal = balance(&app, &hanh, "man-tuyn-ba-hanh").await;
    assert_eq!(bal["available_vnd"], 130_000, "{bal}");
    // Another seller's page has no decisions to make.
    app.login_page(DUC, PW).await;
    assert_eq!(
        app.get("/quan-tri/yeu-cau").await.status(),
        StatusCode::FORBIDDEN
    );
}
