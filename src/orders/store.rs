//! SQL for checkouts, orders, lines and stock. Stock is reserved with conditional updates
//! (`stock >= qty`), in product-id order so concurrent checkouts never deadlock.

use serde::Serialize;
use sqlx::Row;

use super::checkout::{CheckoutRequest, ProductRef};
use super::state::{Actor, OrderStatus};
use crate::db::{Db, Tx};
use crate::domain::now_ms;
use crate::domain::payment_code::ALPHABET;
use crate::error::{AppError, Result};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LineView {
    pub product_id: i64,
    pub name: String,
    pub unit: String,
    pub quantity: i64,
    pub unit_price_vnd: i64,
    /// The production batch the goods came from (origin page `/truy-xuat/{code}`).
    pub batch_code: Option<String>,
}

impl LineView {
    /// "Màn tuyn 1m6 x 2m × 2 chiếc (150.000 ₫)", as seller and buyer pages list it.
    pub fn describe(&self) -> String {
        format!(
            "{} × {} {} ({})",
            self.name,
            self.quantity,
            self.unit,
            crate::domain::money::format_vnd(self.unit_price_vnd)
        )
    }
}

/// An order as stored, with its lines (the API shows `web::json::OrderJson`).
#[derive(Debug, Clone)]
pub struct OrderView {
    pub id: i64,
    pub code: String,
    pub shop_id: i64,
    pub shop_slug: String,
    pub shop_name: String,
    pub status: OrderStatus,
    /// Goods and shipping together (what the buyer paid for this order).
    pub total_vnd: i64,
    /// The shipping fee inside `total_vnd`, and the way to ship chosen (`self`, `ghn`,
    /// `ghtk`); `None` when the shop set no ways to ship.
    pub shipping_vnd: i64,
    pub shipping_method: Option<crate::shipping::Method>,
    pub lines: Vec<LineView>,
    pub created_at: i64,
    pub checkout_id: i64,
    pub carrier: Option<String>,
    pub tracking_code: Option<String>,
    /// When the order's money is released to its shop and why (buyer protection); in the
    /// seller's and the admin's order views.
    pub release: Option<super::release::Release>,
}

impl OrderView {
    /// The order's total as pages show it: with its parts when a shipping fee is in it.
    pub fn total_words(&self) -> String {
        use crate::domain::money::format_vnd;
        if self.shipping_vnd == 0 {
            return format_vnd(self.total_vnd);
        }
        format!(
            "{} (tiền hàng {} + phí giao hàng {})",
            format_vnd(self.total_vnd),
            format_vnd(self.total_vnd - self.shipping_vnd),
            format_vnd(self.shipping_vnd)
        )
    }

    /// The carrier's public tracking page for the parcel, for carriers whose page takes the
    /// code in its address (GHN, GHTK).
    pub fn tracking_url(&self) -> Option<String> {
        let carrier = crate::domain::text::fold(self.carrier.as_deref()?);
        let code: String =
            form_urlencoded::byte_serialize(self.tracking_code.as_deref()?.trim().as_bytes())
                .collect();
        if code.is_empty() {
            return None;
        }
        if carrier.contains("ghn") || carrier.contains("giao hang nhanh") {
            Some(format!("https://donhang.ghn.vn/?order_code={code}"))
        } else if carrier.contains("ghtk") || carrier.contains("giao hang tiet kiem") {
            Some(format!("https://i.ghtk.vn/{code}"))
        } else {
            None
        }
    }

