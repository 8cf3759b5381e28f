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

/// What an order is owed back (not yet refunded): all of it when it waits for its refund,
/// the part decided to go back when it is still being served, else nothing.
fn owed_back(s: OrderStatus, total: i64, refunded: i64, owed: i64) -> i64 {
    if s == OrderStatus::RefundDue {
        (total - refunded).max(0)
    } else if is_live(s) {
        (owed - refunded).max(0)
    } else {
        0
    }
}

/// The amounts as pure arithmetic: (payment-level refundable, per-order refundable).
/// `orders` are (status, total, refunded, owed back of a live order).
pub fn share(
    status: PaymentStatus,
    received: i64,
    refunded: i64,
    orders: &[(OrderStatus, i64, i64, i64)],
) -> (i64, Vec<i64>) {
    let left = (received - refunded).max(0);
    // What orders being served keep for their shops.
    let live: i64 = orders
        .iter()
        .filter(|(s, ..)| is_live(*s))
        .map(|(_, t, r, o)| (t - o.max(r)).max(0))
        .sum();
    let waiting: i64 = orders
        .iter()
        .map(|(s, t, r, o)| owed_back(*s, *t, *r, *o))
        .sum();
    // Money no order being served keeps.
    let free = (left - live).max(0);
    let per_order = orders
        .iter()
        .map(|(s, t, r, o)| owed_back(*s, *t, *r, *o).min(free))
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
) -> Result<Vec<(i64, String, OrderStatus, i64, i64, i64)>> {
    let rows = sqlx::query(
        "SELECT id, code, status, total_vnd, refunded_vnd, refund_owed_vnd FROM orders
         WHERE checkout_id = $1 ORDER BY id",
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
                r.try_get("refund_owed_vnd")?,
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
            .map(|(_, _, s, t, f, o)| (*s, *t, *f, *o))
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
                |((_, code, status, total, refunded, _), refundable)| OrderRefundable {
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
    let amount = record_in(&mut tx, By::Admin(admin), payment, target, Paid::ByHand).await?;
    tx.commit().await?;
    Ok(amount)
}

/// Who records a refund.
#[derive(Clone, Copy)]
enum By<'a> {
    Admin(&'a User),
    /// The bank feed or payOS confirmed a refund payout.
    System,
}

/// How the money went back.
#[derive(Clone, Copy)]
enum Paid {
    /// The treasurer sent it by hand: all the target may still get, less what refund
    /// payouts already carry.
    ByHand,
    /// A refund payout of exactly this amount reached the buyer's bank.
    Payout { id: i64, amount: i64 },
}

/// Refund payouts of the payment on their way (pending or sent).
pub async fn in_flight(conn: &mut AnyConnection, payment: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount_vnd), 0) AS BIGINT) FROM refund_payouts
         WHERE payment_id = $1 AND status IN ('pending', 'sent')",
    )
    .bind(payment)
    .fetch_one(&mut *conn)
    .await?)
}

/// What a new refund payout for `target` may carry: its refundable amount less what refund
/// payouts of the payment already carry (read under the payment's lock by the caller).
pub async fn room_for_payout(tx: &mut Tx, payment: i64, target: Target) -> Result<i64> {
    super::store::lock_payment(tx, payment).await?;
    crate::payments::settle::settle_payment(tx, payment).await?;
    let r = refundable_on(tx, payment).await?;
    let flying = in_flight(tx, payment).await?;
    let base = match target {
        Target::Payment => r.payment_refundable_vnd,
        Target::Order(order) => {
            let code: String = sqlx::query_scalar("SELECT code FROM orders WHERE id = $1")
                .bind(order)
                .fetch_one(&mut **tx)
                .await?;
            r.for_order(&code)
        }
    };
    Ok((base.min(r.left_vnd() - flying)).max(0))
}

/// A refund payout reached the buyer's bank (payOS or the bank feed said so): recorded as
/// the refund of its target, from the money in transit, in the caller's transaction.
pub async fn record_payout_paid(
    tx: &mut Tx,
    payout: i64,
    payment: i64,
    target: Target,
    amount: i64,
) -> Result<i64> {
    record_in(
        tx,
        By::System,
        payment,
        target,
        Paid::Payout { id: payout, amount },
    )
    .await
}

