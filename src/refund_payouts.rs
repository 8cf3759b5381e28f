//! Refund payouts: money owed back to a buyer, paid to the bank account the buyer gave, by
//! the same channels as sellers' payouts (payOS Payouts with the code as idempotency key, or
//! the treasurer's bank app with a VietQR per transfer) and confirmed the same ways (payOS,
//! the bank feed, the admin). The ledger follows: refunds due → in transit (created) → out
//! of the collecting account (paid, recorded by `payments::refunds`, the one refund writer)
//! or back to due (failed). The amount is never more than the target may still get.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::accounts::User;
use crate::config::Config;
use crate::db::{Db, Tx};
use crate::domain::money::format_vnd;
use crate::domain::now_ms;
use crate::error::{AppError, Result};
use crate::ledger::store::{self as ledger, Refs};
use crate::payments::refunds::Target;
use crate::payouts::PayoutAccount;
use crate::payouts::state::PayoutStatus;

/// A refund payout as pages and the API show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RefundPayoutView {
    #[serde(skip)]
    pub id: i64,
    pub code: String,
    pub payment_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_code: Option<String>,
    pub amount_vnd: i64,
    pub status: PayoutStatus,
    pub method: String,
    /// "Vietcombank ••••3456": where it goes, masked.
    pub account: String,
    #[serde(skip)]
    pub account_no: String,
    #[serde(skip)]
    pub account_name: String,
    #[serde(skip)]
    pub bank_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vietqr_payload: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<i64>,
}

const SELECT: &str = "SELECT rp.id, rp.code, p.code AS payment_code, o.code AS order_code,
       rp.amount_vnd, rp.status, rp.method, rp.bank_bin, rp.account_no, rp.account_name,
       rp.last_error, rp.created_at, rp.paid_at
     FROM refund_payouts rp JOIN payments p ON p.id = rp.payment_id
     LEFT JOIN orders o ON o.id = rp.order_id";

fn parse_status(s: &str) -> Result<PayoutStatus> {
    PayoutStatus::parse(s)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("unknown refund payout status {s:?}")))
}

fn from_row(r: &AnyRow) -> Result<RefundPayoutView> {
    let code: String = r.try_get("code")?;
    let method: String = r.try_get("method")?;
    let bin: String = r.try_get("bank_bin")?;
    let account_no: String = r.try_get("account_no")?;
    let amount: i64 = r.try_get("amount_vnd")?;
    let status = parse_status(&r.try_get::<String, _>("status")?)?;
    let vietqr_payload = if method == "bank_app" && status.is_open() {
        crate::domain::banks::BankBin::parse(&bin)
            .ok()
            .and_then(|b| {
                crate::domain::vietqr::TransferQr {
                    bin: b,
                    account: account_no.clone(),
                    amount: crate::domain::Vnd::new(amount).ok(),
                    bill_number: None,
                    purpose: Some(crate::payouts::description(&code)),
                }
                .payload()
                .ok()
            })
    } else {
        None
    };
    Ok(RefundPayoutView {
        id: r.try_get("id")?,
        account: crate::payouts::masked_account(&bin, &account_no),
        bank_name: crate::payouts::bank_name(&bin),
        account_no,
        account_name: r.try_get("account_name")?,
        code,
        payment_code: r.try_get("payment_code")?,
        order_code: r.try_get("order_code")?,
        amount_vnd: amount,
        status,
        method,
        vietqr_payload,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        paid_at: r.try_get("paid_at")?,
    })
}

/// The refund payouts of an order (newest first).
pub async fn of_order(db: &Db, order: i64) -> Result<Vec<RefundPayoutView>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE rp.order_id = $1 ORDER BY rp.id DESC"
    )))
    .bind(order)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Refund payouts the treasurer still has to send from the bank app, and every open one.
pub async fn open(db: &Db) -> Result<Vec<RefundPayoutView>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE rp.status IN ('pending', 'sent') ORDER BY rp.id"
    )))
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(from_row).collect()
}

pub async fn by_code(db: &Db, code: &str) -> Result<RefundPayoutView> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} WHERE rp.code = $1")))
        .bind(code.trim().to_uppercase())
        .fetch_optional(&db.pool)
        .await?
        .ok_or(AppError::NotFound)?;
    from_row(&r)
}

