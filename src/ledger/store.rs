//! Appending journals in the caller's transaction, balances as sums and the invariants. The
//! ledger only books: what moves an order's or a payment's money is decided in `orders::money`
//! and `payments::settle`, which post the journals built in `ledger` (mod.rs).

use serde::Serialize;
use sqlx::Row;

use super::{Account, Journal};
use crate::db::{Db, Tx};
use crate::domain::now_ms;
use crate::error::{AppError, Result};

/// What a journal is about.
#[derive(Debug, Clone, Copy, Default)]
pub struct Refs {
    pub payment: Option<i64>,
    pub order: Option<i64>,
    pub payout: Option<i64>,
    pub txn: Option<i64>,
}

impl Refs {
    pub fn payment(id: i64) -> Refs {
        Refs {
            payment: Some(id),
            ..Refs::default()
        }
    }
    pub fn order(id: i64) -> Refs {
        Refs {
            order: Some(id),
            ..Refs::default()
        }
    }
    pub fn payout(id: i64) -> Refs {
        Refs {
            payout: Some(id),
            ..Refs::default()
        }
    }
    pub fn txn(id: i64) -> Refs {
        Refs {
            txn: Some(id),
            ..Refs::default()
        }
    }
}

/// Append a journal (nothing for an empty one) for the business event `key` names
/// (`settle:payment:7`, `release:order:12` …). A journal that does not sum to zero is a bug:
/// the whole transaction fails. The database keeps the same rules whatever the code does:
/// a second journal for the same event is refused (unique `event_key`), and its triggers
/// check the postings sum to zero and write the entries from them in the same statement
/// (migrations 0014/0015).
pub async fn post(
    tx: &mut Tx,
    j: &Journal,
    refs: Refs,
    key: &str,
    memo: &str,
) -> Result<Option<i64>> {
    if j.is_empty() {
        return Ok(None);
    }
    if !j.balanced() {
        return Err(AppError::Internal(anyhow::anyhow!(
            "unbalanced journal {}: {:?}",
            j.kind,
            j.postings
        )));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO ledger_journals (kind, payment_id, order_id, payout_id, txn_id, memo, at,
           event_key, postings)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(j.kind)
    .bind(refs.payment)
    .bind(refs.order)
    .bind(refs.payout)
    .bind(refs.txn)
    .bind(memo.to_string())
    .bind(now_ms())
    .bind(key.to_string())
    .bind(j.postings_json())
    .fetch_one(&mut **tx)
    .await?;
    Ok(Some(id))
}

/// Money received for a payment (transfers in and transfers assigned to it), from the
/// ledger: every credit to the payment's open account.
pub async fn payment_received(conn: &mut sqlx::AnyConnection, payment: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(-e.amount_vnd), 0) AS BIGINT) FROM ledger_entries e
         JOIN ledger_journals j ON j.id = e.journal_id
         WHERE e.payment_id = $1 AND e.account = 'payments_open'
           AND j.kind IN ('transfer_in', 'transfer_assigned')",
    )
    .bind(payment)
    .fetch_one(&mut *conn)
    .await?)
}

/// Refunds paid for a payment (at payment or order level), from the ledger.
pub async fn payment_refunded(conn: &mut sqlx::AnyConnection, payment: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(e.amount_vnd), 0) AS BIGINT) FROM ledger_entries e
         JOIN ledger_journals j ON j.id = e.journal_id
         WHERE j.kind = 'refund_paid' AND e.account IN ('refunds_due', 'refunds_in_transit')
           AND (j.payment_id = $1 OR j.order_id IN (SELECT o.id FROM orders o
                JOIN payments p ON p.checkout_id = o.checkout_id WHERE p.id = $1))",
    )
    .bind(payment)
    .fetch_one(&mut *conn)
    .await?)
}

