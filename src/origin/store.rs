//! SQL for batches, their revisions, photos and scan counts.

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{BatchFields, InputSource, ProductRules, generated_code};
use crate::catalog::{ProductDetail, Shop};
use crate::db::{Db, Tx};
use crate::domain::now_ms;
use crate::error::{AppError, Result};

/// One state of a batch's record. The first is revision 1; a correction after labels were
/// printed adds the next one.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Revision {
    pub revision: i64,
    pub produced_on: String,
    pub quantity: i64,
    pub maker: String,
    pub inputs: Vec<InputSource>,
    pub notes: String,
    pub expires_on: Option<String>,
    pub reason: String,
    pub created_at: i64,
}

/// A batch with its current revision.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Batch {
    #[serde(skip)]
    pub id: i64,
    pub code: String,
    #[serde(skip)]
    pub product_id: i64,
    #[serde(skip)]
    pub shop_id: i64,
    pub labels_printed_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(flatten)]
    pub current: Revision,
}

impl Batch {
    pub fn produced(&self) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(&self.current.produced_on, "%Y-%m-%d").ok()
    }
}

/// The rules a product's batches follow.
pub fn rules_for(p: &ProductDetail) -> ProductRules {
    ProductRules {
        food: super::is_food_category(&p.card.category),
    }
}

fn revision_from_row(r: &AnyRow) -> Result<Revision> {
    let inputs: String = r.try_get("inputs")?;
    Ok(Revision {
        revision: r.try_get("revision")?,
        produced_on: r.try_get("produced_on")?,
        quantity: r.try_get("quantity")?,
        maker: r.try_get("maker")?,
        inputs: serde_json::from_str(&inputs).unwrap_or_default(),
        notes: r.try_get("notes")?,
        expires_on: r.try_get("expires_on")?,
        reason: r.try_get("reason")?,
        created_at: r.try_get("rev_created_at")?,
    })
}

const BATCH_SELECT: &str = "SELECT b.id, b.code, b.product_id, b.shop_id, b.labels_printed_at,
        b.created_at, b.updated_at, r.revision, r.produced_on, r.quantity, r.maker, r.inputs,
        r.notes, r.expires_on, r.reason,
        r.created_at AS rev_created_at
    FROM batches b JOIN batch_revisions r ON r.batch_id = b.id AND r.revision = b.revision";

fn batch_from_row(r: &AnyRow) -> Result<Batch> {
    Ok(Batch {
        id: r.try_get("id")?,
        code: r.try_get("code")?,
        product_id: r.try_get("product_id")?,
        shop_id: r.try_get("shop_id")?,
        labels_printed_at: r.try_get("labels_printed_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        current: revision_from_row(r)?,
    })
}

pub async fn by_code(db: &Db, code: &str) -> Result<Batch> {
    let code = code.trim().to_ascii_uppercase();
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{BATCH_SELECT} WHERE b.code = $1"
    )))
    .bind(code)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    batch_from_row(&row)
}

/// A product's batches, newest first.
pub async fn of_product(db: &Db, product_id: i64) -> Result<Vec<Batch>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{BATCH_SELECT} WHERE b.product_id = $1 ORDER BY b.id DESC"
    )))
    .bind(product_id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(batch_from_row).collect()
}

/// Earlier revisions, newest first (the current one excluded).
pub async fn history(db: &Db, batch: &Batch) -> Result<Vec<Revision>> {
    let rows = sqlx::query(
        "SELECT revision, produced_on, quantity, maker, inputs, notes, expires_on,
                reason, created_at AS rev_created_at
         FROM batch_revisions WHERE batch_id = $1 AND revision < $2 ORDER BY revision DESC",
    )
    .bind(batch.id)
    .bind(batch.current.revision)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(revision_from_row).collect()
}

async fn code_taken(tx: &mut Tx, code: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM batches WHERE code = $1")
        .bind(code.to_string())
        .fetch_one(&mut **tx)
        .await?;
    Ok(n > 0)
}

fn code_conflict() -> AppError {
    AppError::field("code", "Mã lô này đã được dùng; hãy chọn mã khác")
}

