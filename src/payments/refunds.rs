//! The one way a refund is recorded. What may still be refunded is read from the ledger
//! (money received for the payment − refunds already paid for it), shared out per order:
//! an order's refund never exceeds its own total less what it already got back, nor what
//! the payment still holds once the orders still being served keep their share. Every
//! refund — the admin's reconciliation page, the API, any later path — calls `record`, and
//! the reconciliation page and API show `refundable`.

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::state::PaymentStatus;
use crate::accounts::User;
use crate::db::{Db, Tx};
use crate::domain::money::format_vnd;
use crate::domain::now_ms;
use crate::error::{AppError, Result};
use crate::ledger::store::{self as ledger, Refs};
use crate::orders::{Actor, OrderStatus};

/// What a refund is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Whatever the payment holds that no order of it is owed: all of a refund-due payment,
    /// or an overpayment on a paid one.
    Payment,
    /// One order's money (an order cancelled after payment, or one never paid in full).
    Order(i64),
}

/// An order's share of a payment's refundable money.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrderRefundable {
    pub order_code: String,
    pub status: OrderStatus,
    pub total_vnd: i64,
    pub refunded_vnd: i64,
    /// What a refund of this order may record now (0 unless it waits for its refund).
    pub refundable_vnd: i64,
}

/// What a payment may still give back, from the ledger.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Refundable {
    pub payment_code: String,
    pub status: PaymentStatus,
    /// Money received for the payment (transfers in, transfers assigned to it).
    pub received_vnd: i64,
    /// Refunds recorded for it, at payment and order level.
    pub refunded_vnd: i64,
    /// What a payment-level refund may record now.
    pub payment_refundable_vnd: i64,
    pub orders: Vec<OrderRefundable>,
}

impl Refundable {
    /// The ceiling of any refund: received − refunded.
    pub fn left_vnd(&self) -> i64 {
        (self.received_vnd - self.refunded_vnd).max(0)
    }

    pub fn for_order(&self, code: &str) -> i64 {
        self.orders
            .iter()
            .find(|o| o.order_code == code)
            .map_or(0, |o| o.refundable_vnd)
    }
}

/// Orders whose money stays with their shop (still being served).
fn is_live(s: OrderStatus) -> bool {
    matches!(
        s,
        OrderStatus::Paid | OrderStatus::Accepted | OrderStatus::Shipped | OrderStatus::Delivered
    )
}

/// The amounts as pure arithmetic: (payment-level refundable, per-order refundable).
/// `orders` are (status, total, refunded).
pub fn share(
    status: PaymentStatus,
    received: i64,
    refunded: i64,
    orders: &[(OrderStatus, i64, i64)],
) -> (i64, Vec<i64>) {
    let left = (received - refunded).max(0);
    let live: i64 = orders
        .iter()
        .filter(|(s, _, _)| is_live(*s))
        .map(|(_, t, r)| (t - r).max(0))
        .sum();
    let waiting: i64 = orders
        .iter()
        .filter(|(s, _, _)| *s == OrderStatus::RefundDue)
        .map(|(_, t, r)| (t - r).max(0))
        .sum();
    // Money no order being served keeps.
    let free = (left - live).max(0);
    let per_order = orders
        .iter()
        .map(|(s, t, r)| {
            if *s == OrderStatus::RefundDue {
                (t - r).max(0).min(free)
            } else {
                0
            }
        })
        .collect();
    let payment = match status {
        // Nothing is left to pay for: all of it goes back (its orders with it).
        PaymentStatus::RefundDue | PaymentStatus::Refunded | PaymentStatus::Expired => free,
        // Only what no order is owed: the overpayment.
        PaymentStatus::Paid => (free - waiting).max(0),
        // Still collecting: nothing goes back yet.
        PaymentStatus::Pending | PaymentStatus::Underpaid => 0,
    };
    (payment, per_order)
}

async fn orders_of(
    conn: &mut AnyConnection,
    checkout: i64,
) -> Result<Vec<(i64, String, OrderStatus, i64, i64)>> {
    let rows = sqlx::query(
        "SELECT id, code, status, total_vnd, refunded_vnd FROM orders WHERE checkout_id = $1 ORDER BY id",
    )
    .bind(checkout)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let status: String = r.try_get("status")?;
            Ok((
                r.try_get("id")?,
                r.try_get("code")?,
                OrderStatus::parse(&status).ok_or_else(|| {
                    AppError::Internal(anyhow::anyhow!("unknown order status {status}"))
                })?,
                r.try_get("total_vnd")?,
                r.try_get("refunded_vnd")?,
            ))
        })
        .collect()
}

