//! The embedded engine: a tantivy index under the data dir, following `search-config/`
//! the way Meilisearch does, so both engines find the same products in the same order:
//!
//! * one tantivy field per searchable attribute, holding folded words;
//! * every query word must match (Meilisearch's `matchingStrategy: all`), through its
//!   exact form, its typo variants within the configured budget (a wrong first letter
//!   counts two, as in Meilisearch), its synonyms, and for the last word any indexed word
//!   it starts;
//! * rank: fewer typos first, then the more important attribute, then whole words over
//!   prefixes, encoded as constant scores per word; `sort` first when the buyer picks one;
//! * filters and facets on fast fields.
//!
//! Typo and prefix variants are looked up in a vocabulary of the index's words, rebuilt after
//! every commit.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use tantivy::collector::sort_key::NaturalComparator;
use tantivy::collector::{Collector, SegmentCollector, TopNComputer};
use tantivy::index::SegmentId;
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, DisjunctionMaxQuery, EnableScoring,
    Explanation, Occur, Query, RangeQuery, Scorer, TermQuery, Weight,
};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::tokenizer::{TextAnalyzer, WhitespaceTokenizer};
use tantivy::{
    DocAddress, DocId, DocSet, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentReader,
    TERMINATED, TantivyDocument, Term,
};

use super::{
    Alt, Catalogue, EngineHit, EngineResult, Facets, Filters, Plan, SearchDoc, SearchError,
    SearchSettings, Sort, text, vocab::Vocab,
};

const TOKENIZER: &str = "folded";
const HASH_FILE: &str = "settings.hash";
/// Prefix variants of the last word, most frequent first, are capped at this many.
const MAX_PREFIX_TERMS: usize = 50;
/// Typo variants of a word, fewest typos then most frequent first, are capped at this many
/// (a bound on the work one query word can cause).
const MAX_TYPO_TERMS: usize = 100;

struct Fields {
    id: Field,
    searchable: Vec<(Field, String)>,
    village_slug: Field,
    category_key: Field,
    category_label: Field,
    ocop_stars: Field,
    price_vnd: Field,
    in_stock: Field,
    created_at: Field,
    exact: Field,
}

struct Inner {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    settings: Arc<SearchSettings>,
    /// Indexed words with their document frequency.
    vocab: RwLock<Arc<Vocab>>,
    /// Facet values per segment, read at a segment's first search.
    seg_facets: Mutex<HashMap<SegmentId, Arc<SegFacets>>>,
    fresh: bool,
}

pub struct Embedded {
    inner: Arc<Inner>,
    dir: PathBuf,
    answers: Mutex<Answers>,
}

/// Answers kept until the index changes: a popular search ("màn tuyn") asked again is not
/// counted again over a million products. Keyed by the whole plan (words, filters, sort,
/// page); a commit reloads the searcher, whose new generation empties it.
#[derive(Default)]
struct Answers {
    capacity: usize,
    generation: u64,
    kept: HashMap<String, Arc<EngineResult>>,
    order: std::collections::VecDeque<String>,
}

impl Answers {
    fn get(&mut self, generation: u64, key: &str) -> Option<Arc<EngineResult>> {
        if self.generation != generation {
            self.generation = generation;
            self.kept.clear();
            self.order.clear();
            return None;
        }
        self.kept.get(key).cloned()
    }

    fn put(&mut self, generation: u64, key: String, answer: Arc<EngineResult>) {
        if self.capacity == 0 || self.generation != generation {
            return;
        }
        if self.kept.len() >= self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.kept.remove(&old);
        }
        if self.kept.insert(key.clone(), answer).is_none() {
            self.order.push_back(key);
        }
    }
}

fn engine_err(e: impl std::fmt::Display) -> SearchError {
    SearchError::Engine(e.to_string())
}

fn schema(settings: &SearchSettings) -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text_opts = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TOKENIZER)
            .set_index_option(IndexRecordOption::Basic),
    );
    let id = b.add_i64_field("id", INDEXED | STORED | FAST);
    let searchable = settings
        .searchable
        .iter()
        .map(|a| (b.add_text_field(a, text_opts.clone()), a.clone()))
        .collect();
    let fields = Fields {
        id,
        searchable,
        village_slug: b.add_text_field("village_slug", STRING | FAST),
        category_key: b.add_text_field("category_key", STRING),
        category_label: b.add_text_field("category_label", STRING | FAST),
        ocop_stars: b.add_i64_field("ocop_stars", INDEXED | FAST),
        price_vnd: b.add_i64_field("price_vnd", INDEXED | FAST),
        in_stock: b.add_i64_field("in_stock", INDEXED | FAST),
        created_at: b.add_i64_field("created_at", INDEXED | FAST),
        exact: b.add_text_field("exact", STORED),
    };
    (b.build(), fields)
}

impl Embedded {
    /// Open the index under `dir`, creating it (or recreating it when the settings changed).
    pub fn open(dir: &Path, settings: Arc<SearchSettings>) -> Result<Embedded, SearchError> {
        let hash_path = dir.join(HASH_FILE);
        let same = std::fs::read_to_string(&hash_path).ok().as_deref() == Some(&settings.hash);
        let (schema, fields) = schema(&settings);
        let (index, fresh) = if same && dir.join("meta.json").exists() {
            (Index::open_in_dir(dir).map_err(engine_err)?, false)
        } else {
            if dir.exists() {
                std::fs::remove_dir_all(dir).map_err(engine_err)?;
            }
            std::fs::create_dir_all(dir).map_err(engine_err)?;
            let index = Index::create_in_dir(dir, schema).map_err(engine_err)?;
            std::fs::write(&hash_path, &settings.hash).map_err(engine_err)?;
            (index, true)
        };
        index.tokenizers().register(
            TOKENIZER,
            TextAnalyzer::from(WhitespaceTokenizer::default()),
        );
        let writer: IndexWriter = index.writer(50_000_000).map_err(|e| {
            SearchError::Engine(format!(
                "cannot open the search index for writing ({e}); is another cholang running on this data dir?"
            ))
        })?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(engine_err)?;
        let inner = Arc::new(Inner {
            index,
            reader,
            writer: Mutex::new(writer),
            fields,
            settings,
            vocab: RwLock::new(Arc::new(Vocab::empty())),
            seg_facets: Mutex::new(HashMap::new()),
            fresh,
        });
        inner.rebuild_vocab().map_err(engine_err)?;
        Ok(Embedded {
            inner,
            dir: dir.to_path_buf(),
            answers: Mutex::new(Answers::default()),
        })
    }