/// Record a new batch of `product` (the caller authorized the shop).
pub async fn create(
    db: &Db,
    shop: &Shop,
    product: &ProductDetail,
    village_name: &str,
    f: &BatchFields,
    user_id: i64,
) -> Result<Batch> {
    crate::catalog::store::require_member(shop)?;
    // A generated code can still be taken between our look and our insert by a village
    // with the same initials: the transaction is rolled back and the next number tried.
    for _ in 0..3 {
        match create_once(db, shop, product, village_name, f, user_id).await {
            Err(Taken) if f.code.is_none() => continue,
            Err(Taken) => return Err(code_conflict()),
            Ok(code) => return by_code(db, &code).await,
            Err(Failed(e)) => return Err(e),
        }
    }
    Err(code_conflict())
}

enum CreateError {
    /// The code was inserted by someone else first.
    Taken,
    Failed(AppError),
}
use CreateError::{Failed, Taken};

impl<E: Into<AppError>> From<E> for CreateError {
    fn from(e: E) -> Self {
        Failed(e.into())
    }
}

async fn create_once(
    db: &Db,
    shop: &Shop,
    product: &ProductDetail,
    village_name: &str,
    f: &BatchFields,
    user_id: i64,
) -> std::result::Result<String, CreateError> {
    let mut tx = db.begin().await?;
    let code = match &f.code {
        Some(c) => {
            // A code in the generated form is another village's unless it carries this
            // shop's village initials: nobody squats a village's coming numbers.
            let own = super::code_prefix(village_name);
            if let Some(p) = super::generated_prefix(c.as_str())
                && p != own
            {
                return Err(Failed(AppError::field(
                    "code",
                    format!(
                        "Mã dạng {p}-NGÀY-SỐ là mã tự sinh của làng khác; mã tự sinh của làng bạn bắt đầu bằng {own}-, hoặc để trống để tự sinh"
                    ),
                )));
            }
            if code_taken(&mut tx, c.as_str()).await? {
                return Err(Taken);
            }
            c.as_str().to_string()
        }
        None => {
            // Batches of one village number their days together: their creations take the
            // village row's lock (a write that changes nothing; SQLite's write transaction is
            // exclusive anyway), so they take numbers one after the other.
            sqlx::query("UPDATE villages SET quorum_min_yes = quorum_min_yes WHERE id = $1")
                .bind(shop.village_id.0)
                .execute(&mut *tx)
                .await?;
            let prefix = super::code_prefix(village_name);
            let mut n = 1;
            loop {
                let c = generated_code(&prefix, f.produced_on, n);
                if !code_taken(&mut tx, &c).await? {
                    break c;
                }
                n += 1;
                if n > 999 {
                    return Err(Failed(AppError::Conflict(
                        "Đã có quá nhiều lô trong ngày này; hãy tự đặt mã lô".into(),
                    )));
                }
            }
        }
    };
    let now = now_ms();
    let inserted = sqlx::query_scalar::<_, i64>(
        "INSERT INTO batches (code, product_id, shop_id, revision, created_at, updated_at)
         VALUES ($1, $2, $3, 1, $4, $4) RETURNING id",
    )
    .bind(code.clone())
    .bind(product.card.id.0)
    .bind(shop.id.0)
    .bind(now)
    .fetch_one(&mut *tx)
    .await;
    let id = match inserted {
        Ok(id) => id,
        // Nothing is half-written: the transaction is dropped (rolled back) here.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Err(Taken),
        Err(e) => return Err(e.into()),
    };
    insert_revision(&mut tx, id, 1, f, user_id, now).await?;
    tx.commit().await?;
    Ok(code)
}

