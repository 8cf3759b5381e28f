//! Catalogue search: one `Catalogue` interface, two engines (embedded tantivy by default,
//! Meilisearch when `MEILI_URL` is set), the same settings (`search-config/`) and the same
//! Vietnamese rules for both.
//!
//! What is shared, so switching engines does not change what buyers find:
//! * text: both engines index and match folded words (`text::fold`); the query is planned
//!   here (stop words, synonyms, last-word prefix) and an exact-diacritics match is ranked
//!   first here (`rerank`), over the engine's top window;
//! * truth: hits are hydrated from the database, so price and stock in search are always
//!   those of the product page; the index only decides which products and in what order;
//! * highlights are computed here from the plan.
//!
//! Keeping the index true is `crate::index_queue` (a durable queue written in the same transaction as
//! each change) and `sync` (the worker that applies it, with retries).

pub mod embedded;
pub mod meili;

pub mod settings;
pub mod store;
pub mod sync;
pub mod text;
pub mod vocab;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::catalog::ProductCard;
use crate::db::Db;
use crate::error::{AppError, FieldErrors};
pub use settings::SearchSettings;

/// Attributes a document offers for full-text search (the settings pick and order them).
pub const SEARCHABLE_FIELDS: &[&str] = &[
    "name",
    "category",
    "village",
    "shop",
    "materials",
    "maker",
    "description",
];
/// Attributes a document offers for filters and sorts.
pub const FILTER_FIELDS: &[&str] = &[
    "village_slug",
    "category_key",
    "category_label",
    "ocop_stars",
    "price_vnd",
    "in_stock",
    "created_at",
];

/// At most this many shorter queries are tried when nothing matched.
pub const MAX_SUGGESTION_QUERIES: usize = 6;

/// At most this many engine queries look for the products matching most of the words.
pub const MAX_FALLBACK_QUERIES: usize = 10;

/// How many top hits the exact-diacritics rank reorders; later pages keep the engine's order.
pub const RERANK_WINDOW: usize = 200;

/// What an engine stores for one product. Built from the database by `store::docs`.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchDoc {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub category: String,
    pub materials: String,
    pub maker: String,
    pub village_slug: String,
    pub village_name: String,
    pub shop_name: String,
    pub price_vnd: i64,
    pub in_stock: bool,
    /// 0 when the product has no OCOP rating.
    pub ocop_stars: i64,
    pub created_at: i64,
}

impl SearchDoc {
    /// The original text of a searchable attribute.
    pub fn searchable(&self, attr: &str) -> &str {
        match attr {
            "name" => &self.name,
            "category" => &self.category,
            "village" => &self.village_name,
            "shop" => &self.shop_name,
            "materials" => &self.materials,
            "maker" => &self.maker,
            "description" => &self.description,
            _ => "",
        }
    }

    /// Exact forms of the words a buyer sees first (name, category, village, shop).
    pub fn exact_words(&self) -> String {
        [
            &self.name,
            &self.category,
            &self.village_name,
            &self.shop_name,
        ]
        .iter()
        .flat_map(|s| text::words(s))
        .map(|w| text::exact(&w))
        .collect::<Vec<_>>()
        .join(" ")
    }

    /// The document as both engines store it: folded searchable text, raw filter values.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("id".into(), self.id.into());
        for f in SEARCHABLE_FIELDS {
            m.insert((*f).into(), text::fold_text(self.searchable(f)).into());
        }
        m.insert("village_slug".into(), self.village_slug.clone().into());
        m.insert(
            "category_key".into(),
            text::fold_text(&self.category).into(),
        );
        m.insert("category_label".into(), self.category.clone().into());
        m.insert("ocop_stars".into(), self.ocop_stars.into());
        m.insert("price_vnd".into(), self.price_vnd.into());
        m.insert("in_stock".into(), i64::from(self.in_stock).into());
        m.insert("created_at".into(), self.created_at.into());
        m.insert("exact".into(), self.exact_words().into());
        serde_json::Value::Object(m)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    Relevance,
    PriceAsc,
    PriceDesc,
    Newest,
}

