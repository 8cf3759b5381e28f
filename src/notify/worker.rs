//! The notice worker: expand events into notices, claim due notices, send, record.
//! Runs inside `cholang serve` and alone as `cholang worker`; `run_once` lets tests drive it.

use std::sync::Arc;
use std::time::Duration;

use super::channels::{self, Mailer, SendError, ZaloOutcome};
use super::store::{self, Claimed};
use crate::config::Config;
use crate::db::Db;
use crate::domain::now_ms;
use crate::error::Result;

const BATCH: i64 = 20;

pub struct Notifier {
    db: Db,
    cfg: Arc<Config>,
    http: reqwest::Client,
    mailer: Mailer,
}

/// Retry delay for a notice: exponential with jitter, capped at one hour.
pub fn backoff(base_secs: i64, attempts: i64) -> Duration {
    crate::domain::retry_backoff(base_secs, attempts, 3600)
}

impl Notifier {
    pub fn new(db: Db, cfg: Arc<Config>) -> anyhow::Result<Notifier> {
        let mailer = Mailer::new(&cfg.notify, &cfg.mail_dir())?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()?;
        Ok(Notifier {
            db,
            cfg,
            http,
            mailer,
        })
    }

    /// Expand new events into notices; each event exactly once, in one transaction.
    pub async fn expand(&self) -> Result<usize> {
        let mut n = 0;
        for ev in store::pending_events(&self.db, 100).await? {
            let mut tx = self.db.begin().await?;
            if !store::take_event(&mut tx, ev.id).await? {
                continue;
            }
            for notice in super::render::notices_for(&mut tx, &self.cfg, &ev).await? {
                if store::insert(&mut tx, &notice).await? {
                    n += 1;
                }
            }
            tx.commit().await?;
        }
        Ok(n)
    }

    /// One pass: expand events, then claim and send what is due. Returns how many were
    /// delivered in this pass.
    pub async fn run_once(&self) -> Result<usize> {
        self.expand().await?;
        let mut delivered = 0;
        loop {
            let batch = store::claim(&self.db, BATCH, self.cfg.notify.lease_secs * 1000).await?;
            if batch.is_empty() {
                break;
            }
            for n in batch {
                if self.deliver(&n).await? {
                    delivered += 1;
                }
            }
        }
        Ok(delivered)
    }

    #[tracing::instrument(skip_all, fields(notice = n.id, channel = %n.channel, kind = %n.kind))]
    async fn deliver(&self, n: &Claimed) -> Result<bool> {
        let result = self.send(n).await;
        match result {
            Ok(r) => {
                store::delivered(&self.db, n.id, r).await?;
                Ok(true)
            }
            Err(SendError::Moved(new_chat)) => {
                store::set_recipient(&self.db, n.id, &new_chat).await?;
                if let Some(shop) = n.shop_id {
                    sqlx::query("UPDATE shops SET telegram_chat_id = $1 WHERE id = $2")
                        .bind(new_chat.clone())
                        .bind(shop)
                        .execute(&self.db.pool)
                        .await?;
                }
                store::retry_at(&self.db, n.id, now_ms(), "telegram group moved").await?;
                Ok(false)
            }
            Err(SendError::Permanent(e)) => {
                tracing::warn!(error = %e, "notice failed for good");
                store::failed(&self.db, n.id, &e).await?;
                if n.channel == "zalo"
                    && let Some(shop) = n.shop_id
                {
                    super::render::fallback_for_shop(
                        &self.db, &self.cfg, &n.key, &n.kind, shop, &n.payload,
                    )
                    .await?;
                }
                Ok(false)
            }
            Err(SendError::Retry { error, after }) => {
                if n.attempts >= self.cfg.notify.max_attempts {
                    tracing::warn!(error = %error, attempts = n.attempts, "notice gave up after its attempts");
                    store::failed(
                        &self.db,
                        n.id,
                        &format!("{error} (after {} attempts)", n.attempts),
                    )
                    .await?;
                } else {
                    let wait = after
                        .unwrap_or_else(|| backoff(self.cfg.notify.backoff_base_secs, n.attempts));
                    store::retry_at(&self.db, n.id, now_ms() + wait.as_millis() as i64, &error)
                        .await?;
                }
                Ok(false)
            }
        }
    }

    async fn send(&self, n: &Claimed) -> std::result::Result<Option<String>, SendError> {
        match n.channel.as_str() {
            "email" => {
                self.mailer
                    .send(&self.cfg.notify.mail_from, &n.recipient, &n.key, &n.payload)
                    .await
            }
            "telegram" => match &self.cfg.notify.telegram {
                Some(t) => channels::telegram(&self.http, t, &n.recipient, &n.payload).await,
                None => Err(SendError::Permanent("Telegram is not configured".into())),
            },
            "zalo" => {
                let Some(z) = &self.cfg.notify.zalo else {
                    return Err(SendError::Permanent("Zalo is not configured".into()));
                };
                let token =
                    channels::zalo_token(&self.db, z)
                        .await
                        .map_err(|e| SendError::Retry {
                            error: e.to_string(),
                            after: None,
                        })?;
                match channels::zalo_send(&self.http, z, &token, &n.recipient, &n.key, &n.payload)
                    .await
                {
                    ZaloOutcome::Sent(id) => Ok(Some(id)),
                    ZaloOutcome::Failed(e) => Err(e),
                    ZaloOutcome::TokenExpired => {
                        let fresh = channels::zalo_refresh(&self.db, &self.http, z, &token)
                            .await
                            .map_err(|e| SendError::Retry {
                                error: format!("token refresh: {e}"),
                                after: None,
                            })?;
                        match channels::zalo_send(
                            &self.http,
                            z,
                            &fresh,
                            &n.recipient,
                            &n.key,
                            &n.payload,
                        )
                        .await
                        {
                            ZaloOutcome::Sent(id) => Ok(Some(id)),
                            ZaloOutcome::Failed(e) => Err(e),
                            ZaloOutcome::TokenExpired => Err(SendError::Retry {
                                error: "Zalo token still refused".into(),
                                after: None,
                            }),
                        }
                    }
                }
            }
            other => Err(SendError::Permanent(format!("unknown channel {other}"))),
        }
    }

    /// Loop until `shutdown` resolves, passing every second.
    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "notice worker pass failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_a_cap() {
        for attempts in 1..20 {
            let b = backoff(10, attempts).as_secs_f64();
            let base = (10.0 * 2f64.powi(attempts as i32 - 1)).min(3600.0);
            assert!(b >= base && b <= base * 1.25, "{attempts}: {b}");
        }
    }
}