/// Sum of an account's entries for one shop (debit positive).
pub async fn shop_sum(tx: &mut Tx, shop: i64, account: Account) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount_vnd), 0) AS BIGINT) FROM ledger_entries
         WHERE shop_id = $1 AND account = $2",
    )
    .bind(shop)
    .bind(account.as_str())
    .fetch_one(&mut **tx)
    .await?)
}

/// Money held for a payment and not yet settled (positive).
pub async fn payment_open(tx: &mut Tx, payment: i64) -> Result<i64> {
    let sum: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount_vnd), 0) AS BIGINT) FROM ledger_entries
         WHERE payment_id = $1 AND account = 'payments_open'",
    )
    .bind(payment)
    .fetch_one(&mut **tx)
    .await?;
    Ok(-sum)
}

/// Take the shop's row lock (PostgreSQL; SQLite holds its write lock) before reading and
/// moving its available money, so a refund, a release and a payout run see each other.
pub async fn lock_shop(tx: &mut Tx, shop: i64) -> Result<()> {
    sqlx::query("UPDATE shops SET payout_hold_until = payout_hold_until WHERE id = $1")
        .bind(shop)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ShopBalance {
    pub pending_vnd: i64,
    pub available_vnd: i64,
    pub in_transit_vnd: i64,
    pub paid_out_vnd: i64,
    pub fees_vnd: i64,
    pub owed_vnd: i64,
}

pub async fn shop_balance(db: &Db, shop: i64) -> Result<ShopBalance> {
    let rows = sqlx::query(
        "SELECT account, CAST(SUM(amount_vnd) AS BIGINT) AS s FROM ledger_entries
         WHERE shop_id = $1 GROUP BY account",
    )
    .bind(shop)
    .fetch_all(&db.pool)
    .await?;
    let mut b = ShopBalance::default();
    for r in rows {
        let s: i64 = r.try_get("s")?;
        match r.try_get::<String, _>("account")?.as_str() {
            "shop_pending" => b.pending_vnd = -s,
            "shop_available" => b.available_vnd = -s,
            "shop_in_transit" => b.in_transit_vnd = -s,
            "collect" => b.paid_out_vnd = -s,
            "fees" => b.fees_vnd = -s,
            "shop_owed" => b.owed_vnd = s,
            _ => {}
        }
    }
    Ok(b)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EntryView {
    pub at: i64,
    pub journal: i64,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payout_code: Option<String>,
    pub amount_vnd: i64,
    pub account: String,
}

/// A shop's entries, newest first: amounts as the shop sees them (money to it positive).
pub async fn shop_entries(
    db: &Db,
    shop: i64,
    limit: i64,
    offset: i64,
) -> Result<(Vec<EntryView>, i64)> {
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger_entries WHERE shop_id = $1")
        .bind(shop)
        .fetch_one(&db.pool)
        .await?;
    let rows = sqlx::query(
        "SELECT j.at, j.id AS journal, j.kind, o.code AS order_code, po.code AS payout_code,
           e.amount_vnd, e.account
         FROM ledger_entries e JOIN ledger_journals j ON j.id = e.journal_id
         LEFT JOIN orders o ON o.id = j.order_id
         LEFT JOIN payouts po ON po.id = j.payout_id
         WHERE e.shop_id = $1 ORDER BY j.id DESC, e.id DESC LIMIT $2 OFFSET $3",
    )
    .bind(shop)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let account: String = r.try_get("account")?;
        let amount: i64 = r.try_get("amount_vnd")?;
        // Owed is a claim on the shop: shown with its own sign; the rest as credit to it.
        let shown = if account == "shop_owed" {
            amount
        } else {
            -amount
        };
        let mut order_code: Option<String> = r.try_get("order_code")?;
        if order_code.is_none() {
            // Settlement journals name the payment; show the shop's order of it.
            order_code = sqlx::query_scalar(
                "SELECT o.code FROM orders o JOIN payments p ON p.checkout_id = o.checkout_id
                 JOIN ledger_journals j ON j.payment_id = p.id WHERE j.id = $1 AND o.shop_id = $2",
            )
            .bind(r.try_get::<i64, _>("journal")?)
            .bind(shop)
            .fetch_optional(&db.pool)
            .await?;
        }
        out.push(EntryView {
            at: r.try_get("at")?,
            journal: r.try_get("journal")?,
            kind: r.try_get("kind")?,
            order_code,
            payout_code: r.try_get("payout_code")?,
            amount_vnd: shown,
            account: account.clone(),
        });
    }
    Ok((out, total))
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccountBalance {
    pub account: String,
    pub balance_vnd: i64,
}

/// Every account's balance (shop accounts summed over shops); they add up to zero.
pub async fn trial_balance(db: &Db) -> Result<Vec<AccountBalance>> {
    let rows = sqlx::query(
        "SELECT account, CAST(SUM(amount_vnd) AS BIGINT) AS s FROM ledger_entries
         GROUP BY account ORDER BY account",
    )
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AccountBalance {
                account: r.try_get("account")?,
                balance_vnd: r.try_get("s")?,
            })
        })
        .collect()
}

