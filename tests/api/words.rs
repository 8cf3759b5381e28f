//! Words on the pages (issue 15): messages read as sentences, error pages keep the visitor's
//! header, a Telegram "@name" is refused with a way to find the chat id.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    messages_start_with_a_capital_letter,
    error_pages_keep_the_logged_in_header,
    telegram_takes_a_numeric_chat_id_only,
    empty_sections_say_so,
);

fn starts_upper(s: &str) -> bool {
    s.chars().next().is_some_and(char::is_uppercase)
}

async fn messages_start_with_a_capital_letter(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let token = app.api_login(HANH, PW).await;
    let (s, v) = app
        .api(
            "POST",
            "/products",
            Some(&token),
            Some(
                json!({"shop": "man-tuyn-ba-hanh", "name": "", "category": "", "stock": -1,
                        "ocop_stars": 7, "price_item_id": "x", "gtin": "123"}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let fields = v["error"]["fields"].as_object().unwrap();
    assert!(fields.len() >= 5, "{v}");
    for (f, m) in fields {
        assert!(starts_upper(m.as_str().unwrap()), "{f}: {m}");
    }
    assert!(starts_upper(v["error"]["message"].as_str().unwrap()));
    let (_, v) = app.api("GET", "/products/khong-co", None, None).await;
    assert!(starts_upper(v["error"]["message"].as_str().unwrap()), "{v}");
    // On a form, beside the field.
    app.login_page(HANH, PW).await;
    let r = app
        .submit(
            "/quan-ly/cua-hang/man-tuyn-ba-hanh",
            "/quan-ly/cua-hang/man-tuyn-ba-hanh",
            &[("name", "Màn tuyn Bà Hạnh"), ("phone", "12")],
        )
        .await;
    let html = r.text().await.unwrap();
    assert!(
        html.contains(r#"<p class="error">Số điện thoại"#),
        "capitalized inline"
    );
    // The search filter says what it does.
    assert!(
        app.page("/tim-kiem?q=man")
            .await
            .contains("Chỉ hiện hàng còn hàng")
    );
}

async fn error_pages_keep_the_logged_in_header(b: Backend) {
    let app = TestApp::with_demo(b).await;
    // Logged out: the usual header.
    let r = app.get("/lang/khong-co-lang-nay").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"href="/dang-nhap""#) && !html.contains("Đăng xuất"));
    // Logged in: the seller is still logged in on a 404 and a 403.
    app.login_page(HANH, PW).await;
    for (path, status) in [
        ("/lang/khong-co-lang-nay", StatusCode::NOT_FOUND),
        ("/quan-ly/cua-hang/khong-co", StatusCode::NOT_FOUND),
        ("/quan-ly/cua-hang/do-go-minh-duc", StatusCode::FORBIDDEN),
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status(), status, "{path}");
        let html = r.text().await.unwrap();
        assert!(
            html.contains("Đăng xuất"),
            "{path}: logout form in the header"
        );
        assert!(
            html.contains(r#"href="/quan-ly""#),
            "{path}: the dashboard link"
        );
        assert!(
            !html.contains(r#"href="/dang-nhap""#),
            "{path}: not shown as logged out"
        );
        let (title, message) = match status {
            StatusCode::NOT_FOUND => ("<h1>Không tìm thấy</h1>", "Không tìm thấy trang"),
            _ => ("<h1>Không có quyền</h1>", "Bạn không có quyền"),
        };
        assert!(html.contains(title) && html.contains(message), "{path}");
    }
    // The API's errors stay JSON.
    let (s, v): (StatusCode, Value) = app.api("GET", "/shops/khong-co", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "not_found");
}

async fn telegram_takes_a_numeric_chat_id_only(b: Backend) {
    let app = TestApp::with_demo(b).await;
    app.login_page(HANH, PW).await;
    let path = "/quan-ly/cua-hang/man-tuyn-ba-hanh";
    let form = app.page(path).await;
    assert!(
        form.contains("@userinfobot"),
        "says how to find the chat id"
    );
    let r = app
        .submit(
            path,
            path,
            &[
                ("name", "Màn tuyn Bà Hạnh"),
                ("phone", HANH),
                ("telegram_chat_id", "@hanh_phudoi"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("Telegram không cho bot nhắn tới @tên"));
    assert!(
        html.contains(r#"value="@hanh_phudoi""#),
        "what was typed stays"
    );
    let saved: Option<String> =
        sqlx::query_scalar("SELECT telegram_chat_id FROM shops WHERE slug = 'man-tuyn-ba-hanh'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(saved, None);
    for ok in ["123456789", "-1001234567890"] {
        let r = app
            .submit(
                path,
                path,
                &[
                    ("name", "Màn tuyn Bà Hạnh"),
                    ("phone", HANH),
                    // As the form shows it: the shop's email stays (a change needs the password).
                    ("email", "hanh.phudoi@example.vn"),
                    ("telegram_chat_id", ok),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{ok}");
    }
    let token = app.api_login(HANH, PW).await;
    let (s, v) = app
        .api(
            "PATCH",
            "/shops/man-tuyn-ba-hanh",
            Some(&token),
            Some(json!({"telegram_chat_id": "@kenh"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"]["fields"]["telegram_chat_id"].is_string());
}

async fn empty_sections_say_so(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let admin = app.api_login(cholang::catalog::demo::ADMIN_EMAIL, PW).await;
    let (s, v) = app
        .api(
            "POST",
            "/villages",
            Some(&admin),
            Some(json!({"name": "Nhị Khê", "commune": "Nhị Khê", "district": "Thường Tín", "province": "Hà Nội"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let slug = v["village"]["slug"].as_str().unwrap().to_string();
    let html = app.page(&format!("/lang/{slug}")).await;
    assert_eq!(
        html.matches("<p>Không có.</p>").count(),
        2,
        "no shops, no products"
    );
    // A fresh market's reconciliation page: every empty section says so.
    app.login_page(cholang::catalog::demo::ADMIN_EMAIL, PW)
        .await;
    let html = app.page("/quan-tri/doi-soat").await;
    assert_eq!(html.matches("<p>Không có.</p>").count(), 5, "{html}");
}