impl Sort {
    pub fn parse(s: &str) -> Option<Sort> {
        match s {
            "" | "relevance" => Some(Sort::Relevance),
            "price_asc" => Some(Sort::PriceAsc),
            "price_desc" => Some(Sort::PriceDesc),
            "newest" => Some(Sort::Newest),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Relevance => "relevance",
            Sort::PriceAsc => "price_asc",
            Sort::PriceDesc => "price_desc",
            Sort::Newest => "newest",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    pub village: Option<String>,
    pub category: Option<String>,
    pub ocop_min: Option<i64>,
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    pub in_stock: Option<bool>,
}

/// A buyer's search, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    pub q: String,
    pub filters: Filters,
    pub sort: Sort,
    pub page: usize,
    pub per_page: usize,
}

pub const MAX_PER_PAGE: usize = 100;

impl SearchRequest {
    /// Parse the query-string parameters; every bad one is named in the error.
    pub fn parse(p: &HashMap<String, String>) -> Result<SearchRequest, AppError> {
        let mut e = FieldErrors::new();
        let get = |k: &str| p.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
        let int = |e: &mut FieldErrors, k: &str, min: i64, max: i64| -> Option<i64> {
            let s = get(k)?;
            match s.parse::<i64>() {
                Ok(v) if (min..=max).contains(&v) => Some(v),
                _ => {
                    e.add(k, format!("phải là số nguyên từ {min} đến {max}"));
                    None
                }
            }
        };
        let q = p.get("q").map(|s| s.trim().to_string()).unwrap_or_default();
        if q.chars().count() > 200 {
            e.add("q", "từ khoá dài quá 200 ký tự");
        }
        let village = get("village").map(str::to_string);
        if let Some(v) = &village
            && crate::domain::Slug::parse(v).is_err()
        {
            e.add("village", "mã làng không hợp lệ");
        }
        let category = get("category").map(crate::domain::text::nfc);
        if category.as_ref().is_some_and(|c| c.chars().count() > 60) {
            e.add("category", "loại hàng dài quá 60 ký tự");
        }
        let ocop_min = int(&mut e, "ocop_min", 1, 5);
        // Prices as people type them: 200.000, 200,000, 200000, 200k, 200 nghìn.
        let money = |e: &mut FieldErrors, k: &str| -> Option<i64> {
            let s = get(k)?;
            match crate::domain::money::parse_amount(s) {
                Ok(v) => Some(v),
                Err(m) => {
                    e.add(k, m);
                    None
                }
            }
        };
        let price_min = money(&mut e, "price_min");
        let price_max = money(&mut e, "price_max");
        if let (Some(a), Some(b)) = (price_min, price_max)
            && a > b
        {
            e.add("price_max", "giá tối đa phải không nhỏ hơn giá tối thiểu");
        }
        let in_stock = match get("in_stock") {
            None => None,
            Some("1" | "true") => Some(true),
            Some("0" | "false") => Some(false),
            Some(_) => {
                e.add("in_stock", "chỉ nhận true/false hoặc 1/0");
                None
            }
        };
        let sort = match Sort::parse(get("sort").unwrap_or("")) {
            Some(s) => s,
            None => {
                e.add(
                    "sort",
                    "chỉ nhận relevance, price_asc, price_desc hoặc newest",
                );
                Sort::Relevance
            }
        };
        let page = int(&mut e, "page", 1, 1000).unwrap_or(1) as usize;
        let per_page = int(&mut e, "per_page", 1, MAX_PER_PAGE as i64).unwrap_or(20) as usize;
        e.into_result()?;
        Ok(SearchRequest {
            q,
            filters: Filters {
                village,
                category,
                ocop_min,
                price_min,
                price_max,
                in_stock,
            },
            sort,
            page,
            per_page,
        })
    }
}

/// One alternative spelling of a query group: its folded words, all of which must match.
#[derive(Debug, Clone, PartialEq)]
pub struct Alt {
    pub tokens: Vec<String>,
    /// The buyer's own words (typo-tolerant); synonyms match exactly.
    pub original: bool,
    /// The last word as the buyer types: any indexed word starting with it matches.
    pub prefix: bool,
}

/// One query word, or a multi-word synonym phrase: a document must match one alternative.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub alts: Vec<Alt>,
    /// Exact forms that, found in a document, rank it first. Empty when the buyer typed
    /// no diacritics and the word has no synonym with them.
    pub exact_variants: Vec<String>,
    /// The word as typed (lower case, NFC) when the buyer typed one word with diacritics:
    /// it then means itself, not every word that folds the same ("bàn" is not "bản").
    pub marked: Option<String>,
}

/// What an engine is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub groups: Vec<Group>,
    /// The buyer's folded words without stop words, as Meilisearch gets them.
    pub folded_query: String,
    pub filters: Filters,
    pub sort: Sort,
    pub offset: usize,
    pub limit: usize,
    pub with_exact: bool,
    pub with_facets: bool,
}