/// One journal as the admin's list of movements shows it: its postings, with each shop's
/// slug and the order or payout it is about.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Movement {
    pub journal: i64,
    pub at: i64,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payout_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_code: Option<String>,
    pub postings: Vec<MovementLine>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MovementLine {
    pub account: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shop: Option<String>,
    /// Debit positive, credit negative; a journal's lines add up to zero.
    pub amount_vnd: i64,
}

/// Which movements to list: one shop's (any of its postings), between two times.
#[derive(Debug, Clone, Default)]
pub struct MovementFilter {
    pub shop: Option<i64>,
    pub from: Option<i64>,
    pub until: Option<i64>,
}

/// Journals newest first, with their postings, and how many match.
pub async fn movements(
    db: &Db,
    f: &MovementFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Movement>, i64)> {
    let filter = "($1 = 0 OR EXISTS (SELECT 1 FROM ledger_entries fe WHERE fe.journal_id = j.id AND fe.shop_id = $1))
           AND j.at >= $2 AND j.at < $3";
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM ledger_journals j WHERE {filter}"
    )))
    .bind(f.shop.unwrap_or(0))
    .bind(f.from.unwrap_or(0))
    .bind(f.until.unwrap_or(i64::MAX))
    .fetch_one(&db.pool)
    .await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT j.id, j.at, j.kind, o.code AS order_code, po.code AS payout_code, p.code AS payment_code
         FROM ledger_journals j
         LEFT JOIN orders o ON o.id = j.order_id
         LEFT JOIN payouts po ON po.id = j.payout_id
         LEFT JOIN payments p ON p.id = j.payment_id
         WHERE {filter} ORDER BY j.id DESC LIMIT $4 OFFSET $5"
    )))
    .bind(f.shop.unwrap_or(0))
    .bind(f.from.unwrap_or(0))
    .bind(f.until.unwrap_or(i64::MAX))
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let journal: i64 = r.try_get("id")?;
        let postings = sqlx::query(
            "SELECT e.account, s.slug, e.amount_vnd FROM ledger_entries e
             LEFT JOIN shops s ON s.id = e.shop_id WHERE e.journal_id = $1 ORDER BY e.id",
        )
        .bind(journal)
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|e| {
            Ok(MovementLine {
                account: e.try_get("account")?,
                shop: e.try_get("slug")?,
                amount_vnd: e.try_get("amount_vnd")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        out.push(Movement {
            journal,
            at: r.try_get("at")?,
            kind: r.try_get("kind")?,
            order_code: r.try_get("order_code")?,
            payout_code: r.try_get("payout_code")?,
            payment_code: r.try_get("payment_code")?,
            postings,
        });
    }
    Ok((out, total))
}

/// The sign rules `check_invariants` applies: (rule, query of the (id, balance) that break it).
const SIGN_RULES: &[(&str, &str)] = &[
    (
        "carriers_payable on the wrong side (more paid to carriers than owed)",
        "SELECT CAST(NULL AS BIGINT), CAST(-SUM(amount_vnd) AS BIGINT) FROM ledger_entries
         WHERE account = 'carriers_payable' HAVING SUM(amount_vnd) > 0",
    ),
    (
        "shop_available below zero (a shop's available money is negative)",
        "SELECT shop_id, CAST(-SUM(amount_vnd) AS BIGINT) FROM ledger_entries
         WHERE account = 'shop_available' GROUP BY shop_id HAVING SUM(amount_vnd) > 0",
    ),
    (
        "collect below zero (more left the collecting account than came in)",
        "SELECT CAST(NULL AS BIGINT), CAST(SUM(amount_vnd) AS BIGINT) FROM ledger_entries
         WHERE account = 'collect' HAVING SUM(amount_vnd) < 0",
    ),
    (
        "refunds_due on the wrong side (more refunded than owed to buyers)",
        "SELECT CAST(NULL AS BIGINT), CAST(-SUM(amount_vnd) AS BIGINT) FROM ledger_entries
         WHERE account = 'refunds_due' HAVING SUM(amount_vnd) > 0",
    ),
    (
        "refunds_in_transit on the wrong side (more confirmed than sent to buyers)",
        "SELECT CAST(NULL AS BIGINT), CAST(-SUM(amount_vnd) AS BIGINT) FROM ledger_entries
         WHERE account = 'refunds_in_transit' HAVING SUM(amount_vnd) > 0",
    ),
    (
        "suspense on the wrong side (more returned or assigned than received)",
        "SELECT CAST(NULL AS BIGINT), CAST(-SUM(amount_vnd) AS BIGINT) FROM ledger_entries
         WHERE account = 'suspense' HAVING SUM(amount_vnd) > 0",
    ),
    (
        "payments_open on the wrong side (a payment settled more than it received)",
        "SELECT payment_id, CAST(-SUM(amount_vnd) AS BIGINT) FROM ledger_entries
         WHERE account = 'payments_open' GROUP BY payment_id HAVING SUM(amount_vnd) > 0",
    ),
    (
        "shop_pending on the wrong side (a shop released more than it was paid)",
        "SELECT shop_id, CAST(-SUM(amount_vnd) AS BIGINT) FROM ledger_entries
         WHERE account = 'shop_pending' GROUP BY shop_id HAVING SUM(amount_vnd) > 0",
    ),
    (
        "shop_in_transit on the wrong side (a payout confirmed twice)",
        "SELECT shop_id, CAST(-SUM(amount_vnd) AS BIGINT) FROM ledger_entries
         WHERE account = 'shop_in_transit' GROUP BY shop_id HAVING SUM(amount_vnd) > 0",
    ),
    (
        "shop_owed on the wrong side (a shop's debt netted beyond what it owed)",
        "SELECT shop_id, CAST(SUM(amount_vnd) AS BIGINT) FROM ledger_entries
         WHERE account = 'shop_owed' GROUP BY shop_id HAVING SUM(amount_vnd) < 0",
    ),
    (
        "a payment refunded more than it received",
        "SELECT id, refunded_vnd - amount_paid_vnd FROM payments WHERE refunded_vnd > amount_paid_vnd",
    ),
];

/// What must always hold; a list of what does not (empty when all is well).
pub async fn check_invariants(db: &Db) -> Result<Vec<String>> {
    let mut broken = Vec::new();
    let unbalanced: Vec<i64> = sqlx::query_scalar(
        "SELECT journal_id FROM ledger_entries GROUP BY journal_id HAVING SUM(amount_vnd) <> 0",
    )
    .fetch_all(&db.pool)
    .await?;
    if !unbalanced.is_empty() {
        broken.push(format!("journals not summing to zero: {unbalanced:?}"));
    }
    // Sign rules: every account on its own side (debit positive). Per shop or per payment
    // where the account is kept per shop or payment.
    for (rule, sql) in SIGN_RULES {
        let bad: Vec<(Option<i64>, i64)> = sqlx::query_as(*sql).fetch_all(&db.pool).await?;
        if !bad.is_empty() {
            let shown: Vec<String> = bad
                .iter()
                .take(10)
                .map(|(id, sum)| match id {
                    Some(id) => format!("#{id}: {sum}"),
                    None => sum.to_string(),
                })
                .collect();
            broken.push(format!("{rule}: {}", shown.join(", ")));
        }
    }
    let collect: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount_vnd), 0) AS BIGINT) FROM ledger_entries WHERE account = 'collect'",
    )
    .fetch_one(&db.pool)
    .await?;
    let expected = money_in_minus_out(db).await?;
    if collect != expected {
        broken.push(format!(
            "collecting account {collect} ≠ money in − money out {expected}"
        ));
    }
    Ok(broken)
}

