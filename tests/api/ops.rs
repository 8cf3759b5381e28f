//! Running it in production (issue 11): security headers, readiness, request ids, logs,
//! rate limits, backups.

use reqwest::StatusCode;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    pages_carry_a_strict_content_security_policy,
    readiness_needs_the_database_and_the_search_engine,
    not_ready_until_the_index_holds_the_catalogue,
    every_log_line_of_a_request_carries_its_id,
    scripts_are_slowed_per_client_address,
    a_backup_taken_under_writes_restores_every_committed_order,
    metrics_count_traffic_by_route_template_on_their_own_listener,
    a_secret_in_the_log_is_replaced,
);

async fn pages_carry_a_strict_content_security_policy(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let (_, v) = app.checkout(&[("man-tuyn-1m6-x-2m", 1)]).await;
    let code = v["payment"]["code"].as_str().unwrap().to_string();
    for path in [
        "/".to_string(),
        "/tim-kiem?q=man".to_string(),
        "/san-pham/man-tuyn-1m6-x-2m".to_string(),
        format!("/pay/{code}"),
        "/api/v1/villages".to_string(),
    ] {
        let r = app.get(&path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("style-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert!(
            h["permissions-policy"]
                .to_str()
                .unwrap()
                .contains("camera=()")
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "kept");
        assert_eq!(h["x-frame-options"], "DENY", "kept");
        assert!(
            h.get("strict-transport-security").is_none(),
            "not over http"
        );
        // Nothing inline for the policy to refuse: scripts come from our files (JSON-LD is data).
        let html = r.text().await.unwrap();
        for (i, _) in html.match_indices("<script") {
            let tag = &html[i..i + html[i..].find('>').unwrap()];
            assert!(
                tag.contains(" src=\"/static/") || tag.contains("application/ld+json"),
                "{path}: inline script {tag}"
            );
        }
        assert!(!html.contains(" style=\""), "{path}: inline style");
        assert!(!html.contains("<style"), "{path}: inline style sheet");
        assert!(!html.contains(" onclick="), "{path}: inline handler");
    }
    // The payment page's live status is a file of ours.
    let html = app.page(&format!("/pay/{code}")).await;
    assert!(html.contains("<script src=\"/static/pay.js\" defer></script>"));
    assert!(html.contains(&format!("data-code=\"{code}\"")));
    let js = app.get("/static/pay.js").await;
    assert_eq!(js.status(), StatusCode::OK);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.text().await.unwrap().contains("/api/v1/payments/"));
    // Behind https, browsers are told to keep to it.
    let https = TestApp::spawn_with(b, &[("CHOLANG_PUBLIC_URL", "https://cholang.example")]).await;
    let r = https.get("/").await;
    assert!(
        r.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=31536000")
    );
}

async fn readiness_needs_the_database_and_the_search_engine(b: Backend) {
    // A Meilisearch stand-in whose health can be switched off.
    let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let down2 = down.clone();
    let meili = FakeProvider::start(move |seen| {
        if down2.load(std::sync::atomic::Ordering::SeqCst) {
            (
                503,
                r#"{"message":"gone","code":"unavailable"}"#.to_string(),
            )
        } else if seen.path == "/health" {
            (200, r#"{"status":"available"}"#.to_string())
        } else {
            (
                404,
                r#"{"message":"no","code":"index_not_found","type":"invalid_request","link":""}"#
                    .to_string(),
            )
        }
    })
    .await;
    let app = TestApp::spawn_with(
        b,
        &[
            ("MEILI_URL", meili.url.as_str()),
            ("MEILI_MASTER_KEY", "test-master-key"),
            ("MEILI_TIMEOUT_MS", "1000"),
        ],
    )
    .await;
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["search"], "meilisearch");
    assert_eq!(v["ready"], true);
    down.store(true, std::sync::atomic::Ordering::SeqCst);
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["problems"][0].as_str().unwrap().contains("search engine"),
        "{v}"
    );
    assert_eq!(
        app.get("/healthz").await.status(),
        StatusCode::OK,
        "still alive"
    );
    down.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK, "back");
    // Migrations behind this binary: not ready.
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["problems"][0]
            .as_str()
            .unwrap()
            .contains("migrations behind"),
        "{v}"
    );
    // The database gone.
    app.db.pool.close().await;
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["problems"][0]
            .as_str()
            .unwrap()
            .contains("database does not answer"),
        "{v}"
    );
}

