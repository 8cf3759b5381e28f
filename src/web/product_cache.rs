//! What a product page reads from the database (the product, the batch on sale, its item's
//! price history: `pages::product_parts`), kept in memory per slug until any of it changes
//! (`PRODUCT_CACHE_ENTRIES`, 0 turns it off). Unlike the page cache (`page_cache`, kept for
//! a second, anonymous visitors only), this is data, not a page: every visitor's page is
//! still rendered, with their own header and token, from data that is never older than
//! the database's word that it changed.
//!
//! Each kept entry is tagged (`db::Kept`) with the catalogue's epoch (`db::CatalogEpoch`)
//! read *before* the database was asked, and used only while the epoch is still that one.
//! The epoch moves
//! when this process answers a request that may have written (`changed`, from `web::frame`)
//! and when the database says a table the page reads has changed, whoever changed it
//! (migration 0020; another instance, a background job, `cholang import`): on PostgreSQL at
//! its commit, by notification; on SQLite within `db::CATALOG_POLL`. While those changes
//! cannot be read (the database away, the listener's connection lost) nothing kept is used.
//! Prices and stock are checked again at checkout, never taken from a page.

/// What one product page shows from the database.
pub struct ProductParts {
    pub detail: crate::catalog::ProductDetail,
    /// The origin page of the batch on sale, if the seller records batches.
    pub origin_url: Option<String>,
    /// The agreed price of the product's item over time.
    pub chart: Option<super::views::ChartView>,
}

/// Product pages' data by slug (`db::Kept`, whose tests hold its rules).
pub type ProductCache = crate::db::Kept<String, ProductParts>;
