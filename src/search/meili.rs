//! The Meilisearch engine, through `meilisearch-sdk`: settings from `search-config/` applied
//! at start and on reindex, every task waited for and a failed one reported, a full rebuild
//! made in a side index and swapped in so searches never see a half-built index.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use meilisearch_sdk::DefaultHttpClient;
use meilisearch_sdk::client::{Client, SwapIndexes};
use meilisearch_sdk::errors::Error as MeiliError;
use meilisearch_sdk::indexes::Index;
use meilisearch_sdk::search::{MatchingStrategies, SearchQuery, Selectors};
use meilisearch_sdk::settings::Settings;
use meilisearch_sdk::task_info::TaskInfo;
use meilisearch_sdk::tasks::Task;
use serde::Deserialize;

use super::{
    Catalogue, EngineHit, EngineResult, Facets, Plan, SearchDoc, SearchError, SearchSettings, Sort,
    text,
};

const TASK_TIMEOUT: Duration = Duration::from_secs(120);
const BATCH: usize = 10_000;
/// The facets a search asks for (the buyer's filter links).
const FACETS: [&str; 3] = ["village_slug", "category_label", "ocop_stars"];

pub struct Meili {
    client: Client,
    /// Searches go out through this client itself: one JSON body with its length, read back
    /// into `Answer` (the SDK streams every body chunked and reads the answer as text first).
    http: reqwest::Client,
    search_url: String,
    key: Option<String>,
    index: String,
    settings: Arc<SearchSettings>,
    /// Bound on each request: the SDK's HTTP client has none, and a Meilisearch that accepts
    /// connections but does not answer must not hang buyers or the sync worker.
    timeout: Duration,
}

#[derive(Deserialize)]
struct IdOnly {
    id: i64,
    #[serde(default)]
    exact: Option<String>,
}

/// What `POST /indexes/{uid}/search` answers, as far as a search reads it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    hits: Vec<IdOnly>,
    total_hits: Option<usize>,
    estimated_total_hits: Option<usize>,
    facet_distribution: Option<std::collections::HashMap<String, BTreeMap<String, usize>>>,
}

/// Meilisearch's error body.
#[derive(Deserialize, Default)]
struct Refusal {
    #[serde(default)]
    message: String,
    #[serde(default)]
    code: String,
}

fn err(e: MeiliError) -> SearchError {
    match e {
        MeiliError::Meilisearch(m) => SearchError::Engine(m.to_string()),
        MeiliError::Timeout => {
            SearchError::Unavailable("a Meilisearch task did not finish in time".into())
        }
        other => SearchError::Unavailable(other.to_string()),
    }
}