/// A fresh or restored instance is not ready until its search index holds the catalogue: a
/// load balancer would otherwise send buyers to an instance that finds nothing.
async fn not_ready_until_the_index_holds_the_catalogue(b: Backend) {
    let app = TestApp::with_demo(b).await;
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    // A full rebuild waiting (as after a restore or a new index), not yet due.
    sqlx::query(
        "INSERT INTO search_queue (scope, scope_id, attempts, next_attempt_at, created_at)
         VALUES ('all', 0, 0, $1, 0)",
    )
    .bind(i64::MAX / 2)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["problems"][0].as_str().unwrap().contains("being rebuilt"),
        "{v}"
    );
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    // Applied: ready again.
    sqlx::query("UPDATE search_queue SET next_attempt_at = 0")
        .execute(&app.db.pool)
        .await
        .unwrap();
    app.search_synced().await;
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
}

async fn every_log_line_of_a_request_carries_its_id(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let log = tempfile::NamedTempFile::new().unwrap();
    let served = app
        .serve_binary(
            &[
                ("CHOLANG_LOG_FORMAT", "json"),
                ("RUST_LOG", "info"),
                ("BANK_WEBHOOK_SECRET", BANK_SECRET),
            ],
            std::process::Stdio::from(log.reopen().unwrap()),
        )
        .await;
    let client = reqwest::Client::new();
    // A proxy's id is kept and echoed; a refused webhook logs within the request.
    let r = client
        .post(format!("{}/webhooks/bank", served.base))
        .header("x-request-id", "req-42.abc")
        .header("x-signature", "00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["x-request-id"], "req-42.abc");
    // None given (or junk): one is made up and echoed.
    let r = client
        .get(format!("{}/api/v1/villages", served.base))
        .send()
        .await
        .unwrap();
    let made = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(made.len(), 36, "a UUID: {made}");
    let r = client
        .get(format!("{}/api/v1/villages", served.base))
        .header("x-request-id", "a b\"<script>")
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "a b\"<script>");
    served.stop();
    let text = std::fs::read_to_string(log.path()).unwrap();
    let mut ours = 0;
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        if v["span"]["request_id"] == "req-42.abc" {
            ours += 1;
            assert_eq!(v["span"]["path"], "/webhooks/bank", "{line}");
        }
    }
    assert!(
        ours >= 2,
        "the login's own lines and the response line: {text}"
    );
    assert!(text.contains(&made), "the generated id is logged too");
}

