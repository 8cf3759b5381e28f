//! Casso, payOS and Stripe end to end, with local servers standing in for payOS's and
//! Stripe's APIs and asserting the requests they get.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    casso_webhook_confirms_a_payment,
    payos_link_and_webhook,
    stripe_session_and_webhook
);

async fn casso_webhook_confirms_a_payment(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let (_, c) = app.checkout(&[("hop-dung-trang-suc-kham-trai", 1)]).await;
    let code = c["payment"]["code"].as_str().unwrap().to_string();
    let body = json!({"error": 0, "data": {"id": 77001, "reference": "FT2611280077", "description": format!("NGUYEN VAN A chuyen tien {code}"),
        "amount": 380000, "runningBalance": 25000000, "transactionDateTime": "2026-11-28 15:06:37", "accountNumber": "1017595600",
        "bankName": "Vietcombank", "bankAbbreviation": "VCB", "virtualAccountNumber": "", "virtualAccountName": "",
        "counterAccountName": "NGUYEN VAN A", "counterAccountNumber": "8888888888", "counterAccountBankId": "970415", "counterAccountBankName": "VietinBank"}});
    let raw = body.to_string();
    let t = cholang::domain::now_ms();
    let sig = cholang::payments::signatures::casso_sign(CASSO_KEY, t, &body);
    let send = |header: String, raw: String| {
        app.client
            .post(app.url("/webhooks/casso"))
            .header("x-casso-signature", header)
            .body(raw)
            .send()
    };
    let r = send(format!("t={t},v1={}", "ab".repeat(64)), raw.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let old = t - 301_000;
    let old_sig = cholang::payments::signatures::casso_sign(CASSO_KEY, old, &body);
    assert_eq!(
        send(format!("t={old},v1={old_sig}"), raw.clone())
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.payment(&code).await["status"], "pending");
    for _ in 0..2 {
        let r = send(format!("t={t},v1={sig}"), raw.clone()).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let p = app.payment(&code).await;
    assert_eq!(
        (p["status"].as_str(), p["amount_paid_vnd"].as_i64()),
        (Some("paid"), Some(380_000))
    );
}

const PAYOS_KEY: &str = "payos-test-checksum-key";

async fn payos_link_and_webhook(b: Backend) {
    // payOS stands-in: checks the signed request, answers with a signed link.
    let fake = FakeProvider::start(|seen| {
        assert_eq!(seen.path, "/v2/payment-requests");
        let req: Value = serde_json::from_str(&seen.body).unwrap();
        let data = json!({"bin": "970422", "accountNumber": "113366668888", "accountName": "HTX CHO LANG", "amount": req["amount"],
            "description": req["description"], "orderCode": req["orderCode"], "currency": "VND", "paymentLinkId": "pl_abc123",
            "status": "PENDING", "checkoutUrl": "https://pay.payos.vn/web/pl_abc123",
            "qrCode": "00020101021238570010A000000727012700069704220113113366668888020899998888530370454061000005802VN62230819THANH TOAN DON HANG6304BE36"});
        let sig = cholang::payments::signatures::payos_sign(PAYOS_KEY, &data);
        (200, json!({"code": "00", "desc": "success", "data": data, "signature": sig}).to_string())
    })
    .await;
    let app = TestApp::spawn_with(
        b,
        &[
            ("PAYOS_CLIENT_ID", "client-1"),
            ("PAYOS_API_KEY", "api-key-1"),
            ("PAYOS_CHECKSUM_KEY", PAYOS_KEY),
            ("PAYOS_API_URL", &fake.url),
        ],
    )
    .await;
    cholang::demo::catalog::load_if_empty(&app.db)
        .await
        .unwrap();
    let (s, c) = app
        .api("POST", "/checkout", None, Some(json!({"items": [{"product_slug": "gao-nep-cai-hoa-vang-2kg", "quantity": 2}],
            "buyer": {"name": "Chú Bình", "phone": "0903111222", "address": "Quận 3, TP Hồ Chí Minh"}, "method": "payos"})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let p = &c["payment"];
    assert_eq!(p["method"], "payos");
    assert_eq!(p["checkout_url"], "https://pay.payos.vn/web/pl_abc123");
    assert!(
        p["vietqr_payload"]
            .as_str()
            .unwrap()
            .contains("THANH TOAN DON HANG"),
        "payOS's own QR is shown"
    );
    let code = p["code"].as_str().unwrap().to_string();
    let order_code = p["order_code"].as_i64().unwrap();

    let seen = fake.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v2/payment-requests");
    assert_eq!(seen[0].headers["x-client-id"], "client-1");
    assert_eq!(seen[0].headers["x-api-key"], "api-key-1");
    let req: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(req["orderCode"], order_code);
    assert_eq!(req["amount"], 180_000);
    assert_eq!(req["description"], code.as_str());
    assert!(
        req["description"].as_str().unwrap().len() <= 9,
        "payOS limit for unlinked accounts"
    );
    let expected = cholang::payments::signatures::payos_request_signature(
        PAYOS_KEY,
        180_000,
        req["cancelUrl"].as_str().unwrap(),
        &code,
        order_code,
        req["returnUrl"].as_str().unwrap(),
    );
    assert_eq!(req["signature"], expected.as_str());
    assert_eq!(req["items"][0]["name"], "Gạo nếp cái hoa vàng 2kg");

    // payOS's webhook, matched by orderCode even though the description lost our code.
    let data = json!({"orderCode": order_code, "amount": 180000, "description": "TT DON HANG", "accountNumber": "113366668888",
        "reference": "TF261128000001", "transactionDateTime": "2026-11-28 18:25:00", "currency": "VND", "paymentLinkId": "pl_abc123",
        "code": "00", "desc": "success", "counterAccountBankId": "", "counterAccountBankName": "", "counterAccountName": "",
        "counterAccountNumber": "", "virtualAccountName": "", "virtualAccountNumber": ""});
    let sig = cholang::payments::signatures::payos_sign(PAYOS_KEY, &data);
    let mut body =
        json!({"code": "00", "desc": "success", "success": true, "data": data, "signature": sig});
    let forged = {
        let mut f = body.clone();
        f["data"]["amount"] = json!(1_800_000);
        f
    };
    let r = app
        .client
        .post(app.url("/webhooks/payos"))
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.payment(&code).await["status"], "pending");
    for _ in 0..2 {
        let r = app
            .client
            .post(app.url("/webhooks/payos"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let st = app.payment(&code).await;
    assert_eq!(
        (st["status"].as_str(), st["amount_paid_vnd"].as_i64()),
        (Some("paid"), Some(180_000))
    );
    body["signature"] = json!("");
    let r = app
        .client
        .post(app.url("/webhooks/payos"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // payOS down: the checkout is cancelled and its stock released.
    let down = TestApp::spawn_with(
        b,
        &[
            ("PAYOS_CLIENT_ID", "c"),
            ("PAYOS_API_KEY", "k"),
            ("PAYOS_CHECKSUM_KEY", PAYOS_KEY),
            ("PAYOS_API_URL", "http://127.0.0.1:9"),
        ],
    )
    .await;
    cholang::demo::catalog::load_if_empty(&down.db)
        .await
        .unwrap();
    let (s, e) = down
        .api("POST", "/checkout", None, Some(json!({"items": [{"product_slug": "gao-nep-cai-hoa-vang-2kg", "quantity": 2}],
            "buyer": {"name": "Chú Bình", "phone": "0903111222", "address": "Quận 3, TP Hồ Chí Minh"}, "method": "payos"})))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(down.stock("gao-nep-cai-hoa-vang-2kg").await, 80);
    assert_eq!(
        down.scalar("SELECT COUNT(*) FROM orders WHERE status = 'cancelled'")
            .await,
        1
    );
}

const STRIPE_WHSEC: &str = "whsec_test_cholang";

async fn stripe_session_and_webhook(b: Backend) {
    let fake = FakeProvider::start(|seen| {
        assert_eq!(seen.path, "/v1/checkout/sessions");
        assert!(seen.body.contains("mode=payment"), "{}", seen.body);
        let session = include_str!("stripe_session.json");
        (
            200,
            session.replace("{{CLIENT_REF}}", &client_ref(&seen.body)),
        )
    })
    .await;
    let app = TestApp::spawn_with(
        b,
        &[
            ("STRIPE_SECRET_KEY", "sk_test_cholang"),
            ("STRIPE_WEBHOOK_SECRET", STRIPE_WHSEC),
            ("STRIPE_API_URL", &format!("{}/", fake.url)),
        ],
    )
    .await;
    cholang::demo::catalog::load_if_empty(&app.db)
        .await
        .unwrap();
    let (s, c) = app
        .api("POST", "/checkout", None, Some(json!({"items": [{"product_slug": "tranh-kham-trai-vinh-ha-long-60x90", "quantity": 1}],
            "buyer": {"name": "Linh Nguyen", "phone": "0912345678", "address": "Số 1 Tràng Tiền, Hà Nội", "email": "linh@example.com"}, "method": "stripe"})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let code = c["payment"]["code"].as_str().unwrap().to_string();
    assert_eq!(
        c["payment"]["checkout_url"],
        "https://checkout.stripe.com/c/pay/cs_test_cholang"
    );
    let seen = fake.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/checkout/sessions");
    assert_eq!(seen[0].headers["authorization"], "Bearer sk_test_cholang");
    let form = &seen[0].body;
    assert!(
        form.contains("currency%5D=vnd") || form.contains("currency]=vnd"),
        "{form}"
    );
    assert!(
        form.contains("unit_amount%5D=4500000") || form.contains("unit_amount]=4500000"),
        "VND is zero-decimal: {form}"
    );
    assert!(
        form.contains(&format!("client_reference_id={code}")),
        "{form}"
    );

    // checkout.session.completed, signed as Stripe does.
    let event = json!({"id": "evt_1", "object": "event", "type": "checkout.session.completed", "created": 1795880000,
        "data": {"object": {"id": "cs_test_cholang", "object": "checkout.session", "client_reference_id": code,
            "amount_total": 4500000, "currency": "vnd", "payment_status": "paid", "payment_intent": "pi_1",
            "metadata": {"payment_code": code}}}});
    let raw = event.to_string();
    let t = cholang::domain::now_ms() / 1000;
    let sig = cholang::payments::signatures::bank_sign(STRIPE_WHSEC, t, raw.as_bytes());
    let send = |h: String| {
        app.client
            .post(app.url("/webhooks/stripe"))
            .header("stripe-signature", h)
            .body(raw.clone())
            .send()
    };
    assert_eq!(
        send(format!("t={t},v0={sig}")).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(format!("t={},v1={sig}", t - 400))
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(format!("t={t},v1={},v1={sig}", "0".repeat(64)))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        send(format!("t={t},v1={sig}")).await.unwrap().status(),
        StatusCode::OK
    );
    let p = app.payment(&code).await;
    assert_eq!(
        (p["status"].as_str(), p["amount_paid_vnd"].as_i64()),
        (Some("paid"), Some(4_500_000))
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM bank_transactions WHERE provider = 'stripe'")
            .await,
        1
    );
}

fn client_ref(form: &str) -> String {
    form.split('&')
        .find_map(|kv| kv.strip_prefix("client_reference_id="))
        .unwrap_or("")
        .to_string()
}
