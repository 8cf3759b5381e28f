//! Paying sellers: a shop's payout account, payout runs, payOS Payouts and bank-app payouts.
//!
//! Pure rules live here (payout codes, the payOS header signature, the bank account a
//! payout goes to, the bulk-transfer CSV); `store` moves the money through the ledger;
//! `payos` talks to the payOS Payouts API and follows each payout until it settles.

pub mod payos;
pub use crate::domain::schedule;
pub mod state;
pub mod statement;
pub mod store;

use hmac::{Hmac, Mac};
use rand::Rng;
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;

use crate::domain::payment_code::ALPHABET;

pub const CODE_PREFIX: &str = "CLPO";
pub const CODE_BODY: usize = 6;

/// Refund payouts to buyers ("hoàn tiền"): `CLHT7K3QX9`.
pub const REFUND_PREFIX: &str = "CLHT";

/// A payout code such as `CLPO7K3QX9`: the payment codes' alphabet after `CLPO`.
pub fn new_code() -> String {
    new_code_with(CODE_PREFIX)
}

pub fn new_code_with(prefix: &str) -> String {
    let mut rng = rand::thread_rng();
    let body: String = (0..CODE_BODY)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{body}")
}

/// Payout codes found anywhere in a bank description, ignoring case and the spaces, dots
/// and dashes banks insert.
pub fn codes_in(description: &str) -> Vec<String> {
    codes_with(description, CODE_PREFIX)
}

/// Codes with `prefix` (payouts `CLPO`, refund payouts `CLHT`) in a bank description.
pub fn codes_with(description: &str, prefix: &str) -> Vec<String> {
    let squeezed: Vec<u8> = description
        .bytes()
        .filter(|b| b.is_ascii_alphanumeric())
        .map(|b| b.to_ascii_uppercase())
        .collect();
    let n = prefix.len() + CODE_BODY;
    let mut out = Vec::new();
    for start in 0..squeezed.len().saturating_sub(n - 1) {
        let w = &squeezed[start..start + n];
        if w.starts_with(prefix.as_bytes())
            && w[prefix.len()..].iter().all(|b| ALPHABET.contains(b))
        {
            let c = String::from_utf8_lossy(w).to_string();
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

/// Where a shop's money goes, as banks show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PayoutAccount {
    pub bank_bin: String,
    pub account_no: String,
    pub account_name: String,
}

impl PayoutAccount {
    /// A bank from the list, an account number of 6–19 digits (spaces and dots allowed when
    /// typed), and the holder's name as banks print it: upper case, no diacritics.
    pub fn parse(
        bin: &str,
        account_no: &str,
        name: &str,
    ) -> Result<PayoutAccount, crate::error::AppError> {
        let mut e = crate::error::FieldErrors::new();
        let bin = bin.trim();
        match crate::domain::banks::BankBin::parse(bin) {
            Ok(b) if b.bank().is_some() => {}
            _ => e.add("bank_bin", "Chọn ngân hàng trong danh sách"),
        }
        let no: String = account_no
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '.' && *c != '-')
            .collect();
        if !((6..=19).contains(&no.len()) && no.bytes().all(|b| b.is_ascii_digit())) {
            e.add("account_no", "Số tài khoản gồm 6 đến 19 chữ số");
        }
        let folded = crate::domain::text::fold(name)
            .to_uppercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if folded.chars().count() < 3
            || folded.chars().count() > 50
            || !folded.chars().all(|c| c.is_ascii_uppercase() || c == ' ')
        {
            e.add(
                "account_name",
                "Tên chủ tài khoản từ 3 đến 50 chữ cái, như trên thẻ ngân hàng",
            );
        }
        e.into_result()?;
        Ok(PayoutAccount {
            bank_bin: bin.to_string(),
            account_no: no,
            account_name: folded,
        })
    }
}

// ---------------------------------------------------------------------------------------
// payOS Payouts: the `x-signature` header (shared/specs/payouts.md).

/// Percent-encode as the payOS SDKs do: unreserved characters and `/` stay.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        // serde_json's maps are ordered by key: nested objects print sorted, compact.
        other => serde_json::to_string(other).expect("json"),
    }
}

/// The string payOS signs for a JSON object: sorted `key=value` pairs, percent-encoded.
pub fn canonical(obj: &Value) -> String {
    match obj {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(&value_text(v))))
            .collect::<Vec<_>>()
            .join("&"),
        _ => String::new(),
    }
}

pub fn sign(checksum_key: &str, obj: &Value) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(checksum_key.as_bytes()).expect("hmac key");
    mac.update(canonical(obj).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time check of a response's `x-signature` over its `data`.
pub fn verify(checksum_key: &str, obj: &Value, signature: &str) -> bool {
    use subtle::ConstantTimeEq;
    sign(checksum_key, obj)
        .as_bytes()
        .ct_eq(signature.trim().to_ascii_lowercase().as_bytes())
        .into()
}

/// What a payOS transaction state means for our payout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Paid,
    Failed,
    Waiting,
}

