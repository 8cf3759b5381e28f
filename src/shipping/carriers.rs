//! The carriers' APIs (GHN, GHTK) as `../shared/specs/shipping.md` describes them: fees,
//! and their own address ids resolved from their master data by name. Every answer is read
//! through its envelope (`code` for GHN, `success` for GHTK), never the HTTP status alone.
//! Quotes are kept 10 minutes per route, weight, size and value, so the fee the buyer saw
//! is the fee the checkout charges.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::addresses::Address;
use super::{Method, Quote};
use crate::config::{CarriersConfig, GhnConfig, GhtkConfig};
use crate::domain::text::fold;

/// How long a quote stands: the checkout charges what the buyer saw within this time.
pub const QUOTE_TTL: Duration = Duration::from_secs(600);
/// How long carriers' master data (provinces, districts, wards) is kept.
const MASTER_TTL: Duration = Duration::from_secs(24 * 3600);

/// What a parcel weighs and measures, and what its goods are worth (for insurance).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Packed {
    pub weight_g: i64,
    pub length_cm: i64,
    pub width_cm: i64,
    pub height_cm: i64,
    pub value_vnd: i64,
}

/// Why a carrier gave no answer we can use: shown to the seller, or noted beside a quote.
#[derive(Debug, Clone, PartialEq)]
pub struct CarrierError(pub String);

impl std::fmt::Display for CarrierError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

type Res<T> = std::result::Result<T, CarrierError>;

fn http() -> &'static reqwest::Client {
    static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("http client")
    });
    &CLIENT
}

fn said(carrier: Method, what: impl std::fmt::Display) -> CarrierError {
    CarrierError(format!("{}: {what}", carrier.words()))
}

/// A province or ward name without its kind, folded: "Thành phố Hà Nội" → "ha noi".
pub fn bare(name: &str) -> String {
    let f = fold(name);
    for prefix in [
        "thanh pho ",
        "tinh ",
        "phuong ",
        "xa ",
        "thi tran ",
        "dac khu ",
        "quan ",
        "huyen ",
        "thi xa ",
    ] {
        if let Some(rest) = f.strip_prefix(prefix) {
            return rest.trim().to_string();
        }
    }
    f.trim().to_string()
}

// ---------------------------------------------------------------------------------------
// GHN

async fn ghn_call(cfg: &GhnConfig, path: &str, body: Value, shop: bool) -> Res<Value> {
    ghn_request(cfg, path, body, shop)
        .await
        .map_err(BookError::into_error)
}

/// A GHN call read through its envelope (`code` 200, else its message).
async fn ghn_request(
    cfg: &GhnConfig,
    path: &str,
    body: Value,
    shop: bool,
) -> std::result::Result<Value, BookError> {
    let mut req = http()
        .post(format!("{}/shiip/public-api/{path}", cfg.api_url))
        .header("Token", &cfg.token)
        .json(&body);
    if shop {
        req = req.header("ShopId", cfg.shop_id.to_string());
    }
    let (status, v) = exchange(Method::Ghn, req).await?;
    if v["code"].as_i64() == Some(200) {
        return Ok(v["data"].clone());
    }
    let msg = v["code_message_value"]
        .as_str()
        .or(v["message"].as_str())
        .unwrap_or("lỗi không rõ");
    Err(refusal(Method::Ghn, status, msg))
}

/// Send a request and read its JSON: no answer, or one that is not JSON, leaves the outcome
/// unknown.
async fn exchange(
    m: Method,
    req: reqwest::RequestBuilder,
) -> std::result::Result<(reqwest::StatusCode, Value), BookError> {
    let resp = req
        .send()
        .await
        .map_err(|e| BookError::Unknown(said(m, format!("không kết nối được ({})", short(&e)))))?;
    let status = resp.status();
    let v: Value = resp
        .json()
        .await
        .map_err(|_| BookError::Unknown(said(m, "trả lời không đọc được")))?;
    Ok((status, v))
}

/// A carrier's "no": definite, unless its server failed (then it may have done it).
fn refusal(m: Method, status: reqwest::StatusCode, msg: &str) -> BookError {
    if status.is_server_error() {
        BookError::Unknown(said(m, msg))
    } else {
        BookError::Refused(said(m, msg))
    }
}

