//! Vietnamese text for search: words, their folded form (what both engines index and match)
//! and their exact form (what ranks an exact-diacritics match first).
//!
//! * `words`: NFC first (a decomposed "màn" is one word, not "ma" + "n"), then split on
//!   anything that is not a letter, digit or combining mark.
//! * `fold`: lower case without any diacritic, đ → d ("Khoá" → "khoa").
//! * `exact`: lower case keeping the vowel marks (â ê ô ơ ư ă đ) with the tone moved to a
//!   trailing digit, so both tone placements agree: "khoá" and "khóa" → "khoa1",
//!   "hoà" and "hòa" → "hoa2", while "ghế" ("ghê1") differs from "ghe".

use unicode_normalization::UnicodeNormalization;

pub use crate::domain::text::{fold_text, words};

use crate::domain::text::fold as fold_str;

/// Folded form of one word (or of a text, word by word).
pub fn fold(word: &str) -> String {
    fold_str(word)
}

/// The tone a combining mark carries, numbered 1..5 (sắc, huyền, ngã, hỏi, nặng).
fn tone_of(c: char) -> Option<u8> {
    match c {
        '\u{0301}' => Some(1),
        '\u{0300}' => Some(2),
        '\u{0303}' => Some(3),
        '\u{0309}' => Some(4),
        '\u{0323}' => Some(5),
        _ => None,
    }
}

/// Exact form of one word: lower case, vowel marks kept, tone as a trailing digit.
pub fn exact(word: &str) -> String {
    let mut tone = None;
    let base: String = word
        .nfd()
        .filter(|c| match tone_of(*c) {
            Some(t) => {
                tone = Some(t);
                false
            }
            None => true,
        })
        .nfc()
        .flat_map(char::to_lowercase)
        .collect();
    match tone {
        Some(t) => format!("{base}{t}"),
        None => base,
    }
}

/// Whether a word carries any diacritic (so the buyer typed it with intent).
pub fn has_diacritics(word: &str) -> bool {
    fold(word) != word.to_lowercase()
}

/// The typo budget of a folded query word: none under `one` letters, one from `one`,
/// two from `two` (Vietnamese syllables are short, so the config says 4 and 8).
pub fn typo_budget(word: &str, one: usize, two: usize) -> u8 {
    let n = word.chars().count();
    if n >= two {
        2
    } else if n >= one {
        1
    } else {
        0
    }
}

/// Typos between a query word and an indexed word, as Meilisearch counts them: edits with
/// adjacent transpositions counting one, and a wrong first letter counting two. `None` when
/// over `max`.
pub fn typos(query: &str, term: &str, max: u8) -> Option<u8> {
    // Cheap rejection first (this runs over the whole vocabulary for long words): lengths
    // in chars never differ less than the byte lengths of folded ASCII words do.
    if query.is_ascii() && term.is_ascii() && query.len().abs_diff(term.len()) > usize::from(max) {
        return None;
    }
    let a: Vec<char> = query.chars().collect();
    let b: Vec<char> = term.chars().collect();
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let first_penalty = u8::from(a[0] != b[0]);
    if first_penalty > max {
        return None;
    }
    let max_edits = usize::from(max);
    if a.len().abs_diff(b.len()) > max_edits {
        return None;
    }
    // Optimal string alignment distance, small inputs only.
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    let edits = d[n][m];
    if edits == 0 {
        return Some(0);
    }
    let total = edits + usize::from(first_penalty);
    (total <= max_edits).then_some(total as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_nfc_and_split_on_punctuation() {
        let decomposed: String = "Màn tuyn, 1m8×2m".nfd().collect();
        assert_eq!(words(&decomposed), vec!["Màn", "tuyn", "1m8", "2m"]);
        assert_eq!(fold_text("Đồ gỗ: Ghế đẩu!"), "do go ghe dau");
    }

    #[test]
    fn exact_form_agrees_on_tone_placement() {
        assert_eq!(exact("khoá"), exact("khóa"));
        assert_eq!(exact("hoà"), exact("hòa"));
        assert_eq!(exact("Ghế"), "ghê1");
        assert_ne!(exact("ghế"), exact("ghe"));
        assert_ne!(exact("lợn"), exact("lớn"));
        assert_eq!(exact("đồ"), "đô2");
    }

    #[test]
    fn diacritics_are_noticed() {
        assert!(has_diacritics("ghế"));
        assert!(has_diacritics("đo"));
        assert!(!has_diacritics("Ghe"));
    }

    #[test]
    fn typos_follow_the_budget_and_the_first_letter_rule() {
        assert_eq!(typo_budget("man", 4, 8), 0);
        assert_eq!(typo_budget("tuyn", 4, 8), 1);
        assert_eq!(typo_budget("nghientu", 4, 8), 2);
        assert_eq!(typos("tuyen", "tuyn", 1), Some(1));
        assert_eq!(
            typos("tyun", "tuyn", 1),
            Some(1),
            "transposition counts one"
        );
        assert_eq!(typos("xuyn", "tuyn", 1), None, "first letter counts two");
        assert_eq!(typos("xuyn", "tuyn", 2), Some(2));
        assert_eq!(typos("tuyn", "tuyn", 0), Some(0));
        assert_eq!(typos("banh", "bong", 1), None);
    }
}
