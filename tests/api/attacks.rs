//! The attacks of issue 14, each replayed against the real server: capturing a village's
//! price with many shops, keeping the money of a cancelled order, making one request eat
//! memory, racing the attempt limits, and the smaller holes.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    five_shops_of_one_person_cannot_set_the_village_price,
    the_moderator_rejects_with_a_public_reason,
    a_cancelled_unpaid_order_releases_stock_once_and_its_money_is_owed_back,
    cancelling_one_shop_of_a_checkout_lowers_what_is_due,
    oversized_photos_are_refused_before_decoding,
    concurrent_wrong_passwords_stop_at_the_limit_without_hashing,
    lockout_is_per_account_and_address_behind_a_trusted_proxy,
    concurrent_order_lookups_stop_at_the_limit,
    password_hashing_runs_in_a_bounded_pool,
    login_redirects_stay_on_this_site,
    unpaid_checkouts_cannot_hold_the_stock,
    shop_bank_and_notice_settings_are_private,
    registration_does_not_reveal_accounts,
    password_change_reset_and_logout_everywhere,
    private_pages_are_not_cached,
    buyers_are_mailed_only_about_money_that_arrived,
    shop_emails_are_confirmed_and_test_notices_limited,
);

const TABLE: &str = "ban-tra-go-mit-1m"; // Bàn trà gỗ mít 1m, 1.850.000 ₫, Đồ gỗ Minh Đức

async fn item_of(app: &TestApp, product: &str) -> i64 {
    let (_, p) = app
        .api("GET", &format!("/products/{product}"), None, None)
        .await;
    p["product"]["price_item_id"].as_i64().unwrap()
}

async fn price_of(app: &TestApp, product: &str) -> i64 {
    let (_, p) = app
        .api("GET", &format!("/products/{product}"), None, None)
        .await;
    p["product"]["price_vnd"].as_i64().unwrap()
}

async fn propose(
    app: &TestApp,
    token: &str,
    item: i64,
    price: i64,
    reason: &str,
) -> (StatusCode, Value) {
    app.api(
        "POST",
        &format!("/price-items/{item}/proposals"),
        Some(token),
        Some(json!({"price_vnd": price, "reason": reason})),
    )
    .await
}

async fn vote(app: &TestApp, token: &str, id: i64) -> (StatusCode, Value) {
    app.api(
        "POST",
        &format!("/proposals/{id}/votes"),
        Some(token),
        Some(json!({"approve": true})),
    )
    .await
}

