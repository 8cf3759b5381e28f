//! Delivery per channel. Each send says: delivered (with the provider's id), retry (maybe
//! after the provider's own retry-after), or permanent failure (no point retrying).

use std::time::Duration;

use lettre::message::MultiPart;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{Value, json};
use sqlx::Row;

use crate::config::{NotifyConfig, TelegramConfig, ZaloConfig};
use crate::db::Db;
use crate::domain::now_ms;

#[derive(Debug, Clone, PartialEq)]
pub enum SendError {
    Retry {
        error: String,
        after: Option<Duration>,
    },
    Permanent(String),
    /// Telegram moved a group to a new chat id: resend there at once.
    Moved(String),
}

fn retry(e: impl std::fmt::Display) -> SendError {
    SendError::Retry {
        error: e.to_string(),
        after: None,
    }
}

pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File(AsyncFileTransport<Tokio1Executor>),
}

impl Mailer {
    pub fn new(cfg: &NotifyConfig, mail_dir: &std::path::Path) -> anyhow::Result<Mailer> {
        Ok(match &cfg.smtp_url {
            Some(url) => Mailer::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
                    .timeout(Some(Duration::from_secs(15)))
                    .build(),
            ),
            None => {
                std::fs::create_dir_all(mail_dir)?;
                Mailer::File(AsyncFileTransport::<Tokio1Executor>::new(mail_dir))
            }
        })
    }

    pub async fn send(
        &self,
        from: &str,
        to: &str,
        key: &str,
        payload: &Value,
    ) -> Result<Option<String>, SendError> {
        let host = from
            .rsplit('@')
            .next()
            .unwrap_or("cholang.local")
            .trim_end_matches('>');
        let msg = Message::builder()
            .from(
                from.parse()
                    .map_err(|e| SendError::Permanent(format!("MAIL_FROM: {e}")))?,
            )
            .to(to
                .parse()
                .map_err(|e| SendError::Permanent(format!("recipient: {e}")))?)
            .subject(payload["subject"].as_str().unwrap_or("Chợ Làng"))
            // The idempotency key as Message-ID lets mail systems drop a crash-duplicate.
            .message_id(Some(format!("<{}@{host}>", key.replace([':', ' '], "."))))
            .multipart(MultiPart::alternative_plain_html(
                payload["text"].as_str().unwrap_or("").to_string(),
                payload["html"].as_str().unwrap_or("").to_string(),
            ))
            .map_err(|e| SendError::Permanent(format!("building email: {e}")))?;
        match self {
            Mailer::Smtp(t) => match t.send(msg).await {
                Ok(r) => Ok(Some(r.code().to_string())),
                Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
                Err(e) => Err(retry(e)),
            },
            Mailer::File(t) => t.send(msg).await.map(Some).map_err(retry),
        }
    }
}

/// Telegram `sendMessage` in HTML mode; honours `retry_after` on 429.
pub async fn telegram(
    http: &reqwest::Client,
    cfg: &TelegramConfig,
    chat: &str,
    payload: &Value,
) -> Result<Option<String>, SendError> {
    let chat_id: Value = chat
        .parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(chat));
    let body = json!({
        "chat_id": chat_id,
        "text": payload["text"],
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": true},
    });
    let resp = http
        .post(format!("{}/bot{}/sendMessage", cfg.api_url, cfg.bot_token))
        .json(&body)
        .send()
        .await
        .map_err(retry)?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if v["ok"] == true {
        return Ok(v["result"]["message_id"].as_i64().map(|m| m.to_string()));
    }
    let desc = v["description"].as_str().unwrap_or("").to_string();
    if let Some(new) = v["parameters"]["migrate_to_chat_id"].as_i64() {
        return Err(SendError::Moved(new.to_string()));
    }
    if status.as_u16() == 429 {
        let after = v["parameters"]["retry_after"].as_u64().unwrap_or(5);
        return Err(SendError::Retry {
            error: format!("429 {desc}"),
            after: Some(Duration::from_secs(after)),
        });
    }
    if status.is_server_error() || status.as_u16() == 408 {
        return Err(retry(format!("HTTP {status} {desc}")));
    }
    Err(SendError::Permanent(format!("HTTP {status} {desc}")))
}

