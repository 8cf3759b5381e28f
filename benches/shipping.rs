//! `cargo bench --bench shipping`: shipping quotes at checkout over real HTTP on loopback,
//! for a cart from three shops that each ship by themselves, GHN and GHTK, with GHTK not
//! answering (a local stand-in that sleeps 10 s): every quote must come back within the
//! quote timeout, GHTK left out with a note.
//!
//! - "new parcels": each request a different quantity, so no quote is kept and GHN's fee API
//!   (a stand-in answering in `BENCH_GHN_MS`, default 30 ms) and GHTK's are asked each time;
//! - "kept quotes": the same cart again: the 10-minute quotes answer.
//!
//! Sizes: `BENCH_N` requests per scenario (default 300), `BENCH_CONCURRENCY` (16),
//! `BENCH_QUOTE_TIMEOUT_MS` (1000). SQLite always; PostgreSQL too when `BENCH_POSTGRES_URL` or
//! `TEST_POSTGRES_URL` is set.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::response::IntoResponse;
use cholang::app::Server;
use cholang::config::{Config, Settings};
use cholang::db::Db;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

#[path = "common/pg.rs"]
mod pg;
use pg::fresh_pg;

const CART: [&str; 3] = [
    "man-tuyn-2-cua-1m8-x-2m", // Màn tuyn Bà Hạnh
    "ghe-dau-go-xoan",         // Đồ gỗ Minh Đức
    "moc-treo-man-inox",       // Cơ khí Văn Toàn
];

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// GHN answering in `ghn_ms`, GHTK never within the timeout.
async fn carriers(ghn_ms: u64) -> String {
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, body: axum::body::Bytes| async move {
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let ok =
                |data: Value| axum::Json(json!({"code": 200, "message": "Success", "data": data}));
            match uri.path() {
                "/shiip/public-api/master-data/province" => ok(json!([
                    {"ProvinceID": 201, "ProvinceName": "Hà Nội"}
                ]))
                .into_response(),
                "/shiip/public-api/master-data/district" => ok(json!([
                    {"DistrictID": 1482, "DistrictName": "Quận Hoàn Kiếm"},
                    {"DistrictID": 3440, "DistrictName": "Huyện Phú Xuyên"}
                ]))
                .into_response(),
                "/shiip/public-api/master-data/ward" => match body["district_id"].as_i64() {
                    Some(1482) => {
                        ok(json!([{"WardCode": "1A0101", "WardName": "Phường Hoàn Kiếm"}]))
                    }
                    _ => ok(json!([{"WardCode": "1B2020", "WardName": "Xã Phú Xuyên"}])),
                }
                .into_response(),
                "/shiip/public-api/v2/shipping-order/fee" => {
                    tokio::time::sleep(Duration::from_millis(ghn_ms)).await;
                    ok(json!({"total": 20_000 + body["weight"].as_i64().unwrap_or(0) * 5}))
                        .into_response()
                }
                "/shiip/public-api/v2/shipping-order/leadtime" => {
                    ok(json!({"leadtime": 1_796_871_600})).into_response()
                }
                _ => {
                    // GHTK: later than any checkout waits.
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    axum::Json(json!({"success": true, "fee": {"fee": 1, "delivery": true}}))
                        .into_response()
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

async fn start(url: &str, dir: &std::path::Path, carriers: &str, timeout_ms: u64) -> String {
    let settings = Settings::from_pairs([
        ("SEARCH_WORKER".into(), "off".into()),
        ("CHOLANG_TRUSTED_PROXIES".into(), "127.0.0.1".into()),
        ("CHOLANG_DATA_DIR".into(), dir.display().to_string()),
        ("DATABASE_URL".into(), url.to_string()),
        ("CHOLANG_ADDR".into(), "127.0.0.1:0".into()),
        ("GHN_TOKEN".into(), "bench".into()),
        ("GHN_SHOP_ID".into(), "1".into()),
        ("GHN_API_URL".into(), carriers.into()),
        ("GHTK_TOKEN".into(), "bench".into()),
        ("GHTK_API_URL".into(), carriers.into()),
        ("SHIPPING_QUOTE_TIMEOUT_MS".into(), timeout_ms.to_string()),
        ("RUST_LOG".into(), "error".into()),
    ]);
    let config = Config::load(&settings).unwrap();
    let db = Db::connect(url).await.unwrap();
    db.migrate().await.unwrap();
    if cholang::demo::catalog::load_if_empty(&db).await.unwrap() {
        cholang::demo::shipping::load(&db).await.unwrap();
        sqlx::query("UPDATE shop_shipping SET methods = 'self,ghn,ghtk'")
            .execute(&db.pool)
            .await
            .unwrap();
    }
    let server = Server::bind(config, db).await.unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    tokio::spawn(server.run(std::future::pending()));
    base
}

async fn scenario(base: &str, n: usize, conc: usize, fresh: bool) -> (Duration, Vec<Duration>) {
    let client = reqwest::Client::new();
    let sem = Arc::new(Semaphore::new(conc));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let (client, base) = (client.clone(), base.to_string());
        // A new quantity is a new parcel: nothing kept answers it.
        let qty = if fresh { 1 + (i % 900) as i64 } else { 1 };
        tasks.push(tokio::spawn(async move {
            let items: Vec<Value> = CART
                .iter()
                .map(|s| json!({"product_slug": s, "quantity": qty}))
                .collect();
            let t = Instant::now();
            let r = client
                .post(format!("{base}/api/v1/checkout/quote"))
                .header("x-forwarded-for", format!("10.{}.{}.1", i / 250, i % 250))
                .json(&json!({"items": items, "address": {"province_code": "01", "ward_code": "00070", "street": "12 Hàng Bông"}}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let v: Value = r.json().await.unwrap();
            let elapsed = t.elapsed();
            for shop in v["shops"].as_array().unwrap() {
                let ids: Vec<&str> = shop["options"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| o["id"].as_str().unwrap())
                    .collect();
                assert!(!ids.contains(&"ghtk"), "the silent carrier was quoted");
            }
            drop(permit);
            elapsed
        }));
    }
    let mut lat = Vec::with_capacity(n);
    for t in tasks {
        lat.push(t.await.unwrap());
    }
    lat.sort();
    (started.elapsed(), lat)
}

fn line(backend: &str, what: &str, n: usize, wall: Duration, lat: &[Duration]) -> String {
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    format!(
        "| {backend} | {what} | {n} | {:.0}/s | {:.1} ms | {:.1} ms | {:.1} ms |",
        n as f64 / wall.as_secs_f64(),
        p(0.50).as_secs_f64() * 1000.0,
        p(0.99).as_secs_f64() * 1000.0,
        lat.last().unwrap().as_secs_f64() * 1000.0
    )
}

fn main() {
    let n = env_u64("BENCH_N", 300) as usize;
    let conc = env_u64("BENCH_CONCURRENCY", 16) as usize;
    let timeout = env_u64("BENCH_QUOTE_TIMEOUT_MS", 1000);
    let ghn_ms = env_u64("BENCH_GHN_MS", 30);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stand_in = carriers(ghn_ms).await;
        let dir = tempfile::tempdir().unwrap();
        let mut backends = vec![(
            "SQLite",
            format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display()),
        )];
        if let Ok(admin) =
            std::env::var("BENCH_POSTGRES_URL").or_else(|_| std::env::var("TEST_POSTGRES_URL"))
        {
            backends.push(("PostgreSQL", fresh_pg(&admin).await));
        }
        let mut lines = vec![
            format!(
                "3-shop cart, GHN answering in {ghn_ms} ms, GHTK silent; quote timeout {timeout} ms; {n} requests, concurrency {conc}"
            ),
            "| backend | quotes | requests | throughput | p50 | p99 | max |".into(),
            "|---|---|---|---|---|---|---|".into(),
        ];
        for (name, url) in backends {
            let app_dir = tempfile::tempdir().unwrap();
            let base = start(&url, app_dir.path(), &stand_in, timeout).await;
            let (wall, lat) = scenario(&base, n, conc, true).await;
            lines.push(line(name, "new parcels", n, wall, &lat));
            let (wall, lat) = scenario(&base, n, conc, false).await;
            lines.push(line(name, "kept quotes", n, wall, &lat));
        }
        println!("{}", lines.join("\n"));
    });
}
