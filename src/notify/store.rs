//! SQL for the outbox: events written with the business change, notices per channel,
//! claiming with a lease, and recording each attempt.

use serde::Serialize;
use sqlx::Row;

use crate::db::{Db, Tx};
use crate::domain::now_ms;
use crate::error::Result;

/// Record that something happened, inside the caller's transaction.
pub async fn event(tx: &mut Tx, kind: super::NoticeKind, ref_id: i64) -> Result<()> {
    sqlx::query("INSERT INTO notice_events (kind, ref_id, created_at) VALUES ($1, $2, $3)")
        .bind(kind.as_str())
        .bind(ref_id)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Outside a transaction (e.g. a seller's "send a test notice").
pub async fn event_now(db: &Db, kind: super::NoticeKind, ref_id: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    event(&mut tx, kind, ref_id).await?;
    tx.commit().await?;
    Ok(())
}

pub struct NewNotice {
    pub key: String,
    pub kind: String,
    pub channel: &'static str,
    pub recipient: String,
    pub shop_id: Option<i64>,
    pub payload: serde_json::Value,
}

/// Insert unless a notice with the same idempotency key exists.
pub async fn insert(tx: &mut Tx, n: &NewNotice) -> Result<bool> {
    let now = now_ms();
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO notices (idempotency_key, kind, channel, recipient, shop_id, payload, status, attempts,
           run_after, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7, $7)
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
    )
    .bind(n.key.clone())
    .bind(n.kind.clone())
    .bind(n.channel)
    .bind(n.recipient.clone())
    .bind(n.shop_id)
    .bind(n.payload.to_string())
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(id.is_some())
}

pub struct PendingEvent {
    pub id: i64,
    pub kind: String,
    pub ref_id: i64,
}

pub async fn pending_events(db: &Db, limit: i64) -> Result<Vec<PendingEvent>> {
    let rows = sqlx::query(
        "SELECT id, kind, ref_id FROM notice_events WHERE expanded_at IS NULL ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PendingEvent {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                ref_id: r.try_get("ref_id")?,
            })
        })
        .collect()
}

/// Mark an event expanded, unless another worker did first. Returns whether we own it.
pub async fn take_event(tx: &mut Tx, id: i64) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE notice_events SET expanded_at = $1 WHERE id = $2 AND expanded_at IS NULL",
    )
    .bind(now_ms())
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub key: String,
    pub kind: String,
    pub channel: String,
    pub recipient: String,
    pub shop_id: Option<i64>,
    pub payload: serde_json::Value,
    pub attempts: i64,
}

/// Claim due notices: pending ones whose time has come, and ones whose worker's lease ran
/// out (it crashed mid-send). PostgreSQL skips rows another worker holds; SQLite's write
/// transaction makes the claim atomic.
pub async fn claim(db: &Db, limit: i64, lease_ms: i64) -> Result<Vec<Claimed>> {
    let now = now_ms();
    // One query for both databases: PostgreSQL also skips rows another worker holds.
    let sql = format!(
        "UPDATE notices SET status = 'sending', attempts = attempts + 1, lease_until = $1, updated_at = $2
         WHERE id IN (SELECT id FROM notices
                      WHERE (status = 'pending' AND run_after <= $2) OR (status = 'sending' AND lease_until < $2)
                      ORDER BY run_after, id LIMIT $3{})
         RETURNING id, idempotency_key, kind, channel, recipient, shop_id, payload, attempts",
        db.skip_locked()
    );
    let mut tx = db.begin().await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now + lease_ms)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    rows.iter()
        .map(|r| {
            let payload: String = r.try_get("payload")?;
            Ok(Claimed {
                id: r.try_get("id")?,
                key: r.try_get("idempotency_key")?,
                kind: r.try_get("kind")?,
                channel: r.try_get("channel")?,
                recipient: r.try_get("recipient")?,
                shop_id: r.try_get("shop_id")?,
                payload: serde_json::from_str(&payload).unwrap_or_default(),
                attempts: r.try_get("attempts")?,
            })
        })
        .collect()
}

