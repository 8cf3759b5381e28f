//! Money in: every verified transaction is stored once per (provider, transaction id) and
//! matched to a payment in the same transaction; amounts only ever add up under the
//! payment's row lock. Unmatched money waits for an admin; nothing is dropped.

use serde::Serialize;
use sqlx::Row;

use super::code::{PaymentCode, candidates};
use super::state::PaymentStatus;
use crate::accounts::User;
use crate::bankfeed::{TxnStatus, set_txn_status};
use crate::db::{Db, Tx};
use crate::domain::now_ms;
use crate::error::{AppError, Result};
use crate::ledger::store as ledger;
use crate::orders::store::{lines_in_status, release, reserve, set_checkout_orders};
use crate::orders::{Actor, OrderStatus};

pub use crate::bankfeed::{Hint, Incoming, Provider};

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// The same (provider, id) was already recorded: nothing changes.
    Duplicate,
    Ignored,
    Unmatched,
    Applied {
        payment: String,
        status: PaymentStatus,
    },
}

/// Move a payment's status, checked by `PaymentStatus::transition`, under the payment's lock.
pub(crate) async fn set_payment_status(
    tx: &mut Tx,
    payment: i64,
    from: PaymentStatus,
    to: PaymentStatus,
) -> Result<()> {
    from.transition(to)
        .map_err(|e| AppError::Conflict(e.to_string()))?;
    let n = sqlx::query(
        "UPDATE payments SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4",
    )
    .bind(to.as_str())
    .bind(now_ms())
    .bind(payment)
    .bind(from.as_str())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Err(AppError::Conflict(
            "thanh toán vừa thay đổi, vui lòng tải lại".into(),
        ));
    }
    Ok(())
}

async fn find_payment(tx: &mut Tx, t: &Incoming) -> Result<Option<i64>> {
    match &t.hint {
        Some(Hint::OrderCode(n)) => {
            let id: Option<i64> =
                sqlx::query_scalar("SELECT id FROM payments WHERE order_code = $1")
                    .bind(*n)
                    .fetch_optional(&mut **tx)
                    .await?;
            if id.is_some() {
                return Ok(id);
            }
        }
        Some(Hint::Code(c)) => {
            let id: Option<i64> = sqlx::query_scalar("SELECT id FROM payments WHERE code = $1")
                .bind(c.to_uppercase())
                .fetch_optional(&mut **tx)
                .await?;
            if id.is_some() {
                return Ok(id);
            }
        }
        None => {}
    }
    for code in candidates(&t.description) {
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM payments WHERE code = $1")
            .bind(code.as_str().to_string())
            .fetch_optional(&mut **tx)
            .await?;
        if id.is_some() {
            return Ok(id);
        }
    }
    Ok(None)
}

pub(crate) struct Locked {
    pub code: String,
    pub status: PaymentStatus,
    pub amount: i64,
    pub paid: i64,
    pub expires_at: i64,
    pub checkout_id: i64,
}

fn parse_status(s: &str) -> Result<PaymentStatus> {
    PaymentStatus::parse(s)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("unknown payment status {s:?}")))
}

