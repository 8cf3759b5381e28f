//! The community fair-price board: quorum, expiry, moderators, and prices reaching listings.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    quorum_approval_changes_every_listing_of_the_item,
    proposal_is_rejected_when_voting_time_runs_out,
    only_village_shops_vote_and_only_moderators_approve,
    one_open_proposal_per_item_and_clear_validation,
    quorum_is_configurable_per_village,
    the_price_history_is_a_chart_a_phone_can_read,
);

async fn item_id(app: &TestApp, village: &str, name: &str) -> i64 {
    let (_, body) = app
        .api(
            "GET",
            &format!("/villages/{village}/price-items"),
            None,
            None,
        )
        .await;
    body["price_items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no item {name}"))["id"]
        .as_i64()
        .unwrap()
}

async fn vote(app: &TestApp, token: &str, proposal: i64, approve: bool) -> (StatusCode, Value) {
    let path = format!("/proposals/{proposal}/votes");
    app.api(
        "POST",
        &path,
        Some(token),
        Some(json!({ "approve": approve })),
    )
    .await
}

async fn propose(
    app: &TestApp,
    token: &str,
    item: i64,
    price: Value,
    reason: &str,
) -> (StatusCode, Value) {
    let path = format!("/price-items/{item}/proposals");
    let body = json!({ "price_vnd": price, "reason": reason });
    app.api("POST", &path, Some(token), Some(body)).await
}