    /// Keep up to `n` answers until the index changes (0: none).
    pub fn with_cache(self, n: usize) -> Embedded {
        self.answers.lock().expect("answers lock").capacity = n;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, SearchError> + Send + 'static,
    ) -> Result<T, SearchError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(engine_err)?
    }
}

impl Inner {
    fn rebuild_vocab(&self) -> tantivy::Result<()> {
        let searcher = self.reader.searcher();
        let live: Vec<SegmentId> = searcher
            .segment_readers()
            .iter()
            .map(|s| s.segment_id())
            .collect();
        self.seg_facets
            .lock()
            .expect("facet lock")
            .retain(|id, _| live.contains(id));
        let mut invs = vec![];
        for seg in searcher.segment_readers() {
            for (field, _) in &self.fields.searchable {
                invs.push(seg.inverted_index(*field)?);
            }
        }
        let mut streams = vec![];
        for inv in &invs {
            let mut s = inv.terms().stream()?;
            streams.push(move || {
                s.advance()
                    .then(|| (s.key().to_vec(), u64::from(s.value().doc_freq)))
            });
        }
        let vocab = Vocab::merge(streams)
            .map_err(|e| tantivy::TantivyError::InternalError(e.to_string()))?;
        *self.vocab.write().expect("vocab lock") = Arc::new(vocab);
        Ok(())
    }

    fn to_doc(&self, d: &SearchDoc) -> TantivyDocument {
        let f = &self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_i64(f.id, d.id);
        for (field, attr) in &f.searchable {
            doc.add_text(*field, text::fold_text(d.searchable(attr)));
        }
        doc.add_text(f.village_slug, &d.village_slug);
        doc.add_text(f.category_key, text::fold_text(&d.category));
        doc.add_text(f.category_label, &d.category);
        doc.add_i64(f.ocop_stars, d.ocop_stars);
        doc.add_i64(f.price_vnd, d.price_vnd);
        doc.add_i64(f.in_stock, i64::from(d.in_stock));
        doc.add_i64(f.created_at, d.created_at);
        doc.add_text(f.exact, d.exact_words());
        doc
    }

    fn commit(&self, writer: &mut IndexWriter) -> tantivy::Result<()> {
        writer.commit()?;
        self.reader.reload()?;
        self.rebuild_vocab()
    }

    /// Folded words matching `word`: (word, typos, is_prefix).
    fn variants(&self, alt: &Alt) -> Vec<(String, u8, bool)> {
        let t = &alt.tokens[0];
        let mut out = vec![(t.clone(), 0u8, false)];
        let budget = self.settings.typo_budget(t);
        let vocab = self.vocab.read().expect("vocab lock").clone();
        if budget > 0 {
            let mut typo = vocab.typo_variants(t, budget);
            typo.sort_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
            out.extend(
                typo.into_iter()
                    .take(MAX_TYPO_TERMS)
                    .map(|(w, n, _)| (w, n, false)),
            );
        }
        if alt.prefix {
            for (w, _) in vocab.prefix_variants(t, MAX_PREFIX_TERMS) {
                if !out.iter().any(|(o, _, _)| *o == w) {
                    out.push((w, 0, true));
                }
            }
        }
        out
    }

    /// Score of a matched word: typos dominate, then attribute weight, then whole words.
    fn score(typos: u8, rank: usize, prefix: bool) -> Score {
        let typo_part = (2 - typos.min(2)) as Score * 1000.0;
        let attr_part = (10 - rank.min(9)) as Score * 10.0;
        typo_part + attr_part + if prefix { 0.0 } else { 5.0 }
    }

    /// A word's terms: each (field, variant) with its score.
    fn word_terms(&self, variants: &[(String, u8, bool)], out: &mut Vec<(Term, Score)>) {
        for (rank, (field, _)) in self.fields.searchable.iter().enumerate() {
            for (w, typos, prefix) in variants {
                out.push((
                    Term::from_field_text(*field, w),
                    Self::score(*typos, rank, *prefix),
                ));
            }
        }
    }

    fn word_query(&self, variants: &[(String, u8, bool)]) -> Box<dyn Query> {
        let mut terms = vec![];
        self.word_terms(variants, &mut terms);
        Box::new(WordsQuery::new(vec![terms]))
    }

    /// A group of the buyer's words: its one-word alternatives (the word with its typo and
    /// prefix variants, its one-word synonyms) as one list of terms, best score per product
    /// (`Ok`); with a several-word alternative (a synonym phrase), a query of its own, the
    /// phrase scored as one word (`Err`).
    fn group_query(&self, g: &super::Group) -> std::result::Result<WordTerms, Box<dyn Query>> {
        let mut terms = vec![];
        let mut others: Vec<Box<dyn Query>> = vec![];
        for alt in &g.alts {
            if alt.tokens.len() == 1 {
                if alt.original {
                    self.word_terms(&self.variants(alt), &mut terms);
                } else {
                    self.word_terms(&[(alt.tokens[0].clone(), 0, false)], &mut terms);
                }
            } else {
                others.push(self.alt_query(alt));
            }
        }
        if others.is_empty() {
            return Ok(terms);
        }
        if !terms.is_empty() {
            others.push(Box::new(WordsQuery::new(vec![terms])));
        }
        Err(Box::new(DisjunctionMaxQuery::new(others)))
    }

    fn alt_query(&self, alt: &Alt) -> Box<dyn Query> {
        if alt.original && alt.tokens.len() == 1 {
            return self.word_query(&self.variants(alt));
        }
        // Synonyms and multi-word phrases: every word, exactly; scored as one word.
        let n = alt.tokens.len() as Score;
        let musts: Vec<(Occur, Box<dyn Query>)> = alt
            .tokens
            .iter()
            .map(|t| (Occur::Must, self.word_query(&[(t.clone(), 0, false)])))
            .collect();
        Box::new(BoostQuery::new(Box::new(BooleanQuery::new(musts)), 1.0 / n))
    }

    fn filterable(&self, attr: &str) -> Result<(), SearchError> {
        if self.settings.filterable.contains(attr) {
            Ok(())
        } else {
            Err(SearchError::Engine(format!(
                "attribute {attr} is not filterable"
            )))
        }
    }

