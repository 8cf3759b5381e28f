//! Buyer protection applied: the buyer's proof, confirmations and extensions, requests and
//! their answers and decisions, refunds sent to the buyer's bank, and the sweep that
//! releases what is due (the housekeeping task; tests pass their own `now`).

use serde::Serialize;
use sqlx::Row;

use super::{Outcome, Reason, RequestStatus, Step};
use crate::accounts::User;
use crate::config::Config;
use crate::db::{Db, Tx};
use crate::domain::money::format_vnd;
use crate::domain::now_ms;
use crate::error::{AppError, Result};
use crate::orders::release::{self, DeliveredBy, Facts, Release};
use crate::orders::store::{self as orders, OrderView};
use crate::orders::{Actor, OrderStatus};
use crate::payments::refunds::Target;
use crate::payouts::PayoutAccount;

const DAY_MS: i64 = 86_400_000;
/// Photos a side may attach to a request.
pub const MAX_PHOTOS: usize = 4;

/// How a buyer without an account proves the order is theirs.
#[derive(Debug, Clone)]
pub enum Proof {
    /// The phone number used at checkout (attempts counted per order and address).
    Phone(String),
    /// The signed link of the receipt email (`orders::buyer_token`).
    Token(String),
    /// This browser proved it before (the look-up cookie names the checkout).
    Remembered(Vec<i64>),
}

/// The order a buyer proves, or 404 whatever went wrong (an unknown code, a wrong phone or
/// link), so nothing tells whether the order exists. Phone tries count like failed logins.
pub async fn prove(
    db: &Db,
    cfg: &Config,
    client_key: &str,
    code: &str,
    proof: &Proof,
) -> Result<OrderView> {
    let order = orders::order_by_code(db, code).await;
    match proof {
        Proof::Token(t) => {
            let o = order.map_err(|_| AppError::NotFound)?;
            if orders::buyer_token_ok(&cfg.secret_key, &o.code, t) {
                Ok(o)
            } else {
                Err(AppError::NotFound)
            }
        }
        Proof::Remembered(ids) => {
            let o = order.map_err(|_| AppError::NotFound)?;
            if ids.contains(&o.checkout_id) {
                Ok(o)
            } else {
                Err(AppError::NotFound)
            }
        }
        Proof::Phone(phone) => {
            let subject = match &order {
                Ok(o) => format!("order:{}", o.code),
                Err(_) => "order:unknown".to_string(),
            };
            let checkout = order.as_ref().ok().map(|o| o.checkout_id);
            phone_proves(db, cfg, client_key, &subject, checkout, phone).await?;
            order.map_err(|_| AppError::NotFound)
        }
    }
}

/// The phone typed is the one the purchase was ordered with: every try is reserved first
/// against `subject` and the address (the login limits), an unknown purchase costs a try too
/// and reads the same as a wrong phone. The purchase's id, or 404.
async fn phone_proves(
    db: &Db,
    cfg: &Config,
    client_key: &str,
    subject: &str,
    checkout: Option<i64>,
    phone: &str,
) -> Result<i64> {
    let keys = crate::accounts::store::AttemptKeys::new("track", subject, client_key);
    keys.reserve(db, cfg.login_max_failures, cfg.login_window_minutes)
        .await?;
    let id = checkout.ok_or(AppError::NotFound)?;
    let c = orders::checkout_by_id(db, id).await?;
    let ok = crate::domain::PhoneVn::parse(phone)
        .map(|p| p.as_str() == c.buyer_phone)
        .unwrap_or(false);
    if !ok {
        return Err(AppError::NotFound);
    }
    keys.succeeded(db).await?;
    Ok(id)
}

/// The purchase (checkout) a buyer proves with any code they were shown — the purchase's
/// code (the payment's, in the transfer), a shop's order `CODE-1`, an old checkout code —
/// or 404 whatever went wrong. The link's token is that of the purchase code; phone tries
/// count against the purchase and the address like the order's.
pub async fn prove_purchase(
    db: &Db,
    cfg: &Config,
    client_key: &str,
    code: &str,
    proof: &Proof,
) -> Result<i64> {
    let checkout = orders::checkout_id_by_any_code(db, code).await?;
    match proof {
        Proof::Token(t) => {
            let id = checkout.ok_or(AppError::NotFound)?;
            let p = crate::payments::store::payment_of_checkout(db, id).await?;
            if orders::buyer_token_ok(&cfg.secret_key, &p.code, t) {
                Ok(id)
            } else {
                Err(AppError::NotFound)
            }
        }
        Proof::Remembered(ids) => checkout
            .filter(|id| ids.contains(id))
            .ok_or(AppError::NotFound),
        Proof::Phone(phone) => {
            let subject = match checkout {
                Some(id) => format!("checkout:{id}"),
                None => "checkout:unknown".to_string(),
            };
            phone_proves(db, cfg, client_key, &subject, checkout, phone).await
        }
    }
}