    /// The way to ship the buyer chose, and "Gửi qua … · mã vận đơn …" once the seller said
    /// how the parcel left.
    pub fn shipping_line(&self) -> String {
        let chosen = self
            .shipping_method
            .map(|m| format!("Cách giao người mua chọn: {}", m.words()));
        let sent = match (&self.carrier, &self.tracking_code) {
            (None, None) => None,
            (c, t) => Some(format!(
                "Gửi qua {} · mã vận đơn {}",
                c.as_deref().unwrap_or("—"),
                t.as_deref().unwrap_or("—")
            )),
        };
        [chosen, sent]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

#[derive(Debug, Clone)]
pub struct CheckoutView {
    pub id: i64,
    pub code: String,
    pub buyer_name: String,
    pub buyer_phone: String,
    pub buyer_address: String,
    pub buyer_email: Option<String>,
    pub note: String,
    pub total_vnd: i64,
    pub created_at: i64,
    pub orders: Vec<OrderView>,
}

fn random_code(prefix: &str, len: usize) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let body: String = (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{body}")
}

/// Reserve stock: succeeds only if enough is left, whatever runs concurrently. Selling the
/// last unit queues the product for the search index ("in stock" changed).
pub async fn reserve(tx: &mut Tx, product_id: i64, qty: i64) -> Result<bool> {
    let left: Option<i64> = sqlx::query_scalar(
        "UPDATE products SET stock = stock - $1, updated_at = $2 WHERE id = $3 AND stock >= $1 AND active = 1
         RETURNING stock",
    )
    .bind(qty)
    .bind(now_ms())
    .bind(product_id)
    .fetch_optional(&mut **tx)
    .await?;
    if left == Some(0) {
        crate::index_queue::enqueue(tx, crate::index_queue::Scope::Product(product_id)).await?;
    }
    Ok(left.is_some())
}

/// Put stock back; a product back from zero is queued for the search index.
pub async fn release(tx: &mut Tx, product_id: i64, qty: i64) -> Result<()> {
    let now: Option<i64> = sqlx::query_scalar(
        "UPDATE products SET stock = stock + $1, updated_at = $2 WHERE id = $3 RETURNING stock",
    )
    .bind(qty)
    .bind(now_ms())
    .bind(product_id)
    .fetch_optional(&mut **tx)
    .await?;
    if now.is_some_and(|n| n == qty && qty > 0) {
        crate::index_queue::enqueue(tx, crate::index_queue::Scope::Product(product_id)).await?;
    }
    Ok(())
}

struct Snap {
    product_id: i64,
    shop_id: i64,
    shop_slug: String,
    name: String,
    unit: String,
    price: i64,
    qty: i64,
}

/// What `place_checkout` wrote: the checkout and what it comes to.
pub struct Placed {
    pub checkout_id: i64,
    pub total: i64,
}

/// How much stock anonymous buyers may hold unpaid: open checkouts and units, per phone
/// number; four times that per client address (many phones share a carrier's address).
#[derive(Debug, Clone)]
pub struct HoldLimits {
    pub client: String,
    pub max_open: i64,
    pub max_units: i64,
}

/// Refuse a checkout that would take the buyer's phone or address past its hold limits.
/// The two rows locked first (an upsert takes the row lock on PostgreSQL; SQLite holds its
/// write lock) make concurrent checkouts of one phone or address count one after another.
async fn check_holds(tx: &mut Tx, phone: &str, limits: &HoldLimits, units: i64) -> Result<()> {
    let scopes = [
        (
            "buyer_phone",
            format!("hold:phone:{phone}"),
            phone.to_string(),
            1,
        ),
        (
            "client_ip",
            format!("hold:ip:{}", limits.client),
            limits.client.clone(),
            4,
        ),
    ];
    for (_, key, _, _) in &scopes {
        sqlx::query(
            "INSERT INTO attempt_counters (key, window_start, n) VALUES ($1, 0, 0)
             ON CONFLICT (key) DO UPDATE SET n = attempt_counters.n",
        )
        .bind(key.clone())
        .execute(&mut **tx)
        .await?;
    }
    for (column, _, value, factor) in scopes {
        let open: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM checkouts c JOIN payments p ON p.checkout_id = c.id
             WHERE c.{column} = $1 AND p.status IN ('pending', 'underpaid')"
        )))
        .bind(value.clone())
        .fetch_one(&mut **tx)
        .await?;
        if open >= limits.max_open * factor {
            return Err(AppError::Conflict(format!(
                "Đang có {open} đơn chưa thanh toán với số điện thoại hoặc mạng này. \
                 Hãy thanh toán hoặc chờ đơn cũ hết hạn rồi đặt tiếp."
            )));
        }
        let held: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(COALESCE(SUM(l.quantity), 0) AS BIGINT) FROM checkouts c
             JOIN payments p ON p.checkout_id = c.id
             JOIN orders o ON o.checkout_id = c.id
             JOIN order_lines l ON l.order_id = o.id
             WHERE c.{column} = $1 AND p.status IN ('pending', 'underpaid') AND o.status = 'pending_payment'"
        )))
        .bind(value)
        .fetch_one(&mut **tx)
        .await?;
        if held + units > limits.max_units * factor {
            return Err(AppError::Conflict(format!(
                "Mỗi người mua chỉ được giữ tối đa {} sản phẩm chưa thanh toán; hãy thanh toán các đơn đang chờ trước.",
                limits.max_units * factor
            )));
        }
    }
    Ok(())
}

