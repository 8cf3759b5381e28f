//! Delivery (issue 32): the 2025 address lists, a shop's ways to ship, the fee quoted and
//! charged at checkout (payment, VietQR, ledger: the shop's whole, no platform fee on it).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    addresses_are_listed_as_the_country_counts_them_since_2025,
    a_shop_sets_its_ways_to_ship_and_only_its_owner_may,
    the_fee_is_quoted_charged_and_passed_to_the_shop_whole,
    a_buyer_picks_a_ward_and_sees_the_fee_on_pages_without_javascript,
    a_parcel_takes_the_products_facts_else_its_categorys,
);

const NET: &str = "man-tuyn-2-cua-1m8-x-2m"; // Màn tuyn Bà Hạnh, 180,000
const STOOL: &str = "ghe-dau-go-xoan"; // Đồ gỗ Minh Đức, 120,000
const HOAN_KIEM: &str = "00070"; // Phường Hoàn Kiếm, Hà Nội
const PHU_XUYEN: &str = "10273"; // Xã Phú Xuyên, Hà Nội (Phú Đôi's commune)
const PHU_XUYEN_TN: &str = "05773"; // Xã Phú Xuyên, Thái Nguyên: same name, other province

async fn addresses_are_listed_as_the_country_counts_them_since_2025(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (s, v) = app.api("GET", "/addresses/provinces", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 34);
    assert_eq!(list[0], json!({"code": "01", "name": "Thành phố Hà Nội"}));
    assert!(
        list.iter()
            .any(|p| p["code"] == "79" && p["name"] == "Thành phố Hồ Chí Minh")
    );
    let mut wards = 0;
    for p in list {
        let (s, w) = app
            .api(
                "GET",
                &format!("/addresses/provinces/{}/wards", p["code"].as_str().unwrap()),
                None,
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        wards += w.as_array().unwrap().len();
    }
    assert_eq!(wards, 3_321, "commune-level units since 1 July 2025");
    let (_, w) = app
        .api(
            "GET",
            "/addresses/provinces/01/wards?q=phu%20xuyen",
            None,
            None,
        )
        .await;
    assert_eq!(w, json!([{"code": PHU_XUYEN, "name": "Xã Phú Xuyên"}]));
    let (s, e) = app
        .api("GET", "/addresses/provinces/99/wards", None, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(e["error"]["code"].is_string(), "{e}");
}

fn settings(ward: &str) -> Value {
    json!({
        "pickup": {"province_code": "01", "ward_code": ward, "street": "Thôn Phú Đôi"},
        "methods": ["self"],
        "self_fees": {"same_commune": 0, "same_province": 20000, "elsewhere": 40000, "free_from": 1000000}
    })
}

async fn a_shop_sets_its_ways_to_ship_and_only_its_owner_may(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let hanh = app.api_login(HANH, PW).await;
    let huong = app.api_login(HUONG, PW).await;
    let path = "/shops/man-tuyn-ba-hanh/shipping";
    let (s, _) = app.api("GET", path, Some(&hanh), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "nothing set yet");
    // Every problem named; nothing written.
    let (s, e) = app
        .api(
            "PUT",
            path,
            Some(&hanh),
            Some(json!({
                "pickup": {"province_code": "01", "ward_code": PHU_XUYEN_TN, "street": ""},
                "methods": ["self", "ghn"],
                "self_fees": {"same_commune": -5, "same_province": "hai mươi", "elsewhere": 40000}
            })),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    for f in [
        "pickup.ward_code",
        "pickup.street",
        "methods[1]",
        "self_fees.same_commune",
        "self_fees.same_province",
    ] {
        assert!(e["error"]["fields"][f].is_string(), "{f}: {e}");
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM shop_shipping").await, 0);
    // Another seller, and nobody logged in, may not.
    let (s, _) = app
        .api("PUT", path, Some(&huong), Some(settings(PHU_XUYEN)))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.api("PUT", path, None, Some(settings(PHU_XUYEN))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = app
        .api("PUT", path, Some(&hanh), Some(settings(PHU_XUYEN)))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = app.api("GET", path, Some(&hanh), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["pickup"]["ward_name"], "Xã Phú Xuyên");
    assert_eq!(v["pickup"]["province_name"], "Thành phố Hà Nội");
    assert_eq!(v["methods"], json!(["self"]));
    assert_eq!(v["self_fees"]["same_province"], 20000);
    assert_eq!(v["self_fees"]["free_from"], 1000000);
    let (s, _) = app.api("GET", path, Some(&huong), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // The owner's page: the province's wards without JavaScript, inline errors that keep
    // what was typed, then saved.
    let web = app.browser_logged_in(HANH, PW).await;
    let page_path = "/quan-ly/cua-hang/man-tuyn-ba-hanh/giao-hang";
    let html = web
        .get(app.url(page_path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Nơi lấy hàng") && html.contains("selected>Xã Phú Xuyên"),
        "saved ward shown"
    );
    let csrf = csrf_in(&html);
    let post = |fields: Vec<(&'static str, String)>| {
        let (web, url, csrf) = (web.clone(), app.url(page_path), csrf.clone());
        async move {
            let mut f = vec![("csrf", csrf)];
            f.extend(fields);
            web.post(url).form(&f).send().await.unwrap()
        }
    };
    let r = post(vec![
        ("province_code", "19".into()),
        ("ward_code", PHU_XUYEN.into()),
        ("street", "Xóm 3".into()),
        ("step", "province".into()),
    ])
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains(&format!("value=\"{PHU_XUYEN_TN}\">Xã Phú Xuyên")),
        "Thái Nguyên's wards listed"
    );
    assert!(
        !html.contains(&format!("value=\"{PHU_XUYEN}\"")),
        "Hà Nội's wards gone"
    );
    assert!(html.contains("Xóm 3"));
    let r = post(vec![
        ("province_code", "01".into()),
        ("ward_code", PHU_XUYEN.into()),
        ("street", "Thôn Phú Đôi, nhà bà Hạnh".into()),
        ("method", "self".into()),
        ("same_commune", "0".into()),
        ("same_province", "25.000".into()),
        ("elsewhere", "-1".into()),
        ("free_from", "".into()),
    ])
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("không âm") && html.contains("25.000") && html.contains("nhà bà Hạnh"));
    let r = post(vec![
        ("province_code", "01".into()),
        ("ward_code", PHU_XUYEN.into()),
        ("street", "Thôn Phú Đôi, nhà bà Hạnh".into()),
        ("method", "self".into()),
        ("same_commune", "0".into()),
        ("same_province", "25.000".into()),
        ("elsewhere", "45000".into()),
        ("free_from", "".into()),
    ])
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, v) = app.api("GET", path, Some(&hanh), None).await;
    assert_eq!(
        v["self_fees"],
        json!({"same_commune": 0, "same_province": 25000, "elsewhere": 45000, "free_from": null})
    );
    assert_eq!(v["pickup"]["street"], "Thôn Phú Đôi, nhà bà Hạnh");
    // Another shop's seller cannot open the page.
    let other = app.browser_logged_in(HUONG, PW).await;
    let r = other.get(app.url(page_path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

fn buyer_at(ward: &str) -> Value {
    json!({"name": "Chị Mai", "phone": "0987654321", "province_code": "01", "ward_code": ward,
           "street": "12 Hàng Bông", "email": "mai@example.vn"})
}

async fn shop_account(app: &TestApp, shop: &str, account: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(e.amount_vnd), 0) AS BIGINT) FROM ledger_entries e
         JOIN shops s ON s.id = e.shop_id WHERE s.slug = $1 AND e.account = $2",
    )
    .bind(shop.to_string())
    .bind(account.to_string())
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

async fn the_fee_is_quoted_charged_and_passed_to_the_shop_whole(b: Backend) {
    let app = TestApp::with_demo_and(b, &[("PLATFORM_FEE_BPS", "250")]).await;
    cholang::demo::shipping::load(&app.db).await.unwrap();
    let items =
        json!([{"product_slug": NET, "quantity": 2}, {"product_slug": STOOL, "quantity": 1}]);
    // A quote: each shop's way to ship, by distance from its pickup commune.
    let quote = |ward: &'static str, items: Value| {
        let app = &app;
        async move {
            let province = if ward == PHU_XUYEN_TN { "19" } else { "01" };
            app.api(
                "POST",
                "/checkout/quote",
                None,
                Some(json!({"items": items, "address": {"province_code": province, "ward_code": ward, "street": "Số 1"}})),
            )
            .await
        }
    };
    let (s, q) = quote(HOAN_KIEM, items.clone()).await;
    assert_eq!(s, StatusCode::OK, "{q}");
    assert_eq!(q["shops"][0]["shop_slug"], "man-tuyn-ba-hanh");
    assert_eq!(q["shops"][0]["goods_vnd"], 360_000);
    assert_eq!(
        q["shops"][0]["options"],
        json!([{"id": "self", "carrier": "self", "fee_vnd": 20000, "expected_on": null}])
    );
    assert_eq!(q["shops"][1]["shop_slug"], "do-go-minh-duc");
    assert_eq!(
        q["shops"][1]["options"][0]["fee_vnd"], 80_000,
        "furniture costs more to carry"
    );
    let (_, q) = quote(PHU_XUYEN, items.clone()).await;
    assert_eq!(q["shops"][0]["options"][0]["fee_vnd"], 0, "same commune");
    let (_, q) = quote(PHU_XUYEN_TN, items.clone()).await;
    assert_eq!(
        q["shops"][0]["options"][0]["fee_vnd"], 40_000,
        "another province"
    );
    assert_eq!(q["shops"][1]["options"][0]["fee_vnd"], 250_000);
    let (_, q) = quote(PHU_XUYEN_TN, json!([{"product_slug": NET, "quantity": 6}])).await;
    assert_eq!(
        q["shops"][0]["options"][0]["fee_vnd"], 0,
        "free from 1,000,000 of goods"
    );
    let (s, e) = app
        .api("POST", "/checkout/quote", None, Some(json!({"items": items, "address": {"province_code": "01", "ward_code": PHU_XUYEN_TN}})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e["error"]["fields"]["address.ward_code"].is_string(), "{e}");

    // Checkout: a shop that ships at a fee needs an address from the lists and a choice.
    let checkout = |buyer: Value, shipping: Value| {
        let (app, items) = (&app, items.clone());
        async move {
            app.api(
                "POST",
                "/checkout",
                None,
                Some(json!({"items": items, "buyer": buyer, "shipping": shipping})),
            )
            .await
        }
    };
    let orders_before = app.scalar("SELECT COUNT(*) FROM orders").await;
    let (s, e) = checkout(
        json!({"name": "Chị Mai", "phone": "0987654321", "address": "12 Hàng Bông, quận Hoàn Kiếm, Hà Nội"}),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e["error"]["fields"]["buyer.ward_code"].is_string(), "{e}");
    let (s, e) = checkout(buyer_at(HOAN_KIEM), json!({"man-tuyn-ba-hanh": "self"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(
        e["error"]["fields"]["shipping.do-go-minh-duc"].is_string(),
        "{e}"
    );
    let (s, e) = checkout(
        buyer_at(HOAN_KIEM),
        json!({"man-tuyn-ba-hanh": "self", "do-go-minh-duc": "ghn"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM orders").await,
        orders_before,
        "nothing half-written"
    );
    assert_eq!(app.stock(NET).await, 40);

    let (s, c) = checkout(
        buyer_at(HOAN_KIEM),
        json!({"man-tuyn-ba-hanh": "self", "do-go-minh-duc": "self"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(
        c["total_vnd"], 580_000,
        "480,000 of goods + 20,000 + 80,000 of delivery"
    );
    assert_eq!(c["orders"][0]["total_vnd"], 380_000);
    assert_eq!(c["orders"][0]["shipping_vnd"], 20_000);
    assert_eq!(c["orders"][0]["shipping_method"], "self");
    assert_eq!(c["orders"][1]["shipping_vnd"], 80_000);
    let p = &c["payment"];
    assert_eq!(p["amount_vnd"], 580_000);
    let qr = cholang::payments::vietqr::parse(p["vietqr_payload"].as_str().unwrap()).unwrap();
    assert_eq!(
        qr.amount,
        Some(580_000),
        "the VietQR asks for goods and delivery"
    );
    let code = p["code"].as_str().unwrap().to_string();
    let address: String = sqlx::query_scalar("SELECT buyer_address FROM checkouts WHERE code = $1")
        .bind(c["checkout_code"].as_str().unwrap().to_string())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(address, "12 Hàng Bông, Phường Hoàn Kiếm, Thành phố Hà Nội");
    let pay = app.page(&format!("/pay/{code}")).await;
    assert!(
        pay.contains("580.000 ₫") && pay.contains("phí giao hàng 20.000 ₫"),
        "the payment page shows the fee"
    );

    // Paid: the delivery goes to the shop with the goods; the platform fee only on the goods.
    app.transfer(580_000, &code).await;
    // The receipt and the seller's notice say how it comes and what the delivery costs.
    app.notifier().run_once().await.unwrap();
    let said: Vec<String> = sqlx::query_scalar("SELECT payload FROM notices ORDER BY id")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    let receipt = said
        .iter()
        .find(|p| p.contains("Biên nhận"))
        .expect("a receipt");
    assert!(
        receipt.contains("Giao hàng: Người bán tự giao — 20.000 ₫")
            && receipt.contains("Giao hàng: Người bán tự giao — 80.000 ₫"),
        "{receipt}"
    );
    assert!(said.iter().any(|p| p.contains("Đơn hàng mới đã thanh toán")
        && p.contains("Giao hàng: Người bán tự giao — 20.000 ₫")));
    assert_eq!(
        shop_account(&app, "man-tuyn-ba-hanh", "shop_pending").await,
        -380_000
    );
    let hanh = app.api_login(HANH, PW).await;
    let order = c["orders"][0]["code"].as_str().unwrap().to_string();
    for to in ["accepted", "shipped", "delivered"] {
        let (s, v) = app
            .api(
                "POST",
                &format!("/orders/{order}/transitions"),
                Some(&hanh),
                Some(json!({"to": to})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{to}: {v}");
    }
    let html = app
        .browser_logged_in(HANH, PW)
        .await
        .get(app.url("/quan-ly/don-hang?tab=all"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Người bán tự giao"),
        "the seller sees the way the buyer chose"
    );
    app.buyer_received(&order).await;
    assert_eq!(
        shop_account(&app, "man-tuyn-ba-hanh", "shop_pending").await,
        0
    );
    assert_eq!(
        shop_account(&app, "man-tuyn-ba-hanh", "fees").await,
        -9_000,
        "2.5 % of 360,000 of goods, nothing on the delivery"
    );
    assert_eq!(
        shop_account(&app, "man-tuyn-ba-hanh", "shop_available").await,
        -371_000
    );
    let (s, o) = app
        .api("GET", "/orders?status=delivered", Some(&hanh), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    let listed = o["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["code"] == order.as_str())
        .cloned()
        .unwrap();
    assert_eq!(listed["shipping_vnd"], 20_000);

    // The database refuses a delivery fee outside its order's total.
    let r = sqlx::query("UPDATE orders SET shipping_vnd = total_vnd + 1 WHERE code = $1")
        .bind(order.clone())
        .execute(&app.db.pool)
        .await;
    assert!(r.is_err(), "shipping above the total must be refused");
}

async fn a_buyer_picks_a_ward_and_sees_the_fee_on_pages_without_javascript(b: Backend) {
    let app = TestApp::with_demo(b).await;
    cholang::demo::shipping::load(&app.db).await.unwrap();
    let id: i64 = sqlx::query_scalar("SELECT id FROM products WHERE slug = $1")
        .bind(NET)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let r = app
        .submit(
            &format!("/san-pham/{NET}"),
            "/gio-hang",
            &[
                ("product_id", &id.to_string()),
                ("quantity", "1"),
                ("action", "add"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = app.page("/thanh-toan").await;
    assert!(html.contains("Chọn tỉnh, thành phố") && html.contains("Thành phố Hà Nội"));
    assert!(html.contains("Xem phí giao hàng"));
    // The province first: its wards appear, what was typed stays.
    let base = [
        ("name", "Anh Tuấn"),
        ("phone", "0977 111 222"),
        ("street", "Số 8 ngõ 4"),
        ("method", "vietqr"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut f: Vec<(&str, &str)> = base.to_vec();
        f.extend_from_slice(extra);
        f
    };
    let r = app
        .submit(
            "/thanh-toan",
            "/thanh-toan",
            &with(&[("province_code", "01"), ("step", "province")]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains(&format!("value=\"{HOAN_KIEM}\">Phường Hoàn Kiếm"))
            && html.contains("Anh Tuấn")
            && html.contains("Số 8 ngõ 4")
    );
    // Then the fee to the ward chosen, before paying.
    let r = app
        .submit(
            "/thanh-toan",
            "/thanh-toan",
            &with(&[
                ("province_code", "01"),
                ("ward_code", HOAN_KIEM),
                ("step", "quote"),
            ]),
        )
        .await;
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Người bán tự giao: <strong>20.000 ₫</strong>"),
        "the fee is shown"
    );
    assert!(
        html.contains("name=\"ship.man-tuyn-ba-hanh\" value=\"self\" checked"),
        "the only way is chosen"
    );
    assert!(html.contains("Tổng phải trả: 200.000 ₫"));
    // A ward of another province is refused, inline.
    let r = app
        .submit(
            "/thanh-toan",
            "/thanh-toan",
            &with(&[
                ("province_code", "01"),
                ("ward_code", PHU_XUYEN_TN),
                ("ship.man-tuyn-ba-hanh", "self"),
            ]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("xã, phường trong tỉnh đã chọn")
    );
    assert_eq!(app.stock(NET).await, 40);
    let r = app
        .submit(
            "/thanh-toan",
            "/thanh-toan",
            &with(&[
                ("province_code", "01"),
                ("ward_code", HOAN_KIEM),
                ("ship.man-tuyn-ba-hanh", "self"),
                ("step", "place"),
            ]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let pay = app.page(&location(&r)).await;
    assert!(
        pay.contains("200.000 ₫") && pay.contains("tiền hàng 180.000 ₫ + phí giao hàng 20.000 ₫"),
        "{pay}"
    );
}

async fn packed_of(app: &TestApp, slug: &str, qty: i64) -> cholang::shipping::carriers::Packed {
    let (id, price): (i64, i64) = sqlx::query_as(
        "SELECT p.id, pi.price_vnd FROM products p JOIN price_items pi ON pi.id = p.price_item_id WHERE p.slug = $1",
    )
    .bind(slug.to_string())
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let mut tx = app.db.pool.begin().await.unwrap();
    cholang::shipping::store::packed(&mut tx, &[(id, qty, price)])
        .await
        .unwrap()
}

async fn a_parcel_takes_the_products_facts_else_its_categorys(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let p = packed_of(&app, NET, 2).await;
    assert_eq!(
        (p.weight_g, p.length_cm, p.height_cm, p.value_vnd),
        (1000, 20, 20, 360_000),
        "the platform's default"
    );
    let category: i64 = sqlx::query_scalar(
        "SELECT c.id FROM categories c JOIN villages v ON v.id = c.village_id WHERE v.slug = 'phu-doi' AND c.name = 'Màn tuyn'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let path = format!("/villages/phu-doi/categories/{category}/parcel");
    let body = json!({"weight_g": 900, "length_cm": 50, "width_cm": 40, "height_cm": 5});
    let hanh = app.api_login(HANH, PW).await;
    let (s, _) = app.api("PUT", &path, Some(&hanh), Some(body.clone())).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "the village's moderator sets it, not a seller"
    );
    let moderator = app.api_login(MODERATOR, PW).await;
    let (s, e) = app
        .api(
            "PUT",
            &path,
            Some(&moderator),
            Some(json!({"weight_g": "nặng", "length_cm": 0})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        e["error"]["fields"]["weight_g"].is_string()
            && e["error"]["fields"]["length_cm"].is_string(),
        "{e}"
    );
    let (s, v) = app.api("PUT", &path, Some(&moderator), Some(body)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["category"]["parcel"]["weight_g"], 900);
    let p = packed_of(&app, NET, 2).await;
    assert_eq!(
        (p.weight_g, p.length_cm, p.width_cm, p.height_cm),
        (1800, 50, 40, 10),
        "the category's"
    );
    // The product's own weight wins; its size still comes from the category.
    let (s, v) = app
        .api(
            "PATCH",
            &format!("/products/{NET}"),
            Some(&hanh),
            Some(json!({"weight_g": "1.200"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let p = packed_of(&app, NET, 2).await;
    assert_eq!((p.weight_g, p.length_cm), (2400, 50));
    let (s, e) = app
        .api(
            "PATCH",
            &format!("/products/{NET}"),
            Some(&hanh),
            Some(json!({"height_cm": 500})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e["error"]["fields"]["height_cm"].is_string(), "{e}");
    // The moderator's page keeps what was typed when it is refused.
    let web = app.browser_logged_in(MODERATOR, PW).await;
    let page = web
        .get(app.url("/lang/phu-doi/loai-hang"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Gói hàng mặc định của “Màn tuyn”"));
    let csrf = csrf_in(&page);
    let r = web
        .post(app.url(&format!("/lang/phu-doi/loai-hang/{category}/goi-hang")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("weight_g", "-3"),
            ("length_cm", "61"),
            ("width_cm", ""),
            ("height_cm", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Cân nặng (gam) là số nguyên") && html.contains("value=\"61\""),
        "{html}"
    );
}
