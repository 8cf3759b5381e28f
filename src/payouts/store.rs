//! Payout accounts, runs and the life of each payout, every money step posted to the ledger
//! in the same transaction.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{PayoutAccount, new_code};
use crate::accounts::User;
use crate::config::Config;
use crate::db::{Db, Tx};
use crate::domain::now_ms;
use crate::error::{AppError, Result};
use crate::ledger::store::{self as ledger, Refs};
use crate::ledger::{self as journals, Account};
use crate::payments::store::audit;

/// A seller sets where their shop's money goes. The password is asked again (a stolen
/// session must not redirect a village's income), the change is audited and announced on
/// every channel of the shop, and payouts wait `PAYOUT_ACCOUNT_HOLD_HOURS` after it.
pub async fn set_account(
    db: &Db,
    cfg: &Config,
    user: &User,
    shop: &crate::catalog::Shop,
    account: &PayoutAccount,
    password: &str,
) -> Result<i64> {
    crate::catalog::store::authorize_shop(user, shop)?;
    let key = format!("payout-account:{}", user.id.0);
    if !crate::limits::take(db, &key, 5, 15 * 60_000).await? {
        return Err(AppError::TooManyAttempts(15));
    }
    let hash = crate::accounts::store::password_hash_of(db, user.id).await?;
    if !crate::accounts::verify_password(password.to_string(), hash).await? {
        return Err(AppError::field("password", "Mật khẩu không đúng"));
    }
    crate::limits::clear(db, &key).await?;
    let hold_until = now_ms() + cfg.payouts.account_hold_hours * 3_600_000;
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE shops SET bank_bin = $1, bank_account_no = $2, bank_account_name = $3,
           payout_hold_until = $4, updated_at = $5 WHERE id = $6",
    )
    .bind(account.bank_bin.clone())
    .bind(account.account_no.clone())
    .bind(account.account_name.clone())
    .bind(hold_until)
    .bind(now_ms())
    .bind(shop.id.0)
    .execute(&mut *tx)
    .await?;
    let masked = format!(
        "{} ••••{}",
        account.bank_bin,
        &account.account_no[account.account_no.len().saturating_sub(4)..]
    );
    audit(
        &mut tx,
        user,
        "payout_account_changed",
        &format!("shop:{}", shop.slug),
        &masked,
    )
    .await?;
    crate::notify::event(&mut tx, "payout_account_changed", shop.id.0).await?;
    tx.commit().await?;
    Ok(hold_until)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PayoutView {
    pub code: String,
    pub shop: ShopRef,
    pub amount_vnd: i64,
    pub status: String,
    pub method: String,
    pub bank: BankRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vietqr_payload: Option<String>,
    pub run_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bank_reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<i64>,
    #[serde(skip)]
    pub id: i64,
    #[serde(skip)]
    pub shop_id: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ShopRef {
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BankRef {
    pub bin: String,
    pub account_no: String,
    pub account_name: String,
}

const PAYOUT_SELECT: &str =
    "SELECT po.id, po.code, po.shop_id, s.slug, s.name, po.amount_vnd, po.status,
       po.method, po.bank_bin, po.account_no, po.account_name, r.code AS run_code, po.flag,
       po.bank_reference, po.last_error, po.created_at, po.paid_at
     FROM payouts po JOIN shops s ON s.id = po.shop_id JOIN payout_runs r ON r.id = po.run_id";

fn payout_from_row(r: &AnyRow) -> Result<PayoutView> {
    let method: String = r.try_get("method")?;
    let code: String = r.try_get("code")?;
    let bank = BankRef {
        bin: r.try_get("bank_bin")?,
        account_no: r.try_get("account_no")?,
        account_name: r.try_get("account_name")?,
    };
    let amount: i64 = r.try_get("amount_vnd")?;
    // The treasurer scans this in the cooperative's banking app: exact amount, the code in
    // the description (purpose field 08).
    let vietqr_payload = if method == "bank_app" {
        crate::payments::banks::BankBin::parse(&bank.bin)
            .ok()
            .and_then(|bin| {
                crate::payments::vietqr::TransferQr {
                    bin,
                    account: bank.account_no.clone(),
                    amount: crate::domain::Vnd::new(amount).ok(),
                    bill_number: None,
                    purpose: Some(super::description(&code)),
                }
                .payload()
                .ok()
            })
    } else {
        None
    };
    Ok(PayoutView {
        id: r.try_get("id")?,
        shop_id: r.try_get("shop_id")?,
        code,
        shop: ShopRef {
            slug: r.try_get("slug")?,
            name: r.try_get("name")?,
        },
        amount_vnd: amount,
        status: r.try_get("status")?,
        method,
        bank,
        vietqr_payload,
        run_code: r.try_get("run_code")?,
        flag: r.try_get("flag")?,
        bank_reference: r.try_get("bank_reference")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        paid_at: r.try_get("paid_at")?,
    })
}

pub async fn payout_by_code(db: &Db, code: &str) -> Result<PayoutView> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{PAYOUT_SELECT} WHERE po.code = $1"
    )))
    .bind(code.trim().to_uppercase())
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    payout_from_row(&r)
}