    fn query(&self, plan: &Plan) -> Result<Box<dyn Query>, SearchError> {
        let f = &self.fields;
        let mut musts: Vec<(Occur, Box<dyn Query>)> = vec![];
        let mut words = vec![];
        for g in &plan.groups {
            match self.group_query(g) {
                Ok(terms) => words.push(terms),
                Err(q) => musts.push((Occur::Must, q)),
            }
        }
        if !words.is_empty() {
            musts.push((Occur::Must, Box::new(WordsQuery::new(words))));
        }
        let mut filters: Vec<Box<dyn Query>> = vec![];
        let fl = &plan.filters;
        let term =
            |t: Term| -> Box<dyn Query> { Box::new(TermQuery::new(t, IndexRecordOption::Basic)) };
        let range = |field: Field, lo: Option<i64>, hi: Option<i64>| -> Box<dyn Query> {
            let b = |v: Option<i64>| match v {
                Some(v) => Bound::Included(Term::from_field_i64(field, v)),
                None => Bound::Unbounded,
            };
            Box::new(RangeQuery::new(b(lo), b(hi)))
        };
        if let Some(v) = &fl.village {
            self.filterable("village_slug")?;
            filters.push(term(Term::from_field_text(f.village_slug, v)));
        }
        if let Some(c) = &fl.category {
            self.filterable("category_key")?;
            filters.push(term(Term::from_field_text(
                f.category_key,
                &text::fold_text(c),
            )));
        }
        if let Some(n) = fl.ocop_min {
            self.filterable("ocop_stars")?;
            filters.push(range(f.ocop_stars, Some(n), None));
        }
        if fl.price_min.is_some() || fl.price_max.is_some() {
            self.filterable("price_vnd")?;
            filters.push(range(f.price_vnd, fl.price_min, fl.price_max));
        }
        if let Some(s) = fl.in_stock {
            self.filterable("in_stock")?;
            filters.push(term(Term::from_field_i64(f.in_stock, i64::from(s))));
        }
        for q in filters {
            musts.push((Occur::Must, Box::new(ConstScoreQuery::new(q, 0.0))));
        }
        if musts.is_empty() {
            return Ok(Box::new(AllQuery));
        }
        if plan.groups.is_empty() {
            musts.push((
                Occur::Must,
                Box::new(ConstScoreQuery::new(Box::new(AllQuery), 0.0)),
            ));
        }
        Ok(Box::new(BooleanQuery::new(musts)))
    }

    fn search(&self, plan: &Plan) -> Result<EngineResult, SearchError> {
        self.search_with(&self.reader.searcher(), plan)
    }

    fn search_with(
        &self,
        searcher: &tantivy::Searcher,
        plan: &Plan,
    ) -> Result<EngineResult, SearchError> {
        let query = self.query(plan)?;
        let n = plan.offset + plan.limit;
        let sort_field = match plan.sort {
            Sort::Relevance => None,
            Sort::PriceAsc | Sort::PriceDesc => Some("price_vnd"),
            Sort::Newest => Some("created_at"),
        };
        if let Some(a) = sort_field
            && !self.settings.sortable.contains(a)
        {
            return Err(SearchError::Engine(format!(
                "attribute {a} is not sortable"
            )));
        }
        let sort = match plan.sort {
            Sort::Relevance => None,
            Sort::PriceAsc => Some((SortColumn::Price, -1)),
            Sort::PriceDesc => Some((SortColumn::Price, 1)),
            Sort::Newest => Some((SortColumn::Created, 1)),
        };
        let gather = Gather {
            segs: &self.seg_facets,
            sort,
            top_n: n.max(1),
            facets: plan.with_facets,
        };
        let (top, facets, total) =
            if plan.groups.is_empty() && plan.filters == Filters::default() {
                // `query` is `AllQuery`.
                gather.everything(searcher)
            } else {
                searcher.search(query.as_ref(), &gather)
            }
            .map_err(engine_err)?;
        let mut hits = vec![];
        let addrs: Vec<DocAddress> = top
            .into_iter()
            .skip(plan.offset)
            .take(plan.limit)
            .map(|(_, a)| a)
            .collect();
        for a in addrs {
            if plan.with_exact {
                let doc: TantivyDocument = searcher.doc(a).map_err(engine_err)?;
                let id = doc
                    .get_first(self.fields.id)
                    .and_then(|v| v.as_i64())
                    .unwrap_or(0);
                let exact = doc
                    .get_first(self.fields.exact)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string();
                hits.push(EngineHit {
                    id,
                    exact: Some(exact),
                });
            } else {
                let seg = searcher.segment_reader(a.segment_ord);
                // The gathering pass left every segment's arrays here.
                let id = seg_facets(&self.seg_facets, seg)
                    .map_err(engine_err)?
                    .id
                    .get_val(a.doc_id);
                hits.push(EngineHit { id, exact: None });
            }
        }
        Ok(EngineResult {
            total,
            hits,
            facets,
        })
    }
}

/// A segment's facet values, one small number per document, read once from its columns:
/// counting a match is then three array reads, not three column lookups and a map insert
/// (the empty query counts a million matches).
struct SegFacets {
    /// Per document: 1 + the village's term ordinal (0: none).
    village: Vec<u32>,
    category: Vec<u32>,
    ocop: Vec<u8>,
    village_names: Vec<String>,
    category_names: Vec<String>,
    /// Per document: its price and its creation time, the two sorts a buyer picks.
    price: Vec<i64>,
    created_at: Vec<i64>,
    /// The product ids, opened once: opening the column reads its every block, a tenth of a
    /// search's time when it was opened for each hit.
    id: Arc<dyn tantivy::columnar::ColumnValues<i64>>,
    /// For the query with no words and no filters (`Gather::everything`): the facet counts of
    /// the segment's live products, with how many were deleted when they were counted (a
    /// segment only ever gains deletions, so the same number means the same products).
    live_counts: Mutex<Option<(u32, Arc<LiveCounts>)>>,
    /// Every document, best first for a sort (key descending, document ascending on a tie),
    /// built the first time the sort is asked with no words and no filters.
    orders: Mutex<Vec<(Sorting, Arc<Vec<DocId>>)>>,
}

struct LiveCounts {
    village: Vec<u64>,
    category: Vec<u64>,
    ocop: [u64; OCOP_SLOTS],
}

const OCOP_SLOTS: usize = 8;

impl SegFacets {
    fn read(seg: &SegmentReader) -> tantivy::Result<SegFacets> {
        let ff = seg.fast_fields();
        let n = seg.max_doc() as usize;
        let column = |name: &str| -> tantivy::Result<(Vec<u32>, Vec<String>)> {
            let Some(c) = ff.str(name)? else {
                return Ok((vec![0; n], vec![]));
            };
            let mut names = vec![];
            for ord in 0..c.num_terms() {
                let mut s = String::new();
                c.ord_to_str(ord as u64, &mut s)?;
                names.push(s);
            }
            let ords = (0..n as DocId)
                .map(|d| c.term_ords(d).next().map_or(0, |o| o as u32 + 1))
                .collect();
            Ok((ords, names))
        };
        let (village, village_names) = column("village_slug")?;
        let (category, category_names) = column("category_label")?;
        let ocop = match ff.i64("ocop_stars") {
            Ok(c) => {
                let c = c.first_or_default_col(0);
                (0..n as DocId)
                    .map(|d| c.get_val(d).clamp(0, OCOP_SLOTS as i64 - 1) as u8)
                    .collect()
            }
            Err(_) => vec![0; n],
        };
        let values = |name: &str| -> Vec<i64> {
            match ff.i64(name) {
                Ok(c) => {
                    let c = c.first_or_default_col(0);
                    (0..n as DocId).map(|d| c.get_val(d)).collect()
                }
                Err(_) => vec![0; n],
            }
        };
        Ok(SegFacets {
            village,
            category,
            ocop,
            village_names,
            category_names,
            price: values("price_vnd"),
            created_at: values("created_at"),
            id: ff.i64("id")?.first_or_default_col(0),
            live_counts: Mutex::new(None),
            orders: Mutex::new(Vec::new()),
        })
    }