impl Plan {
    /// Turn a query into groups: stop words out (unless nothing else is left), synonym
    /// phrases (up to three words) recognised, the last word a prefix.
    pub fn groups(q: &str, s: &SearchSettings) -> Vec<Group> {
        let mut words: Vec<String> = text::words(q).into_iter().take(10).collect();
        let kept: Vec<String> = words
            .iter()
            .filter(|w| !s.stop_words.contains(&text::exact(w)))
            .cloned()
            .collect();
        if !kept.is_empty() {
            words = kept;
        }
        let folded: Vec<String> = words.iter().map(|w| text::fold(w)).collect();
        let exact: Vec<String> = words.iter().map(|w| text::exact(w)).collect();
        let mut groups = vec![];
        let mut i = 0;
        while i < words.len() {
            let mut span = 1;
            for k in (2..=3).rev() {
                if i + k <= words.len() && s.synonyms.contains_key(&folded[i..i + k].join(" ")) {
                    span = k;
                    break;
                }
            }
            let key = folded[i..i + span].join(" ");
            let exact_key = exact[i..i + span].join(" ");
            let is_last = i + span == words.len();
            let mut alts = vec![Alt {
                tokens: folded[i..i + span].to_vec(),
                original: true,
                prefix: is_last && span == 1,
            }];
            for syn in s.synonyms.get(&key).into_iter().flatten() {
                alts.push(Alt {
                    tokens: syn.split(' ').map(str::to_string).collect(),
                    original: false,
                    prefix: false,
                });
            }
            let typed_marks = words[i..i + span].iter().any(|w| text::has_diacritics(w));
            let mut exact_variants = vec![];
            if typed_marks || s.exact_synonyms.contains_key(&exact_key) {
                exact_variants.push(exact_key.clone());
                if let Some(more) = s.exact_synonyms.get(&exact_key) {
                    exact_variants.extend(more.iter().cloned());
                }
            }
            let marked =
                (span == 1 && text::has_diacritics(&words[i])).then(|| words[i].to_lowercase());
            groups.push(Group {
                alts,
                exact_variants,
                marked,
            });
            i += span;
        }
        groups
    }
}

/// One hit as an engine returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineHit {
    pub id: i64,
    /// `SearchDoc::exact_words`, when the plan asked for it.
    pub exact: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Facets {
    pub village: BTreeMap<String, u64>,
    pub category: BTreeMap<String, u64>,
    pub ocop_stars: BTreeMap<String, u64>,
}

