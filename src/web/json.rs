//! What the API shows of stored rows: codes, slugs and what a client can send back, never a
//! row's internal ids (orders are named by code, shops by slug, payments by code). The rows
//! (`orders::store::OrderView`, `payments::store::PaymentView`) stay storage types; each
//! answer is built from one here, so a column added to a row reaches the API only when it
//! is added to its answer.

use serde::Serialize;
use utoipa::ToSchema;

use crate::orders::OrderStatus;
use crate::orders::release::Release;
use crate::orders::store::{BuyerDetails, LineView, OrderView};
use crate::payments::state::PaymentStatus;
use crate::payments::store::PaymentView;

/// An order as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = OrderView)]
pub struct OrderJson {
    pub code: String,
    pub shop_slug: String,
    pub shop_name: String,
    pub status: OrderStatus,
    /// Goods and shipping together.
    pub total_vnd: i64,
    /// The shipping fee inside `total_vnd` (0 when none).
    pub shipping_vnd: i64,
    /// The way to ship the buyer chose; absent when the shop set no ways to ship.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping_method: Option<crate::shipping::Method>,
    pub lines: Vec<LineView>,
    pub created_at: i64,
    pub carrier: Option<String>,
    pub tracking_code: Option<String>,
    /// When the order's money is released to its shop and why (buyer protection); in the
    /// seller's and the admin's order views.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<Release>,
    /// Who bought it and where it goes: in the shop's own order list, once the order is
    /// paid (`orders::store::buyer_of`, the rule the orders page follows too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buyer: Option<BuyerJson>,
}

/// The buyer of an order, as its shop sees them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BuyerJson {
    pub name: String,
    pub phone: String,
    pub address: String,
    pub note: String,
}

impl From<BuyerDetails> for BuyerJson {
    fn from(b: BuyerDetails) -> BuyerJson {
        BuyerJson {
            name: b.name,
            phone: b.phone,
            address: b.address,
            note: b.note,
        }
    }
}

impl From<OrderView> for OrderJson {
    fn from(o: OrderView) -> OrderJson {
        OrderJson {
            code: o.code,
            shop_slug: o.shop_slug,
            shop_name: o.shop_name,
            status: o.status,
            total_vnd: o.total_vnd,
            shipping_vnd: o.shipping_vnd,
            shipping_method: o.shipping_method,
            lines: o.lines,
            created_at: o.created_at,
            carrier: o.carrier,
            tracking_code: o.tracking_code,
            release: o.release,
            buyer: None,
        }
    }
}

/// A payment as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = PaymentView)]
pub struct PaymentJson {
    pub code: String,
    pub order_code: i64,
    pub method: String,
    pub status: PaymentStatus,
    pub amount_vnd: i64,
    pub amount_paid_vnd: i64,
    pub amount_remaining_vnd: i64,
    pub overpaid_vnd: i64,
    pub refunded_vnd: i64,
    pub late: bool,
    /// Closed because its seller(s) cancelled every order before money arrived.
    pub cancelled: bool,
    pub expires_at: i64,
    pub paid_at: Option<i64>,
    pub checkout_url: Option<String>,
    pub provider_qr: Option<String>,
}

impl From<PaymentView> for PaymentJson {
    fn from(p: PaymentView) -> PaymentJson {
        PaymentJson {
            code: p.code,
            order_code: p.order_code,
            method: p.method,
            status: p.status,
            amount_vnd: p.amount_vnd,
            amount_paid_vnd: p.amount_paid_vnd,
            amount_remaining_vnd: p.amount_remaining_vnd,
            overpaid_vnd: p.overpaid_vnd,
            refunded_vnd: p.refunded_vnd,
            late: p.late,
            cancelled: p.cancelled,
            expires_at: p.expires_at,
            paid_at: p.paid_at,
            checkout_url: p.checkout_url,
            provider_qr: p.provider_qr,
        }
    }
}
