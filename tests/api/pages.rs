//! Pages render Vietnamese text, prices as `180.000 ₫` and times in Hà Nội time, without JS.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    buyers_browse_villages_shops_and_products,
    search_finds_with_or_without_diacritics,
    times_are_shown_in_hanoi_time,
    the_demo_market_has_a_picture_for_every_product,
    big_villages_and_shops_are_shown_a_page_at_a_time,
    anonymous_pages_are_kept_for_a_moment,
    a_page_is_rendered_once_for_a_crowd,
    product_data_kept_until_the_database_says_it_changed,
    product_data_kept_follows_this_servers_own_writes_at_once,
);

/// `PAGE_CACHE_MS`: a second anonymous visitor gets the kept page, with its own CSRF token
/// (its form posts); a change behind the server's back waits for the TTL, a write through
/// this server drops what was kept; a visitor with a cart or a login gets a fresh page.
async fn anonymous_pages_are_kept_for_a_moment(b: Backend) {
    let app = TestApp::with_demo_and(b, &[("PAGE_CACHE_MS", "600000")]).await;
    let path = "/san-pham/man-tuyn-1m6-x-2m";
    let visit = |c: &reqwest::Client| {
        let url = app.url(path);
        let c = c.clone();
        async move {
            let r = c.get(url).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let how = r
                .headers()
                .get("x-page-cache")
                .map(|v| v.to_str().unwrap().to_string());
            (how, r.text().await.unwrap())
        }
    };
    let (a, b2) = (app.new_browser(), app.new_browser());
    let (how, first) = visit(&a).await;
    assert_eq!(how.as_deref(), Some("miss"));
    let (how, kept) = visit(&b2).await;
    assert_eq!(how.as_deref(), Some("hit"));
    let (ta, tb) = (csrf_in(&first), csrf_in(&kept));
    assert_ne!(ta, tb, "each visitor's own token");
    assert_eq!(
        first.replace(&ta, ""),
        kept.replace(&tb, ""),
        "the same page otherwise"
    );

    // Behind the server's back: the kept page stands until its time is up.
    sqlx::query("UPDATE products SET stock = 777 WHERE slug = 'man-tuyn-1m6-x-2m'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let (how, page) = visit(&app.new_browser()).await;
    assert_eq!(how.as_deref(), Some("hit"));
    assert!(!page.contains("Còn 777"));

    // The second visitor's token from the kept page is good: the cart takes the product.
    let id: i64 = app
        .scalar("SELECT id FROM products WHERE slug = 'man-tuyn-1m6-x-2m'")
        .await;
    let r = b2
        .post(app.url("/gio-hang"))
        .form(&[
            ("csrf", tb.as_str()),
            ("product_id", &id.to_string()),
            ("action", "add"),
            ("quantity", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    // That write went through this server: what was kept is dropped.
    let (how, page) = visit(&app.new_browser()).await;
    assert_eq!(how.as_deref(), Some("miss"));
    assert!(page.contains("Còn 777"));
    // A visitor with a cart, or logged in, always gets a fresh page.
    let (how, _) = visit(&b2).await;
    assert_eq!(how, None);
    app.login_page(HANH, PW).await;
    let r = app.get(path).await;
    assert!(r.headers().get("x-page-cache").is_none());
    // Other public pages are kept the same way; private ones never.
    for p in [
        "/",
        "/lang/phu-doi",
        "/shop/man-tuyn-ba-hanh",
        "/tim-kiem?q=man",
    ] {
        let c = app.new_browser();
        assert_eq!(visit(&c).await.0.as_deref().map(|_| ()), Some(()));
        let r = c.get(app.url(p)).send().await.unwrap();
        let r2 = app.new_browser().get(app.url(p)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r2.headers()["x-page-cache"], "hit", "{p}");
    }
    let r = app
        .new_browser()
        .get(app.url("/gio-hang"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("x-page-cache").is_none());
}

/// A page is rendered by one request at a time (single flight): a crowd asking for a page
/// nobody has asked for waits for the first render; past its TTL, a crowd gets the kept copy
/// meanwhile ("stale") or the new one ("hit"), never a render each; a lone visitor after the
/// TTL gets a fresh render with what changed.
async fn a_page_is_rendered_once_for_a_crowd(b: Backend) {
    let app = TestApp::with_demo_and(b, &[("PAGE_CACHE_MS", "2000")]).await;
    let path = "/san-pham/man-tuyn-1m6-x-2m";
    let how = |r: &reqwest::Response| {
        r.headers()
            .get("x-page-cache")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let crowd = || {
        let mut crowd = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (c, url) = (app.new_browser(), app.url(path));
            crowd.spawn(async move {
                let r = c.get(url).send().await.unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                let h = r
                    .headers()
                    .get("x-page-cache")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                assert!(!csrf_in(&r.text().await.unwrap()).is_empty());
                h
            });
        }
        crowd.join_all()
    };
    // Nobody has asked yet: one renders, the others wait for its page.
    let seen: Vec<String> = crowd().await;
    assert_eq!(
        seen.iter().filter(|h| *h == "miss").count(),
        1,
        "one render for the first crowd: {seen:?}"
    );
    assert!(seen.iter().all(|h| h == "miss" || h == "hit"), "{seen:?}");
    // Expired (the cache's clock moved past the page's 2 s): one renders, the others get
    // the kept copy or the new one.
    app.state
        .pages
        .advance(std::time::Duration::from_millis(2100));
    let seen: Vec<String> = crowd().await;
    assert_eq!(
        seen.iter().filter(|h| *h == "miss").count(),
        1,
        "one render for the crowd: {seen:?}"
    );
    assert!(
        seen.iter()
            .all(|h| ["miss", "stale", "hit"].contains(&h.as_str())),
        "{seen:?}"
    );
    // Changed behind the server's back: shown to the first visitor after the TTL.
    sqlx::query("UPDATE products SET stock = 777 WHERE slug = 'man-tuyn-1m6-x-2m'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    app.state
        .pages
        .advance(std::time::Duration::from_millis(2100));
    let r = app.new_browser().get(app.url(path)).send().await.unwrap();
    assert_eq!(how(&r), "miss");
    assert!(r.text().await.unwrap().contains("Còn 777"));
}

/// 100 more products for Bà Hạnh: the village and shop pages show 48 at a time, in name
/// order, with links to the previous and next pages; every product is on exactly one page.
async fn big_villages_and_shops_are_shown_a_page_at_a_time(b: Backend) {
    let app = TestApp::with_demo(b).await;
    for i in 0..100 {
        sqlx::query(
            "INSERT INTO products (slug, shop_id, price_item_id, name, description, category, stock, active, created_at, updated_at)
             SELECT $1, shop_id, price_item_id, $2, description, category, 5, 1, created_at, updated_at
               FROM products WHERE slug = 'man-tuyn-1m6-x-2m'",
        )
        .bind(format!("man-them-{i:03}"))
        .bind(format!("Màn thêm {i:03}"))
        .execute(&app.db.pool)
        .await
        .unwrap();
    }
    let shop_total: i64 = app
        .scalar("SELECT COUNT(*) FROM products p JOIN shops s ON s.id = p.shop_id WHERE s.slug = 'man-tuyn-ba-hanh' AND p.active = 1")
        .await;
    for (base, total) in [("/shop/man-tuyn-ba-hanh", shop_total), ("/lang/phu-doi", 0)] {
        let mut seen = std::collections::HashSet::new();
        let mut url = base.to_string();
        let mut pages = 0;
        loop {
            let html = app.page(&url).await;
            pages += 1;
            let cards = html.matches("href=\"/san-pham/").count();
            assert!(cards <= 48 * 2, "{url}: {cards}");
            for part in html.split("href=\"/san-pham/").skip(1) {
                seen.insert(part.split('"').next().unwrap().to_string());
            }
            match html
                .split("rel=\"next\"")
                .next()
                .and_then(|h| h.rsplit("href=\"").next())
            {
                Some(next) if html.contains("rel=\"next\"") => {
                    url = next.split('"').next().unwrap().replace("&amp;", "&");
                }
                _ => break,
            }
            assert!(pages < 20);
        }
        assert!(
            seen.contains("man-them-000") && seen.contains("man-them-099"),
            "{base}"
        );
        if total > 0 {
            assert_eq!(
                seen.len() as i64,
                total,
                "{base}: every product on one page"
            );
            assert_eq!(pages, (total + 47) / 48);
        }
        assert!(pages >= 3, "{base}: {pages} pages");
    }
    let last = app.page("/shop/man-tuyn-ba-hanh?trang=3").await;
    assert!(last.contains("Trang 3/3") && last.contains("rel=\"prev\""));
    assert!(!last.contains("rel=\"next\""));
    // Nonsense page numbers are page 1.
    let first = app.page("/shop/man-tuyn-ba-hanh?trang=abc").await;
    assert!(first.contains("Trang 1/3"));

    // The API's lists are paged the same way: every product once, `total` in all.
    for query in ["shop=man-tuyn-ba-hanh", "village=phu-doi"] {
        let mut seen = std::collections::HashSet::new();
        let mut total = None;
        for page in 1..=10 {
            let r = app
                .get(&format!("/api/v1/products?{query}&per_page=40&page={page}"))
                .await;
            assert_eq!(r.status(), StatusCode::OK);
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(v["page"], page);
            assert_eq!(v["per_page"], 40);
            total = v["total"].as_i64();
            let list = v["products"].as_array().unwrap();
            assert!(list.len() <= 40);
            for p in list {
                assert!(seen.insert(p["slug"].as_str().unwrap().to_string()), "{p}");
            }
            if list.is_empty() {
                break;
            }
        }
        let total = total.unwrap();
        assert!(total >= 100, "{query}: {total}");
        assert_eq!(seen.len() as i64, total, "{query}");
        if query.starts_with("shop") {
            assert_eq!(total, shop_total);
        }
    }
    for bad in ["page=0", "per_page=0", "per_page=201"] {
        let r = app
            .get(&format!("/api/v1/products?village=phu-doi&{bad}"))
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let r = app.get("/api/v1/products?village=phu-doi&page=x").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

async fn buyers_browse_villages_shops_and_products(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let r = app.get("/").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let home = r.text().await.unwrap();
    assert!(home.contains("<html lang=\"vi\">"));
    assert!(home.contains("name=\"viewport\""));
    assert!(
        !home.contains("<script"),
        "browsing works without JavaScript"
    );
    for text in [
        "Làng Phú Đôi",
        "Làng Chuyên Mỹ",
        "Làng Vân Từ",
        "Sản phẩm mới",
        "Bảng giá cộng đồng",
    ] {
        assert!(home.contains(text), "home shows {text}");
    }
    let village = app.page("/lang/phu-doi").await;
    assert!(village.contains("xã Đại Thắng, huyện Phú Xuyên, Hà Nội"));
    assert!(village.contains("Màn tuyn 2 cửa 1m8 x 2m"));
    assert!(village.contains("180.000 ₫"));
    let shop = app
        .page(
            "/shop/khảm-trai"
                .replace("khảm-trai", "kham-trai-trong-nghia")
                .as_str(),
        )
        .await;
    assert!(shop.contains("Tranh khảm trai Vịnh Hạ Long 60x90"));
    assert!(shop.contains("4.500.000 ₫"));
    assert!(shop.contains("OCOP ★★★★"));
    let product = app.page("/san-pham/ban-tra-go-mit-1m").await;
    assert!(product.contains("1.850.000 ₫"));
    assert!(product.contains("Giá cộng đồng"));
    assert!(product.contains("Đồ gỗ Minh Đức"));
    assert!(product.contains("Còn 4 chiếc"));
    let out = app.page("/san-pham/trai-nhan-long-tuoi-2kg").await;
    assert!(out.contains("Hết hàng"));
    let board = app.page("/lang/phu-doi/bang-gia").await;
    assert!(board.contains("ít nhất 3 trong 4 người bán"));
    assert!(board.contains("Giá sợi polyester tăng"));
    // Text people wrote is escaped, never run.
    let hanh = app.api_login(HANH, PW).await;
    let (s, _) = app
        .api(
            "PATCH",
            "/products/man-tuyn-1m6-x-2m",
            Some(&hanh),
            Some(serde_json::json!({"description": "<script>alert(1)</script> màn đẹp"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let html = app.page("/san-pham/man-tuyn-1m6-x-2m").await;
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"));
    assert_eq!(app.get("/static/app.css").await.status(), StatusCode::OK);
}

async fn search_finds_with_or_without_diacritics(b: Backend) {
    let app = TestApp::with_demo(b).await;
    for q in ["màn tuyn", "man tuyn", "MAN TUYN", "Màn tuyn"] {
        let html = app
            .page(&format!("/tim-kiem?q={}", q.replace(' ', "+")))
            .await;
        assert!(
            html.contains("<mark>Màn</mark> <mark>tuyn</mark> 2 cửa 1m8 x 2m"),
            "{q}"
        );
        assert!(!html.contains("Mật ong hoa nhãn"), "{q}");
    }
    let html = app.page("/tim-kiem?q=mat+ong").await;
    assert!(html.contains("<mark>Mật</mark> <mark>ong</mark> hoa nhãn 500ml"));
    let html = app.page("/tim-kiem?q=khong+co+gi+nhu+vay").await;
    assert!(html.contains("Không tìm thấy sản phẩm nào"));
}

async fn times_are_shown_in_hanoi_time(b: Backend) {
    let app = TestApp::with_demo(b).await;
    // 2026-11-28 17:30 UTC is 00:30 on 29/11 in Hà Nội.
    sqlx::query("UPDATE proposals SET created_at = $1")
        .bind(1_795_887_000_000_i64)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let board = app.page("/lang/phu-doi/bang-gia").await;
    assert!(board.contains("29/11/2026 00:30"), "board shows local time");
}

async fn the_demo_market_has_a_picture_for_every_product(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let home = app.page("/").await;
    assert!(home.contains("class=\"ph\""), "grey boxes before");
    let n = cholang::demo::pictures::add_missing(&app.db, &app.config.photos_dir())
        .await
        .unwrap();
    let products = app.scalar("SELECT COUNT(*) FROM products").await;
    assert_eq!(n as i64, products);
    assert_eq!(
        app.scalar("SELECT COUNT(DISTINCT product_id) FROM product_photos")
            .await,
        products
    );
    // Once: a second pass (the next start) adds nothing.
    assert_eq!(
        cholang::demo::pictures::add_missing(&app.db, &app.config.photos_dir())
            .await
            .unwrap(),
        0
    );
    app.search_synced().await;
    let home = app.page("/").await;
    assert!(!home.contains("class=\"ph\""), "every card has its picture");
    let page = app.page("/san-pham/man-tuyn-1m6-x-2m").await;
    let start = page.find("<img class=\"main-photo\" src=\"").unwrap() + 29;
    let src = &page[start..start + page[start..].find('"').unwrap()];
    let r = app.get(src).await;
    assert_eq!(r.status(), StatusCode::OK, "{src}");
    let bytes = r.bytes().await.unwrap();
    let img = image::load_from_memory(&bytes).unwrap();
    assert_eq!(
        (img.width(), img.height()),
        (
            cholang::demo::pictures::WIDTH,
            cholang::demo::pictures::HEIGHT
        )
    );
}

/// The product page's data kept in memory (`PRODUCT_CACHE_ENTRIES`, `web::product_cache`),
/// with the page cache off: a change to any table the page reads, made behind the server's
/// back (as another instance, a job or `cholang import` would), shows without a write
/// through this server — the database says so (migration 0020). Meanwhile unchanged pages
/// are answered from memory. On PostgreSQL, a lost listener connection is made again and
/// the kept data used again after it.
async fn product_data_kept_until_the_database_says_it_changed(b: Backend) {
    let app = TestApp::with_demo_and(b, &[("PRODUCT_CACHE_ENTRIES", "100")]).await;
    let slug = "man-tuyn-1m6-x-2m";
    let path = format!("/san-pham/{slug}");
    let page = || async {
        let r = app.new_browser().get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.text().await.unwrap()
    };
    let answered_from_memory = || answered_from_memory(&app, &path);
    let shows = |want: String| {
        let page = &page;
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                if page().await.contains(&want) {
                    return;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the page never showed {want:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let first = answered_from_memory().await;
    assert!(first.contains("Màn tuyn"));
    let id: i64 = app
        .scalar("SELECT id FROM products WHERE slug = 'man-tuyn-1m6-x-2m'")
        .await;
    let item: i64 = app
        .scalar("SELECT price_item_id FROM products WHERE slug = 'man-tuyn-1m6-x-2m'")
        .await;
    let changes: Vec<(&str, String, String)> = vec![
        (
            "products",
            format!("UPDATE products SET stock = 777, current_batch_id = NULL WHERE id = {id}"),
            "Còn 777".into(),
        ),
        (
            "price_items",
            format!("UPDATE price_items SET price_vnd = 123000 WHERE id = {item}"),
            "123.000".into(),
        ),
        (
            "shops",
            format!(
                "UPDATE shops SET name = 'Cửa hàng đổi tên' WHERE id = (SELECT shop_id FROM products WHERE id = {id})"
            ),
            "Cửa hàng đổi tên".into(),
        ),
        (
            "villages",
            format!(
                "UPDATE villages SET name = 'Làng đổi tên' WHERE id = (SELECT s.village_id FROM shops s JOIN products p ON p.shop_id = s.id WHERE p.id = {id})"
            ),
            "Làng đổi tên".into(),
        ),
        (
            "batches",
            format!(
                "INSERT INTO batches (code, product_id, shop_id, created_at, updated_at) SELECT 'LOKEPT2026', id, shop_id, 0, 0 FROM products WHERE id = {id}"
            ),
            "/truy-xuat/LOKEPT2026".into(),
        ),
        (
            "product_photos",
            format!(
                "INSERT INTO product_photos (product_id, file_name, thumb_name, position, created_at) VALUES ({id}, 'kept-new.jpg', 'kept-new-thumb.jpg', -1, 0)"
            ),
            "kept-new.jpg".into(),
        ),
        (
            "price_changes",
            format!(
                "INSERT INTO price_changes (price_item_id, old_price_vnd, new_price_vnd, source, at) VALUES ({item}, 123000, 654000, 'moderator', 1800000000000)"
            ),
            "654.000".into(),
        ),
    ];
    for (table, sql, want) in changes {
        assert!(!page().await.contains(&want), "{table}: before");
        answered_from_memory().await;
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&app.db.pool)
            .await
            .unwrap();
        shows(want).await;
    }
    // The photo taken away again: its picture leaves the page.
    answered_from_memory().await;
    sqlx::query("DELETE FROM product_photos WHERE file_name = 'kept-new.jpg'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while page().await.contains("kept-new.jpg") {
        assert!(std::time::Instant::now() < deadline, "the photo stayed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    if b == Backend::Postgres {
        // The listener's connection cut: a change made while it is away still shows, and
        // kept data is used again once it listens again.
        let cut: i64 = sqlx::query_scalar(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE application_name = $1 AND datname = current_database()",
        )
        .bind(cholang::db::CATALOG_LISTENER)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        assert_eq!(cut, 1, "one listener per server");
        sqlx::query("UPDATE products SET stock = 555 WHERE id = $1")
            .bind(id)
            .execute(&app.db.pool)
            .await
            .unwrap();
        shows("Còn 555".into()).await;
        answered_from_memory().await;
        sqlx::query("UPDATE products SET stock = 556 WHERE id = $1")
            .bind(id)
            .execute(&app.db.pool)
            .await
            .unwrap();
        shows("Còn 556".into()).await;
    }
}

/// A seller's change through this server shows on the very next page, with no wait for the
/// database's word (on SQLite that word comes only every 200 ms).
async fn product_data_kept_follows_this_servers_own_writes_at_once(b: Backend) {
    let app = TestApp::with_demo_and(b, &[("PRODUCT_CACHE_ENTRIES", "100")]).await;
    let slug = "man-tuyn-1m6-x-2m";
    let path = format!("/san-pham/{slug}");
    let hanh = app.api_login(HANH, PW).await;
    for stock in [31, 32, 33] {
        answered_from_memory(&app, &path).await;
        let (s, p) = app
            .api(
                "PATCH",
                &format!("/products/{slug}"),
                Some(&hanh),
                Some(json!({"stock": stock})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        let page = app
            .new_browser()
            .get(app.url(&path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains(&format!("Còn {stock}")), "stock {stock}");
    }
}

/// An anonymous visitor's page at `path`, asked until one is answered from the product data
/// kept in memory (the watch reads the database's changes before anything is kept).
async fn answered_from_memory(app: &TestApp, path: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (hits, _) = app.state.products.counts();
        let r = app.new_browser().get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let text = r.text().await.unwrap();
        if app.state.products.counts().0 > hits {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no page answered from kept data"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
