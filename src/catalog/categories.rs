//! A village's categories ("loại hàng"), kept by its moderators: a seller picks one for a
//! product and never types a new one, so one kind of goods is one search filter.
//!
//! Two categories of a village never fold alike (`key`: lower case, no diacritics), and a
//! category sent in another case or without diacritics ("màn tuyn", "man tuyn") is taken as the
//! village's own ("Màn tuyn"). Products keep the category's name, which search indexes; a
//! rename rewrites them and queues their shops for the search index.

use serde::Serialize;
use sqlx::Row;

use super::VillageId;
use crate::accounts::User;
use crate::accounts::store::can_moderate;
use crate::db::{Db, Tx};
use crate::domain::now_ms;
use crate::domain::text::clean_line;
use crate::error::{AppError, Result};

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Category {
    pub id: i64,
    pub name: String,
    /// Products (listed or hidden) of the village's shops in this category.
    pub products: i64,
    /// The parcel a product of this category makes when its seller gave no weight or size
    /// (for carriers' quotes), set by the village's moderator.
    pub parcel: super::Parcel,
}

/// What makes two category names the same one.
pub fn key(name: &str) -> String {
    crate::domain::text::fold_text(name)
}

/// A category name as a moderator typed it: one line of at most 60 characters, first letter
/// upper case ("màn tuyn" → "Màn tuyn").
pub fn parse_name(s: &str) -> std::result::Result<String, String> {
    let s = clean_line(s, "tên loại hàng", 60)?;
    if key(&s).is_empty() {
        return Err("tên loại hàng cần có chữ hoặc số".into());
    }
    Ok(capitalized(&s))
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A village's categories, in alphabetical order of their folded names.
pub async fn list(db: &Db, village: VillageId) -> Result<Vec<Category>> {
    let rows = sqlx::query(
        "SELECT c.id, c.name, c.name_key, c.weight_g, c.length_cm, c.width_cm, c.height_cm,
                (SELECT COUNT(*) FROM products p JOIN shops s ON s.id = p.shop_id
                 WHERE s.village_id = c.village_id AND p.category = c.name) AS n
         FROM categories c WHERE c.village_id = $1 ORDER BY c.name_key, c.id",
    )
    .bind(village.0)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Category {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                products: r.try_get("n")?,
                parcel: parcel_of(r)?,
            })
        })
        .collect()
}

pub(crate) async fn names(tx: &mut Tx, village: VillageId) -> Result<Vec<(i64, String, String)>> {
    Ok(sqlx::query_as(
        "SELECT id, name, name_key FROM categories WHERE village_id = $1 ORDER BY name_key",
    )
    .bind(village.0)
    .fetch_all(&mut **tx)
    .await?)
}

/// The village's name for the category a seller chose (any case, with or without
/// diacritics); a category the village does not have is refused on the `category` field.
pub async fn resolve(tx: &mut Tx, village: VillageId, typed: &str) -> Result<String> {
    let all = names(tx, village).await?;
    let k = key(typed);
    if let Some((_, name, _)) = all.iter().find(|(_, _, key)| *key == k) {
        return Ok(name.clone());
    }
    let message = if all.is_empty() {
        "làng chưa có loại hàng nào; nhờ điều phối viên của làng thêm loại hàng trước".to_string()
    } else {
        let list: Vec<&str> = all.iter().map(|(_, n, _)| n.as_str()).collect();
        format!(
            "hãy chọn một loại hàng của làng: {}; cần loại khác thì nhờ điều phối viên của làng thêm",
            list.join(", ")
        )
    };
    Err(AppError::field("category", message))
}

/// Like `resolve`, but a category the village lacks is added (the admin's importer).
pub async fn ensure(tx: &mut Tx, village: VillageId, typed: &str) -> Result<String> {
    let name = parse_name(typed).map_err(|m| AppError::field("category", m))?;
    let k = key(&name);
    if let Some((_, existing, _)) = names(tx, village)
        .await?
        .into_iter()
        .find(|(_, _, key)| *key == k)
    {
        return Ok(existing);
    }
    insert(tx, village, &name).await?;
    Ok(name)
}

