//! OCOP stars are a claim the village checks (issue 15): a certificate number and year, "chờ
//! xác minh" until the moderator confirms, and no OCOP search filter until then.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(ocop_stars_wait_for_the_village_moderator);

const SLUG: &str = "man-tuyn-1m6-x-2m"; // Bà Hạnh, Phú Đôi, no stars in the demo
const NAME: &str = "Màn tuyn 1m6 x 2m";

async fn in_ocop_search(app: &TestApp) -> bool {
    app.search_synced().await;
    let (s, v) = app.search("ocop_min=4&per_page=100").await;
    assert_eq!(s, StatusCode::OK);
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["name"] == NAME)
}

async fn patch(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    app.api(
        "PATCH",
        &format!("/products/{SLUG}"),
        Some(token),
        Some(body),
    )
    .await
}

async fn ocop_stars_wait_for_the_village_moderator(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let hanh = app.api_login(HANH, PW).await;
    // Stars need the certificate.
    let (s, v) = patch(&app, &hanh, json!({"ocop_stars": 4})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    for f in ["ocop_cert_no", "ocop_cert_year"] {
        assert!(v["error"]["fields"][f].is_string(), "{f}: {v}");
    }
    let (s, v) = patch(
        &app,
        &hanh,
        json!({"ocop_stars": 4, "ocop_cert_no": "1234/QĐ-UBND", "ocop_cert_year": 2017}),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "OCOP began in 2018: {v}"
    );
    let (s, v) = patch(
        &app,
        &hanh,
        json!({"ocop_stars": 4, "ocop_cert_no": "1234/QĐ-UBND", "ocop_cert_year": 2023}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["product"]["ocop_verified"], false);
    // Shown as a claim, not searchable as OCOP.
    let page = app.page(&format!("/san-pham/{SLUG}")).await;
    assert!(
        page.contains("OCOP ★★★★ (chờ xác minh)"),
        "pending on the product page"
    );
    assert!(
        !in_ocop_search(&app).await,
        "unconfirmed stars are not an OCOP filter match"
    );
    // Only the village's moderator (or an admin) decides.
    let huong = app.api_login(HUONG, PW).await;
    let (s, _) = app
        .api(
            "POST",
            &format!("/products/{SLUG}/ocop"),
            Some(&huong),
            Some(json!({"decision": "confirm"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The moderator's inbox lists it; confirmed from there.
    app.login_page(MODERATOR, PW).await;
    let dash = app.page("/quan-ly").await;
    assert!(
        dash.contains("khai OCOP 4 sao, giấy chứng nhận số 1234/QĐ-UBND, năm 2023"),
        "in the inbox"
    );
    let r = app
        .submit(
            "/quan-ly",
            &format!("/quan-ly/ocop/{SLUG}"),
            &[("decision", "confirm")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = app.page(&format!("/san-pham/{SLUG}")).await;
    assert!(!page.contains("chờ xác minh"));
    assert!(page.contains("đã được điều phối viên của làng xác minh"));
    assert!(page.contains("giấy chứng nhận số 1234/QĐ-UBND, năm 2023"));
    assert!(in_ocop_search(&app).await, "confirmed stars are searchable");
    assert!(
        !app.page("/quan-ly").await.contains("khai OCOP 4 sao"),
        "inbox emptied"
    );
    // A malformed decision is refused and changes nothing.
    let r = app
        .submit(
            "/quan-ly",
            &format!("/quan-ly/ocop/{SLUG}"),
            &[("decision", "maybe")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, v) = app
        .api("GET", &format!("/products/{SLUG}"), None, None)
        .await;
    assert_eq!(v["product"]["ocop_stars"], 4, "stars kept");
    // Deciding twice is refused.
    let moderator = app.api_login(MODERATOR, PW).await;
    let (s, _) = app
        .api(
            "POST",
            &format!("/products/{SLUG}/ocop"),
            Some(&moderator),
            Some(json!({"decision": "confirm"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // An edit that leaves the claim alone keeps the confirmation; another certificate does not.
    let (_, v) = patch(&app, &hanh, json!({"stock": 12})).await;
    assert_eq!(v["product"]["ocop_verified"], true, "{v}");
    let (_, v) = patch(&app, &hanh, json!({"ocop_cert_no": "999/QĐ-UBND"})).await;
    assert_eq!(v["product"]["ocop_verified"], false, "{v}");
    assert!(!in_ocop_search(&app).await);
    // A wrong claim is removed by the moderator.
    let (s, v) = app
        .api(
            "POST",
            &format!("/products/{SLUG}/ocop"),
            Some(&moderator),
            Some(json!({"decision": "reject"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["product"]["ocop_stars"], Value::Null);
    assert!(
        !app.page(&format!("/san-pham/{SLUG}"))
            .await
            .contains("OCOP ★")
    );
    // Stars imported by the admin (the demo) count as confirmed.
    let (_, v) = app
        .api("GET", "/products/long-nhan-say-kho-500g", None, None)
        .await;
    assert_eq!(v["product"]["ocop_stars"], 4);
    assert_eq!(v["product"]["ocop_verified"], true);
}
