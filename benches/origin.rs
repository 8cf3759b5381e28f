//! `cargo bench --bench origin`: the public origin page beside the product page, over real
//! HTTP on loopback, and label PDF rendering.
//!
//! On the demo catalogue (SQLite always; PostgreSQL when `BENCH_POSTGRES_URL` or
//! `TEST_POSTGRES_URL` is set): `BENCH_N` GETs (default 3000) with `BENCH_CONCURRENCY`
//! clients (default 32) of `/san-pham/{slug}` and of `/truy-xuat/{code}` (each one also
//! counts a scan, tallied in memory and written every 5 s), then the time to render label PDFs of 24 and 240 labels.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cholang::app::Server;
use cholang::config::{Config, Settings};
use cholang::db::Db;
use cholang::origin::label::{self, LabelText, Sheet};
use serde_json::json;
use tokio::sync::Semaphore;

#[path = "common/pg.rs"]
mod pg;
use pg::fresh_pg;

const SLUG: &str = "man-tuyn-2-cua-1m8-x-2m";

fn env_num(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn start(url: &str, dir: &std::path::Path) -> (String, Db) {
    let settings = Settings::from_pairs([
        ("CHOLANG_DATA_DIR".into(), dir.display().to_string()),
        ("DATABASE_URL".into(), url.to_string()),
        ("CHOLANG_ADDR".into(), "127.0.0.1:0".into()),
        ("RUST_LOG".into(), "error".into()),
    ]);
    let config = Config::load(&settings).unwrap();
    let db = Db::connect(url).await.unwrap();
    db.migrate().await.unwrap();
    cholang::demo::catalog::load_if_empty(&db).await.unwrap();
    let server = Server::bind(config, db.clone()).await.unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    tokio::spawn(server.run(std::future::pending()));
    (base, db)
}

/// Requests per second and p50 / p99 of `n` GETs of `path`.
async fn hammer(base: &str, path: &str, n: usize, conc: usize) -> (f64, f64, f64) {
    let client = reqwest::Client::new();
    let url = Arc::new(format!("{base}{path}"));
    let sem = Arc::new(Semaphore::new(conc));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    static VISITOR: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    for _ in 0..n {
        let i = VISITOR.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let permit = sem.clone().acquire_owned().await.unwrap();
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            // One visitor per request: a visitor's views of a batch count once a day.
            let r = client
                .get(url.as_str())
                .header("user-agent", format!("Mozilla/5.0 (bench visitor {i})"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap();
            drop(permit);
            t.elapsed()
        }));
    }
    let mut lat: Vec<Duration> = Vec::with_capacity(n);
    for t in tasks {
        lat.push(t.await.unwrap());
    }
    let wall = start.elapsed();
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)].as_secs_f64() * 1e3;
    (n as f64 / wall.as_secs_f64(), p(0.5), p(0.99))
}

async fn bench_backend(name: &str, url: &str, n: usize, conc: usize) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let (base, db) = start(url, dir.path()).await;
    let client = reqwest::Client::new();
    let token: String = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"login": "0912000101", "password": cholang::demo::catalog::DEMO_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let v: serde_json::Value = client
        .post(format!("{base}/api/v1/products/{SLUG}/batches"))
        .bearer_auth(&token)
        .json(
            &json!({"produced_on": "2026-11-30", "quantity": 100, "maker": "Hộ bà Hạnh",
            "inputs": [{"material": "Sợi polyester", "source": "Công ty Dệt Nam Định"}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = v["batch"]["code"].as_str().unwrap().to_string();
    // Warm up both pages.
    hammer(&base, &format!("/san-pham/{SLUG}"), 200, conc).await;
    hammer(&base, &format!("/truy-xuat/{code}"), 200, conc).await;
    let mut rows = Vec::new();
    for (what, path) in [
        ("product page", format!("/san-pham/{SLUG}")),
        ("origin page", format!("/truy-xuat/{code}")),
    ] {
        let (rps, p50, p99) = hammer(&base, &path, n, conc).await;
        rows.push(format!(
            "| {name} | {what} | {n} | {rps:.0}/s | {p50:.1} ms | {p99:.1} ms |"
        ));
    }
    // Views are written every 5 s; wait for them, then check none was lost or doubled.
    let started = Instant::now();
    loop {
        let scans: Option<i64> =
            sqlx::query_scalar("SELECT CAST(SUM(n) AS BIGINT) FROM batch_scans")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        if scans == Some(n as i64 + 200) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "views written: {scans:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    rows
}

fn labels() -> Vec<String> {
    let text = LabelText {
        qr_payload: "https://cholang.vn/01/08936042000123/10/PD-261130-01".into(),
        product: "Màn tuyn 2 cửa 1m8 x 2m".into(),
        village: "Làng Phú Đôi, Hà Nội".into(),
        batch: "PD-261130-01".into(),
        produced: "30/11/2026".into(),
        price: "Giá cộng đồng: 180.000 ₫ / chiếc".into(),
    };
    let mut rows = Vec::new();
    for (sheet, count) in [
        (Sheet::A4x24, 24),
        (Sheet::A4x24, 240),
        (Sheet::Roll50x30, 100),
    ] {
        label::pdf(sheet, &text, count).unwrap();
        let runs = 10;
        let t = Instant::now();
        let mut size = 0;
        for _ in 0..runs {
            size = label::pdf(sheet, &text, count).unwrap().len();
        }
        rows.push(format!(
            "| {} | {count} | {:.1} ms | {} KB |",
            sheet.name(),
            t.elapsed().as_secs_f64() * 1e3 / runs as f64,
            size / 1024
        ));
    }
    rows
}

fn main() {
    let n = env_num("BENCH_N", 3000);
    let conc = env_num("BENCH_CONCURRENCY", 32);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut lines = vec![
            format!("requests per page: {n}, concurrency: {conc}"),
            "| backend | page | requests | throughput | p50 | p99 |".into(),
            "|---|---|---|---|---|---|".into(),
        ];
        let sqlite = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        );
        lines.extend(bench_backend("SQLite", &sqlite, n, conc).await);
        if let Ok(admin) =
            std::env::var("BENCH_POSTGRES_URL").or_else(|_| std::env::var("TEST_POSTGRES_URL"))
        {
            let url = fresh_pg(&admin).await;
            lines.extend(bench_backend("PostgreSQL", &url, n, conc).await);
        }
        lines.push(String::new());
        lines.push("| labels | count | PDF render | size |".into());
        lines.push("|---|---|---|---|".into());
        lines.extend(labels());
        println!("{}", lines.join("\n"));
    });
}
