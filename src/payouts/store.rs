//! Payout accounts, runs and the life of each payout, every money step posted to the ledger
//! in the same transaction.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::state::PayoutStatus;
use super::{PayoutAccount, new_code};
use crate::accounts::User;
use crate::accounts::store::audit_action as audit;
use crate::config::Config;
use crate::db::{Db, Tx};
use crate::domain::now_ms;
use crate::error::{AppError, Result};
use crate::ledger as journals;
use crate::ledger::store::{self as ledger, Refs};

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
    crate::accounts::store::confirm_password(db, user.id, password).await?;
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
    let masked = super::masked_account(&account.bank_bin, &account.account_no);
    audit(
        &mut tx,
        user,
        "payout_account_changed",
        &format!("shop:{}", shop.slug),
        &masked,
    )
    .await?;
    crate::notify::event(
        &mut tx,
        crate::notify::NoticeKind::PayoutAccountChanged,
        shop.id.0,
    )
    .await?;
    tx.commit().await?;
    Ok(hold_until)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PayoutView {
    pub code: String,
    pub shop: ShopRef,
    pub amount_vnd: i64,
    pub status: PayoutStatus,
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
    /// The bank's name as people know it ("Vietcombank"), never the BIN alone.
    pub bank_name: String,
    pub account_no: String,
    pub account_name: String,
}

const PAYOUT_SELECT: &str =
    "SELECT po.id, po.code, po.shop_id, s.slug, s.name, po.amount_vnd, po.status,
       po.method, po.bank_bin, po.account_no, po.account_name, r.code AS run_code, po.flag,
       po.bank_reference, po.last_error, po.created_at, po.paid_at
     FROM payouts po JOIN shops s ON s.id = po.shop_id JOIN payout_runs r ON r.id = po.run_id";

fn parse_status(s: &str) -> Result<PayoutStatus> {
    PayoutStatus::parse(s)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("unknown payout status {s:?}")))
}

