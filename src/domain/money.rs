use std::fmt;

/// An amount of Vietnamese đồng. VND has no minor unit; amounts are whole numbers.
/// A `Vnd` is always positive: prices and payments of zero or less are rejected at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vnd(i64);

/// The largest amount accepted anywhere (one trillion đồng), far above any village price,
/// so that sums of many lines can never overflow an `i64`.
pub const MAX_VND: i64 = 1_000_000_000_000;

impl Vnd {
    pub fn new(amount: i64) -> Result<Vnd, String> {
        if amount <= 0 {
            Err("giá phải là số nguyên dương (đồng)".into())
        } else if amount > MAX_VND {
            Err("giá quá lớn".into())
        } else {
            Ok(Vnd(amount))
        }
    }

    /// Parse what a person typed: `180000`, `180.000`, `180,000`, `180 000`, optionally with
    /// `đ`, `₫` or `VND`. Decimals are refused (`180.5` is not a VND amount).
    pub fn parse(input: &str) -> Result<Vnd, String> {
        let s = input.trim();
        let s = s
            .trim_end_matches(['đ', '₫'])
            .trim_end_matches("VND")
            .trim_end_matches("vnd")
            .trim();
        if s.is_empty() {
            return Err("vui lòng nhập giá".into());
        }
        // Group separators must split the number into groups of exactly three digits.
        let groups: Vec<&str> = s.split(['.', ',', ' ']).collect();
        let well_grouped = groups.len() == 1
            || (!groups[0].is_empty()
                && groups[0].len() <= 3
                && groups[1..].iter().all(|g| g.len() == 3));
        if !well_grouped || !groups.iter().all(|g| g.chars().all(|c| c.is_ascii_digit())) {
            return Err("giá phải là số nguyên dương (đồng), ví dụ 180000".into());
        }
        let digits: String = groups.concat();
        let n: i64 = digits.parse().map_err(|_| "giá quá lớn".to_string())?;
        Vnd::new(n)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for Vnd {
    type Error = String;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        Vnd::new(v)
    }
}

/// Vietnamese display: `180.000 ₫`.
impl fmt::Display for Vnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_vnd(self.0))
    }
}

/// Format any amount (also zero or negative differences) the Vietnamese way.
pub fn format_vnd(amount: i64) -> String {
    let digits = amount.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    if amount < 0 {
        out.insert(0, '-');
    }
    out.push_str(" ₫");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_dots() {
        assert_eq!(Vnd::new(180_000).unwrap().to_string(), "180.000 ₫");
        assert_eq!(Vnd::new(1_250_000).unwrap().to_string(), "1.250.000 ₫");
        assert_eq!(Vnd::new(500).unwrap().to_string(), "500 ₫");
        assert_eq!(format_vnd(-20_000), "-20.000 ₫");
    }

    #[test]
    fn parses_what_people_type() {
        for s in [
            "180000",
            "180.000",
            "180,000",
            "180 000",
            "180.000 ₫",
            "180000đ",
        ] {
            assert_eq!(Vnd::parse(s).unwrap().get(), 180_000, "{s}");
        }
    }

    #[test]
    fn refuses_non_amounts() {
        for s in [
            "",
            "0",
            "-5",
            "18.5",
            "1.80000",
            "abc",
            "99999999999999999999",
        ] {
            assert!(Vnd::parse(s).is_err(), "{s}");
        }
        assert!(Vnd::new(0).is_err());
        assert!(Vnd::new(MAX_VND + 1).is_err());
    }
}