/// Take the payment's row lock (PostgreSQL; SQLite already holds its write lock) and read it.
pub(crate) async fn lock_payment(tx: &mut Tx, payment_id: i64) -> Result<Locked> {
    sqlx::query("UPDATE payments SET updated_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(payment_id)
        .execute(&mut **tx)
        .await?;
    let r = sqlx::query(
        "SELECT code, status, amount_vnd, amount_paid_vnd, expires_at, checkout_id FROM payments WHERE id = $1",
    )
    .bind(payment_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Locked {
        code: r.try_get("code")?,
        status: parse_status(&r.try_get::<String, _>("status")?)?,
        amount: r.try_get("amount_vnd")?,
        paid: r.try_get("amount_paid_vnd")?,
        expires_at: r.try_get("expires_at")?,
        checkout_id: r.try_get("checkout_id")?,
    })
}

/// Add money to a payment and move it (and its orders) on. Returns (code, new status).
pub async fn apply_money(
    tx: &mut Tx,
    payment_id: i64,
    amount: i64,
) -> Result<(String, PaymentStatus)> {
    use PaymentStatus as P;
    let p = lock_payment(tx, payment_id).await?;
    let now = now_ms();
    let paid = p
        .paid
        .checked_add(amount)
        .ok_or_else(|| AppError::BadRequest("số tiền vượt giới hạn".into()))?;
    let late = now > p.expires_at;
    let orders_in = |status: OrderStatus| {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM orders WHERE checkout_id = $1 AND status = $2",
        )
        .bind(p.checkout_id)
        .bind(status.as_str())
    };
    let open_orders = orders_in(OrderStatus::PendingPayment)
        .fetch_one(&mut **tx)
        .await?;
    let expired_orders = orders_in(OrderStatus::Expired).fetch_one(&mut **tx).await?;
    let status = match p.status {
        // Every order was cancelled by its seller: nothing is left to pay for, so the money
        // is owed back (and shows in reconciliation), never "paid" for a cancelled order.
        P::Pending | P::Underpaid | P::Expired if open_orders == 0 && expired_orders == 0 => {
            set_checkout_orders(
                tx,
                p.checkout_id,
                OrderStatus::Cancelled,
                OrderStatus::RefundDue,
                Actor::System,
                None,
            )
            .await?;
            P::RefundDue
        }
        P::Pending | P::Underpaid if paid >= p.amount => {
            // Not yet swept: the stock is still reserved, so even a late payment is honoured.
            set_checkout_orders(
                tx,
                p.checkout_id,
                OrderStatus::PendingPayment,
                OrderStatus::Paid,
                Actor::System,
                None,
            )
            .await?;
            P::Paid
        }
        P::Pending | P::Underpaid => P::Underpaid,
        P::Expired if paid >= p.amount => {
            // The sweep released the stock: take it again if it is still there.
            let to = if reserve_all(tx, p.checkout_id).await? {
                OrderStatus::Paid
            } else {
                OrderStatus::RefundDue
            };
            set_checkout_orders(
                tx,
                p.checkout_id,
                OrderStatus::Expired,
                to,
                Actor::System,
                None,
            )
            .await?;
            if to == OrderStatus::Paid {
                P::Paid
            } else {
                P::RefundDue
            }
        }
        P::Expired => {
            set_checkout_orders(
                tx,
                p.checkout_id,
                OrderStatus::Expired,
                OrderStatus::RefundDue,
                Actor::System,
                None,
            )
            .await?;
            P::RefundDue
        }
        P::Paid => P::Paid,
        // Money for something already being refunded (or refunded) is owed back too.
        P::RefundDue | P::Refunded => P::RefundDue,
    };
    p.status
        .transition(status)
        .map_err(|e| AppError::Internal(anyhow::anyhow!(e.to_string())))?;
    notify_payment_change(tx, payment_id, p.checkout_id, p.status, status).await?;
    sqlx::query(
        "UPDATE payments SET amount_paid_vnd = $1, status = $2, late = CASE WHEN $3 = 1 THEN 1 ELSE late END,
           paid_at = CASE WHEN $6 = 1 AND paid_at IS NULL THEN $4 ELSE paid_at END, updated_at = $4
         WHERE id = $5",
    )
    .bind(paid)
    .bind(status.as_str())
    .bind(i64::from(late))
    .bind(now)
    .bind(payment_id)
    .bind(i64::from(status == P::Paid))
    .execute(&mut **tx)
    .await?;
    crate::payments::settle::settle_payment(tx, payment_id).await?;
    Ok((p.code, status))
}

