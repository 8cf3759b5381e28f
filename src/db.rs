//! Database access: one `sqlx::Any` pool that speaks SQLite (embedded default) or PostgreSQL.
//!
//! All queries are written in the subset both engines run alike: `$N` placeholders,
//! `RETURNING`, `ON CONFLICT`, flags as INTEGER 0/1 and times as BIGINT epoch milliseconds
//! (the `Any` driver cannot decode SQLite booleans or driver-specific time types).

use std::borrow::Cow;
use std::str::FromStr;
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

/// Migrations, one list per backend, compiled into the binary so it runs from anywhere.
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "checkout_payments",
        include_str!("../migrations/sqlite/0002_checkout_payments.sql"),
    ),
    (
        3,
        "notices",
        include_str!("../migrations/sqlite/0003_notices.sql"),
    ),
    (
        4,
        "search_queue",
        include_str!("../migrations/sqlite/0004_search_queue.sql"),
    ),
    (
        5,
        "hardening",
        include_str!("../migrations/sqlite/0005_hardening.sql"),
    ),
    (
        6,
        "ledger_payouts",
        include_str!("../migrations/sqlite/0006_ledger_payouts.sql"),
    ),
    (
        7,
        "unreachable",
        include_str!("../migrations/sqlite/0007_unreachable.sql"),
    ),
    (
        8,
        "shipping",
        include_str!("../migrations/sqlite/0008_shipping.sql"),
    ),
    (
        9,
        "origin",
        include_str!("../migrations/sqlite/0009_origin.sql"),
    ),
    (
        10,
        "ocop",
        include_str!("../migrations/sqlite/0010_ocop.sql"),
    ),
    (
        11,
        "categories",
        include_str!("../migrations/sqlite/0011_categories.sql"),
    ),
    (
        12,
        "outflows",
        include_str!("../migrations/sqlite/0012_outflows.sql"),
    ),
    (
        13,
        "shared_rates",
        include_str!("../migrations/sqlite/0013_shared_rates.sql"),
    ),
    (
        14,
        "money_integrity",
        include_str!("../migrations/sqlite/0014_money_integrity.sql"),
    ),
    (
        15,
        "ledger_guards",
        include_str!("../migrations/sqlite/0015_ledger_guards.sql"),
    ),
    (
        16,
        "buyer_protection",
        include_str!("../migrations/sqlite/0016_buyer_protection.sql"),
    ),
    (
        17,
        "board round two",
        include_str!("../migrations/sqlite/0017_board_round_two.sql"),
    ),
    (
        18,
        "phone and team",
        include_str!("../migrations/sqlite/0018_phone_team.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "checkout_payments",
        include_str!("../migrations/postgres/0002_checkout_payments.sql"),
    ),
    (
        3,
        "notices",
        include_str!("../migrations/postgres/0003_notices.sql"),
    ),
    (
        4,
        "search_queue",
        include_str!("../migrations/postgres/0004_search_queue.sql"),
    ),
    (
        5,
        "hardening",
        include_str!("../migrations/postgres/0005_hardening.sql"),
    ),
    (
        6,
        "ledger_payouts",
        include_str!("../migrations/postgres/0006_ledger_payouts.sql"),
    ),
    (
        7,
        "unreachable",
        include_str!("../migrations/postgres/0007_unreachable.sql"),
    ),
    (
        8,
        "shipping",
        include_str!("../migrations/postgres/0008_shipping.sql"),
    ),
    (
        9,
        "origin",
        include_str!("../migrations/postgres/0009_origin.sql"),
    ),
    (
        10,
        "ocop",
        include_str!("../migrations/postgres/0010_ocop.sql"),
    ),
    (
        11,
        "categories",
        include_str!("../migrations/postgres/0011_categories.sql"),
    ),
    (
        12,
        "outflows",
        include_str!("../migrations/postgres/0012_outflows.sql"),
    ),
    (
        13,
        "shared_rates",
        include_str!("../migrations/postgres/0013_shared_rates.sql"),
    ),
    (
        14,
        "money_integrity",
        include_str!("../migrations/postgres/0014_money_integrity.sql"),
    ),
    (
        15,
        "ledger_guards",
        include_str!("../migrations/postgres/0015_ledger_guards.sql"),
    ),
    (
        16,
        "buyer_protection",
        include_str!("../migrations/postgres/0016_buyer_protection.sql"),
    ),
    (
        17,
        "board round two",
        include_str!("../migrations/postgres/0017_board_round_two.sql"),
    ),
    (
        18,
        "phone and team",
        include_str!("../migrations/postgres/0018_phone_team.sql"),
    ),
];

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
                    .connect_with(options)
                    .await
            }
        }
        .with_context(|| format!("connecting to {}", crate::config::redact_url(url)))?;
        Ok(Db { pool, backend })
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        let list = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        let migrations = list
            .iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*name),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations)
            .run(&self.pool)
            .await
            .context("running migrations")?;
        crate::ledger::store::backfill(self)
            .await
            .map_err(|e| anyhow::anyhow!("ledger backfill: {e:?}"))?;
        crate::catalog::categories::adopt_existing(self)
            .await
            .map_err(|e| anyhow::anyhow!("categories from products: {e:?}"))?;
        Ok(())
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
        let ours = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.iter().map(|m| m.0).max(),
            Backend::Postgres => POSTGRES_MIGRATIONS.iter().map(|m| m.0).max(),
        }
        .unwrap_or(0);
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
