//! Registration that does not tell who has an account, password reset by a one-time code
//! sent through the notice channels, and password change.
//!
//! Whether a login exists is never visible in an answer: registering an existing login
//! answers like a new one (the owner hears of it by notice instead), and asking for a reset
//! code answers the same whether or not a code was sent.

use rand::Rng;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Login, NewUser, User, UserId, check_password_strength};
use crate::config::Config;
use crate::db::Db;
use crate::domain::now_ms;
use crate::error::{AppError, FieldErrors, Result};
use crate::notify::render::{Message, account_notices};

/// How long a reset code is valid, and how many wrong codes it survives.
pub const RESET_MINUTES: i64 = 15;
pub const RESET_TRIES: i64 = 5;
/// Codes asked for per login (and per client address × 4) in an hour.
pub const RESET_REQUESTS_PER_HOUR: i64 = 3;

/// What every registration answers, whether or not the login already had an account.
pub const REGISTERED: &str = "Đã nhận đăng ký. Hãy đăng nhập bằng email/số điện thoại và mật khẩu vừa đặt. \
     Nếu email/số điện thoại này đã có tài khoản, chủ tài khoản sẽ nhận được thông báo.";

/// What every reset request answers.
pub const RESET_SENT: &str = "Nếu tài khoản tồn tại, mã đặt lại mật khẩu đã được gửi qua email hoặc kênh thông báo của cửa hàng. \
     Mã có hiệu lực 15 phút.";

fn code_hash(user: UserId, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{}:{code}", user.0).as_bytes()))
}

