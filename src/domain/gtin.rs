use std::fmt;

/// A GS1 Global Trade Item Number: 8, 12, 13 or 14 digits whose last digit is the check
/// digit (weights 3, 1, 3, … from the right, `(10 − sum mod 10) mod 10`). Stored and used
/// as GTIN-14, left-padded with zeros, as GS1 Digital Link wants it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Gtin(String);

impl Gtin {
    pub fn parse(input: &str) -> Result<Gtin, String> {
        let digits: String = input.chars().filter(|c| !c.is_whitespace()).collect();
        if !matches!(digits.len(), 8 | 12 | 13 | 14) || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err("Mã GTIN gồm 8, 12, 13 hoặc 14 chữ số (mã vạch in trên bao bì)".into());
        }
        let (body, check) = digits.split_at(digits.len() - 1);
        if check_digit(body) != check.as_bytes()[0] - b'0' {
            return Err("Mã GTIN sai số kiểm tra (chữ số cuối); hãy xem lại mã vạch".into());
        }
        Ok(Gtin(format!("{digits:0>14}")))
    }

    /// The 14-digit form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The GS1 check digit of the digits before it.
pub fn check_digit(body: &str) -> u8 {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

impl fmt::Display for Gtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Gtin;

    #[test]
    fn spec_vectors() {
        // ../shared/specs/traceability.md
        assert_eq!(
            Gtin::parse("09521234543213").unwrap().as_str(),
            "09521234543213"
        );
        assert_eq!(
            Gtin::parse("8934567138000").unwrap().as_str(),
            "08934567138000"
        );
        assert_eq!(
            Gtin::parse("8936042000123").unwrap().as_str(),
            "08936042000123"
        );
        assert!(Gtin::parse("8936042000124").is_err());
    }

    #[test]
    fn lengths_and_characters() {
        assert_eq!(Gtin::parse("96385074").unwrap().as_str(), "00000096385074");
        assert_eq!(
            Gtin::parse("036000291452").unwrap().as_str(),
            "00036000291452"
        );
        assert!(Gtin::parse("893604200012").is_err()); // 12 digits, wrong check
        assert!(Gtin::parse("1234567").is_err());
        assert!(Gtin::parse("89360420001a3").is_err());
        assert!(Gtin::parse("").is_err());
        assert!(Gtin::parse("893 6042 000123").is_ok());
    }
}