fn short(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "hết thời gian chờ"
    } else if e.is_connect() {
        "không kết nối"
    } else {
        "lỗi mạng"
    }
}

type MasterCache = Mutex<HashMap<String, (Instant, Value)>>;
static MASTER: LazyLock<MasterCache> = LazyLock::new(|| Mutex::new(HashMap::new()));

async fn ghn_master(cfg: &GhnConfig, path: &str, body: Value) -> Res<Value> {
    let key = format!("{}|{path}|{body}", cfg.api_url);
    if let Some((at, v)) = MASTER.lock().expect("cache").get(&key)
        && at.elapsed() < MASTER_TTL
    {
        return Ok(v.clone());
    }
    let v = ghn_call(cfg, path, body, false).await?;
    MASTER
        .lock()
        .expect("cache")
        .insert(key, (Instant::now(), v.clone()));
    Ok(v)
}

/// GHN's ids for an address of the 2025 lists: its district and ward, found by name in
/// GHN's master data. A ward GHN does not know, or knows twice, is an error, never a guess.
pub async fn ghn_place(cfg: &GhnConfig, a: &Address) -> Res<(i64, String)> {
    let want_province = bare(a.province_name());
    let provinces = ghn_master(cfg, "master-data/province", json!({})).await?;
    let names_of = |v: &Value, key: &str| -> Vec<String> {
        let mut n = vec![bare(v[key].as_str().unwrap_or(""))];
        if let Some(ext) = v["NameExtension"].as_array() {
            n.extend(ext.iter().filter_map(Value::as_str).map(bare));
        }
        n
    };
    let province = provinces
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| names_of(p, "ProvinceName").contains(&want_province))
        .and_then(|p| p["ProvinceID"].as_i64())
        .ok_or_else(|| said(Method::Ghn, format!("không có tỉnh {}", a.province_name())))?;
    let districts = ghn_master(
        cfg,
        "master-data/district",
        json!({"province_id": province}),
    )
    .await?;
    let want_ward = bare(a.ward_name());
    let mut found: Vec<(i64, String)> = Vec::new();
    for d in districts.as_array().into_iter().flatten() {
        let Some(district) = d["DistrictID"].as_i64() else {
            continue;
        };
        let wards = ghn_master(cfg, "master-data/ward", json!({"district_id": district})).await?;
        for w in wards.as_array().into_iter().flatten() {
            if names_of(w, "WardName").contains(&want_ward)
                && let Some(code) = w["WardCode"].as_str()
            {
                found.push((district, code.to_string()));
            }
        }
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(said(
            Method::Ghn,
            format!("chưa có {} trong danh sách của GHN", a.ward_name()),
        )),
        _ => Err(said(
            Method::Ghn,
            format!("có nhiều nơi tên {} trong danh sách của GHN", a.ward_name()),
        )),
    }
}

/// GHN's fee (light e-commerce service) from `from` to `to`, with its expected delivery
/// day when GHN says.
pub async fn ghn_fee(cfg: &GhnConfig, from: &Address, to: &Address, p: &Packed) -> Res<Quote> {
    let (from_district, from_ward) = ghn_place(cfg, from).await?;
    let (to_district, to_ward) = ghn_place(cfg, to).await?;
    let route = json!({
        "from_district_id": from_district,
        "from_ward_code": from_ward,
        "to_district_id": to_district,
        "to_ward_code": to_ward,
        "service_type_id": 2,
    });
    let mut body = route.clone();
    for (k, v) in [
        ("weight", p.weight_g),
        ("length", p.length_cm),
        ("width", p.width_cm),
        ("height", p.height_cm),
        ("insurance_value", p.value_vnd.min(5_000_000)),
        ("cod_value", 0),
    ] {
        body[k] = json!(v);
    }
    let fee = ghn_call(cfg, "v2/shipping-order/fee", body, true).await?;
    let total = fee["total"]
        .as_i64()
        .ok_or_else(|| said(Method::Ghn, "không báo phí"))?;
    // The delivery day is a nicety: a quote stands without it.
    let expected_on = ghn_call(cfg, "v2/shipping-order/leadtime", route, true)
        .await
        .ok()
        .and_then(|d| d["leadtime"].as_i64())
        .map(|t| crate::domain::vn_date(t * 1000).to_string());
    Ok(Quote {
        id: Method::Ghn.as_str().into(),
        carrier: Method::Ghn,
        fee_vnd: total,
        expected_on,
        shop_account: false,
    })
}