fn payout_from_row(r: &AnyRow) -> Result<PayoutView> {
    let method: String = r.try_get("method")?;
    let code: String = r.try_get("code")?;
    let bin: String = r.try_get("bank_bin")?;
    let bank = BankRef {
        bank_name: super::bank_name(&bin).to_string(),
        bin,
        account_no: r.try_get("account_no")?,
        account_name: r.try_get("account_name")?,
    };
    let amount: i64 = r.try_get("amount_vnd")?;
    // The treasurer scans this in the cooperative's banking app: exact amount, the code in
    // the description (purpose field 08).
    let vietqr_payload = if method == "bank_app" {
        crate::domain::banks::BankBin::parse(&bank.bin)
            .ok()
            .and_then(|bin| {
                crate::domain::vietqr::TransferQr {
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
        status: parse_status(&r.try_get::<String, _>("status")?)?,
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

impl RunView {
    /// The run as the bank's bulk-transfer upload: every payout of it but those that failed
    /// (a failed payout's money is back with its shop, never sent again from this file).
    pub fn bulk_csv(&self) -> String {
        let rows: Vec<super::CsvRow> = self
            .payouts
            .iter()
            .filter(|p| p.status != super::state::PayoutStatus::Failed)
            .map(|p| super::CsvRow {
                code: &p.code,
                account_no: &p.bank.account_no,
                account_name: &p.bank.account_name,
                bank_bin: &p.bank.bin,
                amount: p.amount_vnd,
            })
            .collect();
        super::bulk_csv(&rows)
    }
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

/// Why a shop with money is not paid in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    /// No payout account set.
    NoAccount,
    /// The payout account changed lately: paid from `hold_until`.
    AccountHold,
    /// The shop is switched off.
    Inactive,
    /// A payout of it is still in transit.
    OpenPayout,
    /// What it owes takes all its available money.
    Owed,
    /// Less than `PAYOUT_MIN_VND` after what it owes.
    BelowMinimum,
}

impl HoldReason {
    pub fn words(self) -> &'static str {
        match self {
            HoldReason::NoAccount => "chưa có tài khoản nhận tiền",
            HoldReason::AccountHold => "vừa đổi tài khoản nhận tiền, đang trong thời gian chờ",
            HoldReason::Inactive => "cửa hàng đang tạm ngưng",
            HoldReason::OpenPayout => "còn một khoản chi đang chuyển",
            HoldReason::Owed => "số tiền cửa hàng còn nợ lớn hơn số có thể rút",
            HoldReason::BelowMinimum => "chưa đủ mức chi tối thiểu",
        }
    }
}

/// One shop with available money, as a run would treat it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlanLine {
    pub shop: ShopRef,
    pub available_vnd: i64,
    pub owed_vnd: i64,
    /// Paid in the run: available less what the shop owes (0 when held).
    pub amount_vnd: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<HoldReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_words: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_until: Option<i64>,
    /// "Agribank ••••4567" (no account: absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bank: Option<String>,
    #[serde(skip)]
    pub shop_id: i64,
}

/// What a run started now would pay, and whom it would hold and why.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Plan {
    pub due: Vec<PlanLine>,
    pub held: Vec<PlanLine>,
    pub total_vnd: i64,
    pub min_vnd: i64,
}

/// A shop's facts as the plan reads them.
#[derive(Debug, Clone, Default)]
pub struct ShopMoney {
    pub available: i64,
    pub owed: i64,
    pub has_account: bool,
    pub active: bool,
    pub hold_until: Option<i64>,
    pub open_payout: bool,
}

/// Pure rule of a run: what it pays a shop (available minus what it owes, never negative),
/// or why it holds it.
pub fn decide(m: &ShopMoney, now: i64, min_vnd: i64) -> std::result::Result<i64, HoldReason> {
    let net = m.available - m.owed.max(0);
    if !m.has_account {
        Err(HoldReason::NoAccount)
    } else if !m.active {
        Err(HoldReason::Inactive)
    } else if m.hold_until.is_some_and(|t| t > now) {
        Err(HoldReason::AccountHold)
    } else if m.open_payout {
        Err(HoldReason::OpenPayout)
    } else if net <= 0 {
        Err(HoldReason::Owed)
    } else if net < min_vnd {
        Err(HoldReason::BelowMinimum)
    } else {
        Ok(net)
    }
}

const SHOP_MONEY: &str = "SELECT s.id, s.slug, s.name, s.active, s.bank_bin, s.bank_account_no,
       s.payout_hold_until,
       (SELECT CAST(COALESCE(-SUM(e.amount_vnd), 0) AS BIGINT) FROM ledger_entries e
         WHERE e.shop_id = s.id AND e.account = 'shop_available') AS available,
       (SELECT CAST(COALESCE(SUM(e.amount_vnd), 0) AS BIGINT) FROM ledger_entries e
         WHERE e.shop_id = s.id AND e.account = 'shop_owed') AS owed,
       (SELECT COUNT(*) FROM payouts po WHERE po.shop_id = s.id AND po.status IN ('pending', 'sent')) AS open_payouts
     FROM shops s";

fn plan_line(r: &AnyRow, now: i64, min_vnd: i64) -> Result<PlanLine> {
    let bin: Option<String> = r.try_get("bank_bin")?;
    let no: Option<String> = r.try_get("bank_account_no")?;
    let m = ShopMoney {
        available: r.try_get("available")?,
        owed: r.try_get("owed")?,
        has_account: bin.is_some() && no.is_some(),
        active: r.try_get::<i64, _>("active")? == 1,
        hold_until: r.try_get("payout_hold_until")?,
        open_payout: r.try_get::<i64, _>("open_payouts")? > 0,
    };
    let decision = decide(&m, now, min_vnd);
    Ok(PlanLine {
        shop_id: r.try_get("id")?,
        shop: ShopRef {
            slug: r.try_get("slug")?,
            name: r.try_get("name")?,
        },
        available_vnd: m.available,
        owed_vnd: m.owed,
        amount_vnd: *decision.as_ref().unwrap_or(&0),
        reason: decision.err(),
        reason_words: decision.err().map(|r| r.words().to_string()),
        hold_until: match decision {
            Err(HoldReason::AccountHold) => m.hold_until,
            _ => None,
        },
        bank: match (bin, no) {
            (Some(b), Some(n)) => Some(super::masked_account(&b, &n)),
            _ => None,
        },
    })
}

/// The plan of a run started now: every shop with available money, due or held.
pub async fn plan(db: &Db, cfg: &Config) -> Result<Plan> {
    let now = now_ms();
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SHOP_MONEY} WHERE s.id IN (SELECT shop_id FROM ledger_entries WHERE account = 'shop_available'
           GROUP BY shop_id HAVING SUM(amount_vnd) < 0) ORDER BY s.id"
    )))
    .fetch_all(&db.pool)
    .await?;
    let mut due = Vec::new();
    let mut held = Vec::new();
    for r in &rows {
        let l = plan_line(r, now, cfg.payouts.min_vnd)?;
        if l.reason.is_none() {
            due.push(l);
        } else {
            held.push(l);
        }
    }
    Ok(Plan {
        total_vnd: due.iter().map(|l| l.amount_vnd).sum(),
        due,
        held,
        min_vnd: cfg.payouts.min_vnd,
    })
}

