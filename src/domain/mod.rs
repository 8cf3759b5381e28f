//! Domain newtypes that validate at the edge: once built, a value is known to be good.

pub mod banks;
mod email;
mod gtin;
pub mod money;
pub mod payment_code;
mod phone;
pub mod schedule;
pub mod sheet;
pub mod shipping_method;
mod slug;
pub mod text;
pub mod vietqr;

pub use email::Email;
pub use gtin::Gtin;
pub use money::Vnd;
pub use phone::PhoneVn;
pub use slug::Slug;

/// Retry delay after `attempts` failures (counted from 1): `base_secs` doubling each time,
/// capped at `cap_secs`, plus up to 25 % jitter so retries of many rows do not bunch up.
/// Shared by the notice outbox and the search queue.
pub fn retry_backoff(base_secs: i64, attempts: i64, cap_secs: i64) -> std::time::Duration {
    use rand::Rng;
    let exp = base_secs
        .max(1)
        .saturating_mul(1 << attempts.clamp(1, 12).saturating_sub(1));
    let secs = exp.min(cap_secs.max(1)) as f64;
    let jitter = rand::thread_rng().gen_range(0.0..0.25);
    std::time::Duration::from_secs_f64(secs * (1.0 + jitter))
}

/// A phone number as people write it: `0912 000 101` (10 digits in 4-3-3); anything else
/// as stored.
pub fn format_phone(phone: &str) -> String {
    let digits: String = phone.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.len() == 10 && digits.starts_with('0') && digits.len() == phone.trim().len() {
        format!("{} {} {}", &digits[..4], &digits[4..7], &digits[7..])
    } else {
        phone.to_string()
    }
}

/// Milliseconds since the Unix epoch, UTC: how every time is stored.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Vietnam has kept UTC+7 without daylight saving since 1975, so Asia/Ho_Chi_Minh is this
/// fixed offset for every date the marketplace can hold.
pub fn vn_offset() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(7 * 3600).expect("valid offset")
}

/// Today's date in Hà Nội.
pub fn today_vn() -> chrono::NaiveDate {
    chrono::Utc::now().with_timezone(&vn_offset()).date_naive()
}

/// The day in Hà Nội a stored UTC time falls on.
pub fn vn_date(ms: i64) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&vn_offset())
        .date_naive()
}

/// Midnight in Hà Nội starting `day`, as a stored time (`None` past chrono's range).
pub fn vn_midnight(day: chrono::NaiveDate) -> Option<i64> {
    day.and_hms_opt(0, 0, 0)?
        .and_local_timezone(vn_offset())
        .single()
        .map(|t| t.timestamp_millis())
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

/// The day in Vietnam, as sellers read it: "09/12".
pub fn format_vn_date(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.with_timezone(&vn_offset()).format("%d/%m").to_string(),
        None => String::new(),
    }
}

/// A value the API reads as text whether it is sent as a JSON string or number
/// (prices, quantities, ids, bank account numbers).
pub fn text_or_number() -> utoipa::openapi::Schema {
    use utoipa::openapi::{ObjectBuilder, Type, schema::OneOfBuilder};
    let one_of = OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ObjectBuilder::new().schema_type(Type::Integer))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .build();
    utoipa::openapi::Schema::OneOf(one_of)
}

/// The signed part of the buyer's link in the receipt email (`/don-hang/{code}?t=…`): proof
/// of being the buyer without an account.
pub fn buyer_token(secret: &[u8], order_code: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("hmac key");
    mac.update(format!("buyer:order:{}", order_code.to_uppercase()).as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// Constant-time check of a buyer link's token.
pub fn buyer_token_ok(secret: &[u8], order_code: &str, token: &str) -> bool {
    use subtle::ConstantTimeEq;
    let want = buyer_token(secret, order_code);
    token.len() == want.len() && bool::from(want.as_bytes().ct_eq(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_grows_with_jitter_and_a_cap() {
        for attempts in 1..20 {
            let b = super::retry_backoff(10, attempts, 3600).as_secs_f64();
            let base = (10.0 * 2f64.powi(attempts as i32 - 1)).min(3600.0);
            assert!(b >= base && b <= base * 1.25, "{attempts}: {b}");
        }
        let b = super::retry_backoff(1, 30, 60).as_secs_f64();
        assert!((60.0..=75.0).contains(&b), "{b}");
    }

    #[test]
    fn phones_are_written_in_groups() {
        assert_eq!(super::format_phone("0912000101"), "0912 000 101");
        assert_eq!(super::format_phone("+84912000101"), "+84912000101");
        assert_eq!(super::format_phone("02433"), "02433");
    }

    #[test]
    fn shows_hanoi_local_time() {
        // 2026-11-28T17:30:00Z is 00:30 on the 29th in Hà Nội.
        assert_eq!(super::format_vn_time(1_795_887_000_000), "29/11/2026 00:30");
    }
}