/// What the payment may still give back, read on `conn` (the caller's transaction, holding
/// the payment's lock, when it is about to record a refund).
pub async fn refundable_on(conn: &mut AnyConnection, payment: i64) -> Result<Refundable> {
    let r = sqlx::query("SELECT code, status, checkout_id FROM payments WHERE id = $1")
        .bind(payment)
        .fetch_one(&mut *conn)
        .await?;
    let status: String = r.try_get("status")?;
    let status = PaymentStatus::parse(&status)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("unknown payment status {status}")))?;
    let received = ledger::payment_received(conn, payment).await?;
    let refunded = ledger::payment_refunded(conn, payment).await?;
    let orders = orders_of(conn, r.try_get("checkout_id")?).await?;
    let (payment_refundable, per_order) = share(
        status,
        received,
        refunded,
        &orders
            .iter()
            .map(|(_, _, s, t, f)| (*s, *t, *f))
            .collect::<Vec<_>>(),
    );
    Ok(Refundable {
        payment_code: r.try_get("code")?,
        status,
        received_vnd: received,
        refunded_vnd: refunded,
        payment_refundable_vnd: payment_refundable,
        orders: orders
            .into_iter()
            .zip(per_order)
            .map(
                |((_, code, status, total, refunded), refundable)| OrderRefundable {
                    order_code: code,
                    status,
                    total_vnd: total,
                    refunded_vnd: refunded,
                    refundable_vnd: refundable,
                },
            )
            .collect(),
    })
}

/// What the payment may still give back (pages and the API).
pub async fn refundable(db: &Db, payment: i64) -> Result<Refundable> {
    let mut conn = db.pool.acquire().await?;
    refundable_on(&mut conn, payment).await
}

fn nothing_left(r: &Refundable, what: &str) -> AppError {
    AppError::Conflict(format!(
        "Không còn tiền để hoàn cho {what}: thanh toán {} đã nhận {}, đã hoàn {}.",
        r.payment_code,
        format_vnd(r.received_vnd),
        format_vnd(r.refunded_vnd)
    ))
}

/// Record a refund paid back to the buyer, by an admin, in one transaction under the
/// payment's lock: the amount is what `refundable` allows for the target (never more), the
/// ledger posts it with an event key that counts the payment's refunds (so the same refund
/// cannot be posted twice), the payment and order records follow, and it is audited.
/// Returns the amount recorded.
pub async fn record(db: &Db, admin: &User, payment: i64, target: Target) -> Result<i64> {
    admin.require_admin()?;
    let mut tx = db.begin().await?;
    let amount = record_in(&mut tx, admin, payment, target).await?;
    tx.commit().await?;
    Ok(amount)
}