async fn five_shops_of_one_person_cannot_set_the_village_price(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let item = item_of(&app, TABLE).await;
    let attacker = app.register_seller("0977000001", "Kẻ gian").await;
    let mut slugs = Vec::new();
    for n in 1..=5 {
        let (s, body) = app
            .api(
                "POST",
                "/shops",
                Some(&attacker),
                Some(json!({"village": "phu-doi", "name": format!("Cửa hàng số {n}"), "phone": "0977000001"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        assert_eq!(body["shop"]["membership"], "pending");
        slugs.push(body["shop"]["slug"].as_str().unwrap().to_string());
    }
    // Until the moderator accepts a shop it lists nothing, proposes nothing, votes on nothing.
    let (s, body) = app
        .api(
            "POST",
            "/products",
            Some(&attacker),
            Some(json!({"shop": slugs[0], "name": "Bàn giả", "category": "Đồ gỗ", "stock": 5, "price_item_id": item})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("chưa được điều phối viên")
    );
    let (s, _) = propose(&app, &attacker, item, 1_000, "Giảm giá cho mọi người mua").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, open) = app
        .api("GET", "/villages/phu-doi/proposals", None, None)
        .await;
    let demo_proposal = open["proposals"][0]["id"].as_i64().unwrap();
    let (s, _) = vote(&app, &attacker, demo_proposal).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The seller's dashboard says why; pending shops are not public and do not count
    // toward the quorum.
    app.login_page("0977000001", PW).await;
    let dash = app.page("/quan-ly").await;
    assert!(dash.contains("Đang chờ điều phối viên của làng chấp nhận"));
    assert!(!dash.contains("/quan-ly/san-pham/moi?shop="));
    assert_eq!(
        app.get(&format!("/shop/{}", slugs[0])).await.status(),
        StatusCode::NOT_FOUND
    );
    let (_, v) = app.api("GET", "/villages/phu-doi", None, None).await;
    assert_eq!(v["quorum"]["voters"], 4);
    assert_eq!(v["shops"].as_array().unwrap().len(), 4);
    let (s, _) = app
        .api("GET", &format!("/shops/{}", slugs[0]), None, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Only the village's moderator (or an admin) decides; the moderator's page lists them.
    let duc = app.api_login(DUC, PW).await;
    let (s, _) = app
        .api(
            "POST",
            &format!("/shops/{}/membership", slugs[0]),
            Some(&duc),
            Some(json!({"decision": "accept"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    app.login_page(MODERATOR, PW).await;
    let board = app.page("/lang/phu-doi/bang-gia").await;
    assert!(board.contains("Cửa hàng xin tham gia bảng giá"));
    assert!(board.contains("Cửa hàng số 3"));

    // Even with all five accepted, the person has one vote.
    for slug in &slugs {
        app.accept_shop(slug).await;
    }
    let (_, v) = app.api("GET", "/villages/phu-doi", None, None).await;
    assert_eq!(v["quorum"]["voters"], 5, "five people, not nine shops");
    let (s, p) = propose(&app, &attacker, item, 1_000, "rẻ").await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a reason has a minimum length: {p}"
    );
    let (s, p) = propose(&app, &attacker, item, 1_000, "Giảm giá cho mọi người mua").await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let id = p["proposal"]["id"].as_i64().unwrap();
    let (s, p) = vote(&app, &attacker, id).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["proposal"]["yes"], 1, "one vote for one person: {p}");
    assert_eq!(p["proposal"]["status"], "open");
    assert_eq!(
        app.scalar(
            "SELECT COUNT(*) FROM votes WHERE proposal_id = (SELECT MAX(id) FROM proposals)"
        )
        .await,
        1
    );
    assert_eq!(price_of(&app, TABLE).await, 1_850_000);

    // Two more people agree: the vote passes, but a change beyond ±30 % waits for the
    // moderator ("chờ điều phối viên"), and checkout still charges the agreed price.
    for seller in [HUONG, TOAN] {
        let t = app.api_login(seller, PW).await;
        let (s, p) = vote(&app, &t, id).await;
        assert_eq!(s, StatusCode::OK, "{p}");
    }
    let (_, p) = app
        .api("GET", &format!("/proposals/{id}"), None, None)
        .await;
    assert_eq!(p["proposal"]["status"], "awaiting_moderator", "{p}");
    assert_eq!(p["proposal"]["yes"], 3);
    assert_eq!(price_of(&app, TABLE).await, 1_850_000);
    let (s, c) = app.checkout(&[(TABLE, 1)]).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(c["total_vnd"], 1_850_000);
    // Voting is over; the public board says who must decide.
    let (s, _) = vote(&app, &duc, id).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let board = app.page("/lang/phu-doi/bang-gia").await;
    assert!(board.contains("Chờ điều phối viên"));
    assert!(board.contains("chờ điều phối viên của làng duyệt"));
    // The moderators (here: the admin, who has an email) hear of both.
    app.notifier().run_once().await.unwrap();
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM notices WHERE kind = 'shop_join_request' AND recipient = 'admin@cholang.local'").await,
        5
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM notices WHERE kind = 'proposal_awaiting_moderator'")
            .await,
        1
    );
}

async fn the_moderator_rejects_with_a_public_reason(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let item = item_of(&app, TABLE).await;
    let duc = app.api_login(DUC, PW).await;
    let (s, p) = propose(&app, &duc, item, 900_000, "Bán tháo trước Tết cho nhanh").await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let id = p["proposal"]["id"].as_i64().unwrap();
    // Sellers cannot reject; the moderator must give a real reason.
    let (s, _) = app
        .api(
            "POST",
            &format!("/proposals/{id}/reject"),
            Some(&duc),
            Some(json!({"reason": "Không hợp lý với giá làng"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let moderator = app.api_login(MODERATOR, PW).await;
    let (s, e) = app
        .api(
            "POST",
            &format!("/proposals/{id}/reject"),
            Some(&moderator),
            Some(json!({"reason": "không"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e["error"]["fields"]["reason"].is_string(), "{e}");
    // From the board page, as a moderator on a phone would.
    app.login_page(MODERATOR, PW).await;
    let r = app
        .submit(
            "/lang/phu-doi/bang-gia",
            &format!("/de-xuat/{id}/tu-choi"),
            &[("reason", "Giảm một nửa giá làm hại cả làng")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, p) = app
        .api("GET", &format!("/proposals/{id}"), None, None)
        .await;
    assert_eq!(p["proposal"]["status"], "rejected");
    assert_eq!(p["proposal"]["decision"], "moderator");
    assert_eq!(
        p["proposal"]["decision_reason"],
        "Giảm một nửa giá làm hại cả làng"
    );
    assert_eq!(p["proposal"]["decided_by"], "Trưởng thôn Phú Đôi");
    assert_eq!(price_of(&app, TABLE).await, 1_850_000);
    // Anyone can read the decision and its reason on the public board.
    let anon = app.new_browser();
    let board = anon
        .get(app.url("/lang/phu-doi/bang-gia"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(board.contains("từ chối: Giảm một nửa giá làm hại cả làng"));
    // Approving over the API needs an explicit confirmation.
    let (s, p) = propose(&app, &duc, item, 1_900_000, "Gỗ mít tăng giá từ tháng 11").await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let id = p["proposal"]["id"].as_i64().unwrap();
    let (s, e) = app
        .api(
            "POST",
            &format!("/proposals/{id}/approve"),
            Some(&moderator),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e["error"]["fields"]["confirm"].is_string());
    assert_eq!(price_of(&app, TABLE).await, 1_850_000);
    let (s, _) = app
        .api(
            "POST",
            &format!("/proposals/{id}/approve"),
            Some(&moderator),
            Some(json!({"confirm": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(price_of(&app, TABLE).await, 1_900_000);
}

/// The seller's page action on an order.
async fn seller_moves(app: &TestApp, seller: &str, order: &str, to: &str) -> StatusCode {
    app.login_page(seller, PW).await;
    app.submit(
        "/quan-ly/don-hang",
        &format!("/quan-ly/don-hang/{order}"),
        &[("to", to), ("confirm", "1")],
    )
    .await
    .status()
}

async fn a_cancelled_unpaid_order_releases_stock_once_and_its_money_is_owed_back(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let slug = "man-tuyn-2-cua-1m8-x-2m"; // Bà Hạnh, 40 in stock
    assert_eq!(app.stock(slug).await, 40);
    let (s, c) = app.checkout(&[(slug, 3)]).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(app.stock(slug).await, 37);
    let code = c["payment"]["code"].as_str().unwrap().to_string();
    let order = c["orders"][0]["code"].as_str().unwrap().to_string();
    let total = c["total_vnd"].as_i64().unwrap();

    assert_eq!(
        seller_moves(&app, HANH, &order, "cancelled").await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.stock(slug).await,
        40,
        "the cancelled order's stock is back"
    );
    // Once: a second cancel is refused and changes nothing; the expiry sweep neither.
    assert_eq!(
        seller_moves(&app, HANH, &order, "cancelled").await,
        StatusCode::CONFLICT
    );
    cholang::payments::store::expire_due(&app.db).await.unwrap();
    sqlx::query("UPDATE payments SET expires_at = 0")
        .execute(&app.db.pool)
        .await
        .unwrap();
    cholang::payments::store::expire_due(&app.db).await.unwrap();
    assert_eq!(app.stock(slug).await, 40);
    let p = app.payment(&code).await;
    assert_eq!(p["status"], "expired");
    assert_eq!(p["cancelled"], true);

    // The buyer pays anyway: the money is owed back and shows for the admin.
    let out = app.transfer(total, &format!("{code} thanh toan")).await;
    assert_eq!(out["outcome"]["result"], "applied", "{out}");
    assert_eq!(out["outcome"]["status"], "refund_due");
    let p = app.payment(&code).await;
    assert_eq!(p["status"], "refund_due", "{p}");
    let status: String = sqlx::query_scalar("SELECT status FROM orders WHERE code = $1")
        .bind(order.clone())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "refund_due");
    assert_eq!(app.stock(slug).await, 40, "no stock taken again");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM notice_events WHERE kind = 'refund_due'")
            .await,
        1
    );
    app.login_page(cholang::demo::catalog::ADMIN_EMAIL, PW)
        .await;
    let page = app.page("/quan-tri/doi-soat").await;
    assert!(page.contains(&code), "reconciliation lists the payment");
    assert!(page.contains("Chờ hoàn tiền"));
}

async fn cancelling_one_shop_of_a_checkout_lowers_what_is_due(b: Backend) {
    let app = TestApp::with_demo(b).await;
    // Bà Hạnh's net and Minh Đức's stool in one checkout.
    let (s, c) = app
        .checkout(&[("man-tuyn-2-cua-1m8-x-2m", 1), ("ghe-dau-go-xoan", 2)])
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let code = c["payment"]["code"].as_str().unwrap().to_string();
    let orders: Vec<(String, String, i64)> = c["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["code"].as_str().unwrap().to_string(),
                o["shop"]["slug"].as_str().unwrap().to_string(),
                o["total_vnd"].as_i64().unwrap(),
            )
        })
        .collect();
    let (stool_order, _, stool_total) = orders
        .iter()
        .find(|o| o.1 == "do-go-minh-duc")
        .unwrap()
        .clone();
    let (net_order, _, net_total) = orders
        .iter()
        .find(|o| o.1 == "man-tuyn-ba-hanh")
        .unwrap()
        .clone();
    let stool_stock = app.stock("ghe-dau-go-xoan").await;
    assert_eq!(
        seller_moves(&app, DUC, &stool_order, "cancelled").await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(app.stock("ghe-dau-go-xoan").await, stool_stock + 2);
    let p = app.payment(&code).await;
    assert_eq!(p["amount_vnd"], net_total, "only the net is still due");
    assert_eq!(p["status"], "pending");
    // Paying what the QR first asked for: the net is paid, the rest is an overpayment to refund.
    let out = app.transfer(net_total + stool_total, &code).await;
    assert_eq!(out["outcome"]["status"], "paid", "{out}");
    let p = app.payment(&code).await;
    assert_eq!(p["overpaid_vnd"], stool_total);
    let st = |code: String| {
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT status FROM orders WHERE code = $1")
                .bind(code)
                .fetch_one(&db.pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(st(net_order).await, "paid");
    assert_eq!(st(stool_order).await, "cancelled");
}

fn bomb_png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_compression(png::Compression::Fast);
    let mut writer = enc.write_header().unwrap();
    writer
        .write_image_data(&vec![0u8; w as usize * h as usize])
        .unwrap();
    writer.finish().unwrap();
    out
}

async fn oversized_photos_are_refused_before_decoding(b: Backend) {
    let app = TestApp::with_demo(b).await;
    app.login_page(HANH, PW).await;
    // 7000 × 5000 = 35 megapixels in a file of a few dozen kilobytes.
    let bomb = bomb_png(7_000, 5_000);
    assert!(bomb.len() < 500_000, "{}", bomb.len());
    let r = upload_photo(&app, "man-tuyn-1m6-x-2m", bomb.clone(), "anh.png").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("7000 × 5000"), "refused for its pixels");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM product_photos").await, 0);
    // The photo limit is counted before any processing.
    let pid: i64 = sqlx::query_scalar("SELECT id FROM products WHERE slug = 'man-tuyn-1m6-x-2m'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    for n in 0..8 {
        sqlx::query("INSERT INTO product_photos (product_id, file_name, thumb_name, position, created_at) VALUES ($1, $2, $3, $4, 0)")
            .bind(pid)
            .bind(format!("x{n}.jpg"))
            .bind(format!("x{n}-thumb.jpg"))
            .bind(n)
            .execute(&app.db.pool)
            .await
            .unwrap();
    }
    let r = upload_photo(&app, "man-tuyn-1m6-x-2m", bomb, "anh.png").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("tối đa 8 ảnh"));
    assert!(
        !html.contains("7000 × 5000"),
        "refused by count, before looking at pixels"
    );
}

/// An app that believes `X-Forwarded-For` from loopback (a reverse proxy in front).
async fn behind_proxy(b: Backend) -> TestApp {
    TestApp::with_demo_and(b, &[("CHOLANG_TRUSTED_PROXIES", "127.0.0.1")]).await
}

async fn api_login_from(app: &TestApp, login: &str, pw: &str, from: &str) -> StatusCode {
    app.client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", from)
        .json(&json!({"login": login, "password": pw}))
        .send()
        .await
        .unwrap()
        .status()
}

async fn concurrent_wrong_passwords_stop_at_the_limit_without_hashing(b: Backend) {
    let app = Arc::new(TestApp::with_demo(b).await);
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            api_login_from(&app, HANH, "sai-mat-khau", "1.1.1.1").await
        }));
    }
    let mut wrong = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::UNAUTHORIZED => wrong += 1,
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    // Exactly the limit was checked (hashed); every other attempt was refused up front.
    assert_eq!((wrong, refused), (5, 35));
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"login": HANH, "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "900");
}

async fn lockout_is_per_account_and_address_behind_a_trusted_proxy(b: Backend) {
    let app = behind_proxy(b).await;
    let admin = cholang::demo::catalog::ADMIN_EMAIL;
    for _ in 0..5 {
        assert_eq!(
            api_login_from(&app, admin, "doan-bua", "203.0.113.7").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        api_login_from(&app, admin, PW, "203.0.113.7").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The attacker's address is locked out of the admin account; the admin elsewhere is not.
    assert_eq!(
        api_login_from(&app, admin, PW, "198.51.100.20").await,
        StatusCode::OK
    );
    // The header is the client's word unless it comes through the trusted proxy: a client
    // that claims another address directly is counted under its own.
    let direct = TestApp::with_demo(b).await;
    for n in 0..5 {
        let from = format!("10.9.9.{n}");
        assert_eq!(
            api_login_from(&direct, admin, "doan-bua", &from).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        api_login_from(&direct, admin, PW, "10.9.9.99").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Throttle per address alone: 20 failures over many accounts, then that address waits.
    let app = behind_proxy(b).await;
    for n in 0..20 {
        let login = format!("09770001{n:02}");
        assert_eq!(
            api_login_from(&app, &login, "sai-mat-khau", "192.0.2.1").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        api_login_from(&app, HANH, PW, "192.0.2.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        api_login_from(&app, HANH, PW, "192.0.2.2").await,
        StatusCode::OK
    );
}

async fn concurrent_order_lookups_stop_at_the_limit(b: Backend) {
    let app = Arc::new(TestApp::with_demo(b).await);
    let (s, c) = app.checkout(&[("ghe-dau-go-xoan", 1)]).await;
    assert_eq!(s, StatusCode::CREATED);
    let order = c["orders"][0]["code"].as_str().unwrap().to_string();
    let token = app.csrf(&format!("/don-hang/{order}")).await;
    let mut tasks = Vec::new();
    for n in 0..60 {
        let app = app.clone();
        let (order, token) = (order.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            app.client
                .post(app.url(&format!("/don-hang/{order}")))
                .form(&[("csrf", token), ("phone", format!("09110000{n:02}"))])
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut checked = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::UNPROCESSABLE_ENTITY => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((checked, refused), (5, 55));
}

async fn password_hashing_runs_in_a_bounded_pool(b: Backend) {
    // Every login of a flood from many addresses reaches the password check: the pool
    // lets about one per core run at once, and the rest wait (or get 503 + Retry-After).
    let app = Arc::new(behind_proxy(b).await);
    let mut tasks = Vec::new();
    for n in 0..16 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let r = app
                .client
                .post(app.url("/api/v1/auth/login"))
                .header("x-forwarded-for", format!("198.18.{}.{}", n / 200, n % 200))
                .json(&json!({"login": format!("0966{n:06}"), "password": "sai-mat-khau"}))
                .send()
                .await
                .unwrap();
            (r.status(), r.headers().get("retry-after").cloned())
        }));
    }
    for t in tasks {
        match t.await.unwrap() {
            (StatusCode::UNAUTHORIZED, _) => {}
            (StatusCode::SERVICE_UNAVAILABLE, retry) => assert!(retry.is_some()),
            other => panic!("unexpected {other:?}"),
        }
    }
    let pool = &cholang::accounts::HASHING;
    assert!(pool.peak() >= 1);
    assert!(
        pool.peak() <= pool.size(),
        "at most {} hashes at once, saw {}",
        pool.size(),
        pool.peak()
    );
}

async fn login_redirects_stay_on_this_site(b: Backend) {
    let app = TestApp::with_demo(b).await;
    // The login page does not carry a hostile `next` into its form.
    let page = app.page("/dang-nhap?next=/%09/evil.example").await;
    assert!(page.contains(r#"name="next" value="/quan-ly""#), "{page}");
    let sessions = app.scalar("SELECT COUNT(*) FROM sessions").await;
    for next in [
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\n/evil.example",
        "/\u{b}/evil.example",
        "/\u{7f}/evil.example",
        "/ /evil.example",
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
    ] {
        let r = app
            .submit(
                "/dang-nhap",
                "/dang-nhap",
                &[("login", HANH), ("password", PW), ("next", next)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(location(&r), "/quan-ly", "{next:?}");
    }
    // A path on this site is kept.
    let r = app
        .submit(
            "/dang-nhap",
            "/dang-nhap",
            &[
                ("login", HANH),
                ("password", PW),
                ("next", "/quan-ly/don-hang?tab=moi"),
            ],
        )
        .await;
    assert_eq!(location(&r), "/quan-ly/don-hang?tab=moi");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sessions").await,
        sessions + 10
    );
}

async fn checkout_as(app: &TestApp, phone: &str, slug: &str, qty: i64) -> (StatusCode, Value) {
    app.api(
        "POST",
        "/checkout",
        None,
        Some(json!({
            "items": [{"product_slug": slug, "quantity": qty}],
            "buyer": {"name": "Người mua", "phone": phone, "address": "12 Hàng Bông, Hà Nội"}
        })),
    )
    .await
}

async fn unpaid_checkouts_cannot_hold_the_stock(b: Backend) {
    // The defaults: 3 open unpaid checkouts and 30 units per phone, four times that per address.
    let app = Arc::new(
        TestApp::with_demo_and(
            b,
            &[
                ("CHECKOUT_MAX_OPEN", "3"),
                ("CHECKOUT_MAX_HELD_UNITS", "30"),
            ],
        )
        .await,
    );
    let slug = "man-tuyn-tre-em-1m2"; // 50 in stock
    assert_eq!(app.stock(slug).await, 50);
    let (s, e) = checkout_as(&app, "0987000001", slug, 31).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tối đa 30")
    );
    // Ten at once from one phone: three get through.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            checkout_as(&app, "0987000002", slug, 2).await.0
        }));
    }
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 3);
    assert_eq!(app.stock(slug).await, 44);
    // Many phones from one address: 120 units at most (6 are held already).
    sqlx::query("UPDATE products SET stock = 1000 WHERE slug = 'man-tuyn-2-cua-1m8-x-2m'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let mut created = 0;
    for n in 0..10 {
        let (s, _) = checkout_as(
            &app,
            &format!("09870001{n:02}"),
            "man-tuyn-2-cua-1m8-x-2m",
            30,
        )
        .await;
        if s == StatusCode::CREATED {
            created += 1;
        }
    }
    assert_eq!(created, 3, "6 + 3 × 30 = 96; a fourth would pass 120");
    assert_eq!(app.stock("man-tuyn-2-cua-1m8-x-2m").await, 910);
    // …and a paid checkout no longer counts.
    let code: String = sqlx::query_scalar(
        "SELECT p.code FROM payments p JOIN checkouts c ON c.id = p.checkout_id WHERE c.buyer_phone = '0987000002' ORDER BY p.id LIMIT 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let amount = app.payment(&code).await["amount_vnd"].as_i64().unwrap();
    app.transfer(amount, &code).await;
    let (s, _) = checkout_as(&app, "0987000002", slug, 2).await;
    assert_eq!(s, StatusCode::CREATED);
    let ip: String = sqlx::query_scalar("SELECT client_ip FROM checkouts ORDER BY id DESC LIMIT 1")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(ip, "127.0.0.1");
}

async fn shop_bank_and_notice_settings_are_private(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let private = [
        "email",
        "bank_bin",
        "bank_account_no",
        "bank_account_name",
        "notify_email",
        "notify_zalo",
        "notify_telegram",
        "membership",
    ];
    let hanh = app.api_login(HANH, PW).await;
    // The payout account is changed only with the password again (a PATCH is refused).
    let (s, _) = app
        .api("PATCH", "/shops/man-tuyn-ba-hanh", Some(&hanh), Some(json!({"bank_bin": "970436", "bank_account_no": "0011001234567", "bank_account_name": "NGUYEN THI HANH"})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, e) = app
        .api(
            "PUT",
            "/shops/man-tuyn-ba-hanh/payout-account",
            Some(&hanh),
            Some(json!({"bank_bin": "970436", "account_no": "0011001234567", "account_name": "Nguyễn Thị Hạnh", "password": PW})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let (_, public) = app.api("GET", "/shops/man-tuyn-ba-hanh", None, None).await;
    let duc = app.api_login(DUC, PW).await;
    let (_, other_seller) = app
        .api("GET", "/shops/man-tuyn-ba-hanh", Some(&duc), None)
        .await;
    for shop in [&public["shop"], &other_seller["shop"]] {
        assert_eq!(shop["name"], "Màn tuyn Bà Hạnh");
        for f in private {
            assert!(shop.get(f).is_none(), "{f} is private: {shop}");
        }
    }
    let (_, list) = app.api("GET", "/shops", None, None).await;
    let (_, village) = app.api("GET", "/villages/phu-doi", None, None).await;
    for shop in list["shops"]
        .as_array()
        .unwrap()
        .iter()
        .chain(village["shops"].as_array().unwrap())
    {
        for f in private {
            assert!(shop.get(f).is_none(), "{f} is private: {shop}");
        }
    }
    let (_, own) = app
        .api("GET", "/shops/man-tuyn-ba-hanh", Some(&hanh), None)
        .await;
    assert_eq!(own["shop"]["bank_account_no"], "0011001234567");
    assert_eq!(own["shop"]["notify_email"], true);
}

async fn registration_does_not_reveal_accounts(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let register = |login: &'static str| {
        let app = &app;
        async move {
            app.api(
                "POST",
                "/auth/register",
                None,
                Some(
                    json!({"login": login, "display_name": "Ai đó", "password": "mat-khau-moi-1"}),
                ),
            )
            .await
        }
    };
    let existing = register("admin@cholang.local").await;
    let fresh = register("moi@cholang.local").await;
    assert_eq!(existing, fresh, "the same status and body");
    assert_eq!(existing.0, StatusCode::ACCEPTED);
    assert!(existing.1.get("token").is_none());
    // The existing account is untouched and its owner is told; the new one can log in.
    assert_eq!(
        api_login_from(&app, "admin@cholang.local", "mat-khau-moi-1", "127.0.0.1").await,
        StatusCode::UNAUTHORIZED
    );
    app.api_login("moi@cholang.local", "mat-khau-moi-1").await;
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM notices WHERE kind = 'account' AND recipient = 'admin@cholang.local'").await,
        1
    );
}

async fn password_change_reset_and_logout_everywhere(b: Backend) {
    let app = TestApp::with_demo(b).await;
    // Two devices logged in; the seller changes the password on one: the other is out.
    let phone = app.api_login(HANH, PW).await;
    let laptop = app.api_login(HANH, PW).await;
    let (s, e) = app
        .api(
            "POST",
            "/auth/password",
            Some(&laptop),
            Some(json!({"current_password": "sai", "new_password": "mat-khau-moi-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (s, _) = app
        .api(
            "POST",
            "/auth/password",
            Some(&laptop),
            Some(json!({"current_password": PW, "new_password": "mat-khau-moi-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        app.api("GET", "/me", Some(&phone), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.api("GET", "/me", Some(&laptop), None).await.0,
        StatusCode::OK
    );
    // Log out everywhere.
    let other = app.api_login(HANH, "mat-khau-moi-1").await;
    let (s, _) = app
        .api("POST", "/auth/logout-all", Some(&laptop), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    for t in [&laptop, &other] {
        assert_eq!(
            app.api("GET", "/me", Some(t), None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }

    // Reset by a code sent to the phone this seller logs in with.
    let ask = |login: &'static str| {
        let app = &app;
        async move {
            app.api(
                "POST",
                "/auth/password-reset",
                None,
                Some(json!({"login": login})),
            )
            .await
        }
    };
    let known = ask(HANH).await;
    let unknown = ask("0900000009").await;
    assert_eq!(
        known, unknown,
        "the same answer whether or not the account exists"
    );
    assert_eq!(known.0, StatusCode::ACCEPTED);
    let session = app.api_login(HANH, "mat-khau-moi-1").await;
    // A phone login gets its code on the phone (no Zalo or SMS here: the outbox's files).
    let code = app.phone_code(HANH);
    assert_eq!(code.len(), 6, "{code}");
    assert!(
        app.phone_codes("0900000009").is_empty(),
        "nothing for an unknown number"
    );
    let stored: String = sqlx::query_scalar("SELECT code_hash FROM password_resets")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(!stored.contains(&code), "only a hash is stored");
    let confirm = |code: String, pw: &'static str| {
        let app = &app;
        async move {
            app.api(
                "POST",
                "/auth/password-reset/confirm",
                None,
                Some(json!({"login": HANH, "code": code, "new_password": pw})),
            )
            .await
        }
    };
    let (s, e) = confirm("00000000".into(), "mat-khau-lan-3").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (s, e) = confirm(code.clone(), "mat-khau-lan-3").await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(
        app.api("GET", "/me", Some(&session), None).await.0,
        StatusCode::UNAUTHORIZED,
        "every session ended"
    );
    app.api_login(HANH, "mat-khau-lan-3").await;
    // A used code does not work twice.
    let (s, _) = confirm(code, "mat-khau-lan-4").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // A code survives five wrong guesses at most.
    ask(HANH).await;
    let code = app.phone_code(HANH);
    for _ in 0..5 {
        assert_eq!(
            confirm("12345678".into(), "mat-khau-lan-5").await.0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    assert_eq!(
        confirm(code, "mat-khau-lan-5").await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    app.api_login(HANH, "mat-khau-lan-3").await;

    // The pages do the same.
    app.login_page(HANH, "mat-khau-lan-3").await;
    let r = app
        .submit(
            "/doi-mat-khau",
            "/doi-mat-khau",
            &[
                ("current_password", "mat-khau-lan-3"),
                ("new_password", "mat-khau-trang"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/quan-ly?ok=password-changed");
    assert!(app.page(&location(&r)).await.contains("Đã đổi mật khẩu"));
    let r = app.submit("/doi-mat-khau", "/dang-xuat-moi-noi", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM sessions").await, 0);
}

async fn private_pages_are_not_cached(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let (_, c) = app.checkout(&[("ghe-dau-go-xoan", 1)]).await;
    let code = c["payment"]["code"].as_str().unwrap();
    let order = c["orders"][0]["code"].as_str().unwrap();
    app.login_page(DUC, PW).await;
    for path in [
        "/quan-ly".to_string(),
        "/quan-ly/don-hang".to_string(),
        format!("/pay/{code}"),
        format!("/don-hang/{order}"),
    ] {
        let r = app.get(&path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
    }
    let token = app.api_login(DUC, PW).await;
    let r = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    // Public pages may be cached by a browser as usual.
    let r = app
        .new_browser()
        .get(app.url("/lang/phu-doi/bang-gia"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("cache-control").is_none());
}

async fn buyers_are_mailed_only_about_money_that_arrived(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let buy = |email: &'static str| {
        let app = &app;
        async move {
            let (s, c) = app
                .api(
                    "POST",
                    "/checkout",
                    None,
                    Some(json!({
                        "items": [{"product_slug": "ghe-dau-go-xoan", "quantity": 1}],
                        "buyer": {"name": "Người lạ", "phone": "0987111222", "address": "Hà Nội", "email": email}
                    })),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{c}");
            c
        }
    };
    // Anyone can type any address: an unpaid checkout that expires mails nobody.
    buy("nan-nhan@example.com").await;
    let paid = buy("nguoi-mua@example.com").await;
    let code = paid["payment"]["code"].as_str().unwrap().to_string();
    app.transfer(paid["total_vnd"].as_i64().unwrap(), &code)
        .await;
    sqlx::query("UPDATE payments SET expires_at = 0 WHERE status = 'pending'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    cholang::payments::store::expire_due(&app.db).await.unwrap();
    app.notifier().run_once().await.unwrap();
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM notices WHERE recipient = 'nan-nhan@example.com'")
            .await,
        0
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM notices WHERE recipient = 'nguoi-mua@example.com'")
            .await,
        1,
        "the receipt"
    );
    // The seller still hears that the unpaid order closed.
    assert!(
        app.scalar("SELECT COUNT(*) FROM notices WHERE kind = 'order_closed'")
            .await
            >= 1
    );
}

async fn shop_emails_are_confirmed_and_test_notices_limited(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let hanh = app.api_login(HANH, PW).await;
    let (s, shop) = app
        .api(
            "PATCH",
            "/shops/man-tuyn-ba-hanh",
            Some(&hanh),
            Some(json!({"email": "ai-do@example.com", "password": PW})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{shop}");
    assert_eq!(shop["shop"]["email_confirmed"], false);
    // Only the confirmation link goes to the new address…
    let payload: String = sqlx::query_scalar(
        "SELECT payload FROM notices WHERE kind = 'shop_email_confirm' AND recipient = 'ai-do@example.com'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let payload: Value = serde_json::from_str(&payload).unwrap();
    let text = payload["text"].as_str().unwrap();
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/xac-nhan-email/"))
        .unwrap();
    let path = &link[link.find("/xac-nhan-email/").unwrap()..];
    // …no test or order notice until it is confirmed.
    app.login_page(HANH, PW).await;
    let send_test = || {
        app.submit(
            "/quan-ly",
            "/quan-ly/cua-hang/man-tuyn-ba-hanh/thu-thong-bao",
            &[],
        )
    };
    let tests_to_new_address = || {
        app.scalar(
            "SELECT COUNT(*) FROM notices WHERE kind = 'test' AND recipient = 'ai-do@example.com'",
        )
    };
    assert_eq!(send_test().await.status(), StatusCode::SEE_OTHER);
    app.notifier().run_once().await.unwrap();
    assert_eq!(tests_to_new_address().await, 0);
    let r = app.get(path).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
    let (_, shop) = app
        .api("GET", "/shops/man-tuyn-ba-hanh", Some(&hanh), None)
        .await;
    assert_eq!(shop["shop"]["email_confirmed"], true);
    // Test notices: three an hour, then 429.
    for _ in 0..2 {
        assert_eq!(send_test().await.status(), StatusCode::SEE_OTHER);
    }
    let refused = send_test().await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "3600");
    app.notifier().run_once().await.unwrap();
    assert_eq!(tests_to_new_address().await, 2);
}
