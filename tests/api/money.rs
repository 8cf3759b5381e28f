//! Money in: signatures, exactly-once confirmation, amounts, expiry, reconciliation, and
//! the paid order reaching the seller.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    bad_signatures_are_refused_and_change_nothing,
    duplicate_deliveries_confirm_once,
    under_split_and_over_payments_add_up,
    unknown_codes_wait_for_an_admin,
    expiry_releases_stock_and_late_money_is_handled,
    paid_orders_reach_the_seller_and_move_along,
);

async fn code_of(app: &TestApp, items: &[(&str, i64)]) -> (String, i64) {
    let (s, c) = app.checkout(items).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    (
        c["payment"]["code"].as_str().unwrap().to_string(),
        c["total_vnd"].as_i64().unwrap(),
    )
}

async fn bad_signatures_are_refused_and_change_nothing(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let (code, total) = code_of(&app, &[("ghe-dau-go-xoan", 1)]).await;
    let body =
        serde_json::to_vec(&json!({"id": "FT1", "amount": total, "description": code})).unwrap();
    let now = cholang::domain::now_ms() / 1000;
    let sign = |secret: &str, t: i64, raw: &[u8]| {
        format!(
            "t={t},v1={}",
            cholang::payments::signatures::bank_sign(secret, t, raw)
        )
    };
    let send = |header: Option<String>, raw: Vec<u8>| {
        let mut r = app
            .client
            .post(app.url("/webhooks/bank"))
            .header("content-type", "application/json")
            .body(raw);
        if let Some(h) = header {
            r = r.header("x-cholang-signature", h);
        }
        r.send()
    };
    let mut tampered = body.clone();
    let pos = tampered.iter().position(|b| *b == b'1').unwrap();
    tampered[pos] = b'2';
    let cases = [
        (
            Some(sign(BANK_SECRET, now, &body)),
            tampered.clone(),
            "one byte changed",
        ),
        (
            Some(sign("wrong-key", now, &body)),
            body.clone(),
            "wrong key",
        ),
        (
            Some(sign(BANK_SECRET, now - 360, &body)),
            body.clone(),
            "stale",
        ),
        (
            Some(sign(BANK_SECRET, now + 360, &body)),
            body.clone(),
            "from the future",
        ),
        (None, body.clone(), "missing header"),
        (Some("t=abc,v1=zz".into()), body.clone(), "garbage header"),
    ];
    for (h, raw, what) in cases {
        let r = send(h, raw).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
    }
    // A valid signature over malformed JSON: 400.
    let junk = b"{\"id\": ".to_vec();
    let r = send(Some(sign(BANK_SECRET, now, &junk)), junk)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let nonint = serde_json::to_vec(&json!({"id": "FT9", "amount": 1.5})).unwrap();
    let r = send(Some(sign(BANK_SECRET, now, &nonint)), nonint)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let absurd =
        serde_json::to_vec(&json!({"id": "FT10", "amount": i64::MAX, "description": code}))
            .unwrap();
    let r = send(Some(sign(BANK_SECRET, now, &absurd)), absurd)
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "amounts beyond any real transfer are refused"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM bank_transactions").await,
        0
    );
    assert_eq!(app.payment(&code).await["status"], "pending");
    // The genuine delivery still works afterwards.
    let r = send(Some(sign(BANK_SECRET, now, &body)), body.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.payment(&code).await["status"], "paid");
}