async fn scripts_are_slowed_per_client_address(b: Backend) {
    let app = TestApp::with_demo_and(
        b,
        &[
            ("RATE_LIMIT_REGISTER", "2/h"),
            ("RATE_LIMIT_CHECKOUT", "3/min"),
            ("RATE_LIMIT_LOOKUP", "2/min"),
            ("RATE_LIMIT_WEBHOOK", "4/min"),
            // Loopback is a proxy here, so each test "client" is its X-Forwarded-For.
            ("CHOLANG_TRUSTED_PROXIES", "127.0.0.1"),
        ],
    )
    .await;
    let from = |ip: &'static str| {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("x-forwarded-for", ip.parse().unwrap());
        reqwest::Client::builder()
            .default_headers(h)
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .unwrap()
    };
    let refused = |r: &reqwest::Response, max_wait: u64| {
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        let wait: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=max_wait).contains(&wait), "Retry-After {wait}");
    };
    // Checkout: three from one address, the fourth refused in the API's error shape.
    let a = from("203.0.113.7");
    let order = serde_json::json!({
        "items": [{"product_slug": "man-tuyn-1m6-x-2m", "quantity": 1}],
        "buyer": {"name": "Chị Mai", "phone": "0987654321", "address": "12 Hàng Bông, Hà Nội"}
    });
    let mut last_code = String::new();
    for _ in 0..3 {
        let r = a
            .post(app.url("/api/v1/checkout"))
            .json(&order)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: serde_json::Value = r.json().await.unwrap();
        last_code = v["payment"]["code"].as_str().unwrap().to_string();
    }
    let r = a
        .post(app.url("/api/v1/checkout"))
        .json(&order)
        .send()
        .await
        .unwrap();
    refused(&r, 20);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limited", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Quá nhiều yêu cầu")
    );
    // The checkout page counts under the same allowance and answers with a page.
    let r = a
        .post(app.url("/thanh-toan"))
        .form(&[("name", "Chị Mai")])
        .send()
        .await
        .unwrap();
    refused(&r, 20);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Quá nhiều yêu cầu từ địa chỉ của bạn")
    );
    // Another address is not held back.
    let r = from("198.51.100.4")
        .post(app.url("/api/v1/checkout"))
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // Registration: two an hour.
    for i in 0..3 {
        let r = a
            .post(app.url("/api/v1/auth/register"))
            .json(&serde_json::json!({"login": format!("098811122{i}"), "display_name": "Anh Tú", "password": "12345678x"}))
            .send()
            .await
            .unwrap();
        if i < 2 {
            assert_eq!(r.status(), StatusCode::ACCEPTED);
        } else {
            refused(&r, 1800);
        }
    }
    // Order look-ups: two a minute.
    for i in 0..3 {
        let r = a
            .post(app.url("/tra-cuu-don"))
            .form(&[("code", last_code.as_str()), ("phone", "0900000000")])
            .send()
            .await
            .unwrap();
        if i < 2 {
            assert_ne!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        } else {
            refused(&r, 30);
        }
    }
    // Webhooks: four a minute from one address (a bank retries what got no 2xx).
    let raw = b"{}".to_vec();
    for i in 0..5 {
        let r = a
            .post(app.url("/webhooks/bank"))
            .header("content-type", "application/json")
            .body(raw.clone())
            .send()
            .await
            .unwrap();
        if i < 4 {
            assert_ne!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        } else {
            refused(&r, 15);
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "rate_limited");
        }
    }
    // Pages and reads are not counted.
    for _ in 0..10 {
        assert_eq!(
            a.get(app.url("/san-pham/man-tuyn-1m6-x-2m"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
    }
}

async fn a_backup_taken_under_writes_restores_every_committed_order(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("cholang-backup.tar.gz");
    let file_s = file.display().to_string();
    if b == Backend::Postgres {
        let o = app.cli(&["backup", &file_s], &[]);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("pg_dump") && err.contains("pg_restore"),
            "{err}"
        );
        assert!(!file.exists());
        return;
    }
    // A photo, to come back with the database.
    app.login_page(HANH, PW).await;
    let r = upload_photo(&app, "man-tuyn-1m6-x-2m", png_bytes(), "man.png").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // A writer checking out without pause while the backup is taken.
    let (_, list) = app.api("GET", "/products", None, None).await;
    let slugs: Vec<String> = list["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].as_str().unwrap().to_string())
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let writer = {
        let (stop, done, base) = (stop.clone(), done.clone(), app.base.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let slug = &slugs[i % slugs.len()];
                i += 1;
                let r = client
                    .post(format!("{base}/api/v1/checkout"))
                    .json(&serde_json::json!({
                        "items": [{"product_slug": slug, "quantity": 1}],
                        "buyer": {"name": "Chị Mai", "phone": "0987654321", "address": "12 Hàng Bông, Hà Nội"}
                    }))
                    .send()
                    .await
                    .unwrap();
                if r.status() == StatusCode::CREATED {
                    let v: serde_json::Value = r.json().await.unwrap();
                    for o in v["orders"].as_array().unwrap() {
                        done.lock()
                            .unwrap()
                            .push(o["code"].as_str().unwrap().to_string());
                    }
                }
            }
        })
    };
    while done.lock().unwrap().len() < 10 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let committed_before: Vec<String> = done.lock().unwrap().clone();
    let o = {
        let (db, dir) = (app.config.database_url.clone(), app.config.data_dir.clone());
        let file_s = file_s.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_cholang"))
                .args(["backup", &file_s])
                .env("DATABASE_URL", db)
                .env("CHOLANG_DATA_DIR", dir)
                .env("RUST_LOG", "error")
                .env_remove("CHOLANG_CONFIG")
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let during = done.lock().unwrap().len() - committed_before.len();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.await.unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("backup written to"));
    // Restore into an empty data dir.
    let target = tempfile::tempdir().unwrap();
    let target_db = format!("sqlite://{}/cholang.db?mode=rwc", target.path().display());
    let restore = |extra: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cholang"));
        cmd.env("CHOLANG_DATA_DIR", target.path())
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "error")
            .env_remove("CHOLANG_CONFIG");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd
    };
    let o = restore(&[]).args(["restore", &file_s]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let restored = cholang::db::Db::connect(&target_db).await.unwrap();
    let verdict: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&restored.pool)
        .await
        .unwrap();
    assert_eq!(verdict, "ok");
    let codes: Vec<String> = sqlx::query_scalar("SELECT code FROM orders")
        .fetch_all(&restored.pool)
        .await
        .unwrap();
    for c in &committed_before {
        assert!(
            codes.contains(c),
            "order {c} committed before the backup is in it"
        );
    }
    // Nothing half-written: every order has its lines and its payment.
    let orphans: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.id)",
    )
    .fetch_one(&restored.pool)
    .await
    .unwrap();
    assert_eq!(orphans, 0);
    // The backup's leases (the search worker's, …) are free for the restored server.
    let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM worker_leases WHERE until_ms > 0")
        .fetch_one(&restored.pool)
        .await
        .unwrap();
    assert_eq!(held, 0, "a restore clears the leases");
    assert!(
        cholang::ledger::store::check_invariants(&restored)
            .await
            .unwrap()
            .is_empty()
    );
    restored.pool.close().await;
    // The photo came back; the key too.
    let photos: Vec<_> = std::fs::read_dir(target.path().join("photos"))
        .unwrap()
        .collect();
    assert!(!photos.is_empty(), "photos restored");
    assert_eq!(
        std::fs::read(target.path().join("secret.key")).unwrap(),
        std::fs::read(app.config.data_dir.join("secret.key")).unwrap()
    );
    // The restored market serves, its search index rebuilt from the database.
    let o = restore(&[]).args(["reindex"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A second restore into a data dir that now holds a database is refused.
    let o = restore(&[]).args(["restore", &file_s]).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("already holds a database"));
    eprintln!(
        "backup under writes: {} orders committed before, {during} during the backup, {} in it",
        committed_before.len(),
        codes.len()
    );
}