pub async fn payouts_of_run(db: &Db, run_id: i64) -> Result<Vec<PayoutView>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{PAYOUT_SELECT} WHERE po.run_id = $1 ORDER BY po.id"
    )))
    .bind(run_id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(payout_from_row).collect()
}

pub async fn payouts_of_shop(db: &Db, shop: i64, limit: i64) -> Result<Vec<PayoutView>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{PAYOUT_SELECT} WHERE po.shop_id = $1 ORDER BY po.id DESC LIMIT $2"
    )))
    .bind(shop)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(payout_from_row).collect()
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunView {
    pub code: String,
    pub method: String,
    pub created_at: i64,
    pub payouts: Vec<PayoutView>,
    #[serde(skip)]
    pub id: i64,
}

pub async fn run_by_code(db: &Db, code: &str) -> Result<RunView> {
    let r = sqlx::query("SELECT id, code, method, created_at FROM payout_runs WHERE code = $1")
        .bind(code.trim().to_uppercase())
        .fetch_optional(&db.pool)
        .await?
        .ok_or(AppError::NotFound)?;
    let id: i64 = r.try_get("id")?;
    Ok(RunView {
        id,
        code: r.try_get("code")?,
        method: r.try_get("method")?,
        created_at: r.try_get("created_at")?,
        payouts: payouts_of_run(db, id).await?,
    })
}

/// Runs, newest first: (code, method, created_at, payouts, total).
pub async fn recent_runs(db: &Db, limit: i64) -> Result<Vec<(String, String, i64, i64, i64)>> {
    let rows = sqlx::query(
        "SELECT r.code, r.method, r.created_at, COUNT(po.id) AS n,
           CAST(COALESCE(SUM(po.amount_vnd), 0) AS BIGINT) AS total
         FROM payout_runs r LEFT JOIN payouts po ON po.run_id = r.id
         GROUP BY r.id, r.code, r.method, r.created_at ORDER BY r.id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("code")?,
                r.try_get("method")?,
                r.try_get("created_at")?,
                r.try_get("n")?,
                r.try_get("total")?,
            ))
        })
        .collect()
}

/// Start a payout run: every active shop with a payout account outside its hold and at
/// least `PAYOUT_MIN_VND` available gets one payout for all of it, moved to in transit in the
/// same transaction, under the shop's lock (a refund or another run at the same moment sees
/// the money gone; the partial unique index allows one open payout per shop).
pub async fn start_run(db: &Db, cfg: &Config, admin: &User, method: &str) -> Result<RunView> {
    admin.require_admin()?;
    match method {
        "bank_app" => {}
        "payos" if cfg.payouts.payos.is_some() => {}
        "payos" => {
            return Err(AppError::field(
                "method",
                "Chi hộ qua payOS chưa được cấu hình (PAYOS_PAYOUT_*)",
            ));
        }
        _ => {
            return Err(AppError::field(
                "method",
                "Chọn \"payos\" hoặc \"bank_app\"",
            ));
        }
    }
    let now = now_ms();
    let mut tx = db.begin().await?;
    let run_code = loop {
        let c = format!("CLPR{}", &new_code()[4..]);
        let used: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payout_runs WHERE code = $1")
            .bind(c.clone())
            .fetch_one(&mut *tx)
            .await?;
        if used == 0 {
            break c;
        }
    };
    let run_id: i64 = sqlx::query_scalar(
        "INSERT INTO payout_runs (code, method, created_by, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(run_code.clone())
    .bind(method)
    .bind(admin.id.0)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let shops = sqlx::query(
        "SELECT id, bank_bin, bank_account_no, bank_account_name FROM shops
         WHERE active = 1 AND bank_bin IS NOT NULL AND bank_account_no IS NOT NULL
           AND (payout_hold_until IS NULL OR payout_hold_until <= $1)
           AND id IN (SELECT shop_id FROM ledger_entries WHERE account = 'shop_available'
                      GROUP BY shop_id HAVING -SUM(amount_vnd) >= $2)
         ORDER BY id",
    )
    .bind(now)
    .bind(cfg.payouts.min_vnd)
    .fetch_all(&mut *tx)
    .await?;
    for s in &shops {
        let shop: i64 = s.try_get("id")?;
        ledger::lock_shop(&mut tx, shop).await?;
        let available = -ledger::shop_sum(&mut tx, shop, Account::ShopAvailable).await?;
        if available < cfg.payouts.min_vnd {
            continue;
        }
        let code = loop {
            let c = new_code();
            let used: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payouts WHERE code = $1")
                .bind(c.clone())
                .fetch_one(&mut *tx)
                .await?;
            if used == 0 {
                break c;
            }
        };
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO payouts (code, run_id, shop_id, method, amount_vnd, status, bank_bin, account_no,
               account_name, next_check_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, $9, $9, $9)
             ON CONFLICT (shop_id) WHERE status IN ('pending', 'sent') DO NOTHING RETURNING id",
        )
        .bind(code)
        .bind(run_id)
        .bind(shop)
        .bind(method)
        .bind(available)
        .bind(s.try_get::<String, _>("bank_bin")?)
        .bind(s.try_get::<String, _>("bank_account_no")?)
        .bind(s.try_get::<Option<String>, _>("bank_account_name")?.unwrap_or_default())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else { continue };
        ledger::post(
            &mut tx,
            &journals::payout_sent(shop, available),
            Refs::payout(id),
            "",
        )
        .await?;
        if method == "bank_app" {
            crate::notify::event(&mut tx, "payout_sent", id).await?;
        }
    }
    audit(
        &mut tx,
        admin,
        "payout_run",
        &format!("run:{run_code}"),
        match method {
            "payos" => "Chuyển qua payOS",
            _ => "Chuyển bằng ứng dụng ngân hàng",
        },
    )
    .await?;
    tx.commit().await?;
    if method == "payos" {
        // Send right away; whatever fails transiently is retried by the follow-up job.
        if let Err(e) = super::payos::run_once(db, cfg).await {
            tracing::warn!(error = %e, "sending payouts to payOS failed; will retry");
        }
    }
    run_by_code(db, &run_code).await
}