    /// The sort key of a document, as `GatherSegment::collect` makes it (without the score).
    fn key(&self, sort: Option<Sorting>, d: usize) -> i64 {
        match sort {
            None => 0,
            Some((SortColumn::Price, sign)) => self.price[d] * sign,
            Some((SortColumn::Created, sign)) => self.created_at[d] * sign,
        }
    }

    fn live_counts(&self, seg: &SegmentReader) -> Arc<LiveCounts> {
        let deleted = seg.num_deleted_docs();
        if let Some((d, c)) = &*self.live_counts.lock().expect("count lock")
            && *d == deleted
        {
            return c.clone();
        }
        let mut c = LiveCounts {
            village: vec![0; self.village_names.len() + 1],
            category: vec![0; self.category_names.len() + 1],
            ocop: [0; OCOP_SLOTS],
        };
        let alive = seg.alive_bitset();
        for d in 0..seg.max_doc() {
            if alive.is_none_or(|a| a.is_alive(d)) {
                let d = d as usize;
                c.village[self.village[d] as usize] += 1;
                c.category[self.category[d] as usize] += 1;
                c.ocop[usize::from(self.ocop[d])] += 1;
            }
        }
        let c = Arc::new(c);
        *self.live_counts.lock().expect("count lock") = Some((deleted, c.clone()));
        c
    }

    fn order(&self, sort: Sorting) -> Arc<Vec<DocId>> {
        if let Some((_, o)) = self
            .orders
            .lock()
            .expect("order lock")
            .iter()
            .find(|(s, _)| *s == sort)
        {
            return o.clone();
        }
        let mut docs: Vec<DocId> = (0..self.price.len() as DocId).collect();
        docs.sort_unstable_by_key(|&d| (std::cmp::Reverse(self.key(Some(sort), d as usize)), d));
        let docs = Arc::new(docs);
        let mut orders = self.orders.lock().expect("order lock");
        if !orders.iter().any(|(s, _)| *s == sort) {
            orders.push((sort, docs.clone()));
        }
        docs
    }
}

/// A sort: the column and its sign (1: largest first).
type Sorting = (SortColumn, i64);

#[derive(Clone, Copy, PartialEq, Eq)]
enum SortColumn {
    Price,
    Created,
}

/// Sort key: (the sort column's value times its sign, relevance); relevance scores are whole
/// numbers. Ties go to the lower document address, as tantivy's `TopDocs` orders them.
type Key = (i64, i64);

/// One pass over the matches: their number, the facet counts (village, category, OCOP
/// stars) and the first `top_n` by sort key, all from the segment's arrays.
struct Gather<'a> {
    segs: &'a Mutex<HashMap<SegmentId, Arc<SegFacets>>>,
    sort: Option<(SortColumn, i64)>,
    top_n: usize,
    facets: bool,
}

struct GatherSegment {
    f: Arc<SegFacets>,
    sort: Option<(SortColumn, i64)>,
    facets: bool,
    top: TopKeys,
    ord: u32,
    village_counts: Vec<u64>,
    category_counts: Vec<u64>,
    ocop_counts: [u64; OCOP_SLOTS],
    total: u64,
}

/// The best `n` (key, doc) seen, keys descending, docs ascending on a tie: tantivy's own
/// top-n buffer (the one `TopDocs` keeps), largest keys first.
type TopKeys = TopNComputer<Key, DocId, NaturalComparator>;

fn top_keys(n: usize) -> TopKeys {
    TopNComputer::new_with_comparator(n, NaturalComparator)
}

/// The kept keys and documents, best first.
fn sorted(top: TopKeys) -> Vec<(Key, DocId)> {
    top.into_sorted_vec()
        .into_iter()
        .map(|c| (c.sort_key, c.doc))
        .collect()
}

type Gathered = (Vec<(Key, DocAddress)>, Facets, u64);

/// A segment's arrays, read the first time a search meets it.
fn seg_facets(
    segs: &Mutex<HashMap<SegmentId, Arc<SegFacets>>>,
    seg: &SegmentReader,
) -> tantivy::Result<Arc<SegFacets>> {
    if let Some(f) = segs.lock().expect("facet lock").get(&seg.segment_id()) {
        return Ok(f.clone());
    }
    let f = Arc::new(SegFacets::read(seg)?);
    segs.lock()
        .expect("facet lock")
        .insert(seg.segment_id(), f.clone());
    Ok(f)
}

impl Gather<'_> {
    /// What `search` with this collector gives for `AllQuery` (every live product, each
    /// scoring 1), from each segment's kept counts and sort order instead of a pass over
    /// every product: the query with no words and no filters (all products, newest first).
    fn everything(&self, searcher: &tantivy::Searcher) -> tantivy::Result<Gathered> {
        let mut fruits = vec![];
        for (ord, seg) in searcher.segment_readers().iter().enumerate() {
            let mut s = self.for_segment(ord as u32, seg)?;
            s.total = u64::from(seg.num_docs());
            if self.facets {
                let c = s.f.live_counts(seg);
                s.village_counts.clone_from(&c.village);
                s.category_counts.clone_from(&c.category);
                s.ocop_counts = c.ocop;
            }
            let alive = seg.alive_bitset();
            let live = |d: &DocId| alive.is_none_or(|a| a.is_alive(*d));
            let f = s.f.clone();
            let best: Vec<DocId> = match self.sort {
                None => (0..seg.max_doc()).filter(live).take(self.top_n).collect(),
                Some(sort) => f
                    .order(sort)
                    .iter()
                    .copied()
                    .filter(live)
                    .take(self.top_n)
                    .collect(),
            };
            for d in best {
                s.top.push((f.key(self.sort, d as usize), 1), d);
            }
            fruits.push(s.harvest());
        }
        self.merge_fruits(fruits)
    }
}

