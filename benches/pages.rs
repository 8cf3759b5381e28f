//! `cargo bench --bench pages`: requests per second of the public pages a buyer hits first,
//! as a share of a bare axum "hello" served by this bench on the same machine, both loaded
//! by the same `wrk` (Debian package `wrk`; 2 threads, `BENCH_CONNECTIONS` = 64 connections,
//! `BENCH_SECS` = 10 s per URL).
//!
//! The catalogue: `BENCH_PRODUCTS` (default 10,000) products in 10 villages and 200 shops
//! (`common/catalogue.rs`), on SQLite, and on PostgreSQL too when `BENCH_POSTGRES_URL` names
//! a server (a fresh database is made and dropped). The app is the real release binary
//! (`cholang serve`, its defaults: logs at info, embedded search index).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cholang::db::Db;

#[path = "common/catalogue.rs"]
mod catalogue;

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// (requests per second, p50 ms, p99 ms) from one wrk run.
fn wrk(url: &str) -> (f64, f64, f64) {
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{}", env_or("BENCH_CONNECTIONS", "64")),
            &format!("-d{}s", env_or("BENCH_SECS", "10")),
            "--latency",
            url,
        ])
        .output()
        .expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!text.contains("Non-2xx"), "{url} answered errors:\n{text}");
    let field = |prefix: &str| -> Option<String> {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
    };
    let rps: f64 = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output:\n{text}"));
    let ms = |v: Option<String>| -> f64 {
        let v = v.unwrap_or_default();
        let (num, unit) = v.split_at(v.find(|c: char| c.is_alphabetic()).unwrap_or(v.len()));
        let n: f64 = num.parse().unwrap_or(f64::NAN);
        match unit {
            "us" => n / 1000.0,
            "ms" => n,
            "s" => n * 1000.0,
            _ => f64::NAN,
        }
    };
    (rps, ms(field("50%")), ms(field("99%")))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_up(base: &str) {
    let started = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await
            && r.status().is_success()
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "server did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn bench_backend(
    name: &str,
    url: &str,
    data: &std::path::Path,
    n: usize,
    hello: f64,
    rows: &mut Vec<String>,
) {
    let db = Db::connect(url).await.unwrap();
    db.migrate().await.unwrap();
    let t = Instant::now();
    catalogue::generate(&db, n).await;
    // As `cholang import` leaves a large catalogue on PostgreSQL: its planner statistics
    // fresh (without them the search API's card query ran at a sixth of its speed).
    if url.starts_with("postgres") {
        sqlx::query("ANALYZE").execute(&db.pool).await.unwrap();
    }
    eprintln!(
        "{name}: {n} products generated in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    db.pool.close().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cholang"))
        .arg("serve")
        .env("CHOLANG_DATA_DIR", data)
        .env("DATABASE_URL", url)
        .env("CHOLANG_ADDR", format!("127.0.0.1:{port}"))
        .env_remove("CHOLANG_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_up(&base).await;
    // The embedded index is built from the database at the first start.
    let started = Instant::now();
    loop {
        let v: serde_json::Value = reqwest::get(format!("{base}/api/v1/search?q=&limit=1"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or_default();
        if v["total"].as_u64() == Some(n as u64) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "index not built: {v}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let pages = [
        ("home", "/".to_string()),
        ("village", "/lang/lang-0".to_string()),
        ("shop", "/shop/shop-7".to_string()),
        ("product", "/san-pham/p-4242".to_string()),
        ("search page", "/tim-kiem?q=man+tuyn".to_string()),
        ("search API", "/api/v1/search?q=man+tuyn".to_string()),
    ];
    // `BENCH_ONLY=search` (a part of the names): only those pages, e.g. to profile one.
    let only = env_or("BENCH_ONLY", "");
    for (what, path) in pages {
        if !what.contains(only.as_str()) {
            continue;
        }
        let (rps, p50, p99) = wrk(&format!("{base}{path}"));
        rows.push(format!(
            "| {name} | {what} `{path}` | {rps:.0} | {:.1} % | {p50:.2} | {p99:.2} |",
            rps / hello * 100.0
        ));
        eprintln!("{}", rows.last().unwrap());
    }
    let rss = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .map(|l| l.trim_start_matches("VmHWM:").trim().to_string())
        .unwrap_or_default();
    eprintln!("{name}: server peak RSS {rss}");
    let _ = child.kill();
    let _ = child.wait();
}

fn main() {
    let n: usize = env_or("BENCH_PRODUCTS", "10000").parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // The yardstick: axum answering "hello" on loopback, on this bench's runtime.
        let hello = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hello_url = format!("http://{}/", hello.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
            axum::serve(hello, app).await.unwrap();
        });
        let (hello_rps, p50, p99) = tokio::task::spawn_blocking(move || wrk(&hello_url))
            .await
            .unwrap();
        server.abort();
        let mut rows = vec![
            "| backend | page | req/s | of hello | p50 ms | p99 ms |".to_string(),
            "| --- | --- | ---: | ---: | ---: | ---: |".to_string(),
            format!("| — | bare axum \"hello\" | {hello_rps:.0} | 100 % | {p50:.2} | {p99:.2} |"),
        ];
        eprintln!("{}", rows.last().unwrap());
        let dir = tempfile::tempdir().unwrap();
        let sqlite = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        );
        bench_backend("SQLite", &sqlite, dir.path(), n, hello_rps, &mut rows).await;
        if let Ok(pg) = std::env::var("BENCH_POSTGRES_URL") {
            let admin = Db::connect(&pg).await.unwrap();
            let name = format!("cholang_bench_{}", std::process::id());
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin.pool)
                .await
                .unwrap();
            let url = format!("{}/{name}", pg.rsplit_once('/').unwrap().0);
            let data = tempfile::tempdir().unwrap();
            bench_backend("PostgreSQL", &url, data.path(), n, hello_rps, &mut rows).await;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE {name} WITH (FORCE)"
            )))
            .execute(&admin.pool)
            .await
            .unwrap();
        }
        println!(
            "\n{n} products, wrk -t2 -c{}:\n",
            env_or("BENCH_CONNECTIONS", "64")
        );
        for r in rows {
            println!("{r}");
        }
    });
}
