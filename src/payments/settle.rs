//! What a payment's money does when its status changes (settle: to the shops, or owed back),
//! and the backfill of databases that had money before the ledger existed. The journals are
//! built by `ledger` and posted in the caller's transaction.

use sqlx::Row;

use crate::db::{Db, Tx};
use crate::error::{AppError, Result};
use crate::ledger;
use crate::ledger::store::{Refs, keys, payment_open, payment_received, post};
use crate::orders::money::{order_refund_due, release_order};

/// After a payment's status changed: move the money it holds where its state says. Paid:
/// each paid order's total to its shop (once), the rest owed back; refund due or refunded:
/// all of it owed back; otherwise it keeps waiting for the rest of the money.
pub async fn settle_payment(tx: &mut Tx, payment: i64) -> Result<()> {
    let open = payment_open(tx, payment).await?;
    if open <= 0 {
        return Ok(());
    }
    let r = sqlx::query("SELECT status, checkout_id FROM payments WHERE id = $1")
        .bind(payment)
        .fetch_one(&mut **tx)
        .await?;
    let status: String = r.try_get("status")?;
    let checkout: i64 = r.try_get("checkout_id")?;
    let refs = Refs::payment(payment);
    match status.as_str() {
        "paid" => {
            let settled: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM ledger_journals WHERE payment_id = $1 AND kind = 'payment_settled'",
            )
            .bind(payment)
            .fetch_one(&mut **tx)
            .await?;
            if settled > 0 {
                let key = format!(
                    "owed:payment:{payment}:{}",
                    payment_received(tx, payment).await?
                );
                return post(
                    tx,
                    &ledger::payment_to_refund(payment, open),
                    refs,
                    &key,
                    "",
                )
                .await
                .map(|_| ());
            }
            let rows = sqlx::query(
                "SELECT shop_id, total_vnd FROM orders WHERE checkout_id = $1
                   AND status IN ('paid', 'accepted', 'shipped', 'delivered') ORDER BY id",
            )
            .bind(checkout)
            .fetch_all(&mut **tx)
            .await?;
            let orders: Vec<(i64, i64)> = rows
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_>>()?;
            let j = ledger::payment_settled(payment, open, &orders).ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!(
                    "payment {payment} paid with {open} held, less than its orders"
                ))
            })?;
            post(tx, &j, refs, &format!("settle:payment:{payment}"), "").await?;
        }
        "refund_due" | "refunded" => {
            let key = format!(
                "owed:payment:{payment}:{}",
                payment_received(tx, payment).await?
            );
            post(
                tx,
                &ledger::payment_to_refund(payment, open),
                refs,
                &key,
                "",
            )
            .await?;
        }
        _ => {}
    }
    Ok(())
}

const BACKFILL: &str = "ledger_backfill";

/// Post journals for money that moved before the ledger existed, once: every transfer in,
/// every payment's settlement, releases of delivered orders (no fee), refunds recorded.
/// Runs after the SQL migrations; a fresh database just records that it is done. Journals
/// take the event keys the live code uses, so nothing backfilled can be posted again.
pub async fn backfill(db: &Db) -> Result<()> {
    if db.data_migration_done(BACKFILL).await? {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    if !crate::db::claim_data_migration(&mut tx, BACKFILL).await? {
        tx.commit().await?;
        return Ok(());
    }
    let txns = sqlx::query(
        "SELECT id, amount_vnd, payment_id, status FROM bank_transactions
         WHERE amount_vnd > 0 AND status IN ('matched', 'unmatched', 'refunded') ORDER BY id",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut payments: Vec<i64> = Vec::new();
    for t in &txns {
        let id: i64 = t.try_get("id")?;
        let amount: i64 = t.try_get("amount_vnd")?;
        let refs = Refs::txn(id);
        match (
            t.try_get::<String, _>("status")?.as_str(),
            t.try_get::<Option<i64>, _>("payment_id")?,
        ) {
            ("matched", Some(p)) => {
                post(
                    &mut tx,
                    &ledger::transfer_in(p, amount),
                    Refs {
                        payment: Some(p),
                        ..refs
                    },
                    &keys::transfer(id),
                    "backfill",
                )
                .await?;
                if !payments.contains(&p) {
                    payments.push(p);
                }
            }
            ("refunded", _) => {
                post(
                    &mut tx,
                    &ledger::transfer_unmatched(amount),
                    refs,
                    &keys::transfer(id),
                    "backfill",
                )
                .await?;
                post(
                    &mut tx,
                    &ledger::suspense_returned(amount),
                    refs,
                    &keys::returned(id),
                    "backfill",
                )
                .await?;
            }
            _ => {
                post(
                    &mut tx,
                    &ledger::transfer_unmatched(amount),
                    refs,
                    &keys::transfer(id),
                    "backfill",
                )
                .await?;
            }
        }
    }
    for p in payments {
        let r = sqlx::query("SELECT status, refunded_vnd, checkout_id FROM payments WHERE id = $1")
            .bind(p)
            .fetch_one(&mut *tx)
            .await?;
        let status: String = r.try_get("status")?;
        let mut refunded: i64 = r.try_get("refunded_vnd")?;
        let checkout: i64 = r.try_get("checkout_id")?;
        if status == "paid" {
            // Orders refunded or owed back after payment were paid first: settle them too.
            let rows = sqlx::query(
                "SELECT id, shop_id, total_vnd, status, refunded_vnd FROM orders WHERE checkout_id = $1 AND status IN
                   ('paid', 'accepted', 'shipped', 'delivered', 'refund_due', 'refunded') ORDER BY id",
            )
            .bind(checkout)
            .fetch_all(&mut *tx)
            .await?;
            let open = payment_open(&mut tx, p).await?;
            let orders: Vec<(i64, i64)> = rows
                .iter()
                .map(|r| Ok((r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<_>>()?;
            if let Some(j) = ledger::payment_settled(p, open, &orders) {
                post(
                    &mut tx,
                    &j,
                    Refs::payment(p),
                    &format!("settle:payment:{p}"),
                    "backfill",
                )
                .await?;
            }
            for r in &rows {
                let order: i64 = r.try_get(0)?;
                match r.try_get::<String, _>(3)?.as_str() {
                    "delivered" => {
                        release_order(&mut tx, order, Some(0)).await?;
                    }
                    "refund_due" | "refunded" => {
                        order_refund_due(&mut tx, order).await?;
                        let order_refunded: i64 = r.try_get(4)?;
                        if order_refunded > 0 {
                            refunded -= order_refunded;
                            post(
                                &mut tx,
                                &ledger::refund_paid(order_refunded),
                                Refs {
                                    payment: Some(p),
                                    order: Some(order),
                                    ..Refs::default()
                                },
                                &format!("refund:order:{order}:{order_refunded}"),
                                "backfill",
                            )
                            .await?;
                        }
                    }
                    _ => {}
                }
            }
        } else {
            settle_payment(&mut tx, p).await?;
        }
        if refunded > 0 {
            post(
                &mut tx,
                &ledger::refund_paid(refunded),
                Refs::payment(p),
                &format!("refund:payment:{p}:{refunded}"),
                "backfill",
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