async fn duplicate_deliveries_confirm_once(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let (code, total) = code_of(&app, &[("man-tuyn-tre-em-1m2", 2)]).await;
    let delivery = json!({"id": "FT26112800001", "amount": total,
        "description": format!("MBVCB.3278907687.{}.CT tu 0123 toi 4567", code.to_lowercase()),
        "account_number": "1017595600", "transaction_time": "2026-11-28T14:00:00Z", "reference": "FT26112800001"});
    for _ in 0..3 {
        let r = app.bank_webhook(&delivery).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    // 50 at once.
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let app = app.clone();
        let d = delivery.clone();
        tasks.push(tokio::spawn(
            async move { app.bank_webhook(&d).await.status() },
        ));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    let p = app.payment(&code).await;
    assert_eq!(p["status"], "paid");
    assert_eq!(p["amount_paid_vnd"], total, "counted once");
    assert_eq!(p["overpaid_vnd"], 0);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM bank_transactions").await,
        1
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM order_events WHERE to_status = 'paid'")
            .await,
        1
    );

    // The same 50-way race on a different transfer id for an unpaid payment also counts once.
    let (code2, total2) = code_of(&app, &[("keo-cat-canh-20cm", 1)]).await;
    let d2 = json!({"id": "FT-RACE-2", "amount": total2, "description": code2});
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let app = app.clone();
        let d = d2.clone();
        tasks.push(tokio::spawn(
            async move { app.bank_webhook(&d).await.status() },
        ));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(app.payment(&code2).await["amount_paid_vnd"], total2);
}