// ---------------------------------------------------------------------------------------
// GHTK

async fn ghtk_get(cfg: &GhtkConfig, path: &str, query: &[(&str, String)]) -> Res<Value> {
    let req = http().get(format!("{}{path}", cfg.api_url)).query(query);
    ghtk_request(cfg, req).await.map_err(BookError::into_error)
}

/// A GHTK call, with its headers, read through its envelope (`success`, else `message`).
async fn ghtk_request(
    cfg: &GhtkConfig,
    req: reqwest::RequestBuilder,
) -> std::result::Result<Value, BookError> {
    let req = req
        .header("Token", &cfg.token)
        .header("X-Client-Source", &cfg.partner_code);
    let (status, v) = exchange(Method::Ghtk, req).await?;
    if v["success"].as_bool() == Some(true) {
        return Ok(v);
    }
    let msg = v["message"].as_str().unwrap_or("lỗi không rõ");
    Err(refusal(Method::Ghtk, status, msg))
}

/// GHTK's road fee from `from` to `to` (GHTK takes names; the 2025 addresses have no
/// district, which is sent empty).
pub async fn ghtk_fee(cfg: &GhtkConfig, from: &Address, to: &Address, p: &Packed) -> Res<Quote> {
    let q = [
        ("pick_province", from.province_name().to_string()),
        ("pick_district", String::new()),
        ("pick_ward", from.ward_name().to_string()),
        ("pick_address", from.street.clone()),
        ("province", to.province_name().to_string()),
        ("district", String::new()),
        ("ward", to.ward_name().to_string()),
        ("address", to.street.clone()),
        ("weight", p.weight_g.to_string()),
        ("value", p.value_vnd.to_string()),
        ("transport", "road".to_string()),
        ("deliver_option", "none".to_string()),
    ];
    let v = ghtk_get(cfg, "/services/shipment/fee", &q).await?;
    let fee = &v["fee"];
    if fee["delivery"].as_bool() == Some(false) {
        return Err(said(Method::Ghtk, "chưa giao tới nơi này"));
    }
    let total = fee["fee"]
        .as_i64()
        .ok_or_else(|| said(Method::Ghtk, "không báo phí"))?
        + fee["insurance_fee"].as_i64().unwrap_or(0);
    Ok(Quote {
        id: Method::Ghtk.as_str().into(),
        carrier: Method::Ghtk,
        fee_vnd: total,
        expected_on: None,
        shop_account: false,
    })
}

// ---------------------------------------------------------------------------------------
// Quotes, kept

type QuoteCache = Mutex<HashMap<String, (Instant, Quote)>>;
static QUOTES: LazyLock<QuoteCache> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn quote_key(m: Method, url: &str, from: &Address, to: &Address, p: &Packed) -> String {
    format!(
        "{}|{url}|{}|{}|{}|{}x{}x{}|{}",
        m.as_str(),
        from.ward_code,
        to.ward_code,
        p.weight_g,
        p.length_cm,
        p.width_cm,
        p.height_cm,
        p.value_vnd
    )
}

/// Which account of which carrier: its API and who the account is (a shop's own account
/// may have its own prices), for kept quotes and resting carriers.
fn api_url(cfg: &CarriersConfig, m: Method) -> Option<String> {
    use sha2::Digest;
    match m {
        Method::Ghn => cfg
            .ghn
            .as_ref()
            .map(|c| format!("{}#{}", c.api_url, c.shop_id)),
        Method::Ghtk => cfg.ghtk.as_ref().map(|c| {
            let who = sha2::Sha256::digest(c.token.as_bytes());
            format!("{}#{}", c.api_url, hex::encode(&who[..6]))
        }),
        Method::SelfDelivery => None,
    }
}

/// Which carriers the platform has an account with.
pub fn available(cfg: &CarriersConfig) -> Vec<Method> {
    [Method::Ghn, Method::Ghtk]
        .into_iter()
        .filter(|m| api_url(cfg, *m).is_some())
        .collect()
}

