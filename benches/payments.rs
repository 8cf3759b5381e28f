//! `cargo bench --bench payments`: the money path measured over real HTTP on loopback.
//!
//! For each backend (SQLite always; PostgreSQL when `BENCH_POSTGRES_URL` or
//! `TEST_POSTGRES_URL` is set), on the demo catalogue with large stock:
//! - checkout under contention: many concurrent buyers on the same product;
//! - webhook handling: signed bank-feed deliveries, each verified, stored, matched and
//!   confirming a payment (orders moved to paid).
//!
//! Sizes: `BENCH_N` requests per scenario (default 1000), `BENCH_CONCURRENCY` (default 32).
//! Scale (issue 12): `BENCH_PRODUCTS` more products in the catalogue beside the demo's
//! (default 0; "1000000" for the million-product figures), `BENCH_INSTANCES` servers on the
//! one database (default 1), each with its own pool, caches and listener, requests going to
//! them in turn (they share this process and its two cores with the clients).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cholang::app::Server;
use cholang::config::{Config, Settings};
use cholang::db::Db;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

#[path = "common/pg.rs"]
mod pg;
use pg::fresh_pg;

const SECRET: &str = "bench-bank-secret";

struct Stats {
    n: usize,
    wall: Duration,
    lat: Vec<Duration>,
}

impl Stats {
    fn line(&mut self, what: &str, backend: &str) -> String {
        self.lat.sort();
        let p = |q: f64| self.lat[((self.lat.len() as f64 * q) as usize).min(self.lat.len() - 1)];
        format!(
            "| {backend} | {what} | {} | {:.0}/s | {:.1} ms | {:.1} ms |",
            self.n,
            self.n as f64 / self.wall.as_secs_f64(),
            p(0.50).as_secs_f64() * 1000.0,
            p(0.99).as_secs_f64() * 1000.0
        )
    }
}

async fn run<F, Fut>(n: usize, concurrency: usize, f: F) -> Stats
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    let sem = Arc::new(Semaphore::new(concurrency));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            f(i).await;
            drop(permit);
            t.elapsed()
        }));
    }
    let mut lat = Vec::with_capacity(n);
    for t in tasks {
        lat.push(t.await.unwrap());
    }
    Stats {
        n,
        wall: start.elapsed(),
        lat,
    }
}

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `n` more active products (one demo shop, one agreed price), in one statement both
/// databases run.
async fn add_products(db: &Db, n: usize) {
    if n == 0 {
        return;
    }
    let t = Instant::now();
    sqlx::query(
        "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < $1)
         INSERT INTO products (slug, shop_id, price_item_id, name, description, category, stock, created_at, updated_at)
         SELECT 'bench-' || i, p.shop_id, p.price_item_id, 'Màn tuyn mẫu ' || i, p.description, p.category, 10, p.created_at, p.updated_at
         FROM g, (SELECT shop_id, price_item_id, description, category, created_at, updated_at FROM products ORDER BY id LIMIT 1) p",
    )
    .bind(n as i64)
    .execute(&db.pool)
    .await
    .unwrap();
    eprintln!("{n} products added in {:.1} s", t.elapsed().as_secs_f64());
}

async fn start(url: &str, dir: &std::path::Path) -> String {
    let settings = Settings::from_pairs([
        // The money path is measured, not search: no instance rebuilds an index.
        ("SEARCH_WORKER".into(), "off".into()),
        // Buyers come through a proxy, each from an address of their own (the limits on
        // requests, unpaid orders and units held count per address); the bank's feed comes
        // from one address, past its production limit here to measure capacity.
        ("CHOLANG_TRUSTED_PROXIES".into(), "127.0.0.1".into()),
        ("RATE_LIMIT_WEBHOOK".into(), "1000000/min".into()),
        ("CHOLANG_DATA_DIR".into(), dir.display().to_string()),
        ("DATABASE_URL".into(), url.to_string()),
        ("CHOLANG_ADDR".into(), "127.0.0.1:0".into()),
        ("COLLECT_BANK_BIN".into(), "970436".into()),
        ("COLLECT_ACCOUNT_NO".into(), "1017595600".into()),
        ("COLLECT_ACCOUNT_NAME".into(), "CHO LANG".into()),
        ("BANK_WEBHOOK_SECRET".into(), SECRET.into()),
        ("RUST_LOG".into(), "error".into()),
    ]);
    let config = Config::load(&settings).unwrap();
    let db = Db::connect(url).await.unwrap();
    db.migrate().await.unwrap();
    if cholang::demo::catalog::load_if_empty(&db).await.unwrap() {
        add_products(&db, env_usize("BENCH_PRODUCTS", 0)).await;
        sqlx::query("UPDATE products SET stock = 1000000 WHERE slug NOT LIKE 'bench-%'")
            .execute(&db.pool)
            .await
            .unwrap();
    }
    let server = Server::bind(config, db).await.unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    tokio::spawn(server.run(std::future::pending()));
    base
}

