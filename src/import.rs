//! `cholang import FILE.csv`: a village catalogue from a spreadsheet export.
//!
//! All or nothing: every bad row is reported with its line number, and only a clean file is
//! committed, in one transaction. Re-importing the same file changes nothing.
//!
//! At database speed: the file streams through (rows are never all held), villages, shops,
//! categories, items and products are resolved in memory (one lookup per village and shop
//! the file names, paged), and new items, their first prices and new products are written
//! by multi-row statements of a thousand rows.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::Serialize;
use sqlx::Row;

use crate::catalog::store::{NewVillage, free_slug, slug_candidates};
use crate::catalog::{parse_ocop, parse_stock};
use crate::db::{Backend, Db, Tx};
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
    /// Indexes set aside during a bulk load and built again before the commit.
    #[serde(skip)]
    pub indexes_rebuilt: u32,
    /// Foreign keys set aside during a bulk load (PostgreSQL) and checked again before the
    /// commit.
    #[serde(skip)]
    pub keys_checked_again: u32,
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

/// A village item or a product, by a 128-bit hash of the names that identify it (two SipHash
/// seeds; at a million rows a collision is about 1e-27 likely). The import keeps one such
/// entry per item and per product instead of their names: 48 bytes a product.
type Key = [u64; 2];

fn key_of(parts: &[&str]) -> Key {
    let mut out = [0u64; 2];
    for (seed, slot) in out.iter_mut().enumerate() {
        let mut h = DefaultHasher::new();
        seed.hash(&mut h);
        // `str`'s Hash ends each part with a marker byte: ("ab","c") and ("a","bc") differ.
        parts.hash(&mut h);
        *slot = h.finish();
    }
    out
}

/// Hash of a product's stored facts the file can change (not its certificate).
fn facts_hash(description: &str, category: &str, stock: i64, stars: Option<i64>, item: i64) -> u64 {
    let mut h = DefaultHasher::new();
    (description, category, stock, stars, item).hash(&mut h);
    h.finish()
}

fn cert_hash(no: Option<&str>, year: Option<i64>) -> u64 {
    let mut h = DefaultHasher::new();
    (no, year).hash(&mut h);
    h.finish()
}

/// What is known of a village item: its row (id 0 while not written) and what the file said
/// of it first (line 0: not in the file yet; its price and unit are then the database's).
#[derive(Debug, Clone, Copy)]
struct ItemState {
    id: i64,
    price: i64,
    line: u32,
    unit: u32,
    /// Index of the category the file gives the item's products (`NO_CATEGORY`: none yet).
    category: u32,
}

const NO_CATEGORY: u32 = u32::MAX;

/// A product the database holds: its row and hashes of what the file may change.
#[derive(Debug, Clone, Copy)]
struct ProductState {
    id: i64,
    facts: u64,
    cert: u64,
}

#[derive(Default)]
struct Interner {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    fn id(&mut self, s: &str) -> u32 {
        self.id_named(s, s)
    }

    /// By `key`, named as first seen.
    fn id_named(&mut self, key: &str, name: &str) -> u32 {
        if let Some(id) = self.ids.get(key) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.insert(key.to_string(), id);
        id
    }

    fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }
}

struct ShopSeen {
    line: u64,
    phone: PhoneVn,
}

/// A key that is already a uniform hash (a `key_of`, or half of one).
trait Hashed: Copy + Eq {
    fn hash64(&self) -> u64;
}

impl Hashed for Key {
    fn hash64(&self) -> u64 {
        self[0]
    }
}

impl Hashed for u64 {
    fn hash64(&self) -> u64 {
        *self
    }
}

/// A map for the import's million entries: keys and values in two vectors and a table of
/// 4-byte positions, hashed by the key itself. A `HashMap` of the same entries takes about
/// twice the memory (its table doubles past 7/8 full, each slot as wide as key and value),
/// and while it grows it holds the old table and the new one at once: memory SQLite's page
/// cache can use instead.
struct Table<K, V> {
    keys: Vec<K>,
    values: Vec<V>,
    index: hashbrown::HashTable<u32>,
    /// How many keys it takes: `u32::MAX` (lower in tests).
    room: u32,
}

impl<K, V> Default for Table<K, V> {
    fn default() -> Self {
        Table {
            keys: Vec::new(),
            values: Vec::new(),
            index: hashbrown::HashTable::new(),
            room: u32::MAX,
        }
    }
}

impl<K: Hashed, V: Copy> Table<K, V> {
    fn position(&self, key: &K) -> Option<usize> {
        self.index
            .find(key.hash64(), |&i| self.keys[i as usize] == *key)
            .map(|&i| i as usize)
    }

    fn get(&self, key: &K) -> Option<&V> {
        self.position(key).map(|i| &self.values[i])
    }

    /// Sets `key` to `value`. Positions are 4 bytes (memory the page cache can use), so a
    /// table holds at most `room` (`u32::MAX`) keys; one more is refused, not wrapped.
    fn insert(&mut self, key: K, value: V) -> std::result::Result<(), TableFull> {
        match self.position(&key) {
            Some(i) => self.values[i] = value,
            None => {
                let i = u32::try_from(self.keys.len())
                    .ok()
                    .filter(|&i| i < self.room)
                    .ok_or(TableFull)?;
                self.keys.push(key);
                self.values.push(value);
                let keys = &self.keys;
                self.index
                    .insert_unique(key.hash64(), i, |&j| keys[j as usize].hash64());
            }
        }
        Ok(())
    }
}

/// A `Table` already holds `u32::MAX` keys.
#[derive(Debug, PartialEq, Eq)]
struct TableFull;

/// What a seller reads when a file is past what one import holds: more than 4 billion
/// lines or items, in a file of over 100 GB.
const TOO_BIG: &str = "tệp quá lớn để nhập một lần; hãy chia thành nhiều tệp nhỏ hơn";

/// The rules a file's rows keep with each other (one price and unit per village item, one
/// category per item, one phone per shop, each product once), with what the database already
/// holds for the villages and shops the file names.
#[derive(Default)]
struct Checker {
    shops: HashMap<(String, String), ShopSeen>,
    items: Table<Key, ItemState>,
    /// Products the database holds in the shops the file names.
    products: HashMap<Key, ProductState>,
    /// Products the file named so far (by half their key): the line of each. A collision
    /// here (1 in 30 million at a million rows) could only report a false duplicate line,
    /// never write a wrong row: 24 MB less at a million rows.
    seen: Table<u64, u32>,
    units: Interner,
    categories: Interner,
}

/// The file's columns, from its header.
#[derive(Debug, Clone, Copy, Default)]
struct Layout {
    with_cert: bool,
    columns: usize,
}

/// What the file's row meets: the item and product as they were before this row.
struct Before {
    item_key: Key,
    item: Option<ItemState>,
    product: Option<ProductState>,
}

fn village_key(r: &ImportRow) -> String {
    format!("{}|{}|{}", r.village, r.commune, r.district)
}

fn item_key(vkey: &str, product: &str) -> Key {
    key_of(&[vkey, product])
}

fn product_key(vkey: &str, shop: &str, product: &str) -> Key {
    key_of(&[vkey, shop, product])
}

