//! VietQR (NAPAS 247 over EMVCo merchant-presented QR) payloads for bank transfers.
//!
//! Layout (spec §1): `00`=01, `01`=11 static / 12 dynamic, `38` = { `00` NAPAS GUID
//! `A000000727`, `01` = { `00` BIN, `01` account }, `02` service code }, `53`=704 (VND),
//! `54` amount, `58`=VN, `62` = { `01` bill number, `08` purpose }, `63` CRC-16/CCITT-FALSE
//! over everything before it including `6304`, as 4 uppercase zero-padded hex digits.

use super::banks::BankBin;
use crate::domain::Vnd;

pub const NAPAS_GUID: &str = "A000000727";
pub const SERVICE_TO_ACCOUNT: &str = "QRIBFTTA";
pub const MAX_PURPOSE: usize = 25;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    #[error("field {0} is longer than 99 characters")]
    TooLong(String),
    #[error("account number must be 1 to 19 letters or digits")]
    BadAccount,
    #[error("malformed TLV at position {0}")]
    Malformed(usize),
    #[error("CRC mismatch: payload says {stated}, computed {computed}")]
    BadCrc { stated: String, computed: String },
    #[error("missing field {0}")]
    Missing(&'static str),
}

/// CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in data {
        crc ^= (byte as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

fn tlv(out: &mut String, id: &str, value: &str) -> Result<(), QrError> {
    let len = value.chars().count();
    if len > 99 {
        return Err(QrError::TooLong(id.to_string()));
    }
    out.push_str(id);
    out.push_str(&format!("{len:02}"));
    out.push_str(value);
    Ok(())
}

/// The transfer description as banks accept it in tag 62-08: Vietnamese folded to ASCII,
/// only letters, digits and single spaces, at most 25 characters.
pub fn fold_purpose(s: &str) -> String {
    let folded = crate::domain::text::fold(s).to_uppercase();
    let cleaned: String = folded
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
        .collect();
    let mut out = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    out.truncate(MAX_PURPOSE);
    out.trim_end().to_string()
}

/// What goes into a bank-transfer QR.
#[derive(Debug, Clone)]
pub struct TransferQr {
    pub bin: BankBin,
    pub account: String,
    /// None for a static QR where the payer types the amount.
    pub amount: Option<Vnd>,
    pub bill_number: Option<String>,
    /// Already folded (see `fold_purpose`); written as given.
    pub purpose: Option<String>,
}

impl TransferQr {
    pub fn payload(&self) -> Result<String, QrError> {
        if self.account.is_empty()
            || self.account.len() > 19
            || !self.account.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(QrError::BadAccount);
        }
        let dynamic = self.amount.is_some();
        let mut beneficiary = String::new();
        tlv(&mut beneficiary, "00", self.bin.as_str())?;
        tlv(&mut beneficiary, "01", &self.account)?;
        let mut merchant = String::new();
        tlv(&mut merchant, "00", NAPAS_GUID)?;
        tlv(&mut merchant, "01", &beneficiary)?;
        tlv(&mut merchant, "02", SERVICE_TO_ACCOUNT)?;
        let mut additional = String::new();
        if let Some(b) = &self.bill_number {
            tlv(&mut additional, "01", b)?;
        }
        if let Some(p) = &self.purpose {
            tlv(&mut additional, "08", p)?;
        }

        let mut out = String::new();
        tlv(&mut out, "00", "01")?;
        tlv(&mut out, "01", if dynamic { "12" } else { "11" })?;
        tlv(&mut out, "38", &merchant)?;
        tlv(&mut out, "53", "704")?;
        if let Some(a) = self.amount {
            tlv(&mut out, "54", &a.get().to_string())?;
        }
        tlv(&mut out, "58", "VN")?;
        if !additional.is_empty() {
            tlv(&mut out, "62", &additional)?;
        }
        out.push_str("6304");
        let crc = crc16(out.as_bytes());
        out.push_str(&format!("{crc:04X}"));
        Ok(out)
    }
}

/// A parsed data object: its ID and value, with nested objects for templates 26–51 and 62.
#[derive(Debug, Clone, PartialEq)]
pub struct DataObject {
    pub id: String,
    pub value: String,
}

/// Split a TLV string into data objects (lengths are counted in characters).
pub fn parse_tlv(s: &str) -> Result<Vec<DataObject>, QrError> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        if i + 4 > chars.len() {
            return Err(QrError::Malformed(i));
        }
        let id: String = chars[i..i + 2].iter().collect();
        let len_s: String = chars[i + 2..i + 4].iter().collect();
        if !id.chars().all(|c| c.is_ascii_digit()) {
            return Err(QrError::Malformed(i));
        }
        let len: usize = len_s.parse().map_err(|_| QrError::Malformed(i + 2))?;
        if i + 4 + len > chars.len() {
            return Err(QrError::Malformed(i));
        }
        out.push(DataObject {
            id,
            value: chars[i + 4..i + 4 + len].iter().collect(),
        });
        i += 4 + len;
    }
    Ok(out)
}