/// Start a payout run: each shop the plan finds due gets one payout of its available money
/// less what it owes (the debt is settled from available first, with its own journal),
/// moved to in transit in the same transaction, under the shop's lock (a refund or another
/// run at the same moment sees the money gone; the partial unique index allows one open
/// payout per shop). A run that would pay nobody is not created: 409 with the reasons.
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
    let planned = plan(db, cfg).await?;
    if planned.due.is_empty() {
        return Err(nothing_to_pay(&planned));
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
    let mut paid = 0;
    for planned_line in &planned.due {
        let shop = planned_line.shop_id;
        // Read again under the shop's lock: another run or a refund may have moved it.
        ledger::lock_shop(&mut tx, shop).await?;
        let r = sqlx::query(sqlx::AssertSqlSafe(format!("{SHOP_MONEY} WHERE s.id = $1")))
            .bind(shop)
            .fetch_one(&mut *tx)
            .await?;
        let line = plan_line(&r, now, cfg.payouts.min_vnd)?;
        if line.reason.is_some() {
            continue;
        }
        let netted = line.owed_vnd.clamp(0, line.available_vnd);
        let amount = line.amount_vnd;
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
             SELECT $1, $2, id, $3, $4, $5, bank_bin, bank_account_no, COALESCE(bank_account_name, ''), $6, $6, $6
               FROM shops WHERE id = $7
             ON CONFLICT (shop_id) WHERE status IN ('pending', 'sent') DO NOTHING RETURNING id",
        )
        .bind(code)
        .bind(run_id)
        .bind(method)
        .bind(amount)
        .bind(PayoutStatus::Pending.as_str())
        .bind(now)
        .bind(shop)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else { continue };
        if netted > 0 {
            ledger::post(
                &mut tx,
                &journals::owed_netted(shop, netted),
                Refs::payout(id),
                &format!("net:payout:{id}"),
                "",
            )
            .await?;
        }
        ledger::post(
            &mut tx,
            &journals::payout_sent(shop, amount),
            Refs::payout(id),
            &format!("payout:sent:{id}"),
            "",
        )
        .await?;
        if method == "bank_app" {
            crate::notify::event(&mut tx, crate::notify::NoticeKind::PayoutSent, id).await?;
        }
        paid += 1;
    }
    if paid == 0 {
        // Another run took them a moment ago: no empty run is kept.
        drop(tx);
        return Err(nothing_to_pay(&plan(db, cfg).await?));
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
        if let Err(e) = super::payos::run_once(db, cfg, &[&super::payos::ShopBook]).await {
            tracing::warn!(error = %e, "sending payouts to payOS failed; will retry");
        }
    }
    run_by_code(db, &run_code).await
}

/// 409 for a run with nobody to pay, saying who is held and why.
fn nothing_to_pay(plan: &Plan) -> AppError {
    let mut why: Vec<String> = plan
        .held
        .iter()
        .take(20)
        .map(|l| {
            format!(
                "{}: {}",
                l.shop.name,
                l.reason.map_or("", HoldReason::words)
            )
        })
        .collect();
    if why.is_empty() {
        why.push("không cửa hàng nào có tiền có thể rút".into());
    }
    AppError::Conflict(format!(
        "Không có khoản nào cần chi trong đợt này — {}.",
        why.join("; ")
    ))
}

/// Move a payout's status (checked by `PayoutStatus::transition`), guarded by the status it
/// had; false when another process moved it first. Returns (shop, amount) when moved.
async fn move_payout(
    tx: &mut Tx,
    payout: i64,
    to: PayoutStatus,
    sets: &str,
    text: Option<&str>,
) -> Result<Option<(i64, i64, PayoutStatus)>> {
    let current: Option<String> = sqlx::query_scalar("SELECT status FROM payouts WHERE id = $1")
        .bind(payout)
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
        "UPDATE payouts SET status = $1, updated_at = $2, next_check_at = NULL{sets}
         WHERE id = $3 AND status = $4 RETURNING shop_id, amount_vnd"
    )))
    .bind(to.as_str())
    .bind(now_ms())
    .bind(payout)
    .bind(from.as_str())
    .bind(text.map(str::to_string))
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match r {
        Some(r) => Some((r.try_get(0)?, r.try_get(1)?, from)),
        None => None,
    })
}

