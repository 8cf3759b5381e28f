//! Order notices through the outbox: a real SMTP conversation, Telegram and Zalo stand-ins
//! that check every request, outages, retry-after, token refresh, and racing workers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    seller_and_buyer_get_email_over_real_smtp,
    telegram_and_zalo_get_well_formed_requests,
    zalo_errors_refresh_and_fallback,
    telegram_429_waits_as_told,
    outage_then_each_notice_delivered_once_after_restart,
    two_workers_deliver_each_notice_once,
    sellers_choose_channels_and_admins_retry_failures,
    price_board_notices_reach_village_sellers,
    a_crashed_workers_notice_is_taken_over,
    one_receipt_lists_every_shops_order,
);

/// The demo market, its own past events (the open proposal) treated as already announced,
/// so each test sees only the notices of what it does.
async fn demo(app: &TestApp) {
    app.quiet_demo().await;
}

/// Buy from Bà Hạnh (with a buyer email) and pay in full.
async fn paid_order(app: &TestApp) -> String {
    let (s, c) = app
        .api("POST", "/checkout", None, Some(json!({"items": [{"product_slug": "man-tuyn-2-cua-1m8-x-2m", "quantity": 2}],
            "buyer": {"name": "Chị Mai", "phone": "0987 654 321", "address": "12 Hàng Bông, Hoàn Kiếm, Hà Nội",
                      "email": "mai@example.vn", "note": "Gọi trước <18h> & nhắn Zalo"}})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let code = c["payment"]["code"].as_str().unwrap().to_string();
    app.transfer(360_000, &code).await;
    format!("{code}-1")
}

async fn set_telegram(app: &TestApp, chat: &str) {
    sqlx::query("UPDATE shops SET telegram_chat_id = $1 WHERE slug = 'man-tuyn-ba-hanh'")
        .bind(chat.to_string())
        .execute(&app.db.pool)
        .await
        .unwrap();
}

async fn seller_and_buyer_get_email_over_real_smtp(b: Backend) {
    let smtp = FakeSmtp::start_on(free_port()).await;
    let url = format!("smtp://127.0.0.1:{}", smtp.port);
    let app = TestApp::spawn_with(
        b,
        &[
            ("SMTP_URL", &url),
            ("MAIL_FROM", "Chợ Làng <don-hang@cholang.vn>"),
        ],
    )
    .await;
    demo(&app).await;
    let order = paid_order(&app).await;
    let worker = app.notifier();
    assert_eq!(worker.run_once().await.unwrap(), 2, "seller + buyer");
    assert_eq!(worker.run_once().await.unwrap(), 0, "nothing twice");
    let mail = smtp.received();
    assert_eq!(mail.len(), 2);
    let seller = mail
        .iter()
        .find(|m| m.0 == vec!["hanh.phudoi@example.vn".to_string()])
        .expect("seller mail");
    assert_eq!(seller.1, format!("Đơn hàng mới đã thanh toán — {order}"));
    for text in [
        "Chào Nguyễn Thị Hạnh,",
        "Người mua: Chị Mai · 0987654321",
        "Giao đến: 12 Hàng Bông, Hoàn Kiếm, Hà Nội",
        "Ghi chú: Gọi trước <18h> & nhắn Zalo",
        "Màn tuyn 2 cửa 1m8 x 2m × 2 chiếc — 180.000 ₫ — 360.000 ₫",
        "Tổng: 360.000 ₫",
        "/quan-ly/don-hang#don-",
    ] {
        assert!(
            seller.2.contains(text),
            "text part has {text}:\n{}",
            seller.2
        );
    }
    assert!(
        seller.3.contains("<table") && seller.3.contains("360.000 ₫"),
        "html part"
    );
    assert!(!seller.3.contains("<18h>"), "html is escaped");
    assert!(
        seller.3.contains("&#60;18h&#62;") || seller.3.contains("&lt;18h&gt;"),
        "html is escaped"
    );
    let buyer = mail
        .iter()
        .find(|m| m.0 == vec!["mai@example.vn".to_string()])
        .expect("buyer receipt");
    let pay = order.trim_end_matches("-1");
    assert_eq!(buyer.1, format!("Biên nhận đơn hàng {pay} — Chợ Làng"));
    assert!(buyer.2.contains(&format!("/don-hang/{pay}?t=")));
    assert!(app.notices().await.iter().all(|n| n.2 == "delivered"));
}

async fn telegram_and_zalo_get_well_formed_requests(b: Backend) {
    let tg = FakeProvider::start(|_| {
        (
            200,
            json!({"ok": true, "result": {"message_id": 42}}).to_string(),
        )
    })
    .await;
    let zalo = FakeProvider::start(|_| {
        (
            200,
            json!({"error": 0, "message": "Success", "data": {"msg_id": "zmsg-1"}}).to_string(),
        )
    })
    .await;
    let app = TestApp::spawn_with(
        b,
        &[
            ("TELEGRAM_BOT_TOKEN", "123:ABC"),
            ("TELEGRAM_API_URL", &tg.url),
            ("ZALO_ACCESS_TOKEN", "tok-1"),
            ("ZALO_TEMPLATE_ORDER_PAID", "2468"),
            ("ZALO_ZNS_URL", &zalo.url),
        ],
    )
    .await;
    demo(&app).await;
    set_telegram(&app, "-1001234567890").await;
    let order = paid_order(&app).await;
    app.notifier().run_once().await.unwrap();

    let t = tg.requests();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].path, "/bot123:ABC/sendMessage");
    let body: Value = serde_json::from_str(&t[0].body).unwrap();
    assert_eq!(
        body["chat_id"], -1001234567890_i64,
        "group ids are 64-bit numbers"
    );
    assert_eq!(body["parse_mode"], "HTML");
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with(&format!("<b>Đơn hàng mới đã thanh toán — {order}</b>")),
        "{text}"
    );
    assert!(
        text.contains("Gọi trước &lt;18h&gt; &amp; nhắn Zalo"),
        "escaped: {text}"
    );

    let z = zalo.requests();
    assert_eq!(z.len(), 1);
    assert_eq!(z[0].path, "/message/template");
    assert_eq!(z[0].headers["access_token"], "tok-1");
    let body: Value = serde_json::from_str(&z[0].body).unwrap();
    assert_eq!(body["phone"], "84912000101", "the shop's phone in 84… form");
    assert_eq!(body["template_id"], "2468");
    assert_eq!(body["template_data"]["order_code"], order.as_str());
    assert_eq!(body["template_data"]["customer_name"], "Chị Mai");
    assert_eq!(body["template_data"]["amount"], "360.000 ₫");
    assert!(body["tracking_id"].as_str().unwrap().ends_with(":zalo"));
    let refs: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT channel, provider_ref FROM notices WHERE channel <> 'email' ORDER BY channel",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        refs,
        vec![
            ("telegram".into(), Some("42".into())),
            ("zalo".into(), Some("zmsg-1".into()))
        ]
    );
}

