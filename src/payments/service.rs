//! Starting a checkout and describing it: the one place that ties orders, the payment
//! method and the VietQR payload together, for the API and the payment page alike.

use serde::Serialize;

use super::code::PaymentCode;
use super::providers::{PayosLinkRequest, payos_create_link, stripe_create_session};
use super::state::PaymentStatus;
use super::store::{PaymentView, payment_by_id, payment_of_checkout};
use super::vietqr::{TransferQr, fold_purpose};
use crate::config::{CollectAccount, Config};
use crate::db::Db;
use crate::domain::format_vn_time;
use crate::domain::now_ms;
use crate::error::{AppError, Result};
use crate::orders::OrderStatus;
use crate::orders::checkout::{CheckoutRequest, Method};
use crate::orders::store::{CheckoutView, HoldLimits, checkout_by_id, place_checkout, unused_code};

/// The text the payer must put in the transfer: the payment code, which also fits payOS's
/// 9-character limit for accounts not linked through payOS.
pub fn transfer_description(p: &PaymentView) -> String {
    fold_purpose(&p.code)
}

pub fn vietqr_payload(collect: &CollectAccount, p: &PaymentView) -> Result<String> {
    let remaining = (p.amount_vnd - p.amount_paid_vnd).max(0);
    let qr = TransferQr {
        bin: collect.bin.clone(),
        account: collect.account_no.clone(),
        amount: crate::domain::Vnd::new(if remaining > 0 {
            remaining
        } else {
            p.amount_vnd
        })
        .ok(),
        bill_number: None,
        purpose: Some(transfer_description(p)),
    };
    qr.payload()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("vietqr: {e}")))
}

/// The payload a QR should carry for this payment: payOS's own QR in payOS mode.
pub fn qr_payload(cfg: &Config, p: &PaymentView) -> Result<Option<String>> {
    if let Some(q) = &p.provider_qr {
        return Ok(Some(q.clone()));
    }
    match (&cfg.payments.collect, p.method.as_str()) {
        (Some(c), "vietqr") => vietqr_payload(c, p).map(Some),
        _ => Ok(None),
    }
}

/// What checkout created, for the caller to render or extend (payOS / Stripe links).
pub struct Created {
    pub checkout_id: i64,
    pub payment_id: i64,
    pub payment_code: PaymentCode,
}

/// Create checkout, payment and one order per shop in one transaction, reserving stock
/// (`orders::store::place_checkout` reads the agreed prices and writes the orders; the
/// payment for their total is written here, waiting).
pub async fn create_checkout(
    db: &Db,
    req: &CheckoutRequest,
    expiry_minutes: i64,
    holds: &HoldLimits,
    fee_bps: i64,
    carriers: &crate::config::CarriersConfig,
) -> Result<Created> {
    let mut tx = db.begin().await?;
    let code = unused_code(
        &mut tx,
        "SELECT COUNT(*) FROM payments WHERE code = $1",
        || PaymentCode::generate().as_str().to_string(),
    )
    .await?;
    let placed = place_checkout(&mut tx, req, holds, fee_bps, &code, carriers).await?;
    let now = now_ms();
    let expires_at = now + expiry_minutes * 60_000;
    let order_code = loop {
        use rand::Rng;
        // positive and within JavaScript's safe integers, as payOS's SDKs need
        let n: i64 = rand::thread_rng().gen_range(1_000_000_000..9_000_000_000_000);
        let used: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payments WHERE order_code = $1")
            .bind(n)
            .fetch_one(&mut *tx)
            .await?;
        if used == 0 {
            break n;
        }
    };
    let payment_id: i64 = sqlx::query_scalar(
        "INSERT INTO payments (checkout_id, code, order_code, method, amount_vnd, status, expires_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $8, $6, $7, $7) RETURNING id",
    )
    .bind(placed.checkout_id)
    .bind(code.clone())
    .bind(order_code)
    .bind(req.method.as_str())
    .bind(placed.total)
    .bind(expires_at)
    .bind(now)
    .bind(PaymentStatus::Pending.as_str())
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Created {
        checkout_id: placed.checkout_id,
        payment_id,
        payment_code: PaymentCode::parse(&code).map_err(|e| anyhow::anyhow!(e))?,
    })
}

