//! Sellers get paid: the ledger through the whole money path, payout accounts, payout runs by
//! payOS (a stand-in that checks signatures and misbehaves on request) and by the bank app,
//! refunds racing runs, and the backfill of a database from before the ledger.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    money_path_through_payos_with_balances_at_each_step,
    a_payos_retry_after_5xx_or_timeout_pays_once,
    a_payos_refusal_on_a_retry_is_looked_up_before_failing,
    a_failed_payout_returns_the_money,
    bank_app_payouts_confirmed_by_the_bank_feed,
    refunds_and_runs_racing_leave_one_payout_and_no_negative_balance,
    payout_account_change_needs_the_password_holds_and_tells,
    a_database_from_before_the_ledger_is_backfilled,
    sellers_move_orders_over_the_api,
    the_ledger_check_catches_what_it_guards,
    shipped_orders_are_released_after_the_waiting_days,
    a_refused_lookup_never_fails_an_accepted_payout,
    money_out_that_nothing_explains_waits_for_the_admin,
    cholang_worker_follows_payouts_and_expires_payments,
    a_sent_payout_reaches_the_seller_by_zalo_template,
    the_money_page_says_what_was_sold_and_when_it_comes,
);

const CHECKSUM: &str = "payout-checksum-key-for-tests-0123456789";
const NET: &str = "man-tuyn-2-cua-1m8-x-2m"; // Bà Hạnh, 180.000 ₫

/// How the stand-in payOS behaves.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Mode {
    Normal,
    /// Accept the first request, then answer 500 (the money would be on its way).
    FailAfterAccepting,
    /// Accept, then take longer than the client waits.
    Slow,
    /// The transaction fails at the bank.
    TransactionFails,
    /// Refuse the payout (bad account).
    Refuse,
    /// Accept the payout, then answer look-ups with an error (no transaction state).
    LookupRefused,
    /// Create the payout but answer the first request 502; refuse every retry with a 4xx
    /// ("referenceId already used"), as a provider without idempotent replies would.
    DuplicateOnRetry,
}

#[derive(Default)]
struct PayosState {
    /// idempotency key → payout id, as payOS keeps them
    created: Vec<(String, String)>,
    posts: usize,
    bad_signatures: usize,
}

pub(crate) struct FakePayos {
    url: String,
    state: Arc<Mutex<PayosState>>,
}

fn signed(data: Value) -> axum::response::Response {
    use axum::response::IntoResponse;
    let sig = cholang::payouts::sign(CHECKSUM, &data);
    (
        [("x-signature", sig)],
        axum::Json(json!({"code": "00", "desc": "success", "data": data})),
    )
        .into_response()
}

fn payout_data(id: &str, reference: &str, amount: i64, state: &str) -> Value {
    json!({"id": id, "referenceId": reference, "transactions": [{"id": format!("txn_{id}"),
        "referenceId": reference, "amount": amount, "description": format!("CHO LANG {reference}"),
        "toBin": "970436", "toAccountNumber": "0011001234567", "toAccountName": "NGUYEN THI HANH",
        "reference": "FT1", "transactionDatetime": null, "errorMessage": null, "errorCode": null,
        "state": state}], "category": null, "approvalState": "PROCESSING", "createdAt": "2026-12-01T10:00:00+07:00"})
}

