//! `cargo bench --bench search`: the embedded search engine on a generated catalogue.
//!
//! For each size in `BENCH_SIZES` (default "10000,100000"; "1000000" for the issue-12 figures):
//! - the real `cholang import` of a CSV of that many rows into a new SQLite database (and a
//!   new PostgreSQL database when `BENCH_POSTGRES_URL` names a server), again with the same
//!   file, and the real `cholang reindex` of it, with each process's peak memory (skip with
//!   `BENCH_IMPORT=off`; `BENCH_IMPORT=only` stops after them);
//! - a SQLite catalogue of that many products is generated (10 villages, 200 shops, words
//!   from the craft villages' vocabulary);
//! - indexing throughput: a full rebuild from the database into a new embedded index;
//! - in-process latency over a mix of buyer queries (plain, without diacritics, typos,
//!   prefixes, synonyms, filters, sorts): the engine alone and the whole search service
//!   (engine + exact-diacritics rank + hydration from the database);
//! - HTTP latency: the real `cholang serve` binary on loopback, `BENCH_CONCURRENCY` (default
//!   16) clients, `BENCH_N` (default 2000) requests to `/api/v1/search`, after each query of
//!   the mix once, untimed (Meilisearch is asked each one before its load too);
//! - the server's memory: resident set and its peak (VmRSS / VmHWM) after the HTTP run;
//! - with `BENCH_MEILI_URL` (and `BENCH_MEILI_KEY`): the same documents in that Meilisearch,
//!   each query's match count from both engines, and the same mix asked of it directly.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cholang::db::Db;
use cholang::search::{Catalogue, Plan, Search};
use tokio::sync::Semaphore;

#[path = "common/catalogue.rs"]
mod catalogue;
use catalogue::{csv, generate};

#[path = "common/queries.rs"]
mod queries;
use queries::{QUERIES, request};