async fn bench_backend(name: &str, url: &str, n: usize, conc: usize) -> Vec<String> {
    let instances = env_usize("BENCH_INSTANCES", 1).max(1);
    let mut dirs = vec![];
    let mut bases = vec![];
    for _ in 0..instances {
        let dir = tempfile::tempdir().unwrap();
        bases.push(start(url, dir.path()).await);
        dirs.push(dir);
    }
    let bases = Arc::new(bases);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conc)
        .build()
        .unwrap();
    let checkout_body = json!({"items": [{"product_slug": "man-tuyn-2-cua-1m8-x-2m", "quantity": 1}],
        "buyer": {"name": "Chị Mai", "phone": "0987654321", "address": "12 Hàng Bông, Hà Nội"}});

    // Checkout under contention: everyone buys the same product at once.
    let codes = Arc::new(std::sync::Mutex::new(Vec::with_capacity(n)));
    let (c2, b2, body2, codes2) = (
        client.clone(),
        bases.clone(),
        checkout_body.clone(),
        codes.clone(),
    );
    let mut checkout = run(n, conc, move |i| {
        let (c, b, body, codes) = (c2.clone(), b2.clone(), body2.clone(), codes2.clone());
        async move {
            let b = &b[i % b.len()];
            // A different buyer each time.
            let mut body = body;
            body["buyer"]["phone"] = json!(format!("0987{:06}", i % 1_000_000));
            let r = c
                .post(format!("{b}/api/v1/checkout"))
                .header(
                    "x-forwarded-for",
                    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255),
                )
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let v: Value = r.json().await.unwrap();
            assert_eq!(status, 201, "{v}");
            codes.lock().unwrap().push((
                v["payment"]["code"].as_str().unwrap().to_string(),
                v["total_vnd"].as_i64().unwrap(),
            ));
        }
    })
    .await;

    // Webhooks: one signed delivery per payment, each confirming it.
    let codes: Arc<Vec<(String, i64)>> = Arc::new(codes.lock().unwrap().clone());
    let (c3, b3, codes3) = (client.clone(), bases.clone(), codes.clone());
    let mut hooks = run(n, conc, move |i| {
        let (c, b, codes) = (c3.clone(), b3.clone(), codes3.clone());
        async move {
            let b = &b[i % b.len()];
            let (code, amount) = &codes[i];
            let raw = serde_json::to_vec(&json!({"id": format!("FT-BENCH-{i}"), "amount": amount,
                "description": format!("MBVCB.{i}.{code}.CT")}))
            .unwrap();
            let t = cholang::domain::now_ms() / 1000;
            let sig = cholang::payments::signatures::bank_sign(SECRET, t, &raw);
            let r = c
                .post(format!("{b}/webhooks/bank"))
                .header("content-type", "application/json")
                .header("x-cholang-signature", format!("t={t},v1={sig}"))
                .body(raw)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    })
    .await;
    let db = Db::connect(url).await.unwrap();
    let paid: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payments WHERE status = 'paid'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(paid as usize, n, "every webhook confirmed its payment");
    let products: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let shape = format!("{products} products, {instances} instance(s)");
    vec![
        checkout.line(&format!("checkout, one hot product ({shape})"), name),
        hooks.line(&format!("bank webhook → paid ({shape})"), name),
    ]
}

fn main() {
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let conc: usize = std::env::var("BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut lines = vec![
            format!("requests per scenario: {n}, concurrency: {conc}"),
            "| backend | scenario | requests | throughput | p50 | p99 |".into(),
            "|---|---|---|---|---|---|".into(),
        ];
        let sqlite = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        );
        lines.extend(bench_backend("SQLite", &sqlite, n, conc).await);
        let pg = std::env::var("BENCH_POSTGRES_URL")
            .or_else(|_| std::env::var("TEST_POSTGRES_URL"))
            .ok();
        if let Some(admin) = pg {
            let url = fresh_pg(&admin).await;
            lines.extend(bench_backend("PostgreSQL", &url, n, conc).await);
        }
        println!("{}", lines.join("\n"));
    });
}