impl Collector for Gather<'_> {
    type Fruit = Gathered;
    type Child = GatherSegment;

    fn for_segment(&self, ord: u32, seg: &SegmentReader) -> tantivy::Result<GatherSegment> {
        let f = seg_facets(self.segs, seg)?;
        Ok(GatherSegment {
            village_counts: vec![0; f.village_names.len() + 1],
            category_counts: vec![0; f.category_names.len() + 1],
            ocop_counts: [0; OCOP_SLOTS],
            total: 0,
            sort: self.sort,
            facets: self.facets,
            top: top_keys(self.top_n),
            ord,
            f,
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Gathered>) -> tantivy::Result<Gathered> {
        let mut out = Facets::default();
        let mut total = 0;
        let mut top = vec![];
        for (t, f, n) in fruits {
            total += n;
            top.extend(t);
            for (k, v) in f.village {
                *out.village.entry(k).or_default() += v;
            }
            for (k, v) in f.category {
                *out.category.entry(k).or_default() += v;
            }
            for (k, v) in f.ocop_stars {
                *out.ocop_stars.entry(k).or_default() += v;
            }
        }
        top.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        top.truncate(self.top_n);
        Ok((top, out, total))
    }
}

impl SegmentCollector for GatherSegment {
    type Fruit = Gathered;

    #[inline]
    fn collect(&mut self, doc: DocId, score: Score) {
        let d = doc as usize;
        self.total += 1;
        if self.facets {
            self.village_counts[self.f.village[d] as usize] += 1;
            self.category_counts[self.f.category[d] as usize] += 1;
            self.ocop_counts[usize::from(self.f.ocop[d])] += 1;
        }
        self.top.push((self.f.key(self.sort, d), score as i64), doc);
    }

    fn harvest(self) -> Gathered {
        let mut f = Facets::default();
        if self.facets {
            let names = |names: &[String], counts: &[u64], out: &mut BTreeMap<String, u64>| {
                for (name, n) in names.iter().zip(&counts[1..]) {
                    if *n > 0 {
                        *out.entry(name.clone()).or_default() += n;
                    }
                }
            };
            names(&self.f.village_names, &self.village_counts, &mut f.village);
            names(
                &self.f.category_names,
                &self.category_counts,
                &mut f.category,
            );
            for (stars, n) in self.ocop_counts.iter().enumerate().skip(1) {
                if *n > 0 {
                    f.ocop_stars.insert(stars.to_string(), *n);
                }
            }
        }
        let ord = self.ord;
        let top = sorted(self.top)
            .into_iter()
            .map(|(k, doc)| (k, DocAddress::new(ord, doc)))
            .collect();
        (top, f, self.total)
    }
}

/// A word's terms with the index of their score among its distinct scores, lowest first
/// (a product keeps the index of its best; 0: none), and those scores.
type Coded = (Vec<(Term, u8)>, Vec<Score>);

fn coded(terms: &[(Term, Score)]) -> tantivy::Result<Coded> {
    let mut scores: Vec<Score> = terms.iter().map(|(_, s)| *s).collect();
    scores.sort_by(|a, b| a.total_cmp(b));
    scores.dedup();
    scores.insert(0, 0.0);
    if scores.len() > usize::from(u8::MAX) + 1 {
        return Err(tantivy::TantivyError::InvalidArgument(
            "too many distinct word scores".into(),
        ));
    }
    let terms = terms
        .iter()
        .map(|(t, s)| {
            let code = scores
                .iter()
                .position(|x| x == s)
                .expect("every score is listed") as u8;
            (t.clone(), code)
        })
        .collect();
    Ok((terms, scores))
}

/// A scorer's score for `doc`, or an error when it does not match.
fn explain_match(
    mut s: impl Scorer,
    name: &'static str,
    doc: DocId,
) -> tantivy::Result<Explanation> {
    if s.seek(doc) == doc {
        Ok(Explanation::new(name, s.score()))
    } else {
        Err(tantivy::TantivyError::InvalidArgument(format!(
            "document {doc} does not match"
        )))
    }
}

/// A word's terms as this segment holds them: where each one's postings are, with its code.
struct Found {
    terms: Vec<(
        Arc<tantivy::index::InvertedIndexReader>,
        tantivy::postings::TermInfo,
        u8,
    )>,
    /// The number of postings in all.
    len: u64,
}

/// Looks a word's terms up in one segment (once: the length orders the words, the place
/// reads them).
fn find_terms(reader: &SegmentReader, terms: &[(Term, u8)]) -> tantivy::Result<Found> {
    let mut found = Found {
        terms: vec![],
        len: 0,
    };
    let mut field = None;
    let mut inverted = None;
    for (term, code) in terms {
        if field != Some(term.field()) {
            field = Some(term.field());
            inverted = Some(reader.inverted_index(term.field())?);
        }
        let Some(inv) = &inverted else { continue };
        if let Some(info) = inv.get_term_info(term)? {
            found.len += u64::from(info.doc_freq);
            found.terms.push((inv.clone(), info, *code));
        }
    }
    Ok(found)
}

/// Reads each term's postings once, block by block, calling `each(doc, code)`.
fn read_terms(found: &Found, mut each: impl FnMut(DocId, u8)) -> tantivy::Result<()> {
    for (inv, info, code) in &found.terms {
        let mut postings = inv.read_block_postings_from_terminfo(info, IndexRecordOption::Basic)?;
        loop {
            let block = postings.docs();
            if block.is_empty() {
                break;
            }
            for &doc in block {
                each(doc, *code);
            }
            postings.advance();
        }
    }
    Ok(())
}

/// A word's terms and their scores.
type WordTerms = Vec<(Term, Score)>;

/// Every one-word group of the buyer's query at once (or one word of a synonym phrase): a
/// product must hold each word, through any of its terms (its exact form, typo and prefix
/// variants and one-word synonyms, in each searchable field), and scores the sum of each
/// word's best term. Every term's postings are read once, block by block, into a bitset and
/// one byte per product, shortest word first, a later word marking only products every
/// earlier word holds: no union scorer asked for every document of its hundreds of terms in
/// turn, nor words intersected scorer by scorer (together two thirds of a search at a
/// million products).
#[derive(Clone, Debug)]
struct WordsQuery {
    words: Arc<Vec<WordTerms>>,
}

impl WordsQuery {
    fn new(words: Vec<WordTerms>) -> WordsQuery {
        WordsQuery {
            words: Arc::new(words),
        }
    }
}

impl Query for WordsQuery {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let words = self
            .words
            .iter()
            .map(|w| coded(w))
            .collect::<tantivy::Result<_>>()?;
        Ok(Box::new(WordsWeight { words }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        for (t, _) in self.words.iter().flatten() {
            visitor(t, false);
        }
    }
}

struct WordsWeight {
    words: Vec<Coded>,
}

impl WordsWeight {
    fn words_scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<WordsScorer> {
        let max_doc = reader.max_doc() as usize;
        let buckets = max_doc.div_ceil(64);
        // Shortest postings first: the later, longer words then mark fewer products.
        let mut order: Vec<(u64, usize, Found)> = vec![];
        for (i, (terms, _)) in self.words.iter().enumerate() {
            let found = find_terms(reader, terms)?;
            order.push((found.len, i, found));
        }
        order.sort_unstable_by_key(|(len, i, _)| (*len, *i));
        let mut all: Option<Vec<u64>> = None;
        let mut best = vec![];
        let mut scores = vec![];
        for (_, i, found) in order {
            let word_scores = &self.words[i].1;
            let mut bits = SCRATCH_BITS.take(buckets);
            let mut mine = SCRATCH_BYTES.take(max_doc);
            match &all {
                None => read_terms(&found, |doc, code| {
                    let d = doc as usize;
                    bits[d >> 6] |= 1 << (d & 63);
                    if mine[d] < code {
                        mine[d] = code;
                    }
                })?,
                Some(all) => read_terms(&found, |doc, code| {
                    let d = doc as usize;
                    if all[d >> 6] & (1 << (d & 63)) != 0 {
                        bits[d >> 6] |= 1 << (d & 63);
                        if mine[d] < code {
                            mine[d] = code;
                        }
                    }
                })?,
            }
            // Only products every earlier word holds were marked: `bits` is the AND so far.
            if let Some(earlier) = all.replace(bits) {
                SCRATCH_BITS.give(earlier);
            }
            best.push(mine);
            scores.push(word_scores.iter().map(|s| s * boost).collect());
        }
        let bits = all.unwrap_or_default();
        let len = bits.iter().map(|b| b.count_ones()).sum();
        let mut scorer = WordsScorer {
            bits,
            bucket: 0,
            rest: 0,
            doc: 0,
            len,
            best,
            scores,
        };
        scorer.rest = scorer.bits.first().copied().unwrap_or(0);
        scorer.advance();
        Ok(scorer)
    }
}

impl Weight for WordsWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(Box::new(self.words_scorer(reader, boost)?))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        explain_match(self.words_scorer(reader, 1.0)?, "WordsScorer", doc)
    }
}

