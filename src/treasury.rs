//! The collecting account's statement, line by line: each line any provider reports is
//! stored once (`bankfeed::store`), then money out confirms a payout or a refund payout
//! (`payouts`), a payout the bank sent back returns to its shop (`payouts`), and money in
//! is counted into its payment (`payments::store::money_in`) — all in one database
//! transaction. Above payments and payouts, so neither calls the other for a feed line.

use crate::bankfeed::{self, Incoming};
use crate::db::Db;
use crate::error::Result;
use crate::payments::store::Outcome;

/// Record one verified line of the bank feed and do what it means, in one transaction.
pub async fn receive(db: &Db, t: &Incoming) -> Result<Outcome> {
    let mut tx = db.begin().await?;
    let Some(txn_row) = bankfeed::store(&mut tx, t).await? else {
        tx.commit().await?;
        return Ok(Outcome::Duplicate);
    };
    if t.amount <= 0 || !t.success {
        bankfeed::set_aside(&mut tx, txn_row, true).await?;
        // Money going out of the collecting account may be a payout the treasurer made
        // from the bank app: confirmed when it names a payout and its exact amount.
        if t.amount < 0 && t.success {
            let out = t.amount.saturating_neg();
            let confirmed =
                crate::payouts::store::confirm_from_feed(&mut tx, txn_row, out, &t.description)
                    .await?
                    || crate::refund_payouts::confirm_from_feed(
                        &mut tx,
                        txn_row,
                        out,
                        &t.description,
                    )
                    .await?;
            // Anything else that left the account waits for the admin to explain it.
            if !confirmed {
                bankfeed::unexplained_outflow(&mut tx, txn_row).await?;
            }
        }
        tx.commit().await?;
        return Ok(Outcome::Ignored);
    }
    // A payout the bank sent back (its code in the description, its exact amount): the
    // money is the shop's again, not a buyer's.
    if crate::payouts::store::returned_from_feed(&mut tx, txn_row, t.amount, &t.description).await?
        || crate::refund_payouts::returned_from_feed(&mut tx, t.amount, &t.description).await?
    {
        bankfeed::set_aside(&mut tx, txn_row, false).await?;
        tx.commit().await?;
        return Ok(Outcome::Ignored);
    }
    let outcome = crate::payments::store::money_in(&mut tx, txn_row, t).await?;
    tx.commit().await?;
    Ok(outcome)
}