impl Facets {
    /// Products with at least N stars, per N the matches have: what an "OCOP from N stars"
    /// filter (`ocop_min`) would find, so the page's links and the API count alike.
    pub fn ocop_at_least(&self) -> BTreeMap<String, u64> {
        self.ocop_stars
            .keys()
            .map(|stars| {
                let n = stars.parse::<i64>().ok();
                let count = self
                    .ocop_stars
                    .iter()
                    .filter(|(s, _)| s.parse::<i64>().ok() >= n)
                    .map(|(_, c)| c)
                    .sum();
                (stars.clone(), count)
            })
            .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineResult {
    pub total: u64,
    pub hits: Vec<EngineHit>,
    pub facets: Facets,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The engine cannot be reached: the sync worker retries, searches get a 503.
    #[error("search engine unavailable: {0}")]
    Unavailable(String),
    /// The engine answered with an error (a failed task, a bad setting).
    #[error("search engine error: {0}")]
    Engine(String),
}

impl From<SearchError> for AppError {
    fn from(e: SearchError) -> Self {
        match e {
            SearchError::Unavailable(_) => {
                AppError::Unavailable("tìm kiếm đang bảo trì, vui lòng thử lại sau ít phút".into())
            }
            SearchError::Engine(m) => AppError::Internal(anyhow::anyhow!(m)),
        }
    }
}

/// A search engine holding the catalogue.
#[async_trait::async_trait]
pub trait Catalogue: Send + Sync {
    fn name(&self) -> &'static str;
    /// Apply the settings; true when the index must be rebuilt (new, empty or changed).
    async fn prepare(&self) -> Result<bool, SearchError>;
    async fn upsert(&self, docs: &[SearchDoc]) -> Result<(), SearchError>;
    async fn delete(&self, ids: &[i64]) -> Result<(), SearchError>;
    /// Replace the whole index with these documents; searches see the old index until done.
    async fn replace_all(&self, docs: &[SearchDoc]) -> Result<(), SearchError>;
    async fn search(&self, plan: &Plan) -> Result<EngineResult, SearchError>;
    async fn count(&self) -> Result<u64, SearchError>;
    /// Whether the engine answers (readiness).
    async fn health(&self) -> Result<(), SearchError>;
}

/// Number of groups whose exact variants appear in a document's exact words.
fn exact_score(groups: &[Group], exact_words: &str) -> usize {
    let padded = format!(" {exact_words} ");
    groups
        .iter()
        .filter(|g| {
            g.exact_variants
                .iter()
                .any(|v| padded.contains(&format!(" {v} ")))
        })
        .count()
}

/// Exact-diacritics matches first, the engine's order otherwise (a stable sort).
pub fn rerank(groups: &[Group], hits: &mut [EngineHit]) {
    if groups.iter().all(|g| g.exact_variants.is_empty()) {
        return;
    }
    hits.sort_by_cached_key(|h| {
        std::cmp::Reverse(exact_score(groups, h.exact.as_deref().unwrap_or("")))
    });
}

/// Whether one word of a product's own text answers one of the buyer's words, honestly: a
/// word typed with diacritics matches itself (as a prefix when it is the last word; typos
/// within the budget), never another word that only folds the same ("nón" is not "nông",
/// "bàn" not "bản"); a word typed without them matches folded, as the highlight does.
fn honest_word_match(groups: &[Group], s: &SearchSettings, word: &str) -> bool {
    let f = text::fold(word);
    let lower = word.to_lowercase();
    groups.iter().any(|g| {
        g.alts.iter().any(|a| {
            if a.original && a.tokens.len() == 1 {
                match &g.marked {
                    Some(m) => {
                        lower == *m
                            || (a.prefix && lower.starts_with(m.as_str()))
                            || text::typos(m, &lower, s.typo_budget(&a.tokens[0])).is_some()
                    }
                    None => {
                        let t = &a.tokens[0];
                        f == *t
                            || (a.prefix && f.starts_with(t.as_str()))
                            || text::typos(t, &f, s.typo_budget(t)).is_some()
                    }
                }
            } else {
                a.tokens.contains(&f)
            }
        })
    })
}

/// Whether a product's own text (name, category, materials, description) holds at least one
/// of the buyer's words, or the buyer typed the name of its shop or village (every word, in
/// order): a result that does neither (found only through a word of its shop's name, or a
/// word that only folds like one typed) is not shown. No words: everything answers.
pub fn own_text_answers(
    groups: &[Group],
    s: &SearchSettings,
    own_text: &str,
    sold_under: &str,
) -> bool {
    if groups.is_empty() {
        return true;
    }
    if text::words(own_text)
        .iter()
        .any(|w| honest_word_match(groups, s, w))
    {
        return true;
    }
    let names = text::words(sold_under);
    names.windows(groups.len()).any(|w| {
        w.iter()
            .zip(groups)
            .all(|(word, g)| honest_word_match(std::slice::from_ref(g), s, word))
    })
}

/// About ten words of `own_text` around the first word that answers the buyer, highlighted,
/// with "…" where text was left out.
pub fn snippet(groups: &[Group], s: &SearchSettings, own_text: &str) -> Option<String> {
    let tokens: Vec<&str> = own_text.split_whitespace().collect();
    let at = tokens.iter().position(|t| {
        text::words(t)
            .iter()
            .any(|w| honest_word_match(groups, s, w))
    })?;
    let start = at.saturating_sub(4);
    let end = (at + 6).min(tokens.len());
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.push_str(&highlight(groups, s, &tokens[start..end].join(" ")));
    if end < tokens.len() {
        out.push('…');
    }
    Some(out)
}

/// The text with matched words in `<mark>`, HTML-escaped.
pub fn highlight(groups: &[Group], s: &SearchSettings, original: &str) -> String {
    let src = crate::domain::text::nfc(original);
    let mut out = String::with_capacity(src.len() + 16);
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.is_empty() {
            return;
        }
        if honest_word_match(groups, s, word) {
            out.push_str("<mark>");
            out.push_str(&escape(word));
            out.push_str("</mark>");
        } else {
            out.push_str(&escape(word));
        }
        word.clear();
    };
    for c in src.chars() {
        if c.is_alphanumeric() || unicode_normalization::char::is_combining_mark(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push_str(&escape(&c.to_string()));
        }
    }
    flush(&mut word, &mut out);
    out
}

use crate::domain::text::escape_html as escape;

#[derive(Debug, Clone)]
pub struct Hit {
    pub card: ProductCard,
    pub highlight: String,
    /// When the name holds none of the buyer's words: the words around the first one in the
    /// product's own text, with it in `<mark>` (HTML, escaped).
    pub snippet: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Suggestion {
    pub q: String,
    pub total: u64,
}

#[derive(Debug, Clone)]
pub struct SearchOutcome {
    pub total: u64,
    pub hits: Vec<Hit>,
    pub facets: Facets,
    pub took_ms: u64,
    /// The sort actually used (an empty query sorts by newest).
    pub sort: Sort,
    /// When nothing matched: shorter queries that do.
    pub suggestions: Vec<Suggestion>,
    /// No product has every word: the hits are the products with the most of them.
    pub most_words: bool,
}

/// A request turned into engine terms (`Search::prepare`).
struct Prepared {
    groups: Vec<Group>,
    folded_query: String,
    filters: Filters,
    sort: Sort,
    offset: usize,
    limit: usize,
    boost: bool,
    window: usize,
}

impl Prepared {
    fn plan(&self, offset: usize, limit: usize, with_exact: bool, with_facets: bool) -> Plan {
        Plan {
            groups: self.groups.clone(),
            folded_query: self.folded_query.clone(),
            filters: self.filters.clone(),
            sort: self.sort,
            offset,
            limit,
            with_exact,
            with_facets,
        }
    }

    /// Exact spellings re-rank the first `window` hits when the page falls in them.
    fn reranks(&self) -> bool {
        self.boost && self.offset < self.window
    }

