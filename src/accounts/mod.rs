//! Accounts: sellers, moderators and admins; argon2id passwords; sessions; login limits.
//! Buyers need no account.

pub mod phone;
pub mod reset;
pub mod store;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::Serialize;
use std::sync::LazyLock;
use std::time::Duration;

use crate::limits::Slots;

use crate::domain::{Email, PhoneVn};
use crate::error::{AppError, FieldErrors};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
pub struct UserId(pub i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Seller,
    Moderator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Seller => "seller",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Result<Role, String> {
        match s {
            "seller" => Ok(Role::Seller),
            "moderator" => Ok(Role::Moderator),
            "admin" => Ok(Role::Admin),
            _ => Err(format!("unknown role {s:?} (seller, moderator or admin)")),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    /// Internal row id, never in the API (which names things by slug, code or login).
    #[serde(skip)]
    pub id: UserId,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub display_name: String,
    pub role: Role,
    /// The phone was proven by a code (a phone that is not cannot open or be given a shop).
    pub phone_proven: bool,
    /// Shops this user helps as one of the village's digital team (read with the session).
    #[serde(skip)]
    pub helps: Vec<i64>,
    /// Paid orders of this user's shops waiting to be accepted (read with the session, for
    /// the header's count).
    #[serde(skip)]
    pub paid_waiting: i64,
    /// For admins: the ledger rules the last check found broken (the red banner).
    #[serde(skip)]
    pub ledger_alert: Option<String>,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// An account with a phone must have proven it before it opens or is given a shop.
    pub fn require_proven_phone(&self) -> Result<(), AppError> {
        if self.phone.is_some() && !self.phone_proven {
            Err(AppError::field(
                "phone",
                "Số điện thoại của tài khoản chưa được xác nhận bằng mã. Hãy vào “Số điện thoại” để nhận mã rồi thử lại.",
            ))
        } else {
            Ok(())
        }
    }

    /// Admin-only actions answer 403 to everyone else.
    pub fn require_admin(&self) -> Result<(), AppError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }
}

/// What a person logs in with: an email address or a Vietnamese phone number.
#[derive(Debug, Clone, PartialEq)]
pub enum Login {
    Email(Email),
    Phone(PhoneVn),
}

impl Login {
    pub fn parse(s: &str) -> Result<Login, String> {
        if s.contains('@') {
            Email::parse(s).map(Login::Email)
        } else {
            PhoneVn::parse(s)
                .map(Login::Phone)
                .map_err(|_| "nhập email hoặc số điện thoại di động".to_string())
        }
    }
    /// The key failed attempts are counted under.
    pub fn limit_key(&self) -> String {
        match self {
            Login::Email(e) => format!("login:{e}"),
            Login::Phone(p) => format!("login:{p}"),
        }
    }
}

pub const MIN_PASSWORD: usize = 8;
pub const MAX_PASSWORD: usize = 128;

pub fn check_password_strength(pw: &str) -> Result<(), String> {
    let n = pw.chars().count();
    if n < MIN_PASSWORD {
        Err(format!("mật khẩu cần ít nhất {MIN_PASSWORD} ký tự"))
    } else if n > MAX_PASSWORD {
        Err(format!("mật khẩu dài quá {MAX_PASSWORD} ký tự"))
    } else {
        Ok(())
    }
}

/// Password hashes running at once in this process: about one per core, a few dozen
/// waiting at most 5 s, everyone else refused with 503 + `Retry-After`. argon2id takes
/// 19 MiB for each hash it runs, so without this bound a login flood grows the blocking
/// pool to hundreds of threads and the process to gigabytes.
pub static HASHING: LazyLock<Slots> =
    LazyLock::new(|| Slots::new(crate::limits::cores(), 64, Duration::from_secs(5)));

/// argon2id with the crate's defaults (OWASP's m=19 MiB, t=2, p=1), run off the async
/// threads and within [`HASHING`].
pub async fn hash_password(pw: String) -> Result<String, AppError> {
    let _turn = HASHING.turn("mã hóa mật khẩu").await?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(pw.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?
    .map_err(AppError::Internal)
}

pub async fn verify_password(pw: String, hash: String) -> Result<bool, AppError> {
    let _turn = HASHING.turn("kiểm tra mật khẩu").await?;
    tokio::task::spawn_blocking(move || {
        let parsed =
            PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
        Ok(Argon2::default()
            .verify_password(pw.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?
    .map_err(AppError::Internal)
}

/// A hash to verify against when the login name is unknown, so that answering
/// "no such user" takes as long as "wrong password".
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2fdKzqlWmI1Tz2ZEd7fJUkUwl7QyzYkUZ9kJT9eE8Gs";

/// Registration input after validation.
pub struct NewUser {
    pub email: Option<Email>,
    pub phone: Option<PhoneVn>,
    pub display_name: String,
    pub password: String,
    pub role: Role,
    /// The phone was proven (by a code, or by the platform's admin creating the account).
    pub phone_proven: bool,
}

impl NewUser {
    /// Validate raw registration fields; every problem is reported at once.
    pub fn parse(
        login: &str,
        display_name: &str,
        password: &str,
        role: Role,
    ) -> Result<NewUser, AppError> {
        let mut errors = FieldErrors::new();
        let login = errors.check("login", Login::parse(login));
        let name = errors.check(
            "display_name",
            crate::domain::text::clean_line(display_name, "tên hiển thị", 80),
        );
        errors.check("password", check_password_strength(password));
        errors.into_result()?;
        let (email, phone) = match login.expect("checked") {
            Login::Email(e) => (Some(e), None),
            Login::Phone(p) => (None, Some(p)),
        };
        Ok(NewUser {
            email,
            phone,
            display_name: name.expect("checked"),
            password: password.to_string(),
            role,
            phone_proven: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2id_round_trip() {
        let h = hash_password("mật khẩu làng".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(
            verify_password("mật khẩu làng".into(), h.clone())
                .await
                .unwrap()
        );
        assert!(!verify_password("mat khau lang".into(), h).await.unwrap());
    }

    #[tokio::test]
    async fn dummy_hash_is_well_formed() {
        assert!(
            !verify_password("x".into(), DUMMY_HASH.into())
                .await
                .unwrap()
        );
    }

    #[test]
    fn registration_reports_every_field() {
        let Err(AppError::Validation(f)) = NewUser::parse("abc", " ", "short", Role::Seller) else {
            panic!("expected validation error");
        };
        assert!(f.get("login").is_some());
        assert!(f.get("display_name").is_some());
        assert!(f.get("password").is_some());
    }
}
