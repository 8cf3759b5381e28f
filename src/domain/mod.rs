//! Domain newtypes that validate at the edge: once built, a value is known to be good.

mod email;
pub mod money;
mod phone;
mod slug;
pub mod text;

pub use email::Email;
pub use money::Vnd;
pub use phone::PhoneVn;
pub use slug::Slug;

/// Milliseconds since the Unix epoch, UTC: how every time is stored.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Vietnam has kept UTC+7 without daylight saving since 1975, so Asia/Ho_Chi_Minh is this
/// fixed offset for every date the marketplace can hold.
pub fn vn_offset() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(7 * 3600).expect("valid offset")
}

/// A stored UTC time shown as Vietnamese local time, e.g. `28/11/2026 21:05`.
pub fn format_vn_time(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t
            .with_timezone(&vn_offset())
            .format("%d/%m/%Y %H:%M")
            .to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn shows_hanoi_local_time() {
        // 2026-11-28T17:30:00Z is 00:30 on the 29th in Hà Nội.
        assert_eq!(super::format_vn_time(1_795_887_000_000), "29/11/2026 00:30");
    }
}
