//! SQL for users, sessions and failed-login counting.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Login, NewUser, Role, User, UserId};
use crate::db::Db;
use crate::domain::now_ms;
use crate::error::{AppError, Result};

fn user_from_row(r: &AnyRow) -> Result<User> {
    Ok(User {
        id: UserId(r.try_get("id")?),
        email: r.try_get("email")?,
        phone: r.try_get("phone")?,
        display_name: r.try_get("display_name")?,
        role: Role::parse(&r.try_get::<String, _>("role")?).map_err(|e| anyhow::anyhow!(e))?,
        phone_proven: r.try_get::<Option<i64>, _>("phone_verified_at")?.is_some(),
        helps: Vec::new(),
        paid_waiting: 0,
        ledger_alert: None,
    })
}

pub async fn create_user(db: &Db, new: NewUser) -> Result<User> {
    let hash = super::hash_password(new.password).await?;
    insert_user(
        db,
        new.email.as_ref().map(|e| e.as_str()),
        new.phone.as_ref().map(|p| p.as_str()),
        &new.display_name,
        &hash,
        new.role,
        new.phone_proven,
    )
    .await
}

/// A new account from an already hashed password; `phone_proven` when a code (or the
/// platform's admin) proved the phone.
pub async fn insert_user(
    db: &Db,
    email: Option<&str>,
    phone: Option<&str>,
    display_name: &str,
    password_hash: &str,
    role: Role,
    phone_proven: bool,
) -> Result<User> {
    let now = now_ms();
    let row = sqlx::query(
        "INSERT INTO users (email, phone, display_name, password_hash, role, created_at, phone_verified_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING id, email, phone, display_name, role, phone_verified_at",
    )
    .bind(email.map(str::to_string))
    .bind(phone.map(str::to_string))
    .bind(display_name.to_string())
    .bind(password_hash.to_string())
    .bind(role.as_str())
    .bind(now)
    .bind((phone_proven && phone.is_some()).then_some(now))
    .fetch_one(&db.pool)
    .await?;
    user_from_row(&row)
}

/// The user and their password hash, for a login attempt.
pub async fn find_for_login(db: &Db, login: &Login) -> Result<Option<(User, String)>> {
    let (sql, value) = match login {
        Login::Email(e) => (
            "SELECT id, email, phone, display_name, role, phone_verified_at, password_hash FROM users WHERE email = $1",
            e.as_str(),
        ),
        Login::Phone(p) => (
            "SELECT id, email, phone, display_name, role, phone_verified_at, password_hash FROM users WHERE phone = $1",
            p.as_str(),
        ),
    };
    let row = sqlx::query(sql)
        .bind(value.to_string())
        .fetch_optional(&db.pool)
        .await?;
    match row {
        None => Ok(None),
        Some(r) => Ok(Some((user_from_row(&r)?, r.try_get("password_hash")?))),
    }
}

pub async fn find_by_login(db: &Db, login: &Login) -> Result<Option<User>> {
    Ok(find_for_login(db, login).await?.map(|(u, _)| u))
}

/// Shops a helper may work on: granted by the household's code, not revoked by its owner,
/// and the helper still on the shop's village's digital team.
pub async fn helped_shops(db: &Db, user: UserId) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT h.shop_id FROM shop_helpers h
         JOIN shops s ON s.id = h.shop_id
         JOIN village_helpers v ON v.village_id = s.village_id AND v.user_id = h.user_id
         WHERE h.user_id = $1 AND h.revoked_at IS NULL ORDER BY h.shop_id",
    )
    .bind(user.0)
    .fetch_all(&db.pool)
    .await?)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh random token; the caller hands it to the client, only its hash is stored.
pub async fn create_session(db: &Db, user: UserId, days: i64) -> Result<String> {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let now = now_ms();
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash(&token))
    .bind(user.0)
    .bind(now)
    .bind(now + days * 86_400_000)
    .execute(&db.pool)
    .await?;
    Ok(token)
}

pub async fn user_by_session(db: &Db, token: &str) -> Result<Option<User>> {
    if token.len() > 200 {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT u.id, u.email, u.phone, u.display_name, u.role, u.phone_verified_at,
           (SELECT COUNT(*) FROM orders o JOIN shops sh ON sh.id = o.shop_id
            WHERE sh.owner_id = u.id AND o.status = 'paid') AS paid_waiting,
           CASE WHEN u.role = 'admin' THEN (SELECT violations FROM ledger_health WHERE id = 1) END
             AS ledger_alert
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = $1 AND s.expires_at > $2",
    )
    .bind(token_hash(token))
    .bind(now_ms())
    .fetch_optional(&db.pool)
    .await?;
    match row {
        None => Ok(None),
        Some(r) => {
            let mut u = user_from_row(&r)?;
            u.paid_waiting = r.try_get("paid_waiting")?;
            u.ledger_alert = r
                .try_get::<Option<String>, _>("ledger_alert")?
                .filter(|v| !v.is_empty());
            u.helps = helped_shops(db, u.id).await?;
            Ok(Some(u))
        }
    }
}

