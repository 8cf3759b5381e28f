//! Payment codes: short, unambiguous, and findable in whatever a bank does to the
//! transfer description.

use std::fmt;

use rand::Rng;

/// Letters and digits that cannot be misread: no 0/O, 1/I/L.
pub const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
pub const PREFIX: &str = "CL";
pub const BODY_LEN: usize = 6;

/// A payment code such as `CL7K3QX9`: `CL` and six characters of `ALPHABET`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PaymentCode(String);

impl PaymentCode {
    pub fn generate() -> PaymentCode {
        let mut rng = rand::thread_rng();
        let body: String = (0..BODY_LEN)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
            .collect();
        PaymentCode(format!("{PREFIX}{body}"))
    }

    pub fn parse(s: &str) -> Result<PaymentCode, String> {
        let s = s.trim().to_uppercase();
        let ok = s.len() == PREFIX.len() + BODY_LEN
            && s.starts_with(PREFIX)
            && s[PREFIX.len()..].bytes().all(|b| ALPHABET.contains(&b));
        if ok {
            Ok(PaymentCode(s))
        } else {
            Err("mã thanh toán không hợp lệ".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PaymentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Every code-shaped run in a transfer description, in order: case-insensitive, and
/// ignoring the spaces, dots and dashes that banks and payers insert
/// (`MBVCB.3278907687.CL7K3QX9.CT tu …`, `cl 7k3 qx9`). Matching against stored codes
/// decides which candidate, if any, is ours.
pub fn candidates(description: &str) -> Vec<PaymentCode> {
    let squeezed: Vec<u8> = description
        .bytes()
        .filter(|b| b.is_ascii_alphanumeric())
        .map(|b| b.to_ascii_uppercase())
        .collect();
    let n = PREFIX.len() + BODY_LEN;
    let mut out: Vec<PaymentCode> = Vec::new();
    for start in 0..squeezed.len().saturating_sub(n - 1) {
        let w = &squeezed[start..start + n];
        if &w[..2] == PREFIX.as_bytes() && w[2..].iter().all(|b| ALPHABET.contains(b)) {
            let code = PaymentCode(String::from_utf8(w.to_vec()).expect("ascii"));
            if !out.contains(&code) {
                out.push(code);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_parse_and_avoid_ambiguous_characters() {
        for _ in 0..500 {
            let c = PaymentCode::generate();
            assert_eq!(PaymentCode::parse(c.as_str()).unwrap(), c);
            assert!(!c.as_str()[2..].contains(['0', 'O', '1', 'I', 'L']));
        }
        assert!(PaymentCode::parse("CL0K3QX9").is_err());
        assert_eq!(
            PaymentCode::parse(" cl7k3qx9 ").unwrap().as_str(),
            "CL7K3QX9"
        );
    }

    #[test]
    fn found_in_what_banks_send() {
        let cases = [
            "MBVCB.3278907687.CL7K3QX9.CT tu 0123 toi 4567",
            "cl7k3qx9",
            "Thanh toan CL7K3QX9",
            "CL 7K3 QX9 chuyen tien",
            "CL.7K3QX9-FT23",
            "NGUYEN VAN A chuyen tien CL7K3QX9 qua Napas 247",
        ];
        for d in cases {
            assert!(
                candidates(d).contains(&PaymentCode::parse("CL7K3QX9").unwrap()),
                "{d}"
            );
        }
        assert!(candidates("chuyen tien mua hang").is_empty());
        assert!(candidates("").is_empty());
    }
}
