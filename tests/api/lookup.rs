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
    // The payment code under /don-hang/ leads to the lookup page (was a 404).
    let r = app.get(&format!("/don-hang/{pay}")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), format!("/tra-cuu-don?ma={pay}"));
    let form = app.page(&location(&r)).await;
    assert!(
        form.contains(&format!(r#"value="{pay}""#)),
        "code prefilled"
    );
    // Every page links to the lookup.
    assert!(app.page("/").await.contains(r#"href="/tra-cuu-don""#));
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
    assert_eq!(location(&r), format!("/tra-cuu-don/{checkout_code}"));
    let page = app.page(&location(&r)).await;
    for o in c["orders"].as_array().unwrap() {
        assert!(
            page.contains(o["code"].as_str().unwrap()),
            "both shops' orders"
        );
    }
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
    let page = app.page(&format!("/tra-cuu-don/{pay}")).await;
    assert!(
        page.contains(r#"<li class="done">✓ Thanh toán</li>"#),
        "by the payment code too"
    );
    // Another browser must give the phone.
    let other = app.new_browser();
    let r = other
        .get(app.url(&format!("/tra-cuu-don/{checkout_code}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with("/tra-cuu-don?ma="));
    // A forged cookie is worth nothing.
    let id = app.scalar("SELECT MAX(id) FROM checkouts").await;
    let r = other
        .get(app.url(&format!("/tra-cuu-don/{checkout_code}")))
        .header(
            "cookie",
            format!("cl_orders={id}.00000000000000000000000000000000"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
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
