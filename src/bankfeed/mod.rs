//! The collecting account's bank feed: every line any provider reports (bank webhook,
//! Casso, payOS, Stripe) is stored here once, per (provider, transaction id) and, across
//! feeds, per (bank reference, amount). What the money is for is decided above: money in
//! by `payments`, money out (and payouts sent back) by `payouts`, handed to them by
//! `treasury::receive` in the same database transaction.

pub mod parse;
pub mod state;

use serde::Serialize;

use crate::db::Tx;
use crate::domain::now_ms;
use crate::error::{AppError, Result};
pub use state::TxnStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Bank,
    Casso,
    Payos,
    Stripe,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Bank => "bank",
            Provider::Casso => "casso",
            Provider::Payos => "payos",
            Provider::Stripe => "stripe",
        }
    }
}

/// How a provider points at our payment besides the description.
#[derive(Debug, Clone, PartialEq)]
pub enum Hint {
    OrderCode(i64),
    Code(String),
}

/// A verified money event, as any provider's webhook is turned into.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub provider: Provider,
    pub txn_id: String,
    /// Signed: outgoing transfers (negative) are stored and ignored, never matched.
    pub amount: i64,
    pub description: String,
    pub account_number: Option<String>,
    pub reference: Option<String>,
    pub time: Option<String>,
    pub raw: String,
    pub hint: Option<Hint>,
    /// False for a provider's failure/cancel notice: stored, not counted.
    pub success: bool,
}

/// The bank's reference as it identifies one transfer across feeds (our bank feed and Casso
/// report the same transfer with the same reference and amount).
fn money_ref(t: &Incoming) -> Option<String> {
    if t.amount <= 0 || !t.success {
        return None;
    }
    t.reference
        .as_deref()
        .map(|r| r.trim().to_uppercase())
        .filter(|r| !r.is_empty())
}

/// Store one reported line. `Some(row id)` for a line seen for the first time, stored
/// `unmatched`; `None` for a second delivery of the same (provider, id), or for another
/// feed's report of a transfer already counted (kept then as `ignored`, `duplicate_of` the
/// first, as no money).
pub async fn store(tx: &mut Tx, t: &Incoming) -> Result<Option<i64>> {
    let reference = money_ref(t);
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO bank_transactions (provider, provider_txn_id, amount_vnd, description, account_number,
           reference, transaction_time, raw, status, received_at, money_ref)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(t.provider.as_str())
    .bind(t.txn_id.clone())
    .bind(t.amount)
    .bind(t.description.clone())
    .bind(t.account_number.clone())
    .bind(t.reference.clone())
    .bind(t.time.clone())
    .bind(t.raw.clone())
    .bind(TxnStatus::Unmatched.as_str())
    .bind(now_ms())
    .bind(reference.clone())
    .fetch_optional(&mut **tx)
    .await?;
    if inserted.is_some() {
        return Ok(inserted);
    }
    let same: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM bank_transactions WHERE provider = $1 AND provider_txn_id = $2",
    )
    .bind(t.provider.as_str())
    .bind(t.txn_id.clone())
    .fetch_one(&mut **tx)
    .await?;
    if same == 0 {
        // Another feed already counted this transfer: keep this delivery, as no money.
        let first: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM bank_transactions WHERE money_ref = $1 AND amount_vnd = $2",
        )
        .bind(reference.clone())
        .bind(t.amount)
        .fetch_optional(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO bank_transactions (provider, provider_txn_id, amount_vnd, description,
               account_number, reference, transaction_time, raw, status, received_at, duplicate_of)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (provider, provider_txn_id) DO NOTHING",
        )
        .bind(t.provider.as_str())
        .bind(t.txn_id.clone())
        .bind(t.amount)
        .bind(t.description.clone())
        .bind(t.account_number.clone())
        .bind(t.reference.clone())
        .bind(t.time.clone())
        .bind(t.raw.clone())
        .bind(TxnStatus::Ignored.as_str())
        .bind(now_ms())
        .bind(first)
        .execute(&mut **tx)
        .await?;
        tracing::info!(
            provider = t.provider.as_str(),
            amount = t.amount,
            "transfer already counted from another feed; kept as a duplicate delivery"
        );
    }
    Ok(None)
}

/// A stored line that is not money in (an outgoing transfer, a failure notice, a payout
/// coming back): `ignored`. A payout coming back also gives up its bank reference, so it
/// never stands for money in across feeds.
pub async fn set_aside(tx: &mut Tx, txn: i64, keep_reference: bool) -> Result<()> {
    set_txn_status(tx, txn, TxnStatus::Unmatched, TxnStatus::Ignored).await?;
    if !keep_reference {
        sqlx::query("UPDATE bank_transactions SET money_ref = NULL WHERE id = $1")
            .bind(txn)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Money that left the account and no payout explains: waits for the admin, so the books
/// never drift from the bank unseen (a payout sent twice, say).
pub async fn unexplained_outflow(tx: &mut Tx, txn: i64) -> Result<()> {
    sqlx::query("UPDATE bank_transactions SET outflow = 'unexplained' WHERE id = $1")
        .bind(txn)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Move an incoming transaction's status, checked by `TxnStatus::transition` and guarded by
/// `WHERE status = from` (a second claim finds nothing and is refused with 409).
pub async fn set_txn_status(tx: &mut Tx, txn: i64, from: TxnStatus, to: TxnStatus) -> Result<()> {
    from.transition(to)
        .map_err(|e| AppError::Internal(anyhow::anyhow!(e.to_string())))?;
    let n = sqlx::query("UPDATE bank_transactions SET status = $1 WHERE id = $2 AND status = $3")
        .bind(to.as_str())
        .bind(txn)
        .bind(from.as_str())
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if n != 1 {
        return Err(AppError::Conflict(
            "giao dịch này không còn ở trạng thái chưa khớp".into(),
        ));
    }
    Ok(())
}
