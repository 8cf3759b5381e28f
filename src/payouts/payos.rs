//! The payOS Payouts API: send each payout once (its code is the idempotency key, so a retry
//! after a timeout or a 5xx can never pay twice), verify every answer's `x-signature`, and
//! follow the payout until its transaction settles.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::Row;

use super::state::PayoutStatus;
use super::{Settled, settled, sign, verify};
use crate::config::{Config, PayosConfig};
use crate::db::Db;
use crate::domain::{now_ms, retry_backoff};
use crate::error::Result;

/// What an answer from payOS means.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Accepted (or found): payOS's payout id and its first transaction's state.
    Ok { id: String, state: String },
    /// payOS refused it for good (`code` ≠ "00" with a 4xx, or a definite refusal).
    Refused(String),
    /// No trustworthy answer (timeout, 5xx, bad signature): ask again later, same key.
    Retry(String),
}

fn client(timeout_ms: u64) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(timeout_ms))
        .build()
        .expect("http client")
}

fn read(cfg: &PayosConfig, status: u16, signature: Option<String>, body: &str) -> Answer {
    if status >= 500 || status == 429 {
        return Answer::Retry(format!("payOS HTTP {status}"));
    }
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return Answer::Retry(format!("payOS HTTP {status}: unreadable body"));
    };
    let code = v["code"].as_str().unwrap_or("");
    if code != "00" {
        let desc = v["desc"].as_str().unwrap_or("").to_string();
        return if status >= 400 || !code.is_empty() {
            Answer::Refused(format!("payOS {code}: {desc}"))
        } else {
            Answer::Retry(format!("payOS HTTP {status} without a code"))
        };
    }
    let data = &v["data"];
    match signature {
        Some(sig) if verify(&cfg.checksum_key, data, &sig) => {}
        _ => return Answer::Retry("payOS answer with a missing or wrong x-signature".into()),
    }
    let Some(id) = data["id"].as_str().filter(|i| !i.is_empty()) else {
        return Answer::Retry("payOS answer without a payout id".into());
    };
    Answer::Ok {
        id: id.to_string(),
        state: data["transactions"][0]["state"]
            .as_str()
            .unwrap_or("RECEIVED")
            .to_string(),
    }
}

/// (HTTP status, `x-signature`, body) of an answer; no answer is a `Retry`.
async fn parts(
    r: reqwest::Result<reqwest::Response>,
) -> std::result::Result<(u16, Option<String>, String), Answer> {
    match r {
        Err(e) => Err(Answer::Retry(format!("payOS unreachable: {e}"))),
        Ok(resp) => {
            let status = resp.status().as_u16();
            let sig = resp
                .headers()
                .get("x-signature")
                .and_then(|h| h.to_str().ok())
                .map(str::to_string);
            Ok((status, sig, resp.text().await.unwrap_or_default()))
        }
    }
}

async fn answer(cfg: &PayosConfig, r: reqwest::Result<reqwest::Response>) -> Answer {
    match parts(r).await {
        Err(a) => a,
        Ok((status, sig, body)) => read(cfg, status, sig, &body),
    }
}

/// `POST /v1/payouts` for one payout.
pub async fn send(
    cfg: &PayosConfig,
    timeout_ms: u64,
    code: &str,
    amount: i64,
    bin: &str,
    account: &str,
) -> Answer {
    let body = json!({
        "referenceId": code,
        "amount": amount,
        "description": super::description(code),
        "toBin": bin,
        "toAccountNumber": account,
    });
    let r = client(timeout_ms)
        .post(format!("{}/v1/payouts", cfg.api_url))
        .header("x-client-id", &cfg.client_id)
        .header("x-api-key", &cfg.api_key)
        .header("x-idempotency-key", code)
        .header("x-signature", sign(&cfg.checksum_key, &body))
        .json(&body)
        .send()
        .await;
    answer(cfg, r).await
}

/// `GET /v1/payouts/{id}`.
pub async fn fetch(cfg: &PayosConfig, timeout_ms: u64, id: &str) -> Answer {
    let r = client(timeout_ms)
        .get(format!("{}/v1/payouts/{id}", cfg.api_url))
        .header("x-client-id", &cfg.client_id)
        .header("x-api-key", &cfg.api_key)
        .send()
        .await;
    answer(cfg, r).await
}

