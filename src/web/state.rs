//! What every handler and middleware gets.

use std::sync::Arc;

use crate::config::Config;
use crate::db::Db;

/// What every handler and middleware gets: one `Arc`, so that the per-request clones axum
/// makes for each layer are one atomic increment, not one per field (they were the largest
/// item in the page profile, issue 12).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

pub struct Shared {
    pub db: Db,
    pub config: Arc<Config>,
    pub search: crate::search::Search,
    /// Origin page views not yet written (`origin::scans`).
    pub scans: Arc<crate::origin::scans::Tally>,
    /// Requests per client address on the routes scripts hammer (`limits::rate`).
    pub rates: Arc<crate::limits::rate::Limiters>,
    /// This server's Prometheus figures (`metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Public pages kept for a moment (`web::page_cache`).
    pub pages: Arc<crate::web::page_cache::PageCache>,
    /// What product pages read, kept until it changes (`web::product_cache`).
    pub products: Arc<crate::web::product_cache::ProductCache>,
}