/// Per-product scratch arrays, kept between queries (at most `KEPT_SCRATCH` of each kind). A
/// word fills a byte and a bit per product of a segment: fresh, each megabyte cost page
/// faults as it was first written and TLB shootdowns as it was given back, a tenth of a busy
/// server's time at a million products.
struct Scratch<T>(Mutex<Vec<Vec<T>>>);

const KEPT_SCRATCH: usize = 32;

static SCRATCH_BYTES: Scratch<u8> = Scratch(Mutex::new(Vec::new()));
static SCRATCH_BITS: Scratch<u64> = Scratch(Mutex::new(Vec::new()));

impl<T: Copy + Default> Scratch<T> {
    /// `n` zeros, in a kept array when there is one.
    fn take(&self, n: usize) -> Vec<T> {
        let kept = self.0.lock().map(|mut k| k.pop()).unwrap_or_default();
        let mut v = kept.unwrap_or_default();
        v.clear();
        v.resize(n, T::default());
        v
    }

    fn give(&self, v: Vec<T>) {
        if let Ok(mut k) = self.0.lock()
            && k.len() < KEPT_SCRATCH
        {
            k.push(v);
        }
    }
}

/// The products holding every word (a bitset walked bucket by bucket) and each word's best.
struct WordsScorer {
    bits: Vec<u64>,
    bucket: usize,
    /// The current bucket's bits not yet visited.
    rest: u64,
    doc: DocId,
    len: u32,
    best: Vec<Vec<u8>>,
    scores: Vec<Vec<Score>>,
}

impl Drop for WordsScorer {
    fn drop(&mut self) {
        SCRATCH_BITS.give(std::mem::take(&mut self.bits));
        for best in self.best.drain(..) {
            SCRATCH_BYTES.give(best);
        }
    }
}

impl DocSet for WordsScorer {
    fn advance(&mut self) -> DocId {
        while self.rest == 0 {
            self.bucket += 1;
            if self.bucket >= self.bits.len() {
                self.doc = TERMINATED;
                return TERMINATED;
            }
            self.rest = self.bits[self.bucket];
        }
        let bit = self.rest.trailing_zeros();
        self.rest &= self.rest - 1;
        self.doc = (self.bucket as DocId) * 64 + bit;
        self.doc
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc >= target {
            return self.doc;
        }
        let bucket = (target / 64) as usize;
        if bucket >= self.bits.len() {
            self.doc = TERMINATED;
            return TERMINATED;
        }
        if bucket > self.bucket {
            self.bucket = bucket;
            self.rest = self.bits[bucket];
        }
        // Drop the bits below the target in its bucket.
        self.rest &= u64::MAX << (target % 64);
        self.advance()
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.len
    }
}

impl Scorer for WordsScorer {
    fn score(&mut self) -> Score {
        let d = self.doc as usize;
        self.best
            .iter()
            .zip(&self.scores)
            .map(|(best, scores)| scores[usize::from(best[d])])
            .sum()
    }
}