pub fn settled(state: &str) -> Settled {
    match state {
        "SUCCEEDED" => Settled::Paid,
        "FAILED" | "CANCELLED" | "REVERSED" => Settled::Failed,
        _ => Settled::Waiting,
    }
}

/// The description of a payout transfer: ASCII letters, digits and spaces only (where every
/// payOS SDK and bank agree), holding the code.
pub fn description(code: &str) -> String {
    format!("CHO LANG {code}")
}

/// One row of a bank's bulk-transfer upload.
pub struct CsvRow<'a> {
    pub code: &'a str,
    pub account_no: &'a str,
    pub account_name: &'a str,
    pub bank_bin: &'a str,
    pub amount: i64,
}

pub use crate::domain::banks::{bank_name, masked_account};

/// The run as CSV for banks' bulk-transfer uploads: sequence, beneficiary account, name
/// (upper case, no diacritics), bank (BIN, code and name), amount, description. Cells are
/// safe to open in a spreadsheet (`domain::sheet`).
pub fn bulk_csv(rows: &[CsvRow]) -> String {
    let mut w = crate::domain::sheet::Sheet::new(&[
        "stt",
        "so_tai_khoan",
        "ten_nguoi_nhan",
        "ma_bin",
        "ngan_hang",
        "so_tien",
        "noi_dung",
        "ten_ngan_hang",
    ]);
    for (i, r) in rows.iter().enumerate() {
        let bank = crate::domain::banks::BankBin::parse(r.bank_bin)
            .ok()
            .and_then(|b| b.bank().map(|b| b.code))
            .unwrap_or("");
        w.row(&[
            (i + 1).to_string(),
            r.account_no.to_string(),
            r.account_name.to_string(),
            r.bank_bin.to_string(),
            bank.to_string(),
            r.amount.to_string(),
            description(r.code),
            bank_name(r.bank_bin),
        ]);
    }
    w.into_string()
}