/// Zalo error codes after which a fresh access token is worth one more try.
pub const ZALO_TOKEN_ERRORS: &[i64] = &[-124, -216];

/// The current Zalo access token: the stored one, or the configured one on first use.
pub async fn zalo_token(db: &Db, cfg: &ZaloConfig) -> anyhow::Result<String> {
    let row = sqlx::query("SELECT access_token FROM zalo_tokens WHERE id = 1")
        .fetch_optional(&db.pool)
        .await?;
    match row {
        Some(r) => Ok(r.try_get("access_token")?),
        None => {
            sqlx::query(
                "INSERT INTO zalo_tokens (id, access_token, refresh_token, expires_at, updated_at) VALUES (1, $1, $2, 0, $3)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(cfg.access_token.clone())
            .bind(cfg.refresh_token.clone())
            .bind(now_ms())
            .execute(&db.pool)
            .await?;
            Ok(
                sqlx::query_scalar("SELECT access_token FROM zalo_tokens WHERE id = 1")
                    .fetch_one(&db.pool)
                    .await?,
            )
        }
    }
}

/// Refresh the Zalo token, one refresh at a time: under the token row's lock, and only if
/// the token that failed is still the stored one (else another worker already refreshed).
/// The new pair is stored in the same transaction before anyone uses it.
pub async fn zalo_refresh(
    db: &Db,
    http: &reqwest::Client,
    cfg: &ZaloConfig,
    failed_token: &str,
) -> anyhow::Result<String> {
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE zalo_tokens SET updated_at = $1 WHERE id = 1")
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    let r = sqlx::query("SELECT access_token, refresh_token FROM zalo_tokens WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    let (current, refresh): (String, String) = (r.try_get(0)?, r.try_get(1)?);
    if current != failed_token {
        tx.commit().await?;
        return Ok(current);
    }
    let resp = http
        .post(format!("{}/v4/oa/access_token", cfg.oauth_url))
        .header("secret_key", &cfg.secret_key)
        .form(&[
            ("app_id", cfg.app_id.as_str()),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ])
        .send()
        .await?;
    let v: Value = resp.json().await?;
    let (Some(access), Some(new_refresh)) =
        (v["access_token"].as_str(), v["refresh_token"].as_str())
    else {
        anyhow::bail!("Zalo token refresh refused: {v}");
    };
    let expires_in = v["expires_in"]
        .as_i64()
        .or_else(|| v["expires_in"].as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(3600);
    sqlx::query("UPDATE zalo_tokens SET access_token = $1, refresh_token = $2, expires_at = $3, updated_at = $4 WHERE id = 1")
        .bind(access.to_string())
        .bind(new_refresh.to_string())
        .bind(now_ms() + expires_in * 1000)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(access.to_string())
}

pub enum ZaloOutcome {
    Sent(String),
    TokenExpired,
    Failed(SendError),
}

/// The Zalo error number in a failure's text ("Zalo -118 …").
pub fn zalo_error_code(text: &str) -> Option<i64> {
    text.strip_prefix("Zalo ")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One ZNS template message; `error == 0` in the body is success.
pub async fn zalo_send(
    http: &reqwest::Client,
    cfg: &ZaloConfig,
    token: &str,
    phone: &str,
    key: &str,
    payload: &Value,
) -> ZaloOutcome {
    let body = json!({
        "phone": phone,
        "template_id": payload["template_id"],
        "template_data": payload["template_data"],
        "tracking_id": key,
    });
    let resp = match http
        .post(format!("{}/message/template", cfg.zns_url))
        .header("access_token", token)
        .json(&body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return ZaloOutcome::Failed(retry(e)),
    };
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    match v["error"].as_i64() {
        Some(0) => ZaloOutcome::Sent(v["data"]["msg_id"].as_str().unwrap_or("").to_string()),
        Some(code) if ZALO_TOKEN_ERRORS.contains(&code) => ZaloOutcome::TokenExpired,
        Some(-100) => ZaloOutcome::Failed(retry(format!("Zalo -100 {}", v["message"]))),
        Some(code) => ZaloOutcome::Failed(SendError::Permanent(format!(
            "Zalo {code} {}",
            v["message"]
        ))),
        None if status.as_u16() == 401 => ZaloOutcome::TokenExpired,
        None => ZaloOutcome::Failed(retry(format!("HTTP {status}"))),
    }
}