/// Outbox events for a payment's change, in the same transaction: every order that just
/// became paid is announced to its seller (and buyer); money owed back alerts the admins.
async fn notify_payment_change(
    tx: &mut Tx,
    payment_id: i64,
    checkout_id: i64,
    before: PaymentStatus,
    after: PaymentStatus,
) -> Result<()> {
    if after == PaymentStatus::Paid && before != PaymentStatus::Paid {
        let paid: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM orders WHERE checkout_id = $1 AND status = $2 ORDER BY id",
        )
        .bind(checkout_id)
        .bind(OrderStatus::Paid.as_str())
        .fetch_all(&mut **tx)
        .await?;
        for id in paid {
            crate::notify::event(tx, crate::notify::NoticeKind::OrderPaid, id).await?;
        }
    }
    if after == PaymentStatus::RefundDue {
        crate::notify::event(tx, crate::notify::NoticeKind::RefundDue, payment_id).await?;
    }
    Ok(())
}

/// Re-reserve every line of an expired checkout, all or nothing (savepoint-free: on the
/// first shortage the lines already taken are given back).
async fn reserve_all(tx: &mut Tx, checkout_id: i64) -> Result<bool> {
    let lines = lines_in_status(tx, checkout_id, OrderStatus::Expired).await?;
    let mut taken = Vec::new();
    for (product, qty) in &lines {
        if reserve(tx, *product, *qty).await? {
            taken.push((*product, *qty));
        } else {
            for (p, q) in taken {
                release(tx, p, q).await?;
            }
            return Ok(false);
        }
    }
    Ok(true)
}

/// Close an unpaid payment: give its stock back and move its orders to `orders_to`
/// (expired by the sweep, cancelled when a provider link could not be made). Money already
/// received is owed back. Runs at most once per payment thanks to the status guard.
pub async fn close_unpaid(db: &Db, payment_id: i64, orders_to: OrderStatus) -> Result<bool> {
    let mut tx = db.begin().await?;
    let p = lock_payment(&mut tx, payment_id).await?;
    if !p.status.is_open() {
        tx.commit().await?;
        return Ok(false);
    }
    let open: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM orders WHERE checkout_id = $1 AND status = 'pending_payment' ORDER BY id",
    )
    .bind(p.checkout_id)
    .fetch_all(&mut *tx)
    .await?;
    for (product, qty) in
        lines_in_status(&mut tx, p.checkout_id, OrderStatus::PendingPayment).await?
    {
        release(&mut tx, product, qty).await?;
    }
    set_checkout_orders(
        &mut tx,
        p.checkout_id,
        OrderStatus::PendingPayment,
        orders_to,
        Actor::System,
        None,
    )
    .await?;
    if p.paid > 0 {
        set_checkout_orders(
            &mut tx,
            p.checkout_id,
            orders_to,
            OrderStatus::RefundDue,
            Actor::System,
            None,
        )
        .await?;
    }
    // Only the orders this close moved are announced (cancelled ones were already).
    for id in open {
        crate::notify::event(&mut tx, crate::notify::NoticeKind::OrderClosed, id).await?;
    }
    let status = if p.paid > 0 {
        PaymentStatus::RefundDue
    } else {
        PaymentStatus::Expired
    };
    if p.paid > 0 {
        crate::notify::event(&mut tx, crate::notify::NoticeKind::RefundDue, payment_id).await?;
    }
    set_payment_status(&mut tx, payment_id, p.status, status).await?;
    crate::payments::settle::settle_payment(&mut tx, payment_id).await?;
    tx.commit().await?;
    Ok(true)
}

