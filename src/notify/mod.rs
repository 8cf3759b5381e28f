//! Notices to sellers, buyers and admins by email, Zalo and Telegram, through a durable
//! outbox: an event row is written in the same transaction as the change that causes it;
//! the worker expands it into notices and delivers them with retries.

pub mod channels;
pub mod phone;
pub mod render;
pub mod store;
pub mod worker;

pub use store::event;

/// Whether a shop can be told something on one channel now, and what is missing if not.
#[derive(Debug, Clone, serde::Serialize, PartialEq, utoipa::ToSchema)]
pub struct Reach {
    /// `email`, `zalo` or `telegram`
    pub channel: &'static str,
    /// The shop asked for notices on this channel.
    pub enabled: bool,
    /// A notice on this channel would be sent (Chợ Làng has it set up, the shop has what it
    /// needs: a confirmed email, a Telegram chat id).
    pub can_deliver: bool,
    /// Why it cannot deliver, in words for the seller ("" when it can).
    pub missing: String,
}

/// The three channels for a shop, given this installation's notice settings.
pub fn reach(config: &crate::config::NotifyConfig, shop: &crate::catalog::Shop) -> [Reach; 3] {
    let email_ok = shop.email.is_some() && shop.email_confirmed;
    let email_missing = match (&shop.email, shop.email_confirmed) {
        (None, _) => "Chưa có email".to_string(),
        (Some(_), false) => {
            "Email chưa xác nhận: hãy bấm liên kết trong thư Chợ Làng đã gửi".to_string()
        }
        _ => String::new(),
    };
    let zalo_ok = config.zalo.is_some();
    let telegram_ok = config.telegram.is_some() && shop.telegram_chat_id.is_some();
    let telegram_missing = if config.telegram.is_none() {
        "Telegram chưa bật trên Chợ Làng".to_string()
    } else if shop.telegram_chat_id.is_none() {
        "Chưa có mã chat Telegram: nhắn /start cho bot Chợ Làng rồi dán mã chat (một dãy số) vào ô trên".to_string()
    } else {
        String::new()
    };
    [
        Reach {
            channel: "email",
            enabled: shop.notify_email,
            can_deliver: email_ok,
            missing: email_missing,
        },
        Reach {
            channel: "zalo",
            enabled: shop.notify_zalo,
            can_deliver: zalo_ok,
            missing: if zalo_ok {
                String::new()
            } else {
                "Zalo chưa bật trên Chợ Làng".into()
            },
        },
        Reach {
            channel: "telegram",
            enabled: shop.notify_telegram,
            can_deliver: telegram_ok,
            missing: telegram_missing,
        },
    ]
}

/// Test notices a shop may send in an hour.
pub const TEST_NOTICES_PER_HOUR: i64 = 3;

/// Queue a test notice to every channel of the shop: a few an hour per shop (it reaches
/// whatever address the seller typed).
pub async fn send_test(
    db: &crate::db::Db,
    shop: crate::catalog::ShopId,
) -> crate::error::Result<()> {
    let key = format!("test-notice:{}", shop.0);
    if !crate::limits::take(db, &key, TEST_NOTICES_PER_HOUR, 3_600_000).await? {
        return Err(crate::error::AppError::TooManyAttempts(60));
    }
    store::event_now(db, "test", shop.0).await?;
    Ok(())
}