/// The payout reached the shop's bank: in transit → out of the collecting account.
pub async fn mark_paid(tx: &mut Tx, payout: i64, reference: Option<&str>) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE payouts SET status = 'paid', paid_at = $1, updated_at = $1,
           bank_reference = COALESCE($2, bank_reference), next_check_at = NULL
         WHERE id = $3 AND status IN ('pending', 'sent') RETURNING shop_id, amount_vnd",
    )
    .bind(now_ms())
    .bind(reference.map(str::to_string))
    .bind(payout)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(r) = r else { return Ok(false) };
    let (shop, amount): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
    ledger::post(
        tx,
        &journals::payout_paid(shop, amount),
        Refs::payout(payout),
        "",
    )
    .await?;
    crate::notify::event(tx, "payout_paid", payout).await?;
    Ok(true)
}

/// The payout failed, was cancelled or came back: the money is available again and the
/// seller and the admins are told.
pub async fn mark_failed(tx: &mut Tx, payout: i64, reason: &str) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE payouts SET status = 'failed', last_error = $1, updated_at = $2, next_check_at = NULL
         WHERE id = $3 AND status IN ('pending', 'sent') RETURNING shop_id, amount_vnd",
    )
    .bind(reason.to_string())
    .bind(now_ms())
    .bind(payout)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(r) = r else { return Ok(false) };
    let (shop, amount): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
    ledger::lock_shop(tx, shop).await?;
    ledger::post(
        tx,
        &journals::payout_failed(shop, amount),
        Refs::payout(payout),
        reason,
    )
    .await?;
    crate::notify::event(tx, "payout_failed", payout).await?;
    Ok(true)
}

/// An outgoing transfer in the bank feed: a payout made from the bank app is confirmed when
/// the description names it and the amount is exactly its amount (true); any other amount is
/// flagged for the admin (false, as is a transfer naming no open payout).
pub async fn confirm_from_feed(
    tx: &mut Tx,
    txn: i64,
    amount: i64,
    description: &str,
) -> Result<bool> {
    for code in super::codes_in(description) {
        let r = sqlx::query(
            "SELECT id, amount_vnd FROM payouts WHERE code = $1 AND status IN ('pending', 'sent')",
        )
        .bind(code.clone())
        .fetch_optional(&mut **tx)
        .await?;
        let Some(r) = r else { continue };
        let (id, expected): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
        let reference: Option<String> =
            sqlx::query_scalar("SELECT provider_txn_id FROM bank_transactions WHERE id = $1")
                .bind(txn)
                .fetch_optional(&mut **tx)
                .await?;
        if amount == expected {
            return mark_paid(tx, id, reference.as_deref()).await;
        } else {
            sqlx::query("UPDATE payouts SET flag = $1, updated_at = $2 WHERE id = $3")
                .bind(format!(
                    "Ngân hàng báo chuyển {amount} đ (giao dịch {}), khác số tiền chi {expected} đ",
                    reference.unwrap_or_default()
                ))
                .bind(now_ms())
                .bind(id)
                .execute(&mut **tx)
                .await?;
            crate::notify::event(tx, "payout_flagged", id).await?;
        }
        return Ok(false);
    }
    Ok(false)
}