/// Create the refund payout of what `target` may still get (less what payouts already
/// carry), to `account`, in the caller's transaction: the money moves from refunds due to
/// in transit. None when nothing is left to send.
pub async fn create(
    tx: &mut Tx,
    cfg: &Config,
    payment: i64,
    target: Target,
    request: Option<i64>,
    account: &PayoutAccount,
) -> Result<Option<i64>> {
    let amount = crate::payments::refunds::room_for_payout(tx, payment, target).await?;
    if amount <= 0 {
        return Ok(None);
    }
    let order = match target {
        Target::Order(o) => Some(o),
        Target::Payment => None,
    };
    let method = if cfg.payouts.payos.is_some() {
        "payos"
    } else {
        "bank_app"
    };
    let now = now_ms();
    let mut id = None;
    for _ in 0..5 {
        let code = crate::payouts::new_code_with(crate::payouts::REFUND_PREFIX);
        let r: Option<i64> = sqlx::query_scalar(
            "INSERT INTO refund_payouts (code, payment_id, order_id, request_id, method, amount_vnd,
               status, bank_bin, account_no, account_name, next_check_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9, $10, $11, $11)
             ON CONFLICT (code) DO NOTHING RETURNING id",
        )
        .bind(code)
        .bind(payment)
        .bind(order)
        .bind(request)
        .bind(method)
        .bind(amount)
        .bind(account.bank_bin.clone())
        .bind(account.account_no.clone())
        .bind(account.account_name.clone())
        .bind((method == "payos").then_some(now))
        .bind(now)
        .fetch_optional(&mut **tx)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.message().contains("refund_payouts_one_open") => {
                AppError::Conflict("Một khoản hoàn tiền cho đơn này đang được chuyển".into())
            }
            e => e.into(),
        })?;
        if r.is_some() {
            id = r;
            break;
        }
    }
    let id = id.ok_or_else(|| AppError::Internal(anyhow::anyhow!("no free refund code")))?;
    ledger::post(
        tx,
        &crate::ledger::refund_sent(amount),
        Refs {
            payment: Some(payment),
            order,
            ..Refs::default()
        },
        &format!("refund:sent:{id}"),
        "",
    )
    .await?;
    crate::notify::event(tx, crate::notify::NoticeKind::RefundSent, id).await?;
    Ok(Some(id))
}

/// Move a refund payout's status, guarded by the status it had. Returns (payment, order,
/// amount) when moved.
async fn move_to(
    tx: &mut Tx,
    id: i64,
    to: PayoutStatus,
    sets: &str,
    text: Option<&str>,
) -> Result<Option<(i64, Option<i64>, i64)>> {
    let current: Option<String> =
        sqlx::query_scalar("SELECT status FROM refund_payouts WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(current) = current else {
        return Ok(None);
    };
    let from = parse_status(&current)?;
    if from.transition(to).is_err() {
        return Ok(None);
    }
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE refund_payouts SET status = $1, updated_at = $2, next_check_at = NULL{sets}
         WHERE id = $3 AND status = $4 RETURNING payment_id, order_id, amount_vnd"
    )))
    .bind(to.as_str())
    .bind(now_ms())
    .bind(id)
    .bind(from.as_str())
    .bind(text.map(str::to_string))
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match r {
        Some(r) => Some((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)),
        None => None,
    })
}

/// payOS accepted it (pending → sent).
pub async fn mark_sent(tx: &mut Tx, id: i64, provider_id: &str) -> Result<bool> {
    Ok(move_to(
        tx,
        id,
        PayoutStatus::Sent,
        ", provider_id = $5",
        Some(provider_id),
    )
    .await?
    .is_some())
}

/// The refund reached the buyer's bank: recorded as the refund of its order (or payment).
pub async fn mark_paid(tx: &mut Tx, id: i64, reference: Option<&str>) -> Result<bool> {
    let Some((payment, order, amount)) = move_to(
        tx,
        id,
        PayoutStatus::Paid,
        ", paid_at = $2, bank_reference = COALESCE($5, bank_reference)",
        reference,
    )
    .await?
    else {
        return Ok(false);
    };
    let target = match order {
        Some(o) => Target::Order(o),
        None => Target::Payment,
    };
    crate::payments::refunds::record_payout_paid(tx, id, payment, target, amount).await?;
    crate::notify::event(tx, crate::notify::NoticeKind::RefundPaid, id).await?;
    Ok(true)
}

/// The refund did not go through (refused, wrong account, returned before it was seen
/// leaving): the money is owed again and the buyer is asked for another account.
pub async fn mark_failed(tx: &mut Tx, id: i64, reason: &str) -> Result<bool> {
    let Some((payment, order, amount)) = move_to(
        tx,
        id,
        PayoutStatus::Failed,
        ", failed_at = $2, last_error = $5",
        Some(reason),
    )
    .await?
    else {
        return Ok(false);
    };
    ledger::post(
        tx,
        &crate::ledger::refund_failed(amount),
        Refs {
            payment: Some(payment),
            order,
            ..Refs::default()
        },
        &format!("refund:failed:{id}"),
        reason,
    )
    .await?;
    crate::notify::event(tx, crate::notify::NoticeKind::RefundFailed, id).await?;
    Ok(true)
}

