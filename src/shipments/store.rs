//! Shipments in the database: booking (claimed with a lease, never twice), the seller's
//! moves with their carrier side (cancel at the carrier before the order), carrier reports
//! (stored once, confirmed by the carrier's API, then applied), the poller, labels.

use serde::Serialize;
use sqlx::Row;

use super::{Effect, effect};
use crate::accounts::User;
use crate::config::{CarriersConfig, Config};
use crate::db::{Db, Tx};
use crate::domain::now_ms;
use crate::error::{AppError, Result};
use crate::orders::store::{OrderView, Shipping, order_by_code, set_status};
use crate::orders::{Actor, OrderStatus};
use crate::shipping::Method;
use crate::shipping::addresses::Address;
use crate::shipping::carriers::{self, BookError, Booked, Booking, Progress};

/// How long one booking attempt holds its shipment (a second click waits for it).
const LEASE_MS: i64 = 60_000;
/// A booked parcel not heard of for this long is asked about (a webhook can be lost).
pub const POLL_AFTER_MS: i64 = 12 * 3_600_000;

/// A shipment as the seller, the buyer and the API see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ShipmentView {
    pub carrier: Method,
    /// The carrier's code for the parcel, once booked.
    pub carrier_code: Option<String>,
    /// `booking`, `booked`, `failed` or `cancelled`.
    pub state: String,
    pub progress: Progress,
    /// What the progress means, in words.
    pub progress_words: String,
    /// The carrier's own last status.
    pub carrier_status: Option<String>,
    pub fee_vnd: Option<i64>,
    /// When the carrier expects to deliver (UTC ms).
    pub expected_at: Option<i64>,
    /// The carrier's message when booking failed.
    pub last_error: Option<String>,
    /// The carrier's public tracking page.
    pub tracking_url: Option<String>,
    /// The statuses read from the carrier, oldest first: (UTC ms, words).
    pub timeline: Vec<(i64, String)>,
    #[serde(skip)]
    pub id: i64,
}

impl ShipmentView {
    /// Whether the seller may ask to book again.
    pub fn may_retry(&self) -> bool {
        matches!(self.state.as_str(), "failed" | "booking")
    }
}

fn progress_of(s: &str) -> Progress {
    match s {
        "booked" => Progress::Booked,
        "in_transit" => Progress::InTransit,
        "delivered" => Progress::Delivered,
        "returning" => Progress::Returning,
        "returned" => Progress::Returned,
        "cancelled" => Progress::Cancelled,
        "problem" => Progress::Problem,
        _ => Progress::Unknown,
    }
}

fn progress_str(p: Progress) -> &'static str {
    match p {
        Progress::Booked => "booked",
        Progress::InTransit => "in_transit",
        Progress::Delivered => "delivered",
        Progress::Returning => "returning",
        Progress::Returned => "returned",
        Progress::Cancelled => "cancelled",
        Progress::Problem => "problem",
        Progress::Unknown => "unknown",
    }
}

fn tracking_url(carrier: Method, code: &str) -> String {
    let code: String = form_urlencoded::byte_serialize(code.as_bytes()).collect();
    match carrier {
        Method::Ghtk => format!("https://i.ghtk.vn/{code}"),
        _ => format!("https://donhang.ghn.vn/?order_code={code}"),
    }
}

