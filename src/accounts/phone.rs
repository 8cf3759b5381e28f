//! Phone numbers proven by a 6-digit code (sent by `notify::phone`: Zalo, then SMS).
//!
//! A code lives 10 minutes, is used once, survives 5 wrong tries and is kept only as an HMAC
//! under the installation's secret. At most 5 codes go to one phone, and 5 from one client
//! address (20 for a logged-in account), in an hour (429 after). Codes are typed with or without spaces.

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use sqlx::Row;

use crate::config::Config;
use crate::db::Db;
use crate::domain::{PhoneVn, now_ms};
use crate::error::{AppError, Result};

pub const CODE_MINUTES: i64 = 10;
pub const CODE_TRIES: i64 = 5;
pub const CODES_PER_HOUR: i64 = 5;

/// What a code proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A new account with this phone as its login.
    Register,
    /// A phone added to (or proven for) a logged-in account.
    AddPhone,
    /// A household agreeing that a helper opens and runs its shop.
    Household,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Register => "register",
            Purpose::AddPhone => "add_phone",
            Purpose::Household => "household",
        }
    }
}

/// A fresh 6-digit code.
pub fn new_code() -> String {
    format!("{:06}", rand::thread_rng().gen_range(0..1_000_000u32))
}

/// "482 913" as it is shown and sent.
pub fn spaced(code: &str) -> String {
    if code.len() == 6 {
        format!("{} {}", &code[..3], &code[3..])
    } else {
        code.to_string()
    }
}