pub async fn delete_session(db: &Db, token: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(token_hash(token))
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// End every session of a user, or every one but `keep` (the token of the asking session).
pub async fn delete_sessions_of(db: &Db, user: UserId, keep: Option<&str>) -> Result<u64> {
    let keep = keep.map(token_hash).unwrap_or_default();
    Ok(
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2")
            .bind(user.0)
            .bind(keep)
            .execute(&db.pool)
            .await?
            .rows_affected(),
    )
}

/// The stored password hash of a user.
/// A signed-in person types their password again before a sensitive change (payout
/// account, shop email): 5 tries per 15 minutes, reserved before hashing.
pub async fn confirm_password(db: &Db, user: UserId, password: &str) -> Result<()> {
    let key = format!("confirm-password:{}", user.0);
    if !crate::limits::take(db, &key, 5, 15 * 60_000).await? {
        return Err(AppError::TooManyAttempts(15));
    }
    let hash = password_hash_of(db, user).await?;
    if !super::verify_password(password.to_string(), hash).await? {
        return Err(AppError::field("password", "Mật khẩu không đúng"));
    }
    crate::limits::clear(db, &key).await?;
    Ok(())
}

pub async fn password_hash_of(db: &Db, user: UserId) -> Result<String> {
    Ok(
        sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
            .bind(user.0)
            .fetch_one(&db.pool)
            .await?,
    )
}

/// Set a new password (already checked for strength) and end the user's other sessions in
/// the same transaction.
pub async fn set_password(
    db: &Db,
    user: UserId,
    password: String,
    keep_session: Option<&str>,
) -> Result<()> {
    let hash = super::hash_password(password).await?;
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(user.0)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2")
        .bind(user.0)
        .bind(keep_session.map(token_hash).unwrap_or_default())
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE password_resets SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
        .bind(now_ms())
        .bind(user.0)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Remove expired sessions, counters whose window ended and old reset codes.
pub async fn sweep(db: &Db, counters_before_ms: i64) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now_ms())
        .execute(&db.pool)
        .await?;
    crate::limits::sweep(db, counters_before_ms).await?;
    sqlx::query("DELETE FROM password_resets WHERE expires_at <= $1")
        .bind(now_ms() - 86_400_000)
        .execute(&db.pool)
        .await?;
    // A registration waiting for its code keeps a password hash: gone a day later.
    sqlx::query("DELETE FROM phone_codes WHERE expires_at <= $1")
        .bind(now_ms() - 86_400_000)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn set_role(db: &Db, user: UserId, role: Role) -> Result<()> {
    sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
        .bind(role.as_str())
        .bind(user.0)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn add_moderator(db: &Db, village_id: i64, user: UserId) -> Result<()> {
    sqlx::query(
        "INSERT INTO village_moderators (village_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(village_id)
    .bind(user.0)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Whether the user may moderate the given village's price board.
pub async fn can_moderate(db: &Db, user: &User, village_id: i64) -> Result<bool> {
    if user.is_admin() {
        return Ok(true);
    }
    if user.role != Role::Moderator {
        return Ok(false);
    }
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM village_moderators WHERE village_id = $1 AND user_id = $2",
    )
    .bind(village_id)
    .bind(user.id.0)
    .fetch_one(&db.pool)
    .await?;
    Ok(n > 0)
}

/// The keys one guarded attempt (a login, an order look-up) is counted under: the subject
/// (account, order) *and* the address together — the lockout: `max` failures lock that
/// subject from that address only, so nobody can lock the admin out from everywhere — and
/// the address alone, per scope — the throttle: `4 × max`.
pub struct AttemptKeys {
    pub lockout: String,
    pub throttle: String,
}

impl AttemptKeys {
    pub fn new(scope: &str, subject: &str, client: &str) -> AttemptKeys {
        AttemptKeys {
            lockout: format!("lock:{subject}|{client}"),
            throttle: format!("ip:{scope}:{client}"),
        }
    }

    /// Reserve this attempt before any expensive check; refused beyond the limits (the
    /// caller then answers 429 without hashing anything). The lockout is reserved first, and
    /// an attempt it refuses does not count against the address.
    pub async fn reserve(&self, db: &Db, max: i64, window_minutes: i64) -> Result<()> {
        let window = window_minutes * 60_000;
        if !crate::limits::take(db, &self.lockout, max, window).await? {
            return Err(AppError::TooManyAttempts(window_minutes));
        }
        if !crate::limits::take(db, &self.throttle, max * 4, window).await? {
            crate::limits::give_back(db, &self.lockout).await?;
            return Err(AppError::TooManyAttempts(window_minutes));
        }
        Ok(())
    }

    /// The attempt succeeded: it was no failure.
    pub async fn succeeded(&self, db: &Db) -> Result<()> {
        crate::limits::clear(db, &self.lockout).await?;
        crate::limits::give_back(db, &self.throttle).await
    }
}

/// An audit log row in the caller's transaction (admin money actions, payout account changes).
pub async fn audit_action(
    tx: &mut crate::db::Tx,
    admin: &super::User,
    action: &str,
    subject: &str,
    detail: &str,
) -> Result<()> {
    sqlx::query("INSERT INTO audit_log (actor_user_id, action, subject, detail, at) VALUES ($1, $2, $3, $4, $5)")
        .bind(admin.id.0)
        .bind(action.to_string())
        .bind(subject.to_string())
        .bind(detail.to_string())
        .bind(crate::domain::now_ms())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