impl Layout {
    /// Reads the header: Err with line 1's message when it is not ours.
    fn header<R: std::io::Read>(
        reader: &mut csv::Reader<R>,
    ) -> std::result::Result<Layout, RowError> {
        let (header_ok, with_cert) = match reader.headers() {
            Ok(h) => {
                let h: Vec<&str> = h
                    .iter()
                    .map(|f| f.trim().trim_start_matches('\u{feff}'))
                    .collect();
                let with_cert: Vec<&str> =
                    HEADER.iter().chain(CERT_COLUMNS.iter()).copied().collect();
                (h == HEADER || h == with_cert, h == with_cert)
            }
            Err(_) => (false, false),
        };
        if !header_ok {
            return Err(RowError {
                line: 1,
                message: format!(
                    "tiêu đề phải đúng là: {} (có thể thêm {})",
                    HEADER.join(","),
                    CERT_COLUMNS.join(",")
                ),
            });
        }
        Ok(Layout {
            with_cert,
            columns: HEADER.len() + if with_cert { CERT_COLUMNS.len() } else { 0 },
        })
    }

    /// One record's own fields.
    fn fields(
        &self,
        record: std::result::Result<csv::StringRecord, csv::Error>,
    ) -> std::result::Result<ImportRow, RowError> {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                return Err(RowError {
                    line,
                    message: format!("không đọc được dòng: {e}"),
                });
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.len() != self.columns {
            return Err(RowError {
                line,
                message: format!("cần {} cột, dòng này có {}", self.columns, record.len()),
            });
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
        let category = if category.is_empty() {
            category
        } else {
            // The village's list takes it in this form (a category it lacks joins the list).
            crate::catalog::categories::parse_name(&category)
                .map_err(|e| problems.push(format!("category: {e}")))
                .unwrap_or_default()
        };
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
        let ocop_cert = if self.with_cert && !(f(13).trim().is_empty() && f(14).trim().is_empty()) {
            let this_year = i64::from(chrono::Datelike::year(&crate::domain::today_vn()));
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
        match (phone, price, stock, ocop) {
            (Some(shop_phone), Some(price), Some(stock), Some(ocop_stars))
                if problems.is_empty() =>
            {
                Ok(ImportRow {
                    line,
                    village,
                    commune,
                    district,
                    shop,
                    shop_phone,
                    shop_email: email,
                    product,
                    description,
                    category,
                    price,
                    unit,
                    stock,
                    ocop_stars,
                    ocop_cert,
                })
            }
            _ => Err(RowError {
                line,
                message: problems.join("; "),
            }),
        }
    }
}

impl Checker {
    /// The row against the rows before it (and what the database holds, once loaded):
    /// records it, and returns what its item and product were before it.
    fn consistent(&mut self, r: &ImportRow) -> std::result::Result<Before, RowError> {
        let vkey = village_key(r);
        // Lines are kept in 4 bytes; a file longer than that is refused, not misnumbered.
        let too_big = || RowError {
            line: r.line,
            message: TOO_BIG.to_string(),
        };
        let line = u32::try_from(r.line).map_err(|_| too_big())?;
        let mut problems = Vec::new();
        let unit = self.units.id(&r.unit);
        let category = self
            .categories
            .id_named(&crate::catalog::categories::key(&r.category), &r.category);
        let item_key = item_key(&vkey, &r.product);
        let item = self.items.get(&item_key).copied();
        if let Some(i) = item.filter(|i| i.line != 0) {
            if i.price != r.price.get() || i.unit != unit {
                problems.push(format!(
                    "mặt hàng \"{}\" đã có giá {} / {} ở dòng {}; một làng chỉ có một giá cộng đồng cho mỗi mặt hàng",
                    r.product,
                    Vnd::new(i.price).map(|v| v.to_string()).unwrap_or_default(),
                    self.units.name(i.unit),
                    i.line
                ));
            } else if i.category != category {
                problems.push(format!(
                    "mặt hàng \"{}\" là loại hàng \"{}\" ở dòng {}; mọi sản phẩm của một mặt hàng cùng một loại hàng",
                    r.product,
                    self.categories.name(i.category),
                    i.line
                ));
            }
        }
        let shop_key = (vkey.clone(), r.shop.clone());
        match self.shops.get(&shop_key) {
            Some(s) if s.phone != r.shop_phone => problems.push(format!(
                "cửa hàng \"{}\" có số điện thoại khác ở dòng {}",
                r.shop, s.line
            )),
            _ => {}
        }
        let product_key = product_key(&vkey, &r.shop, &r.product);
        if let Some(l) = self.seen.get(&product_key[0]) {
            problems.push(format!("trùng sản phẩm với dòng {l}"));
        }
        if !problems.is_empty() {
            return Err(RowError {
                line: r.line,
                message: problems.join("; "),
            });
        }
        if item.is_none_or(|i| i.line == 0) {
            self.items
                .insert(
                    item_key,
                    ItemState {
                        id: item.map(|i| i.id).unwrap_or(0),
                        price: r.price.get(),
                        line,
                        unit,
                        category,
                    },
                )
                .map_err(|_| too_big())?;
        }
        self.seen
            .insert(product_key[0], line)
            .map_err(|_| too_big())?;
        self.shops.entry(shop_key).or_insert(ShopSeen {
            line: r.line,
            phone: r.shop_phone.clone(),
        });
        Ok(Before {
            item_key,
            item,
            product: self.products.get(&product_key).copied(),
        })
    }
}

/// Parse and check a whole file without a database. Returns every row, or every error.
pub fn parse_csv<R: std::io::Read>(input: R) -> std::result::Result<Vec<ImportRow>, Vec<RowError>> {
    let mut reader = reader(input);
    let layout = Layout::header(&mut reader).map_err(|e| vec![e])?;
    let mut checker = Checker::default();
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for record in reader.records() {
        match layout
            .fields(record)
            .and_then(|r| checker.consistent(&r).map(|_| r))
        {
            Ok(r) => rows.push(r),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

fn reader<R: std::io::Read>(input: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(input)
}

/// A row as the reading thread leaves it: checked on its own, with the words of its search
/// text folded (product, shop, village, description) and its name's slug.
struct Read {
    row: ImportRow,
    folded: [String; 4],
    slug: Slug,
}

type ReadRow = std::result::Result<Read, RowError>;

impl Read {
    fn new(row: ImportRow) -> Read {
        let fold = crate::domain::text::fold;
        Read {
            folded: [
                fold(&row.product),
                fold(&row.shop),
                fold(&row.village),
                fold(&row.description),
            ],
            slug: Slug::from_name(&row.product),
            row,
        }
    }
}

/// Rows the reading thread hands over at a time, and batches it may read ahead.
const READ_BATCH: usize = 1000;
const READ_AHEAD: usize = 4;

/// Read, clean and fold the file's rows on a thread of their own (a third of an import's
/// work), a few batches ahead of the writer.
fn read_rows<R: std::io::Read + Send + 'static>(
    reader: csv::Reader<R>,
    layout: Layout,
) -> (
    tokio::sync::mpsc::Receiver<Vec<ReadRow>>,
    std::thread::JoinHandle<()>,
) {
    let (to_writer, rows) = tokio::sync::mpsc::channel(READ_AHEAD);
    let reading = std::thread::spawn(move || {
        let mut batch = Vec::with_capacity(READ_BATCH);
        for record in reader.into_records() {
            batch.push(layout.fields(record).map(Read::new));
            if batch.len() == READ_BATCH
                && to_writer
                    .blocking_send(std::mem::replace(
                        &mut batch,
                        Vec::with_capacity(READ_BATCH),
                    ))
                    .is_err()
            {
                // The writer stopped (a database error): nothing more to read for.
                return;
            }
        }
        if !batch.is_empty() {
            let _ = to_writer.blocking_send(batch);
        }
    });
    (rows, reading)
}

struct VillageState {
    id: Option<i64>,
    name: String,
    /// The village's categories: key → the name the village uses.
    categories: HashMap<String, String>,
}

struct NewItem {
    village: i64,
    name: String,
    unit: String,
    price: i64,
}

/// A product to write. Its item is the one named as the product in its village: `item` when
/// the database held it before the import, else the one this batch writes, else (an item an
/// earlier batch wrote) found by the statement itself.
struct NewProduct {
    shop: i64,
    village: i64,
    item: i64,
    base: Slug,
    shop_name: String,
    name: String,
    description: String,
    category: String,
    stock: i64,
    stars: Option<i64>,
    made_in: String,
    search_text: String,
    cert: Option<(String, i64)>,
}

/// A product of the database the file changes.
struct ProductUpdate {
    id: i64,
    shop: i64,
    village: i64,
    name: String,
    description: String,
    category: String,
    stock: i64,
    stars: Option<i64>,
    search_text: String,
    cert: Option<(String, i64)>,
}

/// An item of the database the file gives another unit or price.
struct ItemChange {
    id: i64,
    unit: Option<String>,
    price: Option<Vnd>,
}

/// What the writer writes at once, in this order: new items (with their first price in the
/// history), changed items, new products, changed products.
#[derive(Default)]
struct Batch {
    items: Vec<NewItem>,
    item_changes: Vec<ItemChange>,
    products: Vec<NewProduct>,
    updates: Vec<ProductUpdate>,
}

impl Batch {
    fn len(&self) -> usize {
        self.items.len() + self.item_changes.len() + self.products.len() + self.updates.len()
    }
}

/// Products a shop's search documents must follow: a few by id, or the whole shop.
#[derive(Default)]
struct Changed {
    products: Vec<i64>,
    whole_shop: bool,
}

/// More changed products than this in one shop: its search documents are rebuilt as a shop.
const SHOP_REINDEX_AFTER: usize = 100;

/// Rows written per multi-row statement: under SQLite's 32,766 and PostgreSQL's 65,535 bound
/// parameters with the widest statement (products, 15 a row).
const BATCH: usize = 1000;

/// Batches the checker may hand the writer ahead of it.
const WRITE_AHEAD: usize = 2;

/// Rows read from the database per page when the file names a village or shop it holds.
const PAGE: i64 = 20_000;

/// Bind parameters for a multi-row statement, in the order they are bound. On SQLite they are
/// anonymous (`?`): sqlx binds a numbered one by asking SQLite its name, which SQLite finds
/// by walking the statement's list of names, so 13,000 numbered parameters cost 85 million
/// steps a statement (75 % of a profiled import).
struct Marks {
    backend: Backend,
    next: usize,
}

impl Marks {
    fn new(backend: Backend) -> Marks {
        Marks { backend, next: 1 }
    }

    /// The next `n` parameters, comma separated.
    fn take(&mut self, n: usize) -> String {
        let marks: Vec<String> = (0..n)
            .map(|_| {
                self.next += 1;
                match self.backend {
                    Backend::Sqlite => "?".to_string(),
                    Backend::Postgres => format!("${}", self.next - 1),
                }
            })
            .collect();
        marks.join(", ")
    }
}

type SharedTx = Arc<tokio::sync::Mutex<Tx>>;

/// The writing half of an import: batches in order, on the import's transaction, while the
/// checker goes on with the next rows (the database and the checker each keep a core busy).
struct Writer {
    tx: SharedTx,
    backend: Backend,
    now: i64,
    changed: HashMap<i64, Changed>,
    /// The items the batch being written created: (village, name) → id.
    batch_items: HashMap<(i64, String), i64>,
    /// Products the catalogue held before the import, and those written since.
    held: i64,
    written: usize,
    set_aside_after: usize,
    /// Indexes set aside for a bulk load: the statements that build them again.
    set_aside: Option<Vec<String>>,
}

/// Indexes no statement of an import reads: a large import into an (almost) empty catalogue
/// builds them once at the end, sorted, instead of inserting each row into each of them
/// (unique keys the import checks against, slugs and names, stay throughout).
pub const SET_ASIDE: [&str; 4] = [
    "products_price_item_idx",
    "products_created_idx",
    "products_gtin_key",
    "price_changes_item_idx",
];

/// Foreign keys PostgreSQL checks row by row on every insert of an import (a query and a row
/// lock per row and key: a third of the server's time in a profiled load), set aside with the
/// indexes and checked again before the commit in one pass each (`ALTER TABLE … ADD
/// CONSTRAINT`, which refuses the commit if any row broke one). SQLite checks its keys
/// cheaply and cannot drop one: it keeps them throughout.
pub const SET_ASIDE_KEYS: [(&str, &str); 4] = [
    ("products", "products_shop_id_fkey"),
    ("products", "products_price_item_id_fkey"),
    ("price_items", "price_items_village_id_fkey"),
    ("price_changes", "price_changes_price_item_id_fkey"),
];

/// An import sets those indexes aside after writing this many products into a catalogue that
/// held fewer. On PostgreSQL, dropping an index locks its table until the commit: a first load
/// makes pages wait, a catalogue in use is never locked this way.
const SET_ASIDE_AFTER: usize = 50_000;

impl Writer {
    async fn run(
        mut self,
        mut batches: tokio::sync::mpsc::Receiver<Batch>,
    ) -> Result<(HashMap<i64, Changed>, Vec<String>)> {
        while let Some(batch) = batches.recv().await {
            self.write(batch).await?;
        }
        Ok((self.changed, self.set_aside.unwrap_or_default()))
    }

    /// Drop the indexes in `SET_ASIDE` once a bulk load into a near-empty catalogue is under
    /// way, keeping each one's own definition to build it again before the commit.
    async fn maybe_set_aside(&mut self, tx: &mut Tx) -> Result<()> {
        if self.set_aside.is_some()
            || self.written < self.set_aside_after
            || self.held >= self.set_aside_after as i64
        {
            return Ok(());
        }
        let definition = match self.backend {
            Backend::Sqlite => "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = $1",
            Backend::Postgres => {
                "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1"
            }
        };
        let mut again = Vec::new();
        for name in SET_ASIDE {
            let sql: Option<String> = sqlx::query_scalar(definition)
                .bind(name)
                .fetch_optional(&mut **tx)
                .await?;
            if let Some(sql) = sql {
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX {name}")))
                    .execute(&mut **tx)
                    .await?;
                again.push(sql);
            }
        }
        if self.backend == Backend::Postgres {
            for (table, name) in SET_ASIDE_KEYS {
                let def: Option<String> = sqlx::query_scalar(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint
                     WHERE conrelid = $1::regclass AND conname = $2 AND contype = 'f'",
                )
                .bind(table)
                .bind(name)
                .fetch_optional(&mut **tx)
                .await?;
                if let Some(def) = def {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "ALTER TABLE {table} DROP CONSTRAINT {name}"
                    )))
                    .execute(&mut **tx)
                    .await?;
                    again.push(format!("ALTER TABLE {table} ADD CONSTRAINT {name} {def}"));
                }
            }
        }
        self.set_aside = Some(again);
        Ok(())
    }

    async fn write(&mut self, batch: Batch) -> Result<()> {
        let tx = self.tx.clone();
        let mut tx = tx.lock().await;
        self.batch_items.clear();
        for chunk in batch.items.chunks(BATCH) {
            self.insert_items(&mut tx, chunk).await?;
        }
        for c in &batch.item_changes {
            if let Some(unit) = &c.unit {
                sqlx::query("UPDATE price_items SET unit = $1, updated_at = $2 WHERE id = $3")
                    .bind(unit.clone())
                    .bind(self.now)
                    .bind(c.id)
                    .execute(&mut **tx)
                    .await?;
            }
            if let Some(price) = c.price {
                crate::pricing::store::apply_price(&mut tx, c.id, price, "imported", None, None)
                    .await?;
            }
        }
        for chunk in batch.products.chunks(BATCH) {
            self.maybe_set_aside(&mut tx).await?;
            self.insert_products(&mut tx, chunk).await?;
            self.written += chunk.len();
        }
        for u in &batch.updates {
            sqlx::query(
                "UPDATE products SET description = $1, category = $2, stock = $3,
                   ocop_stars = $4,
                   price_item_id = (SELECT id FROM price_items WHERE village_id = $11 AND name = $12),
                   updated_at = $5, ocop_cert_no = COALESCE($6, ocop_cert_no),
                   ocop_cert_year = COALESCE($7, ocop_cert_year),
                   ocop_verified_at = $8, search_text = $9 WHERE id = $10",
            )
            .bind(u.description.clone())
            .bind(u.category.clone())
            .bind(u.stock)
            .bind(u.stars)
            .bind(self.now)
            .bind(u.cert.as_ref().map(|c| c.0.clone()))
            .bind(u.cert.as_ref().map(|c| c.1))
            .bind(u.stars.map(|_| self.now))
            .bind(u.search_text.clone())
            .bind(u.id)
            .bind(u.village)
            .bind(u.name.clone())
            .execute(&mut **tx)
            .await?;
            self.changed(u.shop, u.id);
        }
        Ok(())
    }

    fn changed(&mut self, shop: i64, product: i64) {
        let c = self.changed.entry(shop).or_default();
        if c.whole_shop {
            return;
        }
        c.products.push(product);
        if c.products.len() > SHOP_REINDEX_AFTER {
            c.whole_shop = true;
            c.products = Vec::new();
        }
    }

    async fn insert_items(&mut self, tx: &mut Tx, chunk: &[NewItem]) -> Result<()> {
        if self.backend == Backend::Postgres {
            return self.insert_items_pg(tx, chunk).await;
        }
        let mut marks = Marks::new(self.backend);
        let now = self.now;
        let rows: Vec<String> = chunk
            .iter()
            .map(|_| format!("({}, {now}, {now})", marks.take(4)))
            .collect();
        let sql = format!(
            "INSERT INTO price_items (village_id, name, unit, price_vnd, created_at, updated_at)
             VALUES {} RETURNING id, price_vnd, village_id, name",
            rows.join(", ")
        );
        let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(sql));
        for it in chunk {
            q = q
                .bind(it.village)
                .bind(it.name.clone())
                .bind(it.unit.clone())
                .bind(it.price);
        }
        let written: Vec<(i64, i64)> = q
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .map(|(id, price, village, name)| {
                self.batch_items.insert((village, name), id);
                (id, price)
            })
            .collect();
        let mut marks = Marks::new(self.backend);
        let rows: Vec<String> = written
            .iter()
            .map(|_| {
                let [id, price] = [marks.take(1), marks.take(1)];
                format!("({id}, NULL, {price}, 'imported', NULL, {now})")
            })
            .collect();
        let sql = format!(
            "INSERT INTO price_changes (price_item_id, old_price_vnd, new_price_vnd, source,
               actor_user_id, at) VALUES {}",
            rows.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, price) in written {
            q = q.bind(id).bind(price);
        }
        q.execute(&mut **tx).await?;
        Ok(())
    }

    /// PostgreSQL: new items and their first price in the history, in one statement on one
    /// JSON parameter (see `insert_products_pg`).
    async fn insert_items_pg(&mut self, tx: &mut Tx, chunk: &[NewItem]) -> Result<()> {
        #[derive(Serialize)]
        struct Row<'a> {
            village_id: i64,
            name: &'a str,
            unit: &'a str,
            price_vnd: i64,
        }
        // Serialized from borrowed rows: no map of owned values per row on the way.
        let rows = serde_json::to_string(
            &chunk
                .iter()
                .map(|it| Row {
                    village_id: it.village,
                    name: &it.name,
                    unit: &it.unit,
                    price_vnd: it.price,
                })
                .collect::<Vec<_>>(),
        )
        .map_err(|e| AppError::Internal(e.into()))?;
        let written = sqlx::query_as::<_, (i64, i64, String)>(
            "WITH item AS (
               INSERT INTO price_items (village_id, name, unit, price_vnd, created_at, updated_at)
               SELECT r.village_id, r.name, r.unit, r.price_vnd, $2, $2
               FROM json_to_recordset($1::json)
                 AS r(village_id bigint, name text, unit text, price_vnd bigint)
               RETURNING id, price_vnd, village_id, name
             ), first_price AS (
               INSERT INTO price_changes (price_item_id, old_price_vnd, new_price_vnd, source,
                 actor_user_id, at)
               SELECT id, NULL, price_vnd, 'imported', NULL, $2 FROM item
             )
             SELECT id, village_id, name FROM item",
        )
        .bind(rows)
        .bind(self.now)
        .fetch_all(&mut **tx)
        .await?;
        for (id, village, name) in written {
            self.batch_items.insert((village, name), id);
        }
        Ok(())
    }

    /// New products, each under the first free slug of its `slug_candidates`, as a product
    /// added by hand takes it. Each round gives every row waiting its next candidate (never one
    /// another row of the round tries), asks the database in one query which of them the
    /// catalogue (or an earlier batch) holds, writes the rows whose slug is free and keeps the
    /// others for the next round: one round, nearly always. (`ON CONFLICT DO NOTHING` instead
    /// of the lookup was measured 8 s slower on PostgreSQL for a million products.)
    async fn insert_products(&mut self, tx: &mut Tx, chunk: &[NewProduct]) -> Result<()> {
        // Each product's item id when known here; `None`: the statement finds it by name.
        let items: Vec<Option<i64>> = chunk
            .iter()
            .map(|p| {
                (p.item != 0)
                    .then_some(p.item)
                    .or_else(|| self.batch_items.get(&(p.village, p.name.clone())).copied())
            })
            .collect();
        let mut candidates: Vec<_> = chunk
            .iter()
            .map(|p| slug_candidates(&p.base, &p.shop_name))
            .collect();
        let mut todo: Vec<usize> = (0..chunk.len()).collect();
        while !todo.is_empty() {
            let mut tried = std::collections::HashSet::with_capacity(todo.len());
            let mut round = Vec::with_capacity(todo.len());
            for &i in &todo {
                let slug = candidates[i]
                    .find(|c| !tried.contains(c))
                    .ok_or_else(|| AppError::Conflict("không tạo được đường dẫn".into()))?;
                tried.insert(slug.clone());
                round.push((i, slug));
            }
            let taken = self.taken_slugs(tx, &tried).await?;
            let (waiting, free): (Vec<_>, Vec<_>) = round
                .into_iter()
                .partition(|(_, slug)| taken.contains(slug));
            todo = waiting.into_iter().map(|(i, _)| i).collect();
            if free.is_empty() {
                continue;
            }
            let rows: Vec<Slugged> = free
                .into_iter()
                .map(|(i, slug)| Slugged {
                    p: &chunk[i],
                    slug,
                    item: items[i],
                })
                .collect();
            let written = match self.backend {
                Backend::Postgres => self.insert_products_pg(tx, &rows).await?,
                Backend::Sqlite => self.insert_products_sqlite(tx, &rows).await?,
            };
            for (id, shop) in written {
                self.changed(shop, id);
            }
        }
        Ok(())
    }

    /// Which of these slugs the catalogue holds.
    async fn taken_slugs(
        &mut self,
        tx: &mut Tx,
        slugs: &std::collections::HashSet<String>,
    ) -> Result<std::collections::HashSet<String>> {
        let taken: Vec<String> = match self.backend {
            Backend::Postgres => {
                sqlx::query_scalar(
                    "SELECT slug FROM products
                     WHERE slug IN (SELECT json_array_elements_text($1::json))",
                )
                .bind(serde_json::to_string(slugs).map_err(|e| AppError::Internal(e.into()))?)
                .fetch_all(&mut **tx)
                .await?
            }
            Backend::Sqlite => {
                let sql = format!(
                    "SELECT slug FROM products WHERE slug IN ({})",
                    Marks::new(self.backend).take(slugs.len())
                );
                let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
                for s in slugs {
                    q = q.bind(s.clone());
                }
                q.fetch_all(&mut **tx).await?
            }
        };
        Ok(taken.into_iter().collect())
    }

    /// PostgreSQL: the chunk travels as one JSON parameter unpacked by `json_to_recordset`.
    /// PostgreSQL analyses a thousand-row `VALUES` list row by row and expression by
    /// expression; one JSON value it reads in a single pass (close to `COPY`, which the `Any`
    /// driver the import's transaction runs on does not offer).
    async fn insert_products_pg(
        &mut self,
        tx: &mut Tx,
        rows: &[Slugged<'_>],
    ) -> Result<Vec<(i64, i64)>> {
        let now = self.now;
        #[derive(Serialize)]
        struct Row<'a> {
            slug: &'a str,
            shop_id: i64,
            item: Option<i64>,
            village: i64,
            name: &'a str,
            description: &'a str,
            category: &'a str,
            stock: i64,
            ocop_stars: Option<i64>,
            made_in: &'a str,
            search_text: &'a str,
            ocop_cert_no: Option<&'a str>,
            ocop_cert_year: Option<i64>,
            ocop_verified_at: Option<i64>,
        }
        let rows = serde_json::to_string(
            &rows
                .iter()
                .map(|Slugged { p, slug, item }| Row {
                    slug,
                    shop_id: p.shop,
                    item: *item,
                    village: p.village,
                    name: &p.name,
                    description: &p.description,
                    category: &p.category,
                    stock: p.stock,
                    ocop_stars: p.stars,
                    made_in: &p.made_in,
                    search_text: &p.search_text,
                    ocop_cert_no: p.cert.as_ref().map(|c| c.0.as_str()),
                    ocop_cert_year: p.cert.as_ref().map(|c| c.1),
                    ocop_verified_at: p.stars.map(|_| now),
                })
                .collect::<Vec<_>>(),
        )
        .map_err(|e| AppError::Internal(e.into()))?;
        let written = sqlx::query_as::<_, (i64, i64)>(
            "INSERT INTO products (slug, shop_id, price_item_id, name, description, category,
               stock, ocop_stars, maker, materials, made_in, search_text, active, created_at,
               updated_at, ocop_cert_no, ocop_cert_year, ocop_verified_at)
             SELECT r.slug, r.shop_id,
                    COALESCE(r.item, (SELECT i.id FROM price_items i
                                      WHERE i.village_id = r.village AND i.name = r.name)),
                    r.name, r.description, r.category, r.stock, r.ocop_stars, '', '', r.made_in,
                    r.search_text, 1, $2, $2, r.ocop_cert_no, r.ocop_cert_year, r.ocop_verified_at
             FROM json_to_recordset($1::json) AS r(slug text, shop_id bigint, item bigint,
               village bigint, name text, description text, category text, stock bigint,
               ocop_stars bigint, made_in text, search_text text, ocop_cert_no text,
               ocop_cert_year bigint, ocop_verified_at bigint)
             RETURNING id, shop_id",
        )
        .bind(rows)
        .bind(now)
        .fetch_all(&mut **tx)
        .await?;
        Ok(written)
    }

    async fn insert_products_sqlite(
        &mut self,
        tx: &mut Tx,
        rows: &[Slugged<'_>],
    ) -> Result<Vec<(i64, i64)>> {
        let mut marks = Marks::new(self.backend);
        let now = self.now;
        let values: Vec<String> = rows
            .iter()
            .map(|r| {
                let head = marks.take(2);
                let item = match r.item {
                    Some(_) => marks.take(1),
                    None => format!(
                        "(SELECT id FROM price_items WHERE village_id = {} AND name = {})",
                        marks.take(1),
                        marks.take(1)
                    ),
                };
                format!(
                    "({head}, {item}, {}, '', '', {}, 1, {now}, {now}, {})",
                    marks.take(5),
                    marks.take(2),
                    marks.take(3)
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO products (slug, shop_id, price_item_id, name, description, category, stock,
               ocop_stars, maker, materials, made_in, search_text, active, created_at, updated_at,
               ocop_cert_no, ocop_cert_year, ocop_verified_at)
             VALUES {} RETURNING id, shop_id",
            values.join(", ")
        );
        let mut q = sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(sql));
        for Slugged { p, slug, item } in rows {
            q = q.bind(slug.clone()).bind(p.shop);
            q = match item {
                Some(id) => q.bind(*id),
                None => q.bind(p.village).bind(p.name.clone()),
            };
            q = q
                .bind(p.name.clone())
                .bind(p.description.clone())
                .bind(p.category.clone())
                .bind(p.stock)
                .bind(p.stars)
                .bind(p.made_in.clone())
                .bind(p.search_text.clone())
                .bind(p.cert.as_ref().map(|c| c.0.clone()))
                .bind(p.cert.as_ref().map(|c| c.1))
                .bind(p.stars.map(|_| now));
        }
        Ok(q.fetch_all(&mut **tx).await?)
    }
}

/// A new product with the slug this round tries and its item's id, if known.
struct Slugged<'a> {
    p: &'a NewProduct,
    slug: String,
    item: Option<i64>,
}