/// A filter value in Meilisearch's filter syntax: double quotes, escaped.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Meili {
    pub fn new(
        url: &str,
        key: Option<&str>,
        index: &str,
        settings: Arc<SearchSettings>,
    ) -> Result<Meili, SearchError> {
        let client = Client::new(url, key).map_err(err)?;
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| SearchError::Unavailable(e.to_string()))?;
        Ok(Meili {
            client,
            http,
            search_url: format!("{}/indexes/{index}/search", url.trim_end_matches('/')),
            key: key.map(str::to_string),
            index: index.to_string(),
            settings,
            timeout: Duration::from_secs(5),
        })
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Meili {
        self.timeout = timeout;
        self
    }

    /// One request, bounded by the timeout.
    async fn bounded<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, MeiliError>>,
    ) -> Result<T, SearchError> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(r) => r.map_err(err),
            Err(_) => Err(SearchError::Unavailable(format!(
                "Meilisearch did not answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }

    async fn wait(&self, t: TaskInfo) -> Result<(), SearchError> {
        // The SDK stops polling after TASK_TIMEOUT; one poll that hangs is bounded here.
        let waited = tokio::time::timeout(
            TASK_TIMEOUT + self.timeout,
            t.wait_for_completion(
                &self.client,
                Some(Duration::from_millis(50)),
                Some(TASK_TIMEOUT),
            ),
        )
        .await
        .map_err(|_| {
            SearchError::Unavailable("a Meilisearch task did not finish in time".into())
        })?;
        match waited.map_err(err)? {
            Task::Failed { content } => {
                tracing::error!(index = %self.index, error = %content.error, "Meilisearch task failed");
                Err(SearchError::Engine(format!(
                    "Meilisearch task failed: {}",
                    content.error
                )))
            }
            _ => Ok(()),
        }
    }

    async fn apply_settings(&self, uid: &str) -> Result<(), SearchError> {
        let s: Settings = serde_json::from_value(self.settings.meili_json.clone())
            .map_err(|e| SearchError::Engine(format!("search settings for Meilisearch: {e}")))?;
        let t = self
            .bounded(self.client.index(uid).set_settings(&s))
            .await?;
        self.wait(t).await
    }

    async fn add(&self, uid: &str, docs: &[SearchDoc]) -> Result<(), SearchError> {
        for chunk in docs.chunks(BATCH) {
            let json: Vec<serde_json::Value> = chunk.iter().map(SearchDoc::to_json).collect();
            let t = self
                .bounded(self.client.index(uid).add_or_replace(&json, Some("id")))
                .await?;
            self.wait(t).await?;
        }
        Ok(())
    }

    fn filter(&self, plan: &Plan) -> Vec<String> {
        let f = &plan.filters;
        let mut out = vec![];
        if let Some(v) = &f.village {
            out.push(format!("village_slug = {}", quote(v)));
        }
        if let Some(c) = &f.category {
            out.push(format!("category_key = {}", quote(&text::fold_text(c))));
        }
        if let Some(n) = f.ocop_min {
            out.push(format!("ocop_stars >= {n}"));
        }
        if let Some(n) = f.price_min {
            out.push(format!("price_vnd >= {n}"));
        }
        if let Some(n) = f.price_max {
            out.push(format!("price_vnd <= {n}"));
        }
        if let Some(b) = f.in_stock {
            out.push(format!("in_stock = {}", i64::from(b)));
        }
        out
    }
}

#[async_trait::async_trait]
impl Catalogue for Meili {
    fn name(&self) -> &'static str {
        "meilisearch"
    }

    async fn health(&self) -> Result<(), SearchError> {
        self.bounded(self.client.health()).await.map(|_| ())
    }

    async fn prepare(&self) -> Result<bool, SearchError> {
        self.bounded(self.client.health()).await?;
        self.apply_settings(&self.index).await?;
        Ok(self.count().await? == 0)
    }

    async fn upsert(&self, docs: &[SearchDoc]) -> Result<(), SearchError> {
        self.add(&self.index, docs).await
    }

    async fn delete(&self, ids: &[i64]) -> Result<(), SearchError> {
        if ids.is_empty() {
            return Ok(());
        }
        let t = self
            .bounded(self.client.index(&self.index).delete_documents(ids))
            .await?;
        self.wait(t).await
    }

    async fn replace_all(&self, docs: &[SearchDoc]) -> Result<(), SearchError> {
        let side = format!("{}_rebuild", self.index);
        // Leftovers of an interrupted rebuild go; a missing side index fails this task, fine.
        let t = self.bounded(self.client.index(&side).delete()).await?;
        let _ = tokio::time::timeout(
            TASK_TIMEOUT,
            t.wait_for_completion(
                &self.client,
                Some(Duration::from_millis(50)),
                Some(TASK_TIMEOUT),
            ),
        )
        .await;
        self.apply_settings(&side).await?;
        self.add(&side, docs).await?;
        // The live index must exist to be swapped.
        self.apply_settings(&self.index).await?;
        let t = self
            .bounded(self.client.swap_indexes([&SwapIndexes {
                indexes: (self.index.clone(), side.clone()),
                rename: None,
            }]))
            .await?;
        self.wait(t).await?;
        let t = self.bounded(self.client.index(&side).delete()).await?;
        self.wait(t).await
    }

    async fn search(&self, plan: &Plan) -> Result<EngineResult, SearchError> {
        let index = self.client.index(&self.index);
        let filter = self.filter(plan).join(" AND ");
        let body = serde_json::to_vec(&self.query(&index, plan, &filter))
            .map_err(|e| SearchError::Engine(e.to_string()))?;
        let mut request = self
            .http
            .post(&self.search_url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        let unavailable = |e: reqwest::Error| SearchError::Unavailable(e.to_string());
        let asked = async {
            let response = request.send().await.map_err(unavailable)?;
            let status = response.status();
            let bytes = response.bytes().await.map_err(unavailable)?;
            Ok::<_, SearchError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, asked)
            .await
            .map_err(|_| {
                SearchError::Unavailable(format!(
                    "Meilisearch did not answer within {} ms",
                    self.timeout.as_millis()
                ))
            })??;
        if !status.is_success() {
            let refusal: Refusal = serde_json::from_slice(&bytes).unwrap_or_default();
            let said = format!("{status} {}: {}", refusal.code, refusal.message);
            return Err(if status.is_server_error() {
                SearchError::Unavailable(said)
            } else {
                SearchError::Engine(said)
            });
        }
        let r: Answer = serde_json::from_slice(&bytes)
            .map_err(|e| SearchError::Engine(format!("unreadable search answer: {e}")))?;
        let total = r
            .total_hits
            .or(r.estimated_total_hits)
            .unwrap_or(r.hits.len()) as u64;
        let mut facets = Facets::default();
        if let Some(dist) = r.facet_distribution {
            let take = |name: &str| -> BTreeMap<String, u64> {
                dist.get(name)
                    .map(|m| {
                        m.iter()
                            .filter(|(k, _)| name != "ocop_stars" || k.as_str() != "0")
                            .map(|(k, v)| (k.clone(), *v as u64))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            facets.village = take("village_slug");
            facets.category = take("category_label");
            facets.ocop_stars = take("ocop_stars");
        }
        let hits = r
            .hits
            .into_iter()
            .map(|h| EngineHit {
                id: h.id,
                exact: h.exact,
            })
            .collect();
        Ok(EngineResult {
            total,
            hits,
            facets,
        })
    }

    async fn count(&self) -> Result<u64, SearchError> {
        let stats = tokio::time::timeout(self.timeout, self.client.index(&self.index).get_stats())
            .await
            .map_err(|_| SearchError::Unavailable("Meilisearch did not answer in time".into()))?;
        match stats {
            Ok(s) => Ok(s.number_of_documents as u64),
            Err(MeiliError::Meilisearch(m))
                if m.error_code == meilisearch_sdk::errors::ErrorCode::IndexNotFound =>
            {
                Ok(0)
            }
            Err(e) => Err(err(e)),
        }
    }
}

impl Meili {
    /// The search request this engine sends for a plan: the buyer's folded words, every
    /// word required, filters, sort, facets and only the fields it reads back.
    fn query<'a>(
        &self,
        index: &'a Index,
        plan: &'a Plan,
        filter: &'a str,
    ) -> SearchQuery<'a, DefaultHttpClient> {
        let mut q = index.search();
        q.with_query(&plan.folded_query)
            .with_matching_strategy(MatchingStrategies::ALL);
        if !filter.is_empty() {
            q.with_filter(filter);
        }
        let sort: &[&str] = match plan.sort {
            Sort::Relevance => &[],
            Sort::PriceAsc => &["price_vnd:asc"],
            Sort::PriceDesc => &["price_vnd:desc"],
            Sort::Newest => &["created_at:desc"],
        };
        if !sort.is_empty() {
            q.with_sort(sort);
        }
        if plan.with_facets {
            q.with_facets(Selectors::Some(&FACETS));
        }
        let retrieve: &[&str] = if plan.with_exact {
            &["id", "exact"]
        } else {
            &["id"]
        };
        q.with_attributes_to_retrieve(Selectors::Some(retrieve));
        // Page mode gives an exact total; windows that do not start on a page use offsets.
        if plan.limit == 0 {
            q.with_page(1).with_hits_per_page(0);
        } else if plan.offset.is_multiple_of(plan.limit) {
            q.with_page(plan.offset / plan.limit + 1)
                .with_hits_per_page(plan.limit);
        } else {
            q.with_offset(plan.offset).with_limit(plan.limit);
        }
        q
    }

    /// The JSON body of `POST /indexes/{uid}/search` this engine sends for a plan (the
    /// search bench asks Meilisearch the very same questions directly).
    pub fn request_json(&self, plan: &Plan) -> serde_json::Value {
        let index = self.client.index(&self.index);
        let filter = self.filter(plan).join(" AND ");
        serde_json::to_value(self.query(&index, plan, &filter)).unwrap_or_default()
    }

    /// Delete the index (tests clean up after themselves).
    pub async fn drop_index(&self) -> Result<(), SearchError> {
        let t = self
            .bounded(self.client.index(&self.index).delete())
            .await?;
        self.wait(t).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::Filters;

    /// The request body is what Meilisearch's search API takes: every word required, the
    /// filters quoted, the sort, the facets, ids only, page mode for a page-aligned window.
    #[test]
    fn request_json_is_the_search_the_engine_sends() {
        let settings = Arc::new(SearchSettings::built_in());
        let m = Meili::new("http://127.0.0.1:1", None, "products", settings).unwrap();
        let plan = Plan {
            groups: vec![],
            folded_query: "man tuyn".into(),
            filters: Filters {
                village: Some("phu-doi".into()),
                price_max: Some(200_000),
                in_stock: Some(true),
                ..Filters::default()
            },
            sort: Sort::PriceAsc,
            offset: 40,
            limit: 20,
            with_exact: false,
            with_facets: true,
        };
        let v = m.request_json(&plan);
        assert_eq!(v["q"], "man tuyn");
        assert_eq!(v["matchingStrategy"], "all");
        assert_eq!(
            v["filter"],
            "village_slug = \"phu-doi\" AND price_vnd <= 200000 AND in_stock = 1"
        );
        assert_eq!(v["sort"], serde_json::json!(["price_vnd:asc"]));
        assert_eq!(v["facets"], serde_json::json!(FACETS));
        assert_eq!(v["attributesToRetrieve"], serde_json::json!(["id"]));
        assert_eq!(
            (v["page"].as_u64(), v["hitsPerPage"].as_u64()),
            (Some(3), Some(20))
        );
        let off = m.request_json(&Plan {
            offset: 5,
            with_exact: true,
            with_facets: false,
            sort: Sort::Relevance,
            filters: Filters::default(),
            ..plan
        });
        assert_eq!(
            (off["offset"].as_u64(), off["limit"].as_u64()),
            (Some(5), Some(20))
        );
        assert!(off.get("page").is_none() && off.get("facets").is_none());
        assert!(off.get("filter").is_none() && off.get("sort").is_none());
        assert_eq!(
            off["attributesToRetrieve"],
            serde_json::json!(["id", "exact"])
        );
    }
}
