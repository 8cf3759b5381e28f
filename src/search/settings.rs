//! The index settings in `search-config/products.json`, in Meilisearch's settings format,
//! read once and given to both engines.
//!
//! Both engines index folded text (see `search::text`), so what reaches them is the folded
//! version of this file: synonyms folded word by word. Stop words are removed from the
//! buyer's query by the app, comparing exact forms ("mua" is a stop word, "mùa" is not),
//! because folded stop words would also remove real words ("những" → "nhung", velvet).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::text;

/// The file shipped in the repository, compiled in; `SEARCH_CONFIG` names another file.
pub const BUILT_IN: &str = include_str!("../../search-config/products.json");

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    searchable_attributes: Vec<String>,
    filterable_attributes: Vec<String>,
    sortable_attributes: Vec<String>,
    ranking_rules: Vec<String>,
    typo_tolerance: TypoRaw,
    #[serde(default)]
    synonyms: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    stop_words: Vec<String>,
    #[serde(default)]
    pagination: Option<PaginationRaw>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypoRaw {
    enabled: bool,
    min_word_size_for_typos: MinSizes,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MinSizes {
    one_typo: usize,
    two_typos: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaginationRaw {
    max_total_hits: usize,
}

/// The settings as the engines use them.
#[derive(Debug, Clone)]
pub struct SearchSettings {
    /// Searchable attributes, most important first.
    pub searchable: Vec<String>,
    pub filterable: BTreeSet<String>,
    pub sortable: BTreeSet<String>,
    pub typos_enabled: bool,
    pub one_typo: usize,
    pub two_typos: usize,
    /// Folded synonym key (one or more words) → folded alternatives.
    pub synonyms: BTreeMap<String, Vec<String>>,
    /// Exact-form synonym key → exact-form alternatives (for the exact-diacritics rank).
    pub exact_synonyms: BTreeMap<String, Vec<String>>,
    /// Stop words in exact form.
    pub stop_words: BTreeSet<String>,
    pub max_total_hits: usize,
    /// The file as Meilisearch gets it: folded synonyms, no stop words.
    pub meili_json: Value,
    /// Changes whenever anything an index depends on changes: the embedded index is rebuilt.
    pub hash: String,
}

fn exact_phrase(s: &str) -> String {
    text::words(s)
        .iter()
        .map(|w| text::exact(w))
        .collect::<Vec<_>>()
        .join(" ")
}

impl SearchSettings {
    pub fn parse(json: &str) -> Result<SearchSettings, String> {
        let raw: Raw = serde_json::from_str(json).map_err(|e| format!("search settings: {e}"))?;
        if raw.searchable_attributes.is_empty() {
            return Err("search settings: searchableAttributes is empty".into());
        }
        for a in &raw.searchable_attributes {
            if !super::SEARCHABLE_FIELDS.contains(&a.as_str()) {
                return Err(format!("search settings: unknown searchable attribute {a}"));
            }
        }
        for a in raw
            .filterable_attributes
            .iter()
            .chain(&raw.sortable_attributes)
        {
            if !super::FILTER_FIELDS.contains(&a.as_str()) {
                return Err(format!(
                    "search settings: unknown filter/sort attribute {a}"
                ));
            }
        }
        if raw.ranking_rules.first().map(String::as_str) != Some("sort") {
            // Buyers who pick "cheapest first" expect a real price order among the matches.
            return Err("search settings: rankingRules must start with \"sort\"".into());
        }
        let m = &raw.typo_tolerance.min_word_size_for_typos;
        if m.one_typo == 0 || m.two_typos < m.one_typo {
            return Err(
                "search settings: minWordSizeForTypos must be 0 < oneTypo <= twoTypos".into(),
            );
        }
        let mut synonyms: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut exact_synonyms: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, vs) in &raw.synonyms {
            let fk = text::fold_text(k);
            let entry = synonyms.entry(fk).or_default();
            for v in vs {
                let fv = text::fold_text(v);
                if !entry.contains(&fv) {
                    entry.push(fv);
                }
            }
            exact_synonyms
                .entry(exact_phrase(k))
                .or_default()
                .extend(vs.iter().map(|v| exact_phrase(v)));
        }
        let stop_words = raw.stop_words.iter().map(|w| text::exact(w)).collect();
        let mut meili: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        meili["synonyms"] = serde_json::to_value(&synonyms).map_err(|e| e.to_string())?;
        meili["stopWords"] = Value::Array(vec![]);
        let max_total_hits = raw.pagination.as_ref().map_or(1000, |p| p.max_total_hits);
        let hash = hex::encode(Sha256::digest(
            serde_json::to_vec(&meili).map_err(|e| e.to_string())?,
        ));
        Ok(SearchSettings {
            searchable: raw.searchable_attributes,
            filterable: raw.filterable_attributes.into_iter().collect(),
            sortable: raw.sortable_attributes.into_iter().collect(),
            typos_enabled: raw.typo_tolerance.enabled,
            one_typo: m.one_typo,
            two_typos: m.two_typos,
            synonyms,
            exact_synonyms,
            stop_words,
            max_total_hits,
            meili_json: meili,
            hash: hash[..16].to_string(),
        })
    }

    pub fn built_in() -> SearchSettings {
        Self::parse(BUILT_IN).expect("search-config/products.json is valid")
    }

    /// Weight rank of a searchable attribute: 0 for the most important.
    pub fn rank_of(&self, attr: &str) -> Option<usize> {
        self.searchable.iter().position(|a| a == attr)
    }

    pub fn typo_budget(&self, folded_word: &str) -> u8 {
        if !self.typos_enabled {
            return 0;
        }
        text::typo_budget(folded_word, self.one_typo, self.two_typos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_settings_parse_and_fold() {
        let s = SearchSettings::built_in();
        assert_eq!(s.searchable[0], "name");
        assert!(s.rank_of("name") < s.rank_of("description"));
        assert_eq!(s.synonyms["mung"], vec!["man"]);
        assert_eq!(s.synonyms["com le"], vec!["comple"]);
        assert_eq!(s.exact_synonyms["heo"], vec!["lơn5"]);
        assert!(s.stop_words.contains("mua"));
        assert!(!s.stop_words.contains("mua2"));
        assert_eq!((s.one_typo, s.two_typos), (4, 8));
        assert_eq!(s.meili_json["synonyms"]["man"][0], "mung");
        assert_eq!(
            s.meili_json["typoTolerance"]["minWordSizeForTypos"]["oneTypo"],
            4
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let bad = BUILT_IN.replace("\"sort\", \"words\"", "\"words\", \"sort\"");
        assert!(SearchSettings::parse(&bad).is_err());
        let bad = BUILT_IN.replace("\"materials\",", "\"colour\",");
        assert!(SearchSettings::parse(&bad).unwrap_err().contains("colour"));
    }
}