/// The checking half of an import: rows are checked as the file streams in and handed to the
/// writer in batches while no row has failed; after the first bad row the rest are only
/// checked, and nothing is committed.
struct Import {
    tx: SharedTx,
    checker: Checker,
    province: String,
    now: i64,
    report: ImportReport,
    errors: Vec<RowError>,
    rows: usize,
    villages: HashMap<String, VillageState>,
    shops: HashMap<(String, String), Option<i64>>,
    batch: Batch,
    /// To the writer; None once it stopped.
    to_writer: tokio::sync::mpsc::Sender<Batch>,
}

impl Import {
    fn writing(&self) -> bool {
        self.errors.is_empty()
    }

    /// The village the row names: looked up (with its categories and items) the first time.
    async fn know_village(&mut self, r: &ImportRow, vkey: &str) -> Result<()> {
        if self.villages.contains_key(vkey) {
            return Ok(());
        }
        let tx = self.tx.clone();
        let mut tx = tx.lock().await;
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM villages WHERE name = $1 AND commune = $2 AND district = $3",
        )
        .bind(r.village.clone())
        .bind(r.commune.clone())
        .bind(r.district.clone())
        .fetch_optional(&mut **tx)
        .await?;
        let mut categories = HashMap::new();
        if let Some(id) = id {
            for (_, name, key) in
                crate::catalog::categories::names(&mut tx, crate::catalog::VillageId(id)).await?
            {
                categories.insert(key, name);
            }
            let mut after = 0i64;
            loop {
                let page: Vec<(i64, String, String, i64)> = sqlx::query_as(
                    "SELECT id, name, unit, price_vnd FROM price_items
                     WHERE village_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                )
                .bind(id)
                .bind(after)
                .bind(PAGE)
                .fetch_all(&mut **tx)
                .await?;
                let Some(last) = page.last() else { break };
                after = last.0;
                for (item, name, unit, price) in page {
                    let unit = self.checker.units.id(&unit);
                    self.checker
                        .items
                        .insert(
                            item_key(vkey, &name),
                            ItemState {
                                id: item,
                                price,
                                line: 0,
                                unit,
                                category: NO_CATEGORY,
                            },
                        )
                        .map_err(|_| AppError::BadRequest(TOO_BIG.to_string()))?;
                }
            }
        }
        self.villages.insert(
            vkey.to_string(),
            VillageState {
                id,
                name: r.village.clone(),
                categories,
            },
        );
        Ok(())
    }

    /// The shop the row names: looked up (with its products) the first time.
    async fn know_shop(&mut self, r: &ImportRow, vkey: &str) -> Result<()> {
        let key = (vkey.to_string(), r.shop.clone());
        if self.shops.contains_key(&key) {
            return Ok(());
        }
        let mut id = None;
        if let Some(village) = self.villages[vkey].id {
            let tx = self.tx.clone();
            let mut tx = tx.lock().await;
            let found = sqlx::query(
                "SELECT id, phone, email FROM shops WHERE village_id = $1 AND name = $2",
            )
            .bind(village)
            .bind(r.shop.clone())
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(row) = found {
                let shop: i64 = row.try_get("id")?;
                id = Some(shop);
                let phone: String = row.try_get("phone")?;
                let email: Option<String> = row.try_get("email")?;
                let new_email = r.shop_email.as_ref().map(|e| e.as_str().to_string());
                if self.writing() && (phone != r.shop_phone.as_str() || email != new_email) {
                    sqlx::query(
                        "UPDATE shops SET phone = $1, email = $2, updated_at = $3 WHERE id = $4",
                    )
                    .bind(r.shop_phone.as_str().to_string())
                    .bind(new_email)
                    .bind(self.now)
                    .bind(shop)
                    .execute(&mut **tx)
                    .await?;
                    self.report.shops_updated += 1;
                }
                self.load_products(&mut tx, shop, vkey, &r.shop).await?;
            }
        }
        self.shops.insert(key, id);
        Ok(())
    }

    async fn load_products(
        &mut self,
        tx: &mut Tx,
        shop: i64,
        vkey: &str,
        shop_name: &str,
    ) -> Result<()> {
        let mut after = 0i64;
        loop {
            let page = sqlx::query(
                "SELECT id, name, description, category, stock, ocop_stars, price_item_id,
                   ocop_cert_no, ocop_cert_year
                 FROM products WHERE shop_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            )
            .bind(shop)
            .bind(after)
            .bind(PAGE)
            .fetch_all(&mut **tx)
            .await?;
            let Some(last) = page.last() else { break };
            after = last.try_get("id")?;
            for row in page {
                let name: String = row.try_get("name")?;
                let facts = facts_hash(
                    &row.try_get::<String, _>("description")?,
                    &row.try_get::<String, _>("category")?,
                    row.try_get("stock")?,
                    row.try_get("ocop_stars")?,
                    row.try_get("price_item_id")?,
                );
                let cert = cert_hash(
                    row.try_get::<Option<String>, _>("ocop_cert_no")?.as_deref(),
                    row.try_get("ocop_cert_year")?,
                );
                self.checker.products.insert(
                    product_key(vkey, shop_name, &name),
                    ProductState {
                        id: row.try_get("id")?,
                        facts,
                        cert,
                    },
                );
            }
        }
        Ok(())
    }

    async fn take(&mut self, read: ReadRow) -> Result<()> {
        self.rows += 1;
        let read = match read {
            Ok(r) => r,
            Err(e) => {
                self.errors.push(e);
                return Ok(());
            }
        };
        let vkey = village_key(&read.row);
        self.know_village(&read.row, &vkey).await?;
        self.know_shop(&read.row, &vkey).await?;
        match self.checker.consistent(&read.row) {
            Ok(before) if self.writing() => self.write(&read, &vkey, before).await,
            Ok(_) => Ok(()),
            Err(e) => {
                self.errors.push(e);
                Ok(())
            }
        }
    }

    async fn village_id(&mut self, r: &ImportRow, vkey: &str) -> Result<i64> {
        if let Some(id) = self.villages[vkey].id {
            return Ok(id);
        }
        let v = NewVillage {
            name: r.village.clone(),
            commune: r.commune.clone(),
            district: r.district.clone(),
            province: self.province.clone(),
            story: String::new(),
        };
        let id = crate::catalog::store::insert_village(&mut *self.tx.lock().await, &v)
            .await?
            .0;
        self.report.villages_created += 1;
        if let Some(v) = self.villages.get_mut(vkey) {
            v.id = Some(id);
        }
        Ok(id)
    }

    async fn shop_id(&mut self, r: &ImportRow, vkey: &str, village: i64) -> Result<i64> {
        let key = (vkey.to_string(), r.shop.clone());
        if let Some(id) = self.shops[&key] {
            return Ok(id);
        }
        let village_name = self.villages[vkey].name.clone();
        let tx = self.tx.clone();
        let mut tx = tx.lock().await;
        let slug = free_slug(&mut tx, "shops", &Slug::from_name(&r.shop), &village_name).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO shops (slug, village_id, owner_id, name, phone, email, story, active, created_at, updated_at)
             VALUES ($1, $2, NULL, $3, $4, $5, '', 1, $6, $6) RETURNING id",
        )
        .bind(slug)
        .bind(village)
        .bind(r.shop.clone())
        .bind(r.shop_phone.as_str().to_string())
        .bind(r.shop_email.as_ref().map(|e| e.as_str().to_string()))
        .bind(self.now)
        .fetch_one(&mut **tx)
        .await?;
        self.report.shops_created += 1;
        self.shops.insert(key, Some(id));
        Ok(id)
    }

    /// The village's name for the row's category; one it lacks joins its list.
    async fn category(&mut self, vkey: &str, village: i64, typed: &str) -> Result<String> {
        let key = crate::catalog::categories::key(typed);
        if let Some(name) = self.villages[vkey].categories.get(&key) {
            return Ok(name.clone());
        }
        crate::catalog::categories::insert(
            &mut *self.tx.lock().await,
            crate::catalog::VillageId(village),
            typed,
        )
        .await?;
        if let Some(v) = self.villages.get_mut(vkey) {
            v.categories.insert(key, typed.to_string());
        }
        Ok(typed.to_string())
    }

    async fn write(&mut self, read: &Read, vkey: &str, before: Before) -> Result<()> {
        let r = &read.row;
        let village = self.village_id(r, vkey).await?;
        let shop = self.shop_id(r, vkey, village).await?;
        let category = self.category(vkey, village, &r.category).await?;
        match before.item {
            None => {
                self.batch.items.push(NewItem {
                    village,
                    name: r.product.clone(),
                    unit: r.unit.clone(),
                    price: r.price.get(),
                });
                self.report.items_created += 1;
            }
            // An item of the database the file names for the first time.
            Some(i) if i.line == 0 => {
                let unit = (self.checker.units.name(i.unit) != r.unit).then(|| r.unit.clone());
                let price = (i.price != r.price.get()).then_some(r.price);
                if price.is_some() {
                    self.report.items_repriced += 1;
                }
                if unit.is_some() || price.is_some() {
                    self.batch.item_changes.push(ItemChange {
                        id: i.id,
                        unit,
                        price,
                    });
                }
            }
            Some(_) => {}
        }
        // `search_text` of these parts; folding is per character, so the parts folded on the
        // reading thread join into the same text.
        let [name, shop_words, village_words, description] = &read.folded;
        let search_text = [
            name.as_str(),
            &crate::domain::text::fold(&category),
            name,
            shop_words,
            village_words,
            description,
        ]
        .join(" ");
        match before.product {
            None => {
                self.batch.products.push(NewProduct {
                    shop,
                    village,
                    item: before.item.map(|i| i.id).unwrap_or(0),
                    base: read.slug.clone(),
                    shop_name: r.shop.clone(),
                    name: r.product.clone(),
                    description: r.description.clone(),
                    category,
                    stock: r.stock,
                    stars: r.ocop_stars,
                    made_in: format!("Làng {}, xã {}, huyện {}", r.village, r.commune, r.district),
                    search_text,
                    cert: r.ocop_cert.clone(),
                });
                self.report.products_created += 1;
            }
            Some(p) => {
                // An item written by this import has no id here: the product moves to it.
                let item = self.checker.items.get(&before.item_key).map_or(0, |i| i.id);
                let same = item != 0
                    && p.facts
                        == facts_hash(&r.description, &category, r.stock, r.ocop_stars, item)
                    // A file without the certificate columns leaves the stored one alone.
                    && r.ocop_cert
                        .as_ref()
                        .is_none_or(|(no, year)| p.cert == cert_hash(Some(no), Some(*year)));
                if same {
                    self.report.rows_unchanged += 1;
                } else {
                    self.batch.updates.push(ProductUpdate {
                        id: p.id,
                        shop,
                        village,
                        name: r.product.clone(),
                        description: r.description.clone(),
                        category,
                        stock: r.stock,
                        stars: r.ocop_stars,
                        search_text,
                        cert: r.ocop_cert.clone(),
                    });
                    self.report.products_updated += 1;
                }
            }
        }
        if self.batch.len() >= BATCH {
            self.hand_over().await?;
        }
        Ok(())
    }

    /// The batch to the writer. Err when the writer stopped (its own error says why).
    async fn hand_over(&mut self) -> Result<()> {
        let batch = std::mem::take(&mut self.batch);
        self.to_writer
            .send(batch)
            .await
            .map_err(|_| AppError::Internal(anyhow::anyhow!("the import's writer stopped")))
    }
}

