use std::fmt;

/// A URL slug: lower-case ASCII letters, digits and single dashes, 2 to 80 characters.
/// Built from Vietnamese names by folding diacritics: "Màn tuyn Phú Đôi" → "man-tuyn-phu-doi".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

impl Slug {
    pub fn parse(input: &str) -> Result<Slug, String> {
        let s = input.trim();
        let ok = (2..=80).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
            && !s.contains("--");
        if ok {
            Ok(Slug(s.to_string()))
        } else {
            Err("đường dẫn chỉ gồm chữ thường không dấu, số và dấu gạch ngang".into())
        }
    }

    /// Derive a slug from any name; falls back to "muc" for names with no letters or digits.
    pub fn from_name(name: &str) -> Slug {
        let folded = super::text::fold(name);
        let mut out = String::new();
        for c in folded.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c);
            } else if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        }
        let mut out = out.trim_end_matches('-').to_string();
        if out.len() > 60 {
            out.truncate(60);
            out = out.trim_end_matches('-').to_string();
        }
        if out.len() < 2 {
            out = format!("muc-{out}").trim_end_matches('-').to_string();
        }
        Slug(out)
    }

    /// The same slug with a numeric suffix, for resolving collisions.
    pub fn with_suffix(&self, n: u32) -> Slug {
        Slug(format!("{}-{n}", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_vietnamese_names() {
        assert_eq!(
            Slug::from_name("Màn tuyn Phú Đôi").as_str(),
            "man-tuyn-phu-doi"
        );
        assert_eq!(
            Slug::from_name("  Ghế gỗ (xoan) 1m2 ").as_str(),
            "ghe-go-xoan-1m2"
        );
        assert_eq!(Slug::from_name("★").as_str(), "muc");
        assert_eq!(Slug::from_name("Đồ gỗ").with_suffix(2).as_str(), "do-go-2");
    }

    #[test]
    fn parse_rejects_unsafe() {
        assert!(Slug::parse("man-tuyn").is_ok());
        for s in ["", "a", "Man", "màn", "a--b", "-a", "a/b", "a b"] {
            assert!(Slug::parse(s).is_err(), "{s}");
        }
    }
}