/// The fields of a VietQR payload that matter to a payer, read back.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParsedQr {
    pub dynamic: bool,
    pub guid: String,
    pub bin: String,
    pub account: String,
    pub service: Option<String>,
    pub currency: String,
    pub amount: Option<i64>,
    pub country: String,
    pub bill_number: Option<String>,
    pub purpose: Option<String>,
}

fn find<'a>(objs: &'a [DataObject], id: &str) -> Option<&'a str> {
    objs.iter().find(|o| o.id == id).map(|o| o.value.as_str())
}

/// Parse and check a payload: well-formed TLV in any tag order, CRC last and correct,
/// the NAPAS template present with its service code beside (not inside) the beneficiary.
pub fn parse(payload: &str) -> Result<ParsedQr, QrError> {
    let top = parse_tlv(payload)?;
    let last = top.last().ok_or(QrError::Missing("63"))?;
    if last.id != "63" || last.value.len() != 4 {
        return Err(QrError::Missing("63"));
    }
    let signed = &payload[..payload.len() - 4];
    let computed = format!("{:04X}", crc16(signed.as_bytes()));
    if computed != last.value.to_uppercase() {
        return Err(QrError::BadCrc {
            stated: last.value.clone(),
            computed,
        });
    }
    if top.first().map(|o| (o.id.as_str(), o.value.as_str())) != Some(("00", "01")) {
        return Err(QrError::Missing("00"));
    }
    let merchant = parse_tlv(find(&top, "38").ok_or(QrError::Missing("38"))?)?;
    let beneficiary = parse_tlv(find(&merchant, "01").ok_or(QrError::Missing("38-01"))?)?;
    let additional = match find(&top, "62") {
        Some(v) => parse_tlv(v)?,
        None => vec![],
    };
    Ok(ParsedQr {
        dynamic: find(&top, "01") == Some("12"),
        guid: find(&merchant, "00")
            .ok_or(QrError::Missing("38-00"))?
            .to_string(),
        bin: find(&beneficiary, "00")
            .ok_or(QrError::Missing("38-01-00"))?
            .to_string(),
        account: find(&beneficiary, "01")
            .ok_or(QrError::Missing("38-01-01"))?
            .to_string(),
        service: find(&merchant, "02").map(str::to_string),
        currency: find(&top, "53").ok_or(QrError::Missing("53"))?.to_string(),
        amount: match find(&top, "54") {
            Some(a) => Some(a.parse().map_err(|_| QrError::Missing("54"))?),
            None => None,
        },
        country: find(&top, "58").ok_or(QrError::Missing("58"))?.to_string(),
        bill_number: find(&additional, "01").map(str::to_string),
        purpose: find(&additional, "08").map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qr(
        bin: &str,
        account: &str,
        amount: Option<i64>,
        bill: Option<&str>,
        purpose: Option<&str>,
    ) -> String {
        TransferQr {
            bin: BankBin::parse(bin).unwrap(),
            account: account.into(),
            amount: amount.map(|a| Vnd::new(a).unwrap()),
            bill_number: bill.map(str::to_string),
            purpose: purpose.map(str::to_string),
        }
        .payload()
        .unwrap()
    }

    #[test]
    fn crc_check_value() {
        assert_eq!(crc16(b"123456789"), 0x29B1);
    }

    /// Published payloads (spec §6.1, V-1 … V-6), rebuilt byte for byte and parsed back.
    #[test]
    fn published_vectors_byte_for_byte() {
        let cases = [
            (
                qr(
                    "970415",
                    "113366668888",
                    Some(79000),
                    None,
                    Some("Ung Ho Quy Vac Xin"),
                ),
                "00020101021238560010A0000007270126000697041501121133666688880208QRIBFTTA53037045405790005802VN62220818Ung Ho Quy Vac Xin63043ACF",
            ),
            (
                qr(
                    "970436",
                    "1017595600",
                    Some(180000),
                    None,
                    Some("thanh toan don hang"),
                ),
                "00020101021238540010A00000072701240006970436011010175956000208QRIBFTTA530370454061800005802VN62230819thanh toan don hang630470FA",
            ),
            (
                qr(
                    "970416",
                    "224528479",
                    Some(10000),
                    Some("NPS6869"),
                    Some("TRANSFER TO SOMEONE"),
                ),
                "00020101021238530010A0000007270123000697041601092245284790208QRIBFTTA53037045405100005802VN62340107NPS68690819TRANSFER TO SOMEONE6304AC13",
            ),
            (
                qr("970423", "0099999999", None, None, None),
                "00020101021138540010A00000072701240006970423011000999999990208QRIBFTTA53037045802VN6304CBB4",
            ),
            (
                qr(
                    "970415",
                    "0011001932418",
                    Some(120000),
                    None,
                    Some("ung ho lu lut"),
                ),
                "00020101021238570010A00000072701270006970415011300110019324180208QRIBFTTA530370454061200005802VN62170813ung ho lu lut6304C15C",
            ),
            (
                qr(
                    "970422",
                    "0023457923442ASDFLJ",
                    Some(40123),
                    None,
                    Some("chuyen khoan alsdkf laksj"),
                ),
                "00020101021238630010A0000007270133000697042201190023457923442ASDFLJ0208QRIBFTTA53037045405401235802VN62290825chuyen khoan alsdkf laksj6304E5DB",
            ),
        ];
        for (built, published) in cases {
            assert_eq!(built, published);
            let p = parse(published).unwrap();
            assert_eq!(p.guid, NAPAS_GUID);
            assert_eq!(p.service.as_deref(), Some(SERVICE_TO_ACCOUNT));
            assert_eq!((p.currency.as_str(), p.country.as_str()), ("704", "VN"));
            assert_eq!(p.dynamic, p.amount.is_some());
        }
        let p = parse(&qr(
            "970416",
            "224528479",
            Some(10000),
            Some("NPS6869"),
            Some("TRANSFER TO SOMEONE"),
        ))
        .unwrap();
        assert_eq!(
            (p.bin.as_str(), p.account.as_str(), p.amount),
            ("970416", "224528479", Some(10000))
        );
        assert_eq!(p.bill_number.as_deref(), Some("NPS6869"));
        assert_eq!(p.purpose.as_deref(), Some("TRANSFER TO SOMEONE"));
    }

    #[test]
    fn parses_merchant_qr_in_any_layout() {
        // V-7: a QRPUSH merchant QR (no service code, extra tags 52/59/60, 62-03).
        let v7 = "00020101021138480010A00000072701300006970403011621129950446040255204581253037045802VN5910PHUONG CAC6005HANOI62110307NPS686963045802";
        let p = parse(v7).unwrap();
        assert_eq!(p.bin, "970403");
        assert_eq!(p.account, "2112995044604025");
        assert_eq!(p.service, None);
        assert!(!p.dynamic);
    }

    /// Public payloads that do not verify (spec §6.2) must be refused.
    #[test]
    fn refuses_broken_published_payloads() {
        let subiz_final = "0002010102113838000697042201120023457923440208QRIBFTTA530370454061800005802VN62160814ung ho bao lut6304E69F";
        assert!(parse(subiz_final).is_err());
        let payos_sample = "00020101021238570010A000000727012700069704220113113366668888020899998888530370454061000005802VN62230819THANH TOAN DON HANG6304BE36";
        assert!(parse(payos_sample).is_err());
        // one changed byte breaks the CRC
        let good = qr("970436", "1017595600", Some(180000), None, Some("CL7K3QX9"));
        let tampered = good.replacen("180000", "180001", 1);
        assert!(matches!(parse(&tampered), Err(QrError::BadCrc { .. })));
    }

    #[test]
    fn crc_is_zero_padded() {
        // Search for a payload whose CRC has a leading zero and check it keeps 4 digits.
        let found = (1..5000)
            .map(|n| qr("970436", "1017595600", Some(n), None, None))
            .find(|p| p[p.len() - 4..].starts_with('0'));
        let p = found.expect("some amount gives a CRC below 0x1000");
        assert_eq!(p.len() - p.rfind("6304").unwrap(), 8);
        parse(&p).unwrap();
    }

    #[test]
    fn purpose_is_folded_ascii_and_bounded() {
        assert_eq!(
            fold_purpose("Thanh toán đơn CL7K3QX9"),
            "THANH TOAN DON CL7K3QX9"
        );
        assert_eq!(fold_purpose("  ủng hộ   lũ lụt!! "), "UNG HO LU LUT");
        assert!(fold_purpose("Một câu rất dài vượt quá hai mươi lăm ký tự").len() <= 25);
        let long_account = TransferQr {
            bin: BankBin::parse("970436").unwrap(),
            account: "12345678901234567890".into(),
            amount: None,
            bill_number: None,
            purpose: None,
        };
        assert_eq!(long_account.payload(), Err(QrError::BadAccount));
    }
}