    fn first(&self) -> Plan {
        if self.reranks() {
            self.plan(0, self.window, true, true)
        } else {
            self.plan(self.offset, self.limit, false, true)
        }
    }
}

/// The search service: the engine behind the `Catalogue` trait, the settings, the database.
#[derive(Clone)]
pub struct Search {
    pub engine: Arc<dyn Catalogue>,
    pub settings: Arc<SearchSettings>,
    pub db: Db,
    /// Hits' cards and texts kept until the catalogue changes (`with_kept`); none until then.
    pub kept: Arc<KeptHits>,
}

/// What hydrating a hit reads from the database, by product id, kept until the catalogue
/// changes (`db::Kept`): its card (price and stock as the product page shows them) and its
/// own text with the names it is sold under (what `honest` and snippets check).
pub struct KeptHits {
    pub cards: crate::db::Kept<i64, ProductCard>,
    pub texts: crate::db::Kept<i64, (String, String)>,
}

impl KeptHits {
    pub fn new(epoch: Arc<crate::db::CatalogEpoch>, max_entries: usize) -> KeptHits {
        KeptHits {
            cards: crate::db::Kept::new(epoch.clone(), max_entries),
            texts: crate::db::Kept::new(epoch, max_entries),
        }
    }
}

impl Search {
    /// The engine the configuration asks for. The embedded index is opened for writing, so
    /// only one process per data dir holds it.
    pub fn open(config: &crate::config::SearchConfig, db: Db) -> Result<Search, SearchError> {
        let settings = Arc::new(
            SearchSettings::parse(
                config
                    .settings_json
                    .as_deref()
                    .unwrap_or(settings::BUILT_IN),
            )
            .map_err(SearchError::Engine)?,
        );
        let engine: Arc<dyn Catalogue> = match &config.meili_url {
            Some(url) => Arc::new(
                meili::Meili::new(
                    url,
                    config.meili_key.as_deref(),
                    &config.meili_index,
                    settings.clone(),
                )?
                .with_timeout(std::time::Duration::from_millis(config.meili_timeout_ms)),
            ),
            None => Arc::new(
                embedded::Embedded::open(&config.index_dir, settings.clone())?
                    .with_cache(config.result_cache),
            ),
        };
        Ok(Search {
            engine,
            settings,
            db,
            kept: Arc::new(KeptHits::new(Arc::default(), 0)),
        })
    }

    /// Hits' cards and texts kept (at most `max_entries` of each) while `epoch` is live: a
    /// server gives the one its watch moves (`db::watch_catalog`).
    pub fn with_kept(mut self, epoch: Arc<crate::db::CatalogEpoch>, max_entries: usize) -> Search {
        self.kept = Arc::new(KeptHits::new(epoch, max_entries));
        self
    }

    /// The cards of `ids`, in their order (active products of active shops only), from
    /// those kept and the database.
    async fn cards(&self, ids: &[i64]) -> Result<Vec<ProductCard>, AppError> {
        let db = &self.db;
        let mut found = self
            .kept
            .cards
            .get_or_read(ids, |missing| async move {
                let cards = crate::catalog::store::cards_by_ids(db, &missing).await?;
                Ok::<_, AppError>(cards.into_iter().map(|c| (c.id.0, c)).collect())
            })
            .await?;
        Ok(ids
            .iter()
            .filter_map(|id| found.remove(id))
            .map(Arc::unwrap_or_clone)
            .collect())
    }

    /// Each product's own text and the names it is sold under, by id (`own_texts`), from
    /// those kept and the database.
    async fn texts(&self, ids: &[i64]) -> Result<HashMap<i64, Arc<(String, String)>>, AppError> {
        let db = &self.db;
        self.kept
            .texts
            .get_or_read(ids, |missing| async move {
                let texts = crate::catalog::store::own_texts(db, &missing).await?;
                Ok::<_, AppError>(texts.into_iter().collect())
            })
            .await
    }

    /// What a request asks the engine: words, sort, the window of hits, whether exact
    /// spellings re-rank the first hits.
    fn prepare(&self, req: &SearchRequest) -> Result<Prepared, AppError> {
        let groups = Plan::groups(&req.q, &self.settings);
        let sort = if groups.is_empty() && req.sort == Sort::Relevance {
            Sort::Newest
        } else {
            req.sort
        };
        let max = self.settings.max_total_hits;
        let offset = (req.page - 1) * req.per_page;
        if offset >= max {
            return Err(AppError::field(
                "page",
                format!("chỉ xem được {max} kết quả đầu tiên, hãy thu hẹp tìm kiếm"),
            ));
        }
        let limit = req.per_page.min(max - offset);
        let folded_query = groups
            .iter()
            .map(|g| g.alts[0].tokens.join(" "))
            .collect::<Vec<_>>()
            .join(" ");
        let boost = sort == Sort::Relevance && groups.iter().any(|g| !g.exact_variants.is_empty());
        Ok(Prepared {
            groups,
            folded_query,
            filters: req.filters.clone(),
            sort,
            offset,
            limit,
            boost,
            window: RERANK_WINDOW.min(max),
        })
    }

    /// The first question a request puts to the engine (most requests ask only this one).
    pub fn first_plan(&self, req: &SearchRequest) -> Result<Plan, AppError> {
        Ok(self.prepare(req)?.first())
    }

