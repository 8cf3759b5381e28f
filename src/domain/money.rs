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

    /// Parse what a person typed (see [`parse_amount`]); zero is refused.
    pub fn parse(input: &str) -> Result<Vnd, String> {
        Vnd::new(parse_amount(input)?)
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

/// The one parser for an amount of đồng as people type it, on every form and query:
/// `200000`, `200.000`, `200,000`, `200 000`, optionally with `đ`, `₫` or `VND`, and
/// `200k`, `200 nghìn` / `ngàn` (× 1.000) or `2 triệu` / `2tr` (× 1.000.000). Group separators
/// must split the number into groups of three digits; decimals are refused (`180.5` is not a
/// VND amount), except before a multiplier (`1,5 triệu` = 1.500.000). Zero is a number here
/// (a "from 0" filter); whether it is allowed is the caller's rule.
pub fn parse_amount(input: &str) -> Result<i64, String> {
    const BAD: &str = "số tiền là số nguyên (đồng), ví dụ 200.000 hoặc 200k";
    let lower = input.trim().to_lowercase();
    let mut s = lower
        .trim_end_matches(['đ', '₫'])
        .trim_end_matches("vnd")
        .trim_end_matches("đồng")
        .trim();
    if s.is_empty() {
        return Err("vui lòng nhập số tiền".into());
    }
    let mut multiplier = 1_i64;
    for (suffix, m) in [
        ("nghìn", 1_000),
        ("ngàn", 1_000),
        ("k", 1_000),
        ("triệu", 1_000_000),
        ("tr", 1_000_000),
    ] {
        if let Some(rest) = s.strip_suffix(suffix) {
            s = rest.trim();
            multiplier = m;
            break;
        }
    }
    if s.is_empty() {
        return Err(BAD.into());
    }
    if multiplier > 1 {
        // "1,5 triệu", "2.5k": one decimal separator, then whole đồng after multiplying.
        if let Some((whole, frac)) = s.split_once([',', '.'])
            && !frac.contains([',', '.'])
            && frac.len() < 3
            && !whole.is_empty()
            && whole
                .chars()
                .chain(frac.chars())
                .all(|c| c.is_ascii_digit())
        {
            let scale = 10_i64.pow(frac.len() as u32);
            let n: i64 = format!("{whole}{frac}")
                .parse()
                .map_err(|_| BAD.to_string())?;
            let v = n.checked_mul(multiplier).ok_or("số tiền quá lớn")?;
            if v % scale != 0 {
                return Err(BAD.into());
            }
            return bounded(v / scale);
        }
    }
    let groups: Vec<&str> = s.split(['.', ',', ' ']).collect();
    let well_grouped = groups.len() == 1
        || (!groups[0].is_empty()
            && groups[0].len() <= 3
            && groups[1..].iter().all(|g| g.len() == 3));
    if !well_grouped
        || !groups
            .iter()
            .all(|g| !g.is_empty() && g.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(BAD.into());
    }
    let n: i64 = groups
        .concat()
        .parse()
        .map_err(|_| "số tiền quá lớn".to_string())?;
    bounded(n.checked_mul(multiplier).ok_or("số tiền quá lớn")?)
}

fn bounded(n: i64) -> Result<i64, String> {
    if n > MAX_VND {
        Err("số tiền quá lớn".into())
    } else {
        Ok(n)
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
            "180k",
            "180 K",
            "180 nghìn",
            "180 ngàn",
            "180.000 VND",
            "180.000 đồng",
            "0,18 triệu",
        ] {
            assert_eq!(Vnd::parse(s).unwrap().get(), 180_000, "{s}");
        }
        assert_eq!(parse_amount("1,5 triệu"), Ok(1_500_000));
        assert_eq!(parse_amount("2tr"), Ok(2_000_000));
        assert_eq!(parse_amount("2.5k"), Ok(2_500));
        assert_eq!(parse_amount("0"), Ok(0));
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
            "k",
            "1,2345 triệu",
            "1..000",
            "200kk",
        ] {
            assert!(Vnd::parse(s).is_err(), "{s}");
        }
        assert!(Vnd::new(0).is_err());
        assert!(Vnd::new(MAX_VND + 1).is_err());
    }
}
