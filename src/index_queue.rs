//! The durable search queue: `enqueue` runs inside the transaction of the change it
//! announces, so a committed change always has its queue row and a rolled-back one never.

use sqlx::Row;

use crate::db::{Db, Tx, id_list};
use crate::domain::now_ms;
use crate::error::Result;

/// What changed: the sync worker re-reads every product the scope covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Product(i64),
    /// A shop's name or state: all its products.
    Shop(i64),
    /// An agreed price on the village board: every product sold at it.
    PriceItem(i64),
    Village(i64),
    /// Rebuild everything (`cholang reindex`, a new or changed index).
    All,
}

impl Scope {
    fn parts(self) -> (&'static str, i64) {
        match self {
            Scope::Product(id) => ("product", id),
            Scope::Shop(id) => ("shop", id),
            Scope::PriceItem(id) => ("price_item", id),
            Scope::Village(id) => ("village", id),
            Scope::All => ("all", 0),
        }
    }

    fn from_parts(kind: &str, id: i64) -> Scope {
        match kind {
            "product" => Scope::Product(id),
            "shop" => Scope::Shop(id),
            "price_item" => Scope::PriceItem(id),
            "village" => Scope::Village(id),
            _ => Scope::All,
        }
    }
}

pub async fn enqueue(tx: &mut Tx, scope: Scope) -> Result<()> {
    let (kind, id) = scope.parts();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO search_queue (scope, scope_id, next_attempt_at, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(kind)
    .bind(id)
    .bind(now)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Enqueue outside any other change (reindex, a new index found empty).
pub async fn enqueue_now(db: &Db, scope: Scope) -> Result<()> {
    let mut tx = db.begin().await?;
    enqueue(&mut tx, scope).await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Item {
    pub id: i64,
    pub scope: Scope,
    pub attempts: i64,
}

/// Rows due now, oldest first.
pub async fn due(db: &Db, limit: i64) -> Result<Vec<Item>> {
    let rows = sqlx::query(
        "SELECT id, scope, scope_id, attempts FROM search_queue WHERE next_attempt_at <= $1 ORDER BY id LIMIT $2",
    )
    .bind(now_ms())
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Item {
                id: r.try_get("id")?,
                scope: Scope::from_parts(&r.try_get::<String, _>("scope")?, r.try_get("scope_id")?),
                attempts: r.try_get("attempts")?,
            })
        })
        .collect()
}

/// Applied: the rows go.
pub async fn done(db: &Db, items: &[Item]) -> Result<()> {
    for chunk in items.chunks(500) {
        let ids: Vec<i64> = chunk.iter().map(|i| i.id).collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM search_queue WHERE id IN ({})",
            id_list(&ids)
        )))
        .execute(&db.pool)
        .await?;
    }
    Ok(())
}

/// Not applied: the rows stay, due again after a backoff, with the error kept for admins.
pub async fn failed(db: &Db, items: &[Item], error: &str) -> Result<()> {
    let now = now_ms();
    for i in items {
        sqlx::query(
            "UPDATE search_queue SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2 WHERE id = $3",
        )
        // 1 s, 2 s, 4 s … a minute at most (`i.attempts` failures so far, this one included).
        .bind(now + crate::domain::retry_backoff(1, i.attempts + 1, 60).as_millis() as i64)
        .bind(error.chars().take(500).collect::<String>())
        .bind(i.id)
        .execute(&db.pool)
        .await?;
    }
    Ok(())
}

/// Rows waiting and the age in ms of the oldest (0 when empty).
pub async fn depth(db: &Db) -> Result<(i64, i64)> {
    let r = sqlx::query("SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM search_queue")
        .fetch_one(&db.pool)
        .await?;
    let n: i64 = r.try_get("n")?;
    let oldest: Option<i64> = r.try_get("oldest")?;
    Ok((n, oldest.map_or(0, |o| (now_ms() - o).max(0))))
}

/// Take or renew the named lease for `ttl_ms`; false while another holder's lease runs.
pub async fn take_lease(db: &Db, name: &str, holder: &str, ttl_ms: i64) -> Result<bool> {
    let now = now_ms();
    let r = sqlx::query(
        "UPDATE worker_leases SET holder = $1, until_ms = $2 WHERE name = $3 AND (holder = $1 OR until_ms < $4)",
    )
    .bind(holder)
    .bind(now + ttl_ms)
    .bind(name)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn release_lease(db: &Db, name: &str, holder: &str) -> Result<()> {
    sqlx::query("UPDATE worker_leases SET until_ms = 0 WHERE name = $1 AND holder = $2")
        .bind(name)
        .bind(holder)
        .execute(&db.pool)
        .await?;
    Ok(())
}