/// HMAC-SHA256 of the code under the installation's key, bound to what it is for.
pub fn code_mac(cfg: &Config, scope: &str, code: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&cfg.secret_key).expect("any key length");
    mac.update(scope.as_bytes());
    mac.update(b"\0");
    mac.update(code.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Codes a logged-in account (a helper onboarding households, someone adding a phone) may
/// have sent in an hour: counted per account rather than per address, since the digital
/// team works from the village hall's one connection.
pub const CODES_PER_ACCOUNT_HOUR: i64 = 20;

/// Who asks for a code: an anonymous client address, or a logged-in account.
pub enum Asker<'a> {
    Address(&'a str),
    Account(i64),
}

/// Take one send from the phone's and the asker's hourly allowance (429 when spent): 5 per
/// phone, 5 per address (20 per logged-in account).
pub async fn reserve_send(db: &Db, phone: &PhoneVn, asker: Asker<'_>) -> Result<()> {
    let hour = 3_600_000;
    let per_phone = crate::limits::take(
        db,
        &format!("phone-code:{}", phone.as_str()),
        CODES_PER_HOUR,
        hour,
    )
    .await?;
    let per_asker = match asker {
        Asker::Address(client) => {
            crate::limits::take(db, &format!("phone-code-ip:{client}"), CODES_PER_HOUR, hour)
                .await?
        }
        Asker::Account(id) => {
            crate::limits::take(
                db,
                &format!("phone-code-user:{id}"),
                CODES_PER_ACCOUNT_HOUR,
                hour,
            )
            .await?
        }
    };
    if !per_phone || !per_asker {
        return Err(AppError::TooManyAttempts(60));
    }
    Ok(())
}

/// What waits with a code until it is typed.
#[derive(Debug, Default, Clone)]
pub struct Pending {
    pub user_id: Option<i64>,
    pub household_id: Option<i64>,
    pub display_name: Option<String>,
    pub password_hash: Option<String>,
}

/// Send a code to `phone` for `purpose` (the allowance is taken by the caller with
/// [`reserve_send`]); an older unused code for the same phone and purpose stops working.
pub async fn send(
    db: &Db,
    cfg: &Config,
    phone: &PhoneVn,
    purpose: Purpose,
    pending: Pending,
) -> Result<i64> {
    let code = new_code();
    let request_id = format!("cl{}", uuid::Uuid::new_v4().simple());
    let via =
        crate::notify::phone::send_code(db, cfg, phone, &code, CODE_MINUTES, &request_id).await?;
    let now = now_ms();
    let mut tx = db.begin().await?;
    let replaced = match (purpose, pending.household_id) {
        (Purpose::Household, Some(h)) => sqlx::query(
            "UPDATE phone_codes SET used_at = $1, password_hash = NULL
             WHERE purpose = $2 AND used_at IS NULL AND household_id = $3",
        )
        .bind(now)
        .bind(purpose.as_str())
        .bind(h),
        _ => sqlx::query(
            "UPDATE phone_codes SET used_at = $1, password_hash = NULL
             WHERE purpose = $2 AND used_at IS NULL AND phone = $3",
        )
        .bind(now)
        .bind(purpose.as_str())
        .bind(phone.as_str().to_string()),
    };
    replaced.execute(&mut *tx).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO phone_codes (phone, purpose, user_id, household_id, display_name,
           password_hash, code_hash, attempts, sent_via, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $10) RETURNING id",
    )
    .bind(phone.as_str().to_string())
    .bind(purpose.as_str())
    .bind(pending.user_id)
    .bind(pending.household_id)
    .bind(pending.display_name)
    .bind(pending.password_hash)
    .bind(code_mac(cfg, &scope(purpose, phone), &code))
    .bind(via.as_str())
    .bind(now + CODE_MINUTES * 60_000)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

fn scope(purpose: Purpose, phone: &PhoneVn) -> String {
    format!("{}:{}", purpose.as_str(), phone.as_str())
}

/// Which code is being typed: the newest for a phone and purpose, or a household's.
pub enum Which<'a> {
    Phone(&'a PhoneVn, Purpose),
    Household(i64),
}

/// Check a typed code: the try is counted first (atomically), a right code is used up.
/// Answers what waited with it.
pub async fn check(db: &Db, cfg: &Config, which: Which<'_>, typed: &str) -> Result<Pending> {
    let wrong = || AppError::field("code", "Mã không đúng hoặc đã hết hạn");
    let typed = super::reset::typed_code(typed);
    if typed.len() != 6 || !typed.chars().all(|c| c.is_ascii_digit()) {
        return Err(AppError::field("code", "Mã gồm 6 chữ số trong tin nhắn"));
    }
    let (filter, purpose, key): (&str, Purpose, String) = match &which {
        Which::Phone(p, purpose) => ("phone = $1 AND purpose = $3", *purpose, p.as_str().into()),
        Which::Household(id) => (
            "household_id = $1 AND purpose = $3",
            Purpose::Household,
            id.to_string(),
        ),
    };
    let sql = format!(
        "UPDATE phone_codes SET attempts = attempts + 1
         WHERE id = (SELECT MAX(id) FROM phone_codes WHERE {filter})
           AND used_at IS NULL AND expires_at > $2
         RETURNING id, phone, code_hash, attempts, user_id, household_id, display_name, password_hash"
    );
    let q = sqlx::query(sqlx::AssertSqlSafe(sql));
    let q = match &which {
        Which::Phone(..) => q.bind(key),
        Which::Household(id) => q.bind(*id),
    };
    let row = q
        .bind(now_ms())
        .bind(purpose.as_str())
        .fetch_optional(&db.pool)
        .await?
        .ok_or_else(wrong)?;
    let id: i64 = row.try_get("id")?;
    let attempts: i64 = row.try_get("attempts")?;
    let phone =
        PhoneVn::parse(&row.try_get::<String, _>("phone")?).map_err(|e| anyhow::anyhow!(e))?;
    let stored: String = row.try_get("code_hash")?;
    let given = code_mac(cfg, &scope(purpose, &phone), &typed);
    let same: bool = subtle::ConstantTimeEq::ct_eq(stored.as_bytes(), given.as_bytes()).into();
    if attempts > CODE_TRIES || !same {
        if attempts >= CODE_TRIES {
            return Err(AppError::field(
                "code",
                "Mã này đã bị nhập sai quá nhiều lần. Hãy bấm “Gửi lại mã” để nhận mã mới.",
            ));
        }
        return Err(wrong());
    }
    // Used once: only the first of two racing right answers gets it.
    let n = sqlx::query(
        "UPDATE phone_codes SET used_at = $1, password_hash = NULL WHERE id = $2 AND used_at IS NULL",
    )
        .bind(now_ms())
        .bind(id)
        .execute(&db.pool)
        .await?
        .rows_affected();
    if n != 1 {
        return Err(wrong());
    }
    Ok(Pending {
        user_id: row.try_get("user_id")?,
        household_id: row.try_get("household_id")?,
        display_name: row.try_get("display_name")?,
        password_hash: row.try_get("password_hash")?,
    })
}

/// Whether the newest code of a phone and purpose exists and can still be typed (for
/// pages that ask for it).
pub async fn waiting(db: &Db, phone: &PhoneVn, purpose: Purpose) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM phone_codes WHERE phone = $1 AND purpose = $2
           AND used_at IS NULL AND expires_at > $3",
    )
    .bind(phone.as_str().to_string())
    .bind(purpose.as_str())
    .bind(now_ms())
    .fetch_one(&db.pool)
    .await?;
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_six_digits_and_show_in_two_groups() {
        for _ in 0..200 {
            let c = new_code();
            assert_eq!(c.len(), 6);
            assert!(c.chars().all(|ch| ch.is_ascii_digit()));
        }
        assert_eq!(spaced("048213"), "048 213");
    }
}