/// A seller (or admin) cancels an order nobody has paid for yet. Under the payment's lock:
/// the order's stock goes back once, the payment now asks only for the other orders of the
/// checkout, and when no order is left the payment closes — money arriving later for it is
/// owed back (`apply_money`).
pub async fn cancel_unpaid_order(
    tx: &mut Tx,
    order: &crate::orders::store::OrderView,
    actor: Actor,
    user: Option<i64>,
) -> Result<()> {
    let payment_id: i64 = sqlx::query_scalar("SELECT id FROM payments WHERE checkout_id = $1")
        .bind(order.checkout_id)
        .fetch_one(&mut **tx)
        .await?;
    let p = lock_payment(tx, payment_id).await?;
    // Guarded by `WHERE status = pending_payment`: an order paid a moment ago is not cancelled.
    crate::orders::store::set_status(
        tx,
        order.id,
        OrderStatus::PendingPayment,
        OrderStatus::Cancelled,
        actor,
        user,
    )
    .await?;
    for l in &order.lines {
        release(tx, l.product_id, l.quantity).await?;
    }
    crate::notify::event(tx, crate::notify::NoticeKind::OrderClosed, order.id).await?;
    let remaining: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM orders WHERE checkout_id = $1 AND status = 'pending_payment'",
    )
    .bind(order.checkout_id)
    .fetch_one(&mut **tx)
    .await?;
    let now = now_ms();
    if remaining > 0 {
        sqlx::query(
            "UPDATE payments SET amount_vnd = amount_vnd - $1, updated_at = $2 WHERE id = $3",
        )
        .bind(order.total_vnd)
        .bind(now)
        .bind(payment_id)
        .execute(&mut **tx)
        .await?;
        if p.paid > 0 {
            // What already arrived may now cover the orders that are left.
            apply_money(tx, payment_id, 0).await?;
        }
    } else if p.paid > 0 {
        set_checkout_orders(
            tx,
            p.checkout_id,
            OrderStatus::Cancelled,
            OrderStatus::RefundDue,
            Actor::System,
            None,
        )
        .await?;
        set_payment_status(tx, payment_id, p.status, PaymentStatus::RefundDue).await?;
        sqlx::query("UPDATE payments SET cancelled_at = $1 WHERE id = $2")
            .bind(now)
            .bind(payment_id)
            .execute(&mut **tx)
            .await?;
        crate::notify::event(tx, crate::notify::NoticeKind::RefundDue, payment_id).await?;
    } else {
        set_payment_status(tx, payment_id, p.status, PaymentStatus::Expired).await?;
        sqlx::query("UPDATE payments SET cancelled_at = $1 WHERE id = $2")
            .bind(now)
            .bind(payment_id)
            .execute(&mut **tx)
            .await?;
    }
    crate::payments::settle::settle_payment(tx, payment_id).await
}

/// Expire every payment past its time; returns how many were closed.
pub async fn expire_due(db: &Db) -> Result<usize> {
    let due: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM payments WHERE status IN ('pending', 'underpaid') AND expires_at <= $1 ORDER BY id",
    )
    .bind(now_ms())
    .fetch_all(&db.pool)
    .await?;
    let mut n = 0;
    for id in due {
        if close_unpaid(db, id, OrderStatus::Expired).await? {
            n += 1;
        }
    }
    Ok(n)
}

/// A payment as stored (the API shows `web::json::PaymentJson`).
#[derive(Debug, Clone)]
pub struct PaymentView {
    pub id: i64,
    pub code: String,
    pub order_code: i64,
    pub method: String,
    pub status: PaymentStatus,
    pub amount_vnd: i64,
    pub amount_paid_vnd: i64,
    pub amount_remaining_vnd: i64,
    pub overpaid_vnd: i64,
    pub refunded_vnd: i64,
    pub late: bool,
    /// Closed because its seller(s) cancelled every order before money arrived.
    pub cancelled: bool,
    pub expires_at: i64,
    pub paid_at: Option<i64>,
    pub checkout_id: i64,
    pub checkout_url: Option<String>,
    pub provider_qr: Option<String>,
}

const PAYMENT_SELECT: &str =
    "SELECT id, code, order_code, method, status, amount_vnd, amount_paid_vnd, refunded_vnd,
        late, cancelled_at, expires_at, paid_at, checkout_id, checkout_url, provider_qr FROM payments";

fn payment_from_row(r: &sqlx::any::AnyRow) -> Result<PaymentView> {
    let amount: i64 = r.try_get("amount_vnd")?;
    let paid: i64 = r.try_get("amount_paid_vnd")?;
    Ok(PaymentView {
        id: r.try_get("id")?,
        code: r.try_get("code")?,
        order_code: r.try_get("order_code")?,
        method: r.try_get("method")?,
        status: parse_status(&r.try_get::<String, _>("status")?)?,
        amount_vnd: amount,
        amount_paid_vnd: paid,
        amount_remaining_vnd: (amount - paid).max(0),
        overpaid_vnd: (paid - amount).max(0),
        refunded_vnd: r.try_get("refunded_vnd")?,
        late: r.try_get::<i64, _>("late")? == 1,
        cancelled: r.try_get::<Option<i64>, _>("cancelled_at")?.is_some(),
        expires_at: r.try_get("expires_at")?,
        paid_at: r.try_get("paid_at")?,
        checkout_id: r.try_get("checkout_id")?,
        checkout_url: r.try_get("checkout_url")?,
        provider_qr: r.try_get("provider_qr")?,
    })
}

