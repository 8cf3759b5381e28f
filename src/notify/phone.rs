//! Codes sent to a phone: Zalo ZNS's OTP template first, the SMS brandname when Zalo cannot
//! deliver, the mail directory when neither is set up and mail goes to files too (the demo,
//! where README says to read them; with SMTP set, a missing phone channel is an error). A code is sent at once, not through the outbox: the person waits with the form
//! open, and the code must not sit in a table (only its hash is kept, by `accounts`).
//! A code is never logged.

use std::sync::LazyLock;
use std::time::Duration;

use serde_json::{Value, json};

use super::channels::{self, ZaloOutcome};
use crate::config::{Config, SmsConfig};
use crate::db::Db;
use crate::domain::PhoneVn;
use crate::error::{AppError, Result};

/// How a code reached the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Zalo,
    Sms,
    /// Written under the data dir's `mail/` (no Zalo or SMS configured).
    File,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Zalo => "zalo",
            Via::Sms => "sms",
            Via::File => "file",
        }
    }
}

/// Zalo answers meaning this phone cannot get the message (no Zalo account, blocked,
/// inactive, invalid number): SMS at once, nobody to alert.
const ZALO_PHONE_SIDE: &[i64] = &[-108, -118, -119, -139, -140, -141];

static HTTP: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
});

/// The text of a code message without diacritics (an SMS in plain ASCII costs one part).
pub fn sms_text(code: &str, minutes: i64) -> String {
    format!(
        "Ma xac thuc Cho Lang cua ban la {code}, hieu luc {minutes} phut. Khong dua ma nay cho ai."
    )
}

/// Send `code` to `phone`. `request_id` is ours (letters and digits, unique per code): Zalo's
/// `tracking_id` and the SMS provider's `RequestId`, so a resend is not charged twice.
pub async fn send_code(
    db: &Db,
    cfg: &Config,
    phone: &PhoneVn,
    code: &str,
    minutes: i64,
    request_id: &str,
) -> Result<Via> {
    let pc = &cfg.notify.phone_codes;
    let mut tried = Vec::new();
    if let (Some(z), Some(template)) = (&cfg.notify.zalo, &pc.zalo_template) {
        let payload = json!({
            "template_id": template,
            "template_data": { pc.zalo_param.clone(): code },
        });
        match zalo(db, z, phone, request_id, &payload).await {
            Ok(()) => return Ok(Via::Zalo),
            Err((code_no, why)) => {
                if !code_no.is_some_and(|c| ZALO_PHONE_SIDE.contains(&c)) {
                    // The platform's side (token, template, quota, network): someone must look.
                    tracing::warn!(error = %why, phone = %phone.masked(), "Zalo could not send a phone code; trying SMS");
                    alert_admins(db, &why).await;
                }
                tried.push(format!("Zalo: {why}"));
            }
        }
    }
    if let Some(sms) = &pc.sms {
        match send_sms(sms, phone, &sms_text(code, minutes), request_id).await {
            Ok(()) => return Ok(Via::Sms),
            Err(why) => {
                tracing::warn!(error = %why, phone = %phone.masked(), "SMS could not send a phone code");
                tried.push(format!("SMS: {why}"));
            }
        }
    }
    let zalo_otp = cfg.notify.zalo.is_some() && pc.zalo_template.is_some();
    if !zalo_otp && pc.sms.is_none() {
        // Mail goes to files too (no SMTP): the demo or a developer's machine.
        if cfg.notify.smtp_url.is_none() {
            write_file(cfg, phone, code, minutes, request_id).await?;
            return Ok(Via::File);
        }
        tracing::error!(
            "a code for a phone cannot be sent: set ZALO_TEMPLATE_OTP (with Zalo) or SMS_API_KEY, SMS_API_SECRET and SMS_BRANDNAME"
        );
    }
    tracing::warn!(tried = %tried.join("; "), phone = %phone.masked(), "no channel delivered a phone code");
    Err(AppError::Unavailable(
        "Chưa gửi được mã tới số điện thoại này. Vui lòng thử lại sau ít phút.".into(),
    ))
}