fn pct(lat: &mut [Duration], q: f64) -> f64 {
    lat.sort();
    lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|d| {
            d.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn proc_status(pid: u32, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .map(|l| l[key.len() + 1..].trim().to_string())
        .unwrap_or_else(|| "?".into())
}

/// Run the real `cholang` binary to its end: wall time, what it printed, and its peak resident
/// set (the kernel's `ru_maxrss` of that one child, from `wait4`).
// The child is reaped by `wait4` (which also gives its peak memory), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run_cholang(args: &[&str], dir: &std::path::Path, url: &str) -> (f64, String, u64) {
    let out_file = dir.join(format!("{}.out", args[0]));
    let err_file = dir.join(format!("{}.err", args[0]));
    let t = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_cholang"))
        .args(args)
        .env("CHOLANG_DATA_DIR", dir)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .env_remove("CHOLANG_CONFIG")
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(std::fs::File::create(&err_file).unwrap())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: rusage is plain data, zeroed is a valid value; wait4 fills it for our child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let secs = t.elapsed().as_secs_f64();
    assert!(
        waited > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{args:?}: {}",
        std::fs::read_to_string(&err_file).unwrap_or_default()
    );
    (
        secs,
        std::fs::read_to_string(&out_file).unwrap_or_default(),
        usage.ru_maxrss as u64,
    )
}

/// The real `cholang import` of an `n`-row CSV into a new SQLite database (and, with
/// `BENCH_POSTGRES_URL`, a new PostgreSQL database beside it), then the real `cholang reindex`
/// of the SQLite one into a new embedded index: wall time and peak memory of each process,
/// and what they leave on disk.
fn bench_import(n: usize, rows: &mut Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("catalogue.csv");
    std::fs::write(&file, csv(n)).unwrap();
    let csv_mb = std::fs::metadata(&file).unwrap().len() as f64 / 1e6;
    // `BENCH_KEEP_CSV=PATH` keeps the generated file, to time `cholang import` by hand.
    if let Ok(keep) = std::env::var("BENCH_KEEP_CSV") {
        std::fs::copy(&file, keep).unwrap();
    }
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("import.db").display()
    );
    let (secs, said, peak_kb) = run_cholang(&["import", file.to_str().unwrap()], dir.path(), &url);
    eprintln!("{n}: import said: {}", said.trim());
    let db_mb = ["import.db", "import.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.path().join(f)).ok())
        .map(|m| m.len())
        .sum::<u64>() as f64
        / 1e6;
    rows.push(format!(
        "| {n} | `cholang import` into SQLite ({csv_mb:.0} MB CSV, one transaction) | {:.0} rows/s ({secs:.1} s), peak RSS {:.0} MB, database {db_mb:.0} MB | | |",
        n as f64 / secs,
        peak_kb as f64 / 1024.0
    ));
    let (secs, said, _) = run_cholang(&["import", file.to_str().unwrap()], dir.path(), &url);
    assert!(said.contains("không có gì thay đổi"), "{said}");
    rows.push(format!(
        "| {n} | the same file again into SQLite (nothing changes) | {:.0} rows/s ({secs:.1} s) | | |",
        n as f64 / secs
    ));
    if let Ok(pg) = std::env::var("BENCH_POSTGRES_URL") {
        let name = format!("cholang_bench_import_{}", std::process::id());
        let admin = |sql: String| {
            let st = Command::new("psql")
                .args([pg.as_str(), "-qc", &sql])
                .status()
                .unwrap();
            assert!(st.success(), "{sql}");
        };
        admin(format!("DROP DATABASE IF EXISTS {name}"));
        admin(format!("CREATE DATABASE {name}"));
        let base = pg.rsplit_once('/').map(|(b, _)| b).unwrap_or(&pg);
        let pg_url = format!("{base}/{name}");
        let (secs, said, peak_kb) =
            run_cholang(&["import", file.to_str().unwrap()], dir.path(), &pg_url);
        eprintln!("{n}: import into PostgreSQL said: {}", said.trim());
        rows.push(format!(
            "| {n} | `cholang import` into PostgreSQL (one transaction) | {:.0} rows/s ({secs:.1} s), peak RSS {:.0} MB | | |",
            n as f64 / secs,
            peak_kb as f64 / 1024.0
        ));
        admin(format!("DROP DATABASE {name}"));
    }
    let (secs, said, peak_kb) = run_cholang(&["reindex"], dir.path(), &url);
    eprintln!("{n}: reindex said: {}", said.trim());
    rows.push(format!(
        "| {n} | `cholang reindex` (process, from the database) | {:.0} docs/s ({secs:.1} s), peak RSS {:.0} MB, index {:.1} MB | | |",
        n as f64 / secs,
        peak_kb as f64 / 1024.0,
        dir_size(&dir.path().join("search")) as f64 / 1e6
    ));
}

async fn bench_size(n: usize, rows: &mut Vec<String>) {
    match std::env::var("BENCH_IMPORT").as_deref() {
        Ok("off") => {}
        Ok("only") => return bench_import(n, rows),
        _ => bench_import(n, rows),
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let db = Db::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    let t = Instant::now();
    generate(&db, n).await;
    eprintln!("{n}: generated in {:.1} s", t.elapsed().as_secs_f64());

    let settings = cholang::config::Settings::from_pairs([
        ("CHOLANG_DATA_DIR".into(), dir.path().display().to_string()),
        ("DATABASE_URL".into(), url.clone()),
        // In process: what the engine and the service cost, no answer kept.
        ("SEARCH_CACHE_ENTRIES".into(), "0".into()),
    ]);
    let config = cholang::config::Config::load(&settings).unwrap();
    // The one-time data steps a server runs at its first start (categories adopted from the
    // products' own words, …), done here so the server's start below is a restart.
    let t = Instant::now();
    cholang::app::backfill(&db, &config).await.unwrap();
    eprintln!(
        "{n}: first-start data steps in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    {
        let search = Search::open(&config.search, db.clone()).unwrap();
        let docs = cholang::search::store::all_docs(&db).await.unwrap();
        let t = Instant::now();
        search.engine.replace_all(&docs).await.unwrap();
        let secs = t.elapsed().as_secs_f64();
        rows.push(format!(
            "| {n} | indexing (full rebuild) | {:.0} docs/s ({secs:.1} s) | | |",
            n as f64 / secs
        ));
        // In-process: the engine alone, then the service (rank + hydration).
        let embedded = cholang::search::embedded::Embedded::open(
            &dir.path().join("engine-only"),
            search.settings.clone(),
        )
        .unwrap();
        embedded.replace_all(&docs).await.unwrap();
        rows.push(format!(
            "| {n} | index size on disk | {:.1} MB | | |",
            dir_size(&config.search.index_dir) as f64 / 1e6
        ));
        let rounds = 30;
        let mut lat = vec![];
        let mut slowest: Vec<(Duration, &str)> = vec![];
        for _ in 0..rounds {
            for q in QUERIES {
                let r = request(q);
                let groups = Plan::groups(&r.q, &search.settings);
                let plan = Plan {
                    folded_query: String::new(),
                    groups,
                    filters: r.filters.clone(),
                    sort: r.sort,
                    offset: 0,
                    limit: 200,
                    with_exact: true,
                    with_facets: true,
                };
                let t = Instant::now();
                embedded.search_now(&plan).unwrap();
                lat.push(t.elapsed());
                slowest.push((t.elapsed(), q));
            }
        }
        for q in QUERIES {
            let mut mine: Vec<Duration> = slowest
                .iter()
                .filter(|(_, s)| s == q)
                .map(|(d, _)| *d)
                .collect();
            eprintln!(
                "{n}: engine {q}: p50 {:.2} ms, max {:.2} ms",
                pct(&mut mine, 0.5),
                pct(&mut mine, 1.0)
            );
        }
        slowest.sort();
        let worst: Vec<&str> = slowest.iter().rev().take(3).map(|(_, q)| *q).collect();
        eprintln!("{n}: slowest engine queries: {worst:?}");
        rows.push(format!(
            "| {n} | in-process, engine (top 200 + facets) | {} queries | {:.2} ms | {:.2} ms |",
            lat.len(),
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.99)
        ));
        let mut lat = vec![];
        for _ in 0..rounds {
            for q in QUERIES {
                let r = request(q);
                let t = Instant::now();
                search.search(&r).await.unwrap();
                lat.push(t.elapsed());
            }
        }
        rows.push(format!(
            "| {n} | in-process, search service (20 hits, hydrated) | {} queries | {:.2} ms | {:.2} ms |",
            lat.len(),
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.99)
        ));
    }
    // HTTP: the real binary on the index just built (its settings hash matches: no rebuild),
    // once keeping no answers and once as it runs by default (answers kept until a change).
    let mut ours = None;
    for cache in ["0", "512"] {
        let run = http_run(n, rows, &dir, &url, cache).await;
        ours.get_or_insert(run);
    }
    if let Some(ours) = ours {
        meili_run(n, rows, &config, &db, ours).await;
    }
}

