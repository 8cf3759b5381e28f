//! Checkout: orders per shop on board prices, stock never oversold, the cart and payment pages.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    checkout_snapshots_board_prices_and_reserves_stock,
    bad_checkouts_are_refused_and_reserve_nothing,
    concurrent_buyers_never_oversell,
    a_buyer_checks_out_from_the_cart_on_pages,
    an_expired_payment_says_what_to_do_and_orders_again,
);

async fn checkout_snapshots_board_prices_and_reserves_stock(b: Backend) {
    let app = TestApp::with_demo(b).await;
    // The client may send prices and totals: they are ignored.
    let (s, c) = app
        .api("POST", "/checkout", None, Some(json!({
            "items": [
                {"product_slug": "man-tuyn-2-cua-1m8-x-2m", "quantity": 2, "unit_price_vnd": 1},
                {"product_slug": "ghe-dau-go-xoan", "quantity": 1, "price_vnd": 5}
            ],
            "total_vnd": 10,
            "buyer": {"name": "Chị Mai", "phone": "+84 987 654 321", "address": "12 Hàng Bông, Hà Nội", "email": "mai@example.vn"}
        })))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(c["total_vnd"], 480_000);
    let orders = c["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 2, "one order per shop");
    assert_eq!(orders[0]["shop"]["slug"], "man-tuyn-ba-hanh");
    assert_eq!(orders[0]["lines"][0]["unit_price_vnd"], 180_000);
    assert_eq!(orders[0]["total_vnd"], 360_000);
    assert_eq!(orders[1]["shop"]["slug"], "do-go-minh-duc");
    assert_eq!(orders[1]["total_vnd"], 120_000);
    let p = &c["payment"];
    let code = p["code"].as_str().unwrap().to_string();
    assert!(cholang::payments::code::PaymentCode::parse(&code).is_ok());
    assert_eq!(orders[0]["code"], format!("{code}-1"));
    assert!(p["order_code"].as_i64().unwrap() > 0);
    assert_eq!(p["method"], "vietqr");
    assert_eq!(p["amount_vnd"], 480_000);
    assert_eq!(p["description"], code.as_str());
    assert_eq!(p["bank"]["name"], "Vietcombank");
    assert_eq!(p["bank"]["account_name"], "HTX CHO LANG PHU XUYEN");
    // The QR is a valid VietQR for exactly this transfer.
    let qr = cholang::payments::vietqr::parse(p["vietqr_payload"].as_str().unwrap()).unwrap();
    assert_eq!(
        (qr.bin.as_str(), qr.account.as_str(), qr.amount),
        ("970436", "1017595600", Some(480_000))
    );
    assert_eq!(qr.purpose.as_deref(), Some(code.as_str()));
    assert!(qr.dynamic);
    assert_eq!(app.stock("man-tuyn-2-cua-1m8-x-2m").await, 38);
    assert_eq!(app.stock("ghe-dau-go-xoan").await, 24);
    let status = app.payment(&code).await;
    assert_eq!(status["status"], "pending");
    assert_eq!(status["amount_remaining_vnd"], 480_000);
    let left = status["expires_at"].as_i64().unwrap() - cholang::domain::now_ms();
    assert!(
        (29 * 60_000..=30 * 60_000).contains(&left),
        "30 minutes by default: {left}"
    );

    // The payment page and its PNG.
    let html = app.page(&format!("/pay/{code}")).await;
    for text in [
        "480.000 ₫",
        "1017595600",
        "HTX CHO LANG PHU XUYEN",
        "Vietcombank",
        "<svg",
        "Chờ chuyển khoản",
        &code,
    ] {
        assert!(html.contains(text), "payment page shows {text}");
    }
    let png = app.get(&format!("/pay/{code}/qr.png")).await;
    assert_eq!(png.headers()["content-type"], "image/png");
    let img = image::load_from_memory(&png.bytes().await.unwrap()).unwrap();
    assert!(img.width() >= 480);

    // A later price change does not touch the order: its lines are a snapshot.
    let item: i64 =
        sqlx::query_scalar("SELECT price_item_id FROM products WHERE slug = 'ghe-dau-go-xoan'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let duc = app.api_login(DUC, PW).await;
    let (_, pr) = app
        .api(
            "POST",
            &format!("/price-items/{item}/proposals"),
            Some(&duc),
            Some(json!({"price_vnd": 130000, "reason": "gỗ xoan tăng giá từ tháng 11"})),
        )
        .await;
    let admin = app.api_login(cholang::demo::catalog::ADMIN_EMAIL, PW).await;
    let (s, _) = app
        .api(
            "POST",
            &format!("/proposals/{}/approve", pr["proposal"]["id"]),
            Some(&admin),
            Some(json!({"confirm": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let line: i64 =
        sqlx::query_scalar("SELECT unit_price_vnd FROM order_lines WHERE name = 'Ghế đẩu gỗ xoan'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(line, 120_000);
    assert_eq!(app.payment(&code).await["amount_vnd"], 480_000);
}

async fn bad_checkouts_are_refused_and_reserve_nothing(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let before = app.stock("ban-tra-go-mit-1m").await;
    assert_eq!(before, 4);
    // Out of stock: 409 naming the product, nothing reserved (not even the first line).
    let (s, e) = app
        .checkout(&[("ghe-dau-go-xoan", 1), ("ban-tra-go-mit-1m", 5)])
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Bàn trà gỗ mít 1m")
    );
    assert_eq!(app.stock("ghe-dau-go-xoan").await, 25);
    assert_eq!(app.stock("ban-tra-go-mit-1m").await, 4);
    // Sold out product.
    let (s, _) = app.checkout(&[("trai-nhan-long-tuoi-2kg", 1)]).await;
    assert_eq!(s, StatusCode::CONFLICT);
    // Unknown product, bad quantity, bad buyer, disabled method: 422 naming the field.
    let (s, e) = app.checkout(&[("khong-co-san-pham-nay", 1)]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e["error"]["fields"]["items"].is_string());
    let (s, e) = app
        .api("POST", "/checkout", None, Some(json!({"items": [{"product_slug": "ghe-dau-go-xoan", "quantity": 0}], "buyer": {"name": "", "phone": "12", "address": ""}, "method": "payos"})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    for f in [
        "items[0].quantity",
        "buyer.name",
        "buyer.phone",
        "buyer.address",
    ] {
        assert!(e["error"]["fields"][f].is_string(), "{f}: {e}");
    }
    let (s, e) = app
        .api("POST", "/checkout", None, Some(json!({"items": [{"product_slug": "ghe-dau-go-xoan", "quantity": 1}], "buyer": {"name": "A", "phone": "0987654321", "address": "12 Hàng Bông"}, "method": "payos"})))
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "payOS is not configured here"
    );
    assert!(e["error"]["fields"]["method"].is_string());
    let r = app
        .client
        .post(app.url("/api/v1/checkout"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM checkouts").await, 0);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM payments").await, 0);
    assert_eq!(app.stock("ghe-dau-go-xoan").await, 25);
}

async fn concurrent_buyers_never_oversell(b: Backend) {
    let app = TestApp::with_demo(b).await;
    sqlx::query("UPDATE products SET stock = 5 WHERE slug = 'khay-tra-go-huong'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            app.checkout(&[("khay-tra-go-huong", 1)]).await.0
        }));
    }
    let mut created = 0;
    let mut conflicts = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => conflicts += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((created, conflicts), (5, 95));
    assert_eq!(app.stock("khay-tra-go-huong").await, 0);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 5);
    let reserved: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM order_lines")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(reserved, 5);
}

async fn a_buyer_checks_out_from_the_cart_on_pages(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let product = app.page("/san-pham/mat-ong-hoa-nhan-500ml").await;
    assert!(product.contains("Thêm vào giỏ"));
    let id: i64 =
        sqlx::query_scalar("SELECT id FROM products WHERE slug = 'mat-ong-hoa-nhan-500ml'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let id = id.to_string();
    for _ in 0..2 {
        let r = app
            .submit(
                "/san-pham/mat-ong-hoa-nhan-500ml",
                "/gio-hang",
                &[("product_id", &id), ("quantity", "1"), ("action", "add")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }
    let cart = app.page("/gio-hang").await;
    assert!(cart.contains("Mật ong hoa nhãn 500ml"));
    assert!(cart.contains("value=\"2\""));
    assert!(cart.contains("360.000 ₫"));
    // Inline errors keep what was typed.
    let r = app
        .submit(
            "/thanh-toan",
            "/thanh-toan",
            &[
                ("name", "Anh Tuấn"),
                ("phone", "12345"),
                ("address", "Thôn Tri Thủy, Phú Xuyên"),
                ("method", "vietqr"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("Số điện thoại di động Việt Nam không hợp lệ"));
    assert!(html.contains("Anh Tuấn"));
    assert_eq!(app.stock("mat-ong-hoa-nhan-500ml").await, 50);
    let r = app
        .submit(
            "/thanh-toan",
            "/thanh-toan",
            &[
                ("name", "Anh Tuấn"),
                ("phone", "0977 111 222"),
                ("address", "Thôn Tri Thủy, Phú Xuyên"),
                ("method", "vietqr"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = location(&r);
    assert!(to.starts_with("/pay/CL"), "{to}");
    assert_eq!(app.stock("mat-ong-hoa-nhan-500ml").await, 48);
    let pay = app.page(&to).await;
    assert!(pay.contains("360.000 ₫"));
    assert!(
        app.page("/gio-hang").await.contains("Giỏ hàng đang trống"),
        "the cart is emptied"
    );
}

/// Issue 31, item 8: the expired-payment page says what to do (do not transfer again; what
/// happens to money that still arrives) and "Đặt lại" puts the goods back in the cart.
async fn an_expired_payment_says_what_to_do_and_orders_again(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let (s, c) = app
        .checkout(&[("man-tuyn-2-cua-1m8-x-2m", 2), ("ghe-dau-go-xoan", 1)])
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let pay = c["payment"]["code"].as_str().unwrap().to_string();
    sqlx::query("UPDATE payments SET expires_at = $1 WHERE code = $2")
        .bind(cholang::domain::now_ms() - 1)
        .bind(pay.clone())
        .execute(&app.db.pool)
        .await
        .unwrap();
    cholang::payments::store::expire_due(&app.db).await.unwrap();
    let page = app.page(&format!("/pay/{pay}")).await;
    assert!(
        page.contains("Nếu bạn đã chuyển khoản, đừng chuyển lại."),
        "{page}"
    );
    assert!(page.contains(&format!(r#"action="/pay/{pay}/dat-lai""#)));
    // Without a token nothing happens; with it, the cart holds the goods again.
    let r = app.post_form(&format!("/pay/{pay}/dat-lai"), &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .submit(&format!("/pay/{pay}"), &format!("/pay/{pay}/dat-lai"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/gio-hang");
    let cart = app.page("/gio-hang").await;
    assert!(cart.contains("Màn tuyn 2 cửa 1m8 x 2m"), "{cart}");
    assert!(cart.contains("Ghế đẩu gỗ xoan"));
    assert!(
        cart.contains(r#"value="2""#),
        "the quantity comes back: {cart}"
    );
    // Unknown payments: 404.
    let r = app
        .submit(&format!("/pay/{pay}"), "/pay/CLKHONGCO/dat-lai", &[])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
