//! Notices to sellers, buyers and admins by email, Zalo and Telegram, through a durable
//! outbox: an event row is written in the same transaction as the change that causes it;
//! the worker expands it into notices and delivers them with retries.

pub mod channels;
pub mod kind;
pub mod phone;
pub mod render;
pub mod store;
pub mod worker;

pub use kind::NoticeKind;
pub use store::event;

/// Test notices a shop may send in an hour.
pub const TEST_NOTICES_PER_HOUR: i64 = 3;

/// Queue a test notice to every channel of the shop: a few an hour per shop (it reaches
/// whatever address the seller typed).
pub async fn send_test(db: &crate::db::Db, shop: i64) -> crate::error::Result<()> {
    let key = format!("test-notice:{shop}");
    if !crate::limits::take(db, &key, TEST_NOTICES_PER_HOUR, 3_600_000).await? {
        return Err(crate::error::AppError::TooManyAttempts(60));
    }
    store::event_now(db, NoticeKind::Test, shop).await?;
    Ok(())
}
