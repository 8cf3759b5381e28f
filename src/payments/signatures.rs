//! Webhook signatures, one function per provider, each checked against published vectors.
//! All comparisons are constant-time; nothing here trusts a body before its signature.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

/// How far a signed timestamp may be from our clock (seconds).
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature header missing or malformed")]
    MissingHeader,
    #[error("signature does not match")]
    Mismatch,
    #[error("signed timestamp is outside the replay window")]
    Stale,
    #[error("body is not valid JSON")]
    Malformed,
}

fn hmac256_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

fn hmac512_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("any key length");
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time equality of two hex strings (case-insensitive on the received one).
fn same(expected: &str, received: &str) -> bool {
    let received = received.trim().to_ascii_lowercase();
    expected.as_bytes().ct_eq(received.as_bytes()).into()
}

/// `t=…,v1=…[,v1=…]` → (t, every v1). Other schemes (v0) are ignored.
fn parse_t_v1(header: &str) -> Result<(i64, Vec<String>), SignatureError> {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.trim().parse::<i64>().ok(),
            Some(("v1", v)) => v1.push(v.trim().to_string()),
            _ => {}
        }
    }
    match t {
        Some(t) if !v1.is_empty() => Ok((t, v1)),
        _ => Err(SignatureError::MissingHeader),
    }
}

// ---------------------------------------------------------------------------------------
// payOS: HMAC-SHA256 over `data` rendered as sorted `key=value&…` (spec §2.5).

/// One value as the payOS SDKs render it.
fn payos_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) if s == "null" || s == "undefined" => String::new(),
        Value::String(s) => s.clone(),
        // serde_json's map is ordered by key, so every object prints with sorted keys.
        Value::Array(_) => serde_json::to_string(v).expect("json"),
        other => other.to_string(),
    }
}

/// The canonical string payOS signs for an object (`data` of a webhook or a response).
pub fn payos_canonical(data: &Value) -> String {
    match data {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", payos_value(v)))
            .collect::<Vec<_>>()
            .join("&"),
        _ => String::new(),
    }
}

pub fn payos_sign(checksum_key: &str, data: &Value) -> String {
    hmac256_hex(checksum_key.as_bytes(), &[payos_canonical(data).as_bytes()])
}

/// The signature of a create-payment-link request: five fields, alphabetical (spec §2.3).
pub fn payos_request_signature(
    checksum_key: &str,
    amount: i64,
    cancel_url: &str,
    description: &str,
    order_code: i64,
    return_url: &str,
) -> String {
    let msg = format!(
        "amount={amount}&cancelUrl={cancel_url}&description={description}&orderCode={order_code}&returnUrl={return_url}"
    );
    hmac256_hex(checksum_key.as_bytes(), &[msg.as_bytes()])
}

/// Verify a payOS webhook body; returns its `data` object.
pub fn verify_payos(checksum_key: &str, body: &[u8]) -> Result<Value, SignatureError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| SignatureError::Malformed)?;
    let data = v
        .get("data")
        .filter(|d| d.is_object())
        .ok_or(SignatureError::Malformed)?;
    let sig = v
        .get("signature")
        .and_then(Value::as_str)
        .ok_or(SignatureError::MissingHeader)?;
    if same(&payos_sign(checksum_key, data), sig) {
        Ok(data.clone())
    } else {
        Err(SignatureError::Mismatch)
    }
}

// ---------------------------------------------------------------------------------------
// Casso webhook v2: `X-Casso-Signature: t=<ms>,v1=<hex>`, HMAC-SHA512 over
// `t + "." + body with keys sorted recursively, compact` (spec §3.1).

pub fn casso_sign(checksum_key: &str, t_ms: i64, body: &Value) -> String {
    let json = serde_json::to_string(body).expect("json");
    hmac512_hex(
        checksum_key.as_bytes(),
        &[t_ms.to_string().as_bytes(), b".", json.as_bytes()],
    )
}

