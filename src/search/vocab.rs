//! The embedded index's words, each with the number of documents holding it, as an FST
//! (a compact sorted map). A query word's typo variants are found by walking it with a
//! Levenshtein automaton and its prefix variants by a range, so the work depends on the
//! words near the query, not on the size of the vocabulary: a million products bring a
//! million distinct words (their numbers), which a scan compared one by one with every
//! long query word (half a second for `polyeste`) and kept as a million strings.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::OnceLock;

use levenshtein_automata::{DFA, Distance, LevenshteinAutomatonBuilder, SINK_STATE};
use tantivy_fst::{Automaton, IntoStreamer, Map, MapBuilder, Streamer};

use super::text;

/// Words → document frequency.
pub struct Vocab {
    map: Map<Vec<u8>>,
}

/// A Levenshtein DFA (transpositions count one) as an automaton over the FST's bytes.
struct Lev(DFA);

impl Automaton for Lev {
    type State = u32;

    fn start(&self) -> u32 {
        self.0.initial_state()
    }

    fn is_match(&self, s: &u32) -> bool {
        matches!(self.0.distance(*s), Distance::Exact(_))
    }

    fn can_match(&self, s: &u32) -> bool {
        *s != SINK_STATE
    }

    fn accept(&self, s: &u32, byte: u8) -> u32 {
        self.0.transition(*s, byte)
    }
}

/// Building the parametric tables is the costly part: once per distance per process.
fn builder(max: u8) -> &'static LevenshteinAutomatonBuilder {
    static ONE: OnceLock<LevenshteinAutomatonBuilder> = OnceLock::new();
    static TWO: OnceLock<LevenshteinAutomatonBuilder> = OnceLock::new();
    let cell = if max <= 1 { &ONE } else { &TWO };
    cell.get_or_init(|| LevenshteinAutomatonBuilder::new(max.clamp(1, 2), true))
}

impl Vocab {
    pub fn empty() -> Vocab {
        Vocab::from_sorted(std::iter::empty()).expect("an empty map builds")
    }

    /// From (word, frequency) pairs in byte order, the same word possibly several times in
    /// a row (one per segment and field): their frequencies are summed.
    pub fn from_sorted(
        pairs: impl Iterator<Item = (Vec<u8>, u64)>,
    ) -> Result<Vocab, tantivy_fst::Error> {
        let mut b = MapBuilder::memory();
        let mut cur: Option<(Vec<u8>, u64)> = None;
        for (k, f) in pairs {
            match &mut cur {
                Some((ck, cf)) if *ck == k => *cf += f,
                _ => {
                    if let Some((ck, cf)) = cur.take() {
                        b.insert(&ck, cf)?;
                    }
                    cur = Some((k, f));
                }
            }
        }
        if let Some((ck, cf)) = cur {
            b.insert(&ck, cf)?;
        }
        Ok(Vocab {
            map: Map::from_bytes(b.into_inner()?)?,
        })
    }

