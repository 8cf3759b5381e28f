//! Buyer protection in the demo: one order in each state a newcomer should see — waiting for
//! the buyer's confirmation, a request open, a refund on its way to the buyer's bank.

use crate::config::Config;
use crate::db::Db;
use crate::demo::payouts::{buy, seller, transfer};
use crate::error::Result;
use crate::orders::OrderStatus;
use crate::orders::store::order_by_code;
use crate::payments::moves::seller_move;

pub async fn load(db: &Db, cfg: &Config) -> Result<()> {
    let hanh = seller(db, "0912000101").await?;
    let huong = seller(db, "0912000102").await?;
    let toan = seller(db, "0912000104").await?;
    let ship = |who: &crate::accounts::User, order: String, delivered: bool| {
        let who = who.clone();
        async move {
            let mut steps = vec![OrderStatus::Accepted, OrderStatus::Shipped];
            if delivered {
                steps.push(OrderStatus::Delivered);
            }
            for to in steps {
                seller_move(db, &who, &order, to).await?;
            }
            Ok::<(), crate::error::AppError>(())
        }
    };
    // Waiting for the buyer: delivered by the seller's word, released in 3 days.
    let (pay, order, total) = buy(db, cfg, "man-tuyn-tre-em-1m2", 1).await?;
    transfer(db, "DEMO-FT-0101", total, &format!("CK {pay}")).await?;
    ship(&hanh, order, true).await?;
    // A request open: the curtain arrived torn; Bà Hương has to answer.
    let (pay, order, total) = buy(db, cfg, "rem-cua-luoi-chong-muoi-nam-cham", 1).await?;
    transfer(db, "DEMO-FT-0102", total, &format!("CK {pay}")).await?;
    ship(&huong, order.clone(), true).await?;
    let o = order_by_code(db, &order).await?;
    crate::protection::store::open_request(
        db,
        cfg,
        &o,
        &crate::protection::store::NewRequest::parse(
            "damaged",
            "Rèm bị rách một đường dài ở mép dưới, tôi chụp ảnh gửi kèm",
            Some(60_000),
        )?,
        &[],
    )
    .await?;
    // A refund on its way: the hooks never came; Văn Toàn accepted; the buyer gave an account.
    let (pay, order, total) = buy(db, cfg, "moc-treo-man-inox", 1).await?;
    transfer(db, "DEMO-FT-0103", total, &format!("CK {pay}")).await?;
    ship(&toan, order.clone(), false).await?;
    let o = order_by_code(db, &order).await?;
    let id = crate::protection::store::open_request(
        db,
        cfg,
        &o,
        &crate::protection::store::NewRequest::parse(
            "not_received",
            "Đã hai tuần mà chưa nhận được móc treo",
            None,
        )?,
        &[],
    )
    .await?;
    crate::protection::store::set_refund_account(
        db,
        cfg,
        &o,
        &crate::payouts::PayoutAccount::parse("970436", "0011001234567", "Nguyen Thi Mai")?,
    )
    .await?;
    crate::protection::store::answer(
        db,
        cfg,
        &toan,
        id,
        &crate::protection::store::Answer::Accept { full: true },
        &[],
    )
    .await?;
    Ok(())
}