    pub async fn search(&self, req: &SearchRequest) -> Result<SearchOutcome, AppError> {
        let started = Instant::now();
        let p = self.prepare(req)?;
        let (groups, offset, limit, window) = (&p.groups, p.offset, p.limit, p.window);
        let plan =
            |offset, limit, with_exact, with_facets| p.plan(offset, limit, with_exact, with_facets);
        let (total, facets, ids, ranked) = if p.reranks() {
            let mut r = self.engine.search(&p.first()).await?;
            rerank(groups, &mut r.hits);
            let ranked: Vec<i64> = r.hits.iter().map(|h| h.id).collect();
            let mut ids: Vec<i64> = r
                .hits
                .iter()
                .skip(offset)
                .take(limit)
                .map(|h| h.id)
                .collect();
            if offset + limit > window && r.hits.len() == window {
                let rest = self
                    .engine
                    .search(&plan(window, offset + limit - window, false, false))
                    .await?;
                ids.extend(rest.hits.iter().map(|h| h.id));
            }
            (r.total, r.facets, ids, Some(ranked))
        } else {
            let r = self.engine.search(&p.first()).await?;
            (
                r.total,
                r.facets,
                r.hits.iter().map(|h| h.id).collect(),
                None,
            )
        };
        let (mut total, mut facets, mut ids) = (total, facets, ids);
        // Honest results: when the whole list fits the window, a product whose own text
        // holds none of the buyer's words (found through its shop's name, or a word that
        // only folds the same) is not shown.
        if total > 0 && (total as usize) <= window {
            let all: Vec<i64> = match ranked {
                Some(all) => all,
                None if offset == 0 && ids.len() as u64 == total => ids.clone(),
                None => {
                    let r = self.engine.search(&plan(0, window, false, false)).await?;
                    r.hits.iter().map(|h| h.id).collect()
                }
            };
            let kept = self.honest(groups, &all).await?;
            if kept.len() < all.len() {
                total = kept.len() as u64;
                ids = kept.into_iter().skip(offset).take(limit).collect();
            }
        }
        let strict_total = total;
        let mut most_words = false;
        if total == 0 && groups.len() > 1 && offset < window {
            let found = self
                .most_words(groups, &|g: Vec<Group>| Plan {
                    folded_query: g
                        .iter()
                        .map(|g| g.alts[0].tokens.join(" "))
                        .collect::<Vec<_>>()
                        .join(" "),
                    groups: g,
                    ..plan(0, window, false, false)
                })
                .await?;
            let found = self.honest(groups, &found).await?;
            if !found.is_empty() {
                most_words = true;
                total = found.len() as u64;
                // Facets would count a different list than the links show: none are offered.
                facets = Facets::default();
                ids = found.into_iter().skip(offset).take(limit).collect();
            }
        }
        let cards = self.cards(&ids).await?;
        let highlights: Vec<String> = cards
            .iter()
            .map(|card| highlight(groups, &self.settings, &card.name))
            .collect();
        // A snippet only for a product whose name shows none of the words: most searches
        // then ask the database nothing more.
        let unmarked: Vec<i64> = cards
            .iter()
            .zip(&highlights)
            .filter(|(_, h)| !h.contains("<mark>"))
            .map(|(card, _)| card.id.0)
            .collect();
        let texts = self.texts(&unmarked).await?;
        let hits = cards
            .into_iter()
            .zip(highlights)
            .map(|(card, highlight)| {
                let snippet = if highlight.contains("<mark>") {
                    String::new()
                } else {
                    texts
                        .get(&card.id.0)
                        .and_then(|t| snippet(groups, &self.settings, &t.0))
                        .unwrap_or_default()
                };
                Hit {
                    highlight,
                    snippet,
                    card,
                }
            })
            .collect();
        let mut suggestions: Vec<(usize, Suggestion)> = vec![];
        if strict_total == 0 && groups.len() > 1 {
            // Drop one word, or keep only the first words (what the buyer typed first
            // usually matters most).
            let n = groups.len();
            let mut keeps: Vec<Vec<usize>> = (0..n)
                .map(|skip| (0..n).filter(|i| *i != skip).collect())
                .collect();
            keeps.extend((1..n - 1).rev().map(|k| (0..k).collect()));
            // Each candidate is one more engine query: bound what a bogus query can cost.
            keeps.truncate(MAX_SUGGESTION_QUERIES);
            let words: Vec<String> = text::words(&req.q);
            for keep in keeps {
                let q = suggestion_text(&words, groups, &keep);
                // Counted as the link will search it: its own plan (the last word a
                // prefix), with the same filters.
                let fewer = Plan::groups(&q, &self.settings);
                let fewer_plan = Plan {
                    folded_query: fewer
                        .iter()
                        .map(|g| g.alts[0].tokens.join(" "))
                        .collect::<Vec<_>>()
                        .join(" "),
                    groups: fewer,
                    ..plan(0, 0, false, false)
                };
                let found = self.honest_total(fewer_plan).await?;
                if found > 0 && !suggestions.iter().any(|(_, s)| s.q == q) {
                    suggestions.push((keep.len(), Suggestion { q, total: found }));
                }
            }
            suggestions.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total.cmp(&a.1.total)));
            suggestions.truncate(3);
        }
        let suggestions = suggestions.into_iter().map(|(_, s)| s).collect();
        Ok(SearchOutcome {
            total,
            hits,
            facets,
            took_ms: started.elapsed().as_millis() as u64,
            sort: p.sort,
            suggestions,
            most_words,
        })
    }