/// Create the checkout, then (outside the transaction, never holding a lock over the
/// network) the payOS link or Stripe session. If the provider fails, the checkout is
/// cancelled and its stock released.
/// Start a checkout for a buyer at `client` (their address key, for the hold limits).
pub async fn start(db: &Db, cfg: &Config, req: &CheckoutRequest, client: &str) -> Result<i64> {
    match req.method {
        Method::Vietqr if cfg.payments.collect.is_none() => {
            return Err(AppError::field(
                "method",
                "chưa cấu hình tài khoản nhận chuyển khoản",
            ));
        }
        Method::Payos if cfg.payments.payos.is_none() => {
            return Err(AppError::field(
                "method",
                "thanh toán qua payOS chưa được bật",
            ));
        }
        Method::Stripe if cfg.payments.stripe.is_none() => {
            return Err(AppError::field("method", "thanh toán thẻ chưa được bật"));
        }
        _ => {}
    }
    // A carrier's fee is asked before the checkout's transaction (never an HTTP call inside
    // it); within its 10 minutes the quote the buyer saw answers at once.
    if let Some(place) = &req.buyer.place
        && req.shipping.values().any(|o| o != "self")
    {
        crate::orders::store::quote(db, &cfg.carriers, &req.items, place)
            .await
            .ok();
    }
    let holds = HoldLimits {
        client: client.to_string(),
        max_open: cfg.checkout_max_open,
        max_units: cfg.checkout_max_held_units,
    };
    // A deadlock or a code drawn twice by concurrent checkouts rolls the whole transaction
    // back; it is tried again (twice at most) before the buyer sees an error.
    let mut attempt = 0;
    let created = loop {
        match create_checkout(
            db,
            req,
            cfg.payments.expiry_minutes,
            &holds,
            cfg.payouts.fee_bps,
            &cfg.carriers,
        )
        .await
        {
            Err(AppError::Internal(e))
                if attempt < 2
                    && e.downcast_ref::<sqlx::Error>()
                        .is_some_and(crate::db::is_transient) =>
            {
                tracing::warn!(error = %e, attempt, "checkout transaction tried again");
                attempt += 1;
            }
            r => break r?,
        }
    };
    if req.method == Method::Vietqr {
        return Ok(created.checkout_id);
    }
    let checkout = checkout_by_id(db, created.checkout_id).await?;
    let p = payment_by_id(db, created.payment_id).await?;
    let back = format!("{}/pay/{}", cfg.public_url, p.code);
    let linked = match req.method {
        Method::Payos => {
            let pc = cfg.payments.payos.as_ref().expect("checked");
            payos_create_link(
                pc,
                &PayosLinkRequest {
                    order_code: p.order_code,
                    amount: p.amount_vnd,
                    description: &transfer_description(&p),
                    return_url: &back,
                    cancel_url: &back,
                    expires_at_secs: p.expires_at / 1000,
                },
                &checkout,
            )
            .await
            .map(|l| (l.payment_link_id, l.checkout_url, Some(l.qr_code)))
        }
        _ => {
            let sc = cfg.payments.stripe.as_ref().expect("checked");
            stripe_create_session(sc, &p.code, &checkout, &back, &back)
                .await
                .map(|s| (s.id, s.url, None))
        }
    };
    match linked {
        Ok((reference, url, qr)) => {
            sqlx::query("UPDATE payments SET provider_ref = $1, checkout_url = $2, provider_qr = $3 WHERE id = $4")
                .bind(reference)
                .bind(url)
                .bind(qr)
                .bind(p.id)
                .execute(&db.pool)
                .await?;
            Ok(created.checkout_id)
        }
        Err(e) => {
            tracing::error!(error = %e, payment = %p.code, "provider link failed; cancelling checkout");
            super::store::close_unpaid(db, p.id, OrderStatus::Cancelled).await?;
            Err(AppError::Conflict(format!(
                "không tạo được liên kết thanh toán ({e}); đơn đã được hủy, vui lòng thử lại"
            )))
        }
    }
}

/// The collecting account a transfer goes to.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BankOut {
    /// NAPAS bank id (BIN).
    pub bin: String,
    pub name: String,
    pub account_no: String,
    pub account_name: String,
}

pub fn bank_out(collect: Option<&CollectAccount>) -> Option<BankOut> {
    collect.map(|c| BankOut {
        bin: c.bin.as_str().to_string(),
        name: c.bin.bank().map(|b| b.short_name).unwrap_or("").to_string(),
        account_no: c.account_no.clone(),
        account_name: c.account_name.clone(),
    })
}

