//! Registration that does not tell who has an account, password reset by a one-time code
//! sent through the notice channels, and password change.
//!
//! Whether a login exists is never visible in an answer: registering an existing login
//! answers like a new one (the owner hears of it by notice instead), and asking for a reset
//! code answers the same whether or not a code was sent.

use rand::Rng;
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

fn code_hash(cfg: &Config, user: UserId, code: &str) -> String {
    super::phone::code_mac(cfg, &format!("reset:{}", user.0), code)
}

/// A reset code issued in person by a moderator or the admin lives this long.
pub const IN_PERSON_MINUTES: i64 = 30;

/// What a registration did: an email login can log in at once; a phone login waits for the
/// code sent to the phone (the same answer whether or not the phone already had an account).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    Done,
    CodeSent,
}

/// What every phone registration answers.
pub const CODE_SENT: &str = "Chợ Làng đã gửi mã 6 số qua Zalo (hoặc tin nhắn SMS) tới số điện thoại này. \
     Nhập mã để hoàn tất đăng ký. Mã có hiệu lực 10 phút.";

/// Register a seller. Answers the same for a new and an existing login (and takes as long:
/// the existing login's path hashes the password too); the existing account's owner is told.
/// A phone login is not created until the code sent to the phone is typed
/// ([`verify_phone`]): nobody can take a seller's public number before the seller does.
/// Registrations per client address: 10 an hour (each one costs a password hash), counted
/// before anything else (the page and the API alike).
pub const REGISTRATIONS_PER_HOUR: i64 = 10;

pub async fn register(db: &Db, cfg: &Config, new: NewUser, client: &str) -> Result<Registered> {
    let key = format!("register-ip:{client}");
    if !crate::limits::take(db, &key, REGISTRATIONS_PER_HOUR, 3_600_000).await? {
        return Err(AppError::TooManyAttempts(60));
    }
    let login = match (&new.email, &new.phone) {
        (Some(e), _) => Login::Email(e.clone()),
        (_, Some(p)) => Login::Phone(p.clone()),
        _ => return Err(AppError::field("login", "Nhập email hoặc số điện thoại")),
    };
    let existing = super::store::find_by_login(db, &login).await?;
    if let Login::Phone(phone) = &login {
        super::phone::reserve_send(db, phone, super::phone::Asker::Address(client)).await?;
        let hash = super::hash_password(new.password).await?;
        match existing {
            Some(owner) if owner.phone_proven => {
                tell_owner(db, cfg, &owner).await?;
            }
            // A new number, or one registered before phones were proven: whoever types the
            // code holds the phone and gets the account.
            _ => {
                let pending = super::phone::Pending {
                    display_name: Some(new.display_name),
                    password_hash: Some(hash),
                    ..Default::default()
                };
                super::phone::send(db, cfg, phone, super::phone::Purpose::Register, pending)
                    .await?;
            }
        }
        return Ok(Registered::CodeSent);
    }
    let owner = match existing {
        None => match super::store::create_user(db, new).await {
            Ok(_) => return Ok(Registered::Done),
            // Registered concurrently by someone else: the same answer.
            Err(AppError::Conflict(_)) => super::store::find_by_login(db, &login).await?,
            Err(e) => return Err(e),
        },
        Some(u) => {
            super::hash_password(new.password).await?;
            Some(u)
        }
    };
    if let Some(owner) = owner {
        tell_owner(db, cfg, &owner).await?;
    }
    Ok(Registered::Done)
}

