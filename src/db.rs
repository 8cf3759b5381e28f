//! Database access: one `sqlx::Any` pool that speaks SQLite (embedded default) or PostgreSQL.
//!
//! All queries are written in the subset both engines run alike: `$N` placeholders,
//! `RETURNING`, `ON CONFLICT`, flags as INTEGER 0/1 and times as BIGINT epoch milliseconds
//! (the `Any` driver cannot decode SQLite booleans or driver-specific time types).

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Any, AnyPool, Executor, SqlSafeStr, Transaction};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A PostgreSQL connection idle longer than this is pinged before it is lent out.
const PING_AFTER_IDLE: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

pub type Tx = Transaction<'static, Any>;

/// Integers as a SQL list for `IN (…)`: safe to format into a query (digits and commas only).
pub fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// Migrations, compiled into the binary so it runs from anywhere: one file per migration in
/// `migrations/schema/`, for both databases. Where the two differ the file says so: `{id}`
/// is the id column (`INTEGER PRIMARY KEY` on SQLite, an identity column on PostgreSQL), and
/// lines between `--@sqlite` / `--@postgres` and `--@end` are for that database only
/// (triggers and constraints each database writes its own way). A column shared by both is
/// written once, so it cannot be added to one database and forgotten in the other.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/schema/0001_init.sql"),
    ),
    (
        2,
        "checkout_payments",
        include_str!("../migrations/schema/0002_checkout_payments.sql"),
    ),
    (
        3,
        "notices",
        include_str!("../migrations/schema/0003_notices.sql"),
    ),
    (
        4,
        "search_queue",
        include_str!("../migrations/schema/0004_search_queue.sql"),
    ),
    (
        5,
        "hardening",
        include_str!("../migrations/schema/0005_hardening.sql"),
    ),
    (
        6,
        "ledger_payouts",
        include_str!("../migrations/schema/0006_ledger_payouts.sql"),
    ),
    (
        7,
        "unreachable",
        include_str!("../migrations/schema/0007_unreachable.sql"),
    ),
    (
        8,
        "shipping",
        include_str!("../migrations/schema/0008_shipping.sql"),
    ),
    (
        9,
        "origin",
        include_str!("../migrations/schema/0009_origin.sql"),
    ),
    (
        10,
        "ocop",
        include_str!("../migrations/schema/0010_ocop.sql"),
    ),
    (
        11,
        "categories",
        include_str!("../migrations/schema/0011_categories.sql"),
    ),
    (
        12,
        "outflows",
        include_str!("../migrations/schema/0012_outflows.sql"),
    ),
    (
        13,
        "shared_rates",
        include_str!("../migrations/schema/0013_shared_rates.sql"),
    ),
    (
        14,
        "money_integrity",
        include_str!("../migrations/schema/0014_money_integrity.sql"),
    ),
    (
        15,
        "ledger_guards",
        include_str!("../migrations/schema/0015_ledger_guards.sql"),
    ),
    (
        16,
        "buyer_protection",
        include_str!("../migrations/schema/0016_buyer_protection.sql"),
    ),
    (
        17,
        "board round two",
        include_str!("../migrations/schema/0017_board_round_two.sql"),
    ),
    (
        18,
        "phone and team",
        include_str!("../migrations/schema/0018_phone_team.sql"),
    ),
    (
        19,
        "delivery",
        include_str!("../migrations/schema/0019_delivery.sql"),
    ),
    (
        20,
        "catalog changes",
        include_str!("../migrations/schema/0020_catalog_changes.sql"),
    ),
];

/// Whether what product pages show may have changed since a moment ago, as this process
/// knows it: an epoch that moves on every change, and whether it is known at all. The
/// database tells of changes made by anyone (migration 0020: triggers on the tables a product
/// page reads); `changed` tells of this process's own at once. Data kept for pages is tagged
/// with the epoch read *before* the database was asked, and used only while `now` still
/// answers that epoch (`web::product_cache`).
#[derive(Default)]
pub struct CatalogEpoch {
    epoch: AtomicU64,
    /// The watch is reading the database's changes (`watch_catalog`); until it is, or after it
    /// lost them, nothing kept may be used.
    live: AtomicBool,
}