#[async_trait::async_trait]
impl Catalogue for Embedded {
    fn name(&self) -> &'static str {
        "embedded"
    }

    async fn health(&self) -> Result<(), SearchError> {
        // In this process: it answers when a count does.
        self.count().await.map(|_| ())
    }

    async fn prepare(&self) -> Result<bool, SearchError> {
        let fresh = self.inner.fresh;
        let n = self.count().await?;
        Ok(fresh || n == 0)
    }

    async fn upsert(&self, docs: &[SearchDoc]) -> Result<(), SearchError> {
        let docs = docs.to_vec();
        self.blocking(move |inner| {
            let mut w = inner.writer.lock().expect("writer lock");
            for d in &docs {
                w.delete_term(Term::from_field_i64(inner.fields.id, d.id));
                w.add_document(inner.to_doc(d)).map_err(engine_err)?;
            }
            inner.commit(&mut w).map_err(engine_err)
        })
        .await
    }

    async fn delete(&self, ids: &[i64]) -> Result<(), SearchError> {
        let ids = ids.to_vec();
        self.blocking(move |inner| {
            let mut w = inner.writer.lock().expect("writer lock");
            for id in &ids {
                w.delete_term(Term::from_field_i64(inner.fields.id, *id));
            }
            inner.commit(&mut w).map_err(engine_err)
        })
        .await
    }

    async fn replace_all(&self, docs: &[SearchDoc]) -> Result<(), SearchError> {
        let docs = docs.to_vec();
        self.blocking(move |inner| {
            let mut w = inner.writer.lock().expect("writer lock");
            // Not `delete_all_documents`: it sets the writer's opstamps back to those of its
            // opening (quickwit-oss/tantivy#2666), and a delete of an earlier edit still in
            // the queue then removes rebuilt documents. A delete of everything gets the next
            // opstamp and, like any delete, only hits documents added before it.
            w.delete_query(Box::new(AllQuery)).map_err(engine_err)?;
            for d in &docs {
                w.add_document(inner.to_doc(d)).map_err(engine_err)?;
            }
            inner.commit(&mut w).map_err(engine_err)
        })
        .await
    }

    async fn search(&self, plan: &Plan) -> Result<EngineResult, SearchError> {
        if self.answers.lock().expect("answers lock").capacity == 0 {
            let plan = plan.clone();
            return self.blocking(move |inner| inner.search(&plan)).await;
        }
        let generation = self.inner.reader.searcher().generation().generation_id();
        let key = format!("{plan:?}");
        if let Some(a) = self
            .answers
            .lock()
            .expect("answers lock")
            .get(generation, &key)
        {
            return Ok((*a).clone());
        }
        let plan = plan.clone();
        let (generation, answer) = self
            .blocking(move |inner| {
                // The answer belongs to the searcher that computed it.
                let searcher = inner.reader.searcher();
                let g = searcher.generation().generation_id();
                Ok((g, inner.search_with(&searcher, &plan)?))
            })
            .await?;
        self.answers
            .lock()
            .expect("answers lock")
            .put(generation, key, Arc::new(answer.clone()));
        Ok(answer)
    }

    async fn count(&self) -> Result<u64, SearchError> {
        self.blocking(|inner| Ok(inner.reader.searcher().num_docs()))
            .await
    }
}

impl Embedded {
    /// In-process search without the tokio hop (benchmarks).
    pub fn search_now(&self, plan: &Plan) -> Result<EngineResult, SearchError> {
        self.inner.search(plan)
    }

    pub fn index(&self) -> &Index {
        &self.inner.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: i64) -> SearchDoc {
        SearchDoc {
            id,
            name: format!("Màn tuyn số {id}"),
            description: "Màn tuyn Phú Đôi".into(),
            category: "Màn tuyn".into(),
            materials: String::new(),
            maker: String::new(),
            village_slug: "phu-doi".into(),
            village_name: "Phú Đôi".into(),
            shop_name: "Cơ sở Hà".into(),
            price_vnd: 150_000,
            in_stock: true,
            ocop_stars: 0,
            created_at: id,
        }
    }

    fn engine(dir: &Path) -> Embedded {
        let settings = SearchSettings::parse(include_str!("../../search-config/products.json"))
            .expect("settings");
        Embedded::open(dir, Arc::new(settings)).expect("open")
    }