/// Hold the order's row for the rest of the transaction (a no-op update: a row lock on
/// PostgreSQL; SQLite's write transactions are serial already), so a confirmation, a request
/// and a release of one order never interleave.
async fn lock_order(tx: &mut Tx, order: i64) -> Result<()> {
    sqlx::query("UPDATE orders SET updated_at = updated_at WHERE id = $1")
        .bind(order)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// What the rules read of one order.
pub async fn facts(conn: &mut sqlx::AnyConnection, order: i64) -> Result<Facts> {
    let r = sqlx::query(
        "SELECT status, shipped_at, delivered_at, delivered_by, received_at, extended_at, released_at,
           (SELECT COUNT(*) FROM order_requests q WHERE q.order_id = o.id
              AND q.status IN ('open', 'replied', 'escalated', 'awaiting_return', 'return_sent')) AS open_requests
         FROM orders o WHERE id = $1",
    )
    .bind(order)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(AppError::NotFound)?;
    let status: String = r.try_get("status")?;
    let status = OrderStatus::parse(&status)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("bad status {status}")))?;
    Ok(Facts {
        live: matches!(
            status,
            OrderStatus::Paid
                | OrderStatus::Accepted
                | OrderStatus::Shipped
                | OrderStatus::Delivered
        ),
        shipped_at: r.try_get("shipped_at")?,
        delivered_at: r.try_get("delivered_at")?,
        delivered_by: r
            .try_get::<Option<String>, _>("delivered_by")?
            .as_deref()
            .and_then(DeliveredBy::parse),
        received_at: r.try_get("received_at")?,
        extended: r.try_get::<Option<i64>, _>("extended_at")?.is_some(),
        released_at: r.try_get("released_at")?,
        request_open: r.try_get::<i64, _>("open_requests")? > 0,
    })
}

/// When the order's money is (or was) released and why.
pub async fn release_of(db: &Db, cfg: &Config, order: i64) -> Result<Release> {
    let mut conn = db.pool.acquire().await?;
    let f = facts(&mut conn, order).await?;
    Ok(release::release(&f, &cfg.protection.rules, now_ms()))
}

/// One step of buyer protection, kept forever and shown on both sides' order pages; the
/// notice worker tells whoever the step concerns.
#[allow(clippy::too_many_arguments)]
async fn step_event(
    tx: &mut Tx,
    order: i64,
    request: Option<i64>,
    action: &str,
    actor: &str,
    user: Option<i64>,
    text: &str,
    amount: Option<i64>,
) -> Result<()> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO protection_events (order_id, request_id, action, actor, user_id, text, amount_vnd, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(order)
    .bind(request)
    .bind(action.to_string())
    .bind(actor.to_string())
    .bind(user)
    .bind(text.to_string())
    .bind(amount)
    .bind(now_ms())
    .fetch_one(&mut **tx)
    .await?;
    crate::notify::event(tx, crate::notify::NoticeKind::Protection, id).await
}

fn not_now(msg: &str) -> AppError {
    AppError::Conflict(msg.to_string())
}

/// The buyer has the goods: the order is delivered and its money released at once.
pub async fn confirm_receipt(db: &Db, order: &OrderView) -> Result<()> {
    let mut tx = db.begin().await?;
    lock_order(&mut tx, order.id).await?;
    let f = facts(&mut tx, order.id).await?;
    if f.request_open {
        return Err(not_now(
            "Đơn đang có yêu cầu trả hàng / hoàn tiền; hãy chấp nhận trả lời của người bán trước",
        ));
    }
    if !release::buyer_may_act(&f) {
        return Err(not_now(
            "Đơn chưa được gửi đi hoặc đã xác nhận nhận hàng rồi",
        ));
    }
    let now = now_ms();
    let n = sqlx::query(
        "UPDATE orders SET received_at = $1, delivered_at = COALESCE(delivered_at, $1),
           delivered_by = COALESCE(delivered_by, 'buyer') WHERE id = $2 AND received_at IS NULL",
    )
    .bind(now)
    .bind(order.id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Err(not_now("Đơn đã được xác nhận"));
    }
    if order.status == OrderStatus::Shipped {
        orders::set_status(
            &mut tx,
            order.id,
            OrderStatus::Shipped,
            OrderStatus::Delivered,
            Actor::Buyer,
            None,
        )
        .await?;
    }
    crate::orders::money::release_order(&mut tx, order.id, None).await?;
    step_event(&mut tx, order.id, None, "received", "buyer", None, "", None).await?;
    tx.commit().await?;
    Ok(())
}

/// "Chưa nhận được hàng": the window runs 3 more days, once.
pub async fn extend(db: &Db, order: &OrderView) -> Result<()> {
    let mut tx = db.begin().await?;
    lock_order(&mut tx, order.id).await?;
    let f = facts(&mut tx, order.id).await?;
    if !release::may_extend(&f) {
        return Err(not_now(
            "Chỉ gia hạn được một lần, khi đơn đã gửi và chưa có yêu cầu nào",
        ));
    }
    let n = sqlx::query("UPDATE orders SET extended_at = $1 WHERE id = $2 AND extended_at IS NULL")
        .bind(now_ms())
        .bind(order.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n != 1 {
        return Err(not_now("Đơn đã được gia hạn"));
    }
    step_event(&mut tx, order.id, None, "extended", "buyer", None, "", None).await?;
    tx.commit().await?;
    Ok(())
}

/// A request as the buyer typed it, checked.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub reason: Reason,
    pub text: String,
    /// None: the whole order.
    pub amount_vnd: Option<i64>,
}

