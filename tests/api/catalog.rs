//! Shops and products: ownership, prices only from the board, validation, photos.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    a_seller_cannot_touch_another_sellers_shop,
    products_take_their_price_from_the_village_board,
    dashboard_forms_show_errors_inline_and_create_products,
    photos_come_with_the_new_product_and_are_removed_and_reordered,
    photos_are_checked_and_reencoded,
    sellers_open_shops_with_clean_slugs,
);

async fn product_row(app: &TestApp, slug: &str) -> (String, i64) {
    let row: (String, i64) = sqlx::query_as("SELECT name, stock FROM products WHERE slug = $1")
        .bind(slug.to_string())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    row
}

async fn a_seller_cannot_touch_another_sellers_shop(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let nghia = app.api_login(NGHIA, PW).await;
    let target = "man-tuyn-2-cua-1m8-x-2m"; // Bà Hạnh's
    let before = product_row(&app, target).await;

    let (s, e) = app
        .api(
            "PATCH",
            "/shops/man-tuyn-ba-hanh",
            Some(&nghia),
            Some(json!({"name": "Của tôi"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(e["error"]["code"], "forbidden");
    let (s, _) = app
        .api(
            "PATCH",
            &format!("/products/{target}"),
            Some(&nghia),
            Some(json!({"stock": 0})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .api("POST", "/products", Some(&nghia), Some(json!({"shop": "man-tuyn-ba-hanh", "name": "Hàng lạ", "category": "X", "stock": 1, "price_item_id": 1})))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // The same through the dashboard pages.
    app.login_page(NGHIA, PW).await;
    let r = app.get(&format!("/quan-ly/san-pham/{target}")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .submit(
            "/quan-ly",
            &format!("/quan-ly/san-pham/{target}"),
            &[
                ("name", "Bị sửa"),
                ("category", "Màn tuyn"),
                ("stock", "0"),
                ("price_item_id", "1"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .submit(
            "/quan-ly",
            "/quan-ly/cua-hang/man-tuyn-ba-hanh",
            &[("name", "Bị sửa"), ("phone", "0912000999")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    assert_eq!(product_row(&app, target).await, before, "nothing changed");
    let shop_name: String =
        sqlx::query_scalar("SELECT name FROM shops WHERE slug = 'man-tuyn-ba-hanh'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(shop_name, "Màn tuyn Bà Hạnh");

    // The owner can.
    let hanh = app.api_login(HANH, PW).await;
    let (s, p) = app
        .api(
            "PATCH",
            &format!("/products/{target}"),
            Some(&hanh),
            Some(json!({"stock": 39})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["product"]["stock"], 39);
}

async fn products_take_their_price_from_the_village_board(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let hanh = app.api_login(HANH, PW).await;
    let id = app.board_item("phu-doi", "Rèm lưới 1m2", 120_000).await;
    let item = json!({"id": id, "price_vnd": 120_000});
    let count = app.scalar("SELECT COUNT(*) FROM products").await;

    // A price sent by the seller is refused, whatever it is called.
    for field in ["price_vnd", "price"] {
        let mut body = json!({"shop": "man-tuyn-ba-hanh", "name": "Rèm lưới 1m2", "category": "Màn tuyn", "stock": 10, "price_item_id": item["id"]});
        body[field] = json!(99000);
        let (s, e) = app.api("POST", "/products", Some(&hanh), Some(body)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e["error"]["fields"]["price_vnd"].is_string());
    }
    // An item of another village's board is refused.
    let (_, other) = app
        .api("GET", "/villages/chuyen-my/price-items", None, None)
        .await;
    let foreign = other["price_items"][0]["id"].clone();
    let (s, e) = app
        .api("POST", "/products", Some(&hanh), Some(json!({"shop": "man-tuyn-ba-hanh", "name": "Rèm lưới 1m2", "category": "Màn tuyn", "stock": 10, "price_item_id": foreign})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e["error"]["fields"]["price_item_id"].is_string());
    // Every bad field is named at once.
    let (s, e) = app
        .api("POST", "/products", Some(&hanh), Some(json!({"shop": "man-tuyn-ba-hanh", "name": "", "category": "Màn", "stock": -3, "ocop_stars": 2, "price_item_id": item["id"]})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    for f in ["name", "stock", "ocop_stars"] {
        assert!(e["error"]["fields"][f].is_string(), "{f}: {e}");
    }
    // Malformed JSON is a 400 in the same error shape.
    let r = app
        .client
        .post(app.url("/api/v1/products"))
        .bearer_auth(&hanh)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "bad_request");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM products").await,
        count,
        "nothing written"
    );

    let (s, p) = app
        .api("POST", "/products", Some(&hanh), Some(json!({"shop": "man-tuyn-ba-hanh", "name": "Rèm lưới 1m2", "category": "Màn tuyn", "stock": "10", "ocop_stars": null, "price_item_id": item["id"], "materials": "Lưới polyester"})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    assert_eq!(p["product"]["price_vnd"], item["price_vnd"]);
    assert_eq!(p["product"]["slug"], "rem-luoi-1m2");
    let html = app.page("/san-pham/rem-luoi-1m2").await;
    assert!(html.contains("120.000 ₫"));
    assert!(html.contains("Giá cộng đồng"));
    assert!(html.contains(&format!("/lang/phu-doi/bang-gia#muc-{}", item["id"])));
    assert!(html.contains("Lưới polyester"));
}

async fn dashboard_forms_show_errors_inline_and_create_products(b: Backend) {
    let app = TestApp::with_demo(b).await;
    app.login_page(DUC, PW).await;
    let form_page = "/quan-ly/san-pham/moi?shop=do-go-minh-duc";
    let html = app.page(form_page).await;
    assert!(
        html.contains("Bàn trà gỗ mít 1m — 1.850.000 ₫ / chiếc"),
        "items of the village board are offered"
    );
    assert!(html.contains("Màn tuyn 2 cửa 1m8 x 2m — 180.000 ₫"));
    assert!(
        !html.contains("Tranh khảm trai"),
        "only items of the shop's own village"
    );
    // A new size gets its own item on the board (a product takes the item it is named after).
    let item: i64 = app.board_item("phu-doi", "Thớt nghiến 40cm", 260_000).await;
    let item_s = item.to_string();
    let r = submit_multipart(
        &app,
        form_page,
        form_page,
        &[
            ("price_item_id", &item_s),
            ("name", "Thớt nghiến 40cm"),
            ("category", "Đồ gỗ"),
            ("stock", "nhiều"),
            ("ocop_stars", ""),
        ],
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("Số lượng tồn kho phải là số nguyên"));
    assert!(
        html.contains("value=\"Thớt nghiến 40cm\""),
        "what was typed is kept"
    );

    let r = submit_multipart(
        &app,
        form_page,
        form_page,
        &[
            ("price_item_id", &item_s),
            ("name", "Thớt nghiến 40cm"),
            ("category", "Đồ gỗ"),
            ("stock", "7"),
            ("maker", "Lê Minh Đức"),
        ],
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&r),
        "/quan-ly/san-pham/thot-nghien-40cm?ok=product-created"
    );
    let dash = app.page("/quan-ly").await;
    assert!(dash.contains("Thớt nghiến 40cm"));
    assert!(dash.contains("260.000 ₫ / chiếc"));

    // Hiding a listing takes it off the storefront but keeps it in the dashboard.
    let r = app
        .submit(
            "/quan-ly/san-pham/thot-nghien-40cm",
            "/quan-ly/san-pham/thot-nghien-40cm",
            &[
                ("price_item_id", &item_s),
                ("name", "Thớt nghiến 40cm"),
                ("category", "Đồ gỗ"),
                ("stock", "7"),
                ("active", "0"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/san-pham/thot-nghien-40cm").await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(
        !app.page("/shop/do-go-minh-duc")
            .await
            .contains("Thớt nghiến 40cm")
    );
    assert!(app.page("/quan-ly").await.contains("đang ẩn"));
}

async fn photos_are_checked_and_reencoded(b: Backend) {
    let app = TestApp::with_demo(b).await;
    app.login_page(DUC, PW).await;
    let slug = "ghe-dau-go-xoan";
    let r = upload_photo(&app, slug, png_bytes(), "ghe.png").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    // Cards show the thumbnail (the product page shows the full photo).
    let html = app.page("/shop/do-go-minh-duc").await;
    let start = html
        .find("src=\"/anh/")
        .expect("the shop's card shows the photo")
        + 5;
    let src = &html[start..start + html[start..].find('"').unwrap()];
    assert!(src.ends_with("-thumb.jpg"));
    let img = app.get(src).await;
    assert_eq!(img.status(), StatusCode::OK);
    let bytes = img.bytes().await.unwrap();
    assert_eq!(
        image::guess_format(&bytes).unwrap(),
        image::ImageFormat::Jpeg,
        "re-encoded as JPEG"
    );
    assert_eq!(image::load_from_memory(&bytes).unwrap().width(), 480);

    // Not an image, or a disguised one: refused with a message, nothing stored.
    let r = upload_photo(&app, slug, b"<?php echo 1; ?>".to_vec(), "x.jpg").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("không phải ảnh chụp"));
    // Over the size limit: refused before it is decoded.
    assert_eq!(app.scalar("SELECT COUNT(*) FROM product_photos").await, 1);
    // Another seller cannot add photos to this product.
    app.login_page(TOAN, PW).await;
    let r = upload_photo(&app, "ke-sach-go-thong-5-tang", png_bytes(), "k.png").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM product_photos").await, 1);

    // Last, because a refused oversized body may leave this client's connection broken.
    app.login_page(DUC, PW).await;
    // The server may answer 413 early or close the connection while the body is still being
    // sent; both are refusals, and either way nothing is stored.
    let big = vec![0u8; app.config.max_upload_bytes + 1024 * 1024];
    let token = app.csrf("/quan-ly").await;
    let form = reqwest::multipart::Form::new().text("csrf", token).part(
        "photo",
        reqwest::multipart::Part::bytes(big).file_name("big.jpg"),
    );
    let sent = app
        .client
        .post(app.url(&format!("/quan-ly/san-pham/{slug}/anh")))
        .multipart(form)
        .send()
        .await;
    if let Ok(r) = sent {
        assert!(
            matches!(
                r.status(),
                StatusCode::PAYLOAD_TOO_LARGE | StatusCode::BAD_REQUEST
            ),
            "{}",
            r.status()
        );
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM product_photos").await, 1);
}

async fn sellers_open_shops_with_clean_slugs(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let token = app.register_seller("0987654321", "Chị Mai").await;
    let (s, e) = app
        .api("POST", "/shops", Some(&token), Some(json!({"village": "phu-doi", "name": "Màn Mai", "phone": "12345", "bank_bin": "97"})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Bank fields are never taken with a shop's details (the payout account sets them).
    for f in ["phone", "bank_bin"] {
        assert!(e["error"]["fields"][f].is_string(), "{f}");
    }
    let (s, shop) = app
        .api(
            "POST",
            "/shops",
            Some(&token),
            Some(json!({"village": "phu-doi", "name": "Màn Mai", "phone": "+84 987 654 321"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{shop}");
    assert_eq!(shop["shop"]["slug"], "man-mai");
    assert_eq!(shop["shop"]["phone"], "0987654321");
    assert_eq!(shop["shop"]["bank_account_name"], Value::Null);
    // The same name in the same village is a conflict; in another village it gets its own slug.
    let (s, e) = app
        .api(
            "POST",
            "/shops",
            Some(&token),
            Some(json!({"village": "phu-doi", "name": "Màn tuyn Bà Hạnh", "phone": "0987654321"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("cùng tên"));
    let (s, shop) = app
        .api(
            "POST",
            "/shops",
            Some(&token),
            Some(
                json!({"village": "chuyen-my", "name": "Màn tuyn Bà Hạnh", "phone": "0987654321"}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(shop["shop"]["slug"], "man-tuyn-ba-hanh-chuyen-my");
    // A new seller counts toward the village quorum once the village accepted their shop.
    assert_eq!(shop["shop"]["membership"], "pending");
    let (_, v) = app.api("GET", "/villages/phu-doi", None, None).await;
    assert_eq!(v["quorum"]["voters"], 4);
    app.accept_shop("man-mai").await;
    let (_, v) = app.api("GET", "/villages/phu-doi", None, None).await;
    assert_eq!(v["quorum"]["voters"], 5);
    assert_eq!(v["quorum"]["yes_needed"], 3);
}

async fn photos_come_with_the_new_product_and_are_removed_and_reordered(b: Backend) {
    let app = TestApp::with_demo(b).await;
    app.login_page(DUC, PW).await;
    let form_page = "/quan-ly/san-pham/moi?shop=do-go-minh-duc";
    assert!(
        app.page(form_page)
            .await
            .contains(r#"enctype="multipart/form-data""#)
    );
    // A new size gets its own item on the board (a product takes the item it is named after).
    let item: i64 = app.board_item("phu-doi", "Thớt nghiến 40cm", 260_000).await;
    let item_s = item.to_string();
    // The product and its first photo in one form.
    let r = submit_multipart(
        &app,
        form_page,
        form_page,
        &[
            ("price_item_id", &item_s),
            ("name", "Thớt nghiến 40cm"),
            ("category", "Đồ gỗ"),
            ("stock", "7"),
        ],
        Some((png_bytes(), "thot.png")),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let slug = "thot-nghien-40cm";
    let photos = |app: &TestApp| {
        let db = app.db.clone();
        async move {
            sqlx::query_as::<_, (i64, String, String)>(
                "SELECT ph.id, ph.file_name, ph.thumb_name FROM product_photos ph
                 JOIN products p ON p.id = ph.product_id WHERE p.slug = 'thot-nghien-40cm'
                 ORDER BY ph.position, ph.id",
            )
            .fetch_all(&db.pool)
            .await
            .unwrap()
        }
    };
    let first = photos(&app).await;
    assert_eq!(first.len(), 1, "photo saved with the product");
    // The product page shows it large (the full image), not as a thumbnail.
    let page = app.page(&format!("/san-pham/{slug}")).await;
    assert!(
        page.contains(&format!(r#"class="main-photo" src="/anh/{}""#, first[0].1)),
        "main photo at full size"
    );
    // A second photo, then made the main one.
    let r = upload_photo(&app, slug, png_bytes(), "hai.png").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let two = photos(&app).await;
    assert_eq!(two.len(), 2);
    let edit = format!("/quan-ly/san-pham/{slug}");
    let r = app
        .submit(&edit, &format!("{edit}/anh/{}/len", two[1].0), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let now = photos(&app).await;
    assert_eq!((now[0].0, now[1].0), (two[1].0, two[0].0), "reordered");
    let page = app.page(&format!("/san-pham/{slug}")).await;
    assert!(page.contains(&format!(r#"class="main-photo" src="/anh/{}""#, two[1].1)));
    // The product's own query carries its photos, in their new order.
    let p: serde_json::Value = app
        .get(&format!("/api/v1/products/{slug}"))
        .await
        .json()
        .await
        .unwrap();
    let shown: Vec<&str> = p["product"]["photos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ph| ph["file_name"].as_str().unwrap())
        .collect();
    assert_eq!(shown, [two[1].1.as_str(), two[0].1.as_str()]);
    // Another seller cannot touch them.
    let other = app.new_browser();
    let token = {
        let r = other.get(app.url("/dang-nhap")).send().await.unwrap();
        csrf_in(&r.text().await.unwrap())
    };
    other
        .post(app.url("/dang-nhap"))
        .form(&[
            ("csrf", token.as_str()),
            ("login", HANH),
            ("password", PW),
            ("next", "/quan-ly"),
        ])
        .send()
        .await
        .unwrap();
    let token = {
        let r = other.get(app.url("/quan-ly")).send().await.unwrap();
        csrf_in(&r.text().await.unwrap())
    };
    let r = other
        .post(app.url(&format!("{edit}/anh/{}/xoa", two[0].0)))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Removed: the row and both files go.
    let dir = app.config.photos_dir();
    assert!(dir.join(&two[0].1).exists() && dir.join(&two[0].2).exists());
    let r = app
        .submit(&edit, &format!("{edit}/anh/{}/xoa", two[0].0), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let left = photos(&app).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0, two[1].0);
    assert!(!dir.join(&two[0].1).exists() && !dir.join(&two[0].2).exists());
    // A photo of another product is not found through this one.
    let other_photo: i64 = {
        upload_photo(&app, "ghe-dau-go-xoan", png_bytes(), "ghe.png").await;
        sqlx::query_scalar(
            "SELECT ph.id FROM product_photos ph JOIN products p ON p.id = ph.product_id
             WHERE p.slug = 'ghe-dau-go-xoan'",
        )
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
    };
    let r = app
        .submit(&edit, &format!("{edit}/anh/{other_photo}/xoa"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // A bad photo at creation: the product is saved, the photo's problem shown beside it.
    let r = submit_multipart(
        &app,
        form_page,
        form_page,
        &[
            ("price_item_id", &item_s),
            ("name", "Thớt nghiến 30cm"),
            ("category", "Đồ gỗ"),
            ("stock", "3"),
        ],
        Some((b"not an image".to_vec(), "x.jpg")),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("không phải ảnh chụp") && html.contains("Đã đăng sản phẩm"));
}
