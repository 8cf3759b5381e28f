//! `TestApp`: the real server on a random loopback port with a fresh database per test —
//! a SQLite file in a temp dir, or a new PostgreSQL database when `TEST_POSTGRES_URL` is set.

use std::time::Duration;

use cholang::app::Server;
use cholang::config::{Config, Settings};
use cholang::db::Db;
use reqwest::{Client, Response, StatusCode, redirect};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Run a test body once per backend: always on SQLite, and on PostgreSQL when
/// `TEST_POSTGRES_URL` is set (CI sets it and fails if PostgreSQL is not there).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::helpers::pg_url().is_none() {
                    // In CI a missing database is a failure, never a silent skip.
                    assert!(std::env::var("CI").is_err(), "CI must set TEST_POSTGRES_URL");
                    eprintln!("TEST_POSTGRES_URL not set: PostgreSQL run skipped");
                    return;
                }
                super::$name($crate::helpers::Backend::Postgres).await
            }
        }
    )*};
}

/// A Meilisearch server to run the search tests against too: `TEST_MEILI_URL` (and
/// `TEST_MEILI_KEY`, its master key).
/// In CI (`CI` set) the Meilisearch tests fail instead of skipping when it is not given
/// (`.ci/run` starts one from `../shared/bin/meilisearch`).
pub fn meili() -> Option<(String, String)> {
    let url = std::env::var("TEST_MEILI_URL")
        .ok()
        .filter(|s| !s.is_empty());
    let Some(url) = url else {
        assert!(
            std::env::var("CI").is_err(),
            "CI is set but TEST_MEILI_URL is not: the Meilisearch tests must run in CI"
        );
        return None;
    };
    Some((url, std::env::var("TEST_MEILI_KEY").unwrap_or_default()))
}

/// A Meilisearch binary for the tests that start and kill their own (`TEST_MEILI_BIN`);
/// required in CI like [`meili`].
pub fn meili_bin() -> Option<String> {
    let bin = std::env::var("TEST_MEILI_BIN")
        .ok()
        .filter(|s| !s.is_empty());
    if bin.is_none() {
        assert!(
            std::env::var("CI").is_err(),
            "CI is set but TEST_MEILI_BIN is not: the Meilisearch tests must run in CI"
        );
    }
    bin
}