/// The payout reached the shop's bank: in transit → out of the collecting account.
pub async fn mark_paid(tx: &mut Tx, payout: i64, reference: Option<&str>) -> Result<bool> {
    let moved = move_payout(
        tx,
        payout,
        PayoutStatus::Paid,
        ", paid_at = $2, bank_reference = COALESCE($5, bank_reference)",
        reference,
    )
    .await?;
    let Some((shop, amount, _)) = moved else {
        return Ok(false);
    };
    ledger::post(
        tx,
        &journals::payout_paid(shop, amount),
        Refs::payout(payout),
        &format!("payout:paid:{payout}"),
        "",
    )
    .await?;
    crate::notify::event(tx, crate::notify::NoticeKind::PayoutPaid, payout).await?;
    Ok(true)
}

/// The payout failed or was cancelled before it was confirmed: the money is available
/// again, the shop is told to check its account and the admins are told; the shop is free
/// for the next run.
pub async fn mark_failed(tx: &mut Tx, payout: i64, reason: &str) -> Result<bool> {
    let current: Option<String> = sqlx::query_scalar("SELECT status FROM payouts WHERE id = $1")
        .bind(payout)
        .fetch_optional(&mut **tx)
        .await?;
    if !current
        .as_deref()
        .and_then(PayoutStatus::parse)
        .is_some_and(PayoutStatus::is_open)
    {
        return Ok(false);
    }
    let moved = move_payout(
        tx,
        payout,
        PayoutStatus::Failed,
        ", failed_at = $2, last_error = $5",
        Some(reason),
    )
    .await?;
    let Some((shop, amount, _)) = moved else {
        return Ok(false);
    };
    ledger::lock_shop(tx, shop).await?;
    ledger::post(
        tx,
        &journals::payout_failed(shop, amount),
        Refs::payout(payout),
        &format!("payout:failed:{payout}"),
        reason,
    )
    .await?;
    crate::notify::event(tx, crate::notify::NoticeKind::PayoutFailed, payout).await?;
    Ok(true)
}

/// An admin records that a payout did not go through (the bank refused it, the treasurer
/// could not send it): audited, money back to available, the shop told.
pub async fn admin_mark_failed(
    db: &Db,
    admin: &User,
    code: &str,
    reason: &str,
) -> Result<PayoutView> {
    admin.require_admin()?;
    let reason = crate::domain::text::clean_line(reason, "lý do", 200)
        .map_err(|m| AppError::field("reason", m))?;
    if reason.chars().count() < 5 {
        return Err(AppError::field(
            "reason",
            "ghi lý do khoản chi không thành công (ít nhất 5 ký tự)",
        ));
    }
    let p = payout_by_code(db, code).await?;
    let mut tx = db.begin().await?;
    if !mark_failed(&mut tx, p.id, &reason).await? {
        return Err(AppError::Conflict(
            "Khoản chi này không còn đang chuyển (đã chuyển xong hoặc đã ghi không thành công)"
                .into(),
        ));
    }
    audit(
        &mut tx,
        admin,
        "payout_marked_failed",
        &format!("payout:{}", p.code),
        &reason,
    )
    .await?;
    tx.commit().await?;
    payout_by_code(db, code).await
}