impl NewRequest {
    pub fn parse(reason: &str, text: &str, amount: Option<i64>) -> Result<NewRequest> {
        let mut e = crate::error::FieldErrors::new();
        let reason = Reason::parse(reason.trim());
        if reason.is_none() {
            e.add("reason", "Chọn lý do trong danh sách");
        }
        let text = text.trim().to_string();
        let n = text.chars().count();
        if !(10..=2000).contains(&n) {
            e.add(
                "text",
                "Kể lại điều đã xảy ra (từ 10 đến 2.000 chữ) để người bán hiểu",
            );
        }
        if text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r')
        {
            e.add("text", "Nội dung có ký tự không hợp lệ");
        }
        if amount.is_some_and(|a| a <= 0) {
            e.add("amount_vnd", "Số tiền phải lớn hơn 0");
        }
        e.into_result()?;
        Ok(NewRequest {
            reason: reason.expect("checked"),
            text,
            amount_vnd: amount,
        })
    }
}

/// Photos already checked and re-encoded, stored under the photos directory.
pub type SavedPhoto = (String, String);

async fn attach_photos(tx: &mut Tx, request: i64, side: &str, photos: &[SavedPhoto]) -> Result<()> {
    let now = now_ms();
    for (full, thumb) in photos.iter().take(MAX_PHOTOS) {
        sqlx::query(
            "INSERT INTO request_photos (request_id, side, file, thumb, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(request)
        .bind(side.to_string())
        .bind(full.clone())
        .bind(thumb.clone())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// What the order still holds for its shop (its total less what was decided to go back).
async fn rest_of(tx: &mut Tx, order: i64) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT total_vnd - refund_owed_vnd FROM orders WHERE id = $1")
            .bind(order)
            .fetch_one(&mut **tx)
            .await?,
    )
}

/// The buyer raises a request: the order's release freezes and the seller is told.
pub async fn open_request(
    db: &Db,
    cfg: &Config,
    order: &OrderView,
    req: &NewRequest,
    photos: &[SavedPhoto],
) -> Result<i64> {
    if photos.len() > MAX_PHOTOS {
        return Err(AppError::field("photo", "Tối đa 4 ảnh"));
    }
    let mut tx = db.begin().await?;
    lock_order(&mut tx, order.id).await?;
    let f = facts(&mut tx, order.id).await?;
    if f.request_open {
        return Err(not_now("Đơn này đã có một yêu cầu đang mở"));
    }
    if !release::buyer_may_act(&f) {
        return Err(not_now(
            "Chỉ gửi yêu cầu khi đơn đã được gửi đi và tiền chưa chuyển cho người bán",
        ));
    }
    let rest = rest_of(&mut tx, order.id).await?;
    let amount = req.amount_vnd.unwrap_or(rest);
    if amount > rest {
        return Err(AppError::field(
            "amount_vnd",
            format!("Số tiền tối đa là {}", format_vnd(rest)),
        ));
    }
    let now = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO order_requests (order_id, status, reason, text, amount_vnd, answer_due_at, created_at, updated_at)
         VALUES ($1, 'open', $2, $3, $4, $5, $6, $6) RETURNING id",
    )
    .bind(order.id)
    .bind(req.reason.as_str())
    .bind(req.text.clone())
    .bind(amount)
    .bind(now + cfg.protection.dispute_seller_days * DAY_MS)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(d) if d.message().contains("order_requests_one_open") => {
            not_now("Đơn này đã có một yêu cầu đang mở")
        }
        e => e.into(),
    })?;
    attach_photos(&mut tx, id, "buyer", photos).await?;
    step_event(
        &mut tx,
        order.id,
        Some(id),
        "request_opened",
        "buyer",
        None,
        &format!("{}: {}", req.reason.label(), req.text),
        Some(amount),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// A request row with what the rules need.
struct Req {
    id: i64,
    order_id: i64,
    status: RequestStatus,
    amount: i64,
    outcome: Option<Outcome>,
    refund_vnd: Option<i64>,
}

async fn lock_request(tx: &mut Tx, id: i64) -> Result<Req> {
    let order: Option<i64> =
        sqlx::query_scalar("SELECT order_id FROM order_requests WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    lock_order(tx, order.ok_or(AppError::NotFound)?).await?;
    let r = sqlx::query(
        "SELECT id, order_id, status, amount_vnd, outcome, refund_vnd FROM order_requests WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(AppError::NotFound)?;
    let status: String = r.try_get("status")?;
    Ok(Req {
        id: r.try_get("id")?,
        order_id: r.try_get("order_id")?,
        status: RequestStatus::parse(&status)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("bad request status {status}")))?,
        amount: r.try_get("amount_vnd")?,
        outcome: r
            .try_get::<Option<String>, _>("outcome")?
            .as_deref()
            .and_then(Outcome::parse),
        refund_vnd: r.try_get("refund_vnd")?,
    })
}

/// Move a request (checked by the table, guarded by the status it had).
async fn move_request(tx: &mut Tx, req: &Req, step: Step, sets: &str) -> Result<RequestStatus> {
    let to = req
        .status
        .after(step)
        .map_err(|e| AppError::Conflict(e.to_string()))?;
    let closed = if to.is_open() { "" } else { ", closed_at = $2" };
    let n = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE order_requests SET status = $1, updated_at = $2{closed}{sets} WHERE id = $3 AND status = $4"
    )))
    .bind(to.as_str())
    .bind(now_ms())
    .bind(req.id)
    .bind(req.status.as_str())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Err(AppError::Conflict(
            "Yêu cầu vừa được cập nhật, vui lòng tải lại".into(),
        ));
    }
    Ok(to)
}

