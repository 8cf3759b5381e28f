//! `cargo bench --bench pages`: requests per second of the public pages a buyer hits first,
//! as a share of a bare axum "hello" served by this bench on the same machine, both loaded
//! by the same `wrk` (Debian package `wrk`; 2 threads, `BENCH_CONNECTIONS` = 64 connections,
//! `BENCH_SECS` = 10 s per URL).
//!
//! The catalogue: `BENCH_PRODUCTS` (default 10,000) products in 10 villages and 200 shops
//! (`common/catalogue.rs`), on SQLite, and on PostgreSQL too when `BENCH_POSTGRES_URL` names
//! a server (a fresh database is made and dropped). The app is the real release binary
//! (`cholang serve`, its defaults: logs at info, embedded search index).
//!
//! Besides the fixed pages: product pages asked at random across the catalogue (the long
//! tail, most requests missing the one-second page cache), the same with the page cache
//! off (`PAGE_CACHE_MS=0`, a second server on the same database: each page rendered from the
//! product data kept until it changes, `web::product_cache`), and with both off
//! (`PRODUCT_CACHE_ENTRIES=0` too: every request asks the database). Beside them, a floor: a
//! bare axum answering the same random paths with one query through cholang's pool, the
//! most any page asking the database can answer.
//!
//! `BENCH_PERF=1` records a `perf record -g` profile of the server under each page's load
//! (`target/perf-<backend>-<page>.data`); `BENCH_PERF=all` profiles the whole machine.
//!
//! The search API is also loaded with the buyer query mix (`common/queries.rs`, each wrk
//! connection cycling through it). With `BENCH_MEILI_URL` (and `BENCH_MEILI_KEY`, its master
//! key) the same catalogue is put into that Meilisearch with our settings, and Meilisearch is
//! asked the very questions our Meilisearch engine would send it for each query of the mix
//! (`POST /indexes/{uid}/search`, bodies from `Meili::request_json`), directly, by the same
//! wrk: the embedded engine's search API is compared with it (the issue-12 target: at least
//! twice the requests per second, p50 no higher). Then `cholang serve` runs on the same
//! database with `MEILI_URL` (a fresh index the server builds itself) and its search API is
//! loaded the same way: the production path beside its engine answering directly (the
//! issue-34 target: at least 0.8× Meilisearch's requests per second, p50 at most 1.3× its).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cholang::db::Db;

#[path = "common/catalogue.rs"]
mod catalogue;
#[path = "common/queries.rs"]
mod queries;

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// (requests per second, p50 ms, p99 ms) from one wrk run.
fn wrk(url: &str) -> (f64, f64, f64) {
    wrk_with(url, None)
}

/// A wrk script that cycles through requests: (method, path, JSON body or "").
fn rotation(requests: &[(&str, String, String)], bearer: Option<&str>) -> tempfile::NamedTempFile {
    use std::io::Write;
    let mut lua = String::from("local reqs = {\n");
    for (method, path, body) in requests {
        assert!(!path.contains("]==]") && !body.contains("]==]"));
        let body = if body.is_empty() {
            "nil".to_string()
        } else {
            format!("[==[{body}]==]")
        };
        lua.push_str(&format!("  {{\"{method}\", [==[{path}]==], {body}}},\n"));
    }
    lua.push_str("}\nwrk.headers[\"Content-Type\"] = \"application/json\"\n");
    if let Some(key) = bearer {
        lua.push_str(&format!(
            "wrk.headers[\"Authorization\"] = \"Bearer {key}\"\n"
        ));
    }
    lua.push_str(
        "local i = 0\nrequest = function()\n  i = i % #reqs + 1\n  local r = reqs[i]\n  \
         return wrk.format(r[1], r[2], nil, r[3])\nend\n",
    );
    let mut f = tempfile::Builder::new().suffix(".lua").tempfile().unwrap();
    f.write_all(lua.as_bytes()).unwrap();
    f
}

/// A wrk script asking `/san-pham/p-N` for N at random below `n`.
fn random_products(n: usize) -> tempfile::NamedTempFile {
    use std::io::Write;
    let lua = format!(
        "math.randomseed(os.time())\nrequest = function()\n  \
         return wrk.format(\"GET\", \"/san-pham/p-\" .. math.random(0, {}))\nend\n",
        n - 1
    );
    let mut f = tempfile::Builder::new().suffix(".lua").tempfile().unwrap();
    f.write_all(lua.as_bytes()).unwrap();
    f
}