async fn zalo_errors_refresh_and_fallback(b: Backend) {
    // ZNS: "old" token is expired (-124); with "new": first message -100, then success,
    // except the number 84912000102 which Zalo says is invalid (-108).
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let zalo = FakeProvider::start(move |seen| {
        let token = seen.headers["access_token"].to_str().unwrap().to_string();
        let body: Value = serde_json::from_str(&seen.body).unwrap();
        let reply = if token == "old" {
            json!({"error": -124, "message": "Access token is invalid", "data": null})
        } else if body["phone"] == "84912000102" {
            json!({"error": -108, "message": "Phone number is invalid", "data": null})
        } else if c2.fetch_add(1, Ordering::SeqCst) == 0 {
            json!({"error": -100, "message": "Unknown error", "data": null})
        } else {
            json!({"error": 0, "message": "Success", "data": {"msg_id": "ok"}})
        };
        (200, reply.to_string())
    })
    .await;
    let oauth = FakeProvider::start(|seen| {
        assert_eq!(seen.path, "/v4/oa/access_token");
        assert_eq!(seen.headers["secret_key"], "zalo-secret");
        assert!(
            seen.body.contains("grant_type=refresh_token")
                && seen.body.contains("refresh_token=r1")
                && seen.body.contains("app_id=app-9"),
            "{}",
            seen.body
        );
        (
            200,
            json!({"access_token": "new", "refresh_token": "r2", "expires_in": "90000"})
                .to_string(),
        )
    })
    .await;
    let app = TestApp::spawn_with(
        b,
        &[
            ("ZALO_ACCESS_TOKEN", "old"),
            ("ZALO_REFRESH_TOKEN", "r1"),
            ("ZALO_APP_ID", "app-9"),
            ("ZALO_SECRET_KEY", "zalo-secret"),
            ("ZALO_TEMPLATE_ORDER_PAID", "2468"),
            ("ZALO_ZNS_URL", &zalo.url),
            ("ZALO_OAUTH_URL", &oauth.url),
        ],
    )
    .await;
    demo(&app).await;
    // Thanh Hương's shop has no email notices chosen, but an email set: Zalo's failure falls back to it.
    sqlx::query("UPDATE shops SET email = 'huong@example.vn', notify_email = 0 WHERE slug = 'man-phu-doi-thanh-huong'")
        .execute(&app.db.pool).await.unwrap();
    paid_order(&app).await;
    let (_, c) = app
        .checkout(&[("man-tuyn-2-cua-1m8-x-2m-man-phu-doi-thanh-huong", 1)])
        .await;
    app.transfer(180_000, c["payment"]["code"].as_str().unwrap())
        .await;

    let worker = app.notifier();
    worker.run_once().await.unwrap();
    assert_eq!(oauth.requests().len(), 1, "one refresh");
    let tokens: (String, String) =
        sqlx::query_as("SELECT access_token, refresh_token FROM zalo_tokens WHERE id = 1")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        tokens,
        ("new".into(), "r2".into()),
        "new pair stored before use"
    );
    let z: Vec<(String, String, i64, Option<String>)> = sqlx::query_as("SELECT recipient, status, attempts, last_error FROM notices WHERE channel = 'zalo' ORDER BY id")
        .fetch_all(&app.db.pool).await.unwrap();
    assert_eq!(z[0].0, "84912000101");
    assert_eq!(z[0].1, "pending", "-100 is retried");
    assert!(z[0].3.as_deref().unwrap().contains("-100"));
    assert_eq!(
        (z[1].0.as_str(), z[1].1.as_str()),
        ("84912000102", "failed"),
        "-108 is not retried"
    );
    assert!(z[1].3.as_deref().unwrap().contains("-108"));
    // The fallback email was queued for Thanh Hương and is delivered (mail files by default).
    let fallback: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM notices WHERE channel = 'email' AND recipient = 'huong@example.vn'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(fallback, 1);
    sqlx::query("UPDATE notices SET run_after = 0 WHERE status = 'pending'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    worker.run_once().await.unwrap();
    let statuses: Vec<(String, String, String)> =
        sqlx::query_as("SELECT channel, recipient, status FROM notices ORDER BY id")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert!(
        statuses
            .iter()
            .any(|s| s.0 == "zalo" && s.1 == "84912000101" && s.2 == "delivered"),
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .any(|s| s.1 == "huong@example.vn" && s.2 == "delivered"),
        "{statuses:?}"
    );
    let files = std::fs::read_dir(app.config.mail_dir()).unwrap().count();
    assert!(
        files >= 2,
        "emails written as .eml files when no SMTP is configured"
    );
    assert_eq!(oauth.requests().len(), 1, "the new token kept working");
}

