//! Bank identification numbers (BIN) of the NAPAS 247 network, for names on the payment page.
//! Source: the SBV/NAPAS BIN list as published by vietqr.io and subiz/vietqr (see the spec).

use std::fmt;

/// A 6-digit acquirer / beneficiary bank BIN, e.g. `970436` (Vietcombank).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BankBin(String);

impl BankBin {
    pub fn parse(s: &str) -> Result<BankBin, String> {
        let s = s.trim();
        if s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(BankBin(s.to_string()))
        } else {
            Err("mã BIN ngân hàng gồm đúng 6 chữ số (ví dụ 970436)".into())
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Short and legal name, when the BIN is in our table.
    pub fn bank(&self) -> Option<&'static Bank> {
        BANKS.iter().find(|b| b.bin == self.0)
    }
}

impl fmt::Display for BankBin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub struct Bank {
    pub bin: &'static str,
    pub short_name: &'static str,
    pub name: &'static str,
    pub code: &'static str,
}

macro_rules! banks {
    ($(($bin:literal, $short:literal, $name:literal, $code:literal)),* $(,)?) => {
        pub const BANKS: &[Bank] = &[$(Bank { bin: $bin, short_name: $short, name: $name, code: $code }),*];
    };
}

banks![
    (
        "970436",
        "Vietcombank",
        "Ngân hàng TMCP Ngoại thương Việt Nam",
        "VCB"
    ),
    (
        "970415",
        "VietinBank",
        "Ngân hàng TMCP Công thương Việt Nam",
        "ICB"
    ),
    (
        "970418",
        "BIDV",
        "Ngân hàng TMCP Đầu tư và Phát triển Việt Nam",
        "BIDV"
    ),
    (
        "970405",
        "Agribank",
        "Ngân hàng Nông nghiệp và Phát triển Nông thôn",
        "VBA"
    ),
    ("970407", "Techcombank", "Ngân hàng TMCP Kỹ thương", "TCB"),
    ("970422", "MB", "Ngân hàng TMCP Quân đội", "MB"),
    ("970416", "ACB", "Ngân hàng TMCP Á Châu", "ACB"),
    (
        "970432",
        "VPBank",
        "Ngân hàng TMCP Việt Nam Thịnh Vượng",
        "VPB"
    ),
    ("970423", "TPBank", "Ngân hàng TMCP Tiên Phong", "TPB"),
    (
        "970403",
        "Sacombank",
        "Ngân hàng TMCP Sài Gòn Thương Tín",
        "STB"
    ),
    (
        "970437",
        "HDBank",
        "Ngân hàng TMCP Phát triển TP.HCM",
        "HDB"
    ),
    ("970441", "VIB", "Ngân hàng TMCP Quốc tế Việt Nam", "VIB"),
    ("970443", "SHB", "Ngân hàng TMCP Sài Gòn – Hà Nội", "SHB"),
    ("970426", "MSB", "Ngân hàng TMCP Hàng Hải", "MSB"),
    ("970440", "SeABank", "Ngân hàng TMCP Đông Nam Á", "SEAB"),
    ("970431", "Eximbank", "Ngân hàng TMCP Xuất Nhập khẩu", "EIB"),
    ("970448", "OCB", "Ngân hàng TMCP Phương Đông", "OCB"),
    (
        "970449",
        "LPBank",
        "Ngân hàng TMCP Lộc Phát Việt Nam",
        "LPB"
    ),
    (
        "970454",
        "Viet Capital Bank",
        "Ngân hàng TMCP Bản Việt",
        "VCCB"
    ),
    ("970425", "ABBANK", "Ngân hàng TMCP An Bình", "ABB"),
    ("970428", "Nam A Bank", "Ngân hàng TMCP Nam Á", "NAB"),
    ("970452", "KienlongBank", "Ngân hàng TMCP Kiên Long", "KLB"),
];

/// A bank's name as people know it ("Agribank"), from its BIN; the BIN itself only for a
/// bank missing from the list.
pub fn bank_name(bin: &str) -> String {
    BankBin::parse(bin)
        .ok()
        .and_then(|b| b.bank().map(|b| b.short_name.to_string()))
        .unwrap_or_else(|| format!("ngân hàng mã {bin}"))
}

/// An account as notices and pages show it: "Agribank ••••7890".
pub fn masked_account(bin: &str, account_no: &str) -> String {
    format!(
        "{} ••••{}",
        bank_name(bin),
        &account_no[account_no.len().saturating_sub(4)..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_bins_have_names() {
        let b = BankBin::parse("970436").unwrap();
        assert_eq!(b.bank().unwrap().short_name, "Vietcombank");
        assert!(BankBin::parse("999999").unwrap().bank().is_none());
        for bad in ["97043", "9704366", "97043a", ""] {
            assert!(BankBin::parse(bad).is_err(), "{bad}");
        }
        let mut bins: Vec<&str> = BANKS.iter().map(|b| b.bin).collect();
        bins.sort();
        bins.dedup();
        assert_eq!(bins.len(), BANKS.len(), "no BIN listed twice");
    }
}
