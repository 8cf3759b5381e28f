//! `cargo bench --bench payments`: the money path measured over real HTTP on loopback.
//!
//! For each backend (SQLite always; PostgreSQL when `BENCH_POSTGRES_URL` or
//! `TEST_POSTGRES_URL` is set), on the demo catalogue with large stock:
//! - checkout under contention: many concurrent buyers on the same product;
//! - webhook handling: signed bank-feed deliveries, each verified, stored, matched and
//!   confirming a payment (orders moved to paid).
//!
//! Sizes: `BENCH_N` requests per scenario (default 1000), `BENCH_CONCURRENCY` (default 32).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cholang::app::Server;
use cholang::config::{Config, Settings};
use cholang::db::Db;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

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

async fn start(url: &str, dir: &std::path::Path) -> String {
    let settings = Settings::from_pairs([
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
    cholang::catalog::demo::load_if_empty(&db).await.unwrap();
    sqlx::query("UPDATE products SET stock = 1000000")
        .execute(&db.pool)
        .await
        .unwrap();
    let server = Server::bind(config, db).await.unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    tokio::spawn(server.run(std::future::pending()));
    base
}

async fn bench_backend(name: &str, url: &str, n: usize, conc: usize) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let base = Arc::new(start(url, dir.path()).await);
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
        base.clone(),
        checkout_body.clone(),
        codes.clone(),
    );
    let mut checkout = run(n, conc, move |_| {
        let (c, b, body, codes) = (c2.clone(), b2.clone(), body2.clone(), codes2.clone());
        async move {
            let r = c
                .post(format!("{b}/api/v1/checkout"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            let v: Value = r.json().await.unwrap();
            codes.lock().unwrap().push((
                v["payment"]["code"].as_str().unwrap().to_string(),
                v["total_vnd"].as_i64().unwrap(),
            ));
        }
    })
    .await;

    // Webhooks: one signed delivery per payment, each confirming it.
    let codes: Arc<Vec<(String, i64)>> = Arc::new(codes.lock().unwrap().clone());
    let (c3, b3, codes3) = (client.clone(), base.clone(), codes.clone());
    let mut hooks = run(n, conc, move |i| {
        let (c, b, codes) = (c3.clone(), b3.clone(), codes3.clone());
        async move {
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
    vec![
        checkout.line("checkout, one hot product", name),
        hooks.line("bank webhook → paid", name),
    ]
}

async fn fresh_pg(admin_url: &str) -> String {
    let admin = Db::connect(admin_url).await.unwrap();
    let name = format!("cholang_bench_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin.pool)
        .await
        .unwrap();
    let cut = admin_url.rfind('/').unwrap();
    format!("{}/{}", &admin_url[..cut], name)
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