/// An order's shipment, if one was asked for.
pub async fn of_order(db: &Db, order: i64) -> Result<Option<ShipmentView>> {
    let Some(r) = sqlx::query(
        "SELECT id, carrier, carrier_code, state, progress, carrier_status, fee_vnd, expected_at,
                last_error FROM shipments WHERE order_id = $1",
    )
    .bind(order)
    .fetch_optional(&db.pool)
    .await?
    else {
        return Ok(None);
    };
    let id: i64 = r.try_get("id")?;
    let carrier = Method::parse(&r.try_get::<String, _>("carrier")?).unwrap_or(Method::Ghn);
    let code: Option<String> = r.try_get("carrier_code")?;
    let progress = progress_of(&r.try_get::<String, _>("progress")?);
    let events = sqlx::query(
        "SELECT at, confirmed FROM shipment_events
         WHERE shipment_id = $1 AND confirmed IS NOT NULL ORDER BY id",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    let mut timeline: Vec<(i64, String)> = Vec::new();
    for e in events {
        let words = progress_of(&e.try_get::<String, _>("confirmed")?)
            .words()
            .to_string();
        if timeline.last().is_none_or(|(_, w)| *w != words) {
            timeline.push((e.try_get("at")?, words));
        }
    }
    Ok(Some(ShipmentView {
        id,
        carrier,
        tracking_url: code.as_deref().map(|c| tracking_url(carrier, c)),
        carrier_code: code,
        state: r.try_get("state")?,
        progress,
        progress_words: progress.words().to_string(),
        carrier_status: r.try_get("carrier_status")?,
        fee_vnd: r.try_get("fee_vnd")?,
        expected_at: r.try_get("expected_at")?,
        last_error: r.try_get("last_error")?,
        timeline,
    }))
}

/// The carriers of a shop: its own accounts, else the platform's.
async fn carriers_of(db: &Db, platform: &CarriersConfig, shop: i64) -> Result<CarriersConfig> {
    Ok(match crate::shipping::store::load(&db.pool, shop).await? {
        Some(s) => s.carriers(platform),
        None => platform.clone(),
    })
}

fn carrier_of(order: &OrderView) -> Option<Method> {
    order
        .shipping_method
        .filter(|m| matches!(m, Method::Ghn | Method::Ghtk))
}

/// A seller's move of an order with its carrier side, for the page and the API alike:
/// cancelling a booked parcel asks the carrier first (a parcel already picked up cannot be
/// cancelled, and nothing changes); taking an order whose buyer chose a carrier books it.
pub async fn seller_move(
    db: &Db,
    cfg: &Config,
    user: &User,
    code: &str,
    to: OrderStatus,
    shipping: &Shipping,
) -> Result<OrderView> {
    let order = order_by_code(db, code).await?;
    let meant = order.status.seller_meant(to);
    if meant == OrderStatus::RefundDue && carrier_of(&order).is_some() {
        // Only who may cancel the order cancels its parcel.
        let shop =
            crate::catalog::store::shop_by_id(db, crate::catalog::ShopId(order.shop_id)).await?;
        crate::catalog::store::authorize_shop(user, &shop)?;
        cancel_at_carrier(db, &cfg.carriers, &order).await?;
    }
    let moved = crate::payments::moves::seller_move_with(db, user, code, to, shipping).await?;
    if moved.status == OrderStatus::Accepted
        && order.status != OrderStatus::Accepted
        && carrier_of(&moved).is_some()
    {
        // A booking that fails is kept on the shipment, with the carrier's message, for the
        // seller to try again; the order stays taken.
        if let Err(e) = book(db, &cfg.carriers, &moved).await {
            tracing::warn!(order = %moved.code, error = %e, "shipment not booked");
        }
    }
    order_by_code(db, code).await
}

struct Claim {
    id: i64,
    carrier: Method,
    /// A previous attempt may have reached the carrier: look it up first.
    look_first: bool,
}

/// Claim the order's shipment for one booking attempt.
async fn claim(db: &Db, order: &OrderView, carrier: Method) -> Result<Option<Claim>> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    let existing =
        sqlx::query("SELECT id, state, carrier, lease_until FROM shipments WHERE order_id = $1")
            .bind(order.id)
            .fetch_optional(&mut *tx)
            .await?;
    let claim = match existing {
        None => {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO shipments (order_id, carrier, client_code, state, attempts, lease_until,
                    created_at, updated_at, checked_at)
                 VALUES ($1, $2, $3, 'booking', 1, $4, $5, $5, $5) RETURNING id",
            )
            .bind(order.id)
            .bind(carrier.as_str())
            .bind(order.code.clone())
            .bind(now + LEASE_MS)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            Some(Claim {
                id,
                carrier,
                look_first: false,
            })
        }
        Some(r) => {
            let state: String = r.try_get("state")?;
            if state == "booked" {
                None
            } else {
                let id: i64 = r.try_get("id")?;
                let n = sqlx::query(
                    "UPDATE shipments SET state = 'booking', attempts = attempts + 1,
                        lease_until = $1, updated_at = $2
                     WHERE id = $3 AND state <> 'booked' AND (lease_until IS NULL OR lease_until < $2)",
                )
                .bind(now + LEASE_MS)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n != 1 {
                    return Err(AppError::Conflict(
                        "Đang đặt giao với hãng, vui lòng chờ một chút rồi tải lại trang".into(),
                    ));
                }
                let carrier = Method::parse(&r.try_get::<String, _>("carrier")?).unwrap_or(carrier);
                Some(Claim {
                    id,
                    carrier,
                    look_first: state == "booking",
                })
            }
        }
    };
    tx.commit().await?;
    Ok(claim)
}

