//! The smart-village figures (issue 30, item 4) and sharing where villagers already are
//! (item 5): link previews with their picture, the Zalo share page, the shop's A5 poster.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    village_figures_are_counted_by_hanoi_month,
    links_pasted_in_zalo_show_a_preview,
);

fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

async fn paid_checkout(app: &TestApp, slug: &str) -> (String, i64, String) {
    let (s, c) = app.checkout(&[(slug, 1)]).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let pay = c["payment"]["code"].as_str().unwrap().to_string();
    let total = c["total_vnd"].as_i64().unwrap();
    app.transfer(total, &pay).await;
    (
        pay,
        total,
        c["orders"][0]["code"].as_str().unwrap().to_string(),
    )
}

async fn village_figures_are_counted_by_hanoi_month(b: Backend) {
    let app = TestApp::with_demo(b).await;
    app.quiet_demo().await;
    cholang::demo::origin::load(&app.db).await.unwrap();
    // Two paid orders of Phú Đôi: one on 15 October, one at 00:30 on 1 November in Hà Nội
    // (still 31 October in UTC); the first one's buyer confirmed receipt.
    let (pay_a, total_a, order_a) = paid_checkout(&app, "man-tuyn-2-cua-1m8-x-2m").await;
    let (pay_b, _, _) = paid_checkout(&app, "ban-tra-go-mit-1m").await;
    let hanh = app.api_login(HANH, PW).await;
    for to in ["accepted", "shipped"] {
        let (s, v) = app
            .api(
                "POST",
                &format!("/orders/{order_a}/transitions"),
                Some(&hanh),
                Some(serde_json::json!({"to": to})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    app.buyer_received(&order_a).await;
    let oct = ms("2026-10-15T03:00:00Z");
    for (code, at) in [(&pay_a, oct), (&pay_b, ms("2026-10-31T17:30:00Z"))] {
        sqlx::query("UPDATE payments SET paid_at = $1 WHERE code = $2")
            .bind(at)
            .bind(code.to_string())
            .execute(&app.db.pool)
            .await
            .unwrap();
    }
    // The demo's proposal and its two votes, the batches and their labels, in October; the
    // shops on the board since September; one household brought online in October.
    let sept = ms("2026-09-10T03:00:00Z");
    for (sql, at) in [
        ("UPDATE proposals SET created_at = $1", oct),
        ("UPDATE votes SET at = $1", oct),
        ("UPDATE batches SET created_at = $1", oct),
        (
            "UPDATE batches SET labels_printed_at = $1 WHERE labels_printed_at IS NOT NULL",
            oct,
        ),
        ("UPDATE shops SET membership_at = $1, created_at = $1", sept),
    ] {
        sqlx::query(sql)
            .bind(at)
            .execute(&app.db.pool)
            .await
            .unwrap();
    }
    let phu_doi_batches: Vec<i64> = sqlx::query_scalar(
        "SELECT b.id FROM batches b JOIN shops s ON s.id = b.shop_id
         JOIN villages v ON v.id = s.village_id WHERE v.slug = 'phu-doi' ORDER BY b.id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert!(phu_doi_batches.len() >= 2);
    let printed = app
        .scalar("SELECT COUNT(*) FROM batches b JOIN shops s ON s.id = b.shop_id JOIN villages v ON v.id = s.village_id WHERE v.slug = 'phu-doi' AND b.labels_printed_at IS NOT NULL")
        .await;
    sqlx::query("DELETE FROM batch_scans")
        .execute(&app.db.pool)
        .await
        .unwrap();
    for (batch, day, n) in [
        (phu_doi_batches[0], "2026-10-03", 5),
        (phu_doi_batches[1], "2026-10-31", 2),
        (phu_doi_batches[0], "2026-11-01", 7),
    ] {
        sqlx::query("INSERT INTO batch_scans (batch_id, day, n) VALUES ($1, $2, $3)")
            .bind(batch)
            .bind(day.to_string())
            .bind(n)
            .execute(&app.db.pool)
            .await
            .unwrap();
    }
    sqlx::query(
        "INSERT INTO households (village_id, helper_id, name, phone, shop_name, confirmed_at, created_at)
         SELECT v.id, u.id, 'Hộ bà Tư', '0977400400', 'Màn Bà Tư', $1, $1
         FROM villages v, users u WHERE v.slug = 'phu-doi' AND u.phone = '0912000100'",
    )
    .bind(oct)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let shops = app
        .scalar("SELECT COUNT(*) FROM shops s JOIN villages v ON v.id = s.village_id WHERE v.slug = 'phu-doi' AND s.membership = 'accepted'")
        .await;

    let (s, f) = app
        .api(
            "GET",
            "/villages/phu-doi/stats?from=2026-09&to=2026-11",
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{f}");
    let months = f["months"].as_array().unwrap();
    let month = |m: &str| -> &Value { months.iter().find(|x| x["month"] == m).unwrap() };
    assert_eq!(months.len(), 3);
    let (sep, oct_m, nov) = (month("2026-09"), month("2026-10"), month("2026-11"));
    assert_eq!(sep["shops_selling"], shops);
    assert_eq!(sep["orders_paid"], 0);
    assert_eq!(sep["received_percent"], Value::Null);
    assert_eq!(oct_m["orders_paid"], 1, "{oct_m}");
    assert_eq!(oct_m["value_paid_vnd"], total_a);
    assert_eq!(oct_m["active_shops"], 1);
    assert_eq!(oct_m["confirmed_received"], 1);
    assert_eq!(oct_m["received_percent"], 100);
    assert_eq!(oct_m["price_proposals"], 1);
    assert_eq!(oct_m["votes"], 2);
    assert_eq!(oct_m["batches_recorded"], phu_doi_batches.len() as i64);
    assert_eq!(oct_m["labels_printed"], printed);
    assert_eq!(oct_m["origin_views"], 7);
    assert_eq!(oct_m["households_onboarded"], 1);
    assert_eq!(
        nov["orders_paid"], 1,
        "00:30 on 1 November in Hà Nội: {nov}"
    );
    assert_eq!(nov["received_percent"], 0);
    assert_eq!(nov["origin_views"], 7);
    assert_eq!(nov["price_proposals"], 0);

    // A bad range names its field; more than 36 months is refused.
    let (s, e) = app
        .api(
            "GET",
            "/villages/phu-doi/stats?from=2026-13&to=khong",
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e["error"]["fields"]["from"].is_string() && e["error"]["fields"]["to"].is_string());
    let (s, _) = app
        .api(
            "GET",
            "/villages/phu-doi/stats?from=2020-01&to=2026-11",
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // The page: a chart per figure with the numbers as text; the CSV for the commune. Neither
    // holds a buyer's name, phone or address.
    let page = app
        .page("/lang/phu-doi/so-lieu?from=2026-09&to=2026-11")
        .await;
    assert!(page.contains("Số liệu thôn thông minh"));
    assert_eq!(page.matches("<svg").count(), 11, "one chart per figure");
    for (key, _) in cholang::figures::NAMES {
        assert_eq!(
            page.matches(&format!("id=\"t-{key}\"")).count(),
            1,
            "{key}: one title id"
        );
    }
    assert!(
        page.contains("10/2026: <strong>100%</strong>"),
        "received share as text"
    );
    let r = app
        .get("/lang/phu-doi/so-lieu.csv?from=2026-09&to=2026-11")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("so-lieu-phu-doi")
    );
    let csv = r.text().await.unwrap();
    let row = csv.lines().find(|l| l.starts_with("10/2026,")).unwrap();
    assert!(row.contains(&format!(",{total_a},100,1,2,")), "{row}");
    for text in [&page, &csv] {
        for private in ["Chị Mai", "0987654321", "0987 654 321", "Hàng Bông"] {
            assert!(!text.contains(private), "{private}");
        }
    }
    assert!(
        app.page("/lang/phu-doi")
            .await
            .contains("/lang/phu-doi/so-lieu")
    );
}

async fn links_pasted_in_zalo_show_a_preview(b: Backend) {
    let app = TestApp::with_demo(b).await;
    cholang::demo::origin::load(&app.db).await.unwrap();
    let slug = "man-tuyn-2-cua-1m8-x-2m";
    app.login_page(HANH, PW).await;
    let r = upload_photo(&app, slug, png_bytes(), "man.png").await;
    assert!(
        r.status().is_redirection() || r.status().is_success(),
        "{}",
        r.status()
    );
    let page = app.page(&format!("/san-pham/{slug}")).await;
    let meta = |prop: &str| -> String {
        let key = format!("property=\"{prop}\" content=\"");
        let key2 = format!("name=\"{prop}\" content=\"");
        let at = page
            .find(&key)
            .map(|i| i + key.len())
            .or_else(|| page.find(&key2).map(|i| i + key2.len()))
            .unwrap_or_else(|| panic!("no {prop}"));
        page[at..].split('"').next().unwrap().to_string()
    };
    assert!(meta("og:title").starts_with("Màn tuyn 2 cửa 1m8 x 2m — "));
    assert_eq!(meta("og:type"), "product");
    assert_eq!(meta("product:price:currency"), "VND");
    assert!(meta("og:description").contains("Phú Đôi"));
    let public = |p: &str| format!("{}{p}", app.config.public_url);
    assert_eq!(meta("og:url"), public(&format!("/san-pham/{slug}")));
    assert_eq!(meta("twitter:card"), "summary_large_image");
    assert!(page.contains(&format!(
        "<link rel=\"canonical\" href=\"{}\">",
        public(&format!("/san-pham/{slug}"))
    )));
    // The picture: the product's photo at 1200 × 630, made once and kept.
    let image = meta("og:image");
    assert!(
        !image.ends_with("cho-lang.jpg"),
        "the product's own photo: {image}"
    );
    let image = image.replace(&app.config.public_url, &app.base);
    for _ in 0..2 {
        let r = app.client.get(&image).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "image/jpeg");
        let bytes = r.bytes().await.unwrap();
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!((img.width(), img.height()), (1200, 630));
    }
    assert_eq!(
        app.get("/anh-chia-se/..%2Fsecret.key").await.status(),
        StatusCode::NOT_FOUND
    );
    // Shop, village and origin pages carry previews too (the plain picture without a photo).
    let batch: String = sqlx::query_scalar("SELECT code FROM batches ORDER BY id LIMIT 1")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    for path in [
        "/shop/man-tuyn-ba-hanh".to_string(),
        "/lang/chuyen-my".to_string(),
        format!("/truy-xuat/{batch}"),
    ] {
        let p = app.page(&path).await;
        assert!(p.contains("property=\"og:image\" content=\""), "{path}");
        assert!(p.contains("Chia sẻ qua Zalo"), "{path}");
    }
    let plain = app.get("/anh-chia-se/cho-lang.jpg").await;
    assert_eq!(plain.status(), StatusCode::OK);
    // "Chia sẻ qua Zalo": the link to paste, only ever to this site.
    let share = app
        .page(&format!("/chia-se?duong-dan=%2Fsan-pham%2F{slug}"))
        .await;
    assert!(share.contains(&format!(
        "value=\"{}\"",
        public(&format!("/san-pham/{slug}"))
    )));
    let evil = app.page("/chia-se?duong-dan=%2F%2Fevil.example%2Fx").await;
    assert!(!evil.contains("evil.example"));
    // The shop's A5 poster, for its owner (and helpers), not for strangers.
    app.login_page(HANH, PW).await;
    let r = app
        .get("/quan-ly/cua-hang/man-tuyn-ba-hanh/to-gioi-thieu.pdf")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert!(r.bytes().await.unwrap().starts_with(b"%PDF"));
    assert_eq!(
        app.get("/quan-ly/cua-hang/do-go-minh-duc/to-gioi-thieu.pdf")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
}