pub async fn payment_by_code(db: &Db, code: &str) -> Result<PaymentView> {
    let code = PaymentCode::parse(code).map_err(|_| AppError::NotFound)?;
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{PAYMENT_SELECT} WHERE code = $1"
    )))
    .bind(code.as_str().to_string())
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    payment_from_row(&r)
}

pub async fn payment_by_id(db: &Db, id: i64) -> Result<PaymentView> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{PAYMENT_SELECT} WHERE id = $1"
    )))
    .bind(id)
    .fetch_one(&db.pool)
    .await?;
    payment_from_row(&r)
}

pub async fn payment_of_checkout(db: &Db, checkout_id: i64) -> Result<PaymentView> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{PAYMENT_SELECT} WHERE checkout_id = $1"
    )))
    .bind(checkout_id)
    .fetch_one(&db.pool)
    .await?;
    payment_from_row(&r)
}

/// Payments that need an admin's eye, by reason.
pub async fn payments_needing_attention(db: &Db) -> Result<Vec<(String, PaymentView)>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{PAYMENT_SELECT} WHERE status IN ('underpaid', 'refund_due') OR late = 1
            OR (status = 'paid' AND amount_paid_vnd - amount_vnd > refunded_vnd
                - (SELECT COALESCE(SUM(o.refunded_vnd), 0) FROM orders o WHERE o.checkout_id = payments.checkout_id))
         ORDER BY updated_at DESC LIMIT 500"
    )))
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let p = payment_from_row(r)?;
        // Order-level refunds are not the overpayment's.
        let orders_refunded: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(refunded_vnd), 0) AS BIGINT) FROM orders WHERE checkout_id = $1",
        )
        .bind(p.checkout_id)
        .fetch_one(&db.pool)
        .await?;
        let reason = match p.status {
            PaymentStatus::Underpaid => "underpaid",
            PaymentStatus::RefundDue => "refund_due",
            _ if p.overpaid_vnd > p.refunded_vnd - orders_refunded => "overpaid",
            _ => "late",
        };
        out.push((reason.to_string(), p));
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TxnView {
    pub id: i64,
    pub provider: String,
    pub provider_txn_id: String,
    pub amount_vnd: i64,
    pub description: String,
    pub reference: Option<String>,
    pub status: String,
    pub received_at: i64,
}

pub async fn unmatched_transactions(db: &Db) -> Result<Vec<TxnView>> {
    transactions_where(db, "status = 'unmatched'").await
}

/// Money that left the collecting account and confirms no payout, waiting for the admin.
pub async fn unexplained_outflows(db: &Db) -> Result<Vec<TxnView>> {
    transactions_where(db, "outflow = 'unexplained'").await
}

async fn transactions_where(db: &Db, cond: &'static str) -> Result<Vec<TxnView>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, provider, provider_txn_id, amount_vnd, description, reference, status, received_at
         FROM bank_transactions WHERE {cond} ORDER BY received_at DESC, id DESC LIMIT 500"
    )))
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TxnView {
                id: r.try_get("id")?,
                provider: r.try_get("provider")?,
                provider_txn_id: r.try_get("provider_txn_id")?,
                amount_vnd: r.try_get("amount_vnd")?,
                description: r.try_get("description")?,
                reference: r.try_get("reference")?,
                status: r.try_get("status")?,
                received_at: r.try_get("received_at")?,
            })
        })
        .collect()
}

pub use crate::accounts::store::audit_action as audit;

