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
    chained_proposals_cannot_slip_past_the_band,
    a_junk_proposal_cannot_lock_an_item,
    small_villages_can_still_decide,
    a_product_takes_the_item_whose_name_it_carries,
);

/// A village's price item by name, as the API lists it.
async fn item_of(app: &TestApp, village: &str, name: &str) -> Value {
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
        .unwrap_or_else(|| panic!("no item {name}"))
        .clone()
}

async fn item_id(app: &TestApp, village: &str, name: &str) -> i64 {
    item_of(app, village, name).await["id"].as_i64().unwrap()
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
    assert!(html.contains("Số tiền là số nguyên (đồng), ví dụ 200.000 hoặc 200k"));
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
    let admin = app.api_login(cholang::demo::catalog::ADMIN_EMAIL, PW).await;
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
    // One price so far: a line saying so, not a flat chart (issue 31, polish list).
    let board = app.page("/lang/phu-doi/bang-gia").await;
    assert!(
        board.contains(&format!(
            "<p class=\"price-history compact\" id=\"bieu-do-{item}\">Màn tuyn 1m6 x 2m <small>(giá mỗi chiếc)</small>: 150.000 ₫ từ"
        )),
        "{board}"
    );
    assert!(!board.contains(&format!(
        "<figure class=\"price-history\" id=\"bieu-do-{item}\">"
    )));
    // Every item of the board with a price has its chart or its line.
    let (_, items) = app
        .api("GET", "/villages/phu-doi/price-items", None, None)
        .await;
    assert_eq!(
        board.matches("class=\"price-history").count(),
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
    assert!(c.contains("<svg class=\"price-chart\" viewBox=\"0 0 320 132\""));
    assert!(c.contains("role=\"img\"") && c.contains("<title id=\"gia-"));
    assert!(c.contains("Giá cộng đồng của Màn tuyn 1m6 x 2m theo thời gian"));
    assert_eq!(c.matches("<circle").count(), 2);
    assert!(c.contains(": 150.000 ₫</li>") && c.contains(": 160.000 ₫</li>"));
    assert!(c.contains("2 thay đổi giá"), "{c}");
    assert!(c.contains(">160.000 ₫</text>") && c.contains(">150.000 ₫</text>"));
    // Drawn by the server, styled by our sheet: nothing inline.
    assert!(!c.contains("style=") && !c.contains("<script"));
    let css = app.get("/static/app.css").await.text().await.unwrap();
    assert!(css.contains(".price-chart .line"));
}

async fn proposal_status(app: &TestApp, id: i64) -> Value {
    let (_, p) = app
        .api("GET", &format!("/proposals/{id}"), None, None)
        .await;
    p["proposal"].clone()
}

async fn item_price(app: &TestApp, village: &str, name: &str) -> i64 {
    item_of(app, village, name).await["price_vnd"]
        .as_i64()
        .unwrap()
}

/// Three of four sellers vote a proposal through; returns its final status.
async fn carried(app: &TestApp, tokens: &[&str], item: i64, price: i64) -> Value {
    let (s, p) = propose(
        app,
        tokens[0],
        item,
        json!(price),
        "Giá sợi và công may đều tăng",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let id = p["proposal"]["id"].as_i64().unwrap();
    for t in tokens {
        let (s, v) = vote(app, t, id, true).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    proposal_status(app, id).await
}

/// Issue 29, item 1: chained proposals slip past the moderator band no more — a change is
/// measured against the lowest and highest agreed price of the last `PRICE_BAND_DAYS`.
async fn chained_proposals_cannot_slip_past_the_band(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let name = "Màn tuyn 2 cửa 1m8 x 2m";
    let item = item_id(&app, "phu-doi", name).await;
    let hanh = app.api_login(HANH, PW).await;
    let huong = app.api_login(HUONG, PW).await;
    let duc = app.api_login(DUC, PW).await;
    let three = [hanh.as_str(), huong.as_str(), duc.as_str()];
    // +30 % passes by vote.
    let p = carried(&app, &three, item, 234_000).await;
    assert_eq!(p["status"], "approved", "{p}");
    assert_eq!(item_price(&app, "phu-doi", name).await, 234_000);
    // +30 % again is within 30 % of 234,000 but +69 % of 180,000 two minutes ago.
    let p = carried(&app, &three, item, 304_200).await;
    assert_eq!(p["status"], "awaiting_moderator", "{p}");
    assert_eq!(p["waits_for"], "band");
    assert_eq!(p["decider"], "moderator");
    assert_eq!(item_price(&app, "phu-doi", name).await, 234_000);
    let board = app.page("/lang/phu-doi/bang-gia").await;
    assert!(board.contains("lệch quá 30% so với giá thấp nhất hoặc cao nhất"));
    assert!(board.contains("trong 90 ngày qua"));
    // The moderator refuses it.
    let id = p["id"].as_i64().unwrap();
    let moderator = app.api_login(MODERATOR, PW).await;
    let (s, v) = app
        .api(
            "POST",
            &format!("/proposals/{id}/reject"),
            Some(&moderator),
            Some(json!({"reason": "Tăng quá nhanh trong một tuần, cần họp làng"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // 91 days later only today's 234,000 is in the band: +30 % passes by vote again.
    sqlx::query("UPDATE price_changes SET at = at - $1 WHERE price_item_id = $2")
        .bind(91 * 86_400_000_i64)
        .bind(item)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let p = carried(&app, &three, item, 304_200).await;
    assert_eq!(p["status"], "approved", "{p}");
    assert_eq!(item_price(&app, "phu-doi", name).await, 304_200);
}

/// Issue 29, item 3: a junk proposal cannot lock an item — changes below `PRICE_MIN_STEP`
/// are refused, the "no" votes close a proposal as soon as it cannot pass, and the author
/// may withdraw.
async fn a_junk_proposal_cannot_lock_an_item(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let name = "Màn tuyn 2 cửa 1m8 x 2m";
    let item = item_id(&app, "phu-doi", name).await;
    let toan = app.api_login(TOAN, PW).await;
    let hanh = app.api_login(HANH, PW).await;
    let huong = app.api_login(HUONG, PW).await;
    // +1 ₫ and +1,000 ₫ are below the step (1 % of 180,000 = 1,800 ₫).
    for price in [180_001, 181_000, 178_201] {
        let (s, e) = propose(&app, &toan, item, json!(price), "Làm tròn giá cho dễ nhớ").await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{price}: {e}");
        let msg = e["error"]["fields"]["price_vnd"].as_str().unwrap();
        assert!(msg.contains("ít nhất 1.800 ₫"), "{msg}");
    }
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM proposals WHERE price_item_id = $1")
        .bind(item)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(n, 0, "nothing half-written");
    let (s, p) = propose(&app, &toan, item, json!(181_800), "Làm tròn giá cho dễ nhớ").await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let id = p["proposal"]["id"].as_i64().unwrap();
    // 4 voters need 3: one "no" leaves it open, the second makes passing impossible.
    let (_, v) = vote(&app, &hanh, id, false).await;
    assert_eq!(v["proposal"]["status"], "open");
    let (_, v) = vote(&app, &huong, id, false).await;
    assert_eq!(v["proposal"]["status"], "rejected", "{v}");
    assert_eq!(v["proposal"]["decision"], "votes");
    let board = app.page("/lang/phu-doi/bang-gia").await;
    assert!(board.contains("số người không đồng ý đã đủ"));
    // The item is free at once for a real proposal…
    let (s, p) = propose(
        &app,
        &huong,
        item,
        json!(190_000),
        "Vải tuyn tăng giá từ tháng này",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let id = p["proposal"]["id"].as_i64().unwrap();
    // …which only its author may withdraw.
    let path = format!("/proposals/{id}/withdraw");
    let (s, _) = app.api("POST", &path, Some(&hanh), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .api("POST", "/proposals/999999/withdraw", Some(&huong), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = app.api("POST", &path, Some(&huong), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["proposal"]["status"], "withdrawn");
    let (s, _) = app.api("POST", &path, Some(&huong), None).await;
    assert_eq!(s, StatusCode::CONFLICT, "withdrawn once");
    // From the board page too, with the button only on one's own proposal.
    let (s, p) = propose(
        &app,
        &huong,
        item,
        json!(190_000),
        "Vải tuyn tăng giá từ tháng này",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let id = p["proposal"]["id"].as_i64().unwrap();
    app.login_page(HANH, PW).await;
    assert!(
        !app.page("/lang/phu-doi/bang-gia")
            .await
            .contains(&format!("/de-xuat/{id}/rut-lai"))
    );
    app.login_page(HUONG, PW).await;
    let r = app
        .submit(
            "/lang/phu-doi/bang-gia",
            &format!("/de-xuat/{id}/rut-lai"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(proposal_status(&app, id).await["status"], "withdrawn");
    assert_eq!(item_price(&app, "phu-doi", name).await, 180_000);
}

/// Issue 29, item 4: in a village with fewer sellers than the quorum, the board says who
/// decides, the proposal waits in that person's inbox, and the admin sees villages without
/// a moderator.
async fn small_villages_can_still_decide(b: Backend) {
    let app = TestApp::with_demo(b).await;
    // Chuyên Mỹ: two sellers, no moderator.
    let board = app.page("/lang/chuyen-my/bang-gia").await;
    assert!(!board.contains("ít nhất 3 trong 2"), "no impossible quorum");
    assert!(board.contains("Làng mới có 2 người bán, chưa đủ 3 người để tự biểu quyết"));
    assert!(board.contains("quản trị Chợ Làng (làng chưa có điều phối viên) quyết định"));
    let name = "Lót cốc sơn mài bộ 6";
    let item = item_id(&app, "chuyen-my", name).await;
    let nghia = app.api_login(NGHIA, PW).await;
    let phuc = app.api_login("0912000202", PW).await;
    let (s, p) = propose(
        &app,
        &nghia,
        item,
        json!(195_000),
        "Sơn then và vỏ trai tăng giá",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    assert_eq!(p["proposal"]["status"], "awaiting_moderator", "{p}");
    assert_eq!(p["proposal"]["waits_for"], "small_village");
    assert_eq!(p["proposal"]["decider"], "admin");
    let id = p["proposal"]["id"].as_i64().unwrap();
    // Both sellers agree: their votes are counsel, the decision stays the admin's.
    for t in [&nghia, &phuc] {
        let (s, v) = vote(&app, t, id, true).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let p = proposal_status(&app, id).await;
    assert_eq!(p["status"], "awaiting_moderator");
    assert_eq!(p["yes"], 2);
    assert_eq!(item_price(&app, "chuyen-my", name).await, 180_000);
    // The admin's dashboard: the proposal marked as waiting for them, and the village
    // without a moderator.
    app.login_page(cholang::demo::catalog::ADMIN_EMAIL, PW)
        .await;
    let dash = app.page("/quan-ly").await;
    assert!(dash.contains("Làng chưa có điều phối viên"));
    let unmoderated = &dash[dash.find("Làng chưa có điều phối viên").unwrap()..];
    assert!(unmoderated.contains("Chuyên Mỹ"));
    assert!(
        !unmoderated[..unmoderated.find("</section>").unwrap()].contains("Phú Đôi"),
        "Phú Đôi has a moderator"
    );
    assert!(dash.contains("Lót cốc sơn mài bộ 6: 180.000 ₫ → 195.000 ₫</a> (+8,3 %) — <strong>chờ bạn quyết định</strong> (làng chưa đủ người bán để tự biểu quyết)"));
    let r = app
        .submit(
            "/lang/chuyen-my/bang-gia",
            &format!("/de-xuat/{id}/duyet"),
            &[("confirm", "1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(proposal_status(&app, id).await["status"], "approved");
    assert_eq!(item_price(&app, "chuyen-my", name).await, 195_000);

    // With a moderator, the village's proposals wait for the moderator instead.
    let moderator = app
        .scalar("SELECT id FROM users WHERE display_name = 'Trưởng thôn Phú Đôi'")
        .await;
    let village = cholang::catalog::store::village_by_slug(&app.db, "chuyen-my")
        .await
        .unwrap();
    cholang::accounts::store::add_moderator(
        &app.db,
        village.id.0,
        cholang::accounts::UserId(moderator),
    )
    .await
    .unwrap();
    let (_, p) = propose(
        &app,
        &phuc,
        item,
        json!(200_000),
        "Sơn then và vỏ trai tăng giá",
    )
    .await;
    assert_eq!(p["proposal"]["decider"], "moderator", "{p}");
    let board = app.page("/lang/chuyen-my/bang-gia").await;
    assert!(board.contains("điều phối viên của làng quyết định"));
}

/// Issue 29, item 2: a product takes the item whose name it carries; under another name it
/// asks the moderator and is not listed until then; another village's or category's item
/// is refused.
async fn a_product_takes_the_item_whose_name_it_carries(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let table = item_id(&app, "phu-doi", "Bàn trà gỗ mít 1m").await;
    let toan = app.api_login(TOAN, PW).await;
    let products = app.scalar("SELECT COUNT(*) FROM products").await;
    let body = |name: &str, category: &str, item: i64| json!({"shop": "co-khi-van-toan", "name": name, "category": category, "stock": 5, "price_item_id": item});
    // Another category's item: refused, nothing written.
    let (s, e) = app
        .api(
            "POST",
            "/products",
            Some(&toan),
            Some(body("Móc treo màn inox", "Cơ khí", table)),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(
        e["error"]["fields"]["price_item_id"]
            .as_str()
            .unwrap()
            .contains("loại hàng “Đồ gỗ”"),
        "{e}"
    );
    // Another village's item: refused.
    let foreign = item_id(&app, "chuyen-my", "Lót cốc sơn mài bộ 6").await;
    let (s, _) = app
        .api(
            "POST",
            "/products",
            Some(&toan),
            Some(body("Lót cốc sơn mài bộ 6", "Cơ khí", foreign)),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM products").await, products);

    // The attack of the issue: a hook listed at the table's 1,850,000 ₫. It waits.
    let (s, v) = app
        .api(
            "POST",
            "/products",
            Some(&toan),
            Some(body("Móc treo màn inox loại to", "Đồ gỗ", table)),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let slug = v["product"]["slug"].as_str().unwrap().to_string();
    assert_eq!(v["product"]["active"], false, "{v}");
    assert_eq!(v["product"]["item_request"]["status"], "pending");
    assert_eq!(
        app.get(&format!("/san-pham/{slug}")).await.status(),
        StatusCode::NOT_FOUND
    );
    let (_, listed) = app
        .api("GET", &format!("/price-items/{table}"), None, None)
        .await;
    assert!(
        !listed.to_string().contains(&slug),
        "not listed under the item"
    );
    // Listing it by hand is not possible while it waits.
    let (s, v) = app
        .api(
            "PATCH",
            &format!("/products/{slug}"),
            Some(&toan),
            Some(json!({"active": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["product"]["active"], false);
    // The seller's page says why.
    app.login_page(TOAN, PW).await;
    let page = app.page(&format!("/quan-ly/san-pham/{slug}")).await;
    assert!(page.contains("Sản phẩm chưa hiện lên chợ."), "{page}");
    // The moderator sees it in the inbox and refuses with a reason (too short: kept, 422).
    let moderator = app.api_login(MODERATOR, PW).await;
    let (_, reqs) = app
        .api(
            "GET",
            "/villages/phu-doi/join-requests",
            Some(&moderator),
            None,
        )
        .await;
    assert_eq!(reqs["products"][0]["slug"], slug.as_str(), "{reqs}");
    assert_eq!(reqs["products"][0]["item"], "Bàn trà gỗ mít 1m");
    app.login_page(MODERATOR, PW).await;
    let dash = app.page("/quan-ly").await;
    assert!(dash.contains("xin dùng giá của mặt hàng “Bàn trà gỗ mít 1m”"));
    let r = app
        .submit(
            "/quan-ly",
            &format!("/quan-ly/mat-hang/{slug}"),
            &[("decision", "reject"), ("reason", "ngắn")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("ít nhất 10 ký tự"));
    let r = app
        .submit(
            "/quan-ly",
            &format!("/quan-ly/mat-hang/{slug}"),
            &[
                ("decision", "reject"),
                (
                    "reason",
                    "Móc treo không phải bàn trà, hãy chọn đúng mặt hàng",
                ),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let state: String = sqlx::query_scalar("SELECT item_join FROM products WHERE slug = $1")
        .bind(slug.clone())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(state, "refused");
    app.login_page(TOAN, PW).await;
    let page = app.page(&format!("/quan-ly/san-pham/{slug}")).await;
    assert!(page.contains("Điều phối viên không đồng ý"), "{page}");
    assert!(page.contains("Móc treo không phải bàn trà"));
    assert_eq!(
        app.get(&format!("/san-pham/{slug}")).await.status(),
        StatusCode::NOT_FOUND
    );
    // Decided once.
    let (s, _) = app
        .api(
            "POST",
            &format!("/products/{slug}/item-decision"),
            Some(&moderator),
            Some(json!({"decision": "accept"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    // A name that carries the item's is listed at once, whatever else it says.
    let (s, v) = app
        .api(
            "POST",
            "/products",
            Some(&toan),
            Some(body("Bàn trà gỗ mít 1m chân sắt", "Đồ gỗ", table)),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["product"]["active"], true);
    assert!(v["product"]["item_request"].is_null());
    // Renaming it away from the item asks again and takes it off the market.
    let named = v["product"]["slug"].as_str().unwrap().to_string();
    let (_, v) = app
        .api(
            "PATCH",
            &format!("/products/{named}"),
            Some(&toan),
            Some(json!({"name": "Bàn uống nước chân sắt"})),
        )
        .await;
    assert_eq!(v["product"]["active"], false, "{v}");
    assert_eq!(v["product"]["item_request"]["status"], "pending");
    // The moderator accepts (the API): listed at once, and a later save keeps it so.
    let (s, v) = app
        .api(
            "POST",
            &format!("/products/{named}/item-decision"),
            Some(&moderator),
            Some(json!({"decision": "accept"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["product"]["active"], true);
    assert_eq!(
        app.get(&format!("/san-pham/{named}")).await.status(),
        StatusCode::OK
    );
    let (_, v) = app
        .api(
            "PATCH",
            &format!("/products/{named}"),
            Some(&toan),
            Some(json!({"stock": 9})),
        )
        .await;
    assert_eq!(v["product"]["active"], true, "{v}");
    assert!(v["product"]["item_request"].is_null());
    // A seller cannot decide; nor can a moderator on their own shop (checked in
    // moderators.rs for shops and proposals).
    let (s, _) = app
        .api(
            "POST",
            &format!("/products/{slug}/item-decision"),
            Some(&toan),
            Some(json!({"decision": "accept"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
