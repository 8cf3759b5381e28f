//! Buyers find their order again: any code they were shown and the phone once, remembered
//! for the browser session, every shop's order of the checkout with its steps.

use reqwest::StatusCode;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    buyers_find_every_order_of_a_checkout_with_any_code,
    wrong_phones_keep_what_was_typed_and_are_limited,
);

async fn buyers_find_every_order_of_a_checkout_with_any_code(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let (s, c) = app
        .checkout(&[("man-tuyn-2-cua-1m8-x-2m", 1), ("ghe-dau-go-xoan", 2)])
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let pay = c["payment"]["code"].as_str().unwrap().to_string();
    let checkout_code = c["checkout_code"].as_str().unwrap().to_string();
    // The purchase's code (the payment's, in the transfer) is the order page's address: a
    // browser that has not proved it yet is asked the phone there.
    let r = app.get(&format!("/don-hang/{pay}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let ask = r.text().await.unwrap();
    assert!(ask.contains(r#"name="phone""#), "{ask}");
    assert!(
        !ask.contains(&checkout_code),
        "the internal code is never shown"
    );
    // Old links and the look-up lead to the same page.
    let r = app.get(&format!("/tra-cuu-don/{checkout_code}")).await;
    assert_eq!(location(&r), format!("/don-hang/{pay}"));
    let form = app.page(&format!("/tra-cuu-don?ma={pay}")).await;
    assert!(
        form.contains(&format!(r#"value="{pay}""#)),
        "code prefilled"
    );
    // Lower case, spaces: still found; the phone as typed on a phone.
    let typed = pay.to_lowercase().replacen("cl", "cl ", 1);
    let r = app
        .submit(
            "/tra-cuu-don",
            "/tra-cuu-don",
            &[("code", &typed), ("phone", "0987 654 321")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), format!("/don-hang/{pay}"));
    let page = app.page(&location(&r)).await;
    for (n, o) in c["orders"].as_array().unwrap().iter().enumerate() {
        let code = o["code"].as_str().unwrap();
        assert_eq!(
            code,
            format!("{pay}-{}", n + 1),
            "each shop's order under the purchase"
        );
        assert!(
            page.contains(&format!(r#"href="/don-hang/{code}""#)),
            "both shops' orders"
        );
    }
    assert!(
        !page.contains(&checkout_code),
        "the internal code is never shown"
    );
    assert!(page.contains("Màn tuyn Bà Hạnh") && page.contains("Đồ gỗ Minh Đức"));
    assert!(
        page.contains(r#"href="tel:0912000101""#),
        "tap to call the seller"
    );
    assert!(page.contains("https://zalo.me/"));
    assert!(page.contains(r#"<li class="done">✓ Đặt hàng</li>"#));
    assert!(!page.contains(r#"<li class="done">✓ Thanh toán</li>"#));
    // Remembered for the session: the steps move on after payment, no phone asked again.
    app.transfer(c["total_vnd"].as_i64().unwrap(), &pay).await;
    let page = app.page(&format!("/don-hang/{pay}")).await;
    assert!(
        page.contains(r#"<li class="done">✓ Thanh toán</li>"#),
        "the steps move on"
    );
    // The payment page leads to the same page.
    assert!(
        app.page(&format!("/pay/{pay}"))
            .await
            .contains(&format!(r#"href="/don-hang/{pay}""#))
    );
    // A purchase from one shop: its page is that shop's order page.
    let (_, one) = app.checkout(&[("ghe-dau-go-xoan", 1)]).await;
    let one_pay = one["payment"]["code"].as_str().unwrap().to_string();
    let r = app
        .submit(
            "/tra-cuu-don",
            "/tra-cuu-don",
            &[("code", &one_pay), ("phone", "0987654321")],
        )
        .await;
    assert_eq!(location(&r), format!("/don-hang/{one_pay}"));
    let r = app.get(&format!("/don-hang/{one_pay}")).await;
    assert_eq!(location(&r), format!("/don-hang/{one_pay}-1"));
    // The carrier's tracking page is linked from the order page.
    sqlx::query("UPDATE orders SET carrier = 'GHN', tracking_code = 'GHN5XK2' WHERE code = $1")
        .bind(format!("{one_pay}-1"))
        .execute(&app.db.pool)
        .await
        .unwrap();
    let order_page = app.page(&format!("/don-hang/{one_pay}-1")).await;
    assert!(
        order_page.contains(r#"href="https://donhang.ghn.vn/?order_code=GHN5XK2""#),
        "{order_page}"
    );
    assert!(
        order_page.contains(r#"<li class="done">✓ Đặt hàng</li>"#),
        "status steps"
    );
    assert!(
        order_page.contains("Đồ gỗ Minh Đức")
            && !order_page.contains(one["checkout_code"].as_str().unwrap()),
        "{order_page}"
    );
    // The order page's phone form proves the purchase too.
    let third = app.new_browser();
    let html = third
        .get(app.url(&format!("/don-hang/{one_pay}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_in(&html);
    let r = third
        .post(app.url(&format!("/don-hang/{one_pay}")))
        .form(&[("csrf", csrf.as_str()), ("phone", "0987654321")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), format!("/don-hang/{one_pay}"));
    // Another browser must give the phone.
    let other = app.new_browser();
    let r = other
        .get(app.url(&format!("/don-hang/{pay}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        !r.text().await.unwrap().contains("Màn tuyn Bà Hạnh"),
        "nothing shown unproved"
    );
    // A forged cookie is worth nothing.
    let id = app.scalar("SELECT MAX(id) FROM checkouts").await;
    let r = other
        .get(app.url(&format!("/don-hang/{pay}")))
        .header(
            "cookie",
            format!("cl_orders={id}.00000000000000000000000000000000"),
        )
        .send()
        .await
        .unwrap();
    assert!(!r.text().await.unwrap().contains("Màn tuyn Bà Hạnh"));
}

async fn wrong_phones_keep_what_was_typed_and_are_limited(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let (_, c) = app.checkout(&[("ghe-dau-go-xoan", 1)]).await;
    let pay = c["payment"]["code"].as_str().unwrap().to_string();
    for n in 0..5 {
        let phone = format!("090000000{n}");
        let r = app
            .submit(
                "/tra-cuu-don",
                "/tra-cuu-don",
                &[("code", &pay), ("phone", &phone)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let html = r.text().await.unwrap();
        assert!(html.contains("Không tìm thấy đơn với mã và số điện thoại này"));
        assert!(
            html.contains(&format!(r#"value="{phone}""#)),
            "the typed phone stays"
        );
        assert!(html.contains(&format!(r#"value="{pay}""#)));
    }
    // The sixth guess is refused before any comparison, even the right number.
    let r = app
        .submit(
            "/tra-cuu-don",
            "/tra-cuu-don",
            &[("code", &pay), ("phone", "0987654321")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Unknown codes answer like wrong phones.
    let r = app
        .submit(
            "/tra-cuu-don",
            "/tra-cuu-don",
            &[("code", "CLZZZZZZ"), ("phone", "0987654321")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
