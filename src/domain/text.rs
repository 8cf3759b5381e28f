//! Vietnamese text helpers: NFC normalisation and diacritic folding.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Normalise to NFC, so text typed on any keyboard (composed or decomposed) compares equal.
pub fn nfc(s: &str) -> String {
    s.nfc().collect()
}

/// Lower-case and strip every Vietnamese diacritic: "Màn tuyn ĐẸP" → "man tuyn dep".
pub fn fold(s: &str) -> String {
    s.nfd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| match c {
            'đ' | 'Đ' => 'd',
            c => c,
        })
        .flat_map(|c| c.to_lowercase())
        .collect()
}

/// The words of a text, NFC, original case.
pub fn words(s: &str) -> Vec<String> {
    let s = nfc(s);
    s.split(|c: char| !(c.is_alphanumeric() || is_combining_mark(c)))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// A whole text as folded words joined by single spaces: what the engines index.
pub fn fold_text(s: &str) -> String {
    words(s)
        .iter()
        .map(|w| fold(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Text made safe inside HTML (element content or a quoted attribute).
pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A trimmed, NFC, single-line text of bounded length; `what` names it in the message.
pub fn clean_line(s: &str, what: &str, max_chars: usize) -> Result<String, String> {
    let s = nfc(s.trim());
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.is_empty() {
        Err(format!("vui lòng nhập {what}"))
    } else if s.chars().count() > max_chars {
        Err(format!("{what} dài quá {max_chars} ký tự"))
    } else {
        Ok(s)
    }
}

/// Optional multi-line text: trimmed and NFC; empty is allowed.
pub fn clean_text(s: &str, what: &str, max_chars: usize) -> Result<String, String> {
    let s = nfc(s.trim()).replace("\r\n", "\n");
    if s.chars().count() > max_chars {
        Err(format!("{what} dài quá {max_chars} ký tự"))
    } else {
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_vietnamese() {
        assert_eq!(fold("Màn tuyn ĐẸP"), "man tuyn dep");
        assert_eq!(fold("khoá"), fold("khóa"));
        assert_eq!(fold("Nhãn lồng Hưng Yên"), "nhan long hung yen");
        // decomposed input folds the same as composed input
        let decomposed: String = "màn".nfd().collect();
        assert_eq!(fold(&decomposed), "man");
        assert_eq!(nfc(&decomposed), "màn");
    }

    #[test]
    fn clean_line_collapses_space_and_bounds_length() {
        assert_eq!(clean_line("  Màn   tuyn ", "tên", 10).unwrap(), "Màn tuyn");
        assert!(clean_line("   ", "tên", 10).is_err());
        assert!(clean_line("ạạạạạạạạạạạ", "tên", 10).is_err());
    }
}