/// What the carrier needs to carry the order: both ends, the goods, the parcel.
async fn booking_of(db: &Db, order: &OrderView) -> Result<Booking> {
    let r = sqlx::query(
        "SELECT c.buyer_name, c.buyer_phone, c.buyer_province, c.buyer_ward, c.buyer_street, c.note,
                s.name AS shop_name, s.phone AS shop_phone
         FROM orders o JOIN checkouts c ON c.id = o.checkout_id JOIN shops s ON s.id = o.shop_id
         WHERE o.id = $1",
    )
    .bind(order.id)
    .fetch_one(&db.pool)
    .await?;
    let to = Address::from_codes(
        &r.try_get::<Option<String>, _>("buyer_province")?.unwrap_or_default(),
        &r.try_get::<Option<String>, _>("buyer_ward")?.unwrap_or_default(),
        &r.try_get::<Option<String>, _>("buyer_street")?.unwrap_or_default(),
    )
    .ok_or_else(|| {
        AppError::Conflict(
            "Địa chỉ người mua không theo danh sách tỉnh, xã mới nên hãng không nhận; hãy tự gửi hàng".into(),
        )
    })?;
    let pickup = crate::shipping::store::load(&db.pool, order.shop_id)
        .await?
        .ok_or_else(|| {
            AppError::Conflict(
                "Cửa hàng chưa có địa chỉ lấy hàng: hãy đặt ở trang Cách giao hàng".into(),
            )
        })?
        .pickup;
    let mut tx = db.pool.begin().await?;
    let lines: Vec<(i64, i64, i64)> = order
        .lines
        .iter()
        .map(|l| (l.product_id, l.quantity, l.unit_price_vnd))
        .collect();
    let parcel = crate::shipping::store::packed(&mut tx, &lines).await?;
    let mut items = Vec::new();
    for l in &order.lines {
        let one =
            crate::shipping::store::packed(&mut tx, &[(l.product_id, 1, l.unit_price_vnd)]).await?;
        items.push((l.name.clone(), l.quantity, l.unit_price_vnd, one.weight_g));
    }
    tx.rollback().await?;
    Ok(Booking {
        client_code: order.code.clone(),
        from: pickup,
        from_name: r.try_get("shop_name")?,
        from_phone: r.try_get("shop_phone")?,
        to,
        to_name: r.try_get("buyer_name")?,
        to_phone: r.try_get("buyer_phone")?,
        items,
        parcel,
        note: r.try_get("note")?,
    })
}

async fn find(
    cfg: &CarriersConfig,
    carrier: Method,
    code: &str,
) -> std::result::Result<Option<Booked>, BookError> {
    match (carrier, &cfg.ghn, &cfg.ghtk) {
        (Method::Ghn, Some(c), _) => carriers::ghn_find(c, code).await,
        (Method::Ghtk, _, Some(c)) => carriers::ghtk_find(c, code).await,
        _ => Err(no_account(carrier)),
    }
}

async fn create(
    cfg: &CarriersConfig,
    carrier: Method,
    b: &Booking,
) -> std::result::Result<Booked, BookError> {
    match (carrier, &cfg.ghn, &cfg.ghtk) {
        (Method::Ghn, Some(c), _) => carriers::ghn_create(c, b).await,
        (Method::Ghtk, _, Some(c)) => carriers::ghtk_create(c, b).await,
        _ => Err(no_account(carrier)),
    }
}

/// The carrier's status of a booked parcel, from its API.
async fn status(
    cfg: &CarriersConfig,
    carrier: Method,
    code: &str,
) -> std::result::Result<Booked, BookError> {
    match (carrier, &cfg.ghn, &cfg.ghtk) {
        (Method::Ghn, Some(c), _) => carriers::ghn_detail(c, code).await,
        (Method::Ghtk, _, Some(c)) => carriers::ghtk_status(c, code).await,
        _ => Err(no_account(carrier)),
    }
}

fn no_account(m: Method) -> BookError {
    BookError::Refused(carriers::CarrierError(format!(
        "{}: Chợ Làng chưa có tài khoản",
        m.words()
    )))
}