async fn insert_revision(
    tx: &mut Tx,
    batch_id: i64,
    revision: i64,
    f: &BatchFields,
    user_id: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO batch_revisions (batch_id, revision, produced_on, quantity, maker, inputs,
           notes, expires_on, reason, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(batch_id)
    .bind(revision)
    .bind(f.produced_on.format("%Y-%m-%d").to_string())
    .bind(f.quantity)
    .bind(f.maker.clone())
    .bind(serde_json::to_string(&f.inputs).map_err(anyhow::Error::from)?)
    .bind(f.notes.clone())
    .bind(f.expires_on.map(|d| d.format("%Y-%m-%d").to_string()))
    .bind(f.reason.clone())
    .bind(user_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Correct a batch. Before labels were printed the record is fixed in place; after, the
/// correction is a new revision with its reason and the old one stays on the origin page.
pub async fn update(db: &Db, batch: &Batch, f: &BatchFields, user_id: i64) -> Result<Batch> {
    if f.code.as_ref().is_some_and(|c| c.as_str() != batch.code) {
        return Err(AppError::field(
            "code",
            "Mã lô không đổi được (nó đã nằm trong mã QR); hãy tạo lô mới",
        ));
    }
    let mut tx = db.begin().await?;
    let now = now_ms();
    // Lock the batch first (the project's idiom: a write takes the row lock on PostgreSQL;
    // SQLite's write transaction is already exclusive), then read: two corrections, or a
    // correction and a print, are serialized instead of colliding on a revision number.
    sqlx::query("UPDATE batches SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(batch.id)
        .execute(&mut *tx)
        .await?;
    let (printed, revision): (Option<i64>, i64) =
        sqlx::query_as("SELECT labels_printed_at, revision FROM batches WHERE id = $1")
            .bind(batch.id)
            .fetch_one(&mut *tx)
            .await?;
    if printed.is_none() {
        sqlx::query("DELETE FROM batch_revisions WHERE batch_id = $1 AND revision = $2")
            .bind(batch.id)
            .bind(revision)
            .execute(&mut *tx)
            .await?;
        insert_revision(&mut tx, batch.id, revision, f, user_id, now).await?;
    } else {
        if f.reason.trim().is_empty() {
            return Err(AppError::field(
                "reason",
                "Tem của lô đã in: ghi lý do sửa (sẽ hiện trong lịch sử lô)",
            ));
        }
        // Conditional on the revision read: two corrections at once never share a number.
        let n = sqlx::query(
            "UPDATE batches SET revision = revision + 1, updated_at = $1 WHERE id = $2 AND revision = $3",
        )
        .bind(now)
        .bind(batch.id)
        .bind(revision)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Err(AppError::Conflict(
                "Lô vừa được sửa ở nơi khác; hãy tải lại trang".into(),
            ));
        }
        insert_revision(&mut tx, batch.id, revision + 1, f, user_id, now).await?;
    }
    tx.commit().await?;
    by_code(db, &batch.code).await
}

/// Labels were printed: from now on corrections are revisions.
pub async fn mark_printed(db: &Db, batch_id: i64) -> Result<()> {
    sqlx::query(
        "UPDATE batches SET labels_printed_at = $1 WHERE id = $2 AND labels_printed_at IS NULL",
    )
    .bind(now_ms())
    .bind(batch_id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Written views per day, newest first.
pub async fn scans(db: &Db, batch_id: i64) -> Result<Vec<(String, i64)>> {
    Ok(
        sqlx::query_as("SELECT day, n FROM batch_scans WHERE batch_id = $1 ORDER BY day DESC")
            .bind(batch_id)
            .fetch_all(&db.pool)
            .await?,
    )
}

pub async fn product_slug(db: &Db, product_id: i64) -> Result<String> {
    Ok(
        sqlx::query_scalar("SELECT slug FROM products WHERE id = $1")
            .bind(product_id)
            .fetch_one(&db.pool)
            .await?,
    )
}

/// The chosen batch, else the newest (the current batch of a product).
const SELLING: &str = "SELECT b.code FROM batches b JOIN products p ON p.id = b.product_id
     WHERE b.product_id = $1 AND (p.current_batch_id IS NULL OR b.id = p.current_batch_id)
     ORDER BY b.id DESC LIMIT 1";

/// The batch new orders of a product are sold from: the chosen one, else the newest (in an
/// order's transaction, or for the product page's origin link on its held connection).
pub async fn current_code(
    conn: &mut sqlx::AnyConnection,
    product_id: i64,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(SELLING)
        .bind(product_id)
        .fetch_optional(&mut *conn)
        .await?)
}

/// The chosen batch's code, if the seller chose one.
pub async fn chosen_code(db: &Db, product_id: i64) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT b.code FROM products p JOIN batches b ON b.id = p.current_batch_id WHERE p.id = $1",
    )
    .bind(product_id)
    .fetch_optional(&db.pool)
    .await?)
}

/// Choose the batch new orders are sold from; `None` follows the newest batch.
pub async fn set_current(db: &Db, product_id: i64, code: Option<&str>) -> Result<()> {
    let id = match code {
        None => None,
        Some(c) => {
            let b = by_code(db, c)
                .await
                .map_err(|_| AppError::field("current_batch", "Không có lô này"))?;
            if b.product_id != product_id {
                return Err(AppError::field(
                    "current_batch",
                    "Lô này thuộc sản phẩm khác",
                ));
            }
            Some(b.id)
        }
    };
    sqlx::query("UPDATE products SET current_batch_id = $1, updated_at = $2 WHERE id = $3")
        .bind(id)
        .bind(now_ms())
        .bind(product_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The product a GTIN-14 belongs to (GS1 Digital Link resolver).
pub async fn product_slug_by_gtin(db: &Db, gtin14: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT p.slug FROM products p JOIN shops s ON s.id = p.shop_id
         WHERE p.gtin = $1 AND p.active = 1 AND s.active = 1",
    )
    .bind(gtin14.to_string())
    .fetch_optional(&db.pool)
    .await?)
}

pub async fn photos(db: &Db, batch_id: i64) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT file_name, thumb_name FROM batch_photos WHERE batch_id = $1 ORDER BY position, id",
    )
    .bind(batch_id)
    .fetch_all(&db.pool)
    .await?)
}

