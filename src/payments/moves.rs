//! A seller's moves of an order (accept, ship, deliver, cancel), for the page and the API
//! alike. Above orders because cancelling moves money: an unpaid order gives its stock back
//! and lowers its payment; a paid one is owed back to its buyer.

use crate::db::Db;
use crate::error::{AppError, Result};
use crate::orders::store::{OrderView, Shipping, order_by_code, release, set_status};
use crate::orders::{Actor, OrderStatus};

/// A seller moves their order along (accept, ship, deliver, or cancel before shipping,
/// which puts the goods back in stock and owes the buyer a refund).
pub async fn seller_move(
    db: &Db,
    user: &crate::accounts::User,
    code: &str,
    to: OrderStatus,
) -> Result<OrderView> {
    seller_move_with(db, user, code, to, &Shipping::default()).await
}

pub async fn seller_move_with(
    db: &Db,
    user: &crate::accounts::User,
    code: &str,
    to: OrderStatus,
    shipping: &Shipping,
) -> Result<OrderView> {
    let order = order_by_code(db, code).await?;
    let to = order.status.seller_meant(to);
    let shop = crate::catalog::store::shop_by_id(db, crate::catalog::ShopId(order.shop_id)).await?;
    // A helper of the village's digital team accepts and ships; cancelling (which owes the
    // buyer money) stays with the owner.
    let helper = crate::catalog::helpers::acts_as_helper(user, &shop);
    if helper {
        if !matches!(
            to,
            OrderStatus::Accepted | OrderStatus::Shipped | OrderStatus::Delivered
        ) {
            return Err(AppError::Forbidden);
        }
    } else {
        crate::catalog::store::authorize_shop(user, &shop)?;
    }
    let actor = if user.is_admin() && shop.owner_id != Some(user.id.0) {
        Actor::Admin
    } else {
        Actor::Seller
    };
    let mut tx = db.begin().await?;
    if order.status == OrderStatus::PendingPayment && to == OrderStatus::Cancelled {
        super::store::cancel_unpaid_order(&mut tx, &order, actor, Some(user.id.0)).await?;
        tx.commit().await?;
        return order_by_code(db, code).await;
    }
    set_status(&mut tx, order.id, order.status, to, actor, Some(user.id.0)).await?;
    match to {
        // The money becomes available days after shipping, or when delivered.
        OrderStatus::Shipped => {
            sqlx::query(
                "UPDATE orders SET shipped_at = $1, carrier = $3, tracking_code = $4 WHERE id = $2",
            )
            .bind(crate::domain::now_ms())
            .bind(order.id)
            .bind(shipping.carrier.clone())
            .bind(shipping.tracking_code.clone())
            .execute(&mut *tx)
            .await?;
        }
        // The seller's word alone never releases the money: buyer protection's window
        // starts (`orders::release`).
        OrderStatus::Delivered => {
            sqlx::query(
                "UPDATE orders SET delivered_at = $1, delivered_by = 'seller' WHERE id = $2 AND delivered_at IS NULL",
            )
            .bind(crate::domain::now_ms())
            .bind(order.id)
            .execute(&mut *tx)
            .await?;
        }
        OrderStatus::RefundDue => {
            crate::orders::money::order_refund_due(&mut tx, order.id).await?;
        }
        _ => {}
    }
    if to == OrderStatus::RefundDue {
        for l in &order.lines {
            release(&mut tx, l.product_id, l.quantity).await?;
        }
        let payment: i64 = sqlx::query_scalar("SELECT id FROM payments WHERE checkout_id = $1")
            .bind(order.checkout_id)
            .fetch_one(&mut *tx)
            .await?;
        crate::notify::event(&mut tx, crate::notify::NoticeKind::RefundDue, payment).await?;
    }
    if helper {
        let what = match to {
            OrderStatus::Accepted => "nhận đơn",
            OrderStatus::Shipped => "gửi hàng đơn",
            _ => "báo đã giao đơn",
        };
        crate::catalog::helpers::record_tx(&mut tx, user.id, shop.id, &format!("{what} {code}"))
            .await?;
    }
    tx.commit().await?;
    order_by_code(db, code).await
}