/// From the records the ledger does not own: incoming transfers the feed reported, minus
/// payouts confirmed and refunds recorded by admins.
async fn money_in_minus_out(db: &Db) -> Result<i64> {
    let q = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql).fetch_one(&db.pool);
    let money_in = q(
        "SELECT CAST(COALESCE(SUM(amount_vnd), 0) AS BIGINT) FROM bank_transactions
         WHERE amount_vnd > 0 AND status IN ('matched', 'unmatched', 'refunded')",
    )
    .await?;
    let payouts =
        q("SELECT CAST(COALESCE(SUM(amount_vnd), 0) AS BIGINT) FROM payouts WHERE status = 'paid'")
            .await?;
    // `payments.refunded_vnd` is every refund recorded for the payment (its orders' too).
    let refunds = q("SELECT CAST(COALESCE(SUM(refunded_vnd), 0) AS BIGINT) FROM payments")
        .await?
        + q("SELECT CAST(COALESCE(SUM(amount_vnd), 0) AS BIGINT) FROM bank_transactions WHERE status = 'refunded'")
            .await?;
    // Outflows the admin explained as a payout sent twice or a loss (the others are either
    // already counted above or still waiting to be explained).
    let explained_out = q(
        "SELECT CAST(COALESCE(SUM(-amount_vnd), 0) AS BIGINT) FROM bank_transactions
         WHERE amount_vnd < 0 AND outflow IN ('duplicate_payout', 'written_off')",
    )
    .await?;
    Ok(money_in - payouts - refunds - explained_out)
}

