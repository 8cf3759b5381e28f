//! Words on the pages (issue 15): messages read as sentences, error pages keep the visitor's
//! header, a Telegram "@name" is refused with a way to find the chat id.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    small_things_a_58_year_old_reader_needs,
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
    let admin = app.api_login(cholang::demo::catalog::ADMIN_EMAIL, PW).await;
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
    app.login_page(cholang::demo::catalog::ADMIN_EMAIL, PW)
        .await;
    let html = app.page("/quan-tri/doi-soat").await;
    assert_eq!(html.matches("<p>Không có.</p>").count(), 5, "{html}");
}

/// Issue 31, the polish list: phones in groups, one search box per page, the cart's counts
/// and "Mua tiếp", a chart only for an item with two prices, reset codes with spaces, the
/// new password typed twice, "Hiện mật khẩu", a favicon, plain words for photos.
async fn small_things_a_58_year_old_reader_needs(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let shop = app.page("/shop/man-tuyn-ba-hanh").await;
    assert!(
        shop.contains(r#"<a href="tel:0912000101">0912 000 101</a>"#),
        "{shop}"
    );
    // One search box per page.
    for path in [
        "/",
        "/tim-kiem?q=man",
        "/truy-xuat/KHONG-CO",
        "/lang/phu-doi",
    ] {
        let r = app.get(path).await;
        let html = r.text().await.unwrap();
        assert_eq!(html.matches(r#"type="search""#).count(), 1, "{path}");
    }
    // The cart counts what is in it and offers to keep shopping.
    let id = app
        .scalar("SELECT id FROM products WHERE slug = 'man-tuyn-1m6-x-2m'")
        .await
        .to_string();
    let r = app
        .submit(
            "/san-pham/man-tuyn-1m6-x-2m",
            "/gio-hang",
            &[
                ("product_id", id.as_str()),
                ("quantity", "3"),
                ("action", "add"),
            ],
        )
        .await;
    assert!(
        r.status().is_redirection() || r.status().is_success(),
        "{}",
        r.status()
    );
    let cart = app.page("/gio-hang").await;
    assert!(cart.contains("1 sản phẩm, 3 món"), "{cart}");
    assert!(cart.contains(r#"<a href="/">Mua tiếp</a>"#));
    assert!(cart.contains(r#"<div class="stepper">"#));
    // A chart only when an item has had two prices; one line otherwise.
    let board = app.page("/lang/phu-doi/bang-gia").await;
    assert!(
        board.contains("chưa thay đổi."),
        "single-price items: one line"
    );
    let charts = board.matches("<figure class=\"price-history\"").count();
    let items_with_changes: i64 = app
        .scalar(
            "SELECT COUNT(*) FROM (SELECT c.price_item_id FROM price_changes c JOIN price_items i ON i.id = c.price_item_id
               JOIN villages v ON v.id = i.village_id WHERE v.slug = 'phu-doi'
               GROUP BY c.price_item_id HAVING COUNT(*) > 1 OR MAX(c.old_price_vnd) IS NOT NULL) t",
        )
        .await;
    assert_eq!(charts as i64, items_with_changes, "{board}");
    // The new password twice; a mismatch keeps the login and says so.
    let r = app
        .submit(
            "/dang-ky",
            "/dang-ky",
            &[
                ("login", "0912555111"),
                ("display_name", "Bà Năm"),
                ("password", "mat-khau-dai-1"),
                ("password_again", "mat-khau-dai-2"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Hai lần nhập mật khẩu mới không giống nhau") && html.contains("0912555111")
    );
    for path in ["/dang-ky", "/dang-nhap", "/dat-lai-mat-khau"] {
        assert!(
            app.page(path)
                .await
                .contains(r#"<script src="/static/forms.js" defer></script>"#),
            "{path}"
        );
    }
    let js = app.page("/static/forms.js").await;
    assert!(js.contains("Hiện mật khẩu"));
    // A reset code typed in groups with spaces.
    let (s, _) = app
        .api(
            "POST",
            "/auth/password-reset",
            None,
            Some(json!({"login": HANH})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let code = app.phone_code(HANH);
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    let r = app
        .submit(
            "/dat-lai-mat-khau",
            "/dat-lai-mat-khau",
            &[
                ("login", HANH),
                ("code", spaced.as_str()),
                ("password", "mat-khau-moi-123"),
                ("password_again", "mat-khau-moi-123"),
            ],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    // A favicon, linked from every page.
    let icon = app.get("/favicon.svg").await;
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    assert_eq!(location(&app.get("/favicon.ico").await), "/favicon.svg");
    assert!(
        app.page("/")
            .await
            .contains(r#"<link rel="icon" href="/favicon.svg""#)
    );
    // Plain words where a photo is asked for (the password is the new one).
    app.login_page(HANH, "mat-khau-moi-123").await;
    let form = app
        .page("/quan-ly/san-pham/moi?shop=man-tuyn-ba-hanh")
        .await;
    assert!(form.contains("ảnh chụp bằng điện thoại") && !form.contains("JPEG, PNG hoặc WebP"));
}