pub async fn delivered(db: &Db, id: i64, provider_ref: Option<String>) -> Result<()> {
    let now = now_ms();
    sqlx::query(
        "UPDATE notices SET status = 'delivered', provider_ref = $1, delivered_at = $2, updated_at = $2, lease_until = NULL
         WHERE id = $3",
    )
    .bind(provider_ref)
    .bind(now)
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub async fn retry_at(db: &Db, id: i64, run_after: i64, error: &str) -> Result<()> {
    sqlx::query(
        "UPDATE notices SET status = 'pending', run_after = $1, last_error = $2, updated_at = $3, lease_until = NULL WHERE id = $4",
    )
    .bind(run_after)
    .bind(error.chars().take(500).collect::<String>())
    .bind(now_ms())
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub async fn failed(db: &Db, id: i64, error: &str) -> Result<()> {
    sqlx::query("UPDATE notices SET status = 'failed', last_error = $1, updated_at = $2, lease_until = NULL WHERE id = $3")
        .bind(error.chars().take(500).collect::<String>())
        .bind(now_ms())
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn set_recipient(db: &Db, id: i64, recipient: &str) -> Result<()> {
    sqlx::query("UPDATE notices SET recipient = $1 WHERE id = $2")
        .bind(recipient.to_string())
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// An admin's "retry now" on a failed notice: a fresh set of attempts, due at once.
pub async fn retry_now(db: &Db, id: i64) -> Result<bool> {
    let n = sqlx::query("UPDATE notices SET status = 'pending', attempts = 0, run_after = $1, updated_at = $1 WHERE id = $2 AND status = 'failed'")
        .bind(now_ms())
        .bind(id)
        .execute(&db.pool)
        .await?
        .rows_affected();
    Ok(n == 1)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NoticeRow {
    pub id: i64,
    pub kind: String,
    pub channel: String,
    pub recipient: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    /// What the notice was about: its subject (email), or its first line.
    pub about: String,
}

/// A notice's subject as its reader saw it: the email's subject, a Telegram or SMS text's
/// first line (tags removed), else empty.
fn about(payload: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
    if let Some(s) = v["subject"].as_str() {
        return s.to_string();
    }
    let text = v["text"].as_str().unwrap_or_default();
    let first = text.lines().next().unwrap_or_default();
    let mut out = String::new();
    let mut in_tag = false;
    for c in first.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// What a kind of notice is about, in words.
pub fn kind_words(kind: &str) -> &'static str {
    match kind {
        "order_paid" => "Đơn hàng mới đã thanh toán",
        "order_closed" => "Đơn hàng đã đóng",
        "proposal_opened" => "Đề xuất giá mới",
        "proposal_approved" => "Giá mới được thông qua",
        "proposal_rejected" => "Đề xuất giá không được thông qua",
        "payout_sent" => "Khoản chi đang chuyển",
        "payout_paid" => "Khoản chi đã chuyển",
        "payout_failed" => "Khoản chi không thành công",
        "payout_account_changed" => "Tài khoản nhận tiền vừa đổi",
        "shop_membership" => "Làng trả lời yêu cầu tham gia",
        "shipment_problem" => "Đơn gửi hãng vận chuyển gặp sự cố",
        "test" => "Thông báo thử",
        _ => "Thông báo",
    }
}

fn row(r: &sqlx::any::AnyRow) -> Result<NoticeRow> {
    let kind: String = r.try_get("kind")?;
    let mut about = about(&r.try_get::<String, _>("payload")?);
    if about.trim().is_empty() {
        about = kind_words(&kind).to_string();
    }
    Ok(NoticeRow {
        about,
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        channel: r.try_get("channel")?,
        recipient: r.try_get("recipient")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
    })
}

pub async fn recent_for_shop(db: &Db, shop_id: i64, limit: i64) -> Result<Vec<NoticeRow>> {
    let rows = sqlx::query(
        "SELECT id, kind, channel, recipient, status, attempts, last_error, created_at, payload FROM notices
         WHERE shop_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(shop_id)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(row).collect()
}

pub async fn failed_notices(db: &Db) -> Result<Vec<NoticeRow>> {
    let rows = sqlx::query(
        "SELECT id, kind, channel, recipient, status, attempts, last_error, created_at, payload FROM notices
         WHERE status = 'failed' ORDER BY updated_at DESC LIMIT 200",
    )
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(row).collect()
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Unreachable {
    pub shop_slug: String,
    pub shop_name: String,
    /// The shop's phone: whoever reads the list can call instead.
    pub shop_phone: String,
    pub kind: String,
    pub at: i64,
}

/// Shops that could not be told something, newest first.
pub async fn unreachable(db: &Db, limit: i64) -> Result<Vec<Unreachable>> {
    let rows = sqlx::query(
        "SELECT s.slug, s.name, s.phone, u.kind, u.at FROM unreachable_notices u JOIN shops s ON s.id = u.shop_id
         ORDER BY u.at DESC, u.id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Unreachable {
                shop_slug: r.try_get("slug")?,
                shop_name: r.try_get("name")?,
                shop_phone: r.try_get("phone")?,
                kind: r.try_get("kind")?,
                at: r.try_get("at")?,
            })
        })
        .collect()
}