/// The products of a cart as sold now (agreed price, shop), merged by product; a product no
/// longer sold is a field error naming it.
async fn snapshot(tx: &mut Tx, items: &[(ProductRef, i64)]) -> Result<Vec<Snap>> {
    let mut snaps: Vec<Snap> = Vec::new();
    for (r, qty) in items {
        const SELECT: &str = "SELECT p.id, p.shop_id, s.slug AS shop_slug, p.name, pi.unit, pi.price_vnd, p.active,
                   CASE WHEN s.active = 1 AND s.membership = 'accepted' THEN 1 ELSE 0 END AS shop_active
                 FROM products p JOIN price_items pi ON pi.id = p.price_item_id JOIN shops s ON s.id = p.shop_id";
        let row = match r {
            ProductRef::Id(id) => {
                sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} WHERE p.id = $1")))
                    .bind(*id)
                    .fetch_optional(&mut **tx)
                    .await?
            }
            ProductRef::Slug(slug) => {
                sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} WHERE p.slug = $1")))
                    .bind(slug.clone())
                    .fetch_optional(&mut **tx)
                    .await?
            }
        };
        let Some(row) = row.filter(|r| {
            r.try_get::<i64, _>("active").unwrap_or(0) == 1
                && r.try_get::<i64, _>("shop_active").unwrap_or(0) == 1
        }) else {
            let what = match r {
                ProductRef::Id(id) => id.to_string(),
                ProductRef::Slug(s) => s.clone(),
            };
            return Err(AppError::field(
                "items",
                format!("không có sản phẩm {what}"),
            ));
        };
        let product_id: i64 = row.try_get("id")?;
        if let Some(existing) = snaps.iter_mut().find(|s| s.product_id == product_id) {
            existing.qty += qty; // the same product named by id and by slug
            continue;
        }
        snaps.push(Snap {
            product_id,
            shop_id: row.try_get("shop_id")?,
            shop_slug: row.try_get("shop_slug")?,
            name: row.try_get("name")?,
            unit: row.try_get("unit")?,
            price: row.try_get("price_vnd")?,
            qty: *qty,
        });
    }
    Ok(snaps)
}

/// One shop's part of a cart and its ways to ship to the buyer's address.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ShopQuote {
    pub shop_slug: String,
    pub shop_name: String,
    /// The goods of this shop's order at today's agreed prices.
    pub goods_vnd: i64,
    /// Empty when the shop has not set its ways to ship: the seller agrees delivery with
    /// the buyer, and no fee is added.
    pub options: Vec<crate::shipping::Quote>,
    /// Why a way the shop offers is missing (a carrier that did not answer in time…).
    pub notes: Vec<String>,
}

/// The ways each shop of a cart can ship to `to`, with fees (`POST /checkout/quote` and the
/// checkout page), the same the checkout charges. Writes nothing.
pub async fn quote(
    db: &Db,
    cfg: &crate::config::CarriersConfig,
    items: &[(ProductRef, i64)],
    to: &crate::shipping::addresses::Address,
) -> Result<Vec<ShopQuote>> {
    let mut tx = db.pool.begin().await?;
    let mut snaps = snapshot(&mut tx, items).await?;
    // Shops in the order checkout numbers them (by their first product id).
    snaps.sort_by_key(|s| s.product_id);
    let mut shops = Vec::new();
    for shop in shop_ids(&snaps) {
        let lines: Vec<&Snap> = snaps.iter().filter(|s| s.shop_id == shop).collect();
        let name: String = sqlx::query_scalar("SELECT name FROM shops WHERE id = $1")
            .bind(shop)
            .fetch_one(&mut *tx)
            .await?;
        let packed = crate::shipping::store::packed(&mut tx, &parcel_lines(&lines)).await?;
        let settings = crate::shipping::store::load(&mut *tx, shop).await?;
        shops.push((lines[0].shop_slug.clone(), name, packed, settings));
    }
    tx.rollback().await?;
    // Every shop's carriers asked at once: a slow carrier costs one timeout, not one per shop.
    let mut asked = tokio::task::JoinSet::new();
    for (i, (_, _, packed, settings)) in shops.iter().enumerate() {
        let (cfg, to, packed, settings) = (cfg.clone(), to.clone(), *packed, settings.clone());
        asked.spawn(async move {
            let got = crate::shipping::store::options(&cfg, settings.as_ref(), &to, &packed).await;
            (i, got)
        });
    }
    let mut answers: Vec<(Vec<crate::shipping::Quote>, Vec<String>)> =
        vec![(Vec::new(), Vec::new()); shops.len()];
    while let Some(done) = asked.join_next().await {
        let (i, got) = done.map_err(|e| AppError::Internal(anyhow::anyhow!("quote task: {e}")))?;
        answers[i] = got;
    }
    Ok(shops
        .into_iter()
        .zip(answers)
        .map(|((slug, name, packed, _), (options, notes))| ShopQuote {
            shop_slug: slug,
            shop_name: name,
            goods_vnd: packed.value_vnd,
            options,
            notes,
        })
        .collect())
}

