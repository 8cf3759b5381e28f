use std::fmt;

/// An email address, trimmed and lower-cased; checked for a plausible shape only
/// (the real proof of an address is a message that arrives).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Email, String> {
        let s = input.trim().to_lowercase();
        let bad = || "địa chỉ email không hợp lệ".to_string();
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return Err(bad());
        }
        Ok(Email(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_lowercases() {
        assert_eq!(
            Email::parse(" Lan@PhuDoi.VN ").unwrap().as_str(),
            "lan@phudoi.vn"
        );
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "", "lan", "lan@", "@x.vn", "lan@x", "a b@x.vn", "a@x..vn", "a@@x.vn",
        ] {
            assert!(Email::parse(s).is_err(), "{s}");
        }
    }
}