/// After this many quotes in a row without an answer in time, a carrier rests…
pub const SILENT_TIMES: u32 = 3;
/// …for this long: checkouts leave it out at once instead of each waiting the timeout; then
/// one quote tries it again.
pub const REST: Duration = Duration::from_secs(30);

/// Per carrier account: quotes in a row without an answer in time, and the end of its rest.
type Silence = Mutex<HashMap<String, (u32, Option<Instant>)>>;
static SILENCE: LazyLock<Silence> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn silence_key(m: Method, url: &str) -> String {
    format!("{}|{url}", m.as_str())
}

/// Whether the carrier is resting now (it stopped answering).
fn resting(m: Method, url: &str, now: Instant) -> bool {
    let mut all = SILENCE.lock().expect("silence");
    match all.get_mut(&silence_key(m, url)) {
        Some((_, Some(until))) if now < *until => true,
        Some((_, until @ Some(_))) => {
            // Rested: let one quote through; another timeout puts it back to rest.
            *until = None;
            false
        }
        _ => false,
    }
}

/// Count a quote without an answer in time (`true`), or an answer (`false`).
fn silent(m: Method, url: &str, no_answer: bool, now: Instant) {
    let mut all = SILENCE.lock().expect("silence");
    let e = all.entry(silence_key(m, url)).or_insert((0, None));
    if no_answer {
        e.0 += 1;
        if e.0 >= SILENT_TIMES {
            e.1 = Some(now + REST);
        }
    } else {
        *e = (0, None);
    }
}

/// A quote given within `QUOTE_TTL` for this route and parcel, if any.
pub fn kept(
    cfg: &CarriersConfig,
    m: Method,
    from: &Address,
    to: &Address,
    p: &Packed,
) -> Option<Quote> {
    let key = quote_key(m, &api_url(cfg, m)?, from, to, p);
    let cache = QUOTES.lock().expect("cache");
    cache
        .get(&key)
        .filter(|(at, _)| at.elapsed() < QUOTE_TTL)
        .map(|(_, q)| q.clone())
}

/// Ask a carrier for its fee, bounded by the checkout's timeout; a kept quote answers
/// at once.
pub async fn quote(
    cfg: &CarriersConfig,
    m: Method,
    from: &Address,
    to: &Address,
    p: &Packed,
) -> Res<Quote> {
    if let Some(q) = kept(cfg, m, from, to, p) {
        return Ok(q);
    }
    let url = api_url(cfg, m).unwrap_or_default();
    if resting(m, &url, Instant::now()) {
        return Err(said(m, "không trả lời mấy lần vừa rồi; tạm nghỉ ít phút"));
    }
    let asked = async {
        match m {
            Method::Ghn => match &cfg.ghn {
                Some(c) => ghn_fee(c, from, to, p).await,
                None => Err(said(m, "Chợ Làng chưa có tài khoản")),
            },
            Method::Ghtk => match &cfg.ghtk {
                Some(c) => ghtk_fee(c, from, to, p).await,
                None => Err(said(m, "Chợ Làng chưa có tài khoản")),
            },
            Method::SelfDelivery => Err(said(m, "không phải nhà vận chuyển")),
        }
    };
    let q = match tokio::time::timeout(Duration::from_millis(cfg.quote_timeout_ms), asked).await {
        Ok(answer) => {
            silent(m, &url, false, Instant::now());
            answer?
        }
        Err(_) => {
            silent(m, &url, true, Instant::now());
            return Err(said(m, "không trả lời kịp"));
        }
    };
    let key = quote_key(m, &url, from, to, p);
    let mut cache = QUOTES.lock().expect("cache");
    if cache.len() > 10_000 {
        cache.retain(|_, (at, _)| at.elapsed() < QUOTE_TTL);
    }
    cache.insert(key, (Instant::now(), q.clone()));
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_carrier_that_stops_answering_rests_then_is_tried_again() {
        let (m, url) = (Method::Ghtk, "http://rest.test");
        let t0 = Instant::now();
        for _ in 0..SILENT_TIMES - 1 {
            silent(m, url, true, t0);
            assert!(!resting(m, url, t0), "a timeout or two is not a pattern");
        }
        silent(m, url, true, t0);
        assert!(resting(m, url, t0 + Duration::from_secs(1)));
        assert!(
            !resting(m, url, t0 + REST),
            "after its rest, one quote tries"
        );
        silent(m, url, true, t0 + REST);
        assert!(
            resting(m, url, t0 + REST + Duration::from_secs(1)),
            "silent again: rests again"
        );
        silent(m, url, false, t0 + REST * 3);
        assert!(!resting(m, url, t0 + REST * 3));
        silent(m, url, true, t0 + REST * 3);
        assert!(
            !resting(m, url, t0 + REST * 3),
            "an answer starts the count again"
        );
    }

    #[test]
    fn names_are_matched_without_their_kind_or_marks() {
        assert_eq!(bare("Thành phố Hà Nội"), "ha noi");
        assert_eq!(bare("Tỉnh Thái Nguyên"), "thai nguyen");
        assert_eq!(bare("Xã Phú Xuyên"), "phu xuyen");
        assert_eq!(bare("Phường Hoàn Kiếm"), "hoan kiem");
        assert_eq!(bare("Hà Nội"), "ha noi");
    }
}