/// Verify a Casso v2 delivery; returns the parsed body. `now_ms` bounds replays: Casso
/// documents no window, so ours is generous (the same 300 s as the other providers).
pub fn verify_casso(
    checksum_key: &str,
    header: Option<&str>,
    body: &[u8],
    now_ms: Option<i64>,
) -> Result<Value, SignatureError> {
    let (t, sigs) = parse_t_v1(header.ok_or(SignatureError::MissingHeader)?)?;
    let v: Value = serde_json::from_slice(body).map_err(|_| SignatureError::Malformed)?;
    let expected = casso_sign(checksum_key, t, &v);
    if !sigs.iter().any(|s| same(&expected, s)) {
        return Err(SignatureError::Mismatch);
    }
    if let Some(now) = now_ms
        && (now - t).abs() > TOLERANCE_SECS * 1000
    {
        return Err(SignatureError::Stale);
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------
// Our own bank-feed format: `X-Cholang-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret,
// t + "." + raw body)>`, rejected beyond 300 s either way.

pub fn bank_sign(secret: &str, t: i64, raw_body: &[u8]) -> String {
    hmac256_hex(
        secret.as_bytes(),
        &[t.to_string().as_bytes(), b".", raw_body],
    )
}

pub fn verify_bank(
    secret: &str,
    header: Option<&str>,
    raw_body: &[u8],
    now_secs: i64,
) -> Result<(), SignatureError> {
    verify_t_v1_sha256(secret, header, raw_body, now_secs)
}

fn verify_t_v1_sha256(
    secret: &str,
    header: Option<&str>,
    raw_body: &[u8],
    now_secs: i64,
) -> Result<(), SignatureError> {
    let (t, sigs) = parse_t_v1(header.ok_or(SignatureError::MissingHeader)?)?;
    let expected = bank_sign(secret, t, raw_body);
    if !sigs.iter().any(|s| same(&expected, s)) {
        return Err(SignatureError::Mismatch);
    }
    if (now_secs - t).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Stripe: `Stripe-Signature: t=…,v1=…[,v1=…][,v0=…]`, HMAC-SHA256 keyed with the whole
// `whsec_…` secret over `t + "." + raw body`; any v1 may match; 300 s tolerance (spec §5.1).
// The scheme is the same as our bank feed's.

pub fn verify_stripe(
    secret: &str,
    header: Option<&str>,
    raw_body: &[u8],
    now_secs: i64,
) -> Result<(), SignatureError> {
    verify_t_v1_sha256(secret, header, raw_body, now_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// P-1: payOS documentation worked example.
    #[test]
    fn payos_doc_vector() {
        let data = json!({"orderCode":123,"amount":3000,"description":"VQRIO123","accountNumber":"12345678",
            "reference":"TF230204212323","transactionDateTime":"2023-02-04 18:25:00","currency":"VND",
            "paymentLinkId":"124c33293c43417ab7879e14c8d9eb18","code":"00","desc":"Thành công",
            "counterAccountBankId":"","counterAccountBankName":"","counterAccountName":"",
            "counterAccountNumber":"","virtualAccountName":"","virtualAccountNumber":""});
        assert_eq!(
            payos_canonical(&data),
            "accountNumber=12345678&amount=3000&code=00&counterAccountBankId=&counterAccountBankName=&counterAccountName=&counterAccountNumber=&currency=VND&desc=Thành công&description=VQRIO123&orderCode=123&paymentLinkId=124c33293c43417ab7879e14c8d9eb18&reference=TF230204212323&transactionDateTime=2023-02-04 18:25:00&virtualAccountName=&virtualAccountNumber="
        );
        let key = "1a54716c8f0efb2744fb28b6e38b25da7f67a925d98bc1c18bd8faaecadd7675";
        let sig = "412e915d2871504ed31be63c8f62a149a4410d34c4c42affc9006ef9917eaa03";
        assert_eq!(payos_sign(key, &data), sig);
        let body = json!({"code":"00","desc":"success","success":true,"data":data,"signature":sig})
            .to_string();
        assert_eq!(
            verify_payos(key, body.as_bytes()).unwrap()["orderCode"],
            123
        );
        // one byte changed, wrong key, missing signature, not JSON
        let tampered = body.replace("\"amount\":3000", "\"amount\":3001");
        assert_eq!(
            verify_payos(key, tampered.as_bytes()),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_payos("other-key", body.as_bytes()),
            Err(SignatureError::Mismatch)
        );
        let unsigned = json!({"code":"00","data":{"orderCode":123}}).to_string();
        assert_eq!(
            verify_payos(key, unsigned.as_bytes()),
            Err(SignatureError::MissingHeader)
        );
        assert_eq!(
            verify_payos(key, b"{not json"),
            Err(SignatureError::Malformed)
        );
    }

    /// P-2: payOS SDK test vectors (key `test_checksum_key`).
    #[test]
    fn payos_sdk_vectors() {
        let key = "test_checksum_key";
        assert_eq!(
            payos_sign(key, &json!({})),
            "d9dd60ea06e1ee2dc960267c7a798f0c70307a4783ac0460d015772412c37938"
        );
        let webhook = json!({"accountNumber":"0123456789","amount":20000,"description":"thanh toan",
            "reference":"FT-REFERENCE","transactionDateTime":"2025-12-12 09:00:00","virtualAccountNumber":"",
            "counterAccountBankId":"01202001","counterAccountBankName":"","counterAccountName":"NGUYEN VAN A",
            "counterAccountNumber":"9876543210","virtualAccountName":"","currency":"VND","orderCode":0,
            "paymentLinkId":"payment-link-id","code":"00","desc":"success"});
        assert_eq!(
            payos_sign(key, &webhook),
            "302b3becca1672dff99daafae2965f40e48ea3ca39453e4bf37fbcc26807a0e8"
        );
        let pending = json!({"id":"payment-link-id","orderCode":0,"amount":2000,"amountPaid":0,"amountRemaining":2000,
            "status":"PENDING","createdAt":"2025-12-12T09:00:00+07:00","transactions":[],"canceledAt":null,"cancellationReason":null});
        assert_eq!(
            payos_sign(key, &pending),
            "33093364158b143baa9ecd2e705d9a2a5a5d391a3cab7cb0a371588b3731368f"
        );
        assert_eq!(
            payos_request_signature(
                key,
                2000,
                "http://localhost",
                "Thanh toán đơn hàng",
                0,
                "http://localhost"
            ),
            "d8b7b0e5d19edfe7b1f53dedeb8d1c7c2b62fabd7eb320dbc514c58f13e9e2c5"
        );
        assert_eq!(
            payos_request_signature(
                key,
                3300,
                "http://localhost",
                "ABC456",
                0,
                "http://localhost"
            ),
            "189864813370cdf819974dc3f63c3a93a7e7af0a0d10b21344b14e4f7358999b"
        );
    }

    /// C-1: Casso webhook v2 sample (python/php/go/java/.NET samples agree).
    #[test]
    fn casso_v2_vector() {
        let key = "mgExMrjj4i7a1p8Cs6LmFbpCd8lbw4sSX4LZXPag7TKazeIogtR90tvWYTkwQbvs";
        let header = "t=1727948258788,v1=ed0a4bd2e826d5cb69988cdb141e6c1a080e21f3b57eb72cd78192220042b9e7dde0868fc667faea8e224900fa7904e7c88dfa098032fb2d6b6996856e8b7ff3";
        let body = r#"{"error":0,"data":{"id":0,"reference":"MA_GIAO_DICH_THU_NGHIEM","description":"giao dich thu nghiem","amount":599000,"runningBalance":25000000,"transactionDateTime":"2024-10-03 15:06:37","accountNumber":"88888888","bankName":"VPBank","bankAbbreviation":"VPB","virtualAccountNumber":"","virtualAccountName":"","counterAccountName":"NGUYEN VAN A","counterAccountNumber":"8888888888","counterAccountBankId":"970415","counterAccountBankName":"VietinBank"}}"#;
        let v = verify_casso(key, Some(header), body.as_bytes(), None).unwrap();
        assert_eq!(v["data"]["amount"], 599000);
        let tampered = body.replace("599000", "599001");
        assert_eq!(
            verify_casso(key, Some(header), tampered.as_bytes(), None),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_casso("wrong", Some(header), body.as_bytes(), None),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_casso(key, None, body.as_bytes(), None),
            Err(SignatureError::MissingHeader)
        );
        assert_eq!(
            verify_casso(key, Some("v1=abc"), body.as_bytes(), None),
            Err(SignatureError::MissingHeader)
        );
        // replay window when a clock is given
        assert_eq!(
            verify_casso(
                key,
                Some(header),
                body.as_bytes(),
                Some(1727948258788 + 301_000)
            ),
            Err(SignatureError::Stale)
        );
        assert!(
            verify_casso(
                key,
                Some(header),
                body.as_bytes(),
                Some(1727948258788 + 299_000)
            )
            .is_ok()
        );
    }

    /// S-1: async-stripe-webhook's own test event.
    #[test]
    fn stripe_vector() {
        let payload = r#"{"account":"acct_123","api_version":"2017-05-25","created":1533204620,"data":{"object":{"amount":1000,"currency":"usd","customer":"cus_123","date":1533204620,"description":"Test Invoice Item","discountable":false,"id":"ii_123","invoice":"in_123","livemode":false,"metadata":{},"object":"invoiceitem","period":{"end":1533204620,"start":1533204620},"proration":false,"quantity":3,"quantity_decimal":"0"}},"id":"evt_123","livemode":false,"object":"event","pending_webhooks":1,"request":{"id":"req_123","idempotency_key":"idempotency-key-123"},"type":"invoiceitem.created"}"#;
        let good = "d7373bc68f4bd320b253cd7461f87af6e1cdf1b4d7db1614d8d1d746972d2d0a";
        let t = 1533204620;
        let h = format!("t={t},v1={good},v0=63f3a7");
        assert!(verify_stripe("secret", Some(&h), payload.as_bytes(), t + 10).is_ok());
        // the good v1 in second position (secret rotation)
        let rotated = format!("t={t},v1={},v1={good}", "0".repeat(64));
        assert!(verify_stripe("secret", Some(&rotated), payload.as_bytes(), t).is_ok());
        // v0 only, stale, tampered, wrong secret
        assert_eq!(
            verify_stripe(
                "secret",
                Some(&format!("t={t},v0={good}")),
                payload.as_bytes(),
                t
            ),
            Err(SignatureError::MissingHeader)
        );
        assert_eq!(
            verify_stripe("secret", Some(&h), payload.as_bytes(), t + 301),
            Err(SignatureError::Stale)
        );
        let tampered = payload.replace("1000", "1001");
        assert_eq!(
            verify_stripe("secret", Some(&h), tampered.as_bytes(), t),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_stripe("whsec_other", Some(&h), payload.as_bytes(), t),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn bank_feed_format() {
        let body = br#"{"id":"FT2611280001","amount":180000,"description":"MBVCB.3278907687.CL7K3QX9.CT","account_number":"1017595600","transaction_time":"2026-11-28T14:00:00Z","reference":"FT2611280001"}"#;
        let now = 1_795_880_000;
        let h = format!("t={now},v1={}", bank_sign("bank-secret", now, body));
        assert!(verify_bank("bank-secret", Some(&h), body, now + 299).is_ok());
        assert_eq!(
            verify_bank("bank-secret", Some(&h), body, now + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_bank("bank-secret", Some(&h), body, now - 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_bank("other", Some(&h), body, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_bank("bank-secret", None, body, now),
            Err(SignatureError::MissingHeader)
        );
        let mut tampered = body.to_vec();
        tampered[10] ^= 1;
        assert_eq!(
            verify_bank("bank-secret", Some(&h), &tampered, now),
            Err(SignatureError::Mismatch)
        );
        // A signature with a stale timestamp fails even when the HMAC is right.
        let old = now - 3600;
        let h_old = format!("t={old},v1={}", bank_sign("bank-secret", old, body));
        assert_eq!(
            verify_bank("bank-secret", Some(&h_old), body, now),
            Err(SignatureError::Stale)
        );
    }
}
