//! Each rule that once lived in a handler now lives once, in its room, and the page and the
//! API follow it alike (issue 33): a seller's moves, when buyer details show, the cart's
//! quantities and checkout's, the registration limit, the OCOP counts, origin visibility,
//! a village created with its quorum, proving a checkout by code and phone, and what a
//! refund may record.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    a_sellers_cancel_means_the_same_on_the_page_and_the_api,
    buyer_details_show_once_paid_on_the_page_and_the_api,
    the_cart_and_checkout_take_the_same_quantities,
    page_and_api_registrations_share_one_limit,
    ocop_counts_are_what_the_filter_finds_on_the_page_and_the_api,
    an_unlisted_products_origin_is_hidden_from_page_and_api,
    a_village_is_created_with_its_quorum_or_not_at_all,
    a_checkout_is_proven_alike_and_tries_count_together,
    the_refund_shown_is_the_refund_recorded,
);

/// The code of the order of `shop` in a checkout's answer.
async fn order_of(app: &TestApp, pay: &str, shop: &str) -> String {
    sqlx::query_scalar(
        "SELECT o.code FROM orders o JOIN shops s ON s.id = o.shop_id
         JOIN payments p ON p.checkout_id = o.checkout_id WHERE p.code = $1 AND s.slug = $2",
    )
    .bind(pay.to_string())
    .bind(shop.to_string())
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

async fn status_of(app: &TestApp, order: &str) -> String {
    sqlx::query_scalar("SELECT status FROM orders WHERE code = $1")
        .bind(order.to_string())
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

/// A paid checkout of one net from Bà Hạnh and one tea table from Minh Đức: (payment code,
/// Hạnh's order, Đức's order).
async fn paid_pair(app: &TestApp, pay_it: bool) -> (String, String, String) {
    let (s, v) = app
        .checkout(&[("man-tuyn-1m6-x-2m", 1), ("ban-tra-go-mit-1m", 1)])
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let pay = v["payment"]["code"].as_str().unwrap().to_string();
    if pay_it {
        let amount = v["payment"]["amount_vnd"].as_i64().unwrap();
        app.transfer(amount, &format!("CK {pay}")).await;
    }
    let hanh = order_of(app, &pay, "man-tuyn-ba-hanh").await;
    let duc = order_of(app, &pay, "do-go-minh-duc").await;
    (pay, hanh, duc)
}

async fn a_sellers_cancel_means_the_same_on_the_page_and_the_api(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let duc = app.api_login(DUC, PW).await;
    app.login_page(HANH, PW).await;
    // Unpaid: cancelling gives the goods back, nothing is owed.
    let (_, hanh_unpaid, duc_unpaid) = paid_pair(&app, false).await;
    let r = app
        .submit(
            "/quan-ly/don-hang",
            &format!("/quan-ly/don-hang/{hanh_unpaid}"),
            &[("to", "cancelled"), ("confirm", "1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (s, v) = app
        .api(
            "POST",
            &format!("/orders/{duc_unpaid}/transitions"),
            Some(&duc),
            Some(json!({"to": "cancelled"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(status_of(&app, &hanh_unpaid).await, "cancelled");
    assert_eq!(status_of(&app, &duc_unpaid).await, "cancelled");
    // Paid: the same word is the refund path on both.
    let (_, hanh_paid, duc_paid) = paid_pair(&app, true).await;
    let r = app
        .submit(
            "/quan-ly/don-hang",
            &format!("/quan-ly/don-hang/{hanh_paid}"),
            &[("to", "cancelled"), ("confirm", "1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (s, v) = app
        .api(
            "POST",
            &format!("/orders/{duc_paid}/transitions"),
            Some(&duc),
            Some(json!({"to": "cancelled"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["order"]["status"], "refund_due");
    assert_eq!(status_of(&app, &hanh_paid).await, "refund_due");
    assert_eq!(status_of(&app, &duc_paid).await, "refund_due");
    // A status that is not a seller's move is refused by both, and nothing moves.
    let (_, hanh_next, duc_next) = paid_pair(&app, true).await;
    for word in ["refund_due", "paid", "refunded"] {
        let r = app
            .submit(
                "/quan-ly/don-hang",
                &format!("/quan-ly/don-hang/{hanh_next}"),
                &[("to", word), ("confirm", "1")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "page {word}");
        let (s, v) = app
            .api(
                "POST",
                &format!("/orders/{duc_next}/transitions"),
                Some(&duc),
                Some(json!({"to": word})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "api {word}: {v}");
        assert!(v["error"]["fields"]["to"].is_string(), "{v}");
    }
    assert_eq!(status_of(&app, &hanh_next).await, "paid");
    assert_eq!(status_of(&app, &duc_next).await, "paid");
}

/// The shop's order `order` as its own order list in the API shows it.
async fn listed(app: &TestApp, token: &str, order: &str) -> Value {
    let (s, v) = app
        .api("GET", "/orders?shop=man-tuyn-ba-hanh", Some(token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["code"] == order)
        .cloned()
        .unwrap()
}

async fn buyer_details_show_once_paid_on_the_page_and_the_api(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let hanh = app.api_login(HANH, PW).await;
    app.login_page(HANH, PW).await;
    let (pay, order, _) = paid_pair(&app, false).await;
    let o = listed(&app, &hanh, &order).await;
    assert!(o.get("buyer").is_none(), "unpaid: no buyer in the API: {o}");
    assert!(o.get("id").is_none() && o.get("shop_id").is_none() && o.get("checkout_id").is_none());
    let page = app.page("/quan-ly/don-hang?tab=tat-ca").await;
    assert!(page.contains(&order), "the order is listed");
    assert!(
        !page.contains("Hàng Bông"),
        "unpaid: no address on the page"
    );
    let amount = app.payment(&pay).await["amount_vnd"].as_i64().unwrap();
    app.transfer(amount, &pay).await;
    let o = listed(&app, &hanh, &order).await;
    assert_eq!(
        o["buyer"]["address"], "12 Hàng Bông, Hoàn Kiếm, Hà Nội",
        "{o}"
    );
    assert_eq!(o["buyer"]["phone"], "0987654321");
    let page = app.page("/quan-ly/don-hang?tab=tat-ca").await;
    assert!(
        page.contains("12 Hàng Bông, Hoàn Kiếm, Hà Nội"),
        "paid: the page shows it"
    );
}

async fn add_to_cart(app: &TestApp, id: &str, q: &str) -> reqwest::Response {
    app.submit(
        "/san-pham/man-tuyn-2-cua-1m8-x-2m",
        "/gio-hang",
        &[("product_id", id), ("quantity", q), ("action", "add")],
    )
    .await
}

async fn the_cart_and_checkout_take_the_same_quantities(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let slug = "man-tuyn-2-cua-1m8-x-2m";
    let id = app
        .scalar("SELECT id FROM products WHERE slug = 'man-tuyn-2-cua-1m8-x-2m'")
        .await
        .to_string();
    // More than the 40 in stock: refused by both.
    assert_eq!(
        add_to_cart(&app, &id, "41").await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (s, v) = app.checkout(&[(slug, 41)]).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("chỉ còn 40")
    );
    // None: refused by both.
    assert_eq!(
        add_to_cart(&app, &id, "0").await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (s, _) = app.checkout(&[(slug, 0)]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Past the 1,000 a checkout takes, even with the stock there: refused by both.
    sqlx::query("UPDATE products SET stock = 5000 WHERE slug = 'man-tuyn-2-cua-1m8-x-2m'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let r = add_to_cart(&app, &id, "1001").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("tối đa 1000"));
    let (s, v) = app.checkout(&[(slug, 1001)]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"]["fields"]["items[0].quantity"].is_string(), "{v}");
    // 1,000 is taken by both.
    assert_eq!(
        add_to_cart(&app, &id, "1000").await.status(),
        StatusCode::SEE_OTHER
    );
    let (s, v) = app.checkout(&[(slug, 1000)]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

async fn register_page(app: &TestApp, n: usize) -> reqwest::Response {
    let login = format!("trang{n}@cholang.test");
    app.submit(
        "/dang-ky",
        "/dang-ky",
        &[
            ("login", login.as_str()),
            ("display_name", "Người bán mới"),
            ("password", "mat-khau-moi-1"),
            ("password_again", "mat-khau-moi-1"),
        ],
    )
    .await
}

async fn register_api(app: &TestApp, n: usize) -> (StatusCode, Value) {
    app.api(
        "POST",
        "/auth/register",
        None,
        Some(
            json!({"login": format!("api{n}@cholang.test"), "display_name": "Người bán mới",
                    "password": "mat-khau-moi-1"}),
        ),
    )
    .await
}

async fn page_and_api_registrations_share_one_limit(b: Backend) {
    let app = TestApp::spawn(b).await;
    for n in 0..5 {
        let r = register_page(&app, n).await;
        assert_ne!(r.status(), StatusCode::TOO_MANY_REQUESTS, "page {n}");
        assert!(
            r.status().is_redirection() || r.status().is_success(),
            "page {n}"
        );
        let (s, v) = register_api(&app, n).await;
        assert_eq!(s, StatusCode::ACCEPTED, "api {n}: {v}");
    }
    // Ten from this address this hour, whichever way they came: the eleventh is refused by
    // both, before any account is made.
    let r = register_page(&app, 5).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.text().await.unwrap().contains("Quá nhiều lần thử"));
    let (s, v) = register_api(&app, 5).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"]["code"], "too_many_attempts");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM users WHERE email LIKE '%5@cholang.test'")
            .await,
        0
    );
}

async fn ocop_counts_are_what_the_filter_finds_on_the_page_and_the_api(b: Backend) {
    let app = TestApp::with_demo(b).await;
    app.search_synced().await;
    let (s, v) = app.search("q=").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let at_least = v["facets"]["ocop_at_least"].as_object().unwrap().clone();
    assert!(!at_least.is_empty(), "the demo has OCOP products: {v}");
    let page = app.page("/tim-kiem?q=").await;
    for (stars, count) in &at_least {
        let (_, f) = app.search(&format!("q=&ocop_min={stars}")).await;
        assert_eq!(
            &json!(f["total"]),
            count,
            "{stars} stars: what the filter finds"
        );
        let label = if stars == "5" {
            "OCOP 5 sao".to_string()
        } else {
            format!("OCOP từ {stars} sao")
        };
        assert!(
            page.contains(&format!("{label}</a> <span class=\"count\">{count}</span>")),
            "the page's link counts alike: {label} {count}"
        );
    }
}

/// Whether a batch's origin shows: (its page, its API answer, in its product's list).
async fn origin_seen(app: &TestApp, code: &str, slug: &str) -> (StatusCode, StatusCode, bool) {
    app.state.pages.changed();
    let page = app.get(&format!("/truy-xuat/{code}")).await.status();
    let (api, _) = app
        .api("GET", &format!("/batches/{code}"), None, None)
        .await;
    let (list, l) = app
        .api("GET", &format!("/products/{slug}/batches"), None, None)
        .await;
    let listed = list == StatusCode::OK
        && l["batches"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["code"] == code);
    (page, api, listed)
}

async fn an_unlisted_products_origin_is_hidden_from_page_and_api(b: Backend) {
    let app = TestApp::with_demo(b).await;
    cholang::demo::origin::load(&app.db).await.unwrap();
    let (code, slug): (String, String) = sqlx::query_as(
        "SELECT b.code, p.slug FROM batches b JOIN products p ON p.id = b.product_id ORDER BY b.id LIMIT 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        origin_seen(&app, &code, &slug).await,
        (StatusCode::OK, StatusCode::OK, true)
    );
    sqlx::query("UPDATE products SET active = 0 WHERE slug = $1")
        .bind(slug.clone())
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        origin_seen(&app, &code, &slug).await,
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND, false)
    );
}

async fn a_village_is_created_with_its_quorum_or_not_at_all(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let admin = app.api_login(cholang::demo::catalog::ADMIN_EMAIL, PW).await;
    let hanh = app.api_login(HANH, PW).await;
    let body = |percent: i64| {
        json!({"name": "Làng Nón Chuông", "commune": "Phương Trung", "district": "Thanh Oai",
               "province": "Hà Nội", "story": "", "quorum_min_yes": 4, "quorum_percent": percent,
               "proposal_days": 5})
    };
    let villages = app.scalar("SELECT COUNT(*) FROM villages").await;
    // A seller is refused before anything about the fields is said.
    let (s, _) = app
        .api("POST", "/villages", Some(&hanh), Some(body(150)))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = app
        .api("POST", "/villages", Some(&admin), Some(body(150)))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"]["fields"]["quorum_percent"].is_string(), "{v}");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM villages").await, villages);
    let (s, v) = app
        .api("POST", "/villages", Some(&admin), Some(body(40)))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let slug = v["village"]["slug"].as_str().unwrap().to_string();
    let (min_yes, percent, days): (i64, i64, i64) = sqlx::query_as(
        "SELECT quorum_min_yes, quorum_percent, proposal_days FROM villages WHERE slug = $1",
    )
    .bind(slug)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!((min_yes, percent, days), (4, 40, 5));
}

async fn lookup_page(app: &TestApp, code: &str, phone: &str) -> reqwest::Response {
    app.submit(
        "/tra-cuu-don",
        "/tra-cuu-don",
        &[("code", code), ("phone", phone)],
    )
    .await
}

async fn a_checkout_is_proven_alike_and_tries_count_together(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let (pay, _, _) = paid_pair(&app, false).await;
    let api = |phone: &'static str| {
        let pay = pay.clone();
        let app = &app;
        async move {
            app.api(
                "POST",
                "/orders/lookup",
                None,
                Some(json!({"code": pay, "phone": phone})),
            )
            .await
            .0
        }
    };
    // The right phone opens it on both; a wrong one is "not found" on both.
    let r = lookup_page(&app, &pay, "0987 654 321").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), format!("/don-hang/{pay}"));
    assert_eq!(api("0987654321").await, StatusCode::OK);
    let r = lookup_page(&app, &pay, "0900000000").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(api("0900000001").await, StatusCode::NOT_FOUND);
    // Wrong tries on the page and the API count against the same limit (five): after
    // three more, even the right phone is refused on both.
    lookup_page(&app, &pay, "0900000002").await;
    assert_eq!(api("0900000003").await, StatusCode::NOT_FOUND);
    assert_eq!(api("0900000004").await, StatusCode::NOT_FOUND);
    assert_eq!(api("0987654321").await, StatusCode::TOO_MANY_REQUESTS);
    let r = lookup_page(&app, &pay, "0987654321").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

async fn the_refund_shown_is_the_refund_recorded(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let admin = app.api_login(cholang::demo::catalog::ADMIN_EMAIL, PW).await;
    let hanh = app.api_login(HANH, PW).await;
    let (_, order, _) = paid_pair(&app, true).await;
    let (s, v) = app
        .api(
            "POST",
            &format!("/orders/{order}/transitions"),
            Some(&hanh),
            Some(json!({"to": "cancelled"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The API and the page show one amount that may be refunded.
    let (_, r) = app.api("GET", "/reconciliation", Some(&admin), None).await;
    let due = r["orders_refund_due"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["code"] == order.as_str())
        .cloned()
        .unwrap();
    let refundable = due["refundable_vnd"].as_i64().unwrap();
    assert!(refundable > 0, "{due}");
    app.login_page(cholang::demo::catalog::ADMIN_EMAIL, PW)
        .await;
    let page = app.page("/quan-tri/doi-soat").await;
    let shown = cholang::domain::money::format_vnd(refundable);
    assert!(
        page.contains(&order) && page.contains(&shown),
        "the page shows {shown} for {order}"
    );
    // Recorded from the page: exactly that amount, and nothing more is refundable.
    let r = app
        .submit(
            "/quan-tri/doi-soat",
            "/quan-tri/doi-soat/hoan-don",
            &[("order_code", order.as_str())],
        )
        .await;
    assert!(r.status().is_redirection(), "{}", r.status());
    let refunded: i64 = sqlx::query_scalar("SELECT refunded_vnd FROM orders WHERE code = $1")
        .bind(order.clone())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(refunded, refundable);
    let (s, e) = app
        .api(
            "POST",
            &format!("/orders/{order}/refund"),
            Some(&admin),
            None,
        )
        .await;
    assert!(s.is_client_error(), "a second refund is refused: {s} {e}");
}
