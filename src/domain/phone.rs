use std::fmt;

/// A Vietnamese mobile number, stored in national form `0xxxxxxxxx` (10 digits).
/// Accepts `+84…`, `84…`, spaces, dots and dashes as people write them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneVn(String);

impl PhoneVn {
    pub fn parse(input: &str) -> Result<PhoneVn, String> {
        let cleaned: String = input
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')'))
            .collect();
        let national = if let Some(rest) = cleaned.strip_prefix("+84") {
            format!("0{rest}")
        } else if cleaned.starts_with("84") && cleaned.len() == 11 {
            format!("0{}", &cleaned[2..])
        } else {
            cleaned
        };
        let ok = national.len() == 10
            && national.starts_with('0')
            && national.chars().all(|c| c.is_ascii_digit())
            && matches!(national.as_bytes()[1], b'3' | b'5' | b'7' | b'8' | b'9');
        if ok {
            Ok(PhoneVn(national))
        } else {
            Err("số điện thoại di động Việt Nam không hợp lệ (ví dụ 0912 345 678)".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// International form without `+`, as Zalo ZNS wants it: `84912345678`.
    pub fn international(&self) -> String {
        format!("84{}", &self.0[1..])
    }

    /// For logs: never a whole number.
    pub fn masked(&self) -> String {
        format!("{}****{}", &self.0[..3], &self.0[7..])
    }
}

impl fmt::Display for PhoneVn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_common_forms() {
        for s in [
            "0912345678",
            "0912 345 678",
            "+84912345678",
            "84912345678",
            "091.234.5678",
        ] {
            assert_eq!(PhoneVn::parse(s).unwrap().as_str(), "0912345678", "{s}");
        }
        let p = PhoneVn::parse("0912345678").unwrap();
        assert_eq!(p.international(), "84912345678");
        assert_eq!(p.masked(), "091****678");
    }

    #[test]
    fn rejects_bad_numbers() {
        for s in [
            "",
            "12345",
            "0212345678",
            "09123456789",
            "09123a5678",
            "+1 202 555 0100",
        ] {
            assert!(PhoneVn::parse(s).is_err(), "{s}");
        }
    }
}
