//! Registration, login, sessions, CSRF and login attempt limits.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    register_login_logout_with_safe_cookies,
    cookies_are_secure_behind_https,
    forms_without_a_valid_csrf_token_are_refused,
    a_form_open_across_a_browser_restart_still_sends,
    login_attempts_are_limited,
    api_needs_a_valid_token,
);

fn set_cookie(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

async fn register_login_logout_with_safe_cookies(b: Backend) {
    let app = TestApp::spawn(b).await;
    let r = app
        .submit(
            "/dang-ky",
            "/dang-ky",
            &[
                ("login", "Lan@PhuDoi.vn"),
                ("display_name", "Chị Lan"),
                ("password", "matkhau-lang-nghe"),
            ],
        )
        .await;
    // The answer says nothing about whether the login existed: go and log in.
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/dang-nhap?ok=registered");
    let hash: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE email = 'lan@phudoi.vn'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(app.page(&location(&r)).await.contains("Đã nhận đăng ký"));

    let r = app.login_page("lan@phudoi.vn", "matkhau-lang-nghe").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = set_cookie(&r, "cl_session");
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Lax"));
    assert!(!cookie.contains("Secure"), "plain http in tests");
    let stored: String = sqlx::query_scalar("SELECT token_hash FROM sessions")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(
        !cookie.contains(&stored),
        "only a hash of the token is stored"
    );

    // Registering the same email again answers exactly like a new registration; the
    // account is unchanged and its owner is told by notice.
    let r = app
        .submit(
            "/dang-ky",
            "/dang-ky",
            &[
                ("login", "lan@phudoi.vn"),
                ("display_name", "Lan 2"),
                ("password", "matkhau-khac-1"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/dang-nhap?ok=registered");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM users").await, 1);
    let told: i64 = app
        .scalar(
            "SELECT COUNT(*) FROM notices WHERE kind = 'account' AND recipient = 'lan@phudoi.vn'",
        )
        .await;
    assert_eq!(told, 1, "the owner hears that someone tried");
    assert_eq!(
        app.login_page("lan@phudoi.vn", "matkhau-khac-1")
            .await
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "the second password does not open the account"
    );

    let r = app.submit("/quan-ly", "/dang-xuat", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM sessions").await, 0);
    let r = app.get("/quan-ly").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/dang-nhap?next=/quan-ly");

    let r = app.login_page("LAN@phudoi.vn", "matkhau-lang-nghe").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/quan-ly");
    // Only same-site paths are followed after login.
    let r = app
        .submit(
            "/dang-nhap",
            "/dang-nhap",
            &[
                ("login", "lan@phudoi.vn"),
                ("password", "matkhau-lang-nghe"),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(location(&r), "/quan-ly");
}

async fn cookies_are_secure_behind_https(b: Backend) {
    let app = TestApp::spawn_with(b, &[("CHOLANG_PUBLIC_URL", "https://cholang.vn")]).await;
    let r = app.get("/dang-nhap").await;
    assert!(set_cookie(&r, "cl_csrf").contains("Secure"));
    let (s, body) = app
        .api(
            "POST",
            "/auth/register",
            None,
            Some(json!({"login": "0988111222", "display_name": "Anh Tú", "password": "12345678x"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    // A phone login exists once the code sent to the phone is typed.
    let code = app.phone_code("0988111222");
    let (s, body) = app
        .api(
            "POST",
            "/auth/verify-phone",
            None,
            Some(json!({"login": "0988111222", "code": code})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let r = app
        .client
        .post(app.url("/dang-nhap"))
        // a browser on https would send its CSRF cookie back; the test client sets it by hand
        .header(
            "cookie",
            "cl_csrf=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )
        .form(&[
            (
                "csrf",
                csrf_for(&app, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            ),
            ("login", "0988111222".into()),
            ("password", "12345678x".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let c = set_cookie(&r, "cl_session");
    assert!(
        c.contains("Secure") && c.contains("HttpOnly") && c.contains("SameSite=Lax"),
        "{c}"
    );
}

/// The form token the server expects for a given CSRF cookie value.
fn csrf_for(app: &TestApp, seed: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&app.config.secret_key).unwrap();
    mac.update(b"csrf:");
    mac.update(seed.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

async fn forms_without_a_valid_csrf_token_are_refused(b: Backend) {
    let app = TestApp::with_demo(b).await;
    app.login_page(HANH, PW).await;
    let proposals = app.scalar("SELECT COUNT(*) FROM proposals").await;
    let item: i64 =
        sqlx::query_scalar("SELECT id FROM price_items WHERE name = 'Màn chụp tự bung 2m2'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let item = item.to_string();
    let fields = [
        ("price_item_id", item.as_str()),
        ("price_vnd", "250000"),
        ("reason", "Giá vải tuyn tăng từ tháng 11"),
    ];
    // no token
    let r = app
        .post_form("/lang/phu-doi/bang-gia/de-xuat", &fields)
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Phiên biểu mẫu đã hết hạn")
    );
    // a made-up token
    let mut with_bad = vec![("csrf", "00ff")];
    with_bad.extend_from_slice(&fields);
    assert_eq!(
        app.post_form("/lang/phu-doi/bang-gia/de-xuat", &with_bad)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    // a real token from another browser (another cookie)
    let other = app.new_browser();
    let html = other
        .get(app.url("/dang-nhap"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let foreign = csrf_in(&html);
    let mut with_foreign = vec![("csrf", foreign.as_str())];
    with_foreign.extend_from_slice(&fields);
    assert_eq!(
        app.post_form("/lang/phu-doi/bang-gia/de-xuat", &with_foreign)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    // login and logout are protected too
    assert_eq!(
        app.post_form("/dang-xuat", &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post_form("/dang-nhap", &[("login", HANH), ("password", PW)])
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM proposals").await,
        proposals,
        "nothing changed"
    );

    // With this browser's own token it goes through.
    let r = app
        .submit(
            "/lang/phu-doi/bang-gia",
            "/lang/phu-doi/bang-gia/de-xuat",
            &fields,
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM proposals").await,
        proposals + 1
    );
}

async fn login_attempts_are_limited(b: Backend) {
    let app = TestApp::with_demo(b).await;
    for _ in 0..5 {
        let r = app.login_page(HANH, "sai-mat-khau").await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("Sai email/số điện thoại hoặc mật khẩu")
        );
    }
    // Even the right password is refused now, on the page and on the API.
    let r = app.login_page(HANH, PW).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.text().await.unwrap().contains("Quá nhiều lần thử sai"));
    let (s, e) = app
        .api(
            "POST",
            "/auth/login",
            None,
            Some(json!({"login": "+84912000101", "password": PW})),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(e["error"]["code"], "too_many_attempts");
    // Another account is not locked out by it.
    assert_eq!(
        app.login_page(HUONG, PW).await.status(),
        StatusCode::SEE_OTHER
    );
    // An unknown login is answered like a wrong password (no account discovery).
    let r = app.login_page("0999999999", PW).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn api_needs_a_valid_token(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let (s, e) = app.api("GET", "/me", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(e["error"]["code"], "unauthorized");
    let (s, _) = app.api("GET", "/me", Some("not-a-token"), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = app
        .api(
            "POST",
            "/auth/login",
            None,
            Some(json!({"login": HANH, "password": "wrong-one"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let token = app.api_login(HANH, PW).await;
    let (s, me) = app.api("GET", "/me", Some(&token), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["user"]["display_name"], "Nguyễn Thị Hạnh");
    assert_eq!(me["shops"][0]["slug"], "man-tuyn-ba-hanh");
    assert!(me["user"].get("password_hash").is_none());
    let (s, _) = app.api("POST", "/auth/logout", Some(&token), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.api("GET", "/me", Some(&token), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // A browser session cookie does not authenticate API calls.
    app.login_page(HANH, PW).await;
    assert!(app.page("/quan-ly").await.contains("Màn tuyn Bà Hạnh"));
    let (s, _) = app.api("GET", "/me", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, e) = app
        .api(
            "POST",
            "/auth/register",
            None,
            Some(json!({"login": "abc", "password": "1"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    for f in ["login", "display_name", "password"] {
        assert!(e["error"]["fields"][f].is_string(), "{f}");
    }
}

/// Issue 31, item 3: a form open across a browser restart still sends. The CSRF cookie lasts
/// across restarts, and a form from our own pages whose token is stale comes back with
/// everything typed kept and one press to send it; a cross-site post is refused as before.
async fn a_form_open_across_a_browser_restart_still_sends(b: Backend) {
    let app = TestApp::with_demo(b).await;
    // The cookie outlives the browser session.
    let fresh = app.new_browser();
    let r = fresh.get(app.url("/")).send().await.unwrap();
    let set: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .filter(|c| c.starts_with("cl_csrf="))
        .collect();
    assert_eq!(set.len(), 1, "{set:?}");
    assert!(set[0].contains("Max-Age="), "{}", set[0]);

    app.login_page(HANH, PW).await;
    let item: i64 =
        sqlx::query_scalar("SELECT id FROM price_items WHERE name = 'Màn chụp tự bung 2m2'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let item = item.to_string();
    let fields = [
        ("csrf", "a-token-from-a-cookie-the-browser-lost"),
        ("price_item_id", item.as_str()),
        ("price_vnd", "250.000"),
        ("reason", "Giá vải tuyn tăng từ tháng 11"),
    ];
    let proposals = app.scalar("SELECT COUNT(*) FROM proposals").await;
    let path = "/lang/phu-doi/bang-gia/de-xuat";
    // From another site: refused, nothing to press.
    let r = app
        .client
        .post(app.url(path))
        .header("origin", "https://evil.example")
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(!r.text().await.unwrap().contains("Gửi lại"));
    // From our own page: shown again, typed values kept, a fresh token.
    let r = app
        .client
        .post(app.url(path))
        .header("origin", app.url(""))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Những gì bạn đã nhập vẫn còn nguyên"),
        "{html}"
    );
    assert!(html.contains("<li>Giá vải tuyn tăng từ tháng 11</li>"));
    assert!(html.contains(r#"name="price_vnd" value="250.000""#));
    assert!(html.contains(&format!(r#"action="{path}""#)));
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM proposals").await,
        proposals,
        "nothing written before the press"
    );
    // One press sends it, with the fields the page carries.
    let token = csrf_in(&html);
    let mut again = vec![("csrf", token.as_str())];
    again.extend_from_slice(&fields[1..]);
    let r = app.post_form(path, &again).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM proposals").await,
        proposals + 1
    );
    // A password is never carried into the page.
    let r = app
        .client
        .post(app.url("/dang-nhap"))
        .header("origin", app.url(""))
        .form(&[("csrf", "stale"), ("login", HANH), ("password", PW)])
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    assert!(
        html.contains(r#"name="login" value="0912000101""#),
        "{html}"
    );
    assert!(!html.contains(PW));
}
