//! Search documents read from the database: the only source of what the index holds.

use std::collections::BTreeSet;

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::SearchDoc;
use crate::db::{Db, id_list};
use crate::error::Result;
use crate::index_queue::Scope;

const DOC_SELECT: &str =
    "SELECT p.id, p.name, p.description, p.category, p.materials, p.maker, p.stock,
        CASE WHEN p.ocop_verified_at IS NULL THEN NULL ELSE p.ocop_stars END AS ocop_stars, p.created_at, pi.price_vnd, s.name AS shop_name, v.slug AS village_slug,
        v.name AS village_name
    FROM products p
    JOIN price_items pi ON pi.id = p.price_item_id
    JOIN shops s ON s.id = p.shop_id
    JOIN villages v ON v.id = s.village_id
    WHERE p.active = 1 AND s.active = 1";

fn doc_from_row(r: &AnyRow) -> Result<SearchDoc> {
    Ok(SearchDoc {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        category: r.try_get("category")?,
        materials: r.try_get("materials")?,
        maker: r.try_get("maker")?,
        village_slug: r.try_get("village_slug")?,
        village_name: r.try_get("village_name")?,
        shop_name: r.try_get("shop_name")?,
        price_vnd: r.try_get("price_vnd")?,
        in_stock: r.try_get::<i64, _>("stock")? > 0,
        ocop_stars: r.try_get::<Option<i64>, _>("ocop_stars")?.unwrap_or(0),
        created_at: r.try_get("created_at")?,
    })
}

/// Every product a set of scopes covers (active or not: inactive ones leave the index).
pub async fn product_ids(db: &Db, scopes: &[Scope]) -> Result<BTreeSet<i64>> {
    let mut out = BTreeSet::new();
    for s in scopes {
        let (sql, id) = match *s {
            Scope::Product(id) => {
                out.insert(id);
                continue;
            }
            Scope::Shop(id) => ("SELECT id FROM products WHERE shop_id = $1", id),
            Scope::PriceItem(id) => ("SELECT id FROM products WHERE price_item_id = $1", id),
            Scope::Village(id) => (
                "SELECT p.id FROM products p JOIN shops s ON s.id = p.shop_id WHERE s.village_id = $1",
                id,
            ),
            Scope::All => ("SELECT id FROM products WHERE $1 = $1", 0),
        };
        let ids: Vec<i64> = sqlx::query_scalar(sql).bind(id).fetch_all(&db.pool).await?;
        out.extend(ids);
    }
    Ok(out)
}

/// Documents of these products; products that are inactive, in an inactive shop or gone
/// have none (and must leave the index).
pub async fn docs(db: &Db, ids: &[i64]) -> Result<Vec<SearchDoc>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{DOC_SELECT} AND p.id IN ({})",
            id_list(chunk)
        )))
        .fetch_all(&db.pool)
        .await?;
        for r in &rows {
            out.push(doc_from_row(r)?);
        }
    }
    Ok(out)
}

/// Every document, for a rebuild.
pub async fn all_docs(db: &Db) -> Result<Vec<SearchDoc>> {
    let rows = sqlx::query(AssertSqlSafe(format!("{DOC_SELECT} ORDER BY p.id")))
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(doc_from_row).collect()
}

/// Why the index cannot answer for the catalogue yet (for `/readyz`): with products listed,
/// a full rebuild is queued or running, or the index is empty. `None` when it can (single
/// changes waiting in the queue do not count: they are applied within moments).
pub async fn not_caught_up(db: &Db, search: &super::Search) -> Option<String> {
    let listed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM products p JOIN shops s ON s.id = p.shop_id
         WHERE p.active = 1 AND s.active = 1",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap_or(0);
    if listed == 0 {
        return None;
    }
    let rebuilding: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM search_queue WHERE scope = 'all'")
            .fetch_one(&db.pool)
            .await
            .unwrap_or(0);
    if rebuilding > 0 {
        return Some(format!(
            "search index is being rebuilt from the database ({listed} products listed)"
        ));
    }
    if search.engine.count().await.unwrap_or(0) == 0 {
        return Some(format!(
            "search index is empty while {listed} products are listed"
        ));
    }
    None
}