// ---------------------------------------------------------------------------------------
// Shipments: booking, looking up, cancelling, labels, status

/// Where a parcel is, as we read both carriers' statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    /// Booked, waiting for the carrier to pick it up.
    Booked,
    /// Picked up, on its way.
    InTransit,
    Delivered,
    /// Coming back to the shop.
    Returning,
    /// Back at the shop.
    Returned,
    Cancelled,
    /// Failed, lost or damaged: the seller and the admin are told.
    Problem,
    /// A status we do not know: changes nothing.
    Unknown,
}

impl Progress {
    /// GHN's status words (spec: identical across public clients; unknown words are
    /// `Unknown`, never an error).
    pub fn of_ghn(status: &str) -> Progress {
        match status.trim().to_ascii_lowercase().as_str() {
            "ready_to_pick" | "picking" | "money_collect_picking" => Progress::Booked,
            "picked"
            | "storing"
            | "transporting"
            | "sorting"
            | "delivering"
            | "money_collect_delivering" => Progress::InTransit,
            "delivered" => Progress::Delivered,
            "waiting_to_return"
            | "return"
            | "return_transporting"
            | "return_sorting"
            | "returning" => Progress::Returning,
            "returned" => Progress::Returned,
            "cancel" => Progress::Cancelled,
            "delivery_fail" | "return_fail" | "exception" | "damage" | "lost" => Progress::Problem,
            _ => Progress::Unknown,
        }
    }

    /// GHTK's `status_id` (spec; shipper reports 123, 127, 128, 45, 49, 410 are not states).
    pub fn of_ghtk(status: i64) -> Progress {
        match status {
            -1 => Progress::Cancelled,
            1 | 2 | 8 | 12 => Progress::Booked,
            3 | 4 | 10 => Progress::InTransit,
            5 | 6 => Progress::Delivered,
            20 => Progress::Returning,
            11 | 21 => Progress::Returned,
            7 | 9 | 13 => Progress::Problem,
            _ => Progress::Unknown,
        }
    }

    /// What a buyer and a seller read.
    pub fn words(self) -> &'static str {
        match self {
            Progress::Booked => "Đã đặt giao, chờ hãng lấy hàng",
            Progress::InTransit => "Hãng đã lấy hàng, đang giao",
            Progress::Delivered => "Hãng báo đã giao cho người mua",
            Progress::Returning => "Đang chuyển hoàn về người bán",
            Progress::Returned => "Đã hoàn hàng về người bán",
            Progress::Cancelled => "Đã hủy với hãng",
            Progress::Problem => "Có sự cố (giao không được, thất lạc hoặc hư hỏng)",
            Progress::Unknown => "Chưa rõ",
        }
    }

    /// Whether the carrier will still move the parcel (a poller keeps asking).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Progress::Delivered | Progress::Returned | Progress::Cancelled
        )
    }
}