    /// How many products a plan shows once dishonest hits are left out (the engine's count
    /// when it is over the window, where nothing is checked either).
    async fn honest_total(&self, plan: Plan) -> Result<u64, AppError> {
        let window = RERANK_WINDOW.min(self.settings.max_total_hits);
        let groups = plan.groups.clone();
        let r = self
            .engine
            .search(&Plan {
                offset: 0,
                limit: window,
                ..plan
            })
            .await?;
        if r.total as usize > window {
            return Ok(r.total);
        }
        let ids: Vec<i64> = r.hits.iter().map(|h| h.id).collect();
        Ok(self.honest(&groups, &ids).await?.len() as u64)
    }

    /// The ids (in order) whose product's own text answers a buyer's word.
    async fn honest(&self, groups: &[Group], ids: &[i64]) -> Result<Vec<i64>, AppError> {
        let texts = self.texts(ids).await?;
        Ok(ids
            .iter()
            .copied()
            .filter(|id| {
                texts
                    .get(id)
                    .is_some_and(|t| own_text_answers(groups, &self.settings, &t.0, &t.1))
            })
            .collect())
    }

    /// When no product has every word: the products matching most of them, as Meilisearch's
    /// default matching strategy would keep them, the same on both engines. Subsets of the
    /// words are searched from the largest down (those keeping the first words first); the
    /// first size that finds anything gives the list, products found by more subsets first.
    async fn most_words(
        &self,
        groups: &[Group],
        plan_for: &(dyn Fn(Vec<Group>) -> Plan + Sync),
    ) -> Result<Vec<i64>, AppError> {
        let n = groups.len();
        let mut queries = 0;
        for size in (1..n).rev() {
            let mut lists: Vec<Vec<i64>> = vec![];
            for keep in combinations(n, size) {
                if queries == MAX_FALLBACK_QUERIES {
                    break;
                }
                queries += 1;
                let fewer = keep.iter().map(|i| groups[*i].clone()).collect();
                let r = self.engine.search(&plan_for(fewer)).await?;
                lists.push(r.hits.iter().map(|h| h.id).collect());
            }
            if lists.iter().any(|l| !l.is_empty()) {
                return Ok(merge_by_votes(&lists));
            }
            if queries == MAX_FALLBACK_QUERIES {
                break;
            }
        }
        Ok(vec![])
    }
}

/// Index sets of `size` out of `0..n`, those keeping earlier indices first.
fn combinations(n: usize, size: usize) -> Vec<Vec<usize>> {
    fn go(start: usize, n: usize, left: usize, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if left == 0 {
            out.push(cur.clone());
            return;
        }
        for i in start..=n - left {
            cur.push(i);
            go(i + 1, n, left - 1, cur, out);
            cur.pop();
        }
    }
    let mut out = vec![];
    if size <= n {
        go(0, n, size, &mut vec![], &mut out);
    }
    out
}

/// One list from several ranked lists: ids found by more lists first, then by their best
/// rank, then by the first list they appear in.
fn merge_by_votes(lists: &[Vec<i64>]) -> Vec<i64> {
    let mut seen: HashMap<i64, (usize, usize, usize)> = HashMap::new();
    for (li, list) in lists.iter().enumerate() {
        for (rank, id) in list.iter().enumerate() {
            let e = seen.entry(*id).or_insert((0, rank, li));
            e.0 += 1;
            e.1 = e.1.min(rank);
        }
    }
    let mut ids: Vec<(i64, (usize, usize, usize))> = seen.into_iter().collect();
    ids.sort_by(|a, b| {
        b.1.0
            .cmp(&a.1.0)
            .then(a.1.1.cmp(&b.1.1))
            .then(a.1.2.cmp(&b.1.2))
            .then(a.0.cmp(&b.0))
    });
    ids.into_iter().map(|(id, _)| id).collect()
}

