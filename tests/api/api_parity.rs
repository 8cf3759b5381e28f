//! Everything a page does can be done over the API with the same rules (issue 11): buyer
//! look-up, the admin's reconciliation, failed notices and retry, a shop's notice channels
//! and test notice.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    buyers_look_up_their_orders_over_the_api,
    admins_reconcile_over_the_api,
    notice_channels_test_notices_and_retries_over_the_api,
);

async fn lookup(app: &TestApp, code: &str, phone: &str) -> (StatusCode, Value) {
    app.api(
        "POST",
        "/orders/lookup",
        None,
        Some(json!({"code": code, "phone": phone})),
    )
    .await
}

async fn buyers_look_up_their_orders_over_the_api(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let (s, v) = app
        .checkout(&[("man-tuyn-1m6-x-2m", 1), ("ban-tra-go-mit-1m", 1)])
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let pay = v["payment"]["code"].as_str().unwrap().to_string();
    // The payment code (lower case, spaces) and the phone as typed on a phone.
    let typed = pay.to_lowercase().replacen("cl", "cl ", 1);
    let (s, c) = lookup(&app, &typed, "0987 654 321").await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let orders = c["checkout"]["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 2, "both shops' orders together");
    assert_eq!(c["checkout"]["payment"]["code"], pay.as_str());
    assert_eq!(c["checkout"]["payment"]["status"], "pending");
    for o in orders {
        let done = o["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["done"] == true)
            .count();
        assert_eq!(done, 1, "ordered, not paid: {o}");
        assert!(o["shop"]["phone"].as_str().unwrap().starts_with("09"));
    }
    // Paid: the timeline moves.
    let amount = v["payment"]["amount_vnd"].as_i64().unwrap();
    app.transfer(amount, &format!("CK {pay}")).await;
    let order_code = orders[0]["code"].as_str().unwrap().to_string();
    let (_, c) = lookup(&app, &order_code, "0987654321").await;
    assert_eq!(c["checkout"]["payment"]["status"], "paid");
    assert_eq!(c["checkout"]["orders"][0]["steps"][1]["done"], true, "{c}");
    // A wrong phone and an unknown code look the same; five tries lock this order out.
    let (s, e) = lookup(&app, &pay, "0900000000").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(e["error"]["code"], "not_found");
    let (s, _) = lookup(&app, "CLZZZZZZZZ", "0987654321").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for _ in 0..4 {
        lookup(&app, &pay, "0900000000").await;
    }
    let (s, e) = lookup(&app, &pay, "0987654321").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{e}");
}

async fn admins_reconcile_over_the_api(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let (_, v) = app.checkout(&[("man-tuyn-1m6-x-2m", 1)]).await;
    let pay = v["payment"]["code"].as_str().unwrap().to_string();
    let amount = v["payment"]["amount_vnd"].as_i64().unwrap();
    // Two transfers nobody can match: one is this buyer's (typo), one a stranger's.
    app.transfer(amount, "chuyen tien mua man").await;
    app.transfer(50_000, "tien ai do chuyen nham").await;
    let admin = app.api_login(cholang::demo::catalog::ADMIN_EMAIL, PW).await;
    let hanh = app.api_login(HANH, PW).await;
    let (s, _) = app.api("GET", "/reconciliation", Some(&hanh), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, r) = app.api("GET", "/reconciliation", Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let unmatched = r["unmatched_transactions"].as_array().unwrap();
    assert_eq!(unmatched.len(), 2, "{r}");
    let id_of = |amount: i64| {
        unmatched
            .iter()
            .find(|t| t["amount_vnd"] == amount)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let (buyer_txn, stranger_txn) = (id_of(amount), id_of(50_000));
    // A seller cannot assign; a wrong payment code is a field error.
    let (s, _) = app
        .api(
            "POST",
            &format!("/transactions/{buyer_txn}/assign"),
            Some(&hanh),
            Some(json!({"payment_code": pay})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, e) = app
        .api(
            "POST",
            &format!("/transactions/{buyer_txn}/assign"),
            Some(&admin),
            Some(json!({"payment_code": "CLNOPE123"})),
        )
        .await;
    assert!(s.is_client_error(), "{s} {e}");
    let (s, e) = app
        .api(
            "POST",
            &format!("/transactions/{buyer_txn}/assign"),
            Some(&admin),
            Some(json!({"payment_code": pay})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(app.payment(&pay).await["status"], "paid");
    let (s, e) = app
        .api(
            "POST",
            &format!("/transactions/{stranger_txn}/refund"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let (_, r) = app.api("GET", "/reconciliation", Some(&admin), None).await;
    assert_eq!(r["unmatched_transactions"], json!([]), "{r}");
    let audit = r["audit"].as_array().unwrap();
    assert!(audit.len() >= 2, "both recorded: {r}");
    // Cancelling the paid order leaves its money due back to the buyer; refunded over the API.
    let order = app.api("GET", "/orders", Some(&hanh), None).await.1["orders"][0]["code"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, e) = app
        .api(
            "POST",
            &format!("/orders/{order}/transitions"),
            Some(&hanh),
            Some(json!({"to": "cancelled"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let (_, r) = app.api("GET", "/reconciliation", Some(&admin), None).await;
    let due = r["orders_refund_due"].as_array().unwrap();
    assert!(due.iter().any(|o| o["code"] == order.as_str()), "{r}");
    let (s, e) = app
        .api(
            "POST",
            &format!("/orders/{order}/refund"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let (_, r) = app.api("GET", "/reconciliation", Some(&admin), None).await;
    assert_eq!(r["orders_refund_due"], json!([]), "{r}");
}

async fn notice_channels_test_notices_and_retries_over_the_api(b: Backend) {
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
    let app = TestApp::with_demo_and(
        b,
        &[("TELEGRAM_BOT_TOKEN", "1:X"), ("TELEGRAM_API_URL", &tg.url)],
    )
    .await;
    sqlx::query("UPDATE notice_events SET expanded_at = 1 WHERE expanded_at IS NULL")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let hanh = app.api_login(HANH, PW).await;
    let path = "/shops/man-tuyn-ba-hanh/notice-channels";
    let (s, v) = app.api("GET", path, Some(&hanh), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ch = |v: &Value, name: &str| {
        v["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel"] == name)
            .unwrap()
            .clone()
    };
    let tg_reach = ch(&v, "telegram");
    assert_eq!(tg_reach["can_deliver"], false);
    assert!(tg_reach["missing"].as_str().unwrap().contains("mã chat"));
    assert_eq!(ch(&v, "zalo")["missing"], "Zalo chưa bật trên Chợ Làng");
    // Another seller sees nothing of it.
    let huong = app.api_login(HUONG, PW).await;
    assert_eq!(
        app.api("GET", path, Some(&huong), None).await.0,
        StatusCode::FORBIDDEN
    );
    let (s, v) = app
        .api(
            "PATCH",
            "/shops/man-tuyn-ba-hanh",
            Some(&hanh),
            Some(json!({"telegram_chat_id": "5550001", "notify_telegram": true, "notify_email": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = app.api("GET", path, Some(&hanh), None).await;
    assert_eq!(ch(&v, "telegram")["can_deliver"], true, "{v}");
    assert_eq!(ch(&v, "telegram")["enabled"], true, "{v}");
    // A test notice, three an hour.
    let test = "/shops/man-tuyn-ba-hanh/test-notice";
    let (s, _) = app.api("POST", test, Some(&hanh), None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    app.notifier().run_once().await.unwrap();
    let n = app.notices().await;
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].2, "failed", "chat not found");
    for _ in 0..2 {
        assert_eq!(
            app.api("POST", test, Some(&hanh), None).await.0,
            StatusCode::ACCEPTED
        );
    }
    assert_eq!(
        app.api("POST", test, Some(&hanh), None).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The admin sees the failure and retries it.
    let admin = app.api_login(cholang::demo::catalog::ADMIN_EMAIL, PW).await;
    assert_eq!(
        app.api("GET", "/notices/failed", Some(&hanh), None).await.0,
        StatusCode::FORBIDDEN
    );
    let (s, v) = app.api("GET", "/notices/failed", Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK);
    let failed = v["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{v}");
    let id = failed[0]["id"].as_i64().unwrap();
    let (s, _) = app
        .api("POST", &format!("/notices/{id}/retry"), Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .api("POST", &format!("/notices/{id}/retry"), Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "queued already");
    app.notifier().run_once().await.unwrap();
    let n = app.notices().await;
    assert!(n.iter().any(|x| x.2 == "delivered"), "{n:?}");
}