/// Money in, stored by `bankfeed::store` as `txn`: matched to its payment (the provider's
/// hint, then codes in the description) and counted under the payment's lock, or kept
/// unmatched for an admin. In the caller's transaction, with the ledger's journal.
pub async fn money_in(tx: &mut Tx, txn_row: i64, t: &Incoming) -> Result<Outcome> {
    let Some(payment_id) = find_payment(tx, t).await? else {
        ledger::post(
            tx,
            &crate::ledger::transfer_unmatched(t.amount),
            ledger::Refs::txn(txn_row),
            &ledger::keys::transfer(txn_row),
            "",
        )
        .await?;
        crate::notify::event(tx, crate::notify::NoticeKind::UnmatchedTransfer, txn_row).await?;
        tracing::warn!(
            provider = t.provider.as_str(),
            amount = t.amount,
            "unmatched transfer kept for reconciliation"
        );
        return Ok(Outcome::Unmatched);
    };
    ledger::post(
        tx,
        &crate::ledger::transfer_in(payment_id, t.amount),
        ledger::Refs {
            payment: Some(payment_id),
            txn: Some(txn_row),
            ..Default::default()
        },
        &ledger::keys::transfer(txn_row),
        "",
    )
    .await?;
    let (code, status) = apply_money(tx, payment_id, t.amount).await?;
    sqlx::query("UPDATE bank_transactions SET payment_id = $1 WHERE id = $2")
        .bind(payment_id)
        .bind(txn_row)
        .execute(&mut **tx)
        .await?;
    set_txn_status(tx, txn_row, TxnStatus::Unmatched, TxnStatus::Matched).await?;
    tracing::info!(payment = %code, status = %status.as_str(), "transfer matched");
    Ok(Outcome::Applied {
        payment: code,
        status,
    })
}

