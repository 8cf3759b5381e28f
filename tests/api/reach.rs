//! Sellers hear about their paid orders (issue 15): a shop no channel can reach is a failure
//! the admin sees, chosen channels that cannot deliver fall back to one that can, settings say
//! what is missing, and the dashboard and header show paid orders waiting.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    a_shop_no_channel_reaches_is_shown_to_the_admin,
    paid_orders_wait_on_the_dashboard_with_a_count,
);

async fn a_shop_no_channel_reaches_is_shown_to_the_admin(b: Backend) {
    let app = TestApp::with_demo(b).await;
    // Minh Đức has no email; Bà Hạnh has one but turned email off.
    sqlx::query("UPDATE shops SET email = NULL WHERE slug = 'do-go-minh-duc'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE shops SET notify_email = 0 WHERE slug = 'man-tuyn-ba-hanh'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let (_, c) = app
        .checkout(&[("ghe-dau-go-xoan", 1), ("man-tuyn-2-cua-1m8-x-2m", 1)])
        .await;
    app.transfer(
        c["total_vnd"].as_i64().unwrap(),
        c["payment"]["code"].as_str().unwrap(),
    )
    .await;
    app.notifier().run_once().await.unwrap();
    // Bà Hạnh is still told, on the channel that can deliver.
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM notices WHERE kind = 'order_paid' AND recipient = 'hanh.phudoi@example.vn'").await,
        1
    );
    // Minh Đức cannot be reached: the admin sees it, with the shop named.
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM unreachable_notices WHERE kind = 'order_paid'")
            .await,
        1
    );
    app.login_page(cholang::demo::catalog::ADMIN_EMAIL, PW)
        .await;
    let page = app.page("/quan-tri/thong-bao").await;
    assert!(page.contains("Đồ gỗ Minh Đức</a> không nhận được đơn hàng mới đã thanh toán"));
    // Issue 31, item 14: with the shop's phone, to call instead.
    assert!(
        page.contains(
            r#"đơn hàng mới đã thanh toán — gọi <a href="tel:0912000103">0912 000 103</a>"#
        ),
        "{page}"
    );
    // A proposal reaches every Phú Đôi shop or is listed: none silently missing.
    let hanh = app.api_login(HANH, PW).await;
    let item: i64 = app
        .scalar("SELECT price_item_id FROM products WHERE slug = 'man-chup-tu-bung-2m2'")
        .await;
    let (s, p) = app
        .api(
            "POST",
            &format!("/price-items/{item}/proposals"),
            Some(&hanh),
            Some(json!({"price_vnd": 240000, "reason": "Giá vải tăng từ tháng trước"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    app.notifier().run_once().await.unwrap();
    let key = format!("proposal_opened:{}:%", p["proposal"]["id"]);
    let reached: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT shop_id) FROM notices WHERE idempotency_key LIKE $1",
    )
    .bind(key.clone())
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let listed: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM unreachable_notices WHERE event_key LIKE $1")
            .bind(key)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(reached + listed, 4, "every Phú Đôi shop told or listed");
    assert!(
        reached >= 1 && listed >= 1,
        "{reached} told, {listed} listed"
    );
    // The settings say what is missing and tick only what can deliver.
    app.login_page(DUC, PW).await;
    let form = app.page("/quan-ly/cua-hang/do-go-minh-duc").await;
    assert!(form.contains("Chưa có email"));
    assert!(form.contains("Zalo chưa bật trên Chợ Làng"));
    assert!(form.contains("Telegram chưa bật trên Chợ Làng"));
    assert!(!form.contains(r#"name="notify_zalo" value="1" checked"#));
    assert!(form.contains(r#"name="notify_zalo" value="1" disabled"#));
}

async fn paid_orders_wait_on_the_dashboard_with_a_count(b: Backend) {
    let app = TestApp::with_demo(b).await;
    app.login_page(HANH, PW).await;
    assert!(!app.page("/quan-ly").await.contains("Đơn mới ("));
    let (_, c) = app.checkout(&[("man-tuyn-2-cua-1m8-x-2m", 2)]).await;
    let order = c["orders"][0]["code"].as_str().unwrap().to_string();
    app.transfer(
        c["total_vnd"].as_i64().unwrap(),
        c["payment"]["code"].as_str().unwrap(),
    )
    .await;
    let dash = app.page("/quan-ly").await;
    assert!(dash.contains("Đơn mới (1)"), "the header counts it");
    assert!(dash.contains("Đơn mới đã thanh toán, chờ bạn nhận (1)"));
    assert!(dash.contains(&order));
    // On every page, until the seller accepts it.
    assert!(
        app.page("/lang/phu-doi/bang-gia")
            .await
            .contains("Đơn mới (1)")
    );
    let r = app
        .submit(
            "/quan-ly/don-hang",
            &format!("/quan-ly/don-hang/{order}"),
            &[("to", "accepted")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(!app.page("/quan-ly").await.contains("Đơn mới ("));
}