/// Queue the search documents of what changed: a few products by id, a shop with many as a
/// whole.
async fn queue_search(tx: &mut Tx, changed: HashMap<i64, Changed>) -> Result<()> {
    for (shop, c) in changed {
        if c.whole_shop {
            crate::index_queue::enqueue(tx, crate::index_queue::Scope::Shop(shop)).await?;
        } else {
            for p in c.products {
                crate::index_queue::enqueue(tx, crate::index_queue::Scope::Product(p)).await?;
            }
        }
    }
    Ok(())
}

/// Import a file as it streams in (`cholang import`): memory stays bounded by what the
/// import keeps per item and product, not by the file. Three threads share the work: one
/// reads and cleans rows, one checks them against each other, the database writes.
pub async fn import_reader<R: std::io::Read + Send + 'static>(
    db: &Db,
    input: R,
    province: &str,
) -> std::result::Result<ImportReport, ImportFailure> {
    import_tuned(db, input, province, Tuning::default()).await
}

/// Knobs of an import that change how it writes, never what.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// Products written into a catalogue that held fewer before the indexes in `SET_ASIDE`
    /// are dropped, to be built again before the commit.
    pub set_aside_after: usize,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            set_aside_after: SET_ASIDE_AFTER,
        }
    }
}

/// `import_reader` with its knobs set.
pub async fn import_tuned<R: std::io::Read + Send + 'static>(
    db: &Db,
    input: R,
    province: &str,
    tuning: Tuning,
) -> std::result::Result<ImportReport, ImportFailure> {
    let db_error = |e: sqlx::Error| ImportFailure::Db(e.into());
    let mut reader = reader(input);
    let layout = Layout::header(&mut reader).map_err(|e| ImportFailure::BadRows(vec![e]))?;
    let mut tx = db.begin().await.map_err(db_error)?;
    if db.backend == Backend::Sqlite {
        // Room for the indexes' pages a large file touches (SQLite's default is 2 MB, and
        // pages spilled early are written again and again); put back before the commit.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "PRAGMA cache_size = -{IMPORT_CACHE_KIB}"
        )))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    }
    let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products")
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
    let tx: SharedTx = Arc::new(tokio::sync::Mutex::new(tx));
    let now = now_ms();
    let (to_writer, batches) = tokio::sync::mpsc::channel(WRITE_AHEAD);
    let writer = tokio::spawn(
        Writer {
            tx: tx.clone(),
            backend: db.backend,
            now,
            changed: HashMap::new(),
            batch_items: HashMap::new(),
            held,
            written: 0,
            set_aside_after: tuning.set_aside_after,
            set_aside: None,
        }
        .run(batches),
    );
    let (mut rows, reading) = read_rows(reader, layout);
    let mut import = Import {
        tx: tx.clone(),
        checker: Checker::default(),
        province: province.to_string(),
        now,
        report: ImportReport::default(),
        errors: Vec::new(),
        rows: 0,
        villages: HashMap::new(),
        shops: HashMap::new(),
        batch: Batch::default(),
        to_writer,
    };
    let mut checked = Ok(());
    'rows: while let Some(batch) = rows.recv().await {
        for read in batch {
            if let Err(e) = import.take(read).await {
                checked = Err(e);
                break 'rows;
            }
        }
    }
    if checked.is_ok() && import.writing() {
        checked = import.hand_over().await;
    }
    let Import {
        report,
        rows: row_count,
        errors,
        to_writer,
        tx: checker_tx,
        ..
    } = import;
    drop((to_writer, rows, checker_tx));
    // The writer's own error first: a checker that found the writer gone says only that.
    let (changed, set_aside) = writer
        .await
        .map_err(|e| ImportFailure::Db(AppError::Internal(anyhow::anyhow!("import writer: {e}"))))?
        .map_err(ImportFailure::Db)?;
    checked.map_err(ImportFailure::Db)?;
    // The channel also closes when the reading thread dies: only a thread that read to the
    // end lets the rows be committed.
    if reading.join().is_err() {
        return Err(ImportFailure::Db(AppError::Internal(anyhow::anyhow!(
            "the import's reading thread failed; nothing was imported"
        ))));
    }
    if !errors.is_empty() {
        // Dropping the transaction rolls back what the rows before the first bad one wrote.
        return Err(ImportFailure::BadRows(errors));
    }
    let Ok(tx) = Arc::try_unwrap(tx) else {
        return Err(ImportFailure::Db(AppError::Internal(anyhow::anyhow!(
            "the import's transaction is still shared"
        ))));
    };
    let mut tx = tx.into_inner();
    let mut report = report;
    report.indexes_rebuilt = set_aside.iter().filter(|s| s.starts_with("CREATE")).count() as u32;
    report.keys_checked_again = set_aside.len() as u32 - report.indexes_rebuilt;
    for sql in set_aside {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
    }
    queue_search(&mut tx, changed)
        .await
        .map_err(ImportFailure::Db)?;
    if db.backend == Backend::Sqlite {
        sqlx::query("PRAGMA cache_size = -2000")
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)?;
    // The rows are in: a failure here is logged, not reported as a failed import.
    if row_count >= ANALYZE_AFTER_ROWS
        && let Err(e) = refresh_statistics(db).await
    {
        tracing::warn!(error = %e, "imported; refreshing the planner's statistics failed");
    }
    Ok(report)
}