/// An order's lines as the parcel is reckoned from them: (product, quantity, unit price).
fn parcel_lines(lines: &[&Snap]) -> Vec<(i64, i64, i64)> {
    lines
        .iter()
        .map(|s| (s.product_id, s.qty, s.price))
        .collect()
}

/// The shops of a cart, in the order their first product came.
fn shop_ids(snaps: &[Snap]) -> Vec<i64> {
    let mut shops: Vec<i64> = Vec::new();
    for s in snaps {
        if !shops.contains(&s.shop_id) {
            shops.push(s.shop_id);
        }
    }
    shops
}

/// Place a checkout and one order per shop (coded `{payment_code}-N`) in the caller's
/// transaction, reserving stock; the payment is written beside it by
/// `payments::service::start`. The total is computed here from the agreed prices in force
/// now.
pub async fn place_checkout(
    tx: &mut Tx,
    req: &CheckoutRequest,
    holds: &HoldLimits,
    fee_bps: i64,
    code: &str,
    carriers: &crate::config::CarriersConfig,
) -> Result<Placed> {
    let units: i64 = req.items.iter().map(|(_, q)| *q).sum();
    check_holds(tx, req.buyer.phone.as_str(), holds, units).await?;
    let mut snaps = snapshot(tx, &req.items).await?;
    // Lock rows in one global order (product id) so concurrent checkouts cannot deadlock.
    snaps.sort_by_key(|s| s.product_id);
    for s in &snaps {
        if !reserve(tx, s.product_id, s.qty).await? {
            let left: i64 = sqlx::query_scalar("SELECT stock FROM products WHERE id = $1")
                .bind(s.product_id)
                .fetch_one(&mut **tx)
                .await?;
            return Err(AppError::Conflict(format!(
                "“{}” chỉ còn {} {}, không đủ {} {}",
                s.name, left, s.unit, s.qty, s.unit
            )));
        }
    }
    let goods: i64 = snaps
        .iter()
        .try_fold(0i64, |acc, s| {
            s.price.checked_mul(s.qty).and_then(|v| acc.checked_add(v))
        })
        .ok_or_else(|| AppError::field("items", "tổng tiền quá lớn"))?;
    // One order per shop, numbered by first product id of each shop, each with the way to
    // ship its buyer chose and that way's fee, computed again here.
    let shops = shop_ids(&snaps);
    let mut shipping: Vec<Option<crate::shipping::Quote>> = Vec::with_capacity(shops.len());
    for shop_id in &shops {
        let lines: Vec<&Snap> = snaps.iter().filter(|s| s.shop_id == *shop_id).collect();
        let packed = crate::shipping::store::packed(tx, &parcel_lines(&lines)).await?;
        let slug = &lines[0].shop_slug;
        shipping.push(
            crate::shipping::store::fee_at_checkout(
                tx,
                carriers,
                *shop_id,
                slug,
                req.buyer.place.as_ref(),
                &packed,
                req.shipping.get(slug).map(String::as_str),
            )
            .await?,
        );
    }
    let fees: i64 = shipping.iter().flatten().map(|q| q.fee_vnd).sum();
    let total = goods
        .checked_add(fees)
        .ok_or_else(|| AppError::field("items", "tổng tiền quá lớn"))?;
    crate::domain::Vnd::new(total).map_err(|m| AppError::field("items", m))?;

    let now = now_ms();
    let checkout_code = unused_code(tx, "SELECT COUNT(*) FROM checkouts WHERE code = $1", || {
        random_code("DH", 8)
    })
    .await?;
    let b = &req.buyer;
    let checkout_id: i64 = sqlx::query_scalar(
        "INSERT INTO checkouts (code, buyer_name, buyer_phone, buyer_address, buyer_email, note, total_vnd, created_at, client_ip,
            buyer_province, buyer_ward, buyer_street, address_dataset)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
    )
    .bind(checkout_code)
    .bind(b.name.clone())
    .bind(b.phone.as_str().to_string())
    .bind(b.address.clone())
    .bind(b.email.as_ref().map(|e| e.as_str().to_string()))
    .bind(b.note.clone())
    .bind(total)
    .bind(now)
    .bind(holds.client.clone())
    .bind(b.place.as_ref().map(|p| p.province_code))
    .bind(b.place.as_ref().map(|p| p.ward_code))
    .bind(b.place.as_ref().map(|p| p.street.clone()))
    .bind(
        b.place
            .as_ref()
            .map(|_| crate::shipping::addresses::DATASET),
    )
    .fetch_one(&mut **tx)
    .await?;
    for (n, (shop_id, ship)) in shops.iter().zip(&shipping).enumerate() {
        let lines: Vec<&Snap> = snaps.iter().filter(|s| s.shop_id == *shop_id).collect();
        let fee = ship.as_ref().map_or(0, |q| q.fee_vnd);
        let order_total: i64 = lines.iter().map(|s| s.price * s.qty).sum::<i64>() + fee;
        let order_id: i64 = sqlx::query_scalar(
            "INSERT INTO orders (code, checkout_id, shop_id, status, total_vnd, created_at, updated_at, fee_bps,
                shipping_method, shipping_vnd, shipping_payee)
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(format!("{code}-{}", n + 1))
        .bind(checkout_id)
        .bind(*shop_id)
        .bind(OrderStatus::PendingPayment.as_str())
        .bind(order_total)
        .bind(now)
        .bind(fee_bps)
        .bind(ship.as_ref().map(|q| q.carrier.as_str()))
        .bind(fee)
        // A carrier booked with the platform's account is owed its fee; the shop's own
        // delivery or carrier account: the fee is the shop's.
        .bind(ship.as_ref().map(|q| {
            if q.shop_account {
                "shop"
            } else {
                "platform"
            }
        }))
        .fetch_one(&mut **tx)
        .await?;
        for s in lines {
            // The batch the goods come from: the receipt and the order page link its origin.
            let batch = crate::origin::store::current_code(tx, s.product_id).await?;
            sqlx::query(
                "INSERT INTO order_lines (order_id, product_id, name, unit, quantity, unit_price_vnd, batch_code)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(order_id)
            .bind(s.product_id)
            .bind(s.name.clone())
            .bind(s.unit.clone())
            .bind(s.qty)
            .bind(s.price)
            .bind(batch)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(Placed { checkout_id, total })
}

pub async fn unused_code(
    tx: &mut Tx,
    check: &'static str,
    make: impl Fn() -> String,
) -> Result<String> {
    for _ in 0..10 {
        let c = make();
        let n: i64 = sqlx::query_scalar(check)
            .bind(c.clone())
            .fetch_one(&mut **tx)
            .await?;
        if n == 0 {
            return Ok(c);
        }
    }
    Err(AppError::Internal(anyhow::anyhow!(
        "could not find a free code"
    )))
}

/// Move an order along, checked by the state machine and recorded in `order_events`.
/// The `WHERE status = from` guard makes a concurrent second move fail instead of repeat.
pub async fn set_status(
    tx: &mut Tx,
    order_id: i64,
    from: OrderStatus,
    to: OrderStatus,
    actor: Actor,
    user: Option<i64>,
) -> Result<()> {
    from.transition(to, actor)
        .map_err(|e| AppError::Conflict(e.to_string()))?;
    let now = now_ms();
    let n =
        sqlx::query("UPDATE orders SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4")
            .bind(to.as_str())
            .bind(now)
            .bind(order_id)
            .bind(from.as_str())
            .execute(&mut **tx)
            .await?
            .rows_affected();
    if n != 1 {
        return Err(AppError::Conflict(
            "đơn hàng vừa được cập nhật, vui lòng tải lại".into(),
        ));
    }
    let actor_s = match actor {
        Actor::System => "system",
        Actor::Seller => "seller",
        Actor::Admin => "admin",
        Actor::Buyer => "buyer",
        Actor::Carrier => "carrier",
    };
    sqlx::query(
        "INSERT INTO order_events (order_id, from_status, to_status, actor, actor_user_id, at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(order_id)
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(actor_s)
    .bind(user)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Move every order of a checkout that is in `from` to `to` (payment events, admin refunds).
pub async fn set_checkout_orders(
    tx: &mut Tx,
    checkout_id: i64,
    from: OrderStatus,
    to: OrderStatus,
    actor: Actor,
    user: Option<i64>,
) -> Result<Vec<i64>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM orders WHERE checkout_id = $1 AND status = $2 ORDER BY id",
    )
    .bind(checkout_id)
    .bind(from.as_str())
    .fetch_all(&mut **tx)
    .await?;
    for id in &ids {
        set_status(tx, *id, from, to, actor, user).await?;
    }
    Ok(ids)
}

/// (product id, quantity) of the orders of a checkout in a given status, product-id order.
pub async fn lines_in_status(
    tx: &mut Tx,
    checkout_id: i64,
    status: OrderStatus,
) -> Result<Vec<(i64, i64)>> {
    let rows = sqlx::query(
        "SELECT l.product_id, CAST(SUM(l.quantity) AS BIGINT) AS qty FROM order_lines l JOIN orders o ON o.id = l.order_id
         WHERE o.checkout_id = $1 AND o.status = $2 GROUP BY l.product_id ORDER BY l.product_id",
    )
    .bind(checkout_id)
    .bind(status.as_str())
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        // SUM of BIGINT is NUMERIC on PostgreSQL, hence the CAST in the query.
        .map(|r| {
            Ok((
                r.try_get::<i64, _>("product_id")?,
                r.try_get::<i64, _>("qty")?,
            ))
        })
        .collect()
}

async fn lines_of(db: &Db, order_id: i64) -> Result<Vec<LineView>> {
    let rows = sqlx::query(
        "SELECT product_id, name, unit, quantity, unit_price_vnd, batch_code FROM order_lines WHERE order_id = $1 ORDER BY id",
    )
    .bind(order_id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(LineView {
                product_id: r.try_get("product_id")?,
                name: r.try_get("name")?,
                unit: r.try_get("unit")?,
                quantity: r.try_get("quantity")?,
                unit_price_vnd: r.try_get("unit_price_vnd")?,
                batch_code: r.try_get("batch_code")?,
            })
        })
        .collect()
}

const ORDER_SELECT: &str =
    "SELECT o.id, o.code, o.shop_id, s.slug AS shop_slug, s.name AS shop_name, o.status,
        o.total_vnd, o.shipping_vnd, o.shipping_method, o.created_at, o.checkout_id, o.carrier,
        o.tracking_code
     FROM orders o JOIN shops s ON s.id = o.shop_id";

async fn orders_from(db: &Db, rows: Vec<sqlx::any::AnyRow>) -> Result<Vec<OrderView>> {
    let mut out = Vec::new();
    for r in rows {
        let id: i64 = r.try_get("id")?;
        let status: String = r.try_get("status")?;
        out.push(OrderView {
            id,
            code: r.try_get("code")?,
            shop_id: r.try_get("shop_id")?,
            shop_slug: r.try_get("shop_slug")?,
            shop_name: r.try_get("shop_name")?,
            status: OrderStatus::parse(&status)
                .ok_or_else(|| anyhow::anyhow!("bad status {status}"))?,
            total_vnd: r.try_get("total_vnd")?,
            shipping_vnd: r.try_get("shipping_vnd")?,
            shipping_method: r
                .try_get::<Option<String>, _>("shipping_method")?
                .as_deref()
                .and_then(crate::shipping::Method::parse),
            created_at: r.try_get("created_at")?,
            checkout_id: r.try_get("checkout_id")?,
            carrier: r.try_get("carrier")?,
            tracking_code: r.try_get("tracking_code")?,
            release: None,
            lines: lines_of(db, id).await?,
        });
    }
    Ok(out)
}

pub async fn checkout_by_id(db: &Db, id: i64) -> Result<CheckoutView> {
    let r = sqlx::query(
        "SELECT id, code, buyer_name, buyer_phone, buyer_address, buyer_email, note, total_vnd, created_at
         FROM checkouts WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{ORDER_SELECT} WHERE o.checkout_id = $1 ORDER BY o.id"
    )))
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    Ok(CheckoutView {
        id,
        code: r.try_get("code")?,
        buyer_name: r.try_get("buyer_name")?,
        buyer_phone: r.try_get("buyer_phone")?,
        buyer_address: r.try_get("buyer_address")?,
        buyer_email: r.try_get("buyer_email")?,
        note: r.try_get("note")?,
        total_vnd: r.try_get("total_vnd")?,
        created_at: r.try_get("created_at")?,
        orders: orders_from(db, rows).await?,
    })
}