/// Give `amount` of the order back to its buyer: all that is left → the order waits for its
/// refund; a part → that part owed back and the rest released to the shop. A refund payout
/// follows at once when the buyer already gave an account.
async fn apply_refund(
    tx: &mut Tx,
    cfg: &Config,
    req: &Req,
    amount: i64,
    user: Option<i64>,
) -> Result<()> {
    let r = sqlx::query(
        "SELECT status, refund_owed_vnd, total_vnd, checkout_id FROM orders WHERE id = $1",
    )
    .bind(req.order_id)
    .fetch_one(&mut **tx)
    .await?;
    let status: String = r.try_get("status")?;
    let status = OrderStatus::parse(&status)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("bad status {status}")))?;
    let owed: i64 = r.try_get("refund_owed_vnd")?;
    let total: i64 = r.try_get("total_vnd")?;
    let checkout: i64 = r.try_get("checkout_id")?;
    let rest = total - owed;
    if amount >= rest && owed == 0 {
        orders::set_status(
            tx,
            req.order_id,
            status,
            OrderStatus::RefundDue,
            Actor::System,
            user,
        )
        .await?;
        crate::orders::money::order_refund_due(tx, req.order_id).await?;
    } else {
        let amount = amount.min(rest);
        crate::orders::money::order_part_refund_due(
            tx,
            req.order_id,
            amount,
            &format!("refund_due:request:{}", req.id),
        )
        .await?;
        crate::orders::money::release_order(tx, req.order_id, None).await?;
    }
    sqlx::query("UPDATE order_requests SET refund_vnd = $1 WHERE id = $2")
        .bind(amount.min(rest))
        .bind(req.id)
        .execute(&mut **tx)
        .await?;
    send_refunds(tx, cfg, checkout, Some(req.id)).await
}

/// The buyer's refund account, if they gave one.
async fn refund_account(tx: &mut Tx, checkout: i64) -> Result<Option<PayoutAccount>> {
    let r = sqlx::query(
        "SELECT refund_bank_bin, refund_account_no, refund_account_name FROM checkouts WHERE id = $1",
    )
    .bind(checkout)
    .fetch_one(&mut **tx)
    .await?;
    Ok(
        match (
            r.try_get::<Option<String>, _>(0)?,
            r.try_get::<Option<String>, _>(1)?,
            r.try_get::<Option<String>, _>(2)?,
        ) {
            (Some(bank_bin), Some(account_no), Some(account_name)) => Some(PayoutAccount {
                bank_bin,
                account_no,
                account_name,
            }),
            _ => None,
        },
    )
}

/// Send whatever the checkout's payment owes its buyer to the account they gave: each order
/// waiting for money back, then anything owed at payment level. Nothing without an account.
async fn send_refunds(
    tx: &mut Tx,
    cfg: &Config,
    checkout: i64,
    request: Option<i64>,
) -> Result<()> {
    let Some(account) = refund_account(tx, checkout).await? else {
        return Ok(());
    };
    let payment: i64 = sqlx::query_scalar("SELECT id FROM payments WHERE checkout_id = $1")
        .bind(checkout)
        .fetch_one(&mut **tx)
        .await?;
    let orders: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM orders WHERE checkout_id = $1
           AND (status = 'refund_due' OR refund_owed_vnd > refunded_vnd) ORDER BY id",
    )
    .bind(checkout)
    .fetch_all(&mut **tx)
    .await?;
    for o in orders {
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM refund_payouts WHERE order_id = $1 AND status IN ('pending', 'sent')",
        )
        .bind(o)
        .fetch_one(&mut **tx)
        .await?;
        if open == 0 {
            crate::refund_payouts::create(tx, cfg, payment, Target::Order(o), request, &account)
                .await?;
        }
    }
    let open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM refund_payouts WHERE payment_id = $1 AND order_id IS NULL
           AND status IN ('pending', 'sent')",
    )
    .bind(payment)
    .fetch_one(&mut **tx)
    .await?;
    if open == 0 {
        crate::refund_payouts::create(tx, cfg, payment, Target::Payment, None, &account).await?;
    }
    Ok(())
}