/// SQLite's page cache during an import, in KiB: the index pages a million rows touch stay
/// in memory instead of being spilled to the WAL and written again (measured at a million
/// rows: 64 MB 50.6 s, 96 MB 42 – 44 s at a peak of 259 MB, 128 MB 42.5 s at 297 MB; the
/// issue bounds the import at 300 MB).
const IMPORT_CACHE_KIB: u32 = 98_304;

/// Parse, check and import a file's bytes. A file with any bad row writes nothing.
pub async fn import_bytes(
    db: &Db,
    bytes: &[u8],
    province: &str,
) -> std::result::Result<ImportReport, ImportFailure> {
    import_reader(db, std::io::Cursor::new(bytes.to_vec()), province).await
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

    /// Two keys that share the half the table hashes by are still two entries; a key
    /// inserted again takes the new value; a million entries are all found.
    #[test]
    fn the_import_table_keeps_every_key_apart() {
        let mut t: Table<Key, u32> = Table::default();
        t.insert([7, 1], 1).unwrap();
        t.insert([7, 2], 2).unwrap();
        assert_eq!(t.get(&[7, 1]), Some(&1));
        assert_eq!(t.get(&[7, 2]), Some(&2));
        assert_eq!(t.get(&[7, 3]), None);
        t.insert([7, 1], 10).unwrap();
        assert_eq!((t.get(&[7, 1]), t.keys.len()), (Some(&10), 2));
        let keys: Vec<Key> = (0..1_000_000u32)
            .map(|i| key_of(&[&i.to_string(), "x"]))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            t.insert(*k, i as u32).unwrap();
        }
        assert!(
            keys.iter()
                .enumerate()
                .all(|(i, k)| t.get(k) == Some(&(i as u32)))
        );
        let mut seen: Table<u64, u32> = Table::default();
        seen.insert(5, 9).unwrap();
        assert_eq!((seen.get(&5), seen.get(&6)), (Some(&9), None));
    }

    /// A table past its room, or a line past 4 bytes, is a row error naming the line: the
    /// file is refused whole, nothing stops and nothing is misnumbered.
    #[test]
    fn a_file_past_the_tables_room_is_a_row_error() {
        let mut t: Table<u64, u32> = Table {
            room: 2,
            ..Table::default()
        };
        t.insert(1, 1).unwrap();
        t.insert(2, 2).unwrap();
        t.insert(2, 3).unwrap();
        assert_eq!(t.insert(3, 3), Err(TableFull));
        assert_eq!((t.keys.len(), t.get(&2), t.get(&3)), (2, Some(&3), None));

        let csv = format!(
            "{H}Phú Đôi,Đại Thắng,Phú Xuyên,Màn tuyn Bà Hạnh,0912000101,,Màn 1,,Màn tuyn,180000,chiếc,25,\n\
             Phú Đôi,Đại Thắng,Phú Xuyên,Màn tuyn Bà Hạnh,0912000101,,Màn 2,,Màn tuyn,180000,chiếc,25,\n\
             Phú Đôi,Đại Thắng,Phú Xuyên,Màn tuyn Bà Hạnh,0912000101,,Màn 3,,Màn tuyn,180000,chiếc,25,\n"
        );
        let mut reader = reader(csv.as_bytes());
        let layout = Layout::header(&mut reader).unwrap();
        let rows: Vec<ImportRow> = reader
            .records()
            .map(|rec| layout.fields(rec).unwrap())
            .collect();
        let mut checker = Checker::default();
        checker.seen.room = 2;
        assert!(checker.consistent(&rows[0]).is_ok());
        assert!(checker.consistent(&rows[1]).is_ok());
        let Err(e) = checker.consistent(&rows[2]) else {
            panic!("a third key past a room of two was taken")
        };
        assert_eq!((e.line, e.message.as_str()), (4, TOO_BIG));

        let mut far = rows[2].clone();
        far.line = u64::from(u32::MAX) + 1;
        let Err(e) = Checker::default().consistent(&far) else {
            panic!("a line past 4 bytes was taken")
        };
        assert_eq!((e.line, e.message.as_str()), (far.line, TOO_BIG));
    }
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