/// Register a seller. Answers the same for a new and an existing login (and takes as long:
/// the existing login's path hashes the password too); the existing account's owner is told.
pub async fn register(db: &Db, cfg: &Config, new: NewUser) -> Result<()> {
    let login = match (&new.email, &new.phone) {
        (Some(e), _) => Login::Email(e.clone()),
        (_, Some(p)) => Login::Phone(p.clone()),
        _ => return Err(AppError::field("login", "Nhập email hoặc số điện thoại")),
    };
    let existing = super::store::find_by_login(db, &login).await?;
    let owner = match existing {
        None => match super::store::create_user(db, new).await {
            Ok(_) => return Ok(()),
            // Registered concurrently by someone else: the same answer.
            Err(AppError::Conflict(_)) => super::store::find_by_login(db, &login).await?,
            Err(e) => return Err(e),
        },
        Some(u) => {
            super::hash_password(new.password).await?;
            Some(u)
        }
    };
    let Some(owner) = owner else { return Ok(()) };
    // Tell the owner, at most three times a day.
    let key = format!("register-notice:{}", owner.id.0);
    if crate::limits::take(db, &key, 3, 86_400_000).await? {
        let msg = Message {
            subject: "Có người vừa đăng ký bằng email/số điện thoại của bạn".into(),
            greeting: format!("Chào {},", owner.display_name),
            lines: vec![
                "Ai đó vừa dùng email/số điện thoại của bạn để đăng ký tài khoản mới trên Chợ Làng. \
                 Tài khoản của bạn không thay đổi."
                    .into(),
                "Nếu đó là bạn, hãy đăng nhập; nếu quên mật khẩu, hãy dùng “Quên mật khẩu”.".into(),
            ],
            items: vec![],
            total: String::new(),
            origins: Vec::new(),
            link: Some((
                format!("{}/quen-mat-khau", cfg.public_url),
                "Đặt lại mật khẩu".into(),
            )),
        };
        let mut tx = db.begin().await?;
        let at = now_ms();
        account_notices(
            &mut tx,
            cfg,
            owner.id.0,
            &format!("register-attempt:{}:{at}", owner.id.0),
            "account",
            &msg,
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Send a reset code to the account behind `login`, if there is one. The caller answers
/// [`RESET_SENT`] either way; only the request limits can refuse (429).
pub async fn request_reset(db: &Db, cfg: &Config, login: &str, client: &str) -> Result<()> {
    let login = Login::parse(login).map_err(|m| AppError::field("login", m))?;
    let hour = 3_600_000;
    let per_login = crate::limits::take(
        db,
        &format!("reset:{}", login.limit_key()),
        RESET_REQUESTS_PER_HOUR,
        hour,
    )
    .await?;
    let per_client = crate::limits::take(
        db,
        &format!("reset-ip:{client}"),
        RESET_REQUESTS_PER_HOUR * 4,
        hour,
    )
    .await?;
    if !per_login || !per_client {
        return Err(AppError::TooManyAttempts(60));
    }
    let Some(user) = super::store::find_by_login(db, &login).await? else {
        return Ok(());
    };
    let code = format!("{:08}", rand::thread_rng().gen_range(0..100_000_000u32));
    let now = now_ms();
    let mut tx = db.begin().await?;
    // A new code replaces the older ones.
    sqlx::query("UPDATE password_resets SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
        .bind(now)
        .bind(user.id.0)
        .execute(&mut *tx)
        .await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO password_resets (user_id, code_hash, attempts, expires_at, created_at)
         VALUES ($1, $2, 0, $3, $4) RETURNING id",
    )
    .bind(user.id.0)
    .bind(code_hash(user.id, &code))
    .bind(now + RESET_MINUTES * 60_000)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let msg = Message {
        subject: format!("Mã đặt lại mật khẩu Chợ Làng: {code}"),
        greeting: format!("Chào {},", user.display_name),
        lines: vec![
            format!("Mã đặt lại mật khẩu của bạn là {code}, có hiệu lực {RESET_MINUTES} phút."),
            "Không đưa mã này cho ai. Nếu bạn không yêu cầu, hãy bỏ qua tin này.".into(),
        ],
        items: vec![],
        total: String::new(),
        origins: Vec::new(),
        link: Some((
            format!("{}/dat-lai-mat-khau", cfg.public_url),
            "Đặt mật khẩu mới".into(),
        )),
    };
    account_notices(
        &mut tx,
        cfg,
        user.id.0,
        &format!("password-reset:{id}"),
        "password_reset",
        &msg,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Set a new password with a reset code. Every session of the account ends.
/// A new password typed twice on a form must be the same both times (`again` is `None` where
/// the form has no second box, as over the API).
pub fn typed_twice(password: &str, again: Option<&str>, field: &str) -> Result<()> {
    match again {
        Some(a) if a != password => Err(AppError::field(
            field,
            "Hai lần nhập mật khẩu mới không giống nhau",
        )),
        _ => Ok(()),
    }
}

/// A code as people type it from a message: "1234 5678", "1234-5678" → "12345678".
pub fn typed_code(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

pub async fn finish_reset(db: &Db, login: &str, code: &str, new_password: &str) -> Result<User> {
    let mut e = FieldErrors::new();
    let login = e.check("login", Login::parse(login));
    e.check("password", check_password_strength(new_password));
    e.into_result()?;
    let wrong = || AppError::field("code", "Mã không đúng hoặc đã hết hạn");
    let user = super::store::find_by_login(db, &login.expect("checked"))
        .await?
        .ok_or_else(wrong)?;
    // Count the try first, atomically, so a code survives only RESET_TRIES guesses.
    let row = sqlx::query(
        "UPDATE password_resets SET attempts = attempts + 1
         WHERE id = (SELECT MAX(id) FROM password_resets WHERE user_id = $1)
           AND used_at IS NULL AND expires_at > $2
         RETURNING id, code_hash, attempts",
    )
    .bind(user.id.0)
    .bind(now_ms())
    .fetch_optional(&db.pool)
    .await?
    .ok_or_else(wrong)?;
    let attempts: i64 = row.try_get("attempts")?;
    let stored: String = row.try_get("code_hash")?;
    let given = code_hash(user.id, &typed_code(code));
    let same: bool = subtle::ConstantTimeEq::ct_eq(stored.as_bytes(), given.as_bytes()).into();
    if attempts > RESET_TRIES || !same {
        return Err(wrong());
    }
    super::store::set_password(db, user.id, new_password.to_string(), None).await?;
    Ok(user)
}

/// Change the password of a logged-in user who knows the current one; every other session
/// of the account ends (the asking one, `keep_session`, stays).
pub async fn change_password(
    db: &Db,
    user: &User,
    current: &str,
    new_password: &str,
    keep_session: Option<&str>,
) -> Result<()> {
    check_password_strength(new_password).map_err(|m| AppError::field("new_password", m))?;
    let key = format!("password-change:{}", user.id.0);
    if !crate::limits::take(db, &key, 5, 15 * 60_000).await? {
        return Err(AppError::TooManyAttempts(15));
    }
    let hash = super::store::password_hash_of(db, user.id).await?;
    if !super::verify_password(current.to_string(), hash).await? {
        return Err(AppError::field(
            "current_password",
            "Mật khẩu hiện tại không đúng",
        ));
    }
    super::store::set_password(db, user.id, new_password.to_string(), keep_session).await?;
    crate::limits::clear(db, &key).await
}