/// A parcel to book: our order, both ends, what is in it.
#[derive(Debug, Clone)]
pub struct Booking {
    /// Our order code (`CLxxxx-1`): GHN's `client_order_code`, GHTK's order `id`.
    pub client_code: String,
    pub from: Address,
    pub from_name: String,
    pub from_phone: String,
    pub to: Address,
    pub to_name: String,
    pub to_phone: String,
    /// (name, quantity, unit price, unit weight in grams)
    pub items: Vec<(String, i64, i64, i64)>,
    pub parcel: Packed,
    pub note: String,
}

/// A booking as the carrier holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Booked {
    pub carrier_code: String,
    pub fee_vnd: Option<i64>,
    /// When the carrier expects to deliver (UTC ms).
    pub expected_at: Option<i64>,
    /// The carrier's own status word or number, as text.
    pub status: String,
    pub progress: Progress,
}

/// Whether a failure means the carrier refused (nothing booked), or we cannot know (a
/// timeout, a connection cut: the booking may exist and is looked up before trying again).
#[derive(Debug, Clone, PartialEq)]
pub enum BookError {
    Refused(CarrierError),
    Unknown(CarrierError),
}

impl BookError {
    pub fn into_error(self) -> CarrierError {
        match self {
            BookError::Refused(e) | BookError::Unknown(e) => e,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            BookError::Refused(e) | BookError::Unknown(e) => &e.0,
        }
    }
}

fn ms_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(|s| if s < 10_000_000_000 { s * 1000 } else { s }),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_millis())
            .or_else(|| {
                chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
                    .ok()
                    .map(|t| t.and_utc().timestamp_millis() - 7 * 3_600_000)
            }),
        _ => None,
    }
}

/// A shop-scoped GHN call (create, detail, cancel, labels).
async fn ghn_send(
    cfg: &GhnConfig,
    path: &str,
    body: Value,
) -> std::result::Result<Value, BookError> {
    ghn_request(cfg, path, body, true).await
}

fn ghn_booked(d: &Value) -> Option<Booked> {
    let code = d["order_code"].as_str()?.to_string();
    let status = d["status"].as_str().unwrap_or("ready_to_pick").to_string();
    Some(Booked {
        carrier_code: code,
        fee_vnd: d["total_fee"].as_i64(),
        expected_at: ms_of(&d["expected_delivery_time"]).or_else(|| ms_of(&d["leadtime"])),
        progress: Progress::of_ghn(&status),
        status,
    })
}