/// The checkout behind any code a buyer was shown: the payment code (`CL…`), an order code
/// (`CL…-1`) or the checkout code (`DH…`), in any case, with the spaces and dots people type.
pub async fn checkout_id_by_any_code(db: &Db, code: &str) -> Result<Option<i64>> {
    let code: String = code
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect::<String>()
        .to_uppercase();
    if code.is_empty() {
        return Ok(None);
    }
    Ok(sqlx::query_scalar(
        "SELECT checkout_id FROM payments WHERE code = $1
         UNION SELECT checkout_id FROM orders WHERE code = $1
         UNION SELECT id FROM checkouts WHERE code = $1",
    )
    .bind(code)
    .fetch_optional(&db.pool)
    .await?)
}

pub async fn order_by_code(db: &Db, code: &str) -> Result<OrderView> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{ORDER_SELECT} WHERE o.code = $1"
    )))
    .bind(code.trim().to_uppercase())
    .fetch_all(&db.pool)
    .await?;
    orders_from(db, rows).await?.pop().ok_or(AppError::NotFound)
}

/// Orders of the given shops, newest first (the seller's order list).
pub async fn orders_of_shops(db: &Db, shop_ids: &[i64], limit: i64) -> Result<Vec<OrderView>> {
    let mut all = Vec::new();
    for shop in shop_ids {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{ORDER_SELECT} WHERE o.shop_id = $1 ORDER BY o.created_at DESC, o.id DESC LIMIT $2"
        )))
        .bind(*shop)
        .bind(limit)
        .fetch_all(&db.pool)
        .await?;
        all.extend(orders_from(db, rows).await?);
    }
    all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    all.truncate(limit as usize);
    Ok(all)
}