/// The account a transfer came from, when the provider reported it (payOS and Casso put
/// `counterAccountBankId`, `counterAccountNumber` and `counterAccountName` in their bodies):
/// offered to the buyer, masked, as where a refund may go. None unless the bank is known.
pub fn payer_of(raw: &str) -> Option<PayoutAccount> {
    use serde_json::Value;
    fn find<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
        match v {
            Value::Object(m) => m
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .or_else(|| m.values().find_map(|x| find(x, key))),
            Value::Array(a) => a.iter().find_map(|x| find(x, key)),
            _ => None,
        }
    }
    let v: Value = serde_json::from_str(raw).ok()?;
    let bin = find(&v, "counterAccountBankId")?;
    let no = find(&v, "counterAccountNumber")?;
    let name = find(&v, "counterAccountName")?;
    PayoutAccount::parse(bin, no, name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "payout-checksum-key-for-tests-0123456789";

    #[test]
    fn spec_vector_p_o1_request() {
        let body = json!({"referenceId":"CLPO7K3QX9","amount":1250000,"description":"CHO LANG CLPO7K3QX9","toBin":"970436","toAccountNumber":"0011001234567"});
        assert_eq!(
            canonical(&body),
            "amount=1250000&description=CHO%20LANG%20CLPO7K3QX9&referenceId=CLPO7K3QX9&toAccountNumber=0011001234567&toBin=970436"
        );
        assert_eq!(
            sign(KEY, &body),
            "6f72eb74d99a4e55543d5030fb037c0af57098ee6e330eb405ae0afb686398a8"
        );
    }

    #[test]
    fn spec_vector_p_o2_list() {
        let body = json!({"referenceId":"CLPO7K3QX9","amount":1250000,"description":"CHO LANG CLPO7K3QX9","toBin":"970422","toAccountNumber":"0123456789","category":["payout"]});
        assert_eq!(
            canonical(&body),
            "amount=1250000&category=%5B%22payout%22%5D&description=CHO%20LANG%20CLPO7K3QX9&referenceId=CLPO7K3QX9&toAccountNumber=0123456789&toBin=970422"
        );
        assert_eq!(
            sign(KEY, &body),
            "aab85a4dbb8944244f6d551b53f5591256a34c94dd7c3c6e6f291489edcb5f6f"
        );
    }

    #[test]
    fn spec_vector_p_o3_response() {
        let data: Value = serde_json::from_str(r#"{"id":"batch_0001","referenceId":"CLPO7K3QX9","transactions":[{"id":"txn_0001","referenceId":"CLPO7K3QX9","amount":1250000,"description":"CHO LANG CLPO7K3QX9","toBin":"970436","toAccountNumber":"0011001234567","toAccountName":"NGUYEN THI HANH","reference":"FT25001","transactionDatetime":"2026-11-30T10:00:00+07:00","errorMessage":null,"errorCode":null,"state":"SUCCEEDED"}],"category":null,"approvalState":"COMPLETED","createdAt":"2026-11-30T09:59:00+07:00"}"#).unwrap();
        assert_eq!(
            canonical(&data),
            "approvalState=COMPLETED&category=&createdAt=2026-11-30T09%3A59%3A00%2B07%3A00&id=batch_0001&referenceId=CLPO7K3QX9&transactions=%5B%7B%22amount%22%3A1250000%2C%22description%22%3A%22CHO%20LANG%20CLPO7K3QX9%22%2C%22errorCode%22%3Anull%2C%22errorMessage%22%3Anull%2C%22id%22%3A%22txn_0001%22%2C%22reference%22%3A%22FT25001%22%2C%22referenceId%22%3A%22CLPO7K3QX9%22%2C%22state%22%3A%22SUCCEEDED%22%2C%22toAccountName%22%3A%22NGUYEN%20THI%20HANH%22%2C%22toAccountNumber%22%3A%220011001234567%22%2C%22toBin%22%3A%22970436%22%2C%22transactionDatetime%22%3A%222026-11-30T10%3A00%3A00%2B07%3A00%22%7D%5D"
        );
        let sig = "ddb2353e87e8125d2b1932426f9d2e818c74842a8d0afd000f320fb98ac7af4a";
        assert!(verify(KEY, &data, sig));
        assert!(!verify("another-key", &data, sig));
        let mut tampered = data.clone();
        tampered["transactions"][0]["state"] = json!("FAILED");
        assert!(!verify(KEY, &tampered, sig));
    }

    #[test]
    fn codes_are_found_in_bank_descriptions() {
        let c = new_code();
        assert!(c.starts_with("CLPO") && c.len() == 10);
        assert_eq!(
            codes_in("MBVCB.123.cho lang clpo-7k3q.x9 ck"),
            vec!["CLPO7K3QX9".to_string()]
        );
        assert!(codes_in("CL7K3QX9 thanh toan").is_empty());
    }

    #[test]
    fn payout_accounts_as_banks_show_them() {
        let a = PayoutAccount::parse("970436", "0011 0012 34567", "Nguyễn Thị Hạnh").unwrap();
        assert_eq!(a.account_no, "0011001234567");
        assert_eq!(a.account_name, "NGUYEN THI HANH");
        assert!(PayoutAccount::parse("123456", "0011001234567", "NGUYEN THI HANH").is_err());
        assert!(PayoutAccount::parse("970436", "12ab", "NGUYEN THI HANH").is_err());
        assert!(PayoutAccount::parse("970436", "0011001234567", "NG").is_err());
    }

    proptest::proptest! {
        /// Bank descriptions and typed account details of any shape: no panic, and what is
        /// accepted is what a bank takes.
        #[test]
        fn parsers_take_any_input(s in "\\PC{0,80}", bin in "[0-9]{0,8}", no in "[0-9 .a-z-]{0,25}") {
            for c in codes_in(&s) {
                proptest::prop_assert!(c.starts_with(CODE_PREFIX) && c.len() == 10);
            }
            if let Ok(a) = PayoutAccount::parse(&bin, &no, &s) {
                proptest::prop_assert!(a.account_no.bytes().all(|b| b.is_ascii_digit()));
                proptest::prop_assert!(a.account_name.chars().all(|c| c.is_ascii_uppercase() || c == ' '));
            }
            let _ = canonical(&serde_json::json!({"description": s, "amount": 1}));
        }
    }

    #[test]
    fn bulk_csv_has_one_row_per_payout() {
        let csv = bulk_csv(&[CsvRow {
            code: "CLPO7K3QX9",
            account_no: "0011001234567",
            account_name: "NGUYEN THI HANH",
            bank_bin: "970436",
            amount: 1_250_000,
        }]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[1].starts_with(
                "1,0011001234567,NGUYEN THI HANH,970436,VCB,1250000,CHO LANG CLPO7K3QX9"
            ),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn the_payer_account_comes_from_the_providers_body() {
        let raw = r#"{"code":"00","data":{"counterAccountBankId":"970436","counterAccountName":"NGUYEN VAN A","counterAccountNumber":"0011001234567"}}"#;
        let a = super::payer_of(raw).expect("found");
        assert_eq!(a.bank_bin, "970436");
        assert_eq!(a.account_no, "0011001234567");
        assert!(super::payer_of(r#"{"data":{"counterAccountBankId":""}}"#).is_none());
        assert!(super::payer_of("not json").is_none());
    }
}