/// An outgoing transfer in the bank feed naming an open refund payout with its exact amount
/// confirms it (true). Another amount is left for the admin (false).
pub async fn confirm_from_feed(
    tx: &mut Tx,
    txn: i64,
    amount: i64,
    description: &str,
) -> Result<bool> {
    for code in crate::payouts::codes_with(description, crate::payouts::REFUND_PREFIX) {
        let r = sqlx::query(
            "SELECT id, amount_vnd FROM refund_payouts WHERE code = $1 AND status IN ('pending', 'sent')",
        )
        .bind(code)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(r) = r else { continue };
        let (id, expected): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
        if amount != expected {
            return Ok(false);
        }
        let reference: Option<String> =
            sqlx::query_scalar("SELECT provider_txn_id FROM bank_transactions WHERE id = $1")
                .bind(txn)
                .fetch_optional(&mut **tx)
                .await?;
        return mark_paid(tx, id, reference.as_deref()).await;
    }
    Ok(false)
}

/// An incoming transfer naming an open refund payout with its amount: the bank sent it
/// back before it was confirmed; the refund failed and is owed again.
pub async fn returned_from_feed(tx: &mut Tx, amount: i64, description: &str) -> Result<bool> {
    for code in crate::payouts::codes_with(description, crate::payouts::REFUND_PREFIX) {
        let r = sqlx::query(
            "SELECT id, amount_vnd FROM refund_payouts WHERE code = $1 AND status IN ('pending', 'sent')",
        )
        .bind(code)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(r) = r else { continue };
        let (id, expected): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
        if expected == amount {
            return mark_failed(
                tx,
                id,
                "Ngân hàng trả lại tiền (tài khoản nhận có thể sai hoặc đã đóng)",
            )
            .await;
        }
    }
    Ok(false)
}

/// The treasurer sent a bank-app refund and records the bank's reference (audited).
pub async fn admin_mark_paid(
    db: &Db,
    admin: &User,
    code: &str,
    reference: &str,
) -> Result<RefundPayoutView> {
    admin.require_admin()?;
    let reference = crate::domain::text::clean_line(reference, "mã giao dịch ngân hàng", 100)
        .map_err(|m| AppError::field("reference", m))?;
    let p = by_code(db, code).await?;
    let mut tx = db.begin().await?;
    if !mark_paid(&mut tx, p.id, Some(&reference)).await? {
        return Err(AppError::Conflict(
            "Khoản hoàn này không còn chờ xác nhận".into(),
        ));
    }
    crate::accounts::store::audit_action(
        &mut tx,
        admin,
        "refund_payout_paid",
        &format!("refund_payout:{}", p.code),
        &format!("{} · {reference}", format_vnd(p.amount_vnd)),
    )
    .await?;
    tx.commit().await?;
    by_code(db, code).await
}

/// The treasurer could not send it (audited): owed again, the buyer asked for another account.
pub async fn admin_mark_failed(
    db: &Db,
    admin: &User,
    code: &str,
    reason: &str,
) -> Result<RefundPayoutView> {
    admin.require_admin()?;
    let reason = crate::domain::text::clean_line(reason, "lý do", 200)
        .map_err(|m| AppError::field("reason", m))?;
    if reason.chars().count() < 5 {
        return Err(AppError::field(
            "reason",
            "ghi lý do khoản hoàn không thành công (ít nhất 5 ký tự)",
        ));
    }
    let p = by_code(db, code).await?;
    let mut tx = db.begin().await?;
    if !mark_failed(&mut tx, p.id, &reason).await? {
        return Err(AppError::Conflict(
            "Khoản hoàn này không còn đang chuyển".into(),
        ));
    }
    crate::accounts::store::audit_action(
        &mut tx,
        admin,
        "refund_payout_failed",
        &format!("refund_payout:{}", p.code),
        &reason,
    )
    .await?;
    tx.commit().await?;
    by_code(db, code).await
}

/// Refunds to buyers as a book the payOS follow-up sends and asks about
/// (`payouts::payos::run_once`).
pub struct RefundBook;

#[async_trait::async_trait]
impl crate::payouts::payos::Book for RefundBook {
    fn table(&self) -> &'static str {
        "refund_payouts"
    }

    async fn accepted(&self, tx: &mut Tx, id: i64, provider_id: &str) -> Result<()> {
        mark_sent(tx, id, provider_id).await.map(|_| ())
    }

    async fn paid(&self, tx: &mut Tx, id: i64) -> Result<bool> {
        mark_paid(tx, id, None).await
    }

    async fn failed(&self, tx: &mut Tx, id: i64, why: &str) -> Result<bool> {
        mark_failed(tx, id, why).await
    }
}

/// Every book the payOS follow-up job runs: sellers' payouts, then refunds to buyers.
pub const PAYOS_BOOKS: &[&dyn crate::payouts::payos::Book] =
    &[&crate::payouts::payos::ShopBook, &RefundBook];