/// An incoming transfer in the bank feed naming a payout and carrying its exact amount is
/// that payout coming back (the bank returned it): in transit or paid, the money becomes the
/// shop's available money again, the payout fails, the shop and admins are told.
pub async fn returned_from_feed(
    tx: &mut Tx,
    txn: i64,
    amount: i64,
    description: &str,
) -> Result<bool> {
    for code in super::codes_in(description) {
        let r = sqlx::query("SELECT id, amount_vnd, status FROM payouts WHERE code = $1")
            .bind(code.clone())
            .fetch_optional(&mut **tx)
            .await?;
        let Some(r) = r else { continue };
        let (id, expected): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
        let status = parse_status(&r.try_get::<String, _>(2)?)?;
        if expected != amount || status == PayoutStatus::Failed {
            continue;
        }
        let reason = "Ngân hàng trả lại tiền (tài khoản nhận có thể sai hoặc đã đóng)";
        if status.is_open() {
            mark_failed(tx, id, reason).await?;
            // The money never left: it came back before the transfer out was seen. The
            // transfer out, if it shows later, waits for the admin as money nothing explains.
        } else {
            let Some((shop, amount, _)) = move_payout(
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
            ledger::lock_shop(tx, shop).await?;
            ledger::post(
                tx,
                &journals::payout_returned(shop, amount),
                Refs {
                    payout: Some(id),
                    txn: Some(txn),
                    ..Refs::default()
                },
                &format!("payout:returned:{id}"),
                reason,
            )
            .await?;
            crate::notify::event(tx, crate::notify::NoticeKind::PayoutFailed, id).await?;
        }
        sqlx::query("UPDATE bank_transactions SET returned_payout_id = $1 WHERE id = $2")
            .bind(id)
            .bind(txn)
            .execute(&mut **tx)
            .await?;
        return Ok(true);
    }
    Ok(false)
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
            "SELECT id, amount_vnd FROM payouts WHERE code = $1 AND status IN ($2, $3)",
        )
        .bind(code.clone())
        .bind(PayoutStatus::Pending.as_str())
        .bind(PayoutStatus::Sent.as_str())
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
            crate::notify::event(tx, crate::notify::NoticeKind::PayoutFlagged, id).await?;
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
                "SELECT id, shop_id, amount_vnd FROM payouts WHERE code = $1 AND status = $2",
            )
            .bind(code.clone())
            .bind(PayoutStatus::Paid.as_str())
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
                Refs {
                    payout: Some(payout),
                    txn: Some(txn),
                    ..Refs::default()
                },
                &format!("outflow:txn:{txn}"),
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
                &format!("outflow:txn:{txn}"),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> ShopMoney {
        ShopMoney {
            available: 360_000,
            owed: 0,
            has_account: true,
            active: true,
            hold_until: None,
            open_payout: false,
        }
    }

    #[test]
    fn a_run_pays_available_less_what_is_owed_or_says_why_not() {
        let now = 1_000;
        assert_eq!(decide(&shop(), now, 50_000), Ok(360_000));
        let owes = ShopMoney {
            owed: 180_000,
            ..shop()
        };
        assert_eq!(decide(&owes, now, 50_000), Ok(180_000));
        let owes_all = ShopMoney {
            owed: 400_000,
            ..shop()
        };
        assert_eq!(decide(&owes_all, now, 50_000), Err(HoldReason::Owed));
        let small = ShopMoney {
            available: 30_000,
            ..shop()
        };
        assert_eq!(decide(&small, now, 50_000), Err(HoldReason::BelowMinimum));
        let cases = [
            (
                ShopMoney {
                    has_account: false,
                    ..shop()
                },
                HoldReason::NoAccount,
            ),
            (
                ShopMoney {
                    active: false,
                    ..shop()
                },
                HoldReason::Inactive,
            ),
            (
                ShopMoney {
                    hold_until: Some(now + 1),
                    ..shop()
                },
                HoldReason::AccountHold,
            ),
            (
                ShopMoney {
                    open_payout: true,
                    ..shop()
                },
                HoldReason::OpenPayout,
            ),
        ];
        for (m, why) in cases {
            assert_eq!(decide(&m, now, 50_000), Err(why), "{m:?}");
        }
        // A hold that has ended holds nothing; a negative debt never adds money.
        assert_eq!(
            decide(
                &ShopMoney {
                    hold_until: Some(now),
                    ..shop()
                },
                now,
                0
            ),
            Ok(360_000)
        );
        assert_eq!(
            decide(&ShopMoney { owed: -5, ..shop() }, now, 0),
            Ok(360_000)
        );
    }
}

#[cfg(test)]
mod csv_tests {
    use super::*;

    fn payout(code: &str, status: PayoutStatus) -> PayoutView {
        PayoutView {
            code: code.into(),
            shop: ShopRef {
                slug: "s".into(),
                name: "S".into(),
            },
            amount_vnd: 100_000,
            status,
            method: "bank_app".into(),
            bank: BankRef {
                bin: "970436".into(),
                bank_name: "Vietcombank".into(),
                account_no: "0011001234567".into(),
                account_name: "NGUYEN THI HANH".into(),
            },
            vietqr_payload: None,
            run_code: "CLPR1".into(),
            flag: None,
            bank_reference: None,
            last_error: None,
            created_at: 0,
            paid_at: None,
            id: 1,
            shop_id: 1,
        }
    }

    #[test]
    fn the_bank_file_leaves_out_failed_payouts() {
        let run = RunView {
            code: "CLPR1".into(),
            method: "bank_app".into(),
            created_at: 0,
            payouts: vec![
                payout("CLPOAAAAAA", PayoutStatus::Pending),
                payout("CLPOBBBBBB", PayoutStatus::Failed),
                payout("CLPOCCCCCC", PayoutStatus::Paid),
            ],
            id: 1,
        };
        let csv = run.bulk_csv();
        assert!(
            csv.contains("CLPOAAAAAA") && csv.contains("CLPOCCCCCC"),
            "{csv}"
        );
        assert!(!csv.contains("CLPOBBBBBB"), "{csv}");
    }
}