/// Scrape and parse `/metrics`; the value of the sample with this name and these labels.
async fn scrape(app: &TestApp) -> prometheus_parse::Scrape {
    let r = reqwest::get(app.metrics_url.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("not Prometheus text ({e}): {text}"))
}

fn sample(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            other => panic!("{name}: {other:?}"),
        })
}

async fn metrics_count_traffic_by_route_template_on_their_own_listener(b: Backend) {
    let app = TestApp::with_demo_and(b, &[("CHOLANG_METRICS_ADDR", "127.0.0.1:0")]).await;
    // Never on the public listener.
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    for slug in ["man-tuyn-1m6-x-2m", "ban-tra-go-mit-1m"] {
        assert_eq!(
            app.get(&format!("/san-pham/{slug}")).await.status(),
            StatusCode::OK
        );
    }
    app.get("/khong-co-trang-nay").await;
    let (_, v) = app.checkout(&[("man-tuyn-1m6-x-2m", 1)]).await;
    let code = v["payment"]["code"].as_str().unwrap().to_string();
    let amount = v["payment"]["amount_vnd"].as_i64().unwrap();
    app.transfer(amount, &format!("CK {code}")).await;
    let r = app
        .client
        .post(app.url("/webhooks/bank"))
        .header("x-cholang-signature", "t=1,v1=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let s = scrape(&app).await;
    let product = [
        ("method", "GET"),
        ("route", "/san-pham/:slug"),
        ("status", "200"),
    ];
    assert_eq!(
        sample(&s, "cholang_http_requests_total", &product),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &s,
            "cholang_http_request_duration_seconds_count",
            &[("route", "/san-pham/:slug")]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &s,
            "cholang_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        Some(2.0),
        "/metrics asked of the public listener, and the missing page"
    );
    // Label sets are route templates, never raw paths.
    for x in &s.samples {
        if let Some(route) = x.labels.get("route") {
            assert!(
                route == "unmatched" || !route.contains("man-tuyn") && !route.contains(&code),
                "raw path as a label: {route}"
            );
        }
    }
    assert_eq!(
        sample(
            &s,
            "cholang_webhook_deliveries_total",
            &[("provider", "bank"), ("outcome", "accepted")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &s,
            "cholang_webhook_deliveries_total",
            &[("provider", "bank"), ("outcome", "refused")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&s, "cholang_payments", &[("status", "paid")]),
        Some(1.0)
    );
    // The gauges read the database (the paid order's notice waits: the worker is off here).
    let events = app
        .scalar("SELECT COUNT(*) FROM notice_events WHERE expanded_at IS NULL")
        .await;
    assert!(events > 0);
    assert_eq!(
        sample(&s, "cholang_notice_events_pending", &[]),
        Some(events as f64)
    );
    let pending = app
        .scalar("SELECT COUNT(*) FROM notices WHERE status = 'pending'")
        .await;
    assert_eq!(
        sample(&s, "cholang_notices", &[("status", "pending")]),
        Some(pending as f64)
    );
    assert!(sample(&s, "cholang_notice_oldest_due_seconds", &[]).is_some());
    assert!(sample(&s, "cholang_search_queue_depth", &[]).is_some());
    assert!(sample(&s, "cholang_db_pool_size", &[]).unwrap() >= 1.0);
    assert_eq!(
        sample(
            &s,
            "cholang_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    // Counts move with traffic.
    app.get("/san-pham/ban-tra-go-mit-1m").await;
    let s = scrape(&app).await;
    assert_eq!(
        sample(&s, "cholang_http_requests_total", &product),
        Some(3.0)
    );
}

/// Issue 29, item 13: a path carrying a secret (the email confirmation token) is logged with
/// the secret replaced by `…`.
async fn a_secret_in_the_log_is_replaced(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let log = tempfile::NamedTempFile::new().unwrap();
    let served = app
        .serve_binary(
            &[("CHOLANG_LOG_FORMAT", "json"), ("RUST_LOG", "info")],
            std::process::Stdio::from(log.reopen().unwrap()),
        )
        .await;
    let r = reqwest::get(format!(
        "{}/xac-nhan-email/SECRET0123456789abcdef",
        served.base
    ))
    .await
    .unwrap();
    assert!(r.status().as_u16() < 500);
    served.stop();
    let text = std::fs::read_to_string(log.path()).unwrap();
    assert!(
        text.contains("/xac-nhan-email/…"),
        "the request is logged: {text}"
    );
    assert!(!text.contains("SECRET0123456789abcdef"), "{text}");
}