async fn prices_of_item(app: &TestApp, id: i64) -> Vec<i64> {
    let (_, body) = app
        .api("GET", &format!("/price-items/{id}"), None, None)
        .await;
    body["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["price_vnd"].as_i64().unwrap())
        .collect()
}

async fn quorum_approval_changes_every_listing_of_the_item(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let item = item_id(&app, "phu-doi", "Màn tuyn 1m6 x 2m").await;
    assert_eq!(prices_of_item(&app, item).await, vec![150_000, 150_000]);
    let (_, body) = app
        .api("GET", "/villages/phu-doi/proposals", None, None)
        .await;
    let proposal = body["proposals"][0]["id"].as_i64().unwrap();
    assert_eq!(
        body["proposals"][0]["yes"], 2,
        "demo proposal starts with two yes votes"
    );

    // Phú Đôi has 4 active shops: 3 yes votes are needed. A "no" does not pass it.
    let toan = app.api_login(TOAN, PW).await;
    let (s, p) = vote(&app, &toan, proposal, false).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["proposal"]["status"], "open");
    app.login_page(TOAN, PW).await;
    assert!(
        app.page("/quan-ly")
            .await
            .contains("Bạn đã chọn: không đồng ý.")
    );
    assert_eq!(prices_of_item(&app, item).await, vec![150_000, 150_000]);

    // The third yes comes through the page form, as a seller would vote on a phone.
    assert_eq!(
        app.login_page(DUC, PW).await.status(),
        StatusCode::SEE_OTHER
    );
    // Đức's dashboard lists the open proposal and asks for his vote; no admin links.
    let dash = app.page("/quan-ly").await;
    assert!(dash.contains("Đề xuất giá đang chờ biểu quyết"));
    assert!(dash.contains("Màn tuyn 1m6 x 2m: 150.000 ₫ → 160.000 ₫"));
    assert!(dash.contains("Bạn chưa biểu quyết."));
    assert!(!dash.contains("/quan-tri/"), "no admin links for sellers");
    let r = app
        .submit(
            "/lang/phu-doi/bang-gia",
            &format!("/de-xuat/{proposal}/bieu-quyet"),
            &[("approve", "1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/lang/phu-doi/bang-gia?ok=voted");

    let (_, p) = app
        .api("GET", &format!("/proposals/{proposal}"), None, None)
        .await;
    assert_eq!(p["proposal"]["status"], "approved");
    assert_eq!(p["proposal"]["decision"], "quorum");
    assert_eq!(prices_of_item(&app, item).await, vec![160_000, 160_000]);
    // Bà Hạnh's dashboard lists her proposal with its outcome.
    app.login_page(HANH, PW).await;
    let dash = app.page("/quan-ly").await;
    assert!(dash.contains("Đề xuất của tôi"));
    assert!(dash.contains("Màn tuyn 1m6 x 2m: 150.000 ₫ → 160.000 ₫</a> — Đã thông qua"));

    // Every listing shows it: both shops' product pages and the price board history.
    for slug in [
        "man-tuyn-1m6-x-2m",
        "man-tuyn-1m6-x-2m-man-phu-doi-thanh-huong",
    ] {
        let html = app.page(&format!("/san-pham/{slug}")).await;
        assert!(
            html.contains("<p class=\"price big\">160.000 ₫"),
            "{slug} shows the new price"
        );
        // The old price remains only in the price history.
        let start = html.find("<figure class=\"price-history\"").unwrap();
        let end = start + html[start..].find("</figure>").unwrap();
        let outside = format!("{}{}", &html[..start], &html[end..]);
        assert!(
            !outside.contains("150.000 ₫"),
            "{slug} no longer shows the old price"
        );
    }
    let board = app.page("/lang/phu-doi/bang-gia").await;
    assert!(board.contains("Biểu quyết thông qua"));
    assert!(board.contains("Đã thông qua"));
    let (_, hist) = app
        .api("GET", &format!("/price-items/{item}"), None, None)
        .await;
    let last = &hist["history"][0];
    assert_eq!(last["source"], "proposal");
    assert_eq!(last["old_price_vnd"], 150_000);
    assert_eq!(last["new_price_vnd"], 160_000);
    assert_eq!(
        hist["history"].as_array().unwrap().len(),
        2,
        "imported + approved, both kept"
    );
}

async fn proposal_is_rejected_when_voting_time_runs_out(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let item = item_id(&app, "phu-doi", "Màn tuyn 2 cửa 1m8 x 2m").await;
    let hanh = app.api_login(HANH, PW).await;
    let (s, p) = propose(&app, &hanh, item, json!(200000), "Vải tuyn tăng giá").await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let id = p["proposal"]["id"].as_i64().unwrap();
    let closes = p["proposal"]["closes_at"].as_i64().unwrap();
    let created = p["proposal"]["created_at"].as_i64().unwrap();
    assert_eq!(
        closes - created,
        7 * 86_400_000,
        "default voting time is 7 days"
    );
    let huong = app.api_login(HUONG, PW).await;
    vote(&app, &huong, id, true).await;

    // Time runs out with 1 of 3 needed votes.
    sqlx::query("UPDATE proposals SET closes_at = $1 WHERE id = $2")
        .bind(cholang::domain::now_ms() - 1)
        .bind(id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let (_, p) = app
        .api("GET", &format!("/proposals/{id}"), None, None)
        .await;
    assert_eq!(p["proposal"]["status"], "rejected");
    assert_eq!(p["proposal"]["decision"], "expired");
    assert_eq!(prices_of_item(&app, item).await, vec![180_000, 180_000]);

    // Late votes change nothing.
    let duc = app.api_login(DUC, PW).await;
    let (s, body) = vote(&app, &duc, id, true).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert_eq!(prices_of_item(&app, item).await, vec![180_000, 180_000]);
    let board = app.page("/lang/phu-doi/bang-gia").await;
    assert!(board.contains("Không thông qua"));
}

async fn only_village_shops_vote_and_only_moderators_approve(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let item = item_id(&app, "phu-doi", "Ghế đẩu gỗ xoan").await;
    let duc = app.api_login(DUC, PW).await;
    let (_, p) = propose(&app, &duc, item, json!("135.000"), "Gỗ xoan khan hiếm").await;
    let id = p["proposal"]["id"].as_i64().unwrap();

    // A Chuyên Mỹ seller has no vote in Phú Đôi, and cannot propose there either.
    let nghia = app.api_login(NGHIA, PW).await;
    let (s, body) = vote(&app, &nghia, id, true).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "forbidden");
    let other = item_id(&app, "phu-doi", "Kéo cắt cành 20cm").await;
    let (s, _) = propose(&app, &nghia, other, json!(1), "Giá kéo ở Chuyên Mỹ rẻ hơn").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Neither a seller nor a stranger may approve.
    for token in [&duc, &nghia] {
        let (s, _) = app
            .api(
                "POST",
                &format!("/proposals/{id}/approve"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (s, _) = app
        .api("POST", &format!("/proposals/{id}/approve"), None, None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, v) = app
        .api("GET", &format!("/proposals/{id}"), None, None)
        .await;
    assert_eq!(v["proposal"]["yes"], 0);
    assert_eq!(v["proposal"]["status"], "open");

    // The village moderator approves from the board page.
    app.login_page(MODERATOR, PW).await;
    let board = app.page("/lang/phu-doi/bang-gia").await;
    assert!(
        board.contains(&format!("/de-xuat/{id}/duyet")),
        "moderator sees the approve button"
    );
    // Approving asks for confirmation first: without the box ticked nothing changes, and
    // the message stands next to the proposal.
    let r = app
        .submit(
            "/lang/phu-doi/bang-gia",
            &format!("/de-xuat/{id}/duyet"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("Hãy xác nhận"));
    assert_eq!(prices_of_item(&app, item).await, vec![120_000]);
    let r = app
        .submit(
            "/lang/phu-doi/bang-gia",
            &format!("/de-xuat/{id}/duyet"),
            &[("confirm", "1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, v) = app
        .api("GET", &format!("/proposals/{id}"), None, None)
        .await;
    assert_eq!(v["proposal"]["status"], "approved");
    assert_eq!(v["proposal"]["decision"], "moderator");
    assert_eq!(prices_of_item(&app, item).await, vec![135_000]);
    let (_, hist) = app
        .api("GET", &format!("/price-items/{item}"), None, None)
        .await;
    assert_eq!(hist["history"][0]["source"], "moderator");
    assert_eq!(hist["history"][0]["actor"], "Trưởng thôn Phú Đôi");
}

async fn one_open_proposal_per_item_and_clear_validation(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let item = item_id(&app, "phu-doi", "Màn tuyn 1m6 x 2m").await;
    let hanh = app.api_login(HANH, PW).await;
    let path = format!("/price-items/{item}/proposals");
    let (s, body) = app
        .api(
            "POST",
            &path,
            Some(&hanh),
            Some(json!({"price_vnd": 170000, "reason": "Giá vải tuyn lại tăng thêm"})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "the demo proposal is still open: {body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("đang có một đề xuất")
    );

    let other = item_id(&app, "phu-doi", "Màn chụp tự bung 2m2").await;
    let path = format!("/price-items/{other}/proposals");
    let cases: Vec<(Value, &str)> = vec![
        (json!({"price_vnd": "abc", "reason": "x"}), "price_vnd"),
        (json!({"price_vnd": 0, "reason": "x"}), "price_vnd"),
        (json!({"price_vnd": 230000, "reason": "x"}), "price_vnd"),
        (json!({"price_vnd": 240000, "reason": "  "}), "reason"),
    ];
    for (body, field) in cases {
        let (s, e) = app
            .api("POST", &path, Some(&hanh), Some(body.clone()))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(e["error"]["code"], "validation");
        assert!(
            e["error"]["fields"][field].is_string(),
            "{body} names {field}: {e}"
        );
    }
    let (s, e) = app
        .api(
            "POST",
            &path,
            None,
            Some(json!({"price_vnd": 240000, "reason": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(e["error"]["code"], "unauthorized");
    let (s, _) = app
        .api(
            "POST",
            "/price-items/999999/proposals",
            Some(&hanh),
            Some(json!({"price_vnd": 1, "reason": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM proposals").await,
        1,
        "nothing half-written"
    );

    // The page form shows the same problems inline.
    app.login_page(HANH, PW).await;
    let other_s = other.to_string();
    let r = app
        .submit(
            "/lang/phu-doi/bang-gia",
            "/lang/phu-doi/bang-gia/de-xuat",
            &[
                ("price_item_id", &other_s),
                ("price_vnd", "12,5"),
                ("reason", ""),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("Giá phải là số nguyên dương"));
    assert!(html.contains("Vui lòng nhập lý do"));
}

async fn quorum_is_configurable_per_village(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let v = cholang::catalog::store::village_by_slug(&app.db, "phu-doi")
        .await
        .unwrap();
    // Two yes votes suffice when the village sets min 2 and more than 40 %.
    cholang::catalog::store::set_quorum(&app.db, v.id, 2, 40, 3)
        .await
        .unwrap();
    let (_, body) = app.api("GET", "/villages/phu-doi", None, None).await;
    assert_eq!(body["quorum"]["yes_needed"], 2);
    let item = item_id(&app, "phu-doi", "Khay trà gỗ hương").await;
    let duc = app.api_login(DUC, PW).await;
    let (_, p) = propose(&app, &duc, item, json!(370000), "Gỗ hương tăng giá").await;
    let p = &p["proposal"];
    assert_eq!(
        p["closes_at"].as_i64().unwrap() - p["created_at"].as_i64().unwrap(),
        3 * 86_400_000
    );
    let id = p["id"].as_i64().unwrap();
    vote(&app, &duc, id, true).await;
    let toan = app.api_login(TOAN, PW).await;
    let (_, p) = vote(&app, &toan, id, true).await;
    assert_eq!(p["proposal"]["status"], "approved");

    // An admin creates a village with its own rule; a seller may not.
    let admin = app.api_login(cholang::catalog::demo::ADMIN_EMAIL, PW).await;
    let body = json!({"name": "Quang Lãng", "commune": "Quang Lãng", "district": "Phú Xuyên", "province": "Hà Nội", "quorum_min_yes": 5, "quorum_percent": 60, "proposal_days": 10});
    let (s, _) = app
        .api("POST", "/villages", Some(&duc), Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = app
        .api("POST", "/villages", Some(&admin), Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["village"]["slug"], "quang-lang");
    // The same village twice: a clear 409, never a 500.
    let (s, e) = app.api("POST", "/villages", Some(&admin), Some(body)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("có làng cùng tên ở xã và huyện này"),
        "{e}"
    );
    assert_eq!(v["village"]["quorum_min_yes"], 5);
    assert_eq!(v["village"]["quorum_percent"], 60);
    assert_eq!(v["village"]["proposal_days"], 10);
    let (s, e) = app.api("POST", "/villages", Some(&admin), Some(json!({"name": "X", "commune": "", "district": "Y", "province": "Z", "quorum_percent": 150}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e["error"]["fields"]["commune"].is_string());
    assert!(e["error"]["fields"]["quorum_percent"].is_string());
}

async fn the_price_history_is_a_chart_a_phone_can_read(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let item = item_id(&app, "phu-doi", "Màn tuyn 1m6 x 2m").await;
    let chart_of = |html: &str| -> String {
        let start = html
            .find(&format!(
                "<figure class=\"price-history\" id=\"bieu-do-{item}\">"
            ))
            .unwrap_or_else(|| panic!("a chart for item {item}"));
        let end = start + html[start..].find("</figure>").unwrap();
        html[start..end].to_string()
    };
    let board = app.page("/lang/phu-doi/bang-gia").await;
    let c = chart_of(&board);
    assert!(c.contains("<svg class=\"price-chart\" viewBox=\"0 0 320 132\""));
    assert!(c.contains("role=\"img\"") && c.contains("<title id=\"gia-"));
    assert!(c.contains("Giá cộng đồng của Màn tuyn 1m6 x 2m theo thời gian"));
    assert_eq!(c.matches("<circle").count(), 1, "one price so far");
    assert!(c.contains(": 150.000 ₫</li>"), "the numbers as text");
    // Every item of the board with a price has its chart.
    let (_, items) = app
        .api("GET", "/villages/phu-doi/price-items", None, None)
        .await;
    assert_eq!(
        board.matches("<figure class=\"price-history\"").count(),
        items["price_items"].as_array().unwrap().len()
    );
    // The demo proposal passes (a third yes): the chart steps to the new price.
    let (_, body) = app
        .api("GET", "/villages/phu-doi/proposals", None, None)
        .await;
    let proposal = body["proposals"][0]["id"].as_i64().unwrap();
    let duc = app.api_login(DUC, PW).await;
    let (_, p) = vote(&app, &duc, proposal, true).await;
    assert_eq!(p["proposal"]["status"], "approved");
    let page = app.page("/san-pham/man-tuyn-1m6-x-2m").await;
    let c = chart_of(&page);
    assert_eq!(c.matches("<circle").count(), 2);
    assert!(c.contains(": 150.000 ₫</li>") && c.contains(": 160.000 ₫</li>"));
    assert!(c.contains("2 thay đổi giá"), "{c}");
    assert!(c.contains(">160.000 ₫</text>") && c.contains(">150.000 ₫</text>"));
    // Drawn by the server, styled by our sheet: nothing inline.
    assert!(!c.contains("style=") && !c.contains("<script"));
    let css = app.get("/static/app.css").await.text().await.unwrap();
    assert!(css.contains(".price-chart .line"));
}