/// GHN's booking of our order code, if it exists (a booking whose answer was lost).
pub async fn ghn_find(
    cfg: &GhnConfig,
    client_code: &str,
) -> std::result::Result<Option<Booked>, BookError> {
    match ghn_send(
        cfg,
        "v2/shipping-order/detail-by-client-code",
        json!({"client_order_code": client_code}),
    )
    .await
    {
        Ok(d) => Ok(ghn_booked(&d)),
        // GHN answers "not found" as a refusal: nothing was booked.
        Err(BookError::Refused(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Book a GHN parcel (the platform pays: `payment_type_id` 1; no cash on delivery).
pub async fn ghn_create(cfg: &GhnConfig, b: &Booking) -> std::result::Result<Booked, BookError> {
    let (from_district, from_ward) = ghn_place(cfg, &b.from).await.map_err(BookError::Refused)?;
    let (to_district, to_ward) = ghn_place(cfg, &b.to).await.map_err(BookError::Refused)?;
    let items: Vec<Value> = b
        .items
        .iter()
        .map(|(name, qty, price, weight)| {
            json!({"name": name, "quantity": qty, "price": price, "weight": weight})
        })
        .collect();
    let body = json!({
        "payment_type_id": 1,
        "required_note": "CHOXEMHANGKHONGTHU",
        "client_order_code": b.client_code,
        "from_name": b.from_name,
        "from_phone": b.from_phone,
        "from_address": b.from.line(),
        "from_ward_code": from_ward,
        "from_district_id": from_district,
        "to_name": b.to_name,
        "to_phone": b.to_phone,
        "to_address": b.to.line(),
        "to_ward_code": to_ward,
        "to_district_id": to_district,
        "cod_amount": 0,
        "weight": b.parcel.weight_g,
        "length": b.parcel.length_cm,
        "width": b.parcel.width_cm,
        "height": b.parcel.height_cm,
        "insurance_value": b.parcel.value_vnd.min(5_000_000),
        "service_type_id": 2,
        "note": b.note,
        "items": items,
    });
    let d = ghn_send(cfg, "v2/shipping-order/create", body).await?;
    ghn_booked(&d).ok_or_else(|| BookError::Unknown(said(Method::Ghn, "không trả mã vận đơn")))
}

/// GHN's status of a parcel, read from its API (a webhook is only a hint).
pub async fn ghn_detail(
    cfg: &GhnConfig,
    order_code: &str,
) -> std::result::Result<Booked, BookError> {
    let d = ghn_send(
        cfg,
        "v2/shipping-order/detail",
        json!({"order_code": order_code}),
    )
    .await?;
    ghn_booked(&d).ok_or_else(|| BookError::Unknown(said(Method::Ghn, "không trả trạng thái")))
}

pub async fn ghn_cancel(cfg: &GhnConfig, order_code: &str) -> std::result::Result<(), BookError> {
    let d = ghn_send(
        cfg,
        "v2/switch-status/cancel",
        json!({"order_codes": [order_code]}),
    )
    .await?;
    let ok = d.as_array().into_iter().flatten().any(|r| {
        r["order_code"].as_str() == Some(order_code) && r["result"].as_bool() == Some(true)
    });
    if ok {
        Ok(())
    } else {
        let msg = d[0]["message"].as_str().unwrap_or("không hủy được");
        Err(BookError::Refused(said(Method::Ghn, msg)))
    }
}

/// The address of GHN's printable label (A5 or 80×80), valid 30 minutes.
pub async fn ghn_label_url(
    cfg: &GhnConfig,
    order_code: &str,
    small: bool,
) -> std::result::Result<String, BookError> {
    let d = ghn_send(cfg, "v2/a5/gen-token", json!({"order_codes": [order_code]})).await?;
    let token = d["token"]
        .as_str()
        .ok_or_else(|| BookError::Unknown(said(Method::Ghn, "không trả mã in")))?;
    let page = if small { "print80x80" } else { "printA5" };
    Ok(format!(
        "{}/a5/public-api/{page}?token={token}",
        cfg.api_url
    ))
}

async fn ghtk_send(
    cfg: &GhtkConfig,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> std::result::Result<Value, BookError> {
    let mut req = http().request(method, format!("{}{path}", cfg.api_url));
    if let Some(b) = body {
        req = req.json(&b);
    }
    ghtk_request(cfg, req).await
}

fn ghtk_status_of(o: &Value) -> i64 {
    match &o["status"] {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => s.trim().parse().unwrap_or(0),
        _ => o["status_id"].as_i64().unwrap_or(0),
    }
}

fn ghtk_booked(o: &Value) -> Option<Booked> {
    let code = o["label"].as_str().or(o["label_id"].as_str())?.to_string();
    let status = ghtk_status_of(o);
    let status = if status == 0 {
        o["status_id"].as_i64().unwrap_or(1)
    } else {
        status
    };
    Some(Booked {
        carrier_code: code,
        fee_vnd: o["fee"].as_i64().or_else(|| o["ship_money"].as_i64()),
        expected_at: ms_of(&o["estimated_deliver_time"]).or_else(|| ms_of(&o["deliver_date"])),
        progress: Progress::of_ghtk(status),
        status: status.to_string(),
    })
}

/// GHTK's parcel of our order code, if it exists.
pub async fn ghtk_find(
    cfg: &GhtkConfig,
    client_code: &str,
) -> std::result::Result<Option<Booked>, BookError> {
    let path = format!("/services/shipment/v2/partner_id:{client_code}");
    match ghtk_send(cfg, reqwest::Method::GET, &path, None).await {
        Ok(v) => Ok(ghtk_booked(&v["order"])),
        Err(BookError::Refused(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// GHTK's status of a parcel, read from its API.
pub async fn ghtk_status(cfg: &GhtkConfig, label: &str) -> std::result::Result<Booked, BookError> {
    let v = ghtk_send(
        cfg,
        reqwest::Method::GET,
        &format!("/services/shipment/v2/{label}"),
        None,
    )
    .await?;
    ghtk_booked(&v["order"])
        .ok_or_else(|| BookError::Unknown(said(Method::Ghtk, "không trả trạng thái")))
}

/// Book a GHTK parcel by road; weights in kilograms, as GHTK takes them.
pub async fn ghtk_create(cfg: &GhtkConfig, b: &Booking) -> std::result::Result<Booked, BookError> {
    let products: Vec<Value> = b
        .items
        .iter()
        .map(|(name, qty, price, weight)| {
            json!({"name": name, "quantity": qty, "price": price,
                   "weight": (*weight as f64) / 1000.0})
        })
        .collect();
    let body = json!({
        "products": products,
        "order": {
            "id": b.client_code,
            "pick_name": b.from_name,
            "pick_money": 0,
            "pick_address": b.from.street,
            "pick_province": b.from.province_name(),
            "pick_district": "",
            "pick_ward": b.from.ward_name(),
            "pick_tel": b.from_phone,
            "name": b.to_name,
            "address": b.to.street,
            "province": b.to.province_name(),
            "district": "",
            "ward": b.to.ward_name(),
            "hamlet": "Khác",
            "tel": b.to_phone,
            "value": b.parcel.value_vnd,
            "is_freeship": "1",
            "transport": "road",
            "note": b.note,
        }
    });
    let v = ghtk_send(
        cfg,
        reqwest::Method::POST,
        "/services/shipment/order",
        Some(body),
    )
    .await?;
    ghtk_booked(&v["order"])
        .ok_or_else(|| BookError::Unknown(said(Method::Ghtk, "không trả mã vận đơn")))
}

pub async fn ghtk_cancel(cfg: &GhtkConfig, label: &str) -> std::result::Result<(), BookError> {
    ghtk_send(
        cfg,
        reqwest::Method::POST,
        &format!("/services/shipment/cancel/{label}"),
        None,
    )
    .await
    .map(|_| ())
}

/// GHTK's label as a PDF (A6, or A5).
pub async fn ghtk_label_pdf(
    cfg: &GhtkConfig,
    label: &str,
    small: bool,
) -> std::result::Result<Vec<u8>, BookError> {
    let resp = http()
        .get(format!("{}/services/label/{label}", cfg.api_url))
        .header("Token", &cfg.token)
        .header("X-Client-Source", &cfg.partner_code)
        .query(&[("paper_size", if small { "A6" } else { "A5" })])
        .send()
        .await
        .map_err(|e| {
            BookError::Unknown(said(
                Method::Ghtk,
                format!("không kết nối được ({})", short(&e)),
            ))
        })?;
    let pdf = resp.status().is_success()
        && resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.contains("pdf"));
    let bytes = resp
        .bytes()
        .await
        .map_err(|_| BookError::Unknown(said(Method::Ghtk, "không tải được tem")))?;
    if !pdf {
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        return Err(BookError::Refused(said(
            Method::Ghtk,
            v["message"].as_str().unwrap_or("không in được tem"),
        )));
    }
    Ok(bytes.to_vec())
}

#[cfg(test)]
mod progress_tests {
    use super::Progress;

    #[test]
    fn statuses_read_alike_for_both_carriers() {
        assert_eq!(Progress::of_ghn("ready_to_pick"), Progress::Booked);
        assert_eq!(Progress::of_ghn("PICKED"), Progress::InTransit);
        assert_eq!(Progress::of_ghn("delivered"), Progress::Delivered);
        assert_eq!(Progress::of_ghn("returned"), Progress::Returned);
        assert_eq!(Progress::of_ghn("lost"), Progress::Problem);
        assert_eq!(Progress::of_ghn("something_new"), Progress::Unknown);
        assert_eq!(Progress::of_ghtk(3), Progress::InTransit);
        assert_eq!(Progress::of_ghtk(5), Progress::Delivered);
        assert_eq!(Progress::of_ghtk(21), Progress::Returned);
        assert_eq!(Progress::of_ghtk(-1), Progress::Cancelled);
        assert_eq!(
            Progress::of_ghtk(123),
            Progress::Unknown,
            "a shipper's report is no state"
        );
        assert!(Progress::Delivered.is_final() && !Progress::InTransit.is_final());
    }
}
