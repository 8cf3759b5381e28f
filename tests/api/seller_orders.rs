//! The seller's orders page on a phone (issue 15): tabs by status, the buyer's phone to tap,
//! cancelling apart and confirmed, shipping with carrier and tracking code shown to the buyer.

use reqwest::StatusCode;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(sellers_work_their_orders_from_tabs,);

async fn sellers_work_their_orders_from_tabs(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let (_, c) = app.checkout(&[("man-tuyn-2-cua-1m8-x-2m", 1)]).await;
    let pay = c["payment"]["code"].as_str().unwrap().to_string();
    let order = c["orders"][0]["code"].as_str().unwrap().to_string();
    app.transfer(c["total_vnd"].as_i64().unwrap(), &pay).await;
    let (_, unpaid) = app.checkout(&[("man-tuyn-1m6-x-2m", 1)]).await;
    let unpaid_order = unpaid["orders"][0]["code"].as_str().unwrap().to_string();
    app.login_page(HANH, PW).await;
    let page = app.page("/quan-ly/don-hang").await;
    assert!(page.contains("<title>Đơn hàng của cửa hàng"));
    assert!(
        page.contains(r#"aria-current="page" class="current">Mới thanh toán (1)"#),
        "new paid orders first"
    );
    assert!(
        page.contains(&order) && !page.contains(&unpaid_order),
        "only this tab's orders"
    );
    assert!(
        page.contains(r#"href="tel:0987654321""#),
        "tap to call the buyer"
    );
    assert!(
        page.contains("<summary>Hủy đơn…</summary>"),
        "cancelling is apart"
    );
    let all = app.page("/quan-ly/don-hang?tab=tat-ca").await;
    assert!(all.contains(&order) && all.contains(&unpaid_order));
    // Cancelling without ticking the confirmation changes nothing.
    let r = app
        .submit(
            "/quan-ly/don-hang",
            &format!("/quan-ly/don-hang/{order}"),
            &[("to", "cancelled")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("chưa bị hủy"));
    let status = |code: String| {
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT status FROM orders WHERE code = $1")
                .bind(code)
                .fetch_one(&db.pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(status(order.clone()).await, "paid");
    // Accept, then ship with the carrier and tracking code.
    let r = app
        .submit(
            "/quan-ly/don-hang",
            &format!("/quan-ly/don-hang/{order}"),
            &[("to", "accepted")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = app
        .submit(
            "/quan-ly/don-hang",
            &format!("/quan-ly/don-hang/{order}"),
            &[
                ("to", "shipped"),
                ("carrier", "Viettel Post"),
                ("tracking_code", "VTP123456789"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(status(order.clone()).await, "shipped");
    let page = app.page("/quan-ly/don-hang?tab=dang-giao").await;
    assert!(page.contains("Gửi qua Viettel Post · mã vận đơn VTP123456789"));
    // Issue 31, item 13: "Đã giao xong" asks whether the buyer has the goods first.
    assert!(page.contains("Người mua đã nhận hàng chưa?"));
    let r = app
        .submit(
            "/quan-ly/don-hang",
            &format!("/quan-ly/don-hang/{order}"),
            &[("to", "delivered")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("chưa được ghi là đã giao"));
    assert_eq!(status(order.clone()).await, "shipped");
    // The buyer sees it when looking the order up.
    let buyer = app.new_browser();
    let token = {
        let html = buyer
            .get(app.url("/tra-cuu-don"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        csrf_in(&html)
    };
    let r = buyer
        .post(app.url("/tra-cuu-don"))
        .form(&[
            ("csrf", token.as_str()),
            ("code", pay.as_str()),
            ("phone", "0987654321"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The purchase of one shop: its page is the order's page.
    let r = buyer.get(app.url(&location(&r))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = buyer
        .get(app.url(&location(&r)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Gửi qua Viettel Post · mã vận đơn VTP123456789"));
    assert!(html.contains(r#"<li class="done">✓ Đã gửi hàng</li>"#));
    // With the confirmation ticked, the unpaid order is cancelled.
    let r = app
        .submit(
            "/quan-ly/don-hang",
            &format!("/quan-ly/don-hang/{unpaid_order}"),
            &[("to", "cancelled"), ("confirm", "1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(status(unpaid_order).await, "cancelled");
}