async fn record_in(tx: &mut Tx, admin: &User, payment: i64, target: Target) -> Result<i64> {
    let locked = super::store::lock_payment(tx, payment).await?;
    // Whatever the payment still holds is owed back or settled first.
    ledger::settle_payment(tx, payment).await?;
    let r = refundable_on(tx, payment).await?;
    let now = now_ms();
    let (amount, order, subject) = match target {
        Target::Payment => {
            let amount = r.payment_refundable_vnd;
            if amount <= 0 {
                return Err(nothing_left(&r, &format!("thanh toán {}", r.payment_code)));
            }
            (amount, None, format!("payment:{}", locked.code))
        }
        Target::Order(order) => {
            let row =
                sqlx::query("SELECT code, status FROM orders WHERE id = $1 AND checkout_id = $2")
                    .bind(order)
                    .bind(locked.checkout_id)
                    .fetch_optional(&mut **tx)
                    .await?
                    .ok_or(AppError::NotFound)?;
            let code: String = row.try_get("code")?;
            let status: String = row.try_get("status")?;
            if status != OrderStatus::RefundDue.as_str() {
                return Err(AppError::Conflict(format!(
                    "Đơn {code} không ở trạng thái chờ hoàn tiền"
                )));
            }
            let amount = r.for_order(&code);
            if amount <= 0 {
                return Err(nothing_left(&r, &format!("đơn {code}")));
            }
            (amount, Some((order, code.clone())), format!("order:{code}"))
        }
    };
    let refunded_after = r.refunded_vnd + amount;
    ledger::post(
        tx,
        &crate::ledger::refund_paid(amount),
        Refs {
            payment: Some(payment),
            order: order.as_ref().map(|(id, _)| *id),
            ..Refs::default()
        },
        &format!("refund:payment:{payment}:{refunded_after}"),
        "",
    )
    .await?;
    sqlx::query(
        "UPDATE payments SET refunded_vnd = refunded_vnd + $1, updated_at = $2 WHERE id = $3",
    )
    .bind(amount)
    .bind(now)
    .bind(payment)
    .execute(&mut **tx)
    .await?;
    match &order {
        Some((id, _)) => {
            sqlx::query("UPDATE orders SET refunded_vnd = refunded_vnd + $1 WHERE id = $2")
                .bind(amount)
                .bind(*id)
                .execute(&mut **tx)
                .await?;
            crate::orders::store::set_status(
                tx,
                *id,
                OrderStatus::RefundDue,
                OrderStatus::Refunded,
                Actor::Admin,
                Some(admin.id.0),
            )
            .await?;
            // A payment with nothing left to pay for is done once all it received went back:
            // its other orders waiting for a refund get nothing more (they were never paid).
            if locked.status == PaymentStatus::RefundDue && refunded_after >= r.received_vnd {
                close_refunded(tx, admin, payment, &locked).await?;
            }
        }
        None => {
            if locked.status == PaymentStatus::RefundDue {
                // All of it went back: its orders are refunded and so is the payment.
                close_refunded(tx, admin, payment, &locked).await?;
            }
        }
    }
    super::store::audit(
        tx,
        admin,
        match order {
            Some(_) => "refund_order",
            None => "refund_payment",
        },
        &subject,
        &format!("Đã hoàn {}", format_vnd(amount)),
    )
    .await?;
    Ok(amount)
}

/// Every order still waiting for a refund is refunded, and so is the payment.
async fn close_refunded(
    tx: &mut Tx,
    admin: &User,
    payment: i64,
    locked: &super::store::Locked,
) -> Result<()> {
    crate::orders::store::set_checkout_orders(
        tx,
        locked.checkout_id,
        OrderStatus::RefundDue,
        OrderStatus::Refunded,
        Actor::Admin,
        Some(admin.id.0),
    )
    .await?;
    super::store::set_payment_status(tx, payment, locked.status, PaymentStatus::Refunded).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;

    #[test]
    fn a_cancelled_order_is_refunded_once_whichever_way_is_asked() {
        // 230,000 for an order its seller cancelled: the payment is refund due.
        let orders = [(RefundDue, 230_000, 0)];
        let (pay, per) = share(PaymentStatus::RefundDue, 230_000, 0, &orders);
        assert_eq!((pay, per.clone()), (230_000, vec![230_000]));
        // After the order's refund nothing is left for the payment.
        let (pay, _) = share(
            PaymentStatus::RefundDue,
            230_000,
            230_000,
            &[(Refunded, 230_000, 230_000)],
        );
        assert_eq!(pay, 0);
    }

    #[test]
    fn an_underpaid_payment_gives_back_only_what_came() {
        let orders = [(RefundDue, 150_000, 0), (RefundDue, 30_000, 0)];
        let (pay, per) = share(PaymentStatus::RefundDue, 10_000, 0, &orders);
        assert_eq!(pay, 10_000);
        assert_eq!(per, vec![10_000, 10_000], "each alone at most what came");
        let orders = [(Refunded, 150_000, 10_000), (RefundDue, 30_000, 0)];
        let (pay, per) = share(PaymentStatus::RefundDue, 10_000, 10_000, &orders);
        assert_eq!((pay, per), (0, vec![0, 0]));
    }

    #[test]
    fn live_orders_keep_their_share_and_the_overpayment_is_free() {
        // Paid 350,000 for 180,000 + 120,000; the second order cancelled after payment.
        let orders = [(Shipped, 180_000, 0), (RefundDue, 120_000, 0)];
        let (pay, per) = share(PaymentStatus::Paid, 350_000, 0, &orders);
        assert_eq!(per, vec![0, 120_000]);
        assert_eq!(pay, 50_000, "only the overpayment at payment level");
        // Still collecting: nothing goes back.
        assert_eq!(
            share(
                PaymentStatus::Underpaid,
                10_000,
                0,
                &[(PendingPayment, 50_000, 0)]
            )
            .0,
            0
        );
        // Never more than received − refunded.
        let (pay, per) = share(PaymentStatus::Paid, 350_000, 340_000, &orders);
        assert_eq!((pay, per), (0, vec![0, 0]));
    }
}