/// Where the buyer wants refunds to go: an account they type, or the one their transfer
/// came from (as the bank feed reported it). Whatever is owed is sent at once.
pub async fn set_refund_account(
    db: &Db,
    cfg: &Config,
    order: &OrderView,
    account: &PayoutAccount,
) -> Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE checkouts SET refund_bank_bin = $1, refund_account_no = $2, refund_account_name = $3 WHERE id = $4",
    )
    .bind(account.bank_bin.clone())
    .bind(account.account_no.clone())
    .bind(account.account_name.clone())
    .bind(order.checkout_id)
    .execute(&mut *tx)
    .await?;
    step_event(
        &mut tx,
        order.id,
        None,
        "refund_account",
        "buyer",
        None,
        &crate::payouts::masked_account(&account.bank_bin, &account.account_no),
        None,
    )
    .await?;
    send_refunds(&mut tx, cfg, order.checkout_id, None).await?;
    tx.commit().await?;
    Ok(())
}

/// The account the buyer's transfer came from, when the bank feed reported it (payOS and
/// Casso do): offered to the buyer, masked, to confirm.
pub async fn payer_account(db: &Db, checkout: i64) -> Result<Option<PayoutAccount>> {
    let raws: Vec<String> = sqlx::query_scalar(
        "SELECT t.raw FROM bank_transactions t JOIN payments p ON p.id = t.payment_id
         WHERE p.checkout_id = $1 AND t.amount_vnd > 0 ORDER BY t.id",
    )
    .bind(checkout)
    .fetch_all(&db.pool)
    .await?;
    Ok(raws.iter().find_map(|raw| crate::payouts::payer_of(raw)))
}

/// Whether `user` may answer for the order's shop.
async fn require_seller(db: &Db, user: &User, order: &OrderView) -> Result<()> {
    let shop = crate::catalog::store::shop_by_id(db, crate::catalog::ShopId(order.shop_id)).await?;
    crate::catalog::store::authorize_shop(user, &shop)
}

/// The request's order (for authorizing the caller).
pub async fn order_of_request(db: &Db, request: i64) -> Result<OrderView> {
    let code: Option<String> = sqlx::query_scalar(
        "SELECT o.code FROM order_requests q JOIN orders o ON o.id = q.order_id WHERE q.id = $1",
    )
    .bind(request)
    .fetch_optional(&db.pool)
    .await?;
    orders::order_by_code(db, &code.ok_or(AppError::NotFound)?).await
}

/// The seller's answer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Give back what the buyer asked (`full`: the whole order instead).
    Accept { full: bool },
    /// Explain, with photos; the buyer accepts or escalates.
    Reply { text: String },
}