/// One wrk run, with a request script when given.
fn wrk_with(url: &str, script: Option<&std::path::Path>) -> (f64, f64, f64) {
    let mut args = vec![
        "-t2".to_string(),
        format!("-c{}", env_or("BENCH_CONNECTIONS", "64")),
        format!("-d{}s", env_or("BENCH_SECS", "10")),
        "--latency".to_string(),
    ];
    if let Some(s) = script {
        args.push("-s".into());
        args.push(s.display().to_string());
    }
    args.push(url.to_string());
    let out = Command::new("wrk")
        .args(&args)
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

/// With `BENCH_PERF` set: `perf record -g` of the server while wrk loads one page, into
/// `target/perf-<backend>-<page>.data` (read it with `perf report --no-children`);
/// `BENCH_PERF=all` records the whole machine (the database server and wrk too: `perf
/// report --sort comm` shows who has the cores).
fn profile(pid: u32, backend: &str, page: &str) -> Option<std::process::Child> {
    let whole = std::env::var_os("BENCH_PERF")? == "all";
    let name: String = format!("{backend}-{page}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let out = format!("{}/../perf-{name}.data", env!("CARGO_TARGET_TMPDIR"));
    let pid = pid.to_string();
    let whom = if whole { vec!["-a"] } else { vec!["-p", &pid] };
    Command::new("perf")
        .args(["record", "-F", "999", "-g", "-o", &out])
        .args(whom)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

fn finish_profile(perf: Option<std::process::Child>) {
    if let Some(mut p) = perf {
        // perf writes its file on SIGINT.
        let _ = Command::new("kill")
            .args(["-INT", &p.id().to_string()])
            .status();
        let _ = p.wait();
    }
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
) -> Vec<(&'static str, f64, f64)> {
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
    let only = env_or("BENCH_ONLY", "");
    if "product, random".contains(&only) {
        floor(name, db, n, hello, rows).await;
    } else {
        db.pool.close().await;
    }
    let measured = serve_and_load(name, url, data, n, hello, &only, &[], rows).await;
    // The same long tail with the page cache off (every request a render), then with the
    // product data not kept either (every request a render of what the database answers).
    if "product, random".contains(&only) {
        serve_and_load(
            &format!("{name}, page cache off"),
            url,
            data,
            n,
            hello,
            "product, random",
            &[("PAGE_CACHE_MS", "0")],
            rows,
        )
        .await;
        serve_and_load(
            &format!("{name}, page cache and product data off"),
            url,
            data,
            n,
            hello,
            "product, random",
            &[("PAGE_CACHE_MS", "0"), ("PRODUCT_CACHE_ENTRIES", "0")],
            rows,
        )
        .await;
    }
    measured
}

/// The floor under any page that asks the database: a bare axum on this bench's runtime (as
/// "hello") answering the random product paths with one question through cholang's own pool
/// (the product's name by its slug), no template, no middleware. A page asking the database
/// anything answers at most this many requests.
async fn floor(name: &str, db: Db, n: usize, hello: f64, rows: &mut Vec<String>) {
    use axum::extract::{Path, State};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let db = std::sync::Arc::new(db);
    let app = axum::Router::new()
        .route(
            "/san-pham/{slug}",
            axum::routing::get(
                |State(db): State<std::sync::Arc<Db>>, Path(slug): Path<String>| async move {
                    sqlx::query_scalar::<_, String>("SELECT name FROM products WHERE slug = $1")
                        .bind(slug)
                        .fetch_one(&db.pool)
                        .await
                        .unwrap()
                },
            ),
        )
        .with_state(db.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let script = random_products(n);
    let path = script.path().to_path_buf();
    let (rps, p50, p99) = tokio::task::spawn_blocking(move || wrk_with(&base, Some(&path)))
        .await
        .unwrap();
    server.abort();
    let _ = server.await;
    db.pool.close().await;
    rows.push(format!(
        "| {name} | floor: bare axum, one query per request, random of {n} | {rps:.0} | {:.1} % | {p50:.2} | {p99:.2} |",
        rps / hello * 100.0
    ));
    eprintln!("{}", rows.last().unwrap());
}

/// `cholang serve` on a generated database (with `env` besides), loaded page by page with
/// wrk once its search index holds the catalogue.
#[allow(clippy::too_many_arguments)]
async fn serve_and_load(
    name: &str,
    url: &str,
    data: &std::path::Path,
    n: usize,
    hello: f64,
    only: &str,
    env: &[(&str, &str)],
    rows: &mut Vec<String>,
) -> Vec<(&'static str, f64, f64)> {
    let mut measured = vec![];
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cholang"))
        .arg("serve")
        .env("CHOLANG_DATA_DIR", data)
        .env("DATABASE_URL", url)
        .env("CHOLANG_ADDR", format!("127.0.0.1:{port}"))
        .envs(env.iter().copied())
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
    for (what, path) in pages {
        if !what.contains(only) {
            continue;
        }
        let perf = profile(child.id(), name, what);
        let (rps, p50, p99) = wrk(&format!("{base}{path}"));
        finish_profile(perf);
        measured.push((what, rps, p50));
        rows.push(format!(
            "| {name} | {what} `{path}` | {rps:.0} | {:.1} % | {p50:.2} | {p99:.2} |",
            rps / hello * 100.0
        ));
        eprintln!("{}", rows.last().unwrap());
    }
    // The long tail: product pages asked at random across the catalogue, so most requests
    // miss the page cache (kept 1 s) and render from the database.
    if "product, random".contains(only) {
        let script = random_products(n);
        let perf = profile(child.id(), name, "product, random");
        let (rps, p50, p99) = wrk_with(&base, Some(script.path()));
        finish_profile(perf);
        rows.push(format!(
            "| {name} | product, random of {n} `/san-pham/p-N` | {rps:.0} | {:.1} % | {p50:.2} | {p99:.2} |",
            rps / hello * 100.0
        ));
        eprintln!("{}", rows.last().unwrap());
        measured.push(("product, random", rps, p50));
    }
    if "search API, query mix".contains(only) {
        let mix: Vec<(&str, String, String)> = queries::QUERIES
            .iter()
            .map(|q| ("GET", format!("/api/v1/search?{q}"), String::new()))
            .collect();
        let script = rotation(&mix, None);
        let perf = profile(child.id(), name, "search API, query mix");
        let (rps, p50, p99) = wrk_with(&base, Some(script.path()));
        finish_profile(perf);
        rows.push(format!(
            "| {name} | search API, query mix ({} queries) | {rps:.0} | {:.1} % | {p50:.2} | {p99:.2} |",
            mix.len(),
            rps / hello * 100.0
        ));
        eprintln!("{}", rows.last().unwrap());
        measured.push(("search API, query mix", rps, p50));
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
    measured
}

/// The catalogue of `db_url` put into the Meilisearch at `meili_url` (our settings, a fresh
/// index), then asked our engine's questions directly: (what, req/s, p50 ms) rows like
/// `bench_backend`'s.
async fn bench_meilisearch(
    meili_url: &str,
    key: Option<&str>,
    db_url: &str,
    hello: f64,
    rows: &mut Vec<String>,
) -> Vec<(&'static str, f64, f64)> {
    use cholang::search::{Catalogue, Search, SearchSettings, meili::Meili, store};
    let db = Db::connect(db_url).await.unwrap();
    let settings = std::sync::Arc::new(SearchSettings::built_in());
    let uid = format!("cholang_bench_{}", std::process::id());
    let meili = std::sync::Arc::new(
        Meili::new(meili_url, key, &uid, settings.clone())
            .unwrap()
            .with_timeout(Duration::from_secs(120)),
    );
    let t = Instant::now();
    meili.prepare().await.expect("Meilisearch settings");
    let docs = store::all_docs(&db).await.unwrap();
    meili
        .replace_all(&docs)
        .await
        .expect("Meilisearch indexing");
    assert_eq!(meili.count().await.unwrap(), docs.len() as u64);
    eprintln!(
        "Meilisearch: {} documents indexed in {:.1} s",
        docs.len(),
        t.elapsed().as_secs_f64()
    );
    let search = Search {
        engine: meili.clone(),
        settings,
        db: db.clone(),
        kept: std::sync::Arc::new(cholang::search::KeptHits::new(Default::default(), 0)),
    };
    let path = format!("/indexes/{uid}/search");
    let body = |q: &str| {
        let plan = search.first_plan(&queries::request(q)).unwrap();
        meili.request_json(&plan).to_string()
    };
    let one = [("POST", path.clone(), body("q=man+tuyn"))];
    let mix: Vec<(&str, String, String)> = queries::QUERIES
        .iter()
        .map(|q| ("POST", path.clone(), body(q)))
        .collect();
    // The questions are real ones: what Meilisearch finds for each, beside what the
    // embedded engine finds (the relevance suite holds both engines to the same answers).
    let index_dir = tempfile::tempdir().unwrap();
    let embedded =
        cholang::search::embedded::Embedded::open(index_dir.path(), search.settings.clone())
            .unwrap();
    embedded.replace_all(&docs).await.unwrap();
    let mut differ = 0;
    for q in queries::QUERIES {
        let plan = search.first_plan(&queries::request(q)).unwrap();
        let m = meili.search(&plan).await.unwrap();
        let e = embedded.search(&plan).await.unwrap();
        eprintln!("{q}: Meilisearch {} matches, embedded {}", m.total, e.total);
        differ += usize::from(m.total != e.total);
    }
    eprintln!(
        "{differ} of {} queries count differently",
        queries::QUERIES.len()
    );
    let mut measured = vec![];
    for (what, reqs) in [
        ("search API", &one[..]),
        ("search API, query mix", &mix[..]),
    ] {
        let script = rotation(reqs, key);
        let (rps, p50, p99) = wrk_with(meili_url.trim_end_matches('/'), Some(script.path()));
        rows.push(format!(
            "| Meilisearch direct | {what}: `POST {path}` | {rps:.0} | {:.1} % | {p50:.2} | {p99:.2} |",
            rps / hello * 100.0
        ));
        eprintln!("{}", rows.last().unwrap());
        measured.push((what, rps, p50));
    }
    meili.drop_index().await.unwrap();
    db.pool.close().await;
    measured
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
        let embedded = bench_backend("SQLite", &sqlite, dir.path(), n, hello_rps, &mut rows).await;
        let mut versus = vec![];
        if let Ok(meili_url) = std::env::var("BENCH_MEILI_URL") {
            let key = std::env::var("BENCH_MEILI_KEY")
                .ok()
                .filter(|k| !k.is_empty());
            let direct =
                bench_meilisearch(&meili_url, key.as_deref(), &sqlite, hello_rps, &mut rows).await;
            // Our search API answering from that Meilisearch (the production path), on the
            // same SQLite catalogue, beside what Meilisearch answers directly.
            let index = format!("cholang_api_bench_{}", std::process::id());
            let mut env = vec![
                ("MEILI_URL", meili_url.as_str()),
                ("MEILI_INDEX", index.as_str()),
            ];
            if let Some(k) = &key {
                env.push(("MEILI_MASTER_KEY", k.as_str()));
            }
            let data = tempfile::tempdir().unwrap();
            let via_api = serve_and_load(
                "SQLite + Meilisearch",
                &sqlite,
                data.path(),
                n,
                hello_rps,
                "search API",
                &env,
                &mut rows,
            )
            .await;
            for (what, rps, p50) in &direct {
                if let Some((_, ours, our_p50)) = via_api.iter().find(|m| m.0 == *what) {
                    versus.push(format!(
                        "{what}: our API on Meilisearch {ours:.0} req/s p50 {our_p50:.2} ms, \
                         Meilisearch direct {rps:.0} req/s p50 {p50:.2} ms: {:.2}× its requests \
                         per second, {:.2}× its p50",
                        ours / rps,
                        our_p50 / p50
                    ));
                }
            }
            let settings = std::sync::Arc::new(cholang::search::SearchSettings::built_in());
            if let Ok(m) =
                cholang::search::meili::Meili::new(&meili_url, key.as_deref(), &index, settings)
            {
                let _ = m.drop_index().await;
            }
            for (what, rps, p50) in direct {
                if let Some((_, ours, our_p50)) = embedded.iter().find(|m| m.0 == what) {
                    versus.push(format!(
                        "{what}: embedded engine (SQLite) {ours:.0} req/s p50 {our_p50:.2} ms, \
                         Meilisearch direct {rps:.0} req/s p50 {p50:.2} ms: {:.2}× the requests \
                         per second, p50 {}",
                        ours / rps,
                        if *our_p50 <= p50 {
                            "no higher"
                        } else {
                            "HIGHER"
                        }
                    ));
                }
            }
        }
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
        if !versus.is_empty() {
            println!();
        }
        for v in versus {
            println!("{v}");
        }
    });
}