pub(crate) async fn insert(tx: &mut Tx, village: VillageId, name: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO categories (village_id, name, name_key, created_at) VALUES ($1, $2, $3, $4)
         RETURNING id",
    )
    .bind(village.0)
    .bind(name.to_string())
    .bind(key(name))
    .bind(now_ms())
    .fetch_one(&mut **tx)
    .await?)
}

fn taken(existing: &str) -> AppError {
    AppError::field(
        "name",
        format!("làng đã có loại hàng “{existing}” (tên giống nhau khi bỏ dấu)"),
    )
}

async fn require_moderator(db: &Db, user: &User, village: VillageId) -> Result<()> {
    if can_moderate(db, user, village.0).await? {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

/// A moderator (of this village) or an admin adds a category.
pub async fn add(db: &Db, user: &User, village: VillageId, name: &str) -> Result<Category> {
    require_moderator(db, user, village).await?;
    let name = parse_name(name).map_err(|m| AppError::field("name", m))?;
    let mut tx = db.begin().await?;
    let k = key(&name);
    if let Some((_, existing, _)) = names(&mut tx, village)
        .await?
        .into_iter()
        .find(|(_, _, key)| *key == k)
    {
        return Err(taken(&existing));
    }
    // Two moderators adding the same name at once: the second gets the constraint's message.
    let id = insert(&mut tx, village, &name).await?;
    tx.commit().await?;
    Ok(Category {
        id,
        name,
        products: 0,
        parcel: super::Parcel::default(),
    })
}

fn parcel_of(r: &sqlx::any::AnyRow) -> Result<super::Parcel> {
    Ok(super::Parcel {
        weight_g: r.try_get("weight_g")?,
        length_cm: r.try_get("length_cm")?,
        width_cm: r.try_get("width_cm")?,
        height_cm: r.try_get("height_cm")?,
    })
}

async fn parcel_by_id(tx: &mut Tx, id: i64) -> Result<super::Parcel> {
    let r = sqlx::query(
        "SELECT weight_g, length_cm, width_cm, height_cm FROM categories WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    parcel_of(&r)
}

/// The parcel a product of this category makes by default (its moderator's numbers).
pub async fn set_parcel(
    db: &Db,
    user: &User,
    village: VillageId,
    id: i64,
    parcel: super::Parcel,
) -> Result<Category> {
    require_moderator(db, user, village).await?;
    let mut tx = db.begin().await?;
    category_of(&mut tx, village, id).await?;
    sqlx::query(
        "UPDATE categories SET weight_g = $1, length_cm = $2, width_cm = $3, height_cm = $4
         WHERE id = $5",
    )
    .bind(parcel.weight_g)
    .bind(parcel.length_cm)
    .bind(parcel.width_cm)
    .bind(parcel.height_cm)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    list(db, village)
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or(AppError::NotFound)
}

async fn category_of(tx: &mut Tx, village: VillageId, id: i64) -> Result<String> {
    sqlx::query_scalar("SELECT name FROM categories WHERE id = $1 AND village_id = $2")
        .bind(id)
        .bind(village.0)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(AppError::NotFound)
}

/// Rename a category; its products follow (and are queued for the search index).
pub async fn rename(
    db: &Db,
    user: &User,
    village: VillageId,
    id: i64,
    name: &str,
) -> Result<Category> {
    require_moderator(db, user, village).await?;
    let name = parse_name(name).map_err(|m| AppError::field("name", m))?;
    let mut tx = db.begin().await?;
    let old = category_of(&mut tx, village, id).await?;
    let k = key(&name);
    if let Some((_, existing, _)) = names(&mut tx, village)
        .await?
        .into_iter()
        .find(|(other, _, key)| *key == k && *other != id)
    {
        return Err(taken(&existing));
    }
    sqlx::query("UPDATE categories SET name = $1, name_key = $2 WHERE id = $3")
        .bind(name.clone())
        .bind(k)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let n = rename_products(&mut tx, village, &[old], &name).await?;
    let parcel = parcel_by_id(&mut tx, id).await?;
    tx.commit().await?;
    Ok(Category {
        id,
        name,
        products: n,
        parcel,
    })
}

/// Products of the village in any of `from` now say `to`; their shops are queued for search.
async fn rename_products(
    tx: &mut Tx,
    village: VillageId,
    from: &[String],
    to: &str,
) -> Result<i64> {
    let mut moved = 0;
    for old in from {
        let shops: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT p.shop_id FROM products p JOIN shops s ON s.id = p.shop_id
             WHERE s.village_id = $1 AND p.category = $2",
        )
        .bind(village.0)
        .bind(old.clone())
        .fetch_all(&mut **tx)
        .await?;
        for shop in shops {
            let r = sqlx::query(
                "UPDATE products SET category = $1, updated_at = $2
                 WHERE shop_id = $3 AND category = $4",
            )
            .bind(to.to_string())
            .bind(now_ms())
            .bind(shop)
            .bind(old.clone())
            .execute(&mut **tx)
            .await?;
            moved += r.rows_affected() as i64;
            super::store::refresh_search_text(tx, Some(super::ShopId(shop)), None).await?;
        }
    }
    Ok(moved)
}

/// Remove a category no product uses.
pub async fn remove(db: &Db, user: &User, village: VillageId, id: i64) -> Result<()> {
    require_moderator(db, user, village).await?;
    let mut tx = db.begin().await?;
    let name = category_of(&mut tx, village, id).await?;
    let used: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM products p JOIN shops s ON s.id = p.shop_id
         WHERE s.village_id = $1 AND p.category = $2",
    )
    .bind(village.0)
    .bind(name.clone())
    .fetch_one(&mut *tx)
    .await?;
    if used > 0 {
        return Err(AppError::Conflict(format!(
            "Còn {used} sản phẩm thuộc loại hàng “{name}”; hãy đổi loại hàng của chúng hoặc đổi tên loại này thay vì xóa"
        )));
    }
    sqlx::query("DELETE FROM categories WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

const ADOPT: &str = "categories_from_products";

/// Once, after the SQL migrations: every village's list starts as the categories its products
/// already had, names that fold alike merged into one (the most used spelling, first letter
/// upper case) and the products rewritten to it.
pub async fn adopt_existing(db: &Db) -> Result<()> {
    if db.data_migration_done(ADOPT).await? {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    if !crate::db::claim_data_migration(&mut tx, ADOPT).await? {
        tx.commit().await?;
        return Ok(());
    }
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT s.village_id, p.category, COUNT(*) FROM products p JOIN shops s ON s.id = p.shop_id
         GROUP BY s.village_id, p.category ORDER BY s.village_id, COUNT(*) DESC, p.category",
    )
    .fetch_all(&mut *tx)
    .await?;
    // (village, key) → spellings, most used first.
    let mut groups: Vec<((i64, String), Vec<String>)> = Vec::new();
    for (village, name, _) in rows {
        let k = key(&name);
        if k.is_empty() {
            continue;
        }
        match groups.iter_mut().find(|(g, _)| g.0 == village && g.1 == k) {
            Some((_, names)) => names.push(name),
            None => groups.push(((village, k), vec![name])),
        }
    }
    for ((village, _), spellings) in groups {
        let village = VillageId(village);
        let name = ensure(&mut tx, village, &spellings[0]).await?;
        let others: Vec<String> = spellings.into_iter().filter(|s| *s != name).collect();
        rename_products(&mut tx, village, &others, &name).await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_line_and_capitalized() {
        assert_eq!(parse_name("  màn   tuyn ").unwrap(), "Màn tuyn");
        assert_eq!(parse_name("đồ gỗ").unwrap(), "Đồ gỗ");
        assert!(parse_name("").is_err());
        assert!(parse_name("—").is_err());
        assert!(parse_name(&"a".repeat(61)).is_err());
    }

    #[test]
    fn spellings_fold_to_one_key() {
        assert_eq!(key("Màn tuyn"), key("man  TUYN"));
        assert_eq!(key("Đồ gỗ"), "do go");
        assert_ne!(key("Mật ong"), key("Mật ong rừng"));
    }
}