/// The buyer's words of the groups in `keep` (stop words dropped like the plan does).
fn suggestion_text(words: &[String], groups: &[Group], keep: &[usize]) -> String {
    // Map groups back to word spans: groups consume words left to right, stop words aside.
    let mut spans = vec![];
    let mut wi = 0;
    for g in groups {
        let n = g.alts[0].tokens.len();
        // advance to the next word whose fold starts this group's first token
        while wi < words.len() && text::fold(&words[wi]) != g.alts[0].tokens[0] {
            wi += 1;
        }
        spans.push((wi, (wi + n).min(words.len())));
        wi += n;
    }
    spans
        .iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .flat_map(|(_, (a, b))| words[*a..*b].iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SearchSettings {
        SearchSettings::built_in()
    }

    #[test]
    fn plan_drops_stop_words_finds_synonym_phrases_and_marks_the_prefix() {
        let s = settings();
        let g = Plan::groups("mua bộ com lê", &s);
        assert_eq!(g.len(), 2, "{g:?}");
        assert_eq!(g[0].alts[0].tokens, vec!["bo"]);
        assert_eq!(g[1].alts[0].tokens, vec!["com", "le"]);
        assert_eq!(g[1].alts[1].tokens, vec!["comple"]);
        assert!(!g[0].alts[0].prefix);
        let g = Plan::groups("mật o", &s);
        assert!(g[1].alts[0].prefix);
        assert_eq!(g[0].exact_variants, vec!["mât5"]);
        assert!(g[1].exact_variants.is_empty());
        // a query made only of stop words is kept
        assert_eq!(Plan::groups("mua", &s).len(), 1);
        // "heo" has no marks but a synonym with them: "lợn" ranks above "lớn"
        let g = Plan::groups("heo", &s);
        assert_eq!(g[0].exact_variants, vec!["heo", "lơn5"]);
    }

    #[test]
    fn exact_diacritics_rank_first_and_keep_engine_order_otherwise() {
        let s = settings();
        let groups = Plan::groups("ghế", &s);
        let mut hits = vec![
            EngineHit {
                id: 1,
                exact: Some("mô hinh2 ghe gô3".into()),
            },
            EngineHit {
                id: 2,
                exact: Some("ghê1 đâu3 gô3".into()),
            },
            EngineHit {
                id: 3,
                exact: Some("ghe nan".into()),
            },
            EngineHit {
                id: 4,
                exact: Some("ghê1 mây".into()),
            },
        ];
        rerank(&groups, &mut hits);
        let ids: Vec<i64> = hits.iter().map(|h| h.id).collect();
        assert_eq!(ids, vec![2, 4, 1, 3]);
    }

    #[test]
    fn highlights_escape_and_mark_typos_prefixes_and_synonyms() {
        let s = settings();
        let g = Plan::groups("man tuyen <b>", &s);
        assert_eq!(
            highlight(&g, &s, "Màn tuyn 2 cửa <b>"),
            "<mark>Màn</mark> <mark>tuyn</mark> 2 cửa &lt;<mark>b</mark>&gt;"
        );
        let g = Plan::groups("mùng", &s);
        assert_eq!(highlight(&g, &s, "Màn chụp"), "<mark>Màn</mark> chụp");
        let g = Plan::groups("gio lu", &s);
        assert_eq!(
            highlight(&g, &s, "Giò lụa thịt lợn"),
            "<mark>Giò</mark> <mark>lụa</mark> thịt lợn"
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        let p: HashMap<String, String> = [
            ("sort", "cheap"),
            ("page", "0"),
            ("price_min", "-5"),
            ("in_stock", "maybe"),
            ("ocop_min", "9"),
            ("village", "Phú Đôi"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let Err(AppError::Validation(f)) = SearchRequest::parse(&p) else {
            panic!("expected validation error")
        };
        for k in [
            "sort",
            "page",
            "price_min",
            "in_stock",
            "ocop_min",
            "village",
        ] {
            assert!(f.get(k).is_some(), "{k}");
        }
        let ok = SearchRequest::parse(&HashMap::new()).unwrap();
        assert_eq!((ok.page, ok.per_page, ok.sort), (1, 20, Sort::Relevance));
    }

    #[test]
    fn combinations_keep_earlier_words_first() {
        assert_eq!(combinations(3, 2), vec![vec![0, 1], vec![0, 2], vec![1, 2]]);
        assert_eq!(combinations(2, 1), vec![vec![0], vec![1]]);
        assert_eq!(combinations(4, 4).len(), 1);
        assert_eq!(combinations(10, 8).len(), 45);
    }

    #[test]
    fn most_words_merge_puts_ids_found_more_often_first() {
        let lists = vec![vec![1, 2, 3], vec![4, 2], vec![5, 1]];
        assert_eq!(merge_by_votes(&lists), vec![1, 2, 4, 5, 3]);
    }

    #[test]
    fn suggestions_drop_one_group_of_the_buyers_words() {
        let s = settings();
        let words = text::words("mật ong xanh lá");
        let g = Plan::groups("mật ong xanh lá", &s);
        assert_eq!(suggestion_text(&words, &g, &[0, 1, 2]), "mật ong xanh");
        assert_eq!(suggestion_text(&words, &g, &[1, 2, 3]), "ong xanh lá");
        assert_eq!(suggestion_text(&words, &g, &[0, 1]), "mật ong");
    }
}
