//! `cholang import FILE.csv`: a village catalogue from a spreadsheet export.
//!
//! All or nothing: every row is checked first and every bad row is reported with its line
//! number; only a clean file is written, in one transaction. Re-importing the same file
//! changes nothing.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::Row;

use super::store::{NewVillage, free_slug, insert_product, refresh_search_text};
use super::{ShopId, parse_ocop, parse_stock};
use crate::db::{Db, Tx};
use crate::domain::text::{clean_line, clean_text};
use crate::domain::{Email, PhoneVn, Slug, Vnd, now_ms};
use crate::error::{AppError, Result};

pub const HEADER: [&str; 13] = [
    "village",
    "commune",
    "district",
    "shop",
    "shop_phone",
    "shop_email",
    "product",
    "description",
    "category",
    "price_vnd",
    "unit",
    "stock",
    "ocop_stars",
];

/// Optional last columns: the OCOP certificate behind the stars (a header without them
/// still imports).
const CERT_COLUMNS: [&str; 2] = ["ocop_cert_no", "ocop_cert_year"];

#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    pub line: u64,
    pub village: String,
    pub commune: String,
    pub district: String,
    pub shop: String,
    pub shop_phone: PhoneVn,
    pub shop_email: Option<Email>,
    pub product: String,
    pub description: String,
    pub category: String,
    pub price: Vnd,
    pub unit: String,
    pub stock: i64,
    pub ocop_stars: Option<i64>,
    /// (number, year) of the OCOP certificate, when the file has the columns.
    pub ocop_cert: Option<(String, i64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RowError {
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "dòng {}: {}", self.line, self.message)
    }
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub villages_created: u32,
    pub shops_created: u32,
    pub shops_updated: u32,
    pub items_created: u32,
    pub items_repriced: u32,
    pub products_created: u32,
    pub products_updated: u32,
    pub rows_unchanged: u32,
}

impl ImportReport {
    pub fn changed(&self) -> bool {
        self.villages_created
            + self.shops_created
            + self.shops_updated
            + self.items_created
            + self.items_repriced
            + self.products_created
            + self.products_updated
            > 0
    }
}

/// A price in the file: digits only, a positive whole number of đồng.
fn strict_price(s: &str) -> std::result::Result<Vnd, String> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("price_vnd {s:?} không phải số nguyên dương"));
    }
    s.parse::<i64>()
        .map_err(|_| "price_vnd quá lớn".to_string())
        .and_then(Vnd::new)
}