/// An admin records that a payout was paid (the bank's reference), audited.
pub async fn admin_mark_paid(
    db: &Db,
    admin: &User,
    code: &str,
    reference: &str,
) -> Result<PayoutView> {
    admin.require_admin()?;
    let reference = crate::domain::text::clean_line(reference, "mã giao dịch ngân hàng", 100)
        .map_err(|m| AppError::field("reference", m))?;
    let p = payout_by_code(db, code).await?;
    let mut tx = db.begin().await?;
    if !mark_paid(&mut tx, p.id, Some(&reference)).await? {
        return Err(AppError::Conflict(
            "Khoản chi này không còn chờ xác nhận".into(),
        ));
    }
    audit(
        &mut tx,
        admin,
        "payout_marked_paid",
        &format!("payout:{}", p.code),
        &reference,
    )
    .await?;
    tx.commit().await?;
    payout_by_code(db, code).await
}

/// What an admin says an unexplained outgoing transfer was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outflow {
    /// A bank-app payout sent a second time: the shop owes it back.
    DuplicatePayout,
    /// Already in the books (a refund recorded, a payout marked paid by hand).
    Accounted,
    /// Gone for good: the platform's loss.
    WrittenOff,
}

impl Outflow {
    pub fn parse(s: &str) -> std::result::Result<Outflow, String> {
        match s.trim() {
            "duplicate_payout" => Ok(Outflow::DuplicatePayout),
            "accounted" => Ok(Outflow::Accounted),
            "written_off" => Ok(Outflow::WrittenOff),
            _ => {
                Err("chọn một cách giải thích: duplicate_payout, accounted hoặc written_off".into())
            }
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Outflow::DuplicatePayout => "duplicate_payout",
            Outflow::Accounted => "accounted",
            Outflow::WrittenOff => "written_off",
        }
    }
}

/// The admin explains an outgoing transfer that confirmed no payout, in one transaction with
/// its journal: a payout sent twice (`payout_code` of a paid payout of the same amount; the
/// shop owes it back), already accounted for, or written off (a note of at least 10
/// characters for the last two). Audited; explained once.
pub async fn explain_outflow(
    db: &Db,
    admin: &User,
    txn: i64,
    how: &str,
    payout_code: &str,
    note: &str,
) -> Result<()> {
    admin.require_admin()?;
    let how = Outflow::parse(how).map_err(|m| AppError::field("as", m))?;
    let note = note.trim();
    if how != Outflow::DuplicatePayout && note.chars().count() < 10 {
        return Err(AppError::field(
            "note",
            "ghi rõ khoản tiền này là gì (ít nhất 10 ký tự)",
        ));
    }
    let mut tx = db.begin().await?;
    // The row's lock (PostgreSQL) or the write lock (SQLite): explained once.
    let amount: Option<i64> = sqlx::query_scalar(
        "UPDATE bank_transactions SET outflow = outflow WHERE id = $1 AND outflow = 'unexplained'
         RETURNING amount_vnd",
    )
    .bind(txn)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(amount) = amount else {
        return Err(AppError::Conflict(
            "Giao dịch này không phải tiền ra đang chờ giải thích".into(),
        ));
    };
    let out = amount.saturating_neg();
    let detail = match how {
        Outflow::DuplicatePayout => {
            let code = payout_code.trim().to_uppercase();
            let p: Option<(i64, i64, i64)> = sqlx::query_as(
                "SELECT id, shop_id, amount_vnd FROM payouts WHERE code = $1 AND status = 'paid'",
            )
            .bind(code.clone())
            .fetch_optional(&mut *tx)
            .await?;
            let Some((payout, shop, paid)) = p else {
                return Err(AppError::field(
                    "payout_code",
                    "không có khoản chi đã chuyển với mã này",
                ));
            };
            if paid != out {
                return Err(AppError::field(
                    "payout_code",
                    format!("khoản chi {code} là {paid} đ, khác số tiền ra {out} đ"),
                ));
            }
            ledger::post(
                &mut tx,
                &journals::payout_duplicate(shop, out),
                Refs::payout(payout),
                "",
            )
            .await?;
            code
        }
        Outflow::WrittenOff => {
            ledger::post(
                &mut tx,
                &journals::outflow_written_off(out),
                Refs::txn(txn),
                "",
            )
            .await?;
            note.to_string()
        }
        Outflow::Accounted => note.to_string(),
    };
    sqlx::query("UPDATE bank_transactions SET outflow = $1, outflow_note = $2 WHERE id = $3")
        .bind(how.as_str())
        .bind(detail.clone())
        .bind(txn)
        .execute(&mut *tx)
        .await?;
    audit(
        &mut tx,
        admin,
        "outflow_explained",
        &format!("txn:{txn}"),
        &format!("{}: {detail}", how.as_str()),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