/// `GET /api/v1/payments/{code}`: where a payment stands.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PaymentState {
    pub code: String,
    pub status: crate::payments::state::PaymentStatus,
    pub amount_vnd: i64,
    pub amount_paid_vnd: i64,
    pub amount_remaining_vnd: i64,
    pub overpaid_vnd: i64,
    pub cancelled: bool,
    /// Unix seconds.
    pub expires_at: i64,
    /// The same moment in Vietnam's time, as a page shows it.
    pub expires_at_local: String,
}

pub fn payment_status(p: &PaymentView) -> PaymentState {
    PaymentState {
        code: p.code.clone(),
        status: p.status,
        amount_vnd: p.amount_vnd,
        amount_paid_vnd: p.amount_paid_vnd,
        amount_remaining_vnd: p.amount_remaining_vnd,
        overpaid_vnd: p.overpaid_vnd,
        cancelled: p.cancelled,
        expires_at: p.expires_at,
        expires_at_local: format_vn_time(p.expires_at),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ShopRefOut {
    pub slug: String,
    pub name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckoutLineOut {
    pub product_id: i64,
    pub name: String,
    pub quantity: i64,
    pub unit: String,
    /// The board's agreed price when the order was placed.
    pub unit_price_vnd: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckoutOrderOut {
    pub code: String,
    pub status: crate::orders::OrderStatus,
    pub shop: ShopRefOut,
    pub lines: Vec<CheckoutLineOut>,
    /// Goods and shipping together.
    pub total_vnd: i64,
    /// The shipping fee inside `total_vnd` (0 when none).
    pub shipping_vnd: i64,
    /// The way to ship chosen; absent when the shop set no ways to ship.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping_method: Option<crate::shipping::Method>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckoutPaymentOut {
    pub code: String,
    pub order_code: i64,
    /// `vietqr`, `payos` or `stripe`.
    pub method: String,
    pub status: crate::payments::state::PaymentStatus,
    pub amount_vnd: i64,
    /// The EMVCo VietQR text to show as a QR code (bank transfers).
    pub vietqr_payload: Option<String>,
    pub qr_png_url: String,
    pub bank: Option<BankOut>,
    /// What the buyer writes in the transfer's description.
    pub description: String,
    /// The provider's hosted page (payOS, Stripe).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkout_url: Option<String>,
}

/// The checkout as the API returns it (spec of issue 4): one order per shop, one payment.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckoutOut {
    pub checkout_code: String,
    pub total_vnd: i64,
    pub expires_at: i64,
    pub orders: Vec<CheckoutOrderOut>,
    pub payment: CheckoutPaymentOut,
}

pub async fn checkout_out(db: &Db, cfg: &Config, checkout_id: i64) -> Result<CheckoutOut> {
    let c: CheckoutView = checkout_by_id(db, checkout_id).await?;
    let p = payment_of_checkout(db, checkout_id).await?;
    let orders = c
        .orders
        .iter()
        .map(|o| CheckoutOrderOut {
            code: o.code.clone(),
            status: o.status,
            shop: ShopRefOut {
                slug: o.shop_slug.clone(),
                name: o.shop_name.clone(),
            },
            lines: o
                .lines
                .iter()
                .map(|l| CheckoutLineOut {
                    product_id: l.product_id,
                    name: l.name.clone(),
                    quantity: l.quantity,
                    unit: l.unit.clone(),
                    unit_price_vnd: l.unit_price_vnd,
                })
                .collect(),
            total_vnd: o.total_vnd,
            shipping_vnd: o.shipping_vnd,
            shipping_method: o.shipping_method,
        })
        .collect();
    let payment = CheckoutPaymentOut {
        code: p.code.clone(),
        order_code: p.order_code,
        method: p.method.clone(),
        status: p.status,
        amount_vnd: p.amount_vnd,
        vietqr_payload: qr_payload(cfg, &p)?,
        qr_png_url: format!("{}/pay/{}/qr.png", cfg.public_url, p.code),
        bank: bank_out(cfg.payments.collect.as_ref()),
        description: transfer_description(&p),
        checkout_url: p.checkout_url.clone(),
    };
    Ok(CheckoutOut {
        checkout_code: c.code,
        total_vnd: c.total_vnd,
        expires_at: p.expires_at,
        orders,
        payment,
    })
}