/// `GET /v1/payouts?referenceId=…`: the payout payOS holds under our code, if any (after a
/// send whose first answer was lost, a 4xx on the retry may mean "already created").
pub async fn lookup(cfg: &PayosConfig, timeout_ms: u64, code: &str) -> Answer {
    let r = client(timeout_ms)
        .get(format!("{}/v1/payouts", cfg.api_url))
        .query(&[("referenceId", code), ("limit", "1")])
        .header("x-client-id", &cfg.client_id)
        .header("x-api-key", &cfg.api_key)
        .send()
        .await;
    let (status, sig, body) = match parts(r).await {
        Err(a) => return a,
        Ok(p) => p,
    };
    if status >= 500 || status == 429 {
        return Answer::Retry(format!("payOS HTTP {status}"));
    }
    let Ok(v) = serde_json::from_str::<Value>(&body) else {
        return Answer::Retry(format!("payOS HTTP {status}: unreadable body"));
    };
    if v["code"].as_str() != Some("00") {
        return Answer::Refused(format!(
            "payOS {}: {}",
            v["code"].as_str().unwrap_or(""),
            v["desc"].as_str().unwrap_or("")
        ));
    }
    let data = &v["data"];
    match sig {
        Some(sig) if verify(&cfg.checksum_key, data, &sig) => {}
        _ => return Answer::Retry("payOS answer with a missing or wrong x-signature".into()),
    }
    let found = data["payouts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["referenceId"].as_str() == Some(code));
    match found.and_then(|p| p["id"].as_str().map(|id| (id, p))) {
        Some((id, p)) => Answer::Ok {
            id: id.to_string(),
            state: p["transactions"][0]["state"]
                .as_str()
                .unwrap_or("RECEIVED")
                .to_string(),
        },
        None => Answer::Refused(format!("payOS has no payout {code}")),
    }
}

/// A book of payouts the follow-up sends through payOS and asks about: sellers' payouts
/// (`ShopBook`), or refunds to buyers (`refund_payouts::RefundBook`, a room above this one,
/// handed in by whoever runs the job).
#[async_trait::async_trait]
pub trait Book: Sync {
    /// Its table (`payouts`, `refund_payouts`): the same columns for what payOS needs.
    fn table(&self) -> &'static str;
    /// payOS accepted it under `provider_id`.
    async fn accepted(&self, tx: &mut crate::db::Tx, id: i64, provider_id: &str) -> Result<()>;
    /// payOS says it reached the bank.
    async fn paid(&self, tx: &mut crate::db::Tx, id: i64) -> Result<bool>;
    /// payOS refused it or it failed on the way.
    async fn failed(&self, tx: &mut crate::db::Tx, id: i64, why: &str) -> Result<bool>;
}

/// Sellers' payouts.
pub struct ShopBook;

#[async_trait::async_trait]
impl Book for ShopBook {
    fn table(&self) -> &'static str {
        "payouts"
    }

    async fn accepted(&self, tx: &mut crate::db::Tx, id: i64, pid: &str) -> Result<()> {
        PayoutStatus::Pending
            .transition(PayoutStatus::Sent)
            .map_err(|e| crate::error::AppError::Internal(anyhow::anyhow!(e)))?;
        sqlx::query(
            "UPDATE payouts SET status = $4, provider_id = $1, updated_at = $2 WHERE id = $3 AND status = $5",
        )
        .bind(pid.to_string())
        .bind(now_ms())
        .bind(id)
        .bind(PayoutStatus::Sent.as_str())
        .bind(PayoutStatus::Pending.as_str())
        .execute(&mut **tx)
        .await?;
        crate::notify::event(tx, crate::notify::NoticeKind::PayoutSent, id).await?;
        Ok(())
    }

    async fn paid(&self, tx: &mut crate::db::Tx, id: i64) -> Result<bool> {
        super::store::mark_paid(tx, id, None).await
    }

    async fn failed(&self, tx: &mut crate::db::Tx, id: i64, why: &str) -> Result<bool> {
        super::store::mark_failed(tx, id, why).await
    }
}