impl FakePayos {
    pub(crate) async fn start(mode: Mode) -> FakePayos {
        use axum::body::Bytes;
        use axum::extract::Path;
        use axum::http::HeaderMap;
        use axum::response::IntoResponse;
        use axum::routing::{get, post};
        let state: Arc<Mutex<PayosState>> = Default::default();
        let (s1, s2, s3) = (state.clone(), state.clone(), state.clone());
        let app = axum::Router::new()
            .route(
                "/v1/payouts",
                post(move |headers: HeaderMap, body: Bytes| {
                    let state = s1.clone();
                    async move {
                        let body: Value = serde_json::from_slice(&body).unwrap();
                        let sig = headers["x-signature"].to_str().unwrap().to_string();
                        let key = headers["x-idempotency-key"].to_str().unwrap().to_string();
                        assert_eq!(headers["x-client-id"], "payout-client");
                        assert_eq!(headers["x-api-key"], "payout-api-key");
                        assert_eq!(
                            body["referenceId"],
                            key.as_str(),
                            "the code is the idempotency key"
                        );
                        if sig != cholang::payouts::sign(CHECKSUM, &body) {
                            state.lock().unwrap().bad_signatures += 1;
                            return (
                                StatusCode::UNAUTHORIZED,
                                axum::Json(json!({"code": "401", "desc": "invalid signature"})),
                            )
                                .into_response();
                        }
                        if mode == Mode::Refuse {
                            return (
                                StatusCode::BAD_REQUEST,
                                axum::Json(
                                    json!({"code": "214", "desc": "Tài khoản không hợp lệ"}),
                                ),
                            )
                                .into_response();
                        }
                        let (id, first) = {
                            let mut st = state.lock().unwrap();
                            st.posts += 1;
                            match st.created.iter().find(|(k, _)| *k == key) {
                                Some((_, id)) => (id.clone(), false),
                                None => {
                                    let id = format!("po_{}", st.created.len() + 1);
                                    st.created.push((key.clone(), id.clone()));
                                    (id, true)
                                }
                            }
                        };
                        if !first && mode == Mode::DuplicateOnRetry {
                            return (
                                StatusCode::BAD_REQUEST,
                                axum::Json(json!({"code": "231", "desc": "referenceId đã tồn tại"})),
                            )
                                .into_response();
                        }
                        if first && matches!(mode, Mode::FailAfterAccepting | Mode::DuplicateOnRetry) {
                            return (StatusCode::BAD_GATEWAY, "upstream error").into_response();
                        }
                        if first && mode == Mode::Slow {
                            tokio::time::sleep(Duration::from_millis(1500)).await;
                        }
                        let amount = body["amount"].as_i64().unwrap();
                        signed(payout_data(&id, &key, amount, "PROCESSING"))
                    }
                })
                .get(
                    move |q: axum::extract::Query<std::collections::HashMap<String, String>>| {
                        let state = s3.clone();
                        async move {
                            let reference = q.get("referenceId").cloned().unwrap_or_default();
                            let st = state.lock().unwrap();
                            let found: Vec<Value> = st
                                .created
                                .iter()
                                .filter(|(k, _)| *k == reference)
                                .map(|(k, id)| payout_data(id, k, 0, "PROCESSING"))
                                .collect();
                            signed(json!({"payouts": found, "pagination": {"limit": 1, "offset": 0, "total": found.len()}}))
                        }
                    },
                ),
            )
            .route(
                "/v1/payouts/{id}",
                get(move |Path(id): Path<String>| {
                    let state = s2.clone();
                    async move {
                        if mode == Mode::LookupRefused {
                            return (
                                StatusCode::NOT_FOUND,
                                axum::Json(json!({"code": "404", "desc": "not found"})),
                            )
                                .into_response();
                        }
                        let key = state
                            .lock()
                            .unwrap()
                            .created
                            .iter()
                            .find(|(_, i)| *i == id)
                            .map(|(k, _)| k.clone())
                            .unwrap();
                        let end = if mode == Mode::TransactionFails {
                            "FAILED"
                        } else {
                            "SUCCEEDED"
                        };
                        signed(payout_data(&id, &key, 0, end))
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakePayos { url, state }
    }

    pub(crate) fn created(&self) -> usize {
        self.state.lock().unwrap().created.len()
    }
    pub(crate) fn posts(&self) -> usize {
        self.state.lock().unwrap().posts
    }
}

pub(crate) async fn app_with_payos(
    b: Backend,
    payos: &FakePayos,
    extra: &[(&str, &str)],
) -> TestApp {
    let mut env = vec![
        ("PAYOS_PAYOUT_CLIENT_ID", "payout-client"),
        ("PAYOS_PAYOUT_API_KEY", "payout-api-key"),
        ("PAYOS_PAYOUT_CHECKSUM_KEY", CHECKSUM),
        ("PAYOS_PAYOUT_API_URL", payos.url.as_str()),
        ("PAYOS_PAYOUT_TIMEOUT_MS", "500"),
        ("PAYOUT_ACCOUNT_HOLD_HOURS", "0"),
        ("PLATFORM_FEE_BPS", "250"),
    ];
    env.extend_from_slice(extra);
    TestApp::with_demo_and(b, &env).await
}

pub(crate) async fn balance(app: &TestApp, token: &str, shop: &str) -> Value {
    let (s, v) = app
        .api("GET", &format!("/shops/{shop}/balance"), Some(token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn set_account(app: &TestApp, token: &str, shop: &str) {
    let (s, v) = app
        .api(
            "PUT",
            &format!("/shops/{shop}/payout-account"),
            Some(token),
            Some(json!({"bank_bin": "970436", "account_no": "0011 0012 34567", "account_name": "Nguyễn Thị Hạnh", "password": PW})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// Buy `qty` of `slug`, pay in full, return the order code.
async fn sold(app: &TestApp, slug: &str, qty: i64) -> String {
    let (s, c) = app.checkout(&[(slug, qty)]).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let code = c["payment"]["code"].as_str().unwrap();
    let out = app.transfer(c["total_vnd"].as_i64().unwrap(), code).await;
    assert_eq!(out["outcome"]["status"], "paid", "{out}");
    c["orders"][0]["code"].as_str().unwrap().to_string()
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

async fn deliver(app: &TestApp, token: &str, order: &str) {
    for to in ["accepted", "shipped", "delivered"] {
        let (s, v) = transition(app, token, order, to).await;
        assert_eq!(s, StatusCode::OK, "{to}: {v}");
    }
    app.buyer_received(order).await;
}

async fn admin(app: &TestApp) -> String {
    app.api_login(cholang::demo::catalog::ADMIN_EMAIL, PW).await
}

/// A run that finds nobody to pay is not created: 409, saying who is held and why.
async fn no_run(app: &TestApp, method: &str) -> String {
    let admin = admin(app).await;
    let (s, v) = app
        .api(
            "POST",
            "/payout-runs",
            Some(&admin),
            Some(json!({"method": method})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    v["error"]["message"].as_str().unwrap().to_string()
}

async fn run(app: &TestApp, method: &str) -> Value {
    let admin = admin(app).await;
    let (s, v) = app
        .api(
            "POST",
            "/payout-runs",
            Some(&admin),
            Some(json!({"method": method})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

/// Let the follow-up job ask payOS now.
async fn follow_up(app: &TestApp) {
    sqlx::query("UPDATE payouts SET next_check_at = 0 WHERE next_check_at IS NOT NULL")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let cfg = app.config.clone();
    cholang::payouts::payos::run_once(&app.db, &cfg, cholang::refund_payouts::PAYOS_BOOKS)
        .await
        .unwrap();
}

async fn trial_total(app: &TestApp) -> i64 {
    let admin = admin(app).await;
    let (s, v) = app
        .api("GET", "/ledger/trial-balance", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!v["accounts"].as_array().unwrap().is_empty());
    v["total_vnd"].as_i64().unwrap()
}

async fn money_path_through_payos_with_balances_at_each_step(b: Backend) {
    let payos = FakePayos::start(Mode::Normal).await;
    let app = app_with_payos(b, &payos, &[]).await;
    let hanh = app.api_login(HANH, PW).await;
    set_account(&app, &hanh, "man-tuyn-ba-hanh").await;
    let order = sold(&app, NET, 2).await; // 360.000 ₫
    let bal = balance(&app, &hanh, "man-tuyn-ba-hanh").await;
    assert_eq!(bal["pending_vnd"], 360_000, "{bal}");
    assert_eq!(bal["available_vnd"], 0);
    // Nobody else sees the shop's money.
    let duc = app.api_login(DUC, PW).await;
    let (s, _) = app
        .api("GET", "/shops/man-tuyn-ba-hanh/balance", Some(&duc), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Nothing to pay before delivery: no run is created.
    no_run(&app, "payos").await;
    assert_eq!(app.scalar("SELECT COUNT(*) FROM payout_runs").await, 0);
    deliver(&app, &hanh, &order).await;
    let bal = balance(&app, &hanh, "man-tuyn-ba-hanh").await;
    // 2.5 % fee: 9.000 ₫.
    assert_eq!(
        (
            bal["pending_vnd"].as_i64(),
            bal["available_vnd"].as_i64(),
            bal["fees_vnd"].as_i64()
        ),
        (Some(0), Some(351_000), Some(9_000)),
        "{bal}"
    );
    let r = run(&app, "payos").await;
    let payouts = r["payouts"].as_array().unwrap();
    assert_eq!(payouts.len(), 1, "{r}");
    let p = &payouts[0];
    let code = p["code"].as_str().unwrap().to_string();
    assert!(code.starts_with("CLPO"));
    assert_eq!(p["amount_vnd"], 351_000);
    assert_eq!(p["shop"]["slug"], "man-tuyn-ba-hanh");
    assert_eq!(p["bank"]["account_no"], "0011001234567");
    assert_eq!(p["bank"]["account_name"], "NGUYEN THI HANH");
    assert_eq!(p["status"], "sent", "accepted by payOS at once: {p}");
    assert_eq!((payos.posts(), payos.created()), (1, 1));
    assert_eq!(payos.state.lock().unwrap().bad_signatures, 0);
    let bal = balance(&app, &hanh, "man-tuyn-ba-hanh").await;
    assert_eq!(
        (
            bal["available_vnd"].as_i64(),
            bal["in_transit_vnd"].as_i64()
        ),
        (Some(0), Some(351_000))
    );
    // A second run finds nothing to pay, and is not created.
    let why = no_run(&app, "payos").await;
    assert!(
        why.contains("không cửa hàng nào có tiền có thể rút"),
        "{why}"
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM payout_runs").await, 1);
    // The follow-up job sees the transaction succeed.
    follow_up(&app).await;
    let (_, p) = app
        .api("GET", &format!("/payouts/{code}"), Some(&hanh), None)
        .await;
    assert_eq!(p["status"], "paid", "{p}");
    let bal = balance(&app, &hanh, "man-tuyn-ba-hanh").await;
    assert_eq!(
        (
            bal["in_transit_vnd"].as_i64(),
            bal["paid_out_vnd"].as_i64(),
            bal["available_vnd"].as_i64()
        ),
        (Some(0), Some(351_000), Some(0))
    );
    assert_eq!(trial_total(&app).await, 0);
    // The seller hears both; the ledger page and CSV list every step.
    assert_eq!(
        app.scalar(
            "SELECT COUNT(*) FROM notice_events WHERE kind IN ('payout_sent', 'payout_paid')"
        )
        .await,
        2
    );
    let (_, l) = app
        .api("GET", "/shops/man-tuyn-ba-hanh/ledger", Some(&hanh), None)
        .await;
    let kinds: Vec<&str> = l["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for k in [
        "payment_settled",
        "order_released",
        "payout_sent",
        "payout_paid",
    ] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    assert!(
        l["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["payout_code"] == code.as_str())
    );
    assert!(
        l["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["order_code"] == order.as_str())
    );
    app.login_page(HANH, PW).await;
    let page = app.page("/quan-ly/doanh-thu").await;
    assert!(
        page.contains("Bạn đã bán 360.000 ₫") && page.contains("351.000 ₫"),
        "{page}"
    );
    let csv = app
        .get("/quan-ly/doanh-thu.csv?shop=man-tuyn-ba-hanh")
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    let csv = csv.text().await.unwrap();
    assert!(csv.contains(&code) && csv.contains("351000"), "{csv}");
    // The admin's trial balance page.
    app.login_page(cholang::demo::catalog::ADMIN_EMAIL, PW)
        .await;
    let tb = app.page("/quan-tri/so-cai").await;
    assert!(tb.contains("Tài khoản thu hộ") && tb.contains("Phí nền tảng"));
}

async fn a_payos_retry_after_5xx_or_timeout_pays_once(b: Backend) {
    for mode in [Mode::FailAfterAccepting, Mode::Slow] {
        let payos = FakePayos::start(mode).await;
        let app = app_with_payos(b, &payos, &[]).await;
        let hanh = app.api_login(HANH, PW).await;
        set_account(&app, &hanh, "man-tuyn-ba-hanh").await;
        let order = sold(&app, NET, 1).await;
        deliver(&app, &hanh, &order).await;
        let r = run(&app, "payos").await;
        let code = r["payouts"][0]["code"].as_str().unwrap().to_string();
        assert_eq!(
            r["payouts"][0]["status"], "pending",
            "{mode:?}: no trustworthy answer yet"
        );
        let last_error: Option<String> = sqlx::query_scalar("SELECT last_error FROM payouts")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        assert!(last_error.is_some(), "{mode:?}");
        // Asked again with the same idempotency key: payOS knows it, nothing is paid twice.
        follow_up(&app).await;
        let (_, p) = app
            .api("GET", &format!("/payouts/{code}"), Some(&hanh), None)
            .await;
        assert_eq!(p["status"], "sent", "{mode:?}: {p}");
        follow_up(&app).await;
        let (_, p) = app
            .api("GET", &format!("/payouts/{code}"), Some(&hanh), None)
            .await;
        assert_eq!(p["status"], "paid", "{mode:?}");
        assert_eq!(payos.created(), 1, "{mode:?}: one payout at payOS");
        assert_eq!(payos.posts(), 2, "{mode:?}: asked twice");
        let bal = balance(&app, &hanh, "man-tuyn-ba-hanh").await;
        assert_eq!(bal["paid_out_vnd"], 175_500, "{mode:?}: {bal}");
        assert_eq!(bal["in_transit_vnd"], 0);
    }
}

/// The first send reached payOS but its answer was lost; the retry is refused (payOS already
/// has that reference). The payout is looked up by its reference before it is failed: it is
/// found, followed and paid once — never failed with its money made available again.
async fn a_payos_refusal_on_a_retry_is_looked_up_before_failing(b: Backend) {
    let payos = FakePayos::start(Mode::DuplicateOnRetry).await;
    let app = app_with_payos(b, &payos, &[]).await;
    let hanh = app.api_login(HANH, PW).await;
    set_account(&app, &hanh, "man-tuyn-ba-hanh").await;
    let order = sold(&app, NET, 1).await;
    deliver(&app, &hanh, &order).await;
    let r = run(&app, "payos").await;
    let code = r["payouts"][0]["code"].as_str().unwrap().to_string();
    assert_eq!(r["payouts"][0]["status"], "pending", "{r}");
    follow_up(&app).await;
    let (_, p) = app
        .api("GET", &format!("/payouts/{code}"), Some(&hanh), None)
        .await;
    assert_eq!(
        p["status"], "sent",
        "found by its reference, not failed: {p}"
    );
    assert_eq!((payos.posts(), payos.created()), (2, 1));
    follow_up(&app).await;
    let (_, p) = app
        .api("GET", &format!("/payouts/{code}"), Some(&hanh), None)
        .await;
    assert_eq!(p["status"], "paid", "{p}");
    let bal = balance(&app, &hanh, "man-tuyn-ba-hanh").await;
    assert_eq!(
        (bal["available_vnd"].as_i64(), bal["paid_out_vnd"].as_i64()),
        (Some(0), Some(175_500)),
        "{bal}"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM ledger_journals WHERE kind = 'payout_failed'")
            .await,
        0
    );
}

async fn a_failed_payout_returns_the_money(b: Backend) {
    for mode in [Mode::TransactionFails, Mode::Refuse] {
        let payos = FakePayos::start(mode).await;
        let app = app_with_payos(b, &payos, &[]).await;
        let hanh = app.api_login(HANH, PW).await;
        set_account(&app, &hanh, "man-tuyn-ba-hanh").await;
        let order = sold(&app, NET, 1).await;
        deliver(&app, &hanh, &order).await;
        let r = run(&app, "payos").await;
        let code = r["payouts"][0]["code"].as_str().unwrap().to_string();
        follow_up(&app).await;
        let (_, p) = app
            .api("GET", &format!("/payouts/{code}"), Some(&hanh), None)
            .await;
        assert_eq!(p["status"], "failed", "{mode:?}: {p}");
        let bal = balance(&app, &hanh, "man-tuyn-ba-hanh").await;
        assert_eq!(
            (
                bal["available_vnd"].as_i64(),
                bal["in_transit_vnd"].as_i64(),
                bal["paid_out_vnd"].as_i64()
            ),
            (Some(175_500), Some(0), Some(0)),
            "{mode:?}: the money is back"
        );
        // The seller and the admins are told.
        app.notifier().run_once().await.unwrap();
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM notices WHERE kind = 'payout_failed' AND recipient = 'admin@cholang.local'").await,
            1,
            "{mode:?}"
        );
        assert_eq!(
            app.scalar(
                "SELECT COUNT(*) FROM notices WHERE kind = 'payout_failed' AND shop_id IS NOT NULL"
            )
            .await,
            1,
            "{mode:?}"
        );
        // The next run pays it again, under a new code.
        let again = run(&app, "bank_app").await;
        assert_eq!(again["payouts"][0]["amount_vnd"], 175_500);
        assert_ne!(again["payouts"][0]["code"], code.as_str());
    }
}

async fn bank_app_payouts_confirmed_by_the_bank_feed(b: Backend) {
    let app = TestApp::with_demo_and(b, &[("PAYOUT_ACCOUNT_HOLD_HOURS", "0")]).await;
    let hanh = app.api_login(HANH, PW).await;
    let duc = app.api_login(DUC, PW).await;
    set_account(&app, &hanh, "man-tuyn-ba-hanh").await;
    set_account(&app, &duc, "do-go-minh-duc").await;
    let o1 = sold(&app, NET, 1).await;
    let o2 = sold(&app, "ghe-dau-go-xoan", 1).await; // 120.000 ₫
    deliver(&app, &hanh, &o1).await;
    deliver(&app, &duc, &o2).await;
    let r = run(&app, "bank_app").await;
    let payouts = r["payouts"].as_array().unwrap();
    assert_eq!(payouts.len(), 2, "{r}");
    let of = |slug: &str| {
        payouts
            .iter()
            .find(|p| p["shop"]["slug"] == slug)
            .unwrap()
            .clone()
    };
    let (p1, p2) = (of("man-tuyn-ba-hanh"), of("do-go-minh-duc"));
    assert_eq!(p1["status"], "pending");
    // The QR carries the shop's account, the exact amount and the code.
    let qr = cholang::payments::vietqr::parse(p1["vietqr_payload"].as_str().unwrap()).unwrap();
    assert_eq!(qr.bin, "970436");
    assert_eq!(qr.account, "0011001234567");
    assert_eq!(qr.amount, Some(180_000));
    assert!(qr.purpose.unwrap().contains(p1["code"].as_str().unwrap()));
    let run_code = r["code"].as_str().unwrap();
    app.login_page(cholang::demo::catalog::ADMIN_EMAIL, PW)
        .await;
    let page = app.page(&format!("/quan-tri/chi-tra/{run_code}")).await;
    assert!(page.contains("<svg") && page.contains(p1["code"].as_str().unwrap()));
    let csv = app
        .get(&format!("/quan-tri/chi-tra/{run_code}/tai-ve.csv"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        csv.contains(&format!(
            "0011001234567,NGUYEN THI HANH,970436,VCB,180000,CHO LANG {}",
            p1["code"].as_str().unwrap()
        )),
        "{csv}"
    );
    // The treasurer pays p1 from the bank app: the feed reports the money leaving.
    let out = app
        .bank_webhook(&json!({"id": "OUT1", "amount": -180_000, "description": format!("MBVCB.99 {} chuyen tien", p1["code"].as_str().unwrap().to_lowercase()), "account_number": "1017595600"}))
        .await;
    assert_eq!(out.status(), StatusCode::OK);
    let (_, v) = app
        .api(
            "GET",
            &format!("/payouts/{}", p1["code"].as_str().unwrap()),
            Some(&hanh),
            None,
        )
        .await;
    assert_eq!(v["status"], "paid");
    assert_eq!(v["bank_reference"], "OUT1");
    // p2 with another amount is flagged, not confirmed.
    app.bank_webhook(&json!({"id": "OUT2", "amount": -100_000, "description": p2["code"], "account_number": "1017595600"}))
        .await;
    let (_, v) = app
        .api(
            "GET",
            &format!("/payouts/{}", p2["code"].as_str().unwrap()),
            Some(&duc),
            None,
        )
        .await;
    assert_eq!(v["status"], "pending");
    assert!(v["flag"].as_str().unwrap().contains("100000"), "{v}");
    // The admin records it paid with the bank's reference (audited).
    let r = app
        .submit(
            &format!("/quan-tri/chi-tra/{run_code}"),
            &format!(
                "/quan-tri/chi-tra/khoan/{}/da-chuyen",
                p2["code"].as_str().unwrap()
            ),
            &[("reference", "FT-TAY-001")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let bal = balance(&app, &duc, "do-go-minh-duc").await;
    assert_eq!(bal["paid_out_vnd"], 120_000);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'payout_marked_paid'")
            .await,
        1
    );
    assert_eq!(trial_total(&app).await, 0);
}

async fn refunds_and_runs_racing_leave_one_payout_and_no_negative_balance(b: Backend) {
    let app = Arc::new(TestApp::with_demo_and(b, &[("PAYOUT_ACCOUNT_HOLD_HOURS", "0")]).await);
    let hanh = app.api_login(HANH, PW).await;
    set_account(&app, &hanh, "man-tuyn-ba-hanh").await;
    let first = sold(&app, NET, 1).await;
    deliver(&app, &hanh, &first).await;
    let second = sold(&app, NET, 1).await;
    deliver(&app, &hanh, &second).await;
    let admin = admin(&app).await;
    // Two runs and a return of a delivered order, all at once.
    let mut tasks = Vec::new();
    for n in 0..3 {
        let (app, admin, order) = (app.clone(), admin.clone(), second.clone());
        tasks.push(tokio::spawn(async move {
            if n == 2 {
                let (s, v) = transition(&app, &admin, &order, "cancelled").await;
                assert_eq!(s, StatusCode::OK, "{v}");
            } else {
                let (s, v) = app
                    .api(
                        "POST",
                        "/payout-runs",
                        Some(&admin),
                        Some(json!({"method": "bank_app"})),
                    )
                    .await;
                assert!(
                    s == StatusCode::CREATED || s == StatusCode::CONFLICT,
                    "{s}: {v}"
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM payout_runs").await,
        1,
        "one run, no empty one"
    );
    let open = app
        .scalar("SELECT COUNT(*) FROM payouts WHERE status IN ('pending', 'sent')")
        .await;
    assert_eq!(open, 1, "one payout for the shop");
    let bal = balance(&app, &hanh, "man-tuyn-ba-hanh").await;
    let (avail, transit, owed) = (
        bal["available_vnd"].as_i64().unwrap(),
        bal["in_transit_vnd"].as_i64().unwrap(),
        bal["owed_vnd"].as_i64().unwrap(),
    );
    assert!(avail >= 0, "{bal}");
    // Whatever the order, 360.000 released minus the 180.000 return stays accounted for.
    assert_eq!(avail + transit - owed, 180_000, "{bal}");
    // The order's money is owed back to the buyer; the shop's next releases pay any debt.
    let status: String = sqlx::query_scalar("SELECT status FROM orders WHERE code = $1")
        .bind(second.clone())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "refund_due");
    if owed > 0 {
        let third = sold(&app, NET, 1).await;
        deliver(&app, &hanh, &third).await;
        let bal = balance(&app, &hanh, "man-tuyn-ba-hanh").await;
        assert_eq!(bal["owed_vnd"], 0, "netted: {bal}");
        assert_eq!(bal["available_vnd"], 0);
    }
}

async fn payout_account_change_needs_the_password_holds_and_tells(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let hanh = app.api_login(HANH, PW).await;
    let put = |body: Value| {
        let (app, hanh) = (&app, hanh.clone());
        async move {
            app.api(
                "PUT",
                "/shops/man-tuyn-ba-hanh/payout-account",
                Some(&hanh),
                Some(body),
            )
            .await
        }
    };
    let (s, e) = put(json!({"bank_bin": "970436", "account_no": "0011001234567", "account_name": "NGUYEN THI HANH", "password": "sai-mat-khau"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e["error"]["fields"]["password"].is_string(), "{e}");
    let (s, e) = put(
        json!({"bank_bin": "123456", "account_no": "12ab", "account_name": "N", "password": PW}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    for f in ["bank_bin", "account_no", "account_name"] {
        assert!(e["error"]["fields"][f].is_string(), "{f}: {e}");
    }
    // Another seller cannot touch it.
    let duc = app.api_login(DUC, PW).await;
    let (s, _) = app
        .api("PUT", "/shops/man-tuyn-ba-hanh/payout-account", Some(&duc), Some(json!({"bank_bin": "970436", "account_no": "0011001234567", "account_name": "LE MINH DUC", "password": PW})))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let before = cholang::domain::now_ms();
    let (s, v) = put(json!({"bank_bin": "970436", "account_no": "0011001234567", "account_name": "Nguyễn Thị Hạnh", "password": PW})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let hold = v["hold_until"].as_i64().unwrap();
    assert!(
        (hold - before - 24 * 3_600_000).abs() < 60_000,
        "held 24 h: {v}"
    );
    assert_eq!(v["account"]["account_name"], "NGUYEN THI HANH");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'payout_account_changed'")
            .await,
        1
    );
    // Every channel of the shop hears of it.
    app.notifier().run_once().await.unwrap();
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM notices WHERE kind = 'payout_account_changed' AND recipient = 'hanh.phudoi@example.vn'").await,
        1
    );
    // Money is there, but the run waits for the hold, and says so.
    let order = sold(&app, NET, 1).await;
    deliver(&app, &hanh, &order).await;
    let why = no_run(&app, "bank_app").await;
    assert!(
        why.contains("Màn tuyn Bà Hạnh") && why.contains("thời gian chờ"),
        "{why}"
    );
    sqlx::query("UPDATE shops SET payout_hold_until = $1 WHERE slug = 'man-tuyn-ba-hanh'")
        .bind(cholang::domain::now_ms() - 1)
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        run(&app, "bank_app").await["payouts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Below PAYOUT_MIN_VND (50.000 ₫) nothing is paid; payOS is not configured here.
    let admin = admin(&app).await;
    let (s, e) = app
        .api(
            "POST",
            "/payout-runs",
            Some(&admin),
            Some(json!({"method": "payos"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (s, _) = app
        .api(
            "POST",
            "/payout-runs",
            Some(&hanh),
            Some(json!({"method": "bank_app"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

async fn a_database_from_before_the_ledger_is_backfilled(b: Backend) {
    // No housekeeping beside the server: its release sweep, seeing received orders without a
    // release while this test rewinds the database, would post their releases before the
    // backfill does (an old database is migrated by a starting process, not under a running
    // one).
    let app = TestApp::with_demo_and(
        b,
        &[("PAYOUT_ACCOUNT_HOLD_HOURS", "0"), ("HOUSEKEEPING", "off")],
    )
    .await;
    let hanh = app.api_login(HANH, PW).await;
    let delivered = sold(&app, NET, 2).await;
    deliver(&app, &hanh, &delivered).await;
    let _paid = sold(&app, "man-tuyn-1m6-x-2m", 1).await;
    let returned = sold(&app, "man-chup-tu-bung-2m2", 1).await;
    let (s, _) = transition(&app, &hanh, &returned, "cancelled").await;
    assert_eq!(s, StatusCode::OK);
    app.transfer(77_000, "chuyen nham khong co ma").await;
    let (_, c) = app.checkout(&[("ghe-dau-go-xoan", 1)]).await;
    app.transfer(200_000, c["payment"]["code"].as_str().unwrap())
        .await; // overpaid by 80.000
    let expected = balance(&app, &hanh, "man-tuyn-ba-hanh").await;
    let admin_t = admin(&app).await;
    let (_, tb_before) = app
        .api("GET", "/ledger/trial-balance", Some(&admin_t), None)
        .await;
    // As if the database came from before the ledger: no journals, no backfill mark. The
    // ledger refuses deletes, so its guards are lifted for this and put back after.
    let ledger_rows = "DELETE FROM ledger_journals";
    assert!(
        sqlx::query(ledger_rows)
            .execute(&app.db.pool)
            .await
            .is_err(),
        "the ledger is append-only"
    );
    lift_ledger_guards(&app, b).await;
    for sql in [
        "DELETE FROM ledger_entries",
        "DELETE FROM ledger_journals",
        "DELETE FROM data_migrations",
        "UPDATE orders SET released_at = NULL",
    ] {
        sqlx::query(sql).execute(&app.db.pool).await.unwrap();
    }
    restore_ledger_guards(&app, b).await;
    // Two instances starting at once: the journals are posted once.
    let (a, b2) = tokio::join!(
        cholang::app::prepare(&app.db, &app.config),
        cholang::app::prepare(&app.db, &app.config)
    );
    a.unwrap();
    b2.unwrap();
    assert_eq!(balance(&app, &hanh, "man-tuyn-ba-hanh").await, expected);
    let (_, tb_after) = app
        .api("GET", "/ledger/trial-balance", Some(&admin_t), None)
        .await;
    assert_eq!(tb_after, tb_before);
    assert!(
        sqlx::query(ledger_rows)
            .execute(&app.db.pool)
            .await
            .is_err(),
        "the guards are back"
    );
    // Running it again changes nothing.
    let journals = app.scalar("SELECT COUNT(*) FROM ledger_journals").await;
    cholang::app::prepare(&app.db, &app.config).await.unwrap();
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM ledger_journals").await,
        journals
    );
}

/// The append-only triggers of migration 0015 (SQLite: dropped; PostgreSQL: disabled).
const APPEND_ONLY: [&str; 4] = [
    "ledger_journals_no_update",
    "ledger_journals_no_delete",
    "ledger_entries_no_update",
    "ledger_entries_no_delete",
];

async fn lift_ledger_guards(app: &TestApp, b: Backend) {
    let sql: Vec<String> = match b {
        Backend::Sqlite => APPEND_ONLY
            .iter()
            .map(|t| format!("DROP TRIGGER {t}"))
            .collect(),
        Backend::Postgres => vec![
            "ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only".into(),
            "ALTER TABLE ledger_journals DISABLE TRIGGER ledger_journals_append_only".into(),
        ],
    };
    // One connection for all of them: a pooled SQLite connection may still read the schema
    // from before another connection's change.
    let mut conn = app.db.pool.acquire().await.unwrap();
    for q in sql {
        sqlx::query(sqlx::AssertSqlSafe(q))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
}

/// Put the guards back exactly as the migration wrote them.
async fn restore_ledger_guards(app: &TestApp, b: Backend) {
    let sql: Vec<String> = match b {
        Backend::Sqlite => {
            let file = include_str!("../../migrations/schema/0015_ledger_guards.sql");
            APPEND_ONLY
                .iter()
                .map(|t| {
                    let start = file.find(&format!("CREATE TRIGGER {t} ")).unwrap();
                    let end = start + file[start..].find("END;").unwrap() + 4;
                    file[start..end].to_string()
                })
                .collect()
        }
        Backend::Postgres => vec![
            "ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_append_only".into(),
            "ALTER TABLE ledger_journals ENABLE TRIGGER ledger_journals_append_only".into(),
        ],
    };
    use sqlx::Connection as _;
    // A fresh connection: it reads the schema as it is now, the triggers dropped.
    let mut conn = sqlx::AnyConnection::connect(&app.config.database_url)
        .await
        .unwrap();
    for q in sql {
        sqlx::raw_sql(sqlx::AssertSqlSafe(q))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

async fn sellers_move_orders_over_the_api(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let hanh = app.api_login(HANH, PW).await;
    let order = sold(&app, NET, 1).await;
    let (s, v) = app
        .api("GET", "/orders?status=paid", Some(&hanh), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let codes: Vec<&str> = v["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, vec![order.as_str()]);
    let (s, v) = app
        .api("GET", "/orders?status=lost", Some(&hanh), None)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // Another seller sees none of it and moves nothing.
    let duc = app.api_login(DUC, PW).await;
    let (_, v) = app.api("GET", "/orders", Some(&duc), None).await;
    assert!(
        v["orders"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["code"] != order.as_str())
    );
    let (s, _) = transition(&app, &duc, &order, "accepted").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = transition(&app, &hanh, &order, "delivered").await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, v) = transition(&app, &hanh, &order, "paid").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = transition(&app, &hanh, &order, "accepted").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["order"]["status"], "accepted");
}

/// Post a journal straight into the database (as a bug or a hand-run script would).
async fn raw_journal(app: &TestApp, key: &str, postings: Value) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO ledger_journals (kind, memo, at, event_key, postings) VALUES ('test', '', 0, $1, $2) RETURNING id",
    )
    .bind(key.to_string())
    .bind(postings.to_string())
    .fetch_one(&app.db.pool)
    .await
}

/// The database refuses what the ledger's rules forbid, whatever the code does: a journal
/// that does not balance, entries beside a journal's postings, a second journal for the same
/// event, any change or removal of a ledger row. And the check every test runs at its end
/// (and housekeeping in production) is not vacuous: it sees each sign rule broken by a
/// balanced journal.
async fn the_ledger_check_catches_what_it_guards(b: Backend) {
    let app = TestApp::with_demo(b).await;
    sold(&app, NET, 1).await;
    assert!(
        cholang::ledger::store::check_invariants(&app.db)
            .await
            .unwrap()
            .is_empty()
    );
    let shop: i64 = app
        .scalar("SELECT id FROM shops WHERE slug = 'man-tuyn-ba-hanh'")
        .await;
    let journals = app.scalar("SELECT COUNT(*) FROM ledger_journals").await;
    let entries = app.scalar("SELECT COUNT(*) FROM ledger_entries").await;
    // Refused by the database.
    for (what, postings) in [
        (
            "unbalanced",
            json!([{"account": "shop_available", "amount": 5, "shop": shop}]),
        ),
        ("empty", json!([])),
        (
            "a zero line",
            json!([{"account": "collect", "amount": 0}, {"account": "fees", "amount": 0}]),
        ),
        (
            "a fraction",
            json!([{"account": "collect", "amount": 1.5}, {"account": "fees", "amount": -1.5}]),
        ),
        (
            "no account",
            json!([{"account": "nowhere", "amount": 5}, {"account": "fees", "amount": -5}]),
        ),
    ] {
        assert!(
            raw_journal(&app, &format!("test:{what}"), postings)
                .await
                .is_err(),
            "{what}"
        );
    }
    let key_missing = sqlx::query(
        "INSERT INTO ledger_journals (kind, memo, at, postings) VALUES ('test', '', 0, '[{\"account\":\"fees\",\"amount\":1},{\"account\":\"collect\",\"amount\":-1}]')",
    )
    .execute(&app.db.pool)
    .await;
    assert!(key_missing.is_err(), "a journal names its event");
    let settle_key: String =
        sqlx::query_scalar("SELECT event_key FROM ledger_journals WHERE kind = 'payment_settled'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(settle_key.starts_with("settle:payment:"), "{settle_key}");
    assert!(
        raw_journal(
            &app,
            &settle_key,
            json!([{"account": "fees", "amount": 1}, {"account": "collect", "amount": -1}])
        )
        .await
        .is_err(),
        "the same event twice"
    );
    let jid: i64 = sqlx::query_scalar("SELECT MIN(id) FROM ledger_journals")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    for sql in [
        "UPDATE ledger_entries SET amount_vnd = amount_vnd + 1",
        "DELETE FROM ledger_entries",
        "UPDATE ledger_journals SET memo = 'changed'",
        "DELETE FROM ledger_journals",
    ] {
        assert!(
            sqlx::query(sql).execute(&app.db.pool).await.is_err(),
            "{sql}"
        );
    }
    let extra = sqlx::query(
        "INSERT INTO ledger_entries (journal_id, account, amount_vnd) VALUES ($1, 'collect', -5)",
    )
    .bind(jid)
    .execute(&app.db.pool)
    .await;
    assert!(extra.is_err(), "no entry beside a journal's postings");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM ledger_journals").await,
        journals
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM ledger_entries").await,
        entries
    );
    // Balanced journals the database accepts but the sign rules catch, each alone.
    let cases = [
        (
            "shop_available below zero",
            json!([{"account": "shop_available", "amount": 5, "shop": shop}, {"account": "suspense", "amount": -5}]),
        ),
        (
            "refunds_due on the wrong side",
            json!([{"account": "refunds_due", "amount": 7}, {"account": "suspense", "amount": -7}]),
        ),
        (
            "shop_pending on the wrong side",
            json!([{"account": "shop_pending", "amount": 200000, "shop": shop}, {"account": "suspense", "amount": -200000}]),
        ),
        (
            "suspense on the wrong side",
            json!([{"account": "suspense", "amount": 9}, {"account": "fees", "amount": -9}]),
        ),
        (
            "shop_in_transit on the wrong side",
            json!([{"account": "shop_in_transit", "amount": 3, "shop": shop}, {"account": "suspense", "amount": -3}]),
        ),
        (
            "shop_owed on the wrong side",
            json!([{"account": "shop_owed", "amount": -4, "shop": shop}, {"account": "fees", "amount": 4}]),
        ),
    ];
    for (n, (rule, postings)) in cases.iter().enumerate() {
        raw_journal(&app, &format!("test:break:{n}"), postings.clone())
            .await
            .unwrap();
        let broken = cholang::ledger::store::check_invariants(&app.db)
            .await
            .unwrap();
        assert_eq!(broken.len(), 1, "{rule}: {broken:?}");
        assert!(broken[0].starts_with(rule), "{rule}: {broken:?}");
        // A correction is a new journal, never an edit.
        let reversed: Vec<Value> = postings
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let mut p = p.clone();
                p["amount"] = json!(-p["amount"].as_i64().unwrap());
                p
            })
            .collect();
        raw_journal(&app, &format!("test:reverse:{n}"), Value::Array(reversed))
            .await
            .unwrap();
        assert!(
            cholang::ledger::store::check_invariants(&app.db)
                .await
                .unwrap()
                .is_empty(),
            "{rule} reversed"
        );
    }
    // Money out that the bank feed never reported: the collecting account disagrees (and,
    // here, goes below zero).
    raw_journal(
        &app,
        "test:collect",
        json!([{"account": "collect", "amount": -400000}, {"account": "fees", "amount": 400000}]),
    )
    .await
    .unwrap();
    let broken = cholang::ledger::store::check_invariants(&app.db)
        .await
        .unwrap();
    assert!(
        broken.iter().any(|b| b.starts_with("collect below zero")),
        "{broken:?}"
    );
    assert!(
        broken.iter().any(|b| b.contains("money in − money out")),
        "{broken:?}"
    );
    raw_journal(
        &app,
        "test:collect:reverse",
        json!([{"account": "collect", "amount": 400000}, {"account": "fees", "amount": -400000}]),
    )
    .await
    .unwrap();
    assert!(
        cholang::ledger::store::check_invariants(&app.db)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn shipped_orders_are_released_after_the_waiting_days(b: Backend) {
    let app = TestApp::with_demo_and(
        b,
        &[("SHIPPED_RELEASE_DAYS", "7"), ("PLATFORM_FEE_BPS", "100")],
    )
    .await;
    let hanh = app.api_login(HANH, PW).await;
    let order = sold(&app, NET, 1).await;
    for to in ["accepted", "shipped"] {
        let (s, v) = transition(&app, &hanh, &order, to).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    // The sweep's clock is passed in (the test hook): six days after shipping, still pending.
    let now = cholang::domain::now_ms();
    let sweep = |at: i64| cholang::protection::store::sweep(&app.db, &app.config, at);
    assert_eq!(sweep(now + 6 * 86_400_000).await.unwrap(), 0);
    assert_eq!(
        balance(&app, &hanh, "man-tuyn-ba-hanh").await["pending_vnd"],
        180_000
    );
    // Seven days: released once, less 1 % (1.800 ₫); delivery later changes nothing more.
    assert_eq!(sweep(now + 7 * 86_400_000 + 1_000).await.unwrap(), 1);
    assert_eq!(sweep(now + 7 * 86_400_000 + 1_000).await.unwrap(), 0);
    let (s, _) = transition(&app, &hanh, &order, "delivered").await;
    assert_eq!(s, StatusCode::OK);
    let bal = balance(&app, &hanh, "man-tuyn-ba-hanh").await;
    assert_eq!(
        (
            bal["pending_vnd"].as_i64(),
            bal["available_vnd"].as_i64(),
            bal["fees_vnd"].as_i64()
        ),
        (Some(0), Some(178_200), Some(1_800)),
        "{bal}"
    );
}

/// Once payOS accepted a payout, a look-up answered with an error says nothing about the
/// money: the payout stays in transit (failing it would make the money available twice).
async fn a_refused_lookup_never_fails_an_accepted_payout(b: Backend) {
    let payos = FakePayos::start(Mode::LookupRefused).await;
    let app = app_with_payos(b, &payos, &[]).await;
    let hanh = app.api_login(HANH, PW).await;
    set_account(&app, &hanh, "man-tuyn-ba-hanh").await;
    let order = sold(&app, NET, 1).await;
    deliver(&app, &hanh, &order).await;
    let r = run(&app, "payos").await;
    let code = r["payouts"][0]["code"].as_str().unwrap().to_string();
    assert_eq!(r["payouts"][0]["status"], "sent");
    follow_up(&app).await;
    follow_up(&app).await;
    let (_, p) = app
        .api("GET", &format!("/payouts/{code}"), Some(&hanh), None)
        .await;
    assert_eq!(p["status"], "sent", "{p}");
    let bal = balance(&app, &hanh, "man-tuyn-ba-hanh").await;
    assert_eq!(
        (
            bal["in_transit_vnd"].as_i64(),
            bal["available_vnd"].as_i64()
        ),
        (Some(175_500), Some(0))
    );
}

async fn outflows(app: &TestApp, admin: &str) -> Vec<Value> {
    let (s, v) = app.api("GET", "/reconciliation", Some(admin), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["unexplained_outflows"].as_array().unwrap().clone()
}

async fn explain(app: &TestApp, token: &str, id: i64, body: Value) -> (StatusCode, Value) {
    app.api(
        "POST",
        &format!("/transactions/{id}/explain"),
        Some(token),
        Some(body),
    )
    .await
}

async fn money_out_that_nothing_explains_waits_for_the_admin(b: Backend) {
    let app = TestApp::with_demo_and(b, &[("PAYOUT_ACCOUNT_HOLD_HOURS", "0")]).await;
    let hanh = app.api_login(HANH, PW).await;
    let admin = admin(&app).await;
    set_account(&app, &hanh, "man-tuyn-ba-hanh").await;
    // Another shop's sale waits in the collecting account (a bank account never goes below
    // zero: the second transfer out below is paid from it).
    sold(&app, "ghe-dau-go-xoan", 2).await;
    let o1 = sold(&app, NET, 1).await;
    deliver(&app, &hanh, &o1).await;
    let r = run(&app, "bank_app").await;
    let p1 = r["payouts"][0]["code"].as_str().unwrap().to_string();
    let amount = r["payouts"][0]["amount_vnd"].as_i64().unwrap();
    assert_eq!(amount, 180_000);
    // The treasurer pays it from the bank app, then — unsure it went — pays it again.
    for id in ["OUT1", "OUT1-AGAIN"] {
        let out = app
            .bank_webhook(&json!({"id": id, "amount": -amount, "description": format!("CHO LANG {p1}"), "account_number": "1017595600"}))
            .await;
        assert_eq!(out.status(), StatusCode::OK);
    }
    let bal = balance(&app, &hanh, "man-tuyn-ba-hanh").await;
    assert_eq!(bal["paid_out_vnd"], amount, "paid once: {bal}");
    // The second transfer waits for the admin, on the page and over the API.
    let waiting = outflows(&app, &admin).await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0]["amount_vnd"], -amount);
    assert_eq!(waiting[0]["provider_txn_id"], "OUT1-AGAIN");
    let txn = waiting[0]["id"].as_i64().unwrap();
    app.login_page(cholang::demo::catalog::ADMIN_EMAIL, PW)
        .await;
    let page = app.page("/quan-tri/doi-soat").await;
    assert!(
        page.contains("Tiền ra chưa giải thích (1)") && page.contains("-180.000"),
        "on the page"
    );
    // Explained only by an admin, with a payout of that amount that was paid.
    let (s, _) = explain(
        &app,
        &hanh,
        txn,
        json!({"as": "duplicate_payout", "payout_code": p1}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = explain(
        &app,
        &admin,
        txn,
        json!({"as": "duplicate_payout", "payout_code": "CLPONOPE"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = explain(&app, &admin, txn, json!({"as": "accounted", "note": "ok"})).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a reason is needed: {v}"
    );
    let (s, v) = explain(&app, &admin, txn, json!({"as": "maybe"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // Through the page form: a payout sent twice, the shop owes it back.
    let r = app
        .submit(
            "/quan-tri/doi-soat",
            "/quan-tri/doi-soat/tien-ra",
            &[
                ("txn_id", &txn.to_string()),
                ("as", "duplicate_payout"),
                ("payout_code", &p1.to_lowercase()),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let bal = balance(&app, &hanh, "man-tuyn-ba-hanh").await;
    assert_eq!(bal["owed_vnd"], amount, "{bal}");
    assert!(outflows(&app, &admin).await.is_empty());
    let (s, _) = explain(
        &app,
        &admin,
        txn,
        json!({"as": "duplicate_payout", "payout_code": p1}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "explained once");
    let broken = cholang::ledger::store::check_invariants(&app.db)
        .await
        .unwrap();
    assert!(broken.is_empty(), "{broken:?}");
    assert_eq!(trial_total(&app).await, 0);
    // The debt is netted at the shop's next release.
    let o2 = sold(&app, NET, 1).await;
    deliver(&app, &hanh, &o2).await;
    let bal = balance(&app, &hanh, "man-tuyn-ba-hanh").await;
    assert_eq!(bal["owed_vnd"], 0, "{bal}");
    assert_eq!(
        bal["available_vnd"], 0,
        "180.000 released, 180.000 owed: {bal}"
    );
    // Money nobody can name: written off, with the admin's words.
    app.bank_webhook(&json!({"id": "OUT9", "amount": -50_000, "description": "CK NHAM", "account_number": "1017595600"}))
        .await;
    let waiting = outflows(&app, &admin).await;
    let txn = waiting[0]["id"].as_i64().unwrap();
    let (s, v) = explain(
        &app,
        &admin,
        txn,
        json!({"as": "written_off", "note": "Chuyển nhầm, ngân hàng không hoàn"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(outflows(&app, &admin).await.is_empty());
    assert!(
        cholang::ledger::store::check_invariants(&app.db)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'outflow_explained'")
            .await,
        2
    );
}

async fn cholang_worker_follows_payouts_and_expires_payments(b: Backend) {
    let payos = FakePayos::start(Mode::Normal).await;
    // `serve` leaves housekeeping to the workers.
    let app = app_with_payos(b, &payos, &[("HOUSEKEEPING", "off")]).await;
    let hanh = app.api_login(HANH, PW).await;
    set_account(&app, &hanh, "man-tuyn-ba-hanh").await;
    let order = sold(&app, NET, 2).await;
    deliver(&app, &hanh, &order).await;
    let r = run(&app, "payos").await;
    let code = r["payouts"][0]["code"].as_str().unwrap().to_string();
    assert_eq!(r["payouts"][0]["status"], "sent");
    sqlx::query("UPDATE payouts SET next_check_at = 0 WHERE next_check_at IS NOT NULL")
        .execute(&app.db.pool)
        .await
        .unwrap();
    // An unpaid checkout past its time.
    let before = app.stock("ghe-dau-go-xoan").await;
    let (_, c) = app.checkout(&[("ghe-dau-go-xoan", 2)]).await;
    let pay = c["payment"]["code"].as_str().unwrap().to_string();
    assert_eq!(app.stock("ghe-dau-go-xoan").await, before - 2);
    sqlx::query("UPDATE payments SET expires_at = 1 WHERE code = $1")
        .bind(pay.clone())
        .execute(&app.db.pool)
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut worker = std::process::Command::new(env!("CARGO_BIN_EXE_cholang"))
        .arg("worker")
        .env("DATABASE_URL", &app.config.database_url)
        .env("CHOLANG_DATA_DIR", data.path())
        .env("PAYOS_PAYOUT_CLIENT_ID", "payout-client")
        .env("PAYOS_PAYOUT_API_KEY", "payout-api-key")
        .env("PAYOS_PAYOUT_CHECKSUM_KEY", CHECKSUM)
        .env("PAYOS_PAYOUT_API_URL", payos.url.as_str())
        .env("RUST_LOG", "warn")
        .env_remove("CHOLANG_CONFIG")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let done = loop {
        let (_, p) = app
            .api("GET", &format!("/payouts/{code}"), Some(&hanh), None)
            .await;
        let expired = app.payment(&pay).await["status"] == "expired";
        if p["status"] == "paid" && expired {
            break true;
        }
        if started.elapsed() > std::time::Duration::from_secs(30) {
            break false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let _ = worker.kill();
    let _ = worker.wait();
    assert!(
        done,
        "the worker followed the payout and expired the payment"
    );
    assert_eq!(app.stock("ghe-dau-go-xoan").await, before, "stock back");
    let bal = balance(&app, &hanh, "man-tuyn-ba-hanh").await;
    assert_eq!(bal["in_transit_vnd"], 0, "{bal}");
}

async fn a_sent_payout_reaches_the_seller_by_zalo_template(b: Backend) {
    let payos = FakePayos::start(Mode::Normal).await;
    let zalo = FakeProvider::start(|_| {
        (
            200,
            json!({"error": 0, "message": "Success", "data": {"msg_id": "zmsg-9"}}).to_string(),
        )
    })
    .await;
    let app = app_with_payos(
        b,
        &payos,
        &[
            ("ZALO_ACCESS_TOKEN", "tok-1"),
            ("ZALO_ZNS_URL", zalo.url.as_str()),
            // Zalo is on with its order-paid template; the payout one is extra.
            ("ZALO_TEMPLATE_ORDER_PAID", "2468"),
            ("ZALO_TEMPLATE_PAYOUT_SENT", "1357"),
        ],
    )
    .await;
    let hanh = app.api_login(HANH, PW).await;
    set_account(&app, &hanh, "man-tuyn-ba-hanh").await;
    let order = sold(&app, NET, 2).await;
    deliver(&app, &hanh, &order).await;
    let r = run(&app, "payos").await;
    let code = r["payouts"][0]["code"].as_str().unwrap().to_string();
    assert_eq!(r["payouts"][0]["status"], "sent");
    // Twice: the outbox sends each notice once.
    app.notifier().run_once().await.unwrap();
    app.notifier().run_once().await.unwrap();
    let sent: Vec<Value> = zalo
        .requests()
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap())
        .filter(|b| b["template_id"] == "1357")
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let z = &sent[0];
    assert_eq!(z["phone"], "84912000101", "the shop's Zalo number");
    assert_eq!(z["template_data"]["payout_code"], code.as_str());
    assert!(
        z["template_data"]["amount"]
            .as_str()
            .unwrap()
            .contains("351.000"),
        "{z}"
    );
    assert!(z["tracking_id"].as_str().unwrap().ends_with(":zalo"), "{z}");
    let request = zalo
        .requests()
        .into_iter()
        .find(|r| r.body.contains("1357"))
        .unwrap();
    assert_eq!(request.path, "/message/template");
    assert_eq!(request.headers["access_token"], "tok-1");
}

/// Issue 31, item 4: the seller's money page leads with one sentence (sold, what goes to
/// which account on which run day), then a line per order and per payout in plain words;
/// no account codes or ledger words on the page, in the CSV or its headers.
async fn the_money_page_says_what_was_sold_and_when_it_comes(b: Backend) {
    use chrono::Datelike;
    let payos = FakePayos::start(Mode::Normal).await;
    let app = app_with_payos(b, &payos, &[("PAYOUT_SCHEDULE", "wed")]).await;
    let hanh = app.api_login(HANH, PW).await;
    set_account(&app, &hanh, "man-tuyn-ba-hanh").await;
    // One order paid out, one released and waiting for the run, one still with the buyer.
    let first = sold(&app, NET, 2).await; // 360.000 ₫ less 2.5 %: 351.000 ₫
    deliver(&app, &hanh, &first).await;
    let r = run(&app, "payos").await;
    let payout = r["payouts"][0]["code"].as_str().unwrap().to_string();
    follow_up(&app).await;
    let second = sold(&app, NET, 1).await; // 175.500 ₫ after the fee
    deliver(&app, &hanh, &second).await;
    let third = sold(&app, NET, 1).await;
    for to in ["accepted", "shipped"] {
        let (s, v) = transition(&app, &hanh, &third, to).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    // The run day: a run was made today, so the next Wednesday after today (Hà Nội).
    let today = (chrono::Utc::now() + chrono::Duration::hours(7)).date_naive();
    let mut day = today + chrono::Duration::days(1);
    while day.weekday() != chrono::Weekday::Wed {
        day += chrono::Duration::days(1);
    }
    let when = format!("thứ Tư {}", day.format("%d/%m"));
    let (s, st) = app
        .api(
            "GET",
            "/shops/man-tuyn-ba-hanh/statement",
            Some(&hanh),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{st}");
    assert_eq!(st["sold_vnd"], 720_000, "{st}");
    assert_eq!(st["next_payout_vnd"], 175_500);
    assert_eq!(st["next_payout_on"], when.as_str());
    assert_eq!(st["waiting_vnd"], 180_000);
    let state_of = |code: &str| {
        st["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["code"] == code)
            .map(|l| {
                (
                    l["state"].as_str().unwrap().to_string(),
                    l["amount_vnd"].as_i64().unwrap(),
                )
            })
            .unwrap()
    };
    assert_eq!(state_of(&first), ("paid".into(), 351_000));
    assert_eq!(state_of(&second), ("next_run".into(), 175_500));
    assert_eq!(state_of(&third), ("awaiting_buyer".into(), 180_000));
    assert_eq!(state_of(&payout), ("paid".into(), 351_000));

    app.login_page(HANH, PW).await;
    let page = app.page("/quan-ly/doanh-thu").await;
    let lead =
        format!("Chợ Làng sẽ chuyển 175.500 ₫ vào Vietcombank ••••4567 trong đợt chi ngày {when}.");
    assert!(page.contains("Bạn đã bán 720.000 ₫."), "{page}");
    assert!(page.contains(&lead), "{lead} in {page}");
    assert!(page.contains("Còn 180.000 ₫ chờ người mua nhận hàng"));
    let paid_day = cholang::domain::format_vn_date(cholang::domain::now_ms());
    assert!(
        page.contains(&format!("đã chuyển ngày {paid_day}")),
        "{page}"
    );
    assert!(page.contains("sẽ chuyển đợt tới"));
    assert!(page.contains("chờ người mua nhận hàng"));
    assert!(page.contains("Chuyển vào Vietcombank ••••4567"));
    // The amount comes first on each line.
    let line = page.split("<li>").find(|l| l.contains(&second)).unwrap();
    assert!(
        line.find("175.500 ₫").unwrap() < line.find(&second).unwrap(),
        "{line}"
    );
    let csv = app
        .get("/quan-ly/doanh-thu.csv?shop=man-tuyn-ba-hanh")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        csv.trim_start_matches('\u{feff}')
            .starts_with("Ngày,Nội dung,Mã,Số tiền (₫),Tình trạng"),
        "{csv}"
    );
    for text in [&page, &csv] {
        for word in [
            "collect",
            "shop_pending",
            "shop_available",
            "đối soát",
            "Có thể rút",
            "giải ngân",
            "bút toán",
        ] {
            assert!(!text.contains(word), "{word} in {text}");
        }
    }
    // The admin keeps the whole ledger, with its movements by shop and by day.
    let admin = admin(&app).await;
    let (s, m) = app
        .api(
            "GET",
            "/ledger/movements?shop=man-tuyn-ba-hanh",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    let moves = m["movements"].as_array().unwrap();
    assert_eq!(m["total"].as_i64().unwrap() as usize, moves.len());
    let kinds: Vec<&str> = moves.iter().map(|j| j["kind"].as_str().unwrap()).collect();
    for k in [
        "payment_settled",
        "order_released",
        "payout_sent",
        "payout_paid",
    ] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    for j in moves {
        let p = j["postings"].as_array().unwrap();
        assert_eq!(
            p.iter()
                .map(|x| x["amount_vnd"].as_i64().unwrap())
                .sum::<i64>(),
            0
        );
        assert!(p.iter().any(|x| x["shop"] == "man-tuyn-ba-hanh"), "{j}");
    }
    let (_, all) = app
        .api("GET", "/ledger/movements", Some(&admin), None)
        .await;
    assert!(
        all["total"].as_i64() > m["total"].as_i64(),
        "transfers in name no shop"
    );
    let tomorrow = (today + chrono::Duration::days(1)).format("%Y-%m-%d");
    let (_, none) = app
        .api(
            "GET",
            &format!("/ledger/movements?from={tomorrow}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(none["total"], 0);
    let (s, bad) = app
        .api(
            "GET",
            "/ledger/movements?from=31/12/2026",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad["error"]["fields"]["from"].is_string(), "{bad}");
    // A day past the calendar's range is a clear 422, never a 500.
    for far in ["262142-12-31", "9999-12-31"] {
        let (s, v) = app
            .api(
                "GET",
                &format!("/ledger/movements?to={far}"),
                Some(&admin),
                None,
            )
            .await;
        assert!(
            s == StatusCode::OK || s == StatusCode::UNPROCESSABLE_ENTITY,
            "{far}: {s} {v}"
        );
    }
    let (s, _) = app.api("GET", "/ledger/movements", Some(&hanh), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    app.login_page(cholang::demo::catalog::ADMIN_EMAIL, PW)
        .await;
    let page = app
        .page(&format!(
            "/quan-tri/so-cai?shop=man-tuyn-ba-hanh&from={}",
            today.format("%Y-%m-%d")
        ))
        .await;
    assert!(
        page.contains("Các khoản tiền ra vào") && page.contains(&payout),
        "{page}"
    );
    assert!(page.contains("Tiền đơn chuyển cho cửa hàng (trừ phí)"));
}
