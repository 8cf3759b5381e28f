//! The village's community digital team (issue 30): helpers named by the moderator bring
//! households online with the household's consent code, work on the household's shop, are
//! kept away from its money, are seen by the owner, and can be sent away by the owner.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    a_helper_brings_a_household_online_and_works_for_it,
    only_the_villages_helpers_onboard_its_households,
);

const HELPER: &str = "0977300300";
const HOUSEHOLD: &str = "0977400400";

/// The moderator of Phú Đôi names a new account as a helper; answers the helper's token.
async fn named_helper(app: &TestApp) -> String {
    let helper = app.register_seller(HELPER, "Đoàn viên Minh").await;
    let moderator = app.api_login(MODERATOR, PW).await;
    let (s, v) = app
        .api(
            "POST",
            "/villages/phu-doi/helpers",
            Some(&moderator),
            Some(json!({"login": HELPER})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["display_name"], "Đoàn viên Minh");
    let (s, v) = app
        .api("GET", "/villages/phu-doi/helpers", Some(&moderator), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["helpers"].as_array().unwrap().len(), 1, "{v}");
    helper
}

async fn a_helper_brings_a_household_online_and_works_for_it(b: Backend) {
    let app = TestApp::with_demo(b).await;
    app.quiet_demo().await;
    let helper = named_helper(&app).await;
    // The household's phone gets the consent code; the helper types it in.
    let (s, h) = app
        .api(
            "POST",
            "/villages/phu-doi/households",
            Some(&helper),
            Some(json!({"name": "Bà Nguyễn Thị Tư", "phone": "0977 400 400", "shop_name": "Màn tuyn Bà Tư"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{h}");
    assert_eq!(h["status"], "waiting_code");
    let id = h["id"].as_i64().unwrap();
    let code = app.phone_code(HOUSEHOLD);
    let confirm = |code: String| {
        let (app, helper) = (&app, helper.clone());
        async move {
            app.api(
                "POST",
                &format!("/households/{id}/confirm"),
                Some(&helper),
                Some(json!({"code": code})),
            )
            .await
        }
    };
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert_eq!(
        confirm(wrong.into()).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (s, v) = confirm(code.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let slug = v["shop"]["slug"].as_str().unwrap().to_string();
    assert_eq!(v["login"], HOUSEHOLD);
    assert_eq!(v["display_name"], "Bà Nguyễn Thị Tư");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM users WHERE phone = '0977400400' AND phone_verified_at IS NOT NULL")
            .await,
        1,
        "the household's phone is proven by its code"
    );
    assert_eq!(confirm(code).await.0, StatusCode::CONFLICT, "once");
    app.accept_shop(&slug).await;

    // The helper lists a product for the household and accepts its paid order.
    let item = app
        .board_item("phu-doi", "Màn tuyn Bà Tư 1m8", 210_000)
        .await;
    let (s, p) = app
        .api(
            "POST",
            "/products",
            Some(&helper),
            Some(json!({"shop": slug, "name": "Màn tuyn Bà Tư 1m8", "category": "Màn tuyn", "stock": 5, "price_item_id": item})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let product = p["product"]["slug"].as_str().unwrap().to_string();
    app.search_synced().await;
    let (s, c) = app.checkout(&[(&product, 1)]).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    app.transfer(
        c["total_vnd"].as_i64().unwrap(),
        c["payment"]["code"].as_str().unwrap(),
    )
    .await;
    let order = c["orders"][0]["code"].as_str().unwrap().to_string();
    let (s, v) = app.api("GET", "/me/households", Some(&helper), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["tasks"][0]["paid_orders"], 1, "{v}");
    let (s, v) = app.api("GET", "/orders", Some(&helper), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["orders"][0]["code"], order.as_str(), "{v}");
    let (s, v) = app
        .api(
            "POST",
            &format!("/orders/{order}/transitions"),
            Some(&helper),
            Some(json!({"to": "accepted"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // A batch recorded over the API counts as the helper's action too.
    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(7 * 3600).unwrap())
        .format("%Y-%m-%d")
        .to_string();
    let (s, batch) = app
        .api(
            "POST",
            &format!("/products/{product}/batches"),
            Some(&helper),
            Some(json!({"produced_on": today, "quantity": 10, "maker": "Bà Tư", "inputs": [], "notes": ""})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{batch}");
    let batch_code = batch["batch"]["code"].as_str().unwrap().to_string();
    // Cancelling owes the buyer money: not the helper's.
    let (s, _) = app
        .api(
            "POST",
            &format!("/orders/{order}/transitions"),
            Some(&helper),
            Some(json!({"to": "cancelled"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Never the money, the payout account or the shop's settings.
    for (method, path, body) in [
        ("GET", format!("/shops/{slug}/balance"), None),
        ("GET", format!("/shops/{slug}/statement"), None),
        ("GET", format!("/shops/{slug}/ledger"), None),
        (
            "PUT",
            format!("/shops/{slug}/payout-account"),
            Some(
                json!({"bank_bin": "970436", "account_no": "0011001234567", "account_name": "DOAN VIEN MINH"}),
            ),
        ),
        (
            "PATCH",
            format!("/shops/{slug}"),
            Some(json!({"email": "minh@example.vn"})),
        ),
    ] {
        let (s, v) = app.api(method, &path, Some(&helper), body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} {path}: {v}");
    }
    app.login_page(HELPER, PW).await;
    let r = app
        .get(&format!("/quan-ly/doanh-thu.csv?shop={slug}"))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        !app.page("/quan-ly/doanh-thu")
            .await
            .contains("Màn tuyn Bà Tư"),
        "the money page lists only the helper's own shops"
    );
    let page = app.page("/quan-ly/giup-ho").await;
    assert!(
        page.contains("Màn tuyn Bà Tư") && page.contains("In tem QR"),
        "{page}"
    );
    let orders_page = app.page("/quan-ly/don-hang?tab=tat-ca").await;
    assert!(orders_page.contains(&order));
    assert!(
        !orders_page.contains("Hủy đơn (hoàn tiền)"),
        "no cancel offered to a helper"
    );

    // The owner sees who did what for the shop, and sends the helper away.
    let (s, _) = app
        .api(
            "POST",
            "/auth/password-reset",
            None,
            Some(json!({"login": HOUSEHOLD})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let code = app.phone_code(HOUSEHOLD);
    let (s, v) = app
        .api(
            "POST",
            "/auth/password-reset/confirm",
            None,
            Some(json!({"login": HOUSEHOLD, "code": code, "new_password": "mat-khau-ba-tu"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let owner = app.api_login(HOUSEHOLD, "mat-khau-ba-tu").await;
    let (s, v) = app
        .api("GET", &format!("/shops/{slug}/helpers"), Some(&owner), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["helpers"][0]["display_name"], "Đoàn viên Minh");
    let actions: Vec<String> = v["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{} {}",
                a["helper"].as_str().unwrap(),
                a["action"].as_str().unwrap()
            )
        })
        .collect();
    for what in [
        "mở cửa hàng cho hộ",
        "đăng sản phẩm “Màn tuyn Bà Tư 1m8”",
        &format!("nhận đơn {order}"),
        &format!("ghi lô {batch_code}"),
    ] {
        assert!(
            actions
                .iter()
                .any(|a| a.starts_with("Đoàn viên Minh") && a.contains(what)),
            "{what}: {actions:?}"
        );
    }
    app.login_page(HOUSEHOLD, "mat-khau-ba-tu").await;
    let dash = app.page("/quan-ly").await;
    assert!(
        dash.contains("Đoàn viên Minh giúp bạn: đăng sản phẩm"),
        "shown on the owner's dashboard"
    );
    let (s, _) = app
        .api(
            "DELETE",
            &format!("/shops/{slug}/helpers/{HELPER}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .api(
            "PATCH",
            &format!("/products/{product}"),
            Some(&helper),
            Some(json!({"stock": 9})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "revoked at once");
}

async fn only_the_villages_helpers_onboard_its_households(b: Backend) {
    let app = TestApp::with_demo(b).await;
    app.quiet_demo().await;
    let seller = app.api_login(HUONG, PW).await;
    let body = json!({"name": "Ông Sáu", "phone": "0977500500", "shop_name": "Gỗ Ông Sáu"});
    let (s, _) = app
        .api(
            "POST",
            "/villages/phu-doi/households",
            Some(&seller),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(app.phone_codes("0977500500").is_empty());
    // Naming helpers is the village moderator's: not a seller's, not another village's.
    let (s, _) = app
        .api(
            "POST",
            "/villages/phu-doi/helpers",
            Some(&seller),
            Some(json!({"login": HUONG})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let helper = named_helper(&app).await;
    let (s, _) = app
        .api(
            "POST",
            "/villages/chuyen-my/households",
            Some(&helper),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a helper of Phú Đôi only");
    // Bad input names each field.
    let (s, e) = app
        .api(
            "POST",
            "/villages/phu-doi/households",
            Some(&helper),
            Some(json!({"name": "", "phone": "123", "shop_name": ""})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    for f in ["name", "phone", "shop_name"] {
        assert!(e["error"]["fields"][f].is_string(), "{f}: {e}");
    }
    // A shop name the village already has is refused before any code is sent.
    let (s, e) = app
        .api(
            "POST",
            "/villages/phu-doi/households",
            Some(&helper),
            Some(json!({"name": "Bà Sáu", "phone": "0977500501", "shop_name": "Màn tuyn Bà Hạnh"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e["error"]["fields"]["shop_name"].is_string());
    assert!(app.phone_codes("0977500501").is_empty());
    // The moderator takes the helper off the team: their households' shops close to them.
    let moderator = app.api_login(MODERATOR, PW).await;
    let (s, _) = app
        .api(
            "DELETE",
            &format!("/villages/phu-doi/helpers/{HELPER}"),
            Some(&moderator),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .api(
            "POST",
            "/villages/phu-doi/households",
            Some(&helper),
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, v): (StatusCode, Value) = app
        .api("GET", "/villages/phu-doi/helpers", Some(&moderator), None)
        .await;
    assert_eq!(v["helpers"].as_array().unwrap().len(), 0);
}
