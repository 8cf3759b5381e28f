//! What a product page reads from the database (the product, the batch on sale, its item's
//! price history: `pages::product_parts`), kept in memory per slug until any of it changes
//! (`PRODUCT_CACHE_ENTRIES`, 0 turns it off). Unlike the page cache (`page_cache`, kept for
//! a second, anonymous visitors only), this is data, not a page: every visitor's page is
//! still rendered, with their own header and token, from data that is never older than
//! the database's word that it changed.
//!
//! Each kept entry is tagged with the catalogue's epoch (`db::CatalogEpoch`) read *before*
//! the database was asked, and used only while the epoch is still that one. The epoch moves
//! when this process answers a request that may have written (`changed`, from `web::frame`)
//! and when the database says a table the page reads has changed, whoever changed it
//! (migration 0020; another instance, a background job, `cholang import`): on PostgreSQL at
//! its commit, by notification; on SQLite within `db::CATALOG_POLL`. While those changes
//! cannot be read (the database away, the listener's connection lost) nothing kept is used.
//! Prices and stock are checked again at checkout, never taken from a page.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::db::CatalogEpoch;

/// What one product page shows from the database.
pub struct ProductParts {
    pub detail: crate::catalog::ProductDetail,
    /// The origin page of the batch on sale, if the seller records batches.
    pub origin_url: Option<String>,
    /// The agreed price of the product's item over time.
    pub chart: Option<super::views::ChartView>,
}

/// Kept products of one epoch.
struct Kept {
    epoch: u64,
    by_slug: HashMap<String, Arc<ProductParts>>,
}

pub struct ProductCache {
    epoch: Arc<CatalogEpoch>,
    /// At most this many products (0: none kept); when full, everything is dropped and
    /// kept again as asked.
    max_entries: usize,
    kept: RwLock<Kept>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl ProductCache {
    pub fn new(epoch: Arc<CatalogEpoch>, max_entries: usize) -> ProductCache {
        ProductCache {
            epoch,
            max_entries,
            kept: RwLock::new(Kept {
                epoch: 0,
                by_slug: HashMap::new(),
            }),
            hits: AtomicU64::default(),
            misses: AtomicU64::default(),
        }
    }

    /// The epoch the database's watch moves (`db::watch_catalog`).
    pub fn epoch(&self) -> Arc<CatalogEpoch> {
        self.epoch.clone()
    }

    /// This process may have changed something (a request other than GET/HEAD answered).
    pub fn changed(&self) {
        self.epoch.changed();
    }

    /// The product kept for `slug`, if it is still what the database holds.
    pub fn get(&self, slug: &str) -> Option<Arc<ProductParts>> {
        if self.max_entries == 0 {
            return None;
        }
        let found = self.epoch.now().and_then(|now| {
            let kept = self.kept.read().unwrap_or_else(|e| e.into_inner());
            (kept.epoch == now)
                .then(|| kept.by_slug.get(slug).cloned())
                .flatten()
        });
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// The epoch to tag what is about to be read with: take it before asking the database.
    pub fn before_reading(&self) -> Option<u64> {
        self.epoch.now()
    }

    /// Keep `parts`, read after `before_reading` answered `read_at`, unless something may
    /// have changed since (then it is only used by the request that read it).
    pub fn keep(&self, read_at: Option<u64>, slug: &str, parts: Arc<ProductParts>) {
        let Some(read_at) = read_at else { return };
        if self.max_entries == 0 {
            return;
        }
        let mut kept = self.kept.write().unwrap_or_else(|e| e.into_inner());
        // Under the lock, so no later epoch's entries can be dropped for this one.
        if self.epoch.now() != Some(read_at) {
            return;
        }
        if kept.epoch != read_at || kept.by_slug.len() >= self.max_entries {
            kept.by_slug.clear();
            kept.epoch = read_at;
        }
        kept.by_slug.insert(slug.to_string(), parts);
    }

    /// Pages answered from kept data, and asked of the database, since start.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(name: &str) -> Arc<ProductParts> {
        let card = crate::catalog::ProductCard {
            id: crate::catalog::ProductId(1),
            slug: "a".into(),
            name: name.into(),
            price_vnd: 1000,
            unit: "cái".into(),
            stock: 1,
            ocop_stars: None,
            ocop_verified: false,
            category: String::new(),
            price_item_id: 1,
            shop_slug: "s".into(),
            shop_name: "S".into(),
            village_slug: "v".into(),
            village_name: "V".into(),
            thumb: None,
            active: true,
        };
        Arc::new(ProductParts {
            detail: crate::catalog::ProductDetail {
                card,
                description: String::new(),
                maker: String::new(),
                materials: String::new(),
                made_in: String::new(),
                price_item_name: String::new(),
                shop_id: crate::catalog::ShopId(1),
                village_id: crate::catalog::VillageId(1),
                photos: vec![],
                gtin: None,
                ocop_cert_no: None,
                ocop_cert_year: None,
                parcel: Default::default(),
                item_request: None,
                created_at: 0,
                updated_at: 0,
            },
            origin_url: None,
            chart: None,
        })
    }

    fn live() -> Arc<CatalogEpoch> {
        let e = Arc::new(CatalogEpoch::default());
        e.regained();
        e
    }

    #[test]
    fn kept_data_is_used_only_in_the_epoch_it_was_read_in() {
        let cache = ProductCache::new(live(), 10);
        let at = cache.before_reading();
        cache.keep(at, "a", parts("old"));
        assert_eq!(cache.get("a").unwrap().detail.card.name, "old");
        cache.changed();
        assert!(cache.get("a").is_none(), "a change drops what was kept");
        assert_eq!(cache.counts(), (1, 1));
    }

    #[test]
    fn data_read_before_a_change_is_not_kept_after_it() {
        let cache = ProductCache::new(live(), 10);
        let at = cache.before_reading();
        // The database changes while the page reads it.
        cache.changed();
        cache.keep(at, "a", parts("maybe old"));
        assert!(cache.get("a").is_none());
        // Read again after the change: kept.
        let at = cache.before_reading();
        cache.keep(at, "a", parts("new"));
        assert_eq!(cache.get("a").unwrap().detail.card.name, "new");
    }

    #[test]
    fn nothing_is_kept_or_used_while_changes_may_go_unseen() {
        let epoch = Arc::new(CatalogEpoch::default());
        let cache = ProductCache::new(epoch.clone(), 10);
        let at = cache.before_reading();
        assert_eq!(at, None, "not live before the watch reads the database");
        cache.keep(at, "a", parts("x"));
        epoch.regained();
        assert!(cache.get("a").is_none());
        let at = cache.before_reading();
        cache.keep(at, "a", parts("x"));
        assert!(cache.get("a").is_some());
        epoch.lost();
        assert!(cache.get("a").is_none(), "a lost watch stops the use");
        epoch.regained();
        assert!(
            cache.get("a").is_none(),
            "what was kept before the loss stays unused after it"
        );
    }

    #[test]
    fn a_full_cache_starts_again_and_zero_keeps_nothing() {
        let cache = ProductCache::new(live(), 2);
        for slug in ["a", "b", "c"] {
            let at = cache.before_reading();
            cache.keep(at, slug, parts(slug));
        }
        assert!(cache.get("a").is_none() && cache.get("b").is_none());
        assert!(cache.get("c").is_some());
        let off = ProductCache::new(live(), 0);
        let at = off.before_reading();
        off.keep(at, "a", parts("a"));
        assert!(off.get("a").is_none());
    }
}
