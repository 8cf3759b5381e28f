//! Categories come from the village's list, kept by its moderators (issue 15): a seller picks
//! one ("màn tuyn" is the village's "Màn tuyn", one search filter), never types a new one.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    a_village_keeps_one_list_of_categories,
    moderators_manage_categories_on_their_page,
    categories_are_taken_from_the_products_already_there,
);

async fn names(app: &TestApp, village: &str) -> Vec<(String, i64)> {
    let (s, v) = app
        .api(
            "GET",
            &format!("/villages/{village}/categories"),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["products"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// `/api/v1/villages/phu-doi/categories{tail}`.
async fn phu_doi(
    app: &TestApp,
    method: &str,
    tail: String,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let path = format!("/villages/phu-doi/categories{tail}");
    app.api(method, &path, Some(token), body).await
}

async fn add(app: &TestApp, token: &str, name: &str) -> (StatusCode, Value) {
    phu_doi(
        app,
        "POST",
        String::new(),
        token,
        Some(json!({ "name": name })),
    )
    .await
}

fn id_of(list: &Value, name: &str) -> i64 {
    list["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {list}"))["id"]
        .as_i64()
        .unwrap()
}

/// The search facet of Phú Đôi's categories, once the index has caught up.
async fn facets(app: &TestApp) -> Value {
    app.search_synced().await;
    let (s, v) = app.search("village=phu-doi&per_page=100").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["facets"]["category"].clone()
}

async fn a_village_keeps_one_list_of_categories(b: Backend) {
    let app = TestApp::with_demo(b).await;
    assert_eq!(
        names(&app, "phu-doi").await,
        vec![
            ("Cơ khí".to_string(), 6),
            ("Đồ gỗ".to_string(), 7),
            ("Màn tuyn".to_string(), 8)
        ]
    );
    let hanh = app.api_login(HANH, PW).await;
    let (_, items) = app
        .api("GET", "/villages/phu-doi/price-items", None, None)
        .await;
    let _ = items;
    let item = app.board_item("phu-doi", "Màn gấp", 200_000).await;
    let rem = app.board_item("phu-doi", "Rèm", 90_000).await;
    let product = |name: &str, category: &str| {
        json!({"shop": "man-tuyn-ba-hanh", "name": name, "category": category, "stock": 10,
               "price_item_id": item})
    };
    // Typed in lower case and without diacritics: the village's category.
    for (name, typed) in [("Màn gấp 1m8", "màn tuyn"), ("Màn gấp 2m", "MAN  TUYN")] {
        let (s, v) = app
            .api("POST", "/products", Some(&hanh), Some(product(name, typed)))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["product"]["category"], "Màn tuyn");
    }
    let f = facets(&app).await;
    assert_eq!(f["Màn tuyn"], 10, "one filter: {f}");
    assert_eq!(f.as_object().unwrap().len(), 3, "{f}");
    // A category the village does not have is refused, and the list is named.
    let (s, v) = app
        .api(
            "POST",
            "/products",
            Some(&hanh),
            Some(product("Rèm", "Rèm cửa")),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let msg = v["error"]["fields"]["category"].as_str().unwrap();
    assert!(msg.contains("Cơ khí, Đồ gỗ, Màn tuyn"), "{msg}");
    let (s, v) = app
        .api(
            "PATCH",
            "/products/man-tuyn-1m6-x-2m",
            Some(&hanh),
            Some(json!({"category": "Gốm"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // Only the village's moderator (or an admin) adds one.
    let (s, _) = add(&app, &hanh, "Rèm cửa").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let moderator = app.api_login(MODERATOR, PW).await;
    let (s, _) = app
        .api(
            "POST",
            "/villages/chuyen-my/categories",
            Some(&moderator),
            Some(json!({"name": "Rèm cửa"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "another village's list");
    let (s, v) = add(&app, &moderator, "  rèm   cửa ").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["category"]["name"], "Rèm cửa");
    for twin in ["Rem cua", "RÈM CỬA"] {
        let (s, v) = add(&app, &moderator, twin).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{twin}: {v}");
        assert!(
            v["error"]["fields"]["name"]
                .as_str()
                .unwrap()
                .contains("“Rèm cửa”"),
            "{v}"
        );
    }
    let (s, v) = app
        .api(
            "POST",
            "/products",
            Some(&hanh),
            Some(
                json!({"shop": "man-tuyn-ba-hanh", "name": "Rèm", "category": "rèm cửa",
                        "stock": 10, "price_item_id": rem}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // A rename carries the products (and search) along; a name another category has is refused.
    let (_, list) = app
        .api("GET", "/villages/phu-doi/categories", None, None)
        .await;
    let man = id_of(&list, "Màn tuyn");
    let (s, v) = phu_doi(
        &app,
        "PATCH",
        format!("/{man}"),
        &moderator,
        Some(json!({"name": "đồ gỗ"})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = phu_doi(
        &app,
        "PATCH",
        format!("/{man}"),
        &moderator,
        Some(json!({"name": "Màn tuyn chống muỗi"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["category"]["products"], 10);
    let (_, p) = app
        .api("GET", "/products/man-tuyn-1m6-x-2m", None, None)
        .await;
    assert_eq!(p["product"]["category"], "Màn tuyn chống muỗi");
    let f = facets(&app).await;
    assert_eq!(f["Màn tuyn chống muỗi"], 10, "{f}");
    assert!(f["Màn tuyn"].is_null(), "{f}");
    // Changing only the case is a rename too (the same key).
    let (s, v) = phu_doi(
        &app,
        "PATCH",
        format!("/{man}"),
        &moderator,
        Some(json!({"name": "màn tuyn"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["category"]["name"], "Màn tuyn");
    // A category in use is not removed; an unused one is.
    let go = id_of(&list, "Đồ gỗ");
    let (s, v) = phu_doi(&app, "DELETE", format!("/{go}"), &moderator, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Còn 7 sản phẩm"),
        "{v}"
    );
    let (s, v) = add(&app, &moderator, "Đồ đồng").await;
    assert_eq!(s, StatusCode::CREATED);
    let dong = v["category"]["id"].as_i64().unwrap();
    let (s, _) = phu_doi(&app, "DELETE", format!("/{dong}"), &moderator, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let left: Vec<String> = names(&app, "phu-doi")
        .await
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(left, ["Cơ khí", "Đồ gỗ", "Màn tuyn", "Rèm cửa"]);
    let (s, _) = phu_doi(&app, "DELETE", format!("/{dong}"), &moderator, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

async fn moderators_manage_categories_on_their_page(b: Backend) {
    let app = TestApp::with_demo(b).await;
    // Everyone sees the list, each a link to browse it; no forms.
    let page = app.page("/lang/phu-doi/loai-hang").await;
    assert!(page.contains("/tim-kiem?village=phu-doi&#38;category=M%C3%A0n+tuyn"));
    assert!(page.contains("(8 sản phẩm)"));
    assert!(!page.contains("Thêm loại hàng</button>"));
    // The seller picks from a list on the product form.
    app.login_page(DUC, PW).await;
    let form_page = "/quan-ly/san-pham/moi?shop=do-go-minh-duc";
    let form = app.page(form_page).await;
    assert!(
        form.contains("<select name=\"category\" required>"),
        "a list"
    );
    assert!(form.contains("<option value=\"Đồ gỗ\">Đồ gỗ</option>"));
    let (_, items) = app
        .api("GET", "/villages/phu-doi/price-items", None, None)
        .await;
    let item = items["price_items"][0]["id"].to_string();
    let submit = |category: &'static str| {
        let item = item.clone();
        let app = &app;
        async move {
            let fields = [
                ("price_item_id", item.as_str()),
                ("name", "Kệ sách gỗ mít"),
                ("category", category),
                ("stock", "3"),
            ];
            submit_multipart(app, form_page, form_page, &fields, None).await
        }
    };
    let r = submit("Gốm").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("Hãy chọn một loại hàng của làng"), "inline");
    assert!(html.contains("value=\"Kệ sách gỗ mít\""), "typed name kept");
    let r = submit("Đồ gỗ").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The edit form shows the product's category chosen.
    let edit = app.page(&location(&r)).await;
    assert!(edit.contains("<option value=\"Đồ gỗ\" selected>"));
    // A seller cannot change the list.
    let r = app
        .submit(
            "/lang/phu-doi/loai-hang",
            "/lang/phu-doi/loai-hang",
            &[("name", "Gốm")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The moderator finds the page from the dashboard and adds, renames and removes there.
    app.login_page(MODERATOR, PW).await;
    assert!(
        app.page("/quan-ly")
            .await
            .contains("href=\"/lang/phu-doi/loai-hang\"")
    );
    let r = app
        .submit(
            "/lang/phu-doi/loai-hang",
            "/lang/phu-doi/loai-hang",
            &[("name", "gốm sứ")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = app.page(&location(&r)).await;
    assert!(page.contains("Đã thêm loại hàng"));
    assert!(page.contains(">Gốm sứ</a>"));
    let r = app
        .submit(
            "/lang/phu-doi/loai-hang",
            "/lang/phu-doi/loai-hang",
            &[("name", "Gom Su")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("class=\"error-summary\""), "at the top");
    assert!(html.contains("Làng đã có loại hàng “Gốm sứ”"));
    assert!(html.contains("value=\"Gom Su\""), "what was typed is kept");
    let (_, list) = app
        .api("GET", "/villages/phu-doi/categories", None, None)
        .await;
    let gom = id_of(&list, "Gốm sứ");
    let go = id_of(&list, "Đồ gỗ");
    let r = app
        .submit(
            "/lang/phu-doi/loai-hang",
            &format!("/lang/phu-doi/loai-hang/{gom}/doi-ten"),
            &[("name", "Gốm")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = app
        .submit(
            "/lang/phu-doi/loai-hang",
            &format!("/lang/phu-doi/loai-hang/{go}/xoa"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("Còn 8 sản phẩm"));
    let r = app
        .submit(
            "/lang/phu-doi/loai-hang",
            &format!("/lang/phu-doi/loai-hang/{gom}/xoa"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let left: Vec<String> = names(&app, "phu-doi")
        .await
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(left, ["Cơ khí", "Đồ gỗ", "Màn tuyn"]);
}

async fn categories_are_taken_from_the_products_already_there(b: Backend) {
    let app = TestApp::with_demo(b).await;
    // A database from before the list: free-text categories, two spellings of one.
    for sql in [
        "DELETE FROM categories",
        "DELETE FROM data_migrations WHERE name = 'categories_from_products'",
        "UPDATE products SET category = 'màn tuyn'
         WHERE name IN ('Màn chụp tự bung 2m2', 'Màn tuyn trẻ em 1m2')",
        "UPDATE products SET category = 'cơ khí' WHERE category = 'Cơ khí'",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&app.db.pool)
            .await
            .unwrap();
    }
    cholang::app::prepare(&app.db, &app.config).await.unwrap();
    assert_eq!(
        names(&app, "phu-doi").await,
        vec![
            ("Cơ khí".to_string(), 6),
            ("Đồ gỗ".to_string(), 7),
            ("Màn tuyn".to_string(), 8)
        ],
        "the most used spelling, first letter upper case"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM products WHERE category IN ('màn tuyn', 'cơ khí')")
            .await,
        0
    );
    assert_eq!(
        names(&app, "tri-thuy").await,
        vec![
            ("Nông sản OCOP".to_string(), 9),
            ("Thực phẩm".to_string(), 1)
        ]
    );
    // Once only: a second start changes nothing.
    let before = app.scalar("SELECT COUNT(*) FROM categories").await;
    cholang::app::prepare(&app.db, &app.config).await.unwrap();
    assert_eq!(app.scalar("SELECT COUNT(*) FROM categories").await, before);
    let f = facets(&app).await;
    assert_eq!(f["Màn tuyn"], 8, "search follows: {f}");
    assert!(f["màn tuyn"].is_null() && f["cơ khí"].is_null(), "{f}");
}
