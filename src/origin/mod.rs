//! Origin tracing: production batches ("lô") of a product, their public origin pages, the
//! GS1 Digital Link a label's QR code holds, and the labels themselves (`label`).
//!
//! Rules kept here: a batch code is URL-safe, upper-case and at most 20 characters (GS1
//! AI 10) and never changes once given; food needs an expiry date; a batch carries no OCOP
//! certificate of its own (the product's verified one is shown); once labels were printed a batch is
//! never edited in place — a correction is a new revision and the origin page shows them all.

pub mod label;
pub mod scans;
pub mod store;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::domain::Gtin;
use crate::domain::text::{clean_line, clean_text, fold};
use crate::error::{AppError, FieldErrors};

/// A batch code as printed on labels and in `/truy-xuat/{code}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
pub struct BatchCode(String);

pub const MAX_CODE_LEN: usize = 20;

impl BatchCode {
    /// Letters, digits, `-`, `.` and `_` (the URI-unreserved set minus `~`), starting with a
    /// letter or digit; lower case is accepted and stored upper case.
    pub fn parse(input: &str) -> Result<BatchCode, String> {
        let s = input.trim().to_ascii_uppercase();
        let ok = !s.is_empty()
            && s.len() <= MAX_CODE_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
            && s.as_bytes()[0].is_ascii_alphanumeric();
        if ok {
            Ok(BatchCode(s))
        } else {
            Err(format!(
                "Mã lô gồm tối đa {MAX_CODE_LEN} chữ cái không dấu, chữ số hoặc dấu - . _ (ví dụ PD-241130-03)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl BatchCode {
    /// What a search box holds when someone typed a label's code (`PD-261206-01`): one
    /// token with a dash, a letter and a digit. Plain words are never codes.
    pub fn typed_in_search(q: &str) -> Option<BatchCode> {
        let t = q.trim();
        let looks = !t.contains(char::is_whitespace)
            && t.contains('-')
            && t.bytes().any(|b| b.is_ascii_digit())
            && t.bytes().any(|b| b.is_ascii_alphabetic());
        looks.then(|| BatchCode::parse(t).ok()).flatten()
    }
}

impl std::fmt::Display for BatchCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The start of generated codes: the initials of the village's name ("Phú Đôi" → "PD").
pub fn code_prefix(village_name: &str) -> String {
    let initials: String = fold(village_name)
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter_map(|w| w.chars().next())
        .take(4)
        .collect::<String>()
        .to_ascii_uppercase();
    if initials.is_empty() {
        "LO".into()
    } else {
        initials
    }
}

/// The village initials of a code in the generated form (`PD-241130-03` → `PD`), if it is
/// in that form: such codes belong to the village whose initials they carry.
pub fn generated_prefix(code: &str) -> Option<&str> {
    let mut parts = code.split('-');
    let (p, d, n) = (parts.next()?, parts.next()?, parts.next()?);
    let ok = parts.next().is_none()
        && (1..=4).contains(&p.len())
        && p.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && d.len() == 6
        && d.bytes().all(|b| b.is_ascii_digit())
        && (2..=3).contains(&n.len())
        && n.bytes().all(|b| b.is_ascii_digit());
    ok.then_some(p)
}

/// `PD-241130-03`: village initials, production date, the batch's number that day.
pub fn generated_code(prefix: &str, produced_on: NaiveDate, n: u32) -> String {
    format!("{prefix}-{}-{n:02}", produced_on.format("%y%m%d"))
}

/// Categories whose goods are eaten or drunk: their batches need an expiry date.
pub fn is_food_category(category: &str) -> bool {
    const FOOD: [&str; 21] = [
        "gao",
        "nong san",
        "mat ong",
        "long nhan",
        "nhan",
        "thuc pham",
        "che",
        "tra",
        "banh",
        "keo",
        "mut",
        "mam",
        "nuoc mam",
        "ruou",
        "do an",
        "do uong",
        "dac san",
        "hat",
        "mien",
        "bun",
        "pho",
    ];
    let c = fold(category);
    let words: Vec<&str> = c.split_whitespace().collect();
    FOOD.iter().any(|f| {
        let fw: Vec<&str> = f.split(' ').collect();
        words.windows(fw.len()).any(|w| w == fw.as_slice())
    })
}

/// One input of a batch and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InputSource {
    pub material: String,
    pub source: String,
}

/// What a seller sends for a batch, as text (forms) or JSON values turned to text.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BatchInput {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub produced_on: String,
    #[serde(default)]
    pub quantity: String,
    #[serde(default)]
    pub maker: String,
    /// Form: one input per line, "material: source".
    #[serde(default)]
    pub inputs: String,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub expires_on: String,
    /// Why a printed batch is corrected.
    #[serde(default)]
    pub reason: String,
}

/// What the rules need to know about the product a batch belongs to.
#[derive(Debug, Clone, Copy)]
pub struct ProductRules {
    pub food: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BatchFields {
    pub code: Option<BatchCode>,
    pub produced_on: NaiveDate,
    pub quantity: i64,
    pub maker: String,
    pub inputs: Vec<InputSource>,
    pub notes: String,
    pub expires_on: Option<NaiveDate>,
    pub reason: String,
}

/// `2024-11-30` (date inputs, JSON) or `30/11/2024` (typed the Vietnamese way).
pub fn parse_date(s: &str, what: &str) -> Result<NaiveDate, String> {
    let s = s.trim();
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%d/%m/%Y"))
        .map_err(|_| format!("{what} có dạng ngày/tháng/năm, ví dụ 30/11/2024"))
}

/// Parse "material: source" lines.
pub fn parse_inputs(text: &str) -> Result<Vec<InputSource>, String> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((m, s)) = line.split_once(':') else {
            return Err(format!(
                "Dòng “{line}”: ghi nguyên liệu, dấu hai chấm rồi nguồn gốc (ví dụ Sợi polyester: Công ty Dệt Nam Định)"
            ));
        };
        out.push(InputSource {
            material: clean_line(m, "tên nguyên liệu", 80)?,
            source: clean_line(s, "nguồn gốc nguyên liệu", 160)?,
        });
    }
    if out.len() > 30 {
        return Err("Tối đa 30 nguyên liệu cho một lô".into());
    }
    Ok(out)
}

/// The form text of a list of inputs.
pub fn inputs_text(inputs: &[InputSource]) -> String {
    inputs
        .iter()
        .map(|i| format!("{}: {}", i.material, i.source))
        .collect::<Vec<_>>()
        .join("\n")
}

impl BatchInput {
    /// Validate against the product's rules; `today` is the Vietnamese calendar date.
    pub fn parse(&self, rules: ProductRules, today: NaiveDate) -> Result<BatchFields, AppError> {
        let mut e = FieldErrors::new();
        let code = if self.code.trim().is_empty() {
            None
        } else {
            e.check("code", BatchCode::parse(&self.code))
        };
        let produced = e.check(
            "produced_on",
            parse_date(&self.produced_on, "Ngày sản xuất").and_then(|d| {
                if d > today {
                    Err("Ngày sản xuất không thể ở tương lai".into())
                } else if d.year() < 2000 {
                    Err("Ngày sản xuất phải từ năm 2000".into())
                } else {
                    Ok(d)
                }
            }),
        );
        let quantity = e.check(
            "quantity",
            match self.quantity.trim().parse::<i64>() {
                Ok(n) if (1..=10_000_000).contains(&n) => Ok(n),
                _ => Err("Số lượng của lô là số nguyên từ 1 đến 10.000.000"),
            },
        );
        let maker = e.check("maker", clean_line(&self.maker, "hộ sản xuất", 120));
        let inputs = e.check("inputs", parse_inputs(&self.inputs));
        let notes = e.check("notes", clean_text(&self.notes, "ghi chú", 2000));
        let expires = if self.expires_on.trim().is_empty() {
            if rules.food {
                e.add("expires_on", "Hàng thực phẩm cần hạn sử dụng cho từng lô");
            }
            None
        } else {
            e.check(
                "expires_on",
                parse_date(&self.expires_on, "Hạn sử dụng").and_then(|d| match produced {
                    Some(p) if d <= p => Err("Hạn sử dụng phải sau ngày sản xuất".to_string()),
                    _ => Ok(d),
                }),
            )
        };
        let reason = e.check("reason", clean_text(&self.reason, "lý do sửa", 300));
        e.into_result()?;
        Ok(BatchFields {
            code,
            produced_on: produced.unwrap(),
            quantity: quantity.unwrap(),
            maker: maker.unwrap(),
            inputs: inputs.unwrap(),
            notes: notes.unwrap(),
            expires_on: expires,
            reason: reason.unwrap(),
        })
    }
}

/// Percent-encode what is outside the URI's unreserved set (GS1 Digital Link, AI 10).
fn encode_ai(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What the label's QR code holds: a GS1 Digital Link with a GTIN, else the origin page.
pub fn qr_payload(public_url: &str, gtin: Option<&Gtin>, code: &str) -> String {
    let base = public_url.trim_end_matches('/');
    match gtin {
        Some(g) => format!("{base}/01/{}/10/{}", g.as_str(), encode_ai(code)),
        None => format!("{base}/truy-xuat/{}", encode_ai(code)),
    }
}

/// The GS1 Digital Link of a product (no batch).
pub fn product_link(public_url: &str, gtin: &Gtin) -> String {
    format!("{}/01/{}", public_url.trim_end_matches('/'), gtin.as_str())
}

pub use crate::domain::today_vn;

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn codes() {
        assert_eq!(
            BatchCode::parse(" pd-241130-03 ").unwrap().as_str(),
            "PD-241130-03"
        );
        assert!(BatchCode::parse("").is_err());
        assert!(BatchCode::parse("LÔ-1").is_err());
        assert!(BatchCode::parse("a/b").is_err());
        assert!(BatchCode::parse("-A").is_err());
        assert!(BatchCode::parse(&"A".repeat(21)).is_err());
        assert!(BatchCode::parse(&"A".repeat(20)).is_ok());
        assert_eq!(code_prefix("Phú Đôi"), "PD");
        assert_eq!(code_prefix("Làng nghề Bát Tràng"), "LNBT");
        assert_eq!(code_prefix("—"), "LO");
        assert_eq!(generated_code("PD", d("2024-11-30"), 3), "PD-241130-03");
        assert_eq!(generated_prefix("PD-241130-03"), Some("PD"));
        assert_eq!(generated_prefix("TT-261206-101"), Some("TT"));
        assert_eq!(generated_prefix("LNX-2026.A_1"), None);
        assert_eq!(generated_prefix("PD-2411-03"), None);
    }

    #[test]
    fn food_categories() {
        assert!(is_food_category("Mật ong"));
        assert!(is_food_category("Gạo đặc sản"));
        assert!(is_food_category("Long nhãn sấy"));
        assert!(!is_food_category("Màn tuyn"));
        assert!(!is_food_category("Đồ gỗ"));
        assert!(!is_food_category("Khảm trai"));
    }

    #[test]
    fn batch_rules() {
        let today = d("2026-12-01");
        let mut b = BatchInput {
            produced_on: "30/11/2026".into(),
            quantity: "120".into(),
            maker: "Hộ bà Lan".into(),
            inputs: "Sợi polyester: Công ty Dệt Nam Định\nChỉ viền: chợ Phú Đôi".into(),
            ..Default::default()
        };
        let plain = ProductRules { food: false };
        let f = b.parse(plain, today).unwrap();
        assert_eq!(f.inputs.len(), 2);
        assert_eq!(f.inputs[1].source, "chợ Phú Đôi");
        let food = ProductRules { food: true };
        let Err(AppError::Validation(e)) = b.parse(food, today) else {
            panic!()
        };
        assert!(e.get("expires_on").is_some());
        b.expires_on = "2026-11-01".into();
        let Err(AppError::Validation(e)) = b.parse(plain, today) else {
            panic!()
        };
        assert!(e.get("expires_on").is_some());
        b.expires_on = "2027-11-30".into();
        let f = b.parse(food, today).unwrap();
        assert!(f.expires_on.is_some());
        b.produced_on = "2026-12-02".into();
        b.inputs = "no source here".into();
        let Err(AppError::Validation(e)) = b.parse(plain, today) else {
            panic!()
        };
        assert!(e.get("produced_on").is_some() && e.get("inputs").is_some());
    }

    #[test]
    fn payloads() {
        let g = Gtin::parse("8936042000123").unwrap();
        assert_eq!(
            qr_payload("https://cholang.vn/", Some(&g), "PD-241130-03"),
            "https://cholang.vn/01/08936042000123/10/PD-241130-03"
        );
        assert_eq!(
            qr_payload("https://cholang.vn", None, "PD-1"),
            "https://cholang.vn/truy-xuat/PD-1"
        );
        assert_eq!(encode_ai("A B/é"), "A%20B%2F%C3%A9");
    }
}