/// Someone registered with an existing account's login: its owner is told, at most three
/// times a day.
async fn tell_owner(db: &Db, cfg: &Config, owner: &User) -> Result<()> {
    let key = format!("register-notice:{}", owner.id.0);
    if !crate::limits::take(db, &key, 3, 86_400_000).await? {
        return Ok(());
    }
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
        false,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Prove a phone registration with its code: the account is created (or, for a number
/// registered before phones were proven, taken over by the one holding the phone) and
/// returned, ready to log in.
pub async fn verify_phone(db: &Db, cfg: &Config, login: &str, code: &str) -> Result<User> {
    let phone = crate::domain::PhoneVn::parse(login)
        .map_err(|_| AppError::field("login", "Nhập số điện thoại di động đã đăng ký"))?;
    let pending = super::phone::check(
        db,
        cfg,
        super::phone::Which::Phone(&phone, super::phone::Purpose::Register),
        code,
    )
    .await?;
    let (Some(name), Some(hash)) = (pending.display_name, pending.password_hash) else {
        return Err(AppError::field("code", "Mã không đúng hoặc đã hết hạn"));
    };
    let login = Login::Phone(phone.clone());
    let user = match super::store::find_by_login(db, &login).await? {
        Some(u) if u.phone_proven => {
            return Err(AppError::Conflict(
                "Số điện thoại này đã có tài khoản. Hãy đăng nhập, hoặc dùng “Quên mật khẩu”."
                    .into(),
            ));
        }
        Some(u) => {
            // The phone's holder takes the unproven account: its old sessions end.
            let now = now_ms();
            let mut tx = db.begin().await?;
            let n = sqlx::query(
                "UPDATE users SET display_name = $1, password_hash = $2, phone_verified_at = $3
                 WHERE id = $4 AND phone_verified_at IS NULL",
            )
            .bind(name)
            .bind(hash)
            .bind(now)
            .bind(u.id.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                return Err(AppError::Conflict(
                    "Số điện thoại này vừa được xác nhận.".into(),
                ));
            }
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(u.id.0)
                .execute(&mut *tx)
                .await?;
            audit(
                &mut tx,
                u.id,
                None,
                AuditAction::PhoneProven,
                "đăng ký lại bằng mã",
            )
            .await?;
            tx.commit().await?;
            super::store::find_by_login(db, &login)
                .await?
                .ok_or(AppError::NotFound)?
        }
        None => super::store::insert_user(
            db,
            None,
            Some(phone.as_str()),
            &name,
            &hash,
            super::Role::Seller,
            true,
        )
        .await
        .map_err(|e| match e {
            AppError::Conflict(_) => AppError::Conflict(
                "Số điện thoại này đã có tài khoản. Hãy đăng nhập, hoặc dùng “Quên mật khẩu”."
                    .into(),
            ),
            other => other,
        })?,
    };
    Ok(user)
}

/// Send a fresh code for a phone registration still waiting (the name and password typed
/// before are kept); nothing happens for a phone without one, and the answer is the same.
pub async fn resend_register(db: &Db, cfg: &Config, login: &str, client: &str) -> Result<()> {
    let phone = crate::domain::PhoneVn::parse(login)
        .map_err(|_| AppError::field("login", "Nhập số điện thoại di động đã đăng ký"))?;
    super::phone::reserve_send(db, &phone, super::phone::Asker::Address(client)).await?;
    let row = sqlx::query(
        "SELECT display_name, password_hash FROM phone_codes
         WHERE phone = $1 AND purpose = 'register' AND created_at > $2 AND password_hash IS NOT NULL
         ORDER BY id DESC LIMIT 1",
    )
    .bind(phone.as_str().to_string())
    .bind(now_ms() - 3_600_000)
    .fetch_optional(&db.pool)
    .await?;
    let Some(row) = row else { return Ok(()) };
    let pending = super::phone::Pending {
        display_name: row.try_get("display_name")?,
        password_hash: row.try_get("password_hash")?,
        ..Default::default()
    };
    super::phone::send(db, cfg, &phone, super::phone::Purpose::Register, pending).await?;
    Ok(())
}

/// Send a code to prove a phone for a logged-in account (a new phone, or the login phone
/// of an account made before phones were proven).
pub async fn add_phone(db: &Db, cfg: &Config, user: &User, phone: &str) -> Result<()> {
    let phone = crate::domain::PhoneVn::parse(phone).map_err(|m| AppError::field("phone", m))?;
    if user.phone.as_deref() == Some(phone.as_str()) && user.phone_proven {
        return Err(AppError::field("phone", "Số này đã được xác nhận rồi"));
    }
    if let Some(p) = &user.phone
        && p != phone.as_str()
    {
        return Err(AppError::field(
            "phone",
            "Tài khoản đăng nhập bằng số điện thoại khác; hãy xác nhận đúng số đó",
        ));
    }
    super::phone::reserve_send(db, &phone, super::phone::Asker::Account(user.id.0)).await?;
    super::phone::send(
        db,
        cfg,
        &phone,
        super::phone::Purpose::AddPhone,
        super::phone::Pending {
            user_id: Some(user.id.0),
            ..Default::default()
        },
    )
    .await?;
    Ok(())
}

/// Type the code sent by [`add_phone`]: the phone becomes the account's, proven.
pub async fn confirm_phone(
    db: &Db,
    cfg: &Config,
    user: &User,
    phone: &str,
    code: &str,
) -> Result<()> {
    let phone = crate::domain::PhoneVn::parse(phone).map_err(|m| AppError::field("phone", m))?;
    let pending = super::phone::check(
        db,
        cfg,
        super::phone::Which::Phone(&phone, super::phone::Purpose::AddPhone),
        code,
    )
    .await?;
    if pending.user_id != Some(user.id.0) {
        return Err(AppError::field("code", "Mã không đúng hoặc đã hết hạn"));
    }
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE users SET phone = $1, phone_verified_at = $2 WHERE id = $3")
        .bind(phone.as_str().to_string())
        .bind(now_ms())
        .bind(user.id.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| match AppError::from(e) {
            AppError::Conflict(_) => AppError::field(
                "phone",
                "Số này đã là tên đăng nhập của một tài khoản khác. Nếu đó là bạn, hãy đăng nhập bằng số này (hoặc dùng “Quên mật khẩu”).",
            ),
            other => other,
        })?;
    audit(
        &mut tx,
        user.id,
        None,
        AuditAction::PhoneProven,
        "xác nhận số điện thoại bằng mã",
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// What an account's audit line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    PhoneProven,
    ResetCodeIssued,
    HelperNamed,
    HelperRemoved,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::PhoneProven => "phone_proven",
            AuditAction::ResetCodeIssued => "reset_code_issued",
            AuditAction::HelperNamed => "helper_named",
            AuditAction::HelperRemoved => "helper_removed",
        }
    }
}

/// One line of the account's audit trail.
pub async fn audit(
    tx: &mut crate::db::Tx,
    user: UserId,
    actor: Option<UserId>,
    action: AuditAction,
    detail: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO account_audit (user_id, actor_id, action, detail, at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(user.0)
    .bind(actor.map(|a| a.0))
    .bind(action.as_str())
    .bind(detail.to_string())
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Send a reset code to the account behind `login`, if there is one. The caller answers
/// [`RESET_SENT`] either way; only the request limits can refuse (429). A phone login gets
/// a 6-digit code on the phone (Zalo, else SMS); an email login an 8-digit code by mail.
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
    if let Login::Phone(phone) = &login {
        super::phone::reserve_send(db, phone, super::phone::Asker::Address(client)).await?;
    }
    let Some(user) = super::store::find_by_login(db, &login).await? else {
        return Ok(());
    };
    if let Login::Phone(phone) = &login {
        let code = super::phone::new_code();
        let request_id = format!("cl{}", uuid::Uuid::new_v4().simple());
        let via = crate::notify::phone::send_code(
            db,
            cfg,
            phone,
            &code,
            super::phone::CODE_MINUTES,
            &request_id,
        )
        .await?;
        let mut tx = db.begin().await?;
        store_reset(
            &mut tx,
            cfg,
            user.id,
            &code,
            super::phone::CODE_MINUTES,
            None,
            via.as_str(),
        )
        .await?;
        tx.commit().await?;
        return Ok(());
    }
    let code = format!("{:08}", rand::thread_rng().gen_range(0..100_000_000u32));
    let mut tx = db.begin().await?;
    let id = store_reset(&mut tx, cfg, user.id, &code, RESET_MINUTES, None, "email").await?;
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
        false,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Keep a new reset code (its HMAC); it replaces the account's older ones.
async fn store_reset(
    tx: &mut crate::db::Tx,
    cfg: &Config,
    user: UserId,
    code: &str,
    minutes: i64,
    issued_by: Option<UserId>,
    via: &str,
) -> Result<i64> {
    let now = now_ms();
    sqlx::query("UPDATE password_resets SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
        .bind(now)
        .bind(user.0)
        .execute(&mut **tx)
        .await?;
    Ok(sqlx::query_scalar(
        "INSERT INTO password_resets (user_id, code_hash, attempts, expires_at, created_at, issued_by, sent_via)
         VALUES ($1, $2, 0, $3, $4, $5, $6) RETURNING id",
    )
    .bind(user.0)
    .bind(code_hash(cfg, user, code))
    .bind(now + minutes * 60_000)
    .bind(now)
    .bind(issued_by.map(|u| u.0))
    .bind(via.to_string())
    .fetch_one(&mut **tx)
    .await?)
}

/// A reset code given in person.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct InPersonCode {
    /// 8 digits, shown once to the moderator who reads it to the seller.
    pub code: String,
    /// UTC, RFC 3339.
    pub expires_at: String,
    /// Whose account: the seller's name.
    #[serde(skip)]
    pub display_name: String,
    #[serde(skip)]
    pub expires_ms: i64,
}

/// Codes one moderator may issue in an hour.
pub const IN_PERSON_PER_HOUR: i64 = 10;

/// A village moderator (for a seller with a shop in their village) or the admin issues a
/// one-time reset code in person, for someone with neither email nor a phone that gets
/// messages. Valid 30 minutes, audited; the seller is told on every channel they have.
pub async fn issue_in_person(
    db: &Db,
    cfg: &Config,
    actor: &User,
    login: &str,
) -> Result<InPersonCode> {
    let login = Login::parse(login).map_err(|m| AppError::field("login", m))?;
    let user = super::store::find_by_login(db, &login)
        .await?
        .ok_or(AppError::NotFound)?;
    if user.id == actor.id {
        return Err(AppError::Forbidden);
    }
    let allowed = if actor.is_admin() {
        user.role != super::Role::Admin
    } else {
        let villages: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT village_id FROM shops WHERE owner_id = $1 ORDER BY village_id",
        )
        .bind(user.id.0)
        .fetch_all(&db.pool)
        .await?;
        let mut ok = false;
        for v in villages {
            if super::store::can_moderate(db, actor, v).await? {
                ok = true;
            }
        }
        ok && user.role == super::Role::Seller
    };
    if !allowed {
        return Err(AppError::Forbidden);
    }
    if !crate::limits::take(
        db,
        &format!("in-person-reset:{}", actor.id.0),
        IN_PERSON_PER_HOUR,
        3_600_000,
    )
    .await?
    {
        return Err(AppError::TooManyAttempts(60));
    }
    let code = format!("{:08}", rand::thread_rng().gen_range(0..100_000_000u32));
    let mut tx = db.begin().await?;
    let issued_at = now_ms();
    let id = store_reset(
        &mut tx,
        cfg,
        user.id,
        &code,
        IN_PERSON_MINUTES,
        Some(actor.id),
        "in_person",
    )
    .await?;
    audit(
        &mut tx,
        user.id,
        Some(actor.id),
        AuditAction::ResetCodeIssued,
        &format!("{} cấp mã đặt lại mật khẩu tại chỗ", actor.display_name),
    )
    .await?;
    let msg = Message {
        subject: "Mã đặt lại mật khẩu vừa được cấp cho tài khoản của bạn".into(),
        greeting: format!("Chào {},", user.display_name),
        lines: vec![
            format!(
                "{} vừa cấp một mã đặt lại mật khẩu cho tài khoản Chợ Làng của bạn, dùng được trong {IN_PERSON_MINUTES} phút.",
                actor.display_name
            ),
            "Nếu bạn không nhờ, hãy báo ngay cho trưởng thôn hoặc ban quản lý Chợ Làng.".into(),
        ],
        items: vec![],
        total: String::new(),
        origins: Vec::new(),
        link: None,
    };
    account_notices(
        &mut tx,
        cfg,
        user.id.0,
        &format!("in-person-reset:{id}"),
        "account",
        &msg,
        true,
    )
    .await?;
    tx.commit().await?;
    // The stored expiry is at least this late (it was written a moment after `issued_at`).
    let expires_ms = issued_at + IN_PERSON_MINUTES * 60_000;
    Ok(InPersonCode {
        code: format!("{} {}", &code[..4], &code[4..]),
        expires_at: chrono::DateTime::from_timestamp_millis(expires_ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
        display_name: user.display_name,
        expires_ms,
    })
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

pub async fn finish_reset(
    db: &Db,
    cfg: &Config,
    login: &str,
    code: &str,
    new_password: &str,
) -> Result<User> {
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
    let given = code_hash(cfg, user.id, &typed_code(code));
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
