//! Money in the demo market (`serve --demo` only): the real checkout, bank feed, seller moves
//! and payout account, so a newcomer sees every money page with something on it — a shop due
//! in the payout preview, a shop held (no account), a transfer for a cancelled order owed back
//! in reconciliation with its refundable amount, a transfer nobody claimed.

use crate::accounts::{Login, User};
use crate::bankfeed::{Hint, Incoming, Provider};
use crate::config::Config;
use crate::db::Db;
use crate::error::{AppError, Result};
use crate::orders::OrderStatus;
use crate::orders::checkout::{RawBuyer, RawItem, validate};
use crate::treasury::receive as record;

pub async fn seller(db: &Db, phone: &str) -> Result<User> {
    let login = Login::parse(phone).map_err(AppError::BadRequest)?;
    crate::accounts::store::find_by_login(db, &login)
        .await?
        .ok_or(AppError::NotFound)
}

/// Check out `qty` of `slug` as a demo buyer: (payment code, order code, total).
pub async fn buy(db: &Db, cfg: &Config, slug: &str, qty: i64) -> Result<(String, String, i64)> {
    // The demo's shops deliver themselves ("tự giao"); the buyer takes that way.
    let shop: String = sqlx::query_scalar(
        "SELECT s.slug FROM shops s JOIN products p ON p.shop_id = s.id WHERE p.slug = $1",
    )
    .bind(slug.to_string())
    .fetch_one(&db.pool)
    .await?;
    let req = validate(
        &[RawItem {
            product_id: None,
            product_slug: Some(slug.into()),
            quantity: Some(qty.into()),
        }],
        &RawBuyer {
            name: "Chị Mai (khách thử)".into(),
            phone: "0987654321".into(),
            province_code: "01".into(),
            ward_code: "00070".into(), // Phường Hoàn Kiếm
            street: "12 Hàng Bông".into(),
            email: None,
            note: None,
            ..Default::default()
        },
        "vietqr",
        &[(shop, "self".to_string())].into_iter().collect(),
    )?;
    let checkout = crate::payments::service::start(db, cfg, &req, "demo").await?;
    let c = crate::orders::store::checkout_by_id(db, checkout).await?;
    let p = crate::payments::store::payment_of_checkout(db, checkout).await?;
    Ok((p.code, c.orders[0].code.clone(), c.total_vnd))
}

/// A transfer as the bank feed reports it.
pub async fn transfer(db: &Db, id: &str, amount: i64, description: &str) -> Result<()> {
    record(
        db,
        &Incoming {
            provider: Provider::Bank,
            txn_id: id.into(),
            amount,
            description: description.into(),
            account_number: None,
            reference: Some(id.into()),
            time: None,
            raw: "{}".into(),
            hint: None::<Hint>,
            success: true,
        },
    )
    .await
    .map(|_| ())
}

/// The seller accepts, ships and delivers the order.
async fn deliver(db: &Db, seller: &User, order: &str) -> Result<()> {
    for to in [
        OrderStatus::Accepted,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
    ] {
        crate::payments::moves::seller_move(db, seller, order, to).await?;
    }
    // The buyer confirmed receipt: the money is released at once (buyer protection).
    let o = crate::orders::store::order_by_code(db, order).await?;
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE orders SET received_at = $1, delivered_by = 'buyer' WHERE id = $2")
        .bind(crate::domain::now_ms())
        .bind(o.id)
        .execute(&mut *tx)
        .await?;
    crate::orders::money::release_order(&mut tx, o.id, None).await?;
    tx.commit().await?;
    Ok(())
}

/// Put the demo's money in place (once, right after the demo market was loaded).
pub async fn load(db: &Db, cfg: &Config) -> Result<()> {
    let hanh = seller(db, "0912000101").await?;
    let duc = seller(db, "0912000103").await?;
    let shop = crate::catalog::store::shop_by_slug(db, "man-tuyn-ba-hanh").await?;
    let account =
        crate::payouts::PayoutAccount::parse("970405", "1234 5678 90", "Nguyen Thi Hanh")?;
    crate::payouts::store::set_account(
        db,
        cfg,
        &hanh,
        &shop,
        &account,
        crate::demo::catalog::DEMO_PASSWORD,
    )
    .await?;
    // The demo's account change is old news: payouts may go to it now.
    sqlx::query("UPDATE shops SET payout_hold_until = $1 WHERE id = $2")
        .bind(crate::domain::now_ms() - 1)
        .bind(shop.id.0)
        .execute(&db.pool)
        .await?;
    // Bà Hạnh: a net paid and delivered — due in the payout preview.
    let (pay, order, total) = buy(db, cfg, "man-tuyn-2-cua-1m8-x-2m", 2).await?;
    transfer(db, "DEMO-FT-0001", total, &format!("CHI MAI CK {pay}")).await?;
    deliver(db, &hanh, &order).await?;
    // Minh Đức: a stool delivered, but no payout account yet — held in the preview.
    let (pay, order, total) = buy(db, cfg, "ghe-dau-go-xoan", 1).await?;
    transfer(db, "DEMO-FT-0002", total, &format!("CK {pay}")).await?;
    deliver(db, &duc, &order).await?;
    // An order its seller cancelled before payment, paid anyway: owed back to the buyer.
    let (pay, order, total) = buy(db, cfg, "man-tuyn-tre-em-1m2", 1).await?;
    crate::payments::moves::seller_move(db, &hanh, &order, OrderStatus::Cancelled).await?;
    transfer(db, "DEMO-FT-0003", total, &format!("CK {pay}")).await?;
    // A transfer with no code: waits in reconciliation.
    transfer(db, "DEMO-FT-0004", 77_000, "chuyen tien mua man").await?;
    Ok(())
}
