//! Starting a checkout and describing it: the one place that ties orders, the payment
//! method and the VietQR payload together, for the API and the payment page alike.

use serde_json::{Value, json};

use super::providers::{PayosLinkRequest, payos_create_link, stripe_create_session};
use super::store::{PaymentView, payment_by_id, payment_of_checkout};
use super::vietqr::{TransferQr, fold_purpose};
use crate::config::{CollectAccount, Config};
use crate::db::Db;
use crate::domain::format_vn_time;
use crate::error::{AppError, Result};
use crate::orders::OrderStatus;
use crate::orders::checkout::{CheckoutRequest, Method};
use crate::orders::store::{CheckoutView, checkout_by_id, create_checkout};

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
    let holds = crate::orders::store::HoldLimits {
        client: client.to_string(),
        max_open: cfg.checkout_max_open,
        max_units: cfg.checkout_max_held_units,
    };
    let created = create_checkout(db, req, cfg.payments.expiry_minutes, &holds).await?;
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

pub fn bank_json(collect: Option<&CollectAccount>) -> Value {
    match collect {
        Some(c) => json!({
            "bin": c.bin.as_str(),
            "name": c.bin.bank().map(|b| b.short_name).unwrap_or(""),
            "account_no": c.account_no,
            "account_name": c.account_name,
        }),
        None => Value::Null,
    }
}

/// `GET /api/v1/payments/{code}`.
pub fn payment_status_json(p: &PaymentView) -> Value {
    json!({
        "code": p.code,
        "status": p.status,
        "amount_vnd": p.amount_vnd,
        "amount_paid_vnd": p.amount_paid_vnd,
        "amount_remaining_vnd": p.amount_remaining_vnd,
        "overpaid_vnd": p.overpaid_vnd,
        "cancelled": p.cancelled,
        "expires_at": p.expires_at,
        "expires_at_local": format_vn_time(p.expires_at),
    })
}

/// The checkout as the API returns it (spec of issue 4).
pub async fn checkout_json(db: &Db, cfg: &Config, checkout_id: i64) -> Result<Value> {
    let c: CheckoutView = checkout_by_id(db, checkout_id).await?;
    let p = payment_of_checkout(db, checkout_id).await?;
    let orders: Vec<Value> = c
        .orders
        .iter()
        .map(|o| {
            json!({
                "code": o.code,
                "status": o.status,
                "shop": {"slug": o.shop_slug, "name": o.shop_name},
                "lines": o.lines.iter().map(|l| json!({
                    "product_id": l.product_id, "name": l.name, "quantity": l.quantity,
                    "unit": l.unit, "unit_price_vnd": l.unit_price_vnd,
                })).collect::<Vec<_>>(),
                "total_vnd": o.total_vnd,
            })
        })
        .collect();
    let mut payment = json!({
        "code": p.code,
        "order_code": p.order_code,
        "method": p.method,
        "status": p.status,
        "amount_vnd": p.amount_vnd,
        "vietqr_payload": qr_payload(cfg, &p)?,
        "qr_png_url": format!("{}/pay/{}/qr.png", cfg.public_url, p.code),
        "bank": bank_json(cfg.payments.collect.as_ref()),
        "description": transfer_description(&p),
    });
    if let Some(u) = &p.checkout_url {
        payment["checkout_url"] = json!(u);
    }
    Ok(json!({
        "checkout_code": c.code,
        "total_vnd": c.total_vnd,
        "expires_at": p.expires_at,
        "orders": orders,
        "payment": payment,
    }))
}