/// The last check's findings, kept for every instance to show: admin pages' banner,
/// `/readyz`, `/metrics`.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Health {
    pub checked_at: Option<i64>,
    pub violations: Vec<String>,
}

/// Check the invariants now and keep the result (the housekeeping task, every few minutes):
/// a violation is logged as an error.
pub async fn run_check(db: &Db) -> Result<Vec<String>> {
    let broken = check_invariants(db).await?;
    if !broken.is_empty() {
        tracing::error!(violations = ?broken, "ledger invariants broken");
    }
    sqlx::query(
        "INSERT INTO ledger_health (id, checked_at, violations) VALUES (1, $1, $2)
         ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at, violations = excluded.violations",
    )
    .bind(now_ms())
    .bind(broken.join("\n"))
    .execute(&db.pool)
    .await?;
    Ok(broken)
}

/// What the last check found (nothing checked yet: no time, no violations).
pub async fn health(db: &Db) -> Result<Health> {
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT checked_at, violations FROM ledger_health WHERE id = 1")
            .fetch_optional(&db.pool)
            .await?;
    Ok(match row {
        None => Health::default(),
        Some((at, v)) => Health {
            checked_at: Some(at),
            violations: v
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
        },
    })
}
/// Event keys shared by the live code and the backfill.
pub mod keys {
    /// Money in: a transfer counted (for a payment or into suspense).
    pub fn transfer(txn: i64) -> String {
        format!("transfer:txn:{txn}")
    }
    /// An unmatched transfer sent back to its payer.
    pub fn returned(txn: i64) -> String {
        format!("return:txn:{txn}")
    }
}