/// An admin assigns an unmatched transfer to a payment; it then counts like any match.
pub async fn assign(db: &Db, admin: &User, txn_id: i64, payment_code: &str) -> Result<Outcome> {
    admin.require_admin()?;
    let code = PaymentCode::parse(payment_code).map_err(|m| AppError::field("payment_code", m))?;
    let mut tx = db.begin().await?;
    let payment_id: i64 = sqlx::query_scalar("SELECT id FROM payments WHERE code = $1")
        .bind(code.as_str().to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| AppError::field("payment_code", "không có thanh toán với mã này"))?;
    set_txn_status(&mut tx, txn_id, TxnStatus::Unmatched, TxnStatus::Matched).await?;
    sqlx::query("UPDATE bank_transactions SET payment_id = $1 WHERE id = $2")
        .bind(payment_id)
        .bind(txn_id)
        .execute(&mut *tx)
        .await?;
    let amount: i64 = sqlx::query_scalar("SELECT amount_vnd FROM bank_transactions WHERE id = $1")
        .bind(txn_id)
        .fetch_one(&mut *tx)
        .await?;
    ledger::post(
        &mut tx,
        &crate::ledger::transfer_assigned(payment_id, amount),
        ledger::Refs {
            payment: Some(payment_id),
            txn: Some(txn_id),
            ..Default::default()
        },
        &format!("assign:txn:{txn_id}"),
        "",
    )
    .await?;
    let (code, status) = apply_money(&mut tx, payment_id, amount).await?;
    audit(
        &mut tx,
        admin,
        "assign_transaction",
        &format!("txn:{txn_id}"),
        &format!(
            "{} → thanh toán {code} ({})",
            crate::domain::money::format_vnd(amount),
            status.label()
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(Outcome::Applied {
        payment: code,
        status,
    })
}

/// An admin records that an unmatched transfer was sent back.
pub async fn refund_transaction(db: &Db, admin: &User, txn_id: i64) -> Result<()> {
    admin.require_admin()?;
    let mut tx = db.begin().await?;
    set_txn_status(&mut tx, txn_id, TxnStatus::Unmatched, TxnStatus::Refunded).await?;
    let amount: i64 = sqlx::query_scalar("SELECT amount_vnd FROM bank_transactions WHERE id = $1")
        .bind(txn_id)
        .fetch_one(&mut *tx)
        .await?;
    ledger::post(
        &mut tx,
        &crate::ledger::suspense_returned(amount),
        ledger::Refs::txn(txn_id),
        &ledger::keys::returned(txn_id),
        "",
    )
    .await?;
    audit(
        &mut tx,
        admin,
        "refund_transaction",
        &format!("txn:{txn_id}"),
        "",
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// An admin records a refund on a payment: what it holds that no order is owed (all of a
/// refund-due payment, the overpaid part of a paid one), through `refunds::record`.
pub async fn refund_payment(db: &Db, admin: &User, code: &str) -> Result<PaymentView> {
    admin.require_admin()?;
    let p = payment_by_code(db, code).await?;
    super::refunds::record(db, admin, p.id, super::refunds::Target::Payment).await?;
    payment_by_code(db, code).await
}

/// An order cancelled after payment (or never paid in full) gets its money back, as far as
/// the payment received it, through `refunds::record`.
pub async fn refund_order(db: &Db, admin: &User, order_code: &str) -> Result<()> {
    admin.require_admin()?;
    let order = crate::orders::store::order_by_code(db, order_code).await?;
    let payment: i64 = sqlx::query_scalar("SELECT id FROM payments WHERE checkout_id = $1")
        .bind(order.checkout_id)
        .fetch_one(&db.pool)
        .await?;
    super::refunds::record(db, admin, payment, super::refunds::Target::Order(order.id)).await?;
    Ok(())
}

/// What an audited action is called on the admin pages (the log keeps the stable code).
pub fn audit_action_words(action: &str) -> String {
    match action {
        "assign_transaction" => "Gán giao dịch cho thanh toán",
        "refund_transaction" => "Hoàn giao dịch",
        "refund_payment" => "Hoàn tiền thanh toán",
        "refund_order" => "Hoàn tiền đơn hàng",
        "payout_account_changed" => "Đổi tài khoản nhận tiền",
        "payout_run" => "Tạo đợt chi trả",
        "payout_marked_paid" => "Xác nhận đã chi trả",
        "payout_marked_failed" => "Ghi nhận chi trả không thành công",
        "outflow_explained" => "Giải thích tiền ra",
        other => return other.to_string(),
    }
    .to_string()
}

/// `txn:3` → "Giao dịch #3", `payment:CL…` → "Thanh toán CL…", and so on.
pub fn audit_subject_words(subject: &str) -> String {
    let Some((kind, id)) = subject.split_once(':') else {
        return subject.to_string();
    };
    match kind {
        "txn" => format!("Giao dịch #{id}"),
        "payment" => format!("Thanh toán {id}"),
        "order" => format!("Đơn hàng {id}"),
        "shop" => format!("Cửa hàng {id}"),
        "run" => format!("Đợt chi trả {id}"),
        "payout" => format!("Khoản chi trả {id}"),
        _ => subject.to_string(),
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub actor: Option<String>,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub at: i64,
}

pub async fn recent_audit(db: &Db, limit: i64) -> Result<Vec<AuditEntry>> {
    let rows = sqlx::query(
        "SELECT u.display_name AS actor, a.action, a.subject, a.detail, a.at FROM audit_log a
         LEFT JOIN users u ON u.id = a.actor_user_id ORDER BY a.at DESC, a.id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditEntry {
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                subject: r.try_get("subject")?,
                detail: r.try_get("detail")?,
                at: r.try_get("at")?,
            })
        })
        .collect()
}

/// Orders cancelled by their seller after payment, not yet refunded.
pub async fn orders_refund_due(db: &Db) -> Result<Vec<crate::orders::store::OrderView>> {
    let codes: Vec<String> = sqlx::query_scalar(
        "SELECT o.code FROM orders o JOIN payments p ON p.checkout_id = o.checkout_id
         WHERE o.status = 'refund_due' AND p.status = 'paid' ORDER BY o.updated_at DESC LIMIT 500",
    )
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::new();
    for c in codes {
        out.push(crate::orders::store::order_by_code(db, &c).await?);
    }
    Ok(out)
}