impl CatalogEpoch {
    /// The epoch now, or `None` when changes may go unseen.
    pub fn now(&self) -> Option<u64> {
        let live = self.live.load(Ordering::SeqCst);
        let epoch = self.epoch.load(Ordering::SeqCst);
        live.then_some(epoch)
    }

    /// Something may have changed.
    pub fn changed(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Changes may go unseen from now on (the watch lost the database).
    pub fn lost(&self) {
        self.live.store(false, Ordering::SeqCst);
        self.changed();
    }

    /// Changes are seen again; anything may have changed meanwhile.
    pub fn regained(&self) {
        self.changed();
        self.live.store(true, Ordering::SeqCst);
    }
}

/// Data read from the database, kept per key until the catalogue's epoch moves
/// (`CatalogEpoch`): what a product page reads (`web::product_cache`), search hits' cards and
/// texts (`search::Search`). Each entry is tagged with the epoch taken *before* the database
/// was asked (`before_reading`) and is used only while the epoch is still that one; nothing
/// is kept or used while the epoch is not live. At most `max_entries` (0: none); when full,
/// everything is dropped and kept again as asked.
pub struct Kept<K, V> {
    epoch: std::sync::Arc<CatalogEpoch>,
    max_entries: usize,
    /// The epoch the entries were read in, and the entries.
    kept: std::sync::RwLock<(u64, std::collections::HashMap<K, std::sync::Arc<V>>)>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<K: std::hash::Hash + Eq + Clone, V> Kept<K, V> {
    pub fn new(epoch: std::sync::Arc<CatalogEpoch>, max_entries: usize) -> Kept<K, V> {
        Kept {
            epoch,
            max_entries,
            kept: std::sync::RwLock::new((0, std::collections::HashMap::new())),
            hits: AtomicU64::default(),
            misses: AtomicU64::default(),
        }
    }

    /// The epoch the database's watch moves (`watch_catalog`).
    pub fn epoch(&self) -> std::sync::Arc<CatalogEpoch> {
        self.epoch.clone()
    }

    /// This process may have changed something.
    pub fn changed(&self) {
        self.epoch.changed();
    }

    /// What is kept for `key`, if it is still what the database holds.
    pub fn get<Q>(&self, key: &Q) -> Option<std::sync::Arc<V>>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        if self.max_entries == 0 {
            return None;
        }
        let found = self.epoch.now().and_then(|now| {
            let kept = self.kept.read().unwrap_or_else(|e| e.into_inner());
            (kept.0 == now).then(|| kept.1.get(key).cloned()).flatten()
        });
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// The epoch to tag what is about to be read with: take it before asking the database.
    fn before_reading(&self) -> Option<u64> {
        self.epoch.now()
    }

    /// Keep `value`, read after `before_reading` answered `read_at`, unless something may
    /// have changed since (then only the request that read it uses it).
    fn keep(&self, read_at: Option<u64>, key: K, value: std::sync::Arc<V>) {
        let Some(read_at) = read_at else { return };
        if self.max_entries == 0 {
            return;
        }
        let mut kept = self.kept.write().unwrap_or_else(|e| e.into_inner());
        // Under the lock, so no later epoch's entries can be dropped for this one.
        if self.epoch.now() != Some(read_at) {
            return;
        }
        if kept.0 != read_at || kept.1.len() >= self.max_entries {
            kept.1.clear();
            kept.0 = read_at;
        }
        kept.1.insert(key, value);
    }

    /// The value of `key`: kept, or from `read` (an error is passed on, nothing kept), which
    /// is then kept.
    pub async fn get_or_read_one<Q, F, Fut, E>(
        &self,
        key: &Q,
        read: F,
    ) -> Result<std::sync::Arc<V>, E>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<V, E>>,
    {
        if let Some(v) = self.get(key) {
            return Ok(v);
        }
        let read_at = self.before_reading();
        let v = std::sync::Arc::new(read().await?);
        self.keep(read_at, key.to_owned(), v.clone());
        Ok(v)
    }

    /// The values of `keys`: those kept, and the others from `read` (given the keys not
    /// kept, answering those it found), which are kept in turn. A key `read` does not answer
    /// is absent, and asked again next time.
    pub async fn get_or_read<F, Fut, E>(
        &self,
        keys: &[K],
        read: F,
    ) -> Result<std::collections::HashMap<K, std::sync::Arc<V>>, E>
    where
        F: FnOnce(Vec<K>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<(K, V)>, E>>,
    {
        let read_at = self.before_reading();
        let mut found = std::collections::HashMap::with_capacity(keys.len());
        let mut missing = vec![];
        for k in keys {
            match self.get(k) {
                Some(v) => {
                    found.insert(k.clone(), v);
                }
                None => missing.push(k.clone()),
            }
        }
        if !missing.is_empty() {
            for (k, v) in read(missing).await? {
                let v = std::sync::Arc::new(v);
                self.keep(read_at, k.clone(), v.clone());
                found.insert(k, v);
            }
        }
        Ok(found)
    }

    /// Answers from kept data, and answers asked of the database, since start.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

/// How often an instance on SQLite reads the change count (migration 0020): what another
/// process changed shows on this one's product pages within this.
pub const CATALOG_POLL: Duration = Duration::from_millis(200);
/// PostgreSQL's channel of catalogue changes (migration 0020).
const CATALOG_CHANNEL: &str = "cholang_catalog";
/// The application name of the connection listening on it (tests find it by this name).
pub const CATALOG_LISTENER: &str = "cholang-catalog-watch";

/// Follow the database's catalogue changes into `epoch` until aborted: on SQLite by reading
/// `catalog_changes` every `CATALOG_POLL`; on PostgreSQL by listening on `cholang_catalog`
/// on a connection of its own (`url`, the pool's `DATABASE_URL`). While it cannot read
/// them (the database away, the connection lost) the epoch is not live, so nothing kept is
/// used; when it can again, the epoch moves on, as anything may have changed meanwhile.
pub async fn watch_catalog(db: Db, url: String, epoch: std::sync::Arc<CatalogEpoch>) {
    match db.backend {
        Backend::Sqlite => poll_catalog(db, &epoch).await,
        Backend::Postgres => listen_catalog(&url, &epoch).await,
    }
}

async fn poll_catalog(db: Db, epoch: &CatalogEpoch) {
    let mut tick = tokio::time::interval(CATALOG_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen: Option<i64> = None;
    loop {
        tick.tick().await;
        let n = sqlx::query_scalar::<_, i64>("SELECT n FROM catalog_changes WHERE id = 1")
            .fetch_one(&db.pool)
            .await;
        match (n, seen) {
            (Ok(n), Some(s)) if n == s => {}
            (Ok(n), Some(_)) => {
                seen = Some(n);
                epoch.changed();
            }
            (Ok(n), None) => {
                seen = Some(n);
                epoch.regained();
            }
            (Err(e), _) => {
                if seen.take().is_some() {
                    tracing::warn!(error = %e, "catalogue changes unread; kept product data unused");
                }
                epoch.lost();
            }
        }
    }
}

async fn listen_catalog(url: &str, epoch: &CatalogEpoch) {
    use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
    let mut wait = Duration::from_millis(100);
    loop {
        let listener = async {
            let options = PgConnectOptions::from_str(url)?.application_name(CATALOG_LISTENER);
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .max_lifetime(None)
                .idle_timeout(None)
                .connect_lazy_with(options);
            let mut l = PgListener::connect_with(&pool).await?;
            // A lost connection is reported at once; a new listener is made here.
            l.eager_reconnect(false);
            l.listen(CATALOG_CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        }
        .await;
        let mut listener = match listener {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "catalogue changes unheard; kept product data unused");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        wait = Duration::from_millis(100);
        epoch.regained();
        // `try_recv` answers `None` when the connection was lost: what was sent meanwhile is
        // unheard, so the epoch stops being live until a new listener hears again.
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => epoch.changed(),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "catalogue listener failed");
                    break;
                }
            }
        }
        epoch.lost();
    }
}

/// One migration's SQL for `backend` (see `MIGRATIONS`).
pub fn render_migration(source: &str, backend: Backend) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut only: Option<Backend> = None;
    for line in source.split('\n') {
        match line {
            "--@sqlite" => only = Some(Backend::Sqlite),
            "--@postgres" => only = Some(Backend::Postgres),
            "--@end" => only = None,
            _ if only.is_some_and(|b| b != backend) => {}
            _ => out.push(line.replace(
                "{id}",
                match backend {
                    Backend::Sqlite => "INTEGER PRIMARY KEY",
                    Backend::Postgres => "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                },
            )),
        }
    }
    out.join("\n")
}

/// Every migration as `backend` runs it: (version, description, SQL).
pub fn migrations_for(backend: Backend) -> Vec<(i64, &'static str, String)> {
    MIGRATIONS
        .iter()
        .map(|(v, name, source)| (*v, *name, render_migration(source, backend)))
        .collect()
}

impl Db {
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            anyhow::bail!("DATABASE_URL must start with sqlite: or postgres:");
        };
        let options = AnyConnectOptions::from_str(url).context("parsing DATABASE_URL")?;
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    // A file on this machine does not go away between queries: no ping (a
                    // round trip to the connection's thread) before each one.
                    .test_before_acquire(false)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL lets readers run beside the one writer; foreign keys are off by
                            // default in SQLite; the busy timeout makes writers queue, not fail.
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
                                 PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    // sqlx pings every connection as it comes back to the pool and closes one
                    // that does not answer. A connection back from a query moments ago is not
                    // pinged again before the next one (a round trip per query on a busy
                    // page); one idle for longer is, as the server may have restarted since.
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            use sqlx::Connection;
                            if meta.idle_for > PING_AFTER_IDLE {
                                conn.ping().await?;
                            }
                            Ok(true)
                        })
                    })
                    .connect_with(options)
                    .await
            }
        }
        .with_context(|| format!("connecting to {}", redact_url(url)))?;
        Ok(Db { pool, backend })
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrations = migrations_for(self.backend)
            .into_iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(name),
                    MigrationType::Simple,
                    sqlx::AssertSqlSafe(sql).into_sql_str(),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations)
            .run(&self.pool)
            .await
            .context("running migrations")?;
        Ok(())
    }

    /// What a claiming `SELECT` adds so concurrent workers take different rows: PostgreSQL
    /// skips rows another transaction locked; SQLite's write lock already serializes them.
    pub fn skip_locked(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// The newest migration this binary has, and the newest applied to the database (None
    /// before the first). Readiness wants them equal.
    pub async fn migration_versions(&self) -> Result<(i64, Option<i64>), sqlx::Error> {
        let ours = MIGRATIONS.iter().map(|m| m.0).max().unwrap_or(0);
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await?;
        Ok((ours, applied))
    }

    /// Whether a one-off data step (run after the SQL migrations) is recorded as done.
    pub async fn data_migration_done(&self, name: &str) -> Result<bool, sqlx::Error> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM data_migrations WHERE name = $1")
            .bind(name.to_string())
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// Begin a transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so two writers queue on the busy timeout instead of one failing
    /// when it upgrades a read snapshot that went stale.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// One connection from the pool, held until dropped. sqlx pings a connection each time
    /// it goes back to the pool (a round trip on PostgreSQL, a hop to the worker thread on
    /// SQLite), so a page asking several questions asks them on one held connection: one
    /// ping instead of one per question.
    pub async fn conn(&self) -> Result<sqlx::pool::PoolConnection<Any>, sqlx::Error> {
        self.pool.acquire().await
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}

/// Claim a one-off data step inside the transaction that does it: a second instance starting
/// at the same moment waits on this row (PostgreSQL) or the write lock (SQLite) and then finds
/// it taken (`false`), so the step never runs twice.
pub async fn claim_data_migration(tx: &mut Tx, name: &str) -> Result<bool, sqlx::Error> {
    let claimed: Option<String> = sqlx::query_scalar(
        "INSERT INTO data_migrations (name, done_at) VALUES ($1, $2)
         ON CONFLICT (name) DO NOTHING RETURNING name",
    )
    .bind(name.to_string())
    .bind(crate::domain::now_ms())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(claimed.is_some())
}

/// Unique and check constraints the code relies on, with the message a person should see.
/// PostgreSQL reports the constraint name; SQLite reports `table.column`.
const CONSTRAINTS: &[(&str, &str, &str)] = &[
    (
        "shipments_order_key",
        "shipments.order_id",
        "đang đặt giao với hãng cho đơn này, vui lòng chờ một chút rồi tải lại trang",
    ),
    (
        "users_email_key",
        "users.email",
        "email này đã được dùng cho một tài khoản khác",
    ),
    (
        "users_phone_key",
        "users.phone",
        "số điện thoại này đã được dùng cho một tài khoản khác",
    ),
    (
        "categories_village_key",
        "categories.village_id, categories.name_key",
        "làng đã có loại hàng cùng tên (tên giống nhau khi bỏ dấu)",
    ),
    (
        "villages_slug_key",
        "villages.slug",
        "đường dẫn làng đã tồn tại",
    ),
    (
        "villages_identity_key",
        "villages.name, villages.commune, villages.district",
        "đã có làng cùng tên ở xã và huyện này",
    ),
    (
        "shops_village_name_key",
        "shops.village_id, shops.name",
        "làng đã có một cửa hàng cùng tên",
    ),
    (
        "shops_slug_key",
        "shops.slug",
        "đường dẫn cửa hàng đã tồn tại",
    ),
    (
        "price_items_village_name_key",
        "price_items.village_id, price_items.name",
        "bảng giá của làng đã có mặt hàng cùng tên",
    ),
    (
        "products_shop_name_key",
        "products.shop_id, products.name",
        "cửa hàng đã có sản phẩm cùng tên",
    ),
    (
        "products_slug_key",
        "products.slug",
        "đường dẫn sản phẩm đã tồn tại",
    ),
    (
        "checkouts_code_key",
        "checkouts.code",
        "mã đơn bị trùng, vui lòng thử lại",
    ),
    (
        "payments_code_key",
        "payments.code",
        "mã thanh toán bị trùng, vui lòng thử lại",
    ),
    (
        "payments_order_code_key",
        "payments.order_code",
        "mã thanh toán bị trùng, vui lòng thử lại",
    ),
    (
        "ledger_journals_event_key",
        "ledger_journals.event_key",
        "việc này đã được ghi vào sổ rồi, không ghi lần nữa",
    ),
    (
        "bank_transactions_money_ref",
        "bank_transactions.money_ref, bank_transactions.amount_vnd",
        "giao dịch này đã được ghi nhận từ một nguồn khác",
    ),
    (
        "proposals_one_open_per_item",
        "proposals.price_item_id",
        "mặt hàng này đang có một đề xuất giá chưa kết thúc",
    ),
];

pub fn constraint_message(e: &sqlx::Error) -> Option<&'static str> {
    let db = e.as_database_error()?;
    let msg = db.message();
    let name = db.constraint();
    CONSTRAINTS.iter().find_map(|(pg, sqlite, text)| {
        let hit = name == Some(*pg)
            || (msg.contains("UNIQUE constraint failed") && msg.ends_with(sqlite));
        hit.then_some(*text)
    })
}