pub const MAX_PHOTOS: i64 = 6;

/// Attach a saved photo; refused past the limit (counted in the same statement's transaction).
pub async fn add_photo(db: &Db, batch_id: i64, file: &str, thumb: &str) -> Result<()> {
    let mut tx = db.begin().await?;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM batch_photos WHERE batch_id = $1")
        .bind(batch_id)
        .fetch_one(&mut *tx)
        .await?;
    if n >= MAX_PHOTOS {
        return Err(AppError::field(
            "photo",
            format!("Mỗi lô có tối đa {MAX_PHOTOS} ảnh"),
        ));
    }
    sqlx::query(
        "INSERT INTO batch_photos (batch_id, file_name, thumb_name, position, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(batch_id)
    .bind(file.to_string())
    .bind(thumb.to_string())
    .bind(n)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Everything the origin page, the labels and the API say about a batch.
pub struct Traced {
    pub batch: Batch,
    pub product: ProductDetail,
    pub shop: Shop,
    pub village: crate::catalog::Village,
}

impl Traced {
    /// Whether anyone may see this batch's origin (page, API, list): its product is listed
    /// and its shop takes part in its village's board.
    pub fn public(&self) -> bool {
        self.product.card.active && self.shop.is_member()
    }
}

/// A batch with its product, shop and village (its owner's pages read it whatever its state).
pub async fn traced(db: &Db, code: &str) -> Result<Traced> {
    let batch = by_code(db, code).await?;
    let slug = product_slug(db, batch.product_id).await?;
    let product = crate::catalog::store::product_by_slug(db, &slug).await?;
    let shop = crate::catalog::store::shop_by_id(db, product.shop_id).await?;
    let village = crate::catalog::store::village_by_id(db, shop.village_id).await?;
    Ok(Traced {
        batch,
        product,
        shop,
        village,
    })
}

/// A batch as the public sees it, the page and the API alike: not found unless `public`.
pub async fn public_trace(db: &Db, code: &str) -> Result<Traced> {
    let t = traced(db, code).await?;
    if t.public() {
        Ok(t)
    } else {
        Err(AppError::NotFound)
    }
}
