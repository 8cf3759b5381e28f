//! An order's money in the books: released to its shop once buyer protection says so, owed
//! back when a paid order is cancelled or a request decided, the fee fixed on older orders.
//! These decisions move `orders` rows and post the journals `ledger` builds, in the
//! caller's transaction.

use sqlx::Row;

use crate::db::{Db, Tx};
use crate::domain::now_ms;
use crate::error::{AppError, Result};
use crate::ledger::store::{Refs, lock_shop, post, shop_sum};
use crate::ledger::{self, Account};

/// A paid order was cancelled by its seller: its money is owed back to the buyer.
pub async fn order_refund_due(tx: &mut Tx, order: i64) -> Result<()> {
    let r = sqlx::query("SELECT shop_id, total_vnd, released_at FROM orders WHERE id = $1")
        .bind(order)
        .fetch_one(&mut **tx)
        .await?;
    let shop: i64 = r.try_get("shop_id")?;
    let total: i64 = r.try_get("total_vnd")?;
    let released = r.try_get::<Option<i64>, _>("released_at")?.is_some();
    // Only money that reached the shop's accounts moves (a payment not settled keeps it).
    let settled: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM ledger_entries e JOIN ledger_journals j ON j.id = e.journal_id
         JOIN orders o ON o.checkout_id = (SELECT checkout_id FROM payments WHERE id = j.payment_id)
         WHERE o.id = $1 AND j.kind = 'payment_settled' AND e.shop_id = $2",
    )
    .bind(order)
    .bind(shop)
    .fetch_one(&mut **tx)
    .await?;
    if settled == 0 {
        return Ok(());
    }
    lock_shop(tx, shop).await?;
    let available = -shop_sum(tx, shop, Account::ShopAvailable).await?;
    let j = ledger::order_refund(shop, total, released, available);
    post(
        tx,
        &j,
        Refs::order(order),
        &format!("refund_due:order:{order}"),
        "",
    )
    .await?;
    Ok(())
}

/// Release an order's money to its shop (when buyer protection says so: `orders::release`),
/// once, less any part decided to go back to the buyer and the fee fixed on the order when
/// it was placed (`orders.fee_bps`, on the goods: the order's shipping fee goes to the shop
/// whole, since the seller delivers or pays the carrier; `fee_override` only for
/// the backfill of orders from before fees).
pub async fn release_order(tx: &mut Tx, order: i64, fee_override: Option<i64>) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE orders SET released_at = $1 WHERE id = $2 AND released_at IS NULL
           AND status IN ('shipped', 'delivered')
         RETURNING shop_id, total_vnd - refund_owed_vnd AS total_vnd, shipping_vnd, shipping_payee,
           fee_bps",
    )
    .bind(now_ms())
    .bind(order)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(r) = r else { return Ok(false) };
    let shop: i64 = r.try_get("shop_id")?;
    let total: i64 = r.try_get("total_vnd")?;
    let shipping: i64 = r.try_get("shipping_vnd")?;
    let payee = match r.try_get::<Option<String>, _>("shipping_payee")?.as_deref() {
        Some("platform") => ledger::ShippingPayee::Platform,
        _ => ledger::ShippingPayee::Shop,
    };
    let fee_bps = match fee_override {
        Some(bps) => bps,
        None => r.try_get::<Option<i64>, _>("fee_bps")?.unwrap_or(0),
    };
    lock_shop(tx, shop).await?;
    let owed = shop_sum(tx, shop, Account::ShopOwed).await?;
    post(
        tx,
        &ledger::release(shop, total, shipping, payee, fee_bps, owed),
        Refs::order(order),
        &format!("release:order:{order}"),
        "",
    )
    .await?;
    Ok(true)
}

/// Orders placed before fees were fixed on each order take the fee in force when this
/// server first runs on the new schema (once: afterwards no order lacks one).
pub async fn fix_missing_fees(db: &Db, fee_bps: i64) -> Result<u64> {
    Ok(
        sqlx::query("UPDATE orders SET fee_bps = $1 WHERE fee_bps IS NULL")
            .bind(fee_bps)
            .execute(&db.pool)
            .await?
            .rows_affected(),
    )
}

/// Part of a live, unreleased order decided to go back to its buyer: from the shop's pending
/// money to refunds due (`key` names the decision), and the order remembers it so its release
/// pays the shop only the rest.
pub async fn order_part_refund_due(tx: &mut Tx, order: i64, amount: i64, key: &str) -> Result<()> {
    let r = sqlx::query(
        "UPDATE orders SET refund_owed_vnd = refund_owed_vnd + $1 WHERE id = $2 AND released_at IS NULL
         RETURNING shop_id",
    )
    .bind(amount)
    .bind(order)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| AppError::Conflict("Tiền của đơn đã chuyển cho người bán".into()))?;
    let shop: i64 = r.try_get("shop_id")?;
    lock_shop(tx, shop).await?;
    post(
        tx,
        &ledger::part_refund_due(shop, amount),
        Refs::order(order),
        key,
        "",
    )
    .await?;
    Ok(())
}