/// True when the database could not be reached or went away under the request: a
/// connection refused or cut, the pool out of connections or closed, PostgreSQL shutting
/// down or starting (SQLSTATE 57P01–57P03) or a connection exception (class 08).
pub fn is_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

/// A failure that a fresh attempt of the same transaction may not meet: a deadlock or a
/// serialization failure (PostgreSQL), or a unique violation no rule explains (two
/// concurrent checkouts drawing the same random code).
pub fn is_transient(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| matches!(c.as_ref(), "40P01" | "40001" | "23505"))
}

/// True when the error is a unique violation of the named constraint (see `CONSTRAINTS`).
pub fn is_unique_violation(e: &sqlx::Error, pg_name: &str) -> bool {
    let Some(db) = e.as_database_error() else {
        return false;
    };
    if db.constraint() == Some(pg_name) {
        return true;
    }
    CONSTRAINTS
        .iter()
        .find(|(pg, _, _)| *pg == pg_name)
        .is_some_and(|(_, sqlite, _)| {
            db.message().contains("UNIQUE constraint failed") && db.message().ends_with(sqlite)
        })
}

/// Hide a password in a database URL before it reaches a log line.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;

    fn live() -> Arc<CatalogEpoch> {
        let e = Arc::new(CatalogEpoch::default());
        e.regained();
        e
    }

    fn v(s: &str) -> Arc<String> {
        Arc::new(s.to_string())
    }

    #[test]
    fn kept_data_is_used_only_in_the_epoch_it_was_read_in() {
        let kept: Kept<String, String> = Kept::new(live(), 10);
        let at = kept.before_reading();
        kept.keep(at, "a".into(), v("old"));
        assert_eq!(kept.get("a").unwrap().as_str(), "old");
        kept.changed();
        assert!(kept.get("a").is_none(), "a change drops what was kept");
        assert_eq!(kept.counts(), (1, 1));
    }

    #[test]
    fn data_read_before_a_change_is_not_kept_after_it() {
        let kept: Kept<String, String> = Kept::new(live(), 10);
        let at = kept.before_reading();
        // The database changes while it is read.
        kept.changed();
        kept.keep(at, "a".into(), v("maybe old"));
        assert!(kept.get("a").is_none());
        let at = kept.before_reading();
        kept.keep(at, "a".into(), v("new"));
        assert_eq!(kept.get("a").unwrap().as_str(), "new");
    }

    #[test]
    fn nothing_is_kept_or_used_while_changes_may_go_unseen() {
        let epoch = Arc::new(CatalogEpoch::default());
        let kept: Kept<String, String> = Kept::new(epoch.clone(), 10);
        let at = kept.before_reading();
        assert_eq!(at, None, "not live before the watch reads the database");
        kept.keep(at, "a".into(), v("x"));
        epoch.regained();
        assert!(kept.get("a").is_none());
        let at = kept.before_reading();
        kept.keep(at, "a".into(), v("x"));
        assert!(kept.get("a").is_some());
        epoch.lost();
        assert!(kept.get("a").is_none(), "a lost watch stops the use");
        epoch.regained();
        assert!(
            kept.get("a").is_none(),
            "what was kept before the loss stays unused after it"
        );
    }

    #[test]
    fn a_full_store_starts_again_and_zero_keeps_nothing() {
        let kept: Kept<String, String> = Kept::new(live(), 2);
        for k in ["a", "b", "c"] {
            let at = kept.before_reading();
            kept.keep(at, k.into(), v(k));
        }
        assert!(kept.get("a").is_none() && kept.get("b").is_none());
        assert!(kept.get("c").is_some());
        let off: Kept<String, String> = Kept::new(live(), 0);
        let at = off.before_reading();
        off.keep(at, "a".into(), v("a"));
        assert!(off.get("a").is_none());
    }

    #[tokio::test]
    async fn get_or_read_one_keeps_what_it_read_and_nothing_on_an_error() {
        let kept: Kept<String, String> = Kept::new(live(), 10);
        let failed: Result<_, &str> = kept.get_or_read_one("a", || async { Err("gone") }).await;
        assert_eq!(failed.err(), Some("gone"));
        assert!(kept.get("a").is_none());
        let got = kept
            .get_or_read_one("a", || async { Ok::<_, ()>("read".to_string()) })
            .await
            .unwrap();
        assert_eq!(got.as_str(), "read");
        let again = kept
            .get_or_read_one("a", || async { Ok::<_, ()>("asked again".to_string()) })
            .await
            .unwrap();
        assert_eq!(again.as_str(), "read", "the kept value, not a second read");
    }

    #[tokio::test]
    async fn get_or_read_asks_only_for_what_is_not_kept() {
        let kept: Kept<i64, String> = Kept::new(live(), 10);
        let asked = std::sync::Mutex::new(vec![]);
        let read = |ids: Vec<i64>| {
            asked.lock().unwrap().push(ids.clone());
            // 3 is not in the database.
            let rows = ids
                .into_iter()
                .filter(|i| *i != 3)
                .map(|i| (i, format!("#{i}")))
                .collect::<Vec<_>>();
            async move { Ok::<_, ()>(rows) }
        };
        let got = kept.get_or_read(&[1, 2, 3], read).await.unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[&2].as_str(), "#2");
        let got = kept.get_or_read(&[2, 3, 4], read).await.unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(*asked.lock().unwrap(), vec![vec![1, 2, 3], vec![3, 4]]);
    }

    /// What each migration was when databases applied it (the first 16 hex digits of the
    /// SHA-256 of its SQL, per backend): an applied migration never changes (sqlx would
    /// refuse to start), and the one source renders both exactly.
    #[test]
    fn applied_migrations_render_as_they_were() {
        use sha2::{Digest, Sha256};
        let applied = [
            ("0001_init.sql", "2b31244cfb563e90", "6fda40c9e9e0ceef"),
            (
                "0002_checkout_payments.sql",
                "6fdc19b1582c0b64",
                "c6b5396cb532453b",
            ),
            ("0003_notices.sql", "630ff179eaa8d6d0", "6aceb200e3f8e5f3"),
            (
                "0004_search_queue.sql",
                "5776b29fc34df057",
                "63a15af072117567",
            ),
            ("0005_hardening.sql", "2b6d29973a7abcee", "8d883fe051880087"),
            (
                "0006_ledger_payouts.sql",
                "94ac82199a188a0e",
                "82bd4e7a7ef4c4c6",
            ),
            (
                "0007_unreachable.sql",
                "8a4b7dcbf3761818",
                "6367ddc4696d189d",
            ),
            ("0008_shipping.sql", "28b5c5d5d7eefc0d", "28b5c5d5d7eefc0d"),
            ("0009_origin.sql", "f2f07f17e8355a8e", "0073fad952c6f1fa"),
            ("0010_ocop.sql", "1fad630176894e14", "1fad630176894e14"),
            (
                "0011_categories.sql",
                "9fc26a34b9541f2d",
                "67ac8f1163a67e19",
            ),
            ("0012_outflows.sql", "c06f555907ee856c", "c06f555907ee856c"),
            (
                "0013_shared_rates.sql",
                "753429d5db025d58",
                "753429d5db025d58",
            ),
            (
                "0014_money_integrity.sql",
                "6c98d563ca6451db",
                "6c98d563ca6451db",
            ),
            (
                "0015_ledger_guards.sql",
                "405baf97406e75f8",
                "1b50664ab46c96de",
            ),
            (
                "0016_buyer_protection.sql",
                "032d728ebdbc142b",
                "87b56d5bfce7d430",
            ),
            (
                "0017_board_round_two.sql",
                "2f7bfe49e9668145",
                "d57ee888ac311105",
            ),
            (
                "0018_phone_team.sql",
                "a8fe2aa336925cae",
                "025fc15e37ad686c",
            ),
            ("0019_delivery.sql", "693e78c116aedc58", "abdcd042ed59c644"),
            (
                "0020_catalog_changes.sql",
                "79f466f4000b057e",
                "7cc59dbaa9321197",
            ),
        ];
        assert_eq!(
            MIGRATIONS.len(),
            applied.len(),
            "a new migration: add its digests"
        );
        for ((v, _, source), (file, sqlite, postgres)) in MIGRATIONS.iter().zip(applied) {
            assert!(file.starts_with(&format!("{v:04}_")), "{file}");
            for (backend, want) in [(Backend::Sqlite, sqlite), (Backend::Postgres, postgres)] {
                let got = hex::encode(Sha256::digest(render_migration(source, backend)));
                assert_eq!(&got[..16], want, "{file} on {backend:?}");
            }
        }
    }

    #[test]
    fn dialect_blocks_and_ids_render_per_backend() {
        let src = "a {id},\n--@sqlite\ns\n--@postgres\np\n--@end\nz";
        assert_eq!(
            render_migration(src, Backend::Sqlite),
            "a INTEGER PRIMARY KEY,\ns\nz"
        );
        assert_eq!(
            render_migration(src, Backend::Postgres),
            "a BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\np\nz"
        );
    }
}
