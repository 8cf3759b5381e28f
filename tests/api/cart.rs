//! The cart on a phone (issue 15): stock checked when adding, the message where the buyer
//! was, steppers and a remove button, the count in the header.

use reqwest::StatusCode;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(the_cart_holds_only_what_can_be_bought,);

async fn add(app: &TestApp, id: &str, q: &str) -> reqwest::Response {
    app.submit(
        "/san-pham/man-tuyn-2-cua-1m8-x-2m",
        "/gio-hang",
        &[("product_id", id), ("quantity", q), ("action", "add")],
    )
    .await
}

async fn set(app: &TestApp, id: &str, q: &str) -> reqwest::Response {
    app.submit(
        "/gio-hang",
        "/gio-hang",
        &[("product_id", id), ("quantity", q)],
    )
    .await
}

async fn the_cart_holds_only_what_can_be_bought(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let id = app
        .scalar("SELECT id FROM products WHERE slug = 'man-tuyn-2-cua-1m8-x-2m'")
        .await
        .to_string();
    // 5000, 0 and 41 of 40: refused on the product page, with what was typed kept.
    for (q, msg) in [
        ("5000", "Chỉ còn 40 chiếc"),
        ("0", "Số lượng ít nhất là 1"),
        ("41", "Chỉ còn 40 chiếc"),
        ("hai", "Số lượng phải là một số nguyên"),
    ] {
        let r = add(&app, &id, q).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{q}");
        let html = r.text().await.unwrap();
        assert!(html.contains(msg), "{q}: {msg}");
        assert!(
            html.contains("Màn tuyn 2 cửa 1m8 x 2m"),
            "still the product page"
        );
        assert!(html.contains(&format!(r#"name="quantity" value="{q}""#)));
    }
    assert!(
        !app.page("/").await.contains("Giỏ hàng ("),
        "nothing entered the cart"
    );
    // 30, then 11 more: the second is refused with what the cart already holds.
    assert_eq!(add(&app, &id, "30").await.status(), StatusCode::SEE_OTHER);
    let r = add(&app, &id, "11").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("giỏ hàng đã có 30 chiếc"));
    let cart = app.page("/gio-hang").await;
    assert!(cart.contains("Giỏ hàng (1)"), "the count in the header");
    assert!(cart.contains(r#"name="quantity" value="31""#), "+ stepper");
    assert!(cart.contains(r#"name="quantity" value="29""#), "− stepper");
    assert!(cart.contains("Bỏ khỏi giỏ"));
    // In the cart: more than the stock is refused there, − and remove work.
    let r = set(&app, &id, "45").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("Chỉ còn 40 chiếc"));
    assert_eq!(set(&app, &id, "29").await.status(), StatusCode::SEE_OTHER);
    assert!(
        app.page("/gio-hang")
            .await
            .contains(r#"name="quantity" value="29" inputmode"#)
    );
    assert_eq!(set(&app, &id, "0").await.status(), StatusCode::SEE_OTHER);
    let cart = app.page("/gio-hang").await;
    assert!(cart.contains("Giỏ hàng đang trống"));
    assert!(!cart.contains("Giỏ hàng ("));
}