/// Book the order's parcel with the carrier its buyer chose (at most once: an attempt
/// whose answer was lost is looked up by our order code first). A refusal is kept with the
/// carrier's message; the order is not touched either way.
pub async fn book(db: &Db, platform: &CarriersConfig, order: &OrderView) -> Result<ShipmentView> {
    let cfg = &carriers_of(db, platform, order.shop_id).await?;
    let Some(carrier) = carrier_of(order) else {
        return Err(AppError::Conflict(
            "Người mua không chọn hãng vận chuyển cho đơn này".into(),
        ));
    };
    if order.status != OrderStatus::Accepted {
        return Err(AppError::Conflict(
            "Chỉ đặt giao với hãng khi đơn đã nhận và chưa gửi".into(),
        ));
    }
    if let Some(claim) = claim(db, order, carrier).await? {
        let result = match booking_of(db, order).await {
            Ok(b) => {
                let found = if claim.look_first {
                    find(cfg, claim.carrier, &order.code).await
                } else {
                    Ok(None)
                };
                match found {
                    Ok(Some(b)) => Ok(b),
                    Ok(None) => create(cfg, claim.carrier, &b).await,
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(BookError::Refused(carriers::CarrierError(e.to_string()))),
        };
        record_booking(db, &claim, order, result).await?;
    }
    of_order(db, order.id)
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("shipment vanished")))
}