async fn telegram_429_waits_as_told(b: Backend) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let tg = FakeProvider::start(move |_| {
        if c2.fetch_add(1, Ordering::SeqCst) == 0 {
            (429, json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 7", "parameters": {"retry_after": 7}}).to_string())
        } else {
            (200, json!({"ok": true, "result": {"message_id": 7}}).to_string())
        }
    })
    .await;
    let app = TestApp::spawn_with(
        b,
        &[("TELEGRAM_BOT_TOKEN", "1:X"), ("TELEGRAM_API_URL", &tg.url)],
    )
    .await;
    demo(&app).await;
    set_telegram(&app, "5550001").await;
    paid_order(&app).await;
    app.notifier().run_once().await.unwrap();
    let (status, run_after): (String, i64) =
        sqlx::query_as("SELECT status, run_after FROM notices WHERE channel = 'telegram'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let wait = run_after - cholang::domain::now_ms();
    assert_eq!(status, "pending");
    assert!(
        (6_000..=7_100).contains(&wait),
        "retry_after honoured: {wait} ms"
    );
    assert_eq!(
        app.notifier().run_once().await.unwrap(),
        0,
        "not before its time"
    );
    sqlx::query("UPDATE notices SET run_after = 0 WHERE channel = 'telegram'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    app.notifier().run_once().await.unwrap();
    assert_eq!(tg.requests().len(), 2);
    let status: String =
        sqlx::query_scalar("SELECT status FROM notices WHERE channel = 'telegram'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(status, "delivered");
}

async fn outage_then_each_notice_delivered_once_after_restart(b: Backend) {
    let (smtp_port, tg_port) = (free_port(), free_port());
    let app = TestApp::spawn_with(
        b,
        &[
            ("SMTP_URL", &format!("smtp://127.0.0.1:{smtp_port}")),
            ("TELEGRAM_BOT_TOKEN", "1:X"),
            ("TELEGRAM_API_URL", &format!("http://127.0.0.1:{tg_port}")),
            ("NOTIFY_BACKOFF_SECS", "1"),
        ],
    )
    .await;
    demo(&app).await;
    set_telegram(&app, "5550001").await;
    paid_order(&app).await;
    {
        // Everything is down.
        let worker = app.notifier();
        assert_eq!(worker.run_once().await.unwrap(), 0);
        let n = app.notices().await;
        assert_eq!(n.len(), 3, "seller email, buyer email, seller telegram");
        assert!(
            n.iter()
                .all(|(_, _, status, attempts)| status == "pending" && *attempts == 1),
            "{n:?}"
        );
    } // the worker (and the app process it stands for) goes away
    let smtp = FakeSmtp::start_on(smtp_port).await;
    let tg = FakeProvider::start_on(tg_port, |_| {
        (
            200,
            json!({"ok": true, "result": {"message_id": 1}}).to_string(),
        )
    })
    .await;
    // The 1 s backoff is over: the notices' due times moved back as if 1.4 s had passed.
    sqlx::query("UPDATE notices SET run_after = run_after - 1400")
        .execute(&app.db.pool)
        .await
        .unwrap();
    // A new process starts and resumes the outbox.
    let fresh_db = cholang::db::Db::connect(&app.config.database_url)
        .await
        .unwrap();
    let worker =
        cholang::notify::worker::Notifier::new(fresh_db, Arc::new(app.config.clone())).unwrap();
    assert_eq!(worker.run_once().await.unwrap(), 3);
    assert_eq!(worker.run_once().await.unwrap(), 0);
    assert_eq!(smtp.received().len(), 2, "each email once");
    assert_eq!(tg.requests().len(), 1, "the chat message once");
    assert!(
        app.notices()
            .await
            .iter()
            .all(|n| n.2 == "delivered" && n.3 == 2)
    );
}

async fn two_workers_deliver_each_notice_once(b: Backend) {
    let tg = FakeProvider::start(|_| {
        (
            200,
            json!({"ok": true, "result": {"message_id": 1}}).to_string(),
        )
    })
    .await;
    let app = TestApp::spawn_with(
        b,
        &[("TELEGRAM_BOT_TOKEN", "1:X"), ("TELEGRAM_API_URL", &tg.url)],
    )
    .await;
    demo(&app).await;
    set_telegram(&app, "5550001").await;
    let shop: i64 = sqlx::query_scalar("SELECT id FROM shops WHERE slug = 'man-tuyn-ba-hanh'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    for _ in 0..30 {
        cholang::notify::store::event_now(&app.db, cholang::notify::NoticeKind::Test, shop)
            .await
            .unwrap();
    }
    let (a, b2) = (app.notifier(), app.notifier());
    let (ra, rb) = tokio::join!(a.run_once(), b2.run_once());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(
        ra + rb,
        60,
        "30 telegram + 30 email (files), each by one worker"
    );
    assert_eq!(tg.requests().len(), 30);
    assert!(
        app.notices()
            .await
            .iter()
            .all(|n| n.2 == "delivered" && n.3 == 1),
        "each claimed once"
    );
}

async fn sellers_choose_channels_and_admins_retry_failures(b: Backend) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let tg = FakeProvider::start(move |_| {
        if c2.fetch_add(1, Ordering::SeqCst) == 0 {
            (400, json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}).to_string())
        } else {
            (200, json!({"ok": true, "result": {"message_id": 9}}).to_string())
        }
    })
    .await;
    let app = TestApp::spawn_with(
        b,
        &[("TELEGRAM_BOT_TOKEN", "1:X"), ("TELEGRAM_API_URL", &tg.url)],
    )
    .await;
    demo(&app).await;
    app.login_page(HANH, PW).await;
    let form = app.page("/quan-ly/cua-hang/man-tuyn-ba-hanh").await;
    assert!(form.contains("name=\"notify_email\" value=\"1\" checked"));
    // Email off, Telegram on with a chat id.
    let r = app
        .submit(
            "/quan-ly/cua-hang/man-tuyn-ba-hanh",
            "/quan-ly/cua-hang/man-tuyn-ba-hanh",
            &[
                ("name", "Màn tuyn Bà Hạnh"),
                ("phone", "0912000101"),
                ("email", "hanh.phudoi@example.vn"),
                ("telegram_chat_id", "5550001"),
                ("notify_telegram", "1"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = app
        .submit(
            "/quan-ly",
            "/quan-ly/cua-hang/man-tuyn-ba-hanh/thu-thong-bao",
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    app.notifier().run_once().await.unwrap();
    let n = app.notices().await;
    assert_eq!(n.len(), 1, "only Telegram, as chosen: {n:?}");
    assert_eq!(n[0].2, "failed", "chat not found is not retried");
    let dash = app.page("/quan-ly").await;
    assert!(
        dash.contains("Thông báo gần đây")
            && dash.contains("gửi không được")
            && dash.contains("chat not found")
    );

    // An admin sees it and retries now.
    app.login_page(cholang::demo::catalog::ADMIN_EMAIL, PW)
        .await;
    let page = app.page("/quan-tri/thong-bao").await;
    assert!(page.contains("chat not found"));
    let id: i64 = sqlx::query_scalar("SELECT id FROM notices")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let r = app
        .submit(
            "/quan-tri/thong-bao",
            &format!("/quan-tri/thong-bao/{id}/gui-lai"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    app.notifier().run_once().await.unwrap();
    assert_eq!(app.notices().await[0].2, "delivered");
    let body: Value = serde_json::from_str(&tg.requests()[1].body).unwrap();
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("Thông báo thử từ Chợ Làng")
    );
    // A seller may not use the admin page.
    app.login_page(HANH, PW).await;
    assert_eq!(
        app.get("/quan-tri/thong-bao").await.status(),
        StatusCode::FORBIDDEN
    );
}

async fn price_board_notices_reach_village_sellers(b: Backend) {
    let app = TestApp::with_demo(b).await;
    app.notifier().run_once().await.unwrap(); // the demo's own proposal
    let before = app.scalar("SELECT COUNT(*) FROM notices").await;
    let item: i64 =
        sqlx::query_scalar("SELECT id FROM price_items WHERE name = 'Kéo cắt cành 20cm'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let toan = app.api_login(TOAN, PW).await;
    let (s, p) = app
        .api(
            "POST",
            &format!("/price-items/{item}/proposals"),
            Some(&toan),
            Some(json!({"price_vnd": 115000, "reason": "Thép cuộn tăng giá từ tháng 11"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let admin = app.api_login(cholang::demo::catalog::ADMIN_EMAIL, PW).await;
    app.api(
        "POST",
        &format!("/proposals/{}/approve", p["proposal"]["id"]),
        Some(&admin),
        Some(json!({"confirm": true})),
    )
    .await;
    app.notifier().run_once().await.unwrap();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT kind, recipient FROM notices WHERE kind LIKE 'proposal_%' ORDER BY id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    // Phú Đôi shops with an email: Bà Hạnh and Minh Đức; opened + approved each.
    for kind in ["proposal_opened", "proposal_approved"] {
        for who in ["hanh.phudoi@example.vn", "minhduc.go@example.vn"] {
            assert!(
                rows.contains(&(kind.to_string(), who.to_string())),
                "{kind} → {who}: {rows:?}"
            );
        }
    }
    assert!(app.scalar("SELECT COUNT(*) FROM notices").await > before);
    let mail: Vec<String> = std::fs::read_dir(app.config.mail_dir())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    let subjects: Vec<String> = mail
        .iter()
        .filter_map(|m| {
            mail_parser::MessageParser::default()
                .parse(m.as_bytes())
                .and_then(|p| p.subject().map(str::to_string))
        })
        .collect();
    assert!(
        subjects
            .iter()
            .any(|s| s == "Giá mới đã được thông qua: Kéo cắt cành 20cm"),
        "{subjects:?}"
    );
}

async fn a_crashed_workers_notice_is_taken_over(b: Backend) {
    let tg = FakeProvider::start(|_| {
        (
            200,
            json!({"ok": true, "result": {"message_id": 3}}).to_string(),
        )
    })
    .await;
    let app = TestApp::spawn_with(
        b,
        &[("TELEGRAM_BOT_TOKEN", "1:X"), ("TELEGRAM_API_URL", &tg.url)],
    )
    .await;
    demo(&app).await;
    set_telegram(&app, "5550001").await;
    sqlx::query("UPDATE shops SET notify_email = 0 WHERE slug = 'man-tuyn-ba-hanh'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    paid_order(&app).await;
    let worker = app.notifier();
    worker.expand().await.unwrap();
    // A worker claims the notice and dies before sending or recording anything.
    let claimed = cholang::notify::store::claim(&app.db, 10, 60_000)
        .await
        .unwrap();
    let telegram: Vec<_> = claimed.iter().filter(|c| c.channel == "telegram").collect();
    assert_eq!(telegram.len(), 1);
    assert_eq!(
        worker.run_once().await.unwrap(),
        0,
        "leased to the dead worker for now"
    );
    // Its lease runs out: the next worker takes it over.
    sqlx::query("UPDATE notices SET lease_until = 1")
        .execute(&app.db.pool)
        .await
        .unwrap();
    worker.run_once().await.unwrap();
    assert_eq!(tg.requests().len(), 1);
    let (status, attempts): (String, i64) =
        sqlx::query_as("SELECT status, attempts FROM notices WHERE channel = 'telegram'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts), ("delivered", 2));
}

/// Issue 31, items 6 and 7: a purchase from two shops gets one receipt, under the purchase
/// code, with each shop's order `CODE-1`, `CODE-2`, its phone, each line "name × quantity
/// unit — unit price — amount", the delivery address; its link opens the purchase's page.
async fn one_receipt_lists_every_shops_order(b: Backend) {
    let smtp = FakeSmtp::start_on(free_port()).await;
    let url = format!("smtp://127.0.0.1:{}", smtp.port);
    let app = TestApp::spawn_with(
        b,
        &[
            ("SMTP_URL", &url),
            ("SMTP_FROM", "Chợ Làng <no-reply@cholang.local>"),
        ],
    )
    .await;
    demo(&app).await;
    let (s, c) = app
        .api("POST", "/checkout", None, Some(json!({"items": [
                {"product_slug": "man-tuyn-2-cua-1m8-x-2m", "quantity": 2},
                {"product_slug": "ghe-dau-go-xoan", "quantity": 1}],
            "buyer": {"name": "Chị Mai", "phone": "0987 654 321", "address": "12 Hàng Bông, Hoàn Kiếm, Hà Nội",
                      "email": "mai@example.vn"}})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let pay = c["payment"]["code"].as_str().unwrap().to_string();
    let total = c["total_vnd"].as_i64().unwrap();
    app.transfer(total, &pay).await;
    let worker = app.notifier();
    while worker.run_once().await.unwrap() > 0 {}
    let mail = smtp.received();
    let to_buyer: Vec<_> = mail
        .iter()
        .filter(|m| m.0 == vec!["mai@example.vn".to_string()])
        .collect();
    assert_eq!(to_buyer.len(), 1, "one receipt per payment: {mail:?}");
    let (_, subject, text, _) = to_buyer[0].clone();
    assert_eq!(subject, format!("Biên nhận đơn hàng {pay} — Chợ Làng"));
    let duc_line = c["orders"][1]["lines"][0].clone();
    for want in [
        format!("Đơn {pay}-1 — Màn tuyn Bà Hạnh — điện thoại 0912 000 101"),
        format!("Đơn {pay}-2 — Đồ gỗ Minh Đức — điện thoại 0912 000 103"),
        "Màn tuyn 2 cửa 1m8 x 2m × 2 chiếc — 180.000 ₫ — 360.000 ₫".to_string(),
        format!(
            "{} × 1 {} — {}",
            duc_line["name"].as_str().unwrap(),
            duc_line["unit"].as_str().unwrap(),
            cholang::domain::money::format_vnd(duc_line["unit_price_vnd"].as_i64().unwrap())
        ),
        "Giao đến: 12 Hàng Bông, Hoàn Kiếm, Hà Nội".to_string(),
        format!("Tổng: {}", cholang::domain::money::format_vnd(total)),
    ] {
        assert!(text.contains(&want), "{want} in:\n{text}");
    }
    let checkout_code = c["checkout_code"].as_str().unwrap();
    assert!(
        !text.contains(checkout_code),
        "the internal code is never shown"
    );
    // The link opens the purchase's page in a fresh browser, with both shops' orders.
    let link = text
        .split_whitespace()
        .find(|w| w.contains(&format!("/don-hang/{pay}?t=")))
        .unwrap();
    let path = &link[link.find("/don-hang/").unwrap()..];
    let browser = app.new_browser();
    let r = browser.get(app.url(path)).send().await.unwrap();
    assert_eq!(location(&r), format!("/don-hang/{pay}"));
    let page = browser
        .get(app.url(&format!("/don-hang/{pay}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("{pay}-1")) && page.contains(&format!("{pay}-2")),
        "{page}"
    );
    // The first shop cancels its part before payment: the receipt comes from the paid one
    // and lists only it.
    let (_, c2) = app
        .api(
            "POST",
            "/checkout",
            None,
            Some(json!({"items": [
                {"product_slug": "man-tuyn-2-cua-1m8-x-2m", "quantity": 1},
                {"product_slug": "ghe-dau-go-xoan", "quantity": 1}],
            "buyer": {"name": "Chị Mai", "phone": "0987 654 321", "address": "12 Hàng Bông",
                      "email": "mai2@example.vn"}})),
        )
        .await;
    let pay2 = c2["payment"]["code"].as_str().unwrap().to_string();
    let hanh = app.api_login(HANH, PW).await;
    let (s, v) = app
        .api(
            "POST",
            &format!("/orders/{pay2}-1/transitions"),
            Some(&hanh),
            Some(json!({"to": "cancelled"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let left = app.payment(&pay2).await["amount_vnd"].as_i64().unwrap();
    app.transfer(left, &pay2).await;
    while worker.run_once().await.unwrap() > 0 {}
    let second: Vec<_> = smtp
        .received()
        .into_iter()
        .filter(|m| m.0 == vec!["mai2@example.vn".to_string()] && m.1.starts_with("Biên nhận"))
        .collect();
    assert_eq!(second.len(), 1, "{second:?}");
    assert!(
        second[0].2.contains(&format!("Đơn {pay2}-2"))
            && !second[0].2.contains(&format!("Đơn {pay2}-1"))
    );
    // A wrong token proves nothing.
    let r = app
        .new_browser()
        .get(app.url(&format!(
            "/don-hang/{pay}?t=00000000000000000000000000000000"
        )))
        .send()
        .await
        .unwrap();
    assert!(!r.text().await.unwrap().contains("Đồ gỗ Minh Đức"));
}