async fn under_split_and_over_payments_add_up(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let (code, total) = code_of(&app, &[("ban-tra-go-mit-1m", 1)]).await;
    assert_eq!(total, 1_850_000);
    app.transfer(1_000_000, &format!("Thanh toan {code} dot 1"))
        .await;
    let p = app.payment(&code).await;
    assert_eq!(
        (
            p["status"].as_str(),
            p["amount_paid_vnd"].as_i64(),
            p["amount_remaining_vnd"].as_i64()
        ),
        (Some("underpaid"), Some(1_000_000), Some(850_000))
    );
    let html = app.page(&format!("/pay/{code}")).await;
    assert!(html.contains("Đã nhận một phần") && html.contains("850.000 ₫"));
    // The QR now asks for what is missing.
    let (_, status) = app
        .api("GET", &format!("/payments/{code}"), None, None)
        .await;
    assert_eq!(status["amount_remaining_vnd"], 850_000);
    app.transfer(850_000, &format!("CL {} dot 2", &code[2..]))
        .await;
    let p = app.payment(&code).await;
    assert_eq!(
        (
            p["status"].as_str(),
            p["amount_paid_vnd"].as_i64(),
            p["amount_remaining_vnd"].as_i64()
        ),
        (Some("paid"), Some(1_850_000), Some(0))
    );

    // Paying too much: paid, with the overpayment recorded for refund.
    let (code2, total2) = code_of(&app, &[("dao-thai-inox-can-go", 1)]).await;
    app.transfer(total2 + 50_000, &code2).await;
    let p = app.payment(&code2).await;
    assert_eq!(
        (p["status"].as_str(), p["overpaid_vnd"].as_i64()),
        (Some("paid"), Some(50_000))
    );
    app.login_page(cholang::demo::catalog::ADMIN_EMAIL, PW)
        .await;
    let page = app.page("/quan-tri/doi-soat").await;
    assert!(page.contains(&code2) && page.contains("Chuyển thừa") && page.contains("50.000 ₫"));
    let r = app
        .submit(
            "/quan-tri/doi-soat",
            "/quan-tri/doi-soat/hoan-thanh-toan",
            &[("code", &code2)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = app.page("/quan-tri/doi-soat").await;
    // Audited, in Vietnamese (issue 15: no English on admin pages).
    assert!(
        page.contains("Hoàn tiền thanh toán")
            && page.contains(&format!("Thanh toán {code2}"))
            && page.contains("Đã hoàn 50.000 ₫"),
        "audited"
    );
    for english in ["refund_payment", "VND refunded", "payment:"] {
        assert!(!page.contains(english), "{english}");
    }
    let refunded: i64 = sqlx::query_scalar("SELECT refunded_vnd FROM payments WHERE code = $1")
        .bind(code2.clone())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(refunded, 50_000);
}

async fn unknown_codes_wait_for_an_admin(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let (code, total) = code_of(&app, &[("ban-le-cua-sat-ma-kem", 2)]).await;
    let out = app.transfer(total, "chuyen tien mua ban le").await;
    assert_eq!(out["outcome"]["result"], "unmatched");
    let out = app.transfer(total, "CL2345678 sai ma").await;
    assert_eq!(out["outcome"]["result"], "unmatched");
    // Outgoing money is stored but never counted.
    let out = app.transfer(-500_000, &code).await;
    assert_eq!(out["outcome"]["result"], "ignored");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM bank_transactions").await,
        3
    );
    assert_eq!(app.payment(&code).await["status"], "pending");

    // A seller may not see reconciliation.
    app.login_page(HANH, PW).await;
    assert_eq!(
        app.get("/quan-tri/doi-soat").await.status(),
        StatusCode::FORBIDDEN
    );
    app.login_page(cholang::demo::catalog::ADMIN_EMAIL, PW)
        .await;
    let dash = app.page("/quan-ly").await;
    assert!(
        dash.contains("href=\"/quan-tri/doi-soat\"")
            && dash.contains("href=\"/quan-tri/thong-bao\""),
        "admins find their pages"
    );
    let page = app.page("/quan-tri/doi-soat").await;
    assert!(page.contains("chuyen tien mua ban le"));
    let txn: i64 = sqlx::query_scalar(
        "SELECT id FROM bank_transactions WHERE description = 'chuyen tien mua ban le'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let txn_s = txn.to_string();
    let r = app
        .submit(
            "/quan-tri/doi-soat",
            "/quan-tri/doi-soat/gan",
            &[("txn_id", &txn_s), ("payment_code", &code.to_lowercase())],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.payment(&code).await["status"], "paid");
    // Assigning twice is refused; the other one is refunded by hand.
    let r = app
        .submit(
            "/quan-tri/doi-soat",
            "/quan-tri/doi-soat/gan",
            &[("txn_id", &txn_s), ("payment_code", &code)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let other: i64 = sqlx::query_scalar(
        "SELECT id FROM bank_transactions WHERE description = 'CL2345678 sai ma'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let r = app
        .submit(
            "/quan-tri/doi-soat",
            "/quan-tri/doi-soat/hoan-giao-dich",
            &[("txn_id", &other.to_string())],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM bank_transactions WHERE status = 'unmatched'")
            .await,
        0
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM audit_log").await, 2);
    let page = app.page("/quan-tri/doi-soat").await;
    assert!(page.contains("Gán giao dịch cho thanh toán") && page.contains("Hoàn giao dịch"));
    assert!(page.contains(&format!("Giao dịch #{txn}")) && page.contains("đã thanh toán"));
    for english in ["assign_transaction", "refund_transaction", "txn:", " VND"] {
        assert!(!page.contains(english), "no {english} on the admin page");
    }
    assert_eq!(
        app.payment(&code).await["amount_paid_vnd"],
        total,
        "assigned once"
    );
}

async fn expire_now(app: &TestApp, code: &str) {
    sqlx::query("UPDATE payments SET expires_at = $1 WHERE code = $2")
        .bind(cholang::domain::now_ms() - 1)
        .bind(code.to_string())
        .execute(&app.db.pool)
        .await
        .unwrap();
}

async fn expiry_releases_stock_and_late_money_is_handled(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let slug = "ke-sach-go-thong-5-tang";
    assert_eq!(app.stock(slug).await, 8);
    let (code, total) = code_of(&app, &[(slug, 3)]).await;
    assert_eq!(app.stock(slug).await, 5);
    expire_now(&app, &code).await;
    assert_eq!(
        cholang::payments::store::expire_due(&app.db).await.unwrap(),
        1
    );
    assert_eq!(
        cholang::payments::store::expire_due(&app.db).await.unwrap(),
        0,
        "once"
    );
    assert_eq!(app.stock(slug).await, 8, "stock released");
    assert_eq!(app.payment(&code).await["status"], "expired");
    assert!(
        app.page(&format!("/pay/{code}"))
            .await
            .contains("Hết hạn thanh toán")
    );
    // Late money, stock still there: paid, stock taken again.
    app.transfer(total, &code).await;
    let p = app.payment(&code).await;
    assert_eq!(p["status"], "paid");
    assert_eq!(app.stock(slug).await, 5);
    let late: i64 = sqlx::query_scalar("SELECT late FROM payments WHERE code = $1")
        .bind(code.clone())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(late, 1);

    // Late money when someone else bought the stock: refund due.
    let (code2, total2) = code_of(&app, &[(slug, 5)]).await;
    expire_now(&app, &code2).await;
    cholang::payments::store::expire_due(&app.db).await.unwrap();
    assert_eq!(app.stock(slug).await, 5);
    let (_, _) = code_of(&app, &[(slug, 4)]).await;
    app.transfer(total2, &code2).await;
    let p = app.payment(&code2).await;
    assert_eq!(p["status"], "refund_due");
    assert_eq!(app.stock(slug).await, 1, "nothing oversold");
    let st: String = sqlx::query_scalar("SELECT status FROM orders WHERE code = $1")
        .bind(format!("{code2}-1"))
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(st, "refund_due");
    app.login_page(cholang::demo::catalog::ADMIN_EMAIL, PW)
        .await;
    let page = app.page("/quan-tri/doi-soat").await;
    assert!(page.contains(&code2) && page.contains("Cần hoàn tiền"));
    let r = app
        .submit(
            "/quan-tri/doi-soat",
            "/quan-tri/doi-soat/hoan-thanh-toan",
            &[("code", &code2)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.payment(&code2).await["status"], "refunded");

    // An underpaid payment that expires owes its partial amount back.
    let (code3, _) = code_of(&app, &[("xeng-xuc-than-can-sat", 1)]).await;
    app.transfer(10_000, &code3).await;
    expire_now(&app, &code3).await;
    cholang::payments::store::expire_due(&app.db).await.unwrap();
    let p = app.payment(&code3).await;
    assert_eq!(
        (p["status"].as_str(), p["amount_paid_vnd"].as_i64()),
        (Some("refund_due"), Some(10_000))
    );
    assert_eq!(app.stock("xeng-xuc-than-can-sat").await, 35);
}

async fn paid_orders_reach_the_seller_and_move_along(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let (code, total) = code_of(&app, &[("man-chup-tu-bung-2m2", 1), ("ghe-dau-go-xoan", 2)]).await;
    let order = format!("{code}-1");
    app.login_page(HANH, PW).await;
    let list = app.page("/quan-ly/don-hang").await;
    assert!(list.contains(&order) && list.contains("Chờ thanh toán"));
    assert!(
        !list.contains("0987654321"),
        "no buyer details before payment"
    );
    app.transfer(total, &format!("{code} thanh toan")).await;
    let list = app.page("/quan-ly/don-hang").await;
    assert!(list.contains("Đã thanh toán"));
    assert!(list.contains(
        "Chị Mai · 12 Hàng Bông, Hoàn Kiếm, Hà Nội · Ghi chú: Gọi trước khi giao · <a href=\"tel:0987654321\">Gọi 0987 654 321</a>"
    ));
    assert!(list.contains("Màn chụp tự bung 2m2 × 1 chiếc (230.000 ₫)"));
    assert!(
        !list.contains("Ghế đẩu gỗ xoan"),
        "only this seller's order"
    );
    // Invalid move, another seller, then the real path.
    let r = app
        .submit(
            "/quan-ly/don-hang",
            &format!("/quan-ly/don-hang/{order}"),
            &[("to", "delivered"), ("confirm", "1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    app.login_page(DUC, PW).await;
    let r = app
        .submit(
            "/quan-ly/don-hang",
            &format!("/quan-ly/don-hang/{order}"),
            &[("to", "accepted")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    app.login_page(HANH, PW).await;
    for to in ["accepted", "shipped", "delivered"] {
        let r = app
            .submit(
                "/quan-ly/don-hang",
                &format!("/quan-ly/don-hang/{order}"),
                &[("to", to), ("confirm", "1")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{to}");
    }
    assert!(app.page("/quan-ly/don-hang").await.contains("Đã giao"));
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM order_events").await,
        5,
        "2 paid + accepted, shipped, delivered"
    );

    // Đức cancels his paid order before shipping: goods back in stock, refund owed.
    app.login_page(DUC, PW).await;
    let r = app
        .submit(
            "/quan-ly/don-hang",
            &format!("/quan-ly/don-hang/{code}-2"),
            &[("to", "cancelled"), ("confirm", "1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.stock("ghe-dau-go-xoan").await, 25);

    // The admin sees the cancelled order in reconciliation and records the refund, once.
    // An overpayment on the same payment stays visible: order refunds do not hide it.
    app.transfer(70_000, &code).await;
    app.login_page(cholang::demo::catalog::ADMIN_EMAIL, PW)
        .await;
    let page = app.page("/quan-tri/doi-soat").await;
    assert!(
        page.contains(&format!("{code}-2")) && page.contains("240.000 ₫"),
        "cancelled order listed"
    );
    let r = app
        .submit(
            "/quan-tri/doi-soat",
            "/quan-tri/doi-soat/hoan-don",
            &[("order_code", &format!("{code}-2"))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let st: String = sqlx::query_scalar("SELECT status FROM orders WHERE code = $1")
        .bind(format!("{code}-2"))
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(st, "refunded");
    let r = app
        .submit(
            "/quan-tri/doi-soat",
            "/quan-tri/doi-soat/hoan-don",
            &[("order_code", &format!("{code}-2"))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "refunded once");
    let page = app.page("/quan-tri/doi-soat").await;
    assert!(
        page.contains("Hoàn tiền đơn hàng") && page.contains("Đã hoàn 240.000 ₫"),
        "audited"
    );
    assert!(
        page.contains("Chuyển thừa") && page.contains("70.000 ₫"),
        "overpayment still shown"
    );
    let r = app
        .submit(
            "/quan-tri/doi-soat",
            "/quan-tri/doi-soat/hoan-thanh-toan",
            &[("code", &code)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let refunded: i64 = sqlx::query_scalar("SELECT refunded_vnd FROM payments WHERE code = $1")
        .bind(code.clone())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        refunded,
        240_000 + 70_000,
        "every refund of the payment: its order's and the overpayment"
    );
    let order_refunded: i64 = sqlx::query_scalar("SELECT refunded_vnd FROM orders WHERE code = $1")
        .bind(format!("{code}-2"))
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(order_refunded, 240_000);
    app.login_page(HANH, PW).await;

    // The buyer follows the order after confirming the phone number.
    let buyer = app.new_browser();
    let html = buyer
        .get(app.url(&format!("/don-hang/{order}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("Hàng Bông"));
    let token = csrf_in(&html);
    let r = buyer
        .post(app.url(&format!("/don-hang/{order}")))
        .form(&[("csrf", token.as_str()), ("phone", "0911111111")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!r.text().await.unwrap().contains("Hàng Bông"));
    let r = buyer
        .post(app.url(&format!("/don-hang/{order}")))
        .form(&[("csrf", token.as_str()), ("phone", "+84987654321")])
        .send()
        .await
        .unwrap();
    // Proven: remembered for this browser session, then the order page itself.
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = buyer
        .get(app.url(&format!("/don-hang/{order}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Đã giao") && html.contains("12 Hàng Bông") && html.contains("Đã thanh toán")
    );
}