/// Parse and check the whole file. Returns every row, or every error.
pub fn parse_csv<R: std::io::Read>(input: R) -> std::result::Result<Vec<ImportRow>, Vec<RowError>> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(input);
    let (header_ok, with_cert) = match reader.headers() {
        Ok(h) => {
            let h: Vec<&str> = h
                .iter()
                .map(|f| f.trim().trim_start_matches('\u{feff}'))
                .collect();
            let with_cert: Vec<&str> = HEADER.iter().chain(CERT_COLUMNS.iter()).copied().collect();
            (h == HEADER || h == with_cert, h == with_cert)
        }
        Err(_) => (false, false),
    };
    let columns = HEADER.len() + if with_cert { CERT_COLUMNS.len() } else { 0 };
    if !header_ok {
        return Err(vec![RowError {
            line: 1,
            message: format!(
                "tiêu đề phải đúng là: {} (có thể thêm {})",
                HEADER.join(","),
                CERT_COLUMNS.join(",")
            ),
        }]);
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    // consistency across rows: one price and unit per village item, one phone per shop
    let mut items: HashMap<(String, String), (u64, Vnd, String)> = HashMap::new();
    let mut shops: HashMap<(String, String), (u64, PhoneVn)> = HashMap::new();
    let mut seen: HashMap<(String, String, String), u64> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(RowError {
                    line,
                    message: format!("không đọc được dòng: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.len() != columns {
            errors.push(RowError {
                line,
                message: format!("cần {columns} cột, dòng này có {}", record.len()),
            });
            continue;
        }
        let f = |i: usize| record.get(i).unwrap_or("");
        let mut problems = Vec::new();
        let mut req = |i: usize, max: usize| match clean_line(f(i), HEADER[i], max) {
            Ok(v) => v,
            Err(_) => {
                problems.push(format!("thiếu {}", HEADER[i]));
                String::new()
            }
        };
        let village = req(0, 80);
        let commune = req(1, 80);
        let district = req(2, 80);
        let shop = req(3, 80);
        let product = req(6, 120);
        let category = req(8, 60);
        let unit = req(10, 30);
        let phone = PhoneVn::parse(f(4))
            .map_err(|e| problems.push(format!("shop_phone: {e}")))
            .ok();
        let email = if f(5).trim().is_empty() {
            None
        } else {
            Email::parse(f(5))
                .map_err(|e| problems.push(format!("shop_email: {e}")))
                .ok()
        };
        let description = clean_text(f(7), "description", 4000)
            .map_err(|e| problems.push(e))
            .unwrap_or_default();
        let price = strict_price(f(9)).map_err(|e| problems.push(e)).ok();
        let stock = parse_stock(f(11))
            .map_err(|e| problems.push(format!("stock: {e}")))
            .ok();
        let ocop = parse_ocop(f(12))
            .map_err(|_| {
                problems.push(format!(
                    "ocop_stars {:?} không hợp lệ (3, 4, 5 hoặc để trống)",
                    f(12)
                ))
            })
            .ok();
        let ocop_cert = if with_cert && !(f(13).trim().is_empty() && f(14).trim().is_empty()) {
            let this_year = i64::from(chrono::Datelike::year(&crate::origin::today_vn()));
            let no = clean_line(f(13), "ocop_cert_no", 40)
                .map_err(|e| problems.push(format!("ocop_cert_no: {e}")))
                .ok();
            let year = match f(14).trim().parse::<i64>() {
                Ok(y) if (2018..=this_year).contains(&y) => Some(y),
                _ => {
                    problems.push(format!(
                        "ocop_cert_year {:?}: năm cấp từ 2018 đến {this_year}",
                        f(14)
                    ));
                    None
                }
            };
            if matches!(ocop, Some(None)) {
                problems.push("có giấy chứng nhận OCOP mà không có ocop_stars".into());
            }
            no.zip(year)
        } else {
            None
        };
        if problems.is_empty() {
            let (price, phone) = (price.unwrap(), phone.clone().unwrap());
            let vkey = format!("{village}|{commune}|{district}");
            match items.get(&(vkey.clone(), product.clone())) {
                Some((l, p, u)) if *p != price || *u != unit => problems.push(format!(
                    "mặt hàng \"{product}\" đã có giá {p} / {u} ở dòng {l}; một làng chỉ có một giá cộng đồng cho mỗi mặt hàng"
                )),
                Some(_) => {}
                None => {
                    items.insert((vkey.clone(), product.clone()), (line, price, unit.clone()));
                }
            }
            match shops.get(&(vkey.clone(), shop.clone())) {
                Some((l, p)) if *p != phone => problems.push(format!(
                    "cửa hàng \"{shop}\" có số điện thoại khác ở dòng {l}"
                )),
                Some(_) => {}
                None => {
                    shops.insert((vkey.clone(), shop.clone()), (line, phone.clone()));
                }
            }
            if let Some(l) = seen.insert((vkey, shop.clone(), product.clone()), line) {
                problems.push(format!("trùng sản phẩm với dòng {l}"));
            }
        }
        if problems.is_empty() {
            rows.push(ImportRow {
                line,
                village,
                commune,
                district,
                shop,
                shop_phone: phone.unwrap(),
                shop_email: email,
                product,
                description,
                category,
                price: price.unwrap(),
                unit,
                stock: stock.unwrap(),
                ocop_stars: ocop.unwrap(),
                ocop_cert,
            });
        } else {
            errors.push(RowError {
                line,
                message: problems.join("; "),
            });
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// Write checked rows in one transaction, creating or updating only what differs.
pub async fn import_rows(db: &Db, rows: &[ImportRow], province: &str) -> Result<ImportReport> {
    let mut tx = db.begin().await?;
    let mut report = ImportReport::default();
    let mut village_ids: HashMap<String, i64> = HashMap::new();
    let mut shop_ids: HashMap<(i64, String), i64> = HashMap::new();
    let mut item_ids: HashMap<(i64, String), i64> = HashMap::new();
    for r in rows {
        let vkey = format!("{}|{}|{}", r.village, r.commune, r.district);
        let village_id = match village_ids.get(&vkey) {
            Some(id) => *id,
            None => {
                let id = upsert_village(&mut tx, r, province, &mut report).await?;
                village_ids.insert(vkey, id);
                id
            }
        };
        let shop_id = match shop_ids.get(&(village_id, r.shop.clone())) {
            Some(id) => *id,
            None => {
                let id = upsert_shop(&mut tx, village_id, r, &mut report).await?;
                shop_ids.insert((village_id, r.shop.clone()), id);
                id
            }
        };
        let item_id = match item_ids.get(&(village_id, r.product.clone())) {
            Some(id) => *id,
            None => {
                let id = upsert_item(&mut tx, village_id, r, &mut report).await?;
                item_ids.insert((village_id, r.product.clone()), id);
                id
            }
        };
        upsert_product(&mut tx, shop_id, item_id, r, &mut report).await?;
    }
    tx.commit().await?;
    Ok(report)
}

async fn upsert_village(
    tx: &mut Tx,
    r: &ImportRow,
    province: &str,
    report: &mut ImportReport,
) -> Result<i64> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM villages WHERE name = $1 AND commune = $2 AND district = $3",
    )
    .bind(r.village.clone())
    .bind(r.commune.clone())
    .bind(r.district.clone())
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(id) = found {
        return Ok(id);
    }
    report.villages_created += 1;
    let v = NewVillage {
        name: r.village.clone(),
        commune: r.commune.clone(),
        district: r.district.clone(),
        province: province.to_string(),
        story: String::new(),
    };
    Ok(super::store::insert_village(tx, &v).await?.0)
}

async fn upsert_shop(
    tx: &mut Tx,
    village_id: i64,
    r: &ImportRow,
    report: &mut ImportReport,
) -> Result<i64> {
    let found =
        sqlx::query("SELECT id, phone, email FROM shops WHERE village_id = $1 AND name = $2")
            .bind(village_id)
            .bind(r.shop.clone())
            .fetch_optional(&mut **tx)
            .await?;
    let email = r.shop_email.as_ref().map(|e| e.as_str().to_string());
    let now = now_ms();
    if let Some(row) = found {
        let id: i64 = row.try_get("id")?;
        let phone: String = row.try_get("phone")?;
        let old_email: Option<String> = row.try_get("email")?;
        if phone != r.shop_phone.as_str() || old_email != email {
            sqlx::query("UPDATE shops SET phone = $1, email = $2, updated_at = $3 WHERE id = $4")
                .bind(r.shop_phone.as_str().to_string())
                .bind(email)
                .bind(now)
                .bind(id)
                .execute(&mut **tx)
                .await?;
            report.shops_updated += 1;
        }
        return Ok(id);
    }
    let village_name: String = sqlx::query_scalar("SELECT name FROM villages WHERE id = $1")
        .bind(village_id)
        .fetch_one(&mut **tx)
        .await?;
    let slug = free_slug(tx, "shops", &Slug::from_name(&r.shop), &village_name).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO shops (slug, village_id, owner_id, name, phone, email, story, active, created_at, updated_at)
         VALUES ($1, $2, NULL, $3, $4, $5, '', 1, $6, $6) RETURNING id",
    )
    .bind(slug)
    .bind(village_id)
    .bind(r.shop.clone())
    .bind(r.shop_phone.as_str().to_string())
    .bind(email)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    report.shops_created += 1;
    Ok(id)
}

async fn upsert_item(
    tx: &mut Tx,
    village_id: i64,
    r: &ImportRow,
    report: &mut ImportReport,
) -> Result<i64> {
    let found = sqlx::query(
        "SELECT id, unit, price_vnd FROM price_items WHERE village_id = $1 AND name = $2",
    )
    .bind(village_id)
    .bind(r.product.clone())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = found else {
        report.items_created += 1;
        return crate::pricing::store::insert_item(
            tx, village_id, &r.product, &r.unit, r.price, "imported", None,
        )
        .await;
    };
    let id: i64 = row.try_get("id")?;
    let unit: String = row.try_get("unit")?;
    let price: i64 = row.try_get("price_vnd")?;
    if unit != r.unit {
        sqlx::query("UPDATE price_items SET unit = $1, updated_at = $2 WHERE id = $3")
            .bind(r.unit.clone())
            .bind(now_ms())
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    if price != r.price.get() {
        crate::pricing::store::apply_price(tx, id, r.price, "imported", None, None).await?;
        report.items_repriced += 1;
    }
    Ok(id)
}

async fn upsert_product(
    tx: &mut Tx,
    shop_id: i64,
    item_id: i64,
    r: &ImportRow,
    report: &mut ImportReport,
) -> Result<()> {
    let found = sqlx::query(
        "SELECT id, slug, description, category, stock, ocop_stars, price_item_id, ocop_cert_no,
           ocop_cert_year FROM products WHERE shop_id = $1 AND name = $2",
    )
    .bind(shop_id)
    .bind(r.product.clone())
    .fetch_optional(&mut **tx)
    .await?;
    let shop = shop_for_insert(tx, shop_id).await?;
    // The admin's file may bring a category the village lacks: it joins the village's list.
    let category = super::categories::ensure(tx, shop.village_id, &r.category).await?;
    let Some(row) = found else {
        let fields = super::ProductFields {
            name: r.product.clone(),
            description: r.description.clone(),
            category,
            stock: r.stock,
            ocop_stars: r.ocop_stars,
            maker: String::new(),
            materials: String::new(),
            made_in: format!("Làng {}, xã {}, huyện {}", r.village, r.commune, r.district),
            price_item_id: item_id,
            gtin: None,
            ocop_cert: r.ocop_cert.clone(),
        };
        let slug = insert_product(tx, &shop, &fields).await?;
        super::store::mark_ocop_verified(tx, &slug).await?;
        report.products_created += 1;
        return Ok(());
    };
    let same = row.try_get::<String, _>("description")? == r.description
        && row.try_get::<String, _>("category")? == category
        && row.try_get::<i64, _>("stock")? == r.stock
        && row.try_get::<Option<i64>, _>("ocop_stars")? == r.ocop_stars
        && row.try_get::<i64, _>("price_item_id")? == item_id
        // A file without the certificate columns leaves the stored certificate alone.
        && match &r.ocop_cert {
            None => true,
            Some((no, year)) => {
                row.try_get::<Option<String>, _>("ocop_cert_no")?.as_ref() == Some(no)
                    && row.try_get::<Option<i64>, _>("ocop_cert_year")? == Some(*year)
            }
        };
    if same {
        report.rows_unchanged += 1;
        return Ok(());
    }
    let slug: String = row.try_get("slug")?;
    sqlx::query(
        "UPDATE products SET description = $1, category = $2, stock = $3, ocop_stars = $4,
           price_item_id = $5, updated_at = $6, ocop_cert_no = COALESCE($8, ocop_cert_no),
           ocop_cert_year = COALESCE($9, ocop_cert_year) WHERE id = $7",
    )
    .bind(r.description.clone())
    .bind(category)
    .bind(r.stock)
    .bind(r.ocop_stars)
    .bind(item_id)
    .bind(now_ms())
    .bind(row.try_get::<i64, _>("id")?)
    .bind(r.ocop_cert.as_ref().map(|c| c.0.clone()))
    .bind(r.ocop_cert.as_ref().map(|c| c.1))
    .execute(&mut **tx)
    .await?;
    super::store::mark_ocop_verified(tx, &slug).await?;
    refresh_search_text(tx, None, Some(&slug)).await?;
    report.products_updated += 1;
    Ok(())
}

async fn shop_for_insert(tx: &mut Tx, shop_id: i64) -> Result<super::Shop> {
    let r = sqlx::query("SELECT village_id, name, slug FROM shops WHERE id = $1")
        .bind(shop_id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(super::Shop {
        id: ShopId(shop_id),
        slug: r.try_get("slug")?,
        village_id: super::VillageId(r.try_get("village_id")?),
        owner_id: None,
        name: r.try_get("name")?,
        phone: String::new(),
        email: None,
        zalo_phone: None,
        telegram_chat_id: None,
        bank_bin: None,
        bank_account_no: None,
        bank_account_name: None,
        story: String::new(),
        active: true,
        // The importer is run by the cooperative's admin: its shops are the village's own.
        membership: "accepted".into(),
        membership_at: None,
        email_confirmed: true,
        payout_hold_until: None,
        notify_email: true,
        notify_zalo: true,
        notify_telegram: true,
    })
}

/// Parse, check and import a file's bytes. A file with any bad row writes nothing.
pub async fn import_bytes(
    db: &Db,
    bytes: &[u8],
    province: &str,
) -> std::result::Result<ImportReport, ImportFailure> {
    let rows = parse_csv(bytes).map_err(ImportFailure::BadRows)?;
    let report = import_rows(db, &rows, province)
        .await
        .map_err(ImportFailure::Db)?;
    // The rows are in: a failure here is logged, not reported as a failed import.
    if rows.len() >= ANALYZE_AFTER_ROWS
        && let Err(e) = refresh_statistics(db).await
    {
        tracing::warn!(error = %e, "imported; refreshing the planner's statistics failed");
    }
    Ok(report)
}

/// A file this large changes the tables' sizes enough to matter to PostgreSQL's planner.
const ANALYZE_AFTER_ROWS: usize = 1_000;

/// PostgreSQL plans from table statistics that autovacuum refreshes only some time after a
/// bulk load; until then every search's cards were read with plans made for the empty
/// tables (measured: the search API at 505 req/s on 10,000 fresh products, 3,014 after
/// `ANALYZE`). SQLite plans without statistics unless asked to keep them: left as it is.
async fn refresh_statistics(db: &Db) -> Result<()> {
    if db.backend == crate::db::Backend::Postgres {
        for table in ["villages", "shops", "price_items", "products", "categories"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {table}")))
                .execute(&db.pool)
                .await?;
        }
    }
    Ok(())
}

#[derive(Debug)]
pub enum ImportFailure {
    BadRows(Vec<RowError>),
    Db(AppError),
}

impl std::fmt::Display for ImportFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportFailure::BadRows(errs) => {
                writeln!(f, "tệp có {} dòng lỗi, không nhập gì:", errs.len())?;
                for e in errs {
                    writeln!(f, "  {e}")?;
                }
                Ok(())
            }
            ImportFailure::Db(e) => write!(f, "lỗi khi ghi dữ liệu: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "village,commune,district,shop,shop_phone,shop_email,product,description,category,price_vnd,unit,stock,ocop_stars\n";

    #[test]
    fn quoted_fields_may_hold_commas() {
        let csv = format!(
            "{H}Phú Đôi,Đại Thắng,Phú Xuyên,Màn tuyn Bà Hạnh,0912000101,,\"Màn tuyn 2 cửa 1m8 x 2m\",\"Màn dày, bền, may tay\",Màn tuyn,180000,chiếc,25,\n"
        );
        let rows = parse_csv(csv.as_bytes()).unwrap();
        assert_eq!(rows[0].description, "Màn dày, bền, may tay");
        assert_eq!(rows[0].price.get(), 180_000);
        assert_eq!(rows[0].line, 2);
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let csv = format!(
            "{H}Phú Đôi,Đại Thắng,Phú Xuyên,Shop A,0912000101,,Màn A,,Màn,180000,chiếc,5,\n\
             Phú Đôi,Đại Thắng,Phú Xuyên,Shop A,0912000101,,Màn B,,Màn,18.5,chiếc,5,\n\
             Phú Đôi,Đại Thắng,Phú Xuyên,,0912000101,,Màn C,,Màn,1000,chiếc,5,\n\
             Phú Đôi,Đại Thắng,Phú Xuyên,Shop A,0912000101,,Màn D,,Màn,1000,chiếc,5,2\n\
             Phú Đôi,Đại Thắng,Phú Xuyên,Shop A,0912000101,,Màn E,,Màn,0,chiếc,5,\n"
        );
        let errs = parse_csv(csv.as_bytes()).unwrap_err();
        let lines: Vec<u64> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6]);
        assert!(errs[0].message.contains("price_vnd"));
        assert!(errs[1].message.contains("shop"));
        assert!(errs[2].message.contains("ocop_stars"));
    }

    #[test]
    fn wrong_header_is_refused() {
        let errs = parse_csv("village,shop\nA,B\n".as_bytes()).unwrap_err();
        assert_eq!(errs[0].line, 1);
    }

    #[test]
    fn one_price_per_village_item() {
        let csv = format!(
            "{H}Phú Đôi,Đại Thắng,Phú Xuyên,Shop A,0912000101,,Màn A,,Màn,180000,chiếc,5,\n\
             Phú Đôi,Đại Thắng,Phú Xuyên,Shop B,0912000102,,Màn A,,Màn,190000,chiếc,5,\n"
        );
        let errs = parse_csv(csv.as_bytes()).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 3);
        assert!(errs[0].message.contains("dòng 2"));
    }
}