async fn zalo(
    db: &Db,
    z: &crate::config::ZaloConfig,
    phone: &PhoneVn,
    request_id: &str,
    payload: &Value,
) -> std::result::Result<(), (Option<i64>, String)> {
    let token = channels::zalo_token(db, z)
        .await
        .map_err(|e| (None, e.to_string()))?;
    let intl = phone.international();
    let mut outcome = channels::zalo_send(&HTTP, z, &token, &intl, request_id, payload).await;
    if matches!(outcome, ZaloOutcome::TokenExpired) {
        let fresh = channels::zalo_refresh(db, &HTTP, z, &token)
            .await
            .map_err(|e| (None, e.to_string()))?;
        outcome = channels::zalo_send(&HTTP, z, &fresh, &intl, request_id, payload).await;
    }
    match outcome {
        ZaloOutcome::Sent(_) => Ok(()),
        ZaloOutcome::TokenExpired => Err((Some(-124), "Zalo access token refused".into())),
        ZaloOutcome::Failed(e) => {
            let text = match e {
                channels::SendError::Retry { error, .. } => error,
                channels::SendError::Permanent(m) | channels::SendError::Moved(m) => m,
            };
            Err((channels::zalo_error_code(&text), text))
        }
    }
}

/// eSMS.vn `SendMultipleMessage_V4_post_json`: `CodeResult` "100" is accepted.
async fn send_sms(
    sms: &SmsConfig,
    phone: &PhoneVn,
    text: &str,
    request_id: &str,
) -> std::result::Result<(), String> {
    let body = json!({
        "ApiKey": sms.api_key,
        "SecretKey": sms.api_secret,
        "Phone": phone.as_str(),
        "Content": text,
        "Brandname": sms.brandname,
        "SmsType": "2",
        "IsUnicode": "0",
        "RequestId": request_id,
        "Sandbox": "0",
    });
    let resp = HTTP
        .post(format!(
            "{}/MainService.svc/json/SendMultipleMessage_V4_post_json/",
            sms.api_url
        ))
        .json(&body)
        .send()
        .await
        // The error's text names the URL only; the keys are in the body.
        .map_err(|e| format!("request failed: {}", e.without_url()))?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    let result = match &v["CodeResult"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    if result == "100" {
        Ok(())
    } else {
        Err(format!(
            "HTTP {status}, CodeResult {result:?} {}",
            v["ErrorMessage"].as_str().unwrap_or("")
        ))
    }
}

/// The demo's "phone": an `.eml` file beside the mail, addressed to `<phone>@phone.invalid`.
async fn write_file(
    cfg: &Config,
    phone: &PhoneVn,
    code: &str,
    minutes: i64,
    request_id: &str,
) -> Result<()> {
    let mailer = channels::Mailer::File(lettre::AsyncFileTransport::<lettre::Tokio1Executor>::new(
        cfg.mail_dir(),
    ));
    std::fs::create_dir_all(cfg.mail_dir()).map_err(|e| AppError::Internal(e.into()))?;
    let spaced = format!(
        "{} {}",
        &code[..3.min(code.len())],
        &code[3.min(code.len())..]
    );
    let text = format!(
        "Tin nhắn tới {}: Mã xác thực Chợ Làng của bạn là {spaced}, có hiệu lực {minutes} phút. Không đưa mã này cho ai.",
        crate::domain::format_phone(phone.as_str())
    );
    let payload = json!({
        "subject": format!("Tin nhắn tới {}", crate::domain::format_phone(phone.as_str())),
        "text": text,
        "html": format!("<p>{}</p>", crate::domain::text::escape_html(&text)),
    });
    mailer
        .send(
            &cfg.notify.mail_from,
            &format!("{}@phone.invalid", phone.as_str()),
            request_id,
            &payload,
        )
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("writing the code file: {e:?}")))?;
    Ok(())
}

/// Tell the admins that Zalo refused a code for a reason of ours (a notice, not the code).
async fn alert_admins(db: &Db, why: &str) {
    let result: Result<()> = async {
        // One alert an hour is enough to send someone looking.
        if !crate::limits::take(db, "phone-code-alert", 1, 3_600_000).await? {
            return Ok(());
        }
        let mut tx = db.begin().await?;
        super::render::admin_alert(
            &mut tx,
            &format!("phone-code-alert:{}", crate::domain::now_ms()),
            "phone_code_alert",
            "Zalo không gửi được mã xác thực",
            &format!(
                "Zalo từ chối gửi mã xác thực tới người dùng ({why}). Chợ Làng đã chuyển sang gửi SMS. \
                 Hãy kiểm tra mẫu tin ZALO_TEMPLATE_OTP, mã truy cập và hạn mức của Zalo OA."
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not queue the admins' alert");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sms_text_is_plain_ascii_and_names_the_service() {
        let t = sms_text("482913", 10);
        assert!(t.is_ascii());
        assert!(t.contains("Cho Lang") && t.contains("482913") && t.contains("10 phut"));
    }
}