    /// Merge sorted streams (each yields (word, frequency) in byte order) into one vocab.
    pub fn merge<S>(mut streams: Vec<S>) -> Result<Vocab, tantivy_fst::Error>
    where
        S: FnMut() -> Option<(Vec<u8>, u64)>,
    {
        let mut heap: BinaryHeap<Reverse<(Vec<u8>, usize, u64)>> = BinaryHeap::new();
        for (i, s) in streams.iter_mut().enumerate() {
            if let Some((k, f)) = s() {
                heap.push(Reverse((k, i, f)));
            }
        }
        let merged = std::iter::from_fn(move || {
            let Reverse((k, i, f)) = heap.pop()?;
            if let Some((nk, nf)) = streams[i]() {
                heap.push(Reverse((nk, i, nf)));
            }
            Some((k, f))
        });
        Vocab::from_sorted(merged)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes the map holds.
    pub fn size(&self) -> usize {
        self.map.as_fst().size()
    }

    /// Words within `max` typos of `word` as Meilisearch counts them (a wrong first letter
    /// counts two, see `text::typos`), the word itself left out: (word, typos, frequency).
    pub fn typo_variants(&self, word: &str, max: u8) -> Vec<(String, u8, u64)> {
        if max == 0 || word.is_empty() {
            return vec![];
        }
        let dfa = Lev(builder(max).build_dfa(word));
        let mut out = vec![];
        let mut stream = self.map.search(dfa).into_stream();
        while let Some((k, f)) = stream.next() {
            let Ok(w) = std::str::from_utf8(k) else {
                continue;
            };
            if w == word {
                continue;
            }
            if let Some(n) = text::typos(word, w, max) {
                out.push((w.to_string(), n, f));
            }
        }
        out
    }

    /// The `limit` most frequent words that start with `prefix` (and are longer): (word,
    /// frequency), most frequent first, then in byte order.
    pub fn prefix_variants(&self, prefix: &str, limit: usize) -> Vec<(String, u64)> {
        if prefix.is_empty() || limit == 0 {
            return vec![];
        }
        // A bounded heap: the smallest kept (by frequency, then latest word) on top.
        let mut heap: BinaryHeap<Reverse<(u64, Reverse<Vec<u8>>)>> = BinaryHeap::new();
        let mut stream = self.map.range().gt(prefix.as_bytes()).into_stream();
        while let Some((k, f)) = stream.next() {
            if !k.starts_with(prefix.as_bytes()) {
                break;
            }
            let entry = Reverse((f, Reverse(k.to_vec())));
            if heap.len() < limit {
                heap.push(entry);
            } else if heap.peek().is_some_and(|top| entry < *top) {
                heap.pop();
                heap.push(entry);
            }
        }
        let mut out: Vec<(String, u64)> = heap
            .into_iter()
            .filter_map(|Reverse((f, Reverse(k)))| String::from_utf8(k).ok().map(|w| (w, f)))
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }

    /// Every word with its frequency (tests).
    pub fn words(&self) -> Vec<(String, u64)> {
        let mut out = vec![];
        let mut s = self.map.stream();
        while let Some((k, f)) = s.next() {
            out.push((String::from_utf8_lossy(k).into_owned(), f));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(words: &[(&str, u64)]) -> Vocab {
        let mut v: Vec<(Vec<u8>, u64)> = words
            .iter()
            .map(|(w, f)| (w.as_bytes().to_vec(), *f))
            .collect();
        v.sort();
        Vocab::from_sorted(v.into_iter()).unwrap()
    }

    /// The automaton finds exactly what comparing with every word finds.
    #[test]
    fn typo_variants_agree_with_a_scan_of_every_word() {
        let mut words: Vec<String> = [
            "polyester",
            "polyeste",
            "polyest",
            "oolyester",
            "plyester",
            "poylester",
            "tuyn",
            "tuyen",
            "xuyn",
            "tyun",
            "uyn",
            "atuyn",
            "man",
            "mung",
            "mang",
            "khay",
            "khau",
            "kham",
            "trau",
            "trai",
            "tr",
            "t",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        words.extend((0..3000).map(|i| i.to_string()));
        let pairs: Vec<(&str, u64)> = words.iter().map(|w| (w.as_str(), 1)).collect();
        let v = vocab(&pairs);
        for q in [
            "polyeste", "tuyn", "kham", "trau", "1234", "12345678", "xuyen",
        ] {
            for max in [1u8, 2] {
                let mut got: Vec<(String, u8)> = v
                    .typo_variants(q, max)
                    .into_iter()
                    .map(|(w, n, _)| (w, n))
                    .collect();
                got.sort();
                let mut want: Vec<(String, u8)> = words
                    .iter()
                    .filter(|w| w.as_str() != q)
                    .filter_map(|w| text::typos(q, w, max).map(|n| (w.clone(), n)))
                    .collect();
                want.sort();
                want.dedup();
                assert_eq!(got, want, "{q} within {max}");
            }
        }
    }

    /// A search word may be as long as the query (200 characters), in any script.
    #[test]
    fn long_and_non_latin_words_are_looked_up_without_trouble() {
        let long = "a".repeat(200);
        let v = vocab(&[(&long, 1), ("漢字", 2), ("🙂", 3)]);
        let near = format!("{}b", "a".repeat(199));
        assert_eq!(v.typo_variants(&near, 2), vec![(long.clone(), 1, 1)]);
        assert_eq!(v.typo_variants("漢子", 2), vec![("漢字".to_string(), 1, 2)]);
        assert_eq!(
            v.typo_variants("汉字", 2),
            vec![("漢字".to_string(), 2, 2)],
            "a wrong first letter costs two"
        );
        assert!(v.typo_variants("汉字", 1).is_empty());
        assert_eq!(v.prefix_variants("漢", 5), vec![("漢字".to_string(), 2)]);
    }

    #[test]
    fn prefix_variants_are_the_most_frequent_longer_words() {
        let v = vocab(&[
            ("ma", 9),
            ("man", 5),
            ("mang", 5),
            ("manh", 7),
            ("mat", 1),
            ("mb", 100),
            ("m", 50),
        ]);
        assert_eq!(
            v.prefix_variants("ma", 2),
            vec![("manh".to_string(), 7), ("man".to_string(), 5)]
        );
        assert_eq!(v.prefix_variants("man", 10).len(), 2);
        assert!(v.prefix_variants("x", 10).is_empty());
    }

    #[test]
    fn repeated_words_from_several_streams_add_up() {
        let a: Vec<(Vec<u8>, u64)> = vec![(b"go".to_vec(), 2), (b"tre".to_vec(), 1)];
        let b: Vec<(Vec<u8>, u64)> = vec![(b"ban".to_vec(), 1), (b"go".to_vec(), 3)];
        let mut ia = a.into_iter();
        let mut ib = b.into_iter();
        let v = Vocab::merge(vec![
            Box::new(move || ia.next()) as Box<dyn FnMut() -> Option<(Vec<u8>, u64)>>,
            Box::new(move || ib.next()),
        ])
        .unwrap();
        assert_eq!(
            v.words(),
            vec![
                ("ban".to_string(), 1),
                ("go".to_string(), 5),
                ("tre".to_string(), 1)
            ]
        );
    }
}