/// With `BENCH_MEILI_URL` (and `BENCH_MEILI_KEY`, its master key): the same documents put into
/// that Meilisearch, each query's match count from both engines, and the same mix asked of
/// Meilisearch directly (its own search request, ids only) at the same concurrency, beside our
/// HTTP API with no answers kept (`ours`: req/s, p50 ms).
async fn meili_run(
    n: usize,
    rows: &mut Vec<String>,
    config: &cholang::config::Config,
    db: &Db,
    ours: (f64, f64),
) {
    use cholang::search::{SearchSettings, meili::Meili, store};
    let Ok(meili_url) = std::env::var("BENCH_MEILI_URL") else {
        return;
    };
    let key = std::env::var("BENCH_MEILI_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    let settings = Arc::new(SearchSettings::built_in());
    let uid = format!("cholang_bench_{}_{n}", std::process::id());
    let meili = Arc::new(
        Meili::new(&meili_url, key.as_deref(), &uid, settings.clone())
            .unwrap()
            .with_timeout(Duration::from_secs(3600)),
    );
    let t = Instant::now();
    meili.prepare().await.expect("Meilisearch settings");
    let docs = store::all_docs(db).await.unwrap();
    meili
        .replace_all(&docs)
        .await
        .expect("Meilisearch indexing");
    assert_eq!(meili.count().await.unwrap(), docs.len() as u64);
    drop(docs);
    let secs = t.elapsed().as_secs_f64();
    rows.push(format!(
        "| {n} | Meilisearch: indexing the same documents | {:.0} docs/s ({secs:.1} s) | | |",
        n as f64 / secs
    ));
    let via_meili = Search {
        engine: meili.clone(),
        settings,
        db: db.clone(),
        kept: Arc::new(cholang::search::KeptHits::new(Default::default(), 0)),
    };
    let embedded = Search::open(&config.search, db.clone()).unwrap();
    let mut differ = 0;
    for q in QUERIES {
        let plan = via_meili.first_plan(&request(q)).unwrap();
        let m = meili.search(&plan).await.unwrap();
        let e = embedded.engine.search(&plan).await.unwrap();
        eprintln!(
            "{n}: {q}: Meilisearch {} matches, embedded {}",
            m.total, e.total
        );
        differ += usize::from(m.total != e.total);
    }
    eprintln!(
        "{n}: {differ} of {} queries count differently",
        QUERIES.len()
    );
    let (total, conc) = load_shape();
    let url = format!("{}/indexes/{uid}/search", meili_url.trim_end_matches('/'));
    let bodies: Vec<String> = QUERIES
        .iter()
        .map(|q| {
            let plan = via_meili.first_plan(&request(q)).unwrap();
            meili.request_json(&plan).to_string()
        })
        .collect();
    let client = reqwest::Client::new();
    let (wall, mut lat) = load(total, conc, |i| {
        let req = client
            .post(&url)
            .header("Content-Type", "application/json")
            .body(bodies[i % bodies.len()].clone());
        match &key {
            Some(k) => req.bearer_auth(k),
            None => req,
        }
    })
    .await;
    let rps = total as f64 / wall;
    let p50 = pct(&mut lat, 0.5);
    rows.push(format!(
        "| {n} | Meilisearch directly, {conc} concurrent, the same mix | {rps:.0} req/s | {p50:.2} ms | {:.2} ms |",
        pct(&mut lat, 0.99)
    ));
    rows.push(format!(
        "| {n} | our HTTP API (no answers kept) beside Meilisearch directly | {:.2}× its req/s | {:.2}× its p50 | |",
        ours.0 / rps,
        ours.1 / p50
    ));
    meili.drop_index().await.unwrap();
}

async fn http_run(
    n: usize,
    rows: &mut Vec<String>,
    dir: &tempfile::TempDir,
    url: &str,
    cache: &str,
) -> (f64, f64) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cholang"))
        .arg("serve")
        .env("CHOLANG_DATA_DIR", dir.path())
        .env("DATABASE_URL", url)
        .env("SEARCH_CACHE_ENTRIES", cache)
        .env("CHOLANG_ADDR", format!("127.0.0.1:{port}"))
        .env("SEARCH_WORKER", "off")
        .env("NOTIFY_WORKER", "off")
        .env("RUST_LOG", "warn")
        .env_remove("CHOLANG_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every query of the mix once, untimed, as Meilisearch is asked each one (for its match
    // count) before its load: a server that has answered before, its segments' arrays read.
    for q in QUERIES {
        let r = client
            .get(format!("{base}/api/v1/search?{q}"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{q}: {}", r.status());
        r.bytes().await.unwrap();
    }
    let (total, conc) = load_shape();
    let (wall, mut lat) = load(total, conc, |i| {
        client.get(format!(
            "{base}/api/v1/search?{}",
            QUERIES[i % QUERIES.len()]
        ))
    })
    .await;
    let p50 = pct(&mut lat, 0.5);
    rows.push(format!(
        "| {n} | HTTP /api/v1/search, {conc} concurrent, {} | {:.0} req/s | {:.2} ms | {:.2} ms |",
        if cache == "0" {
            "no answers kept"
        } else {
            "answers kept (default)"
        },
        total as f64 / wall,
        p50,
        pct(&mut lat, 0.99)
    ));
    rows.push(format!(
        "| {n} | server memory after the run | RSS {} (peak {}) | | |",
        proc_status(child.id(), "VmRSS:"),
        proc_status(child.id(), "VmHWM:")
    ));
    let _ = child.kill();
    let _ = child.wait();
    (total as f64 / wall, p50)
}

/// `total` requests made by `request(i)`, `conc` at once: (wall seconds, each one's latency).
async fn load(
    total: usize,
    conc: usize,
    request: impl Fn(usize) -> reqwest::RequestBuilder,
) -> (f64, Vec<Duration>) {
    let sem = Arc::new(Semaphore::new(conc));
    let t = Instant::now();
    let mut tasks = vec![];
    for i in 0..total {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let req = request(i);
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = req.send().await.unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            r.bytes().await.unwrap();
            drop(permit);
            t.elapsed()
        }));
    }
    let mut lat = vec![];
    for t in tasks {
        lat.push(t.await.unwrap());
    }
    (t.elapsed().as_secs_f64(), lat)
}

/// (`BENCH_N` requests in all, default 2000; `BENCH_CONCURRENCY` at once, default 16).
fn load_shape() -> (usize, usize) {
    let env = |key: &str, default: usize| {
        std::env::var(key)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    (env("BENCH_N", 2000), env("BENCH_CONCURRENCY", 16))
}

fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = vec![
        "| products | measure | volume | p50 | p99 |".to_string(),
        "|---|---|---|---|---|".to_string(),
    ];
    rt.block_on(async {
        for n in sizes {
            bench_size(n, &mut rows).await;
        }
    });
    println!("{}", rows.join("\n"));
}