/// One pass of the follow-up job: send payOS payouts not yet accepted, and ask about those
/// accepted until they settle, for each of `books` (sellers' payouts and refunds to buyers).
/// Each payout is claimed by pushing its next check out first (a conditional update), so
/// two workers never handle one at once. Returns how many payouts were handled.
pub async fn run_once(db: &Db, cfg: &Config, books: &[&dyn Book]) -> Result<usize> {
    let Some(pc) = cfg.payouts.payos.as_ref() else {
        return Ok(0);
    };
    let mut handled = 0;
    for book in books {
        handled += run_book(db, cfg, pc, *book).await?;
    }
    Ok(handled)
}

async fn run_book(db: &Db, cfg: &Config, pc: &PayosConfig, book: &dyn Book) -> Result<usize> {
    let table = book.table();
    let now = now_ms();
    let due = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, code, status, amount_vnd, bank_bin, account_no, provider_id, attempts FROM {table}
         WHERE method = 'payos' AND status IN ('pending', 'sent') AND next_check_at <= $1
         ORDER BY next_check_at, id LIMIT 100"
    )))
    .bind(now)
    .fetch_all(&db.pool)
    .await?;
    let mut handled = 0;
    for r in due {
        let id: i64 = r.try_get("id")?;
        let claimed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET next_check_at = $1 WHERE id = $2 AND next_check_at <= $3"
        )))
        .bind(now + 60_000)
        .bind(id)
        .bind(now)
        .execute(&db.pool)
        .await?
        .rows_affected();
        if claimed != 1 {
            continue;
        }
        handled += 1;
        let code: String = r.try_get("code")?;
        let status: String = r.try_get("status")?;
        let attempts: i64 = r.try_get("attempts")?;
        let provider_id: Option<String> = r.try_get("provider_id")?;
        let answer = match (&status[..], &provider_id) {
            // Once payOS accepted the payout, only its transaction's state may fail it: a
            // refused look-up (404, bad key) is asked again, never taken as "not paid".
            ("sent", Some(pid)) => match fetch(pc, cfg.payouts.payos_timeout_ms, pid).await {
                Answer::Refused(why) => Answer::Retry(why),
                other => other,
            },
            _ => {
                let sent = send(
                    pc,
                    cfg.payouts.payos_timeout_ms,
                    &code,
                    r.try_get("amount_vnd")?,
                    &r.try_get::<String, _>("bank_bin")?,
                    &r.try_get::<String, _>("account_no")?,
                )
                .await;
                match sent {
                    // A retried send refused: the first one may have gone through with its
                    // answer lost. Ask payOS for the payout by its reference before failing
                    // it; only "none under this code" fails it.
                    Answer::Refused(why) if attempts > 0 => {
                        match lookup(pc, cfg.payouts.payos_timeout_ms, &code).await {
                            Answer::Refused(_) => Answer::Refused(why),
                            other => other,
                        }
                    }
                    other => other,
                }
            }
        };
        let mut tx = db.begin().await?;
        match answer {
            Answer::Ok { id: pid, state } => {
                if status == PayoutStatus::Pending.as_str() {
                    book.accepted(&mut tx, id, &pid).await?;
                }
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE {table} SET provider_state = $1 WHERE id = $2"
                )))
                .bind(state.clone())
                .bind(id)
                .execute(&mut *tx)
                .await?;
                match settled(&state) {
                    Settled::Paid => {
                        book.paid(&mut tx, id).await?;
                    }
                    Settled::Failed => {
                        book.failed(&mut tx, id, &format!("payOS: {state}")).await?;
                    }
                    Settled::Waiting => {
                        let wait = retry_backoff(5, attempts + 1, 3_600).as_millis() as i64;
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "UPDATE {table} SET attempts = attempts + 1, next_check_at = $1 WHERE id = $2"
                        )))
                        .bind(now_ms() + wait)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
            }
            Answer::Refused(why) => {
                book.failed(&mut tx, id, &why).await?;
            }
            Answer::Retry(why) => {
                tracing::warn!(payout = %code, error = %why, "payOS payout: will ask again");
                let wait = retry_backoff(5, attempts + 1, 3_600).as_millis() as i64;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE {table} SET attempts = attempts + 1, last_error = $1, next_check_at = $2 WHERE id = $3"
                )))
                .bind(why)
                .bind(now_ms() + wait)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
    }
    Ok(handled)
}