pub fn pg_url() -> Option<String> {
    std::env::var("TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// The settings every test server runs with (besides its database, data dir and address);
/// processes a test starts itself (`cholang serve`, `cholang worker`) take them too.
pub const TEST_SETTINGS: &[(&str, &str)] = &[
    ("COLLECT_BANK_BIN", "970436"),
    ("COLLECT_ACCOUNT_NO", "1017595600"),
    ("COLLECT_ACCOUNT_NAME", "HTX Chợ Làng Phú Xuyên"),
    ("BANK_WEBHOOK_SECRET", BANK_SECRET),
    ("CASSO_CHECKSUM_KEY", CASSO_KEY),
    // Tests drive the notice worker themselves (`Notifier::run_once`).
    ("NOTIFY_WORKER", "off"),
    // Most tests check out many times from one phone on loopback; the hold limits have their
    // own test with the defaults.
    ("CHECKOUT_MAX_OPEN", "100000"),
    ("CHECKOUT_MAX_HELD_UNITS", "1000000"),
    // Likewise the per-address request rates (`ops::rate_limits…` tests the defaults'
    // mechanism with low ones).
    ("RATE_LIMIT_REGISTER", "1000000/min"),
    ("RATE_LIMIT_CHECKOUT", "1000000/min"),
    ("RATE_LIMIT_LOOKUP", "1000000/min"),
    ("RATE_LIMIT_WEBHOOK", "1000000/min"),
    // Tests change the database behind the server's back and look at pages at once; the
    // page cache has its own test (`pages::anonymous_pages_are_kept_for_a_moment`).
    ("PAGE_CACHE_MS", "0"),
    // Likewise the product data kept until the database says it changed (within 200 ms on
    // SQLite): its own tests are `pages::product_data_kept_…`.
    ("PRODUCT_CACHE_ENTRIES", "0"),
];

pub struct TestApp {
    pub base: String,
    db_url: String,
    pub db: Db,
    pub client: Client,
    pub config: Config,
    /// `http://…/metrics` when the test asked for `CHOLANG_METRICS_ADDR`.
    pub metrics_url: Option<String>,
    /// The running server's shared state (its page cache's test clock).
    pub state: cholang::web::AppState,
    pg_db_name: Option<String>,
    _dir: tempfile::TempDir,
}

/// Replace the database name in a PostgreSQL URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let cut = base
        .rfind('/')
        .filter(|i| *i > "postgres://".len())
        .unwrap_or(base.len());
    format!("{}/{}{}", &base[..cut], name, query)
}

async fn fresh_pg_database() -> (String, String) {
    let admin_url = pg_url().expect("TEST_POSTGRES_URL");
    // `.ci/run` gives its run a prefix of its own and drops only those databases afterwards.
    let prefix = std::env::var("TEST_DB_PREFIX").unwrap_or_else(|_| "cholang_test_".into());
    assert!(
        prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "TEST_DB_PREFIX is lower-case letters, digits and _"
    );
    let name = format!("{prefix}{}", uuid::Uuid::new_v4().simple());
    let admin = Db::connect(&admin_url)
        .await
        .expect("connect to TEST_POSTGRES_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin.pool)
        .await
        .expect("create test database");
    admin.pool.close().await;
    (with_database(&admin_url, &name), name)
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, &[]).await
    }

    /// Start with extra settings (e.g. `CHOLANG_PUBLIC_URL`).
    pub async fn spawn_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let (url, pg_db_name) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display()),
                None,
            ),
            Backend::Postgres => {
                let (url, name) = fresh_pg_database().await;
                (url, Some(name))
            }
        };
        let mut pairs: Vec<(String, String)> = vec![
            ("CHOLANG_DATA_DIR".into(), dir.path().display().to_string()),
            ("DATABASE_URL".into(), url.clone()),
            ("CHOLANG_ADDR".into(), "127.0.0.1:0".into()),
        ];
        pairs.extend(
            TEST_SETTINGS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = Config::load(&Settings::from_pairs(pairs)).unwrap();
        let db = Db::connect(&url).await.unwrap();
        cholang::app::prepare(&db, &config).await.unwrap();
        let server = Server::bind(config.clone(), db.clone()).await.unwrap();
        let addr = server.local_addr().unwrap();
        let metrics_url = server.metrics_addr().map(|a| format!("http://{a}/metrics"));
        let state = server.state();
        tokio::spawn(server.run(std::future::pending()));
        let client = Client::builder()
            .cookie_store(true)
            .redirect(redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        TestApp {
            db_url: url.clone(),
            base: format!("http://{addr}"),
            db,
            client,
            config,
            metrics_url,
            state,
            pg_db_name,
            _dir: dir,
        }
    }

    /// The demo market: 5 villages, 10 seller accounts, 49 products, one open proposal,
    /// with the search index caught up.
    pub async fn with_demo(backend: Backend) -> TestApp {
        Self::with_demo_and(backend, &[]).await
    }

    pub async fn with_demo_and(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
        let app = Self::spawn_with(backend, extra).await;
        assert!(
            cholang::demo::catalog::load_if_empty(&app.db)
                .await
                .unwrap()
        );
        app.search_synced().await;
        app
    }

    /// The demo market with its own past events (the open proposal) treated as already
    /// announced, so a test sees only the notices of what it does.
    pub async fn quiet_demo(&self) {
        cholang::demo::catalog::load_if_empty(&self.db)
            .await
            .unwrap();
        sqlx::query("UPDATE notice_events SET expanded_at = 1 WHERE expanded_at IS NULL")
            .execute(&self.db.pool)
            .await
            .unwrap();
    }

    /// Wait until the server's search sync worker has applied every queued change.
    pub async fn search_synced(&self) {
        let started = std::time::Instant::now();
        loop {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM search_queue")
                .fetch_one(&self.db.pool)
                .await
                .unwrap();
            if n == 0 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "search queue not drained: {n} rows left"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET /api/v1/search?<query>`.
    pub async fn search(&self, query: &str) -> (StatusCode, Value) {
        let r = self.get(&format!("/api/v1/search?{query}")).await;
        let status = r.status();
        (status, r.json().await.unwrap())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A second browser: its own cookie jar.
    pub fn new_browser(&self) -> Client {
        Client::builder()
            .cookie_store(true)
            .redirect(redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// Another browser, logged in through the login page.
    pub async fn browser_logged_in(&self, login: &str, password: &str) -> Client {
        let browser = self.new_browser();
        let html = browser
            .get(self.url("/dang-nhap"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let r = browser
            .post(self.url("/dang-nhap"))
            .form(&[
                ("csrf", csrf_in(&html).as_str()),
                ("login", login),
                ("password", password),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "login of {login}");
        browser
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn page(&self, path: &str) -> String {
        let r = self.get(path).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.text().await.unwrap()
    }

    /// A page reached through the redirects it answers with (at most five).
    pub async fn page_after_redirects(&self, path: &str) -> String {
        let mut path = path.to_string();
        for _ in 0..5 {
            let r = self.get(&path).await;
            if r.status() != StatusCode::SEE_OTHER {
                assert_eq!(r.status(), StatusCode::OK, "GET {path}");
                return r.text().await.unwrap();
            }
            path = location(&r);
        }
        panic!("too many redirects from {path}");
    }

    /// The CSRF token of the forms on a page, as this browser sees it.
    pub async fn csrf(&self, path: &str) -> String {
        csrf_in(&self.page(path).await)
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(path))
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// Post a form with this browser's valid CSRF token (read from `token_page`).
    pub async fn submit(&self, token_page: &str, path: &str, fields: &[(&str, &str)]) -> Response {
        let token = self.csrf(token_page).await;
        let mut all = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post_form(path, &all).await
    }

    pub async fn login_page(&self, login: &str, password: &str) -> Response {
        self.submit(
            "/dang-nhap",
            "/dang-nhap",
            &[
                ("login", login),
                ("password", password),
                ("next", "/quan-ly"),
            ],
        )
        .await
    }

    pub async fn api_login(&self, login: &str, password: &str) -> String {
        let r = self
            .client
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"login": login, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "api login {login}");
        r.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method.parse().unwrap(), self.url(&format!("/api/v1{path}")));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    /// Register a seller over the API and log in: returns the bearer token.
    pub async fn register_seller(&self, login: &str, name: &str) -> String {
        let (s, body) = self
            .api(
                "POST",
                "/auth/register",
                None,
                Some(serde_json::json!({"login": login, "display_name": name, "password": PW})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{body}");
        if !login.contains('@') {
            // A phone login is made when the code sent to the phone is typed.
            let code = self.phone_code(login);
            let (s, body) = self
                .api(
                    "POST",
                    "/auth/verify-phone",
                    None,
                    Some(serde_json::json!({"login": login, "code": code})),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{body}");
        }
        self.api_login(login, PW).await
    }

    /// Every code written for `phone` (no Zalo or SMS configured: beside the mail files),
    /// oldest first.
    pub fn phone_codes(&self, phone: &str) -> Vec<String> {
        let phone = cholang::domain::PhoneVn::parse(phone).unwrap();
        let to = format!("{}@phone.invalid", phone.as_str());
        let Ok(dir) = std::fs::read_dir(self.config.mail_dir()) else {
            return Vec::new();
        };
        let mut found: Vec<(std::time::SystemTime, String)> = dir
            .filter_map(|e| {
                let e = e.ok()?;
                let raw = std::fs::read(e.path()).ok()?;
                let m = mail_parser::MessageParser::default().parse(&raw)?;
                let addressed = m
                    .to()
                    .and_then(|a| a.first())
                    .and_then(|a| a.address())
                    .is_some_and(|a| a == to);
                if !addressed {
                    return None;
                }
                let text = m.body_text(0)?.to_string();
                let at = text.find(" là ")? + " là ".len();
                let code: String = text[at..]
                    .chars()
                    .take(7)
                    .filter(|c| c.is_ascii_digit())
                    .collect();
                Some((e.metadata().ok()?.modified().ok()?, code))
            })
            .collect();
        found.sort();
        found.into_iter().map(|(_, c)| c).collect()
    }

    /// The newest code sent to `phone`.
    pub fn phone_code(&self, phone: &str) -> String {
        self.phone_codes(phone)
            .pop()
            .unwrap_or_else(|| panic!("no code was sent to {phone}"))
    }

    /// The demo admin accepts a shop onto its village's board.
    pub async fn accept_shop(&self, slug: &str) {
        let admin = self
            .api_login(cholang::demo::catalog::ADMIN_EMAIL, PW)
            .await;
        let (s, body) = self
            .api(
                "POST",
                &format!("/shops/{slug}/membership"),
                Some(&admin),
                Some(serde_json::json!({"decision": "accept"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }

    /// A new item on a village's price board (as its moderator adds one), at `price` per
    /// chiếc: products carrying its name take its price.
    pub async fn board_item(&self, village: &str, name: &str, price: i64) -> i64 {
        let v = cholang::catalog::store::village_by_slug(&self.db, village)
            .await
            .unwrap();
        let mut tx = self.db.begin().await.unwrap();
        let id = cholang::pricing::store::insert_item(
            &mut tx,
            v.id.0,
            name,
            "chiếc",
            cholang::domain::Vnd::new(price).unwrap(),
            "created",
            None,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        id
    }

    pub async fn scalar(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }
}

/// The ledger's invariants, checked after every integration test (when the test itself
/// passed): every journal sums to zero, no shop's available balance is negative, and the
/// collecting account equals money in minus money out.
fn check_ledger(url: &str) -> Vec<String> {
    let url = url.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let db = Db::connect(&url)
                .await
                .expect("connect for the ledger check");
            let broken = cholang::ledger::store::check_invariants(&db)
                .await
                .expect("ledger check");
            db.pool.close().await;
            broken
        })
    })
    .join()
    .unwrap()
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let broken = if std::thread::panicking() {
            Vec::new()
        } else {
            check_ledger(&self.db_url)
        };
        self.drop_database();
        assert!(broken.is_empty(), "ledger invariants broken: {broken:?}");
    }
}

impl TestApp {
    fn drop_database(&mut self) {
        if let Some(name) = self.pg_db_name.take() {
            // Drop the per-test database on a separate thread (Drop cannot be async).
            let url = pg_url().unwrap();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(admin) = Db::connect(&url).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .execute(&admin.pool)
                        .await;
                    }
                });
            })
            .join();
        }
    }
}

pub fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("page has a CSRF field") + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

pub fn location(r: &Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

pub const PW: &str = cholang::demo::catalog::DEMO_PASSWORD;
pub const HANH: &str = "0912000101"; // Màn tuyn Bà Hạnh, Phú Đôi
pub const HUONG: &str = "0912000102"; // Màn Phú Đôi Thanh Hương
pub const DUC: &str = "0912000103"; // Đồ gỗ Minh Đức
pub const TOAN: &str = "0912000104"; // Cơ khí Văn Toàn
pub const NGHIA: &str = "0912000201"; // Khảm trai Trọng Nghĩa, Chuyên Mỹ
pub const MODERATOR: &str = "0912000100"; // moderates Phú Đôi

impl TestApp {
    /// Run the real `cholang` binary against this test's database.
    pub fn cli(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cholang"));
        cmd.args(args)
            .env("DATABASE_URL", &self.config.database_url)
            .env("CHOLANG_DATA_DIR", &self.config.data_dir)
            .env("RUST_LOG", "error")
            .env_remove("CHOLANG_CONFIG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }
}

pub const BANK_SECRET: &str = "test-bank-webhook-secret";
pub const CASSO_KEY: &str = "test-casso-checksum-key";

impl TestApp {
    /// `POST /api/v1/checkout` for (product slug, quantity) pairs with a valid buyer.
    pub async fn checkout(&self, items: &[(&str, i64)]) -> (StatusCode, Value) {
        let items: Vec<Value> = items
            .iter()
            .map(|(slug, q)| serde_json::json!({"product_slug": slug, "quantity": q}))
            .collect();
        self.api(
            "POST",
            "/checkout",
            None,
            Some(serde_json::json!({
                "items": items,
                "buyer": {"name": "Chị Mai", "phone": "0987 654 321", "address": "12 Hàng Bông, Hoàn Kiếm, Hà Nội", "note": "Gọi trước khi giao"}
            })),
        )
        .await
    }

    /// The buyer of `app.checkout` confirms receipt (buyer protection: the money is released
    /// at once; a seller's "delivered" alone only starts the guarantee window).
    pub async fn buyer_received(&self, order: &str) {
        let (s, v) = self
            .api(
                "POST",
                &format!("/orders/{order}/receipt"),
                None,
                Some(serde_json::json!({"phone": "0987654321"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "receipt of {order}: {v}");
    }

    /// A signed delivery of our own bank-feed format, timestamped now.
    pub async fn bank_webhook(&self, body: &Value) -> reqwest::Response {
        let raw = serde_json::to_vec(body).unwrap();
        let t = cholang::domain::now_ms() / 1000;
        let sig = cholang::payments::signatures::bank_sign(BANK_SECRET, t, &raw);
        self.client
            .post(self.url("/webhooks/bank"))
            .header("content-type", "application/json")
            .header("x-cholang-signature", format!("t={t},v1={sig}"))
            .body(raw)
            .send()
            .await
            .unwrap()
    }

    /// A bank transfer of `amount` with `description`, with a fresh transaction id.
    pub async fn transfer(&self, amount: i64, description: &str) -> Value {
        let id = format!("FT{}", uuid::Uuid::new_v4().simple());
        let r = self
            .bank_webhook(&serde_json::json!({"id": id, "amount": amount, "description": description,
                "account_number": "1017595600", "transaction_time": "2026-11-28T14:00:00Z", "reference": id}))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    pub async fn payment(&self, code: &str) -> Value {
        let (s, v) = self
            .api("GET", &format!("/payments/{code}"), None, None)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    pub async fn stock(&self, slug: &str) -> i64 {
        sqlx::query_scalar("SELECT stock FROM products WHERE slug = $1")
            .bind(slug.to_string())
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }
}

/// A request a fake provider received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

/// A local HTTP server standing in for a provider's cloud API (payOS, Stripe). It records
/// every request and answers with `reply(path, body)`.
pub struct FakeProvider {
    pub url: String,
    pub seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
}

impl FakeProvider {
    pub async fn start(
        reply: impl Fn(&Seen) -> (u16, String) + Send + Sync + 'static,
    ) -> FakeProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, reply)
    }

    /// On a given port (to come back where a service was down).
    pub async fn start_on(
        port: u16,
        reply: impl Fn(&Seen) -> (u16, String) + Send + Sync + 'static,
    ) -> FakeProvider {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        Self::serve(listener, reply)
    }

    fn serve(
        listener: tokio::net::TcpListener,
        reply: impl Fn(&Seen) -> (u16, String) + Send + Sync + 'static,
    ) -> FakeProvider {
        use axum::body::Bytes;
        use axum::http::{HeaderMap, Uri};
        let seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>> = Default::default();
        let reply = std::sync::Arc::new(reply);
        let seen2 = seen.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let seen = seen2.clone();
            let reply = reply.clone();
            async move {
                let request = Seen {
                    path: uri.path().to_string(),
                    headers,
                    body: String::from_utf8_lossy(&body).to_string(),
                };
                let (status, text) = reply(&request);
                seen.lock().unwrap().push(request);
                (
                    axum::http::StatusCode::from_u16(status).unwrap(),
                    [("content-type", "application/json")],
                    text,
                )
            }
        });
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeProvider { url, seen }
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real SMTP server on loopback (just enough of RFC 5321 for a client to deliver):
/// it keeps every message it accepts. `stop` closes the listener and every open
/// connection, as a crashed mail server would.
/// (recipients, raw message) of every accepted message.
pub type Mailbox = std::sync::Arc<std::sync::Mutex<Vec<(Vec<String>, String)>>>;

pub struct FakeSmtp {
    pub port: u16,
    pub messages: Mailbox,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl FakeSmtp {
    pub async fn start_on(port: u16) -> FakeSmtp {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let messages: Mailbox = Default::default();
        let tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> =
            Default::default();
        let (m, t) = (messages.clone(), tasks.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let m = m.clone();
                let conn = tokio::spawn(async move {
                    let (r, mut w) = sock.into_split();
                    let mut lines = BufReader::new(r).lines();
                    let _ = w.write_all(b"220 fake.smtp ESMTP\r\n").await;
                    let mut rcpts = Vec::new();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let upper = line.to_ascii_uppercase();
                        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO")
                        {
                            b"250 fake.smtp\r\n"
                        } else if upper.starts_with("MAIL FROM") {
                            rcpts.clear();
                            b"250 OK\r\n"
                        } else if upper.starts_with("RCPT TO") {
                            rcpts.push(
                                line[8..]
                                    .trim()
                                    .trim_matches(|c| c == '<' || c == '>' || c == ':')
                                    .to_string(),
                            );
                            b"250 OK\r\n"
                        } else if upper.starts_with("DATA") {
                            let _ = w.write_all(b"354 go ahead\r\n").await;
                            let mut data = String::new();
                            let mut ended = false;
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    ended = true;
                                    break;
                                }
                                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                                data.push_str("\r\n");
                            }
                            // As a real server: a message cut off before its final "." (the
                            // sender killed mid-DATA) was never accepted, and is not kept.
                            if !ended {
                                return;
                            }
                            m.lock().unwrap().push((rcpts.clone(), data));
                            b"250 queued\r\n"
                        } else if upper.starts_with("QUIT") {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            return;
                        } else if upper.starts_with("RSET") || upper.starts_with("NOOP") {
                            b"250 OK\r\n"
                        } else {
                            b"502 not implemented\r\n"
                        };
                        if w.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
                t.lock().unwrap().push(conn);
            }
        });
        tasks.lock().unwrap().push(accept);
        FakeSmtp {
            port,
            messages,
            tasks,
        }
    }

    pub fn stop(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    /// (recipients, subject, text part, html part) of every message received.
    pub fn received(&self) -> Vec<(Vec<String>, String, String, String)> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .map(|(rcpts, raw)| {
                let m = mail_parser::MessageParser::default()
                    .parse(raw.as_bytes())
                    .unwrap();
                (
                    rcpts.clone(),
                    m.subject().unwrap_or("").to_string(),
                    m.body_text(0).map(|t| t.to_string()).unwrap_or_default(),
                    m.body_html(0).map(|t| t.to_string()).unwrap_or_default(),
                )
            })
            .collect()
    }
}

impl Drop for FakeSmtp {
    fn drop(&mut self) {
        self.stop();
    }
}

impl TestApp {
    /// A notice worker for this app, as `cholang worker` would run it.
    pub fn notifier(&self) -> cholang::notify::worker::Notifier {
        cholang::notify::worker::Notifier::new(
            self.db.clone(),
            std::sync::Arc::new(self.config.clone()),
        )
        .unwrap()
    }

    pub async fn notices(&self) -> Vec<(String, String, String, i64)> {
        sqlx::query_as("SELECT channel, recipient, status, attempts FROM notices ORDER BY id")
            .fetch_all(&self.db.pool)
            .await
            .unwrap()
    }
}

/// Upload a product photo from the seller's page, as a browser would.
/// A 900 × 600 PNG photo.
pub fn png_bytes() -> Vec<u8> {
    let img = image::RgbImage::from_fn(900, 600, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

pub async fn upload_photo(app: &TestApp, slug: &str, bytes: Vec<u8>, name: &str) -> Response {
    upload_to(app, &format!("/quan-ly/san-pham/{slug}/anh"), bytes, name).await
}

/// A multipart form (text fields and an optional photo) with this browser's CSRF token.
pub async fn submit_multipart(
    app: &TestApp,
    token_page: &str,
    path: &str,
    fields: &[(&str, &str)],
    photo: Option<(Vec<u8>, &str)>,
) -> Response {
    let token = app.csrf(token_page).await;
    let mut form = reqwest::multipart::Form::new().text("csrf", token);
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    if let Some((bytes, name)) = photo {
        form = form.part(
            "photo",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
        );
    }
    app.client
        .post(app.url(path))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// A multipart photo upload with this browser's CSRF token.
pub async fn upload_to(app: &TestApp, path: &str, bytes: Vec<u8>, name: &str) -> Response {
    submit_multipart(app, "/quan-ly", path, &[], Some((bytes, name))).await
}

/// `cholang serve` as a process of its own, on this test's database with a data dir of its own
/// (the in-process server holds the first one's search index); killed when dropped.
pub struct Served {
    pub child: std::process::Child,
    pub base: String,
    /// Its data dir, removed after the process.
    pub _data: tempfile::TempDir,
}

impl Served {
    /// Stop as a service manager does (SIGTERM) and wait for the exit: the log thread has
    /// written every line by then (a SIGKILL loses what it has not written yet).
    pub fn stop(mut self) {
        let exit = sigterm(&mut self.child);
        assert!(exit.success(), "exit status {exit:?}");
    }
}

/// SIGTERM, then wait (at most 30 s) for the process to end; its exit status.
pub fn sigterm(child: &mut std::process::Child) -> std::process::ExitStatus {
    sigterm_within(child, Duration::from_secs(30))
}

/// SIGTERM, then wait at most `within` for the process to end; its exit status.
pub fn sigterm_within(
    child: &mut std::process::Child,
    within: Duration,
) -> std::process::ExitStatus {
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -TERM failed");
    let started = std::time::Instant::now();
    loop {
        if let Some(exit) = child.try_wait().unwrap() {
            return exit;
        }
        assert!(started.elapsed() < within, "no graceful shutdown");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestApp {
    pub async fn serve_binary(&self, env: &[(&str, &str)], stdout: std::process::Stdio) -> Served {
        let data = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cholang"));
        cmd.arg("serve")
            .env("DATABASE_URL", &self.config.database_url)
            .env("CHOLANG_DATA_DIR", data.path())
            .env("CHOLANG_ADDR", format!("127.0.0.1:{port}"))
            .env("NOTIFY_WORKER", "off")
            .env_remove("CHOLANG_CONFIG")
            .stdout(stdout)
            .stderr(std::process::Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut served = Served {
            child: cmd.spawn().unwrap(),
            base: format!("http://127.0.0.1:{port}"),
            _data: data,
        };
        let started = std::time::Instant::now();
        loop {
            if let Ok(r) = reqwest::get(format!("{}/healthz", served.base)).await
                && r.status() == StatusCode::OK
            {
                return served;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "server did not come up"
            );
            assert!(
                served.child.try_wait().unwrap().is_none(),
                "server exited early"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