pub async fn answer(
    db: &Db,
    cfg: &Config,
    user: &User,
    request: i64,
    a: &Answer,
    photos: &[SavedPhoto],
) -> Result<()> {
    let order = order_of_request(db, request).await?;
    require_seller(db, user, &order).await?;
    let mut tx = db.begin().await?;
    let req = lock_request(&mut tx, request).await?;
    match a {
        Answer::Accept { full } => {
            let rest = rest_of(&mut tx, req.order_id).await?;
            let amount = if *full { rest } else { req.amount.min(rest) };
            move_request(&mut tx, &req, Step::SellerAccepts, ", answered_at = $2").await?;
            apply_refund(&mut tx, cfg, &req, amount, Some(user.id.0)).await?;
            step_event(
                &mut tx,
                req.order_id,
                Some(req.id),
                "seller_accepted",
                "seller",
                Some(user.id.0),
                "",
                Some(amount),
            )
            .await?;
        }
        Answer::Reply { text } => {
            let text = text.trim().to_string();
            if !(5..=2000).contains(&text.chars().count()) {
                return Err(AppError::field(
                    "text",
                    "Viết trả lời cho người mua (từ 5 đến 2.000 chữ)",
                ));
            }
            if photos.len() > MAX_PHOTOS {
                return Err(AppError::field("photo", "Tối đa 4 ảnh"));
            }
            move_request(&mut tx, &req, Step::SellerReplies, ", answered_at = $2").await?;
            sqlx::query("UPDATE order_requests SET seller_text = $1 WHERE id = $2")
                .bind(text.clone())
                .bind(req.id)
                .execute(&mut *tx)
                .await?;
            attach_photos(&mut tx, req.id, "seller", photos).await?;
            step_event(
                &mut tx,
                req.order_id,
                Some(req.id),
                "seller_replied",
                "seller",
                Some(user.id.0),
                &text,
                None,
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The buyer accepts the seller's reply: the request closes and the release continues.
pub async fn accept_reply(db: &Db, order: &OrderView, request: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    let req = lock_request(&mut tx, request).await?;
    if req.order_id != order.id {
        return Err(AppError::NotFound);
    }
    move_request(&mut tx, &req, Step::BuyerAcceptsReply, "").await?;
    step_event(
        &mut tx,
        req.order_id,
        Some(req.id),
        "buyer_accepted_reply",
        "buyer",
        None,
        "",
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The buyer asks the village moderator and the platform to decide: after the seller
/// replied, or once the seller's time to answer ran out.
pub async fn escalate(db: &Db, order: &OrderView, request: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    let req = lock_request(&mut tx, request).await?;
    if req.order_id != order.id {
        return Err(AppError::NotFound);
    }
    let due: i64 = sqlx::query_scalar("SELECT answer_due_at FROM order_requests WHERE id = $1")
        .bind(req.id)
        .fetch_one(&mut *tx)
        .await?;
    let step = if req.status == RequestStatus::Open && now_ms() >= due {
        Step::AnswerOverdue
    } else {
        Step::BuyerEscalates
    };
    move_request(&mut tx, &req, step, ", escalated_at = $2").await?;
    step_event(
        &mut tx,
        req.order_id,
        Some(req.id),
        "escalated",
        "buyer",
        None,
        "",
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A moderator's or admin's decision, checked.
#[derive(Debug, Clone)]
pub struct Decision {
    pub outcome: Outcome,
    pub amount_vnd: Option<i64>,
    pub reason: String,
    /// The buyer sends the goods back first (refunds only).
    pub return_first: bool,
}

impl Decision {
    pub fn parse(
        outcome: &str,
        amount: Option<i64>,
        reason: &str,
        return_first: bool,
    ) -> Result<Decision> {
        let mut e = crate::error::FieldErrors::new();
        let outcome = Outcome::parse(outcome.trim());
        if outcome.is_none() {
            e.add(
                "outcome",
                "Chọn: hoàn toàn bộ, hoàn một phần, hoặc chuyển cho người bán",
            );
        }
        let reason = reason.trim().to_string();
        if !(15..=1000).contains(&reason.chars().count()) {
            e.add(
                "reason",
                "Ghi lý do quyết định (ít nhất 15 chữ); cả hai bên sẽ đọc được",
            );
        }
        if outcome == Some(Outcome::Partial) && amount.is_none_or(|a| a <= 0) {
            e.add("amount_vnd", "Nhập số tiền hoàn cho người mua");
        }
        e.into_result()?;
        let outcome = outcome.expect("checked");
        Ok(Decision {
            outcome,
            amount_vnd: amount,
            reason,
            return_first: return_first && outcome != Outcome::Release,
        })
    }
}

/// Whether `user` decides requests of this order: an admin, or a moderator of the shop's
/// village who does not own the shop.
pub async fn may_decide(db: &Db, user: &User, order: &OrderView) -> Result<bool> {
    let shop = crate::catalog::store::shop_by_id(db, crate::catalog::ShopId(order.shop_id)).await?;
    if shop.owner_id == Some(user.id.0) && !user.is_admin() {
        return Ok(false);
    }
    crate::accounts::store::can_moderate(db, user, shop.village_id.0).await
}

pub async fn decide(db: &Db, cfg: &Config, user: &User, request: i64, d: &Decision) -> Result<()> {
    let order = order_of_request(db, request).await?;
    if !may_decide(db, user, &order).await? {
        return Err(AppError::Forbidden);
    }
    let actor = if user.is_admin() {
        "admin"
    } else {
        "moderator"
    };
    let mut tx = db.begin().await?;
    let req = lock_request(&mut tx, request).await?;
    let rest = rest_of(&mut tx, req.order_id).await?;
    let refund = super::refund_of(d.outcome, d.amount_vnd, rest)
        .map_err(|m| AppError::field("amount_vnd", m))?;
    let step = match (d.outcome, d.return_first) {
        (Outcome::Release, _) => Step::DecideRelease,
        (_, true) => Step::DecideReturnFirst,
        _ => Step::DecideRefund,
    };
    let now = now_ms();
    move_request(&mut tx, &req, step, "").await?;
    sqlx::query(
        "UPDATE order_requests SET outcome = $1, refund_vnd = $2, decision_reason = $3, decided_by = $4,
           decided_at = $5, return_due_at = $6 WHERE id = $7",
    )
    .bind(d.outcome.as_str())
    .bind(refund)
    .bind(d.reason.clone())
    .bind(user.id.0)
    .bind(now)
    .bind(d.return_first.then_some(now + cfg.protection.return_days * DAY_MS))
    .bind(req.id)
    .execute(&mut *tx)
    .await?;
    match step {
        Step::DecideRelease => {
            crate::orders::money::release_order(&mut tx, req.order_id, None).await?;
        }
        Step::DecideRefund => {
            apply_refund(&mut tx, cfg, &req, refund, Some(user.id.0)).await?;
        }
        _ => {}
    }
    step_event(
        &mut tx,
        req.order_id,
        Some(req.id),
        "decided",
        actor,
        Some(user.id.0),
        &format!(
            "{}{}: {}",
            d.outcome.label(),
            if d.return_first {
                " (người mua gửi trả hàng trước)"
            } else {
                ""
            },
            d.reason
        ),
        Some(refund),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The buyer sent the goods back (the carrier's tracking code).
pub async fn return_shipped(
    db: &Db,
    cfg: &Config,
    order: &OrderView,
    request: i64,
    tracking: &str,
) -> Result<()> {
    let tracking = crate::domain::text::clean_line(tracking, "mã vận đơn", 60)
        .map_err(|m| AppError::field("tracking", m))?;
    if tracking.len() < 4 {
        return Err(AppError::field("tracking", "Nhập mã vận đơn gửi trả"));
    }
    let mut tx = db.begin().await?;
    let req = lock_request(&mut tx, request).await?;
    if req.order_id != order.id {
        return Err(AppError::NotFound);
    }
    let now = now_ms();
    move_request(&mut tx, &req, Step::ReturnShipped, ", return_sent_at = $2").await?;
    sqlx::query("UPDATE order_requests SET return_tracking = $1, return_due_at = $2 WHERE id = $3")
        .bind(tracking.clone())
        .bind(now + cfg.protection.return_days * DAY_MS)
        .bind(req.id)
        .execute(&mut *tx)
        .await?;
    step_event(
        &mut tx,
        req.order_id,
        Some(req.id),
        "return_sent",
        "buyer",
        None,
        &tracking,
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The seller has the goods back: the decided refund follows.
pub async fn return_received(db: &Db, cfg: &Config, user: &User, request: i64) -> Result<()> {
    let order = order_of_request(db, request).await?;
    require_seller(db, user, &order).await?;
    let mut tx = db.begin().await?;
    let req = lock_request(&mut tx, request).await?;
    finish_return(&mut tx, cfg, &req, "seller", Some(user.id.0)).await?;
    tx.commit().await?;
    Ok(())
}

async fn finish_return(
    tx: &mut Tx,
    cfg: &Config,
    req: &Req,
    actor: &str,
    user: Option<i64>,
) -> Result<()> {
    move_request(tx, req, Step::ReturnReceived, "").await?;
    let rest = rest_of(tx, req.order_id).await?;
    let amount = match req.outcome {
        Some(Outcome::Refund) => rest,
        _ => req.refund_vnd.unwrap_or(0).min(rest),
    };
    apply_refund(tx, cfg, req, amount, user).await?;
    step_event(
        tx,
        req.order_id,
        Some(req.id),
        "return_received",
        actor,
        user,
        "",
        Some(amount),
    )
    .await
}

/// One pass of the sweep at `now`: escalate requests the seller did not answer, settle
/// returns past `RETURN_DAYS`, and release every order whose window is over. Returns how many
/// orders were released.
pub async fn sweep(db: &Db, cfg: &Config, now: i64) -> Result<usize> {
    let overdue: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM order_requests WHERE status = 'open' AND answer_due_at <= $1 ORDER BY id",
    )
    .bind(now)
    .fetch_all(&db.pool)
    .await?;
    for id in overdue {
        let mut tx = db.begin().await?;
        let req = lock_request(&mut tx, id).await?;
        if move_request(&mut tx, &req, Step::AnswerOverdue, ", escalated_at = $2")
            .await
            .is_ok()
        {
            step_event(
                &mut tx,
                req.order_id,
                Some(req.id),
                "escalated",
                "system",
                None,
                "Người bán chưa trả lời đúng hạn",
                None,
            )
            .await?;
            tx.commit().await?;
        }
    }
    let returns = sqlx::query(
        "SELECT id, status FROM order_requests WHERE status IN ('awaiting_return', 'return_sent')
           AND return_due_at <= $1 ORDER BY id",
    )
    .bind(now)
    .fetch_all(&db.pool)
    .await?;
    for r in returns {
        let id: i64 = r.try_get("id")?;
        let mut tx = db.begin().await?;
        let req = lock_request(&mut tx, id).await?;
        match req.status {
            RequestStatus::ReturnSent => {
                finish_return(&mut tx, cfg, &req, "system", None).await?;
            }
            RequestStatus::AwaitingReturn => {
                move_request(&mut tx, &req, Step::ReturnNeverSent, "").await?;
                crate::orders::money::release_order(&mut tx, req.order_id, None).await?;
                step_event(
                    &mut tx,
                    req.order_id,
                    Some(req.id),
                    "return_never_sent",
                    "system",
                    None,
                    "Người mua không gửi trả hàng đúng hạn",
                    None,
                )
                .await?;
            }
            _ => continue,
        }
        tx.commit().await?;
    }
    // Only orders whose earliest possible release time passed (an extension only delays it):
    // one indexed query per tick, whatever the number of orders waiting.
    let rules = &cfg.protection.rules;
    let candidates: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM orders WHERE status IN ('shipped', 'delivered') AND released_at IS NULL
           AND (received_at IS NOT NULL OR delivered_at <= $1 OR shipped_at <= $2) ORDER BY id",
    )
    .bind(now - rules.guarantee_days * DAY_MS)
    .bind(now - rules.shipped_days * DAY_MS)
    .fetch_all(&db.pool)
    .await?;
    let mut released = 0;
    for id in candidates {
        // Read first; only an order that is due is locked and read again before release.
        let mut conn = db.pool.acquire().await?;
        let f = facts(&mut conn, id).await?;
        drop(conn);
        if !release::release(&f, &cfg.protection.rules, now).is_due() {
            continue;
        }
        let mut tx = db.begin().await?;
        lock_order(&mut tx, id).await?;
        let f = facts(&mut tx, id).await?;
        if release::release(&f, &cfg.protection.rules, now).is_due()
            && crate::orders::money::release_order(&mut tx, id, None).await?
        {
            released += 1;
        }
        tx.commit().await?;
    }
    Ok(released)
}

// ---------------------------------------------------------------------------------------
// Views

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RequestView {
    pub id: i64,
    pub order_code: String,
    pub status: RequestStatus,
    pub status_label: String,
    pub reason: Reason,
    pub reason_label: String,
    pub text: String,
    pub amount_vnd: i64,
    /// The seller answers by then (UTC milliseconds).
    pub answer_due_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seller_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_vnd: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_due_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_tracking: Option<String>,
    pub buyer_photos: Vec<String>,
    pub seller_photos: Vec<String>,
    pub created_at: i64,
}

const REQUEST_SELECT: &str =
    "SELECT q.id, o.code AS order_code, q.status, q.reason, q.text, q.amount_vnd,
       q.answer_due_at, q.seller_text, q.outcome, q.refund_vnd, q.decision_reason, q.return_due_at,
       q.return_tracking, q.created_at
     FROM order_requests q JOIN orders o ON o.id = q.order_id";

async fn requests_where(db: &Db, cond: &str, bind: i64) -> Result<Vec<RequestView>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{REQUEST_SELECT} WHERE {cond} ORDER BY q.id DESC LIMIT 200"
    )))
    .bind(bind)
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let id: i64 = r.try_get("id")?;
        let status: String = r.try_get("status")?;
        let reason: String = r.try_get("reason")?;
        let status = RequestStatus::parse(&status)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("bad status {status}")))?;
        let reason = Reason::parse(&reason)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("bad reason {reason}")))?;
        let photos =
            sqlx::query("SELECT side, thumb FROM request_photos WHERE request_id = $1 ORDER BY id")
                .bind(id)
                .fetch_all(&db.pool)
                .await?;
        let side = |s: &str| -> Vec<String> {
            photos
                .iter()
                .filter(|p| p.try_get::<String, _>("side").ok().as_deref() == Some(s))
                .filter_map(|p| p.try_get::<String, _>("thumb").ok())
                .map(|t| format!("/anh/{t}"))
                .collect()
        };
        out.push(RequestView {
            id,
            order_code: r.try_get("order_code")?,
            status,
            status_label: status.label().to_string(),
            reason,
            reason_label: reason.label().to_string(),
            text: r.try_get("text")?,
            amount_vnd: r.try_get("amount_vnd")?,
            answer_due_at: r.try_get("answer_due_at")?,
            seller_text: r.try_get("seller_text")?,
            outcome: r
                .try_get::<Option<String>, _>("outcome")?
                .as_deref()
                .and_then(Outcome::parse),
            refund_vnd: r.try_get("refund_vnd")?,
            decision_reason: r.try_get("decision_reason")?,
            return_due_at: r.try_get("return_due_at")?,
            return_tracking: r.try_get("return_tracking")?,
            buyer_photos: side("buyer"),
            seller_photos: side("seller"),
            created_at: r.try_get("created_at")?,
        });
    }
    Ok(out)
}

pub async fn requests_of_order(db: &Db, order: i64) -> Result<Vec<RequestView>> {
    requests_where(db, "q.order_id = $1", order).await
}

/// Requests waiting for a decision that `user` may make (escalated), newest first.
pub async fn escalated_for(db: &Db, user: &User) -> Result<Vec<(RequestView, OrderView)>> {
    let list = requests_where(db, "q.status = 'escalated' AND q.id > $1", 0).await?;
    let mut out = Vec::new();
    for r in list {
        let o = orders::order_by_code(db, &r.order_code).await?;
        if may_decide(db, user, &o).await? {
            out.push((r, o));
        }
    }
    Ok(out)
}

/// One step on the order's timeline.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StepView {
    pub at: i64,
    pub action: String,
    pub actor: String,
    /// In plain words, for both sides.
    pub words: String,
}

pub use crate::notify::render::step_words;

pub async fn steps_of_order(db: &Db, order: i64) -> Result<Vec<StepView>> {
    let rows = sqlx::query(
        "SELECT at, action, actor, text, amount_vnd FROM protection_events WHERE order_id = $1 ORDER BY id",
    )
    .bind(order)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let action: String = r.try_get("action")?;
            let actor: String = r.try_get("actor")?;
            let text: String = r.try_get("text")?;
            Ok(StepView {
                at: r.try_get("at")?,
                words: step_words(&action, &actor, &text, r.try_get("amount_vnd")?),
                action,
                actor,
            })
        })
        .collect()
}