    /// A writer that has committed edits (each a delete of the id, then an add) rebuilds to
    /// exactly the documents given. tantivy's `delete_all_documents` sets the writer's
    /// opstamps back to those of its opening (quickwit-oss/tantivy#2666), so an edit's
    /// delete, still in the delete queue, could hit a rebuilt document added "before" it: a
    /// server lost one of 49 products after `cholang reindex` that way (CI, PostgreSQL).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rebuild_after_edits_keeps_every_document() {
        let dir = tempfile::tempdir().unwrap();
        let all: Vec<SearchDoc> = (1..=49).map(doc).collect();
        let edits: Vec<SearchDoc> = (1..=8).rev().map(doc).collect();
        let e = engine(dir.path());
        // Which indexing thread takes which document is up to the threads: many rounds.
        for round in 0..40 {
            e.replace_all(&[]).await.unwrap();
            e.upsert(&edits).await.unwrap();
            e.replace_all(&all).await.unwrap();
            assert_eq!(e.count().await.unwrap(), 49, "round {round}");
        }
        e.upsert(&all[..10]).await.unwrap();
        e.delete(&[49]).await.unwrap();
        assert_eq!(e.count().await.unwrap(), 48);
        drop(e);
        let e = engine(dir.path());
        assert_eq!(e.count().await.unwrap(), 48, "after a reopen");
        e.replace_all(&all[..20]).await.unwrap();
        assert_eq!(e.count().await.unwrap(), 20, "a rebuild drops what is gone");
    }

    /// A kept answer lasts until the next change: the same search after an edit, a new
    /// product and a removal counts what is there now.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kept_answers_end_with_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let e = engine(dir.path()).with_cache(8);
        let settings = e.inner.settings.clone();
        let plan = Plan {
            folded_query: "man tuyn".into(),
            groups: Plan::groups("màn tuyn", &settings),
            filters: Default::default(),
            sort: Sort::Relevance,
            offset: 0,
            limit: 20,
            with_exact: false,
            with_facets: true,
        };
        e.replace_all(&(1..=3).map(doc).collect::<Vec<_>>())
            .await
            .unwrap();
        let first = e.search(&plan).await.unwrap();
        assert_eq!(first.total, 3);
        assert_eq!(
            e.answers.lock().unwrap().kept.len(),
            1,
            "the answer is kept"
        );
        assert_eq!(e.search(&plan).await.unwrap(), first, "asked again");
        assert_eq!(
            e.answers.lock().unwrap().kept.len(),
            1,
            "and served, not added"
        );
        e.upsert(&[doc(4)]).await.unwrap();
        let r = e.search(&plan).await.unwrap();
        assert_eq!(r.total, 4, "a new product is found at once");
        assert_eq!(
            e.answers.lock().unwrap().kept.len(),
            1,
            "older answers dropped"
        );
        assert_eq!(r.facets.village.get("phu-doi"), Some(&4));
        e.delete(&[1, 2]).await.unwrap();
        assert_eq!(e.search(&plan).await.unwrap().total, 2);
        let mut moved = doc(3);
        moved.village_slug = "chuyen-my".into();
        e.upsert(&[moved]).await.unwrap();
        let r = e.search(&plan).await.unwrap();
        assert_eq!(
            r.facets.village.get("chuyen-my"),
            Some(&1),
            "{:?}",
            r.facets
        );
        assert_eq!(r.facets.village.get("phu-doi"), Some(&1));
    }
    /// The single-pass collector keeps what `TopDocs` kept (tantivy's top-n buffer, set for
    /// the largest keys): the best `n` by key, the lower document first on a tie, whatever
    /// order of keys and however many ties come.
    #[test]
    fn top_keys_keep_the_best_in_order() {
        proptest::proptest!(|(keys in proptest::collection::vec((0i64..4, 0i64..3), 0..300),
                               n in 1usize..40)| {
            let mut top = top_keys(n);
            let mut all = vec![];
            for (doc, k) in keys.iter().enumerate() {
                top.push(*k, doc as DocId);
                all.push((*k, doc as DocId));
            }
            all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            all.truncate(n);
            proptest::prop_assert_eq!(sorted(top), all);
        });
    }

    /// The query with no words and no filters, answered from each segment's kept counts
    /// and sort orders, gives what a pass over every product gives (`AllQuery` through
    /// `Gather`): the same total, facets and first products in order for every sort, ties
    /// included, across segments, after deletions (which a kept count must not outlive),
    /// and for a page further on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_product_without_a_pass_gives_what_a_pass_gives() {
        let dir = tempfile::tempdir().unwrap();
        let e = engine(dir.path());
        let product = |id: i64| SearchDoc {
            // Few prices and dates: many ties, settled by the document's address.
            price_vnd: 1_000 * (id % 7),
            created_at: id % 5,
            village_slug: format!("lang-{}", id % 3),
            category: format!("Loại {}", id % 4),
            ocop_stars: id % 6,
            ..doc(id)
        };
        let compare = |e: &Embedded, when: &str| {
            let searcher = e.inner.reader.searcher();
            for sort in [
                None,
                Some((SortColumn::Price, -1)),
                Some((SortColumn::Price, 1)),
                Some((SortColumn::Created, 1)),
            ] {
                for (top_n, facets) in [(20, true), (7, false), (500, true)] {
                    let gather = Gather {
                        segs: &e.inner.seg_facets,
                        sort,
                        top_n,
                        facets,
                    };
                    let pass = searcher.search(&AllQuery, &gather).unwrap();
                    let kept = gather.everything(&searcher).unwrap();
                    assert_eq!(kept, pass, "{when}: top {top_n}");
                }
            }
        };
        for batch in 0..4 {
            let docs: Vec<SearchDoc> = (batch * 50..batch * 50 + 50).map(product).collect();
            e.upsert(&docs).await.unwrap();
        }
        assert!(e.inner.reader.searcher().segment_readers().len() >= 2);
        compare(&e, "four commits");
        e.delete(&(0..200).filter(|i| i % 9 == 0).collect::<Vec<_>>())
            .await
            .unwrap();
        compare(&e, "after deletions");
        e.delete(&[1, 2, 3]).await.unwrap();
        compare(&e, "after more deletions");
        assert_eq!(e.count().await.unwrap(), 200 - 23 - 3);
    }

    fn plan(q: &str, sort: Sort, settings: &SearchSettings) -> Plan {
        Plan {
            folded_query: String::new(),
            groups: Plan::groups(q, settings),
            filters: Default::default(),
            sort,
            offset: 0,
            limit: 20,
            with_exact: false,
            with_facets: true,
        }
    }

    /// Rank by the rules whatever segment a product sits in: the word in the name before the
    /// word in the description, the word before a typo of it, one-word synonyms as the word,
    /// every word's best summed; a sort first, relevance within it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ranking_follows_the_rules_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let e = engine(dir.path());
        let settings = e.inner.settings.clone();
        let product =
            |id: i64, name: &str, description: &str, materials: &str, price: i64| SearchDoc {
                name: name.into(),
                description: description.into(),
                materials: materials.into(),
                category: "Đồ dùng".into(),
                price_vnd: price,
                ..doc(id)
            };
        // Three commits, each of one segment or more (an indexing thread writes its own):
        // no two products below tie, as which segment comes first is up to the index.
        e.upsert(&[
            product(1, "Chiếu cói", "dệt tay, hợp màn tuyn", "", 100),
            product(2, "Màn tuyn đôi", "vải mềm, như màn tuyn Phú Đôi", "", 300),
            SearchDoc {
                category: "Màn tuyn".into(),
                ..product(5, "Màn đơn", "vải mềm", "", 300)
            },
        ])
        .await
        .unwrap();
        e.upsert(&[
            product(3, "Mùng trắng", "vải mềm", "tuyn", 200),
            product(4, "Tấm tuyen", "vải", "", 50),
        ])
        .await
        .unwrap();
        e.upsert(&[
            product(6, "Gối", "không liên quan", "", 10),
            product(7, "Bộ đồ nam", "bộ com lê may đo", "", 900),
            product(8, "Áo vest", "vải", "", 800),
        ])
        .await
        .unwrap();
        let segments = e.inner.reader.searcher().segment_readers().len();
        assert!(segments >= 2, "{segments} segment(s)");
        let ids = |r: EngineResult| r.hits.iter().map(|h| h.id).collect::<Vec<_>>();

        let r = e
            .search_now(&plan("tuyn", Sort::Relevance, &settings))
            .unwrap();
        assert_eq!(r.total, 5);
        // In the name: 2 (in its description too: the best counts); in the category: 5; in
        // the materials: 3; in the description: 1; a typo of it in the name: 4.
        assert_eq!(ids(r), vec![2, 5, 3, 1, 4]);

        // "mùng" means "màn": a one-word synonym scores as the word itself.
        let r = e
            .search_now(&plan("mùng tuyn", Sort::Relevance, &settings))
            .unwrap();
        assert_eq!(ids(r), vec![2, 5, 3, 1]);

        // A sort first (a tie on price: relevance).
        let r = e
            .search_now(&plan("tuyn", Sort::PriceAsc, &settings))
            .unwrap();
        assert_eq!(ids(r), vec![4, 1, 3, 2, 5]);
        let r = e
            .search_now(&plan("tuyn", Sort::PriceDesc, &settings))
            .unwrap();
        assert_eq!(ids(r), vec![2, 5, 3, 1, 4]);
        let r = e.search_now(&plan("", Sort::Newest, &settings)).unwrap();
        assert_eq!(ids(r.clone()), vec![8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(r.facets.village.get("phu-doi"), Some(&8));

        // A several-word synonym ("vest": "com lê") is every word of it, scored as one word:
        // in the description, below the word itself in a name.
        let r = e
            .search_now(&plan("vest", Sort::Relevance, &settings))
            .unwrap();
        assert_eq!(ids(r), vec![8, 7]);
        let r = e
            .search_now(&plan("vest may", Sort::Relevance, &settings))
            .unwrap();
        assert_eq!(ids(r), vec![7]);

        // A page further on, and facets left out when not asked.
        let mut p = plan("tuyn", Sort::Relevance, &settings);
        p.offset = 3;
        p.limit = 1;
        p.with_facets = false;
        let r = e.search_now(&p).unwrap();
        assert_eq!((r.total, ids(r.clone())), (5, vec![1]));
        assert!(r.facets.village.is_empty());
    }
}