async fn record_booking(
    db: &Db,
    claim: &Claim,
    order: &OrderView,
    result: std::result::Result<Booked, BookError>,
) -> Result<()> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    match result {
        Ok(b) => {
            sqlx::query(
                "UPDATE shipments SET state = 'booked', carrier_code = $1, fee_vnd = $2, expected_at = $3,
                    carrier_status = $4, progress = $5, last_error = NULL, lease_until = NULL,
                    updated_at = $6, checked_at = $6
                 WHERE id = $7",
            )
            .bind(b.carrier_code.clone())
            .bind(b.fee_vnd)
            .bind(b.expected_at)
            .bind(b.status.clone())
            .bind(progress_str(b.progress))
            .bind(now)
            .bind(claim.id)
            .execute(&mut *tx)
            .await?;
            // The order names its carrier and code as a seller's "gửi qua" does.
            sqlx::query("UPDATE orders SET carrier = $1, tracking_code = $2 WHERE id = $3")
                .bind(claim.carrier.as_str().to_uppercase())
                .bind(b.carrier_code.clone())
                .bind(order.id)
                .execute(&mut *tx)
                .await?;
            event(
                &mut tx,
                Some(claim.id),
                claim.carrier,
                Some(&b.carrier_code),
                &format!("booking:{}:{}", claim.id, b.carrier_code),
                "booking",
                None,
                Some(b.progress),
                "applied",
                None,
            )
            .await?;
        }
        Err(e) => {
            // Refused: nothing was booked. Unknown: it may have been; the next attempt
            // looks it up first (state stays `booking`).
            let (state, msg) = match &e {
                BookError::Refused(m) => ("failed", m.0.clone()),
                BookError::Unknown(m) => (
                    "booking",
                    format!(
                        "{} — chưa rõ hãng đã nhận đơn chưa; bấm “Đặt giao lại” để kiểm tra",
                        m.0
                    ),
                ),
            };
            sqlx::query(
                "UPDATE shipments SET state = $1, last_error = $2, lease_until = NULL, updated_at = $3
                 WHERE id = $4",
            )
            .bind(state)
            .bind(msg)
            .bind(now)
            .bind(claim.id)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn event(
    tx: &mut Tx,
    shipment: Option<i64>,
    carrier: Method,
    code: Option<&str>,
    key: &str,
    source: &str,
    claimed: Option<&str>,
    confirmed: Option<Progress>,
    outcome: &str,
    body: Option<&str>,
) -> Result<bool> {
    let n = sqlx::query(
        "INSERT INTO shipment_events (shipment_id, carrier, carrier_code, dedup_key, source, claimed,
            confirmed, outcome, body, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (dedup_key) DO NOTHING",
    )
    .bind(shipment)
    .bind(carrier.as_str())
    .bind(code.map(str::to_string))
    .bind(key.to_string())
    .bind(source)
    .bind(claimed.map(str::to_string))
    .bind(confirmed.map(progress_str))
    .bind(outcome)
    .bind(body.map(|b| b.chars().take(4000).collect::<String>()))
    .bind(now_ms())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Cancel the order's parcel at its carrier before the order is cancelled: refused by the
/// carrier (picked up already), the order stays as it is.
async fn cancel_at_carrier(db: &Db, platform: &CarriersConfig, order: &OrderView) -> Result<()> {
    let cfg = &carriers_of(db, platform, order.shop_id).await?;
    let Some(r) = sqlx::query(
        "SELECT id, carrier, carrier_code, state, progress FROM shipments WHERE order_id = $1",
    )
    .bind(order.id)
    .fetch_optional(&db.pool)
    .await?
    else {
        return Ok(());
    };
    let id: i64 = r.try_get("id")?;
    let carrier = Method::parse(&r.try_get::<String, _>("carrier")?).unwrap_or(Method::Ghn);
    let state: String = r.try_get("state")?;
    let mut code: Option<String> = r.try_get("carrier_code")?;
    if state == "cancelled" || state == "failed" {
        return mark_cancelled(db, id).await;
    }
    if state == "booking" && code.is_none() {
        // The answer was lost: the parcel may exist.
        code = find(cfg, carrier, &order.code)
            .await
            .map_err(|e| AppError::Conflict(e.message().to_string()))?
            .map(|b| b.carrier_code);
        if code.is_none() {
            return mark_cancelled(db, id).await;
        }
    }
    let progress = progress_of(&r.try_get::<String, _>("progress")?);
    if !matches!(progress, Progress::Booked | Progress::Unknown) {
        return Err(AppError::Conflict(format!(
            "{} đã lấy hàng ({}); không hủy được đơn lúc này",
            carrier.words(),
            progress.words()
        )));
    }
    let code = code.unwrap_or_default();
    let cancelled = match (carrier, &cfg.ghn, &cfg.ghtk) {
        (Method::Ghn, Some(c), _) => carriers::ghn_cancel(c, &code).await,
        (Method::Ghtk, _, Some(c)) => carriers::ghtk_cancel(c, &code).await,
        _ => Err(no_account(carrier)),
    };
    cancelled
        .map_err(|e| AppError::Conflict(format!("Chưa hủy được với hãng: {}", e.message())))?;
    mark_cancelled(db, id).await
}

async fn mark_cancelled(db: &Db, id: i64) -> Result<()> {
    sqlx::query(
        "UPDATE shipments SET state = 'cancelled', progress = 'cancelled', lease_until = NULL,
            updated_at = $1 WHERE id = $2",
    )
    .bind(now_ms())
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// A carrier's report (a webhook body), read into what we keep of it.
#[derive(Debug, Clone)]
pub struct Report {
    pub carrier: Method,
    pub carrier_code: Option<String>,
    pub client_code: Option<String>,
    /// The status the report claims, as text.
    pub claimed: String,
    /// Its identity for de-duplication (code, type, status, time).
    pub dedup_key: String,
    pub body: String,
}

/// What became of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The same report came before: counted once.
    Duplicate,
    /// No shipment of ours has this code (kept, nothing done).
    Unknown,
    /// The carrier's API did not answer: kept; the poller asks again.
    Unverified,
    /// Confirmed by the carrier's API and applied (the order may have moved).
    Applied,
}

/// Store a carrier's report once, confirm the status from the carrier's API, and apply
/// what the API says (never what the report claims).
pub async fn report(db: &Db, cfg: &Config, r: &Report) -> Result<Outcome> {
    let row = sqlx::query(
        "SELECT sh.id, sh.carrier_code, o.shop_id FROM shipments sh JOIN orders o ON o.id = sh.order_id
         WHERE sh.carrier = $1 AND (sh.carrier_code = $2 OR sh.client_code = $3)",
    )
    .bind(r.carrier.as_str())
    .bind(r.carrier_code.clone().unwrap_or_default())
    .bind(r.client_code.clone().unwrap_or_default())
    .fetch_optional(&db.pool)
    .await?;
    let shipment: Option<(i64, Option<String>, i64)> = match row {
        Some(x) => Some((
            x.try_get("id")?,
            x.try_get("carrier_code")?,
            x.try_get("shop_id")?,
        )),
        None => None,
    };
    let mut tx = db.begin().await?;
    let fresh = event(
        &mut tx,
        shipment.as_ref().map(|s| s.0),
        r.carrier,
        r.carrier_code.as_deref(),
        &format!("webhook:{}:{}", r.carrier.as_str(), r.dedup_key),
        "webhook",
        Some(&r.claimed),
        None,
        if shipment.is_some() {
            "unverified"
        } else {
            "unknown_shipment"
        },
        Some(&r.body),
    )
    .await?;
    tx.commit().await?;
    if !fresh {
        return Ok(Outcome::Duplicate);
    }
    let Some((id, Some(code), shop)) = shipment else {
        return Ok(Outcome::Unknown);
    };
    let carriers = carriers_of(db, &cfg.carriers, shop).await?;
    match status(&carriers, r.carrier, &code).await {
        Ok(b) => {
            apply(db, id, &b, "webhook").await?;
            sqlx::query(
                "UPDATE shipment_events SET confirmed = $1, outcome = 'applied' WHERE dedup_key = $2",
            )
            .bind(progress_str(b.progress))
            .bind(format!("webhook:{}:{}", r.carrier.as_str(), r.dedup_key))
            .execute(&db.pool)
            .await?;
            Ok(Outcome::Applied)
        }
        Err(e) => {
            tracing::warn!(carrier = r.carrier.as_str(), error = %e.message(), "carrier status not confirmed");
            // Kept as a hint: the poller asks the carrier at its next pass, not 12 h later.
            sqlx::query("UPDATE shipments SET checked_at = $1 WHERE id = $2")
                .bind(now_ms() - POLL_AFTER_MS - 1)
                .bind(id)
                .execute(&db.pool)
                .await?;
            Ok(Outcome::Unverified)
        }
    }
}

/// A confirmed status of a shipment: kept, and its order moved as `effect` says.
pub async fn apply(db: &Db, shipment: i64, b: &Booked, source: &str) -> Result<()> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    let r = sqlx::query(
        "UPDATE shipments SET progress = $1, carrier_status = $2, expected_at = COALESCE($3, expected_at),
            checked_at = $4, updated_at = $4
         WHERE id = $5 RETURNING order_id, carrier",
    )
    .bind(progress_str(b.progress))
    .bind(b.status.clone())
    .bind(b.expected_at)
    .bind(now)
    .bind(shipment)
    .fetch_one(&mut *tx)
    .await?;
    let order_id: i64 = r.try_get("order_id")?;
    let o = sqlx::query("SELECT status, delivered_by, checkout_id FROM orders WHERE id = $1")
        .bind(order_id)
        .fetch_one(&mut *tx)
        .await?;
    let status = OrderStatus::parse(&o.try_get::<String, _>("status")?)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("bad order status")))?;
    let by_carrier = o.try_get::<Option<String>, _>("delivered_by")?.as_deref() == Some("carrier");
    event(
        &mut tx,
        Some(shipment),
        Method::parse(&r.try_get::<String, _>("carrier")?).unwrap_or(Method::Ghn),
        Some(&b.carrier_code),
        &format!("status:{shipment}:{}:{}", b.status, now),
        source,
        None,
        Some(b.progress),
        "applied",
        None,
    )
    .await?;
    match effect(b.progress, status, by_carrier) {
        None => {}
        Some(Effect::Ship) => ship(&mut tx, order_id, status, now).await?,
        Some(Effect::Deliver) => {
            ship(&mut tx, order_id, status, now).await?;
            set_status(
                &mut tx,
                order_id,
                OrderStatus::Shipped,
                OrderStatus::Delivered,
                Actor::Carrier,
                None,
            )
            .await?;
            delivered(&mut tx, order_id, now).await?;
        }
        Some(Effect::ConfirmDelivery) => delivered(&mut tx, order_id, now).await?,
        Some(Effect::Return) => {
            ship(&mut tx, order_id, status, now).await?;
            let from = if status == OrderStatus::Delivered {
                OrderStatus::Delivered
            } else {
                OrderStatus::Shipped
            };
            // The goods are back with the seller: the buyer's money is owed back, the
            // stock returns (buyer protection's refund path).
            set_status(
                &mut tx,
                order_id,
                from,
                OrderStatus::RefundDue,
                Actor::System,
                None,
            )
            .await?;
            crate::orders::money::order_refund_due(&mut tx, order_id).await?;
            let lines: Vec<(i64, i64)> =
                sqlx::query_as("SELECT product_id, quantity FROM order_lines WHERE order_id = $1")
                    .bind(order_id)
                    .fetch_all(&mut *tx)
                    .await?;
            for (p, q) in lines {
                crate::orders::store::release(&mut tx, p, q).await?;
            }
            let payment: i64 = sqlx::query_scalar("SELECT id FROM payments WHERE checkout_id = $1")
                .bind(o.try_get::<i64, _>("checkout_id")?)
                .fetch_one(&mut *tx)
                .await?;
            crate::notify::event(&mut tx, crate::notify::NoticeKind::RefundDue, payment).await?;
        }
        Some(Effect::Alert) => {
            crate::notify::event(
                &mut tx,
                crate::notify::NoticeKind::ShipmentProblem,
                shipment,
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Accepted → shipped at the carrier's word (a no-op when already shipped).
async fn ship(tx: &mut Tx, order: i64, status: OrderStatus, now: i64) -> Result<()> {
    if status != OrderStatus::Accepted {
        return Ok(());
    }
    set_status(
        tx,
        order,
        OrderStatus::Accepted,
        OrderStatus::Shipped,
        Actor::Carrier,
        None,
    )
    .await?;
    sqlx::query("UPDATE orders SET shipped_at = COALESCE(shipped_at, $1) WHERE id = $2")
        .bind(now)
        .bind(order)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The carrier's delivery: it starts the buyer's guarantee window (and counts more than the
/// seller's word).
async fn delivered(tx: &mut Tx, order: i64, now: i64) -> Result<()> {
    sqlx::query("UPDATE orders SET delivered_at = $1, delivered_by = 'carrier' WHERE id = $2")
        .bind(now)
        .bind(order)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Ask the carriers about booked parcels not heard of for `POLL_AFTER_MS` (a webhook can be
/// lost), and apply what they say. Returns how many were asked.
pub async fn poll(db: &Db, platform: &CarriersConfig, now: i64) -> Result<usize> {
    let due = sqlx::query(
        "SELECT sh.id, sh.carrier, sh.carrier_code, o.shop_id FROM shipments sh
         JOIN orders o ON o.id = sh.order_id
         WHERE sh.state = 'booked' AND sh.progress NOT IN ('delivered', 'returned', 'cancelled')
           AND sh.checked_at < $1 ORDER BY sh.checked_at LIMIT 100",
    )
    .bind(now - POLL_AFTER_MS)
    .fetch_all(&db.pool)
    .await?;
    let mut asked = 0;
    for r in due {
        let id: i64 = r.try_get("id")?;
        let carrier = Method::parse(&r.try_get::<String, _>("carrier")?).unwrap_or(Method::Ghn);
        let code: String = r
            .try_get::<Option<String>, _>("carrier_code")?
            .unwrap_or_default();
        let cfg = carriers_of(db, platform, r.try_get("shop_id")?).await?;
        asked += 1;
        match status(&cfg, carrier, &code).await {
            Ok(b) => apply(db, id, &b, "poll").await?,
            Err(e) => {
                tracing::warn!(shipment = id, error = %e.message(), "carrier status not read");
                // Asked: try again after another interval, not on every pass.
                sqlx::query("UPDATE shipments SET checked_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(&db.pool)
                    .await?;
            }
        }
    }
    Ok(asked)
}

/// The carrier's label of a booked parcel: GHN's print page (A5, or 80×80) or GHTK's PDF.
pub enum Label {
    Page(String),
    Pdf(Vec<u8>),
}

pub async fn label(
    db: &Db,
    platform: &CarriersConfig,
    order: &OrderView,
    small: bool,
) -> Result<Label> {
    let cfg = &carriers_of(db, platform, order.shop_id).await?;
    let s = of_order(db, order.id).await?.ok_or(AppError::NotFound)?;
    let Some(code) = s.carrier_code.filter(|_| s.state == "booked") else {
        return Err(AppError::Conflict("Đơn chưa đặt giao được với hãng".into()));
    };
    let got = match (s.carrier, &cfg.ghn, &cfg.ghtk) {
        (Method::Ghn, Some(c), _) => carriers::ghn_label_url(c, &code, small)
            .await
            .map(Label::Page),
        (Method::Ghtk, _, Some(c)) => carriers::ghtk_label_pdf(c, &code, small)
            .await
            .map(Label::Pdf),
        _ => Err(no_account(s.carrier)),
    };
    got.map_err(|e| AppError::Conflict(e.message().to_string()))
}