pub use crate::domain::{buyer_token, buyer_token_ok};

/// Who bought an order and where it goes, as its shop sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuyerDetails {
    pub name: String,
    pub phone: String,
    pub address: String,
    pub note: String,
}

/// The buyer of an order as its shop may see them: `None` until the order is paid
/// (`OrderStatus::shows_buyer`), for the orders page and the API alike.
pub async fn buyer_of(db: &Db, order: &OrderView) -> Result<Option<BuyerDetails>> {
    if !order.status.shows_buyer() {
        return Ok(None);
    }
    let c = checkout_by_id(db, order.checkout_id).await?;
    Ok(Some(BuyerDetails {
        name: c.buyer_name,
        phone: c.buyer_phone,
        address: c.buyer_address,
        note: c.note,
    }))
}

/// How a parcel left: optional carrier and tracking code, given with "shipped".
#[derive(Debug, Clone, Default)]
pub struct Shipping {
    pub carrier: Option<String>,
    pub tracking_code: Option<String>,
}

impl Shipping {
    pub fn parse(carrier: &str, tracking: &str) -> Result<Shipping> {
        let opt = |s: &str, what: &str, max: usize| -> Result<Option<String>> {
            if s.trim().is_empty() {
                Ok(None)
            } else {
                crate::domain::text::clean_line(s, what, max)
                    .map(Some)
                    .map_err(|m| AppError::field(what, m))
            }
        };
        Ok(Shipping {
            carrier: opt(carrier, "đơn vị vận chuyển", 60)?,
            tracking_code: opt(tracking, "mã vận đơn", 60)?,
        })
    }
}
