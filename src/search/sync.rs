//! The search sync worker: applies the durable queue to the engine, retrying with backoff
//! while the engine is unreachable, so nothing is lost while Meilisearch is down.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{Search, SearchError, store};
use crate::error::AppError;
use crate::index_queue::{self as queue, Item, Scope};

const LEASE: &str = "search_sync";
const LEASE_MS: i64 = 60_000;
const BATCH: i64 = 500;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error(transparent)]
    Db(#[from] AppError),
}

pub struct SearchSync {
    pub search: Search,
    holder: String,
    prepared: bool,
}

impl SearchSync {
    pub fn new(search: Search) -> SearchSync {
        SearchSync {
            search,
            holder: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            prepared: false,
        }
    }

    /// Apply the engine's settings; a new, empty or changed index gets a full rebuild.
    pub async fn prepare(&mut self) -> Result<(), SyncError> {
        if self.search.engine.prepare().await? {
            queue::enqueue_now(&self.search.db, Scope::All).await?;
        }
        self.prepared = true;
        Ok(())
    }

    /// Apply what is due; returns how many queue rows were applied. On an engine error the
    /// rows stay queued with a backoff and the error is returned.
    pub async fn run_once(&mut self) -> Result<usize, SyncError> {
        if !queue::take_lease(&self.search.db, LEASE, &self.holder, LEASE_MS).await? {
            return Ok(0);
        }
        if !self.prepared {
            self.prepare().await?;
        }
        let items = queue::due(&self.search.db, BATCH).await?;
        if items.is_empty() {
            return Ok(0);
        }
        match self.apply(&items).await {
            Ok(()) => {
                queue::done(&self.search.db, &items).await?;
                Ok(items.len())
            }
            Err(e) => {
                tracing::debug!(error = %e, rows = items.len(), "search sync failed; will retry");
                if let SyncError::Search(SearchError::Unavailable(_)) = e {
                    // The engine may have lost its settings while away: apply them again.
                    self.prepared = false;
                }
                queue::failed(&self.search.db, &items, &e.to_string()).await?;
                Err(e)
            }
        }
    }

    async fn apply(&self, items: &[Item]) -> Result<(), SyncError> {
        let db = &self.search.db;
        let engine = &self.search.engine;
        if items.iter().any(|i| i.scope == Scope::All) {
            let docs = store::all_docs(db).await?;
            engine.replace_all(&docs).await?;
            tracing::info!(
                docs = docs.len(),
                engine = engine.name(),
                "search index rebuilt"
            );
            return Ok(());
        }
        let scopes: Vec<Scope> = items.iter().map(|i| i.scope).collect();
        let ids: Vec<i64> = store::product_ids(db, &scopes).await?.into_iter().collect();
        let docs = store::docs(db, &ids).await?;
        let present: BTreeSet<i64> = docs.iter().map(|d| d.id).collect();
        let gone: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| !present.contains(id))
            .collect();
        if !docs.is_empty() {
            engine.upsert(&docs).await?;
        }
        if !gone.is_empty() {
            engine.delete(&gone).await?;
        }
        Ok(())
    }

    /// Run until `shutdown` resolves, polling the queue every `every`.
    pub async fn run(mut self, every: Duration, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        // Consecutive failures: the wait grows (up to 30 s) while the engine is away.
        let mut failures: u32 = 0;
        loop {
            // Drain what is due, then wait.
            loop {
                match self.run_once().await {
                    Ok(0) => {
                        if failures > 0 {
                            tracing::info!(
                                engine = self.search.engine.name(),
                                "search engine reachable again"
                            );
                        }
                        failures = 0;
                        break;
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        if failures == 0 {
                            tracing::warn!(error = %e, engine = self.search.engine.name(), "search sync failing; changes stay queued");
                        }
                        failures = failures.saturating_add(1);
                        break;
                    }
                }
            }
            let wait = every
                .saturating_mul(1 << failures.min(7))
                .min(Duration::from_secs(30));
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        let _ = queue::release_lease(&self.search.db, LEASE, &self.holder).await;
    }

    /// Rebuild now from the database (`cholang reindex`): clears the queue rows it covers.
    pub async fn rebuild(&mut self) -> Result<usize, SyncError> {
        self.search.engine.prepare().await?;
        self.prepared = true;
        // Rows first: a change committed after this read has its own row and stays queued.
        let pending = queue::due(&self.search.db, i64::MAX).await?;
        let docs = store::all_docs(&self.search.db).await?;
        self.search.engine.replace_all(&docs).await?;
        queue::done(&self.search.db, &pending).await?;
        Ok(docs.len())
    }
}