async fn record_in(
    tx: &mut Tx,
    by: By<'_>,
    payment: i64,
    target: Target,
    paid: Paid,
) -> Result<i64> {
    let locked = super::store::lock_payment(tx, payment).await?;
    // Whatever the payment still holds is owed back or settled first.
    crate::payments::settle::settle_payment(tx, payment).await?;
    let r = refundable_on(tx, payment).await?;
    let flying = match paid {
        Paid::ByHand => in_flight(tx, payment).await?,
        Paid::Payout { .. } => 0,
    };
    // The amount recorded: what the target may get (by hand: less what payouts carry), or
    // exactly the payout's amount, never more than the target may get.
    let amount_for = |refundable: i64, what: &str| -> Result<i64> {
        match paid {
            Paid::ByHand => {
                let a = refundable.min(r.left_vnd() - flying);
                if a <= 0 {
                    Err(nothing_left(&r, what))
                } else {
                    Ok(a)
                }
            }
            Paid::Payout { amount, .. } => {
                if amount <= 0 || amount > refundable {
                    Err(nothing_left(&r, what))
                } else {
                    Ok(amount)
                }
            }
        }
    };
    let now = now_ms();
    let (amount, order, subject) = match target {
        Target::Payment => {
            let amount = amount_for(
                r.payment_refundable_vnd,
                &format!("thanh toán {}", r.payment_code),
            )?;
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
            let refundable = r.for_order(&code);
            if status != OrderStatus::RefundDue.as_str() && refundable <= 0 {
                return Err(AppError::Conflict(format!(
                    "Đơn {code} không ở trạng thái chờ hoàn tiền"
                )));
            }
            let amount = amount_for(refundable, &format!("đơn {code}"))?;
            let waiting = status == OrderStatus::RefundDue.as_str();
            (
                amount,
                Some((order, code.clone(), waiting)),
                format!("order:{code}"),
            )
        }
    };
    let refunded_after = r.refunded_vnd + amount;
    let journal = match paid {
        Paid::ByHand => crate::ledger::refund_paid(amount),
        Paid::Payout { .. } => crate::ledger::refund_paid_out(amount),
    };
    ledger::post(
        tx,
        &journal,
        Refs {
            payment: Some(payment),
            order: order.as_ref().map(|(id, ..)| *id),
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
        Some((id, _, waiting)) => {
            sqlx::query("UPDATE orders SET refunded_vnd = refunded_vnd + $1 WHERE id = $2")
                .bind(amount)
                .bind(*id)
                .execute(&mut **tx)
                .await?;
            // An order still being served (part of it went back) keeps its status.
            if *waiting {
                crate::orders::store::set_status(
                    tx,
                    *id,
                    OrderStatus::RefundDue,
                    OrderStatus::Refunded,
                    by.actor(),
                    by.user(),
                )
                .await?;
            }
            // A payment with nothing left to pay for is done once all it received went back:
            // its other orders waiting for a refund get nothing more (they were never paid).
            if locked.status == PaymentStatus::RefundDue && refunded_after >= r.received_vnd {
                close_refunded(tx, by, payment, &locked).await?;
            }
        }
        None => {
            if locked.status == PaymentStatus::RefundDue {
                // All of it went back: its orders are refunded and so is the payment.
                close_refunded(tx, by, payment, &locked).await?;
            }
        }
    }
    let action = match order {
        Some(_) => "refund_order",
        None => "refund_payment",
    };
    let detail = match paid {
        Paid::ByHand => format!("Đã hoàn {}", format_vnd(amount)),
        Paid::Payout { id, .. } => {
            format!("Đã hoàn {} (khoản hoàn #{id})", format_vnd(amount))
        }
    };
    match by {
        By::Admin(admin) => super::store::audit(tx, admin, action, &subject, &detail).await?,
        By::System => {
            sqlx::query(
                "INSERT INTO audit_log (actor_user_id, action, subject, detail, at) VALUES (NULL, $1, $2, $3, $4)",
            )
            .bind(action)
            .bind(subject)
            .bind(detail)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(amount)
}

impl By<'_> {
    fn actor(self) -> Actor {
        match self {
            By::Admin(_) => Actor::Admin,
            By::System => Actor::System,
        }
    }

    fn user(self) -> Option<i64> {
        match self {
            By::Admin(a) => Some(a.id.0),
            By::System => None,
        }
    }
}

/// Every order still waiting for a refund is refunded, and so is the payment.
async fn close_refunded(
    tx: &mut Tx,
    by: By<'_>,
    payment: i64,
    locked: &super::store::Locked,
) -> Result<()> {
    crate::orders::store::set_checkout_orders(
        tx,
        locked.checkout_id,
        OrderStatus::RefundDue,
        OrderStatus::Refunded,
        by.actor(),
        by.user(),
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
        let orders = [(RefundDue, 230_000, 0, 0)];
        let (pay, per) = share(PaymentStatus::RefundDue, 230_000, 0, &orders);
        assert_eq!((pay, per.clone()), (230_000, vec![230_000]));
        // After the order's refund nothing is left for the payment.
        let (pay, _) = share(
            PaymentStatus::RefundDue,
            230_000,
            230_000,
            &[(Refunded, 230_000, 230_000, 0)],
        );
        assert_eq!(pay, 0);
    }

    #[test]
    fn an_underpaid_payment_gives_back_only_what_came() {
        let orders = [(RefundDue, 150_000, 0, 0), (RefundDue, 30_000, 0, 0)];
        let (pay, per) = share(PaymentStatus::RefundDue, 10_000, 0, &orders);
        assert_eq!(pay, 10_000);
        assert_eq!(per, vec![10_000, 10_000], "each alone at most what came");
        let orders = [(Refunded, 150_000, 10_000, 0), (RefundDue, 30_000, 0, 0)];
        let (pay, per) = share(PaymentStatus::RefundDue, 10_000, 10_000, &orders);
        assert_eq!((pay, per), (0, vec![0, 0]));
    }

    #[test]
    fn live_orders_keep_their_share_and_the_overpayment_is_free() {
        // Paid 350,000 for 180,000 + 120,000; the second order cancelled after payment.
        let orders = [(Shipped, 180_000, 0, 0), (RefundDue, 120_000, 0, 0)];
        let (pay, per) = share(PaymentStatus::Paid, 350_000, 0, &orders);
        assert_eq!(per, vec![0, 120_000]);
        assert_eq!(pay, 50_000, "only the overpayment at payment level");
        // Still collecting: nothing goes back.
        assert_eq!(
            share(
                PaymentStatus::Underpaid,
                10_000,
                0,
                &[(PendingPayment, 50_000, 0, 0)]
            )
            .0,
            0
        );
        // Never more than received − refunded.
        let (pay, per) = share(PaymentStatus::Paid, 350_000, 340_000, &orders);
        assert_eq!((pay, per), (0, vec![0, 0]));
    }

    #[test]
    fn part_of_a_live_order_goes_back_and_the_rest_stays_with_the_shop() {
        // Paid 180,000; a request decided 60,000 back; the order is still delivered.
        let orders = [(Delivered, 180_000, 0, 60_000)];
        let (pay, per) = share(PaymentStatus::Paid, 180_000, 0, &orders);
        assert_eq!((pay, per), (0, vec![60_000]));
        // Once the 60,000 went back, nothing more for anyone.
        let orders = [(Delivered, 180_000, 60_000, 60_000)];
        let (pay, per) = share(PaymentStatus::Paid, 180_000, 60_000, &orders);
        assert_eq!((pay, per), (0, vec![0]));
        // Never beyond what came in: an underpaid share caps it.
        let orders = [(Delivered, 180_000, 0, 180_000)];
        assert_eq!(
            share(PaymentStatus::Paid, 100_000, 0, &orders).1,
            vec![100_000]
        );
    }
}
