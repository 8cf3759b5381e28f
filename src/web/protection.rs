//! Buyer protection on the web: the buyer's order page (`/don-hang/{code}`: timeline, the
//! seller's phone and Zalo, tracking, "Đã nhận được hàng", "Có vấn đề với đơn hàng", the
//! refund account), the seller's answers, the moderator's and admin's decisions and the
//! treasurer's refund transfers, and the same as JSON. Rules live in `protection`.

use askama::Template;
use axum::Json;
use axum::Router;
use axum::extract::{Multipart, Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum_extra::extract::CookieJar;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::{ApiJson, ApiPath, ApiQuery};
use super::client::ClientIp;
use super::session::{CurrentUser, verify_csrf};
use super::{CsrfSeed, Layout, MaybeUser, PageResult, render, see_other};
use crate::domain::money::format_vnd;
use crate::domain::{format_vn_date, format_vn_time, now_ms};
use crate::error::AppError;
use crate::orders::OrderStatus;
use crate::orders::release::{self, Release};
use crate::orders::store::{self as orders, OrderView};
use crate::payouts::PayoutAccount;
use crate::protection::store::{self as bp, Answer, Decision, NewRequest, Proof};
use crate::protection::{Reason, RequestStatus};
use crate::web::AppState;

pub fn page_router() -> Router<AppState> {
    Router::new()
        .route("/don-hang/{code}", get(order_page).post(prove_form))
        .route(
            "/don-hang/{code}/da-nhan",
            get(confirm_page).post(confirm_form),
        )
        .route("/don-hang/{code}/gia-han", post(extend_form))
        .route(
            "/don-hang/{code}/yeu-cau/{id}/{action}",
            post(buyer_request_action),
        )
        .route("/don-hang/{code}/tai-khoan-hoan", post(refund_account_form))
        .route(
            "/quan-ly/yeu-cau/{id}/da-nhan-lai",
            post(seller_return_received),
        )
        .route("/quan-tri/yeu-cau", get(decisions_page))
        .route("/quan-tri/yeu-cau/{id}/quyet-dinh", post(decide_form))
        .route(
            "/quan-tri/hoan-tien/{code}/{action}",
            post(refund_payout_form),
        )
}

/// Forms that carry up to four photos.
pub fn upload_router() -> Router<AppState> {
    Router::new()
        .route(
            "/don-hang/{code}/yeu-cau",
            get(request_page).post(request_form),
        )
        .route("/quan-ly/yeu-cau/{id}/tra-loi", post(seller_answer_form))
}

pub fn api_routes(photos_limit: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(api_receipt))
        .routes(routes!(api_extend))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(api_open_request, api_requests))
                .layer(axum::extract::DefaultBodyLimit::max(photos_limit)),
        )
        .routes(routes!(api_answer))
        .routes(routes!(api_escalate))
        .routes(routes!(api_decision))
        .routes(routes!(api_refund_account))
}

// ---------------------------------------------------------------------------------------
// Proof

/// The order this browser proved (the look-up cookie, or the receipt link's token).
async fn proven(st: &AppState, jar: &CookieJar, code: &str) -> Result<OrderView, AppError> {
    let ids = super::lookup::remembered(st, jar);
    bp::prove(&st.db, &st.config, "", code, &Proof::Remembered(ids)).await
}

#[derive(Deserialize, Default)]
struct TokenQuery {
    #[serde(default)]
    t: String,
    #[serde(default)]
    ok: String,
}

#[derive(Template)]
#[template(path = "track.html")]
struct ProvePage {
    layout: Layout,
    code: String,
    phone: String,
    error: Option<String>,
}

struct StepRow {
    at: String,
    words: String,
}

struct RequestBox {
    id: i64,
    status: String,
    reason: String,
    text: String,
    amount: String,
    seller_text: String,
    decision: String,
    photos: Vec<String>,
    seller_photos: Vec<String>,
    may_accept_reply: bool,
    may_escalate: bool,
    awaiting_return: bool,
    return_tracking: String,
}

#[derive(Template)]
#[template(path = "buyer_order.html")]
struct BuyerOrderPage {
    layout: Layout,
    code: String,
    /// How far the order got (đặt → thanh toán → nhận → gửi → giao) and what it means.
    progress: Vec<super::lookup::Step>,
    progress_note: &'static str,
    /// The carrier's tracking page, when it has one.
    tracking_url: String,
    /// The carrier's statuses of the parcel, oldest first: (Hà Nội time, words).
    parcel_timeline: Vec<(String, String)>,
    shop_name: String,
    shop_url: String,
    phone: String,
    zalo: String,
    status: String,
    total: String,
    shipping: String,
    payment: String,
    deliver_to: String,
    lines: Vec<(String, Option<String>)>,
    steps: Vec<StepRow>,
    release: String,
    may_act: bool,
    may_extend: bool,
    requests: Vec<RequestBox>,
    /// Money owed back that waits for an account.
    refund_owed: String,
    payer_account: String,
    refund_account: String,
    refunds: Vec<(String, String, String, String)>,
    banks: Vec<(&'static str, &'static str)>,
    error: String,
    bank_bin: String,
    account_no: String,
    account_name: String,
}

fn buyer_release_words(r: &Release) -> String {
    use release::ReleaseState::*;
    match r.state {
        NotShipped => "Chợ Làng giữ tiền của bạn cho đến khi bạn nhận được hàng.".into(),
        Waiting => format!(
            "Chợ Làng đang giữ tiền. Nếu bạn không báo gì, tiền sẽ chuyển cho người bán ngày {}.",
            r.at.map(format_vn_date).unwrap_or_default()
        ),
        Frozen => "Bạn có yêu cầu đang xử lý: Chợ Làng giữ tiền cho đến khi có kết quả.".into(),
        Due => "Tiền đang được chuyển cho người bán.".into(),
        Released => "Tiền đã chuyển cho người bán.".into(),
        None => String::new(),
    }
}

/// Everything the buyer's page shows (with what a refused account form typed kept).
async fn buyer_page(
    st: &AppState,
    seed: &CsrfSeed,
    user: &Option<crate::accounts::User>,
    o: &OrderView,
    notice: Option<&str>,
    account_form: (&str, &str, &str, String),
) -> PageResult {
    let shop = crate::catalog::store::shop_by_id(&st.db, crate::catalog::ShopId(o.shop_id)).await?;
    let mut conn = st.db.pool.acquire().await?;
    let f = bp::facts(&mut conn, o.id).await?;
    drop(conn);
    let rel = release::release(&f, &st.config.protection.rules, now_ms());
    let mut steps: Vec<(i64, String)> = sqlx::query_as::<_, (i64, String, String)>(
        "SELECT at, from_status, to_status FROM order_events WHERE order_id = $1 ORDER BY id",
    )
    .bind(o.id)
    .fetch_all(&st.db.pool)
    .await?
    .into_iter()
    .filter_map(|(at, _, to)| OrderStatus::parse(&to).map(|s| (at, s.label().to_string())))
    .collect();
    steps.insert(0, (o.created_at, "Đặt hàng".into()));
    for s in bp::steps_of_order(&st.db, o.id).await? {
        steps.push((s.at, s.words));
    }
    steps.sort_by_key(|(at, _)| *at);
    let reqs = bp::requests_of_order(&st.db, o.id).await?;
    let requests = reqs
        .iter()
        .map(|r| RequestBox {
            id: r.id,
            status: r.status_label.clone(),
            reason: r.reason_label.clone(),
            text: r.text.clone(),
            amount: format_vnd(r.amount_vnd),
            seller_text: r.seller_text.clone().unwrap_or_default(),
            decision: r
                .outcome
                .map(|oc| {
                    format!(
                        "{} — {}",
                        oc.label(),
                        r.decision_reason.clone().unwrap_or_default()
                    )
                })
                .unwrap_or_default(),
            photos: r.buyer_photos.clone(),
            seller_photos: r.seller_photos.clone(),
            may_accept_reply: r.status == RequestStatus::Replied,
            may_escalate: r.status == RequestStatus::Replied
                || (r.status == RequestStatus::Open && now_ms() >= r.answer_due_at),
            awaiting_return: r.status == RequestStatus::AwaitingReturn,
            return_tracking: r.return_tracking.clone().unwrap_or_default(),
        })
        .collect();
    let payment = crate::payments::store::payment_of_checkout(&st.db, o.checkout_id).await?;
    let refundable = crate::payments::refunds::refundable(&st.db, payment.id).await?;
    let mut conn = st.db.pool.acquire().await?;
    let flying = crate::payments::refunds::in_flight(&mut conn, payment.id).await?;
    drop(conn);
    let owed = (refundable.for_order(&o.code) + refundable.payment_refundable_vnd)
        .min(refundable.left_vnd())
        - flying;
    let acct: Option<(String, String)> = sqlx::query_as(
        "SELECT refund_bank_bin, refund_account_no FROM checkouts WHERE id = $1 AND refund_bank_bin IS NOT NULL",
    )
    .bind(o.checkout_id)
    .fetch_optional(&st.db.pool)
    .await?;
    let refunds = crate::refund_payouts::of_order(&st.db, o.id)
        .await?
        .into_iter()
        .map(|r| {
            (
                r.code,
                format_vnd(r.amount_vnd),
                r.account,
                r.status.label().to_string(),
            )
        })
        .collect();
    let payer = bp::payer_account(&st.db, o.checkout_id).await?;
    let checkout = orders::checkout_by_id(&st.db, o.checkout_id).await?;
    let zalo = shop
        .zalo_phone
        .clone()
        .unwrap_or_else(|| shop.phone.clone());
    let (bin, no, name, error) = account_form;
    let (progress, progress_note) = super::lookup::steps(o.status);
    let parcel_timeline = crate::shipments::store::of_order(&st.db, o.id)
        .await?
        .map(|p| {
            p.timeline
                .into_iter()
                .map(|(at, words)| (crate::domain::format_vn_time(at), words))
                .collect()
        })
        .unwrap_or_default();
    render(BuyerOrderPage {
        parcel_timeline,
        tracking_url: o.tracking_url().unwrap_or_default(),
        progress,
        progress_note,
        layout: Layout::new(st, seed, user, format!("Đơn hàng {}", o.code)).with_notice(notice),
        code: o.code.clone(),
        shop_name: o.shop_name.clone(),
        shop_url: format!("/shop/{}", o.shop_slug),
        phone: shop.phone.clone(),
        zalo,
        status: o.status.label().to_string(),
        total: o.total_words(),
        shipping: o.shipping_line(),
        payment: format!(
            "{}: {}",
            payment.code,
            super::cart::status_label(payment.status)
        ),
        deliver_to: format!("{}, {}", checkout.buyer_name, checkout.buyer_address),
        lines: o
            .lines
            .iter()
            .map(|l| {
                (
                    l.describe(),
                    l.batch_code.as_ref().map(|c| format!("/truy-xuat/{c}")),
                )
            })
            .collect(),
        steps: steps
            .into_iter()
            .map(|(at, words)| StepRow {
                at: format_vn_time(at),
                words,
            })
            .collect(),
        release: buyer_release_words(&rel),
        may_act: release::buyer_may_act(&f) && !f.request_open,
        may_extend: release::may_extend(&f),
        requests,
        refund_owed: if owed > 0 {
            format_vnd(owed)
        } else {
            String::new()
        },
        payer_account: payer
            .map(|a| crate::payouts::masked_account(&a.bank_bin, &a.account_no))
            .unwrap_or_default(),
        refund_account: acct
            .map(|(b, n)| crate::payouts::masked_account(&b, &n))
            .unwrap_or_default(),
        refunds,
        banks: crate::payments::banks::BANKS
            .iter()
            .map(|b| (b.bin, b.short_name))
            .collect(),
        error,
        bank_bin: bin.to_string(),
        account_no: no.to_string(),
        account_name: name.to_string(),
    })
}

fn notice_for(ok: &str) -> Option<&'static str> {
    Some(match ok {
        "received" => "Cảm ơn bạn! Đã ghi nhận bạn nhận được hàng; tiền đã chuyển cho người bán.",
        "extended" => "Đã gia hạn thêm 3 ngày. Hãy gọi người bán nếu hàng chưa tới.",
        "request" => "Đã gửi yêu cầu. Người bán sẽ trả lời; Chợ Làng giữ tiền cho đến khi xong.",
        "account" => "Đã lưu tài khoản nhận tiền hoàn.",
        "done" => "Đã cập nhật yêu cầu.",
        _ => return None,
    })
}

async fn order_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    jar: CookieJar,
    Path(code): Path<String>,
    Query(q): Query<TokenQuery>,
) -> PageResult {
    // The receipt's signed link: remembered for this browser session, then a clean URL.
    // A shop's order (`CODE-1`) or the whole purchase (`CODE`, the receipt's link).
    if !q.t.is_empty() {
        if let Ok(o) = bp::prove(&st.db, &st.config, "", &code, &Proof::Token(q.t.clone())).await {
            let jar = super::lookup::remember(&st, jar, o.checkout_id);
            return Ok((jar, see_other(&format!("/don-hang/{}", o.code))?).into_response());
        }
        let token = Proof::Token(q.t.clone());
        return match bp::prove_purchase(&st.db, &st.config, "", &code, &token).await {
            Ok(id) => {
                let jar = super::lookup::remember(&st, jar, id);
                let p = crate::payments::store::payment_of_checkout(&st.db, id).await?;
                Ok((jar, see_other(&format!("/don-hang/{}", p.code))?).into_response())
            }
            Err(_) => prove_page(&st, &seed, &user, &code, "", None),
        };
    }
    match proven(&st, &jar, &code).await {
        Ok(o) => {
            buyer_page(
                &st,
                &seed,
                &user,
                &o,
                notice_for(&q.ok),
                ("", "", "", String::new()),
            )
            .await
        }
        Err(_) => {
            // The code buyers see most is the purchase's (the payment's, in the transfer):
            // its page lists each shop's order, or is the order's page when there is one.
            if orders::order_by_code(&st.db, &code).await.is_err() {
                let remembered = Proof::Remembered(super::lookup::remembered(&st, &jar));
                if let Ok(id) = bp::prove_purchase(&st.db, &st.config, "", &code, &remembered).await
                {
                    return super::lookup::purchase_page(&st, &seed, &user, id).await;
                }
            }
            prove_page(&st, &seed, &user, &code, "", None)
        }
    }
}

fn prove_page(
    st: &AppState,
    seed: &CsrfSeed,
    user: &Option<crate::accounts::User>,
    code: &str,
    phone: &str,
    error: Option<(String, axum::http::StatusCode)>,
) -> PageResult {
    let code: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    let status = error.as_ref().map(|e| e.1);
    let mut resp = render(ProvePage {
        layout: Layout::new(st, seed, user, format!("Đơn hàng {code}")),
        code,
        phone: phone.chars().take(20).collect(),
        error: error.map(|e| e.0),
    })?;
    if let Some(s) = status {
        *resp.status_mut() = s;
    }
    Ok(resp)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ProveForm {
    csrf: String,
    phone: String,
}

/// The phone used at checkout proves the buyer (tries counted per order and address, like
/// failed logins; a wrong phone and an unknown code read the same).
async fn prove_form(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    client: ClientIp,
    jar: CookieJar,
    Path(code): Path<String>,
    axum::Form(f): axum::Form<ProveForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let phone = Proof::Phone(f.phone.clone());
    // A shop's order, or (any other code) the whole purchase.
    let proved = if orders::order_by_code(&st.db, &code).await.is_ok() {
        bp::prove(&st.db, &st.config, &client.key(), &code, &phone)
            .await
            .map(|o| (o.checkout_id, o.code))
    } else {
        match bp::prove_purchase(&st.db, &st.config, &client.key(), &code, &phone).await {
            Ok(id) => crate::payments::store::payment_of_checkout(&st.db, id)
                .await
                .map(|p| (id, p.code)),
            Err(e) => Err(e),
        }
    };
    match proved {
        Ok((checkout, clean)) => {
            let jar = super::lookup::remember(&st, jar, checkout);
            Ok((jar, see_other(&format!("/don-hang/{clean}"))?).into_response())
        }
        Err(e @ AppError::TooManyAttempts(_)) => {
            let status = e.status();
            prove_page(
                &st,
                &seed,
                &user,
                &code,
                &f.phone,
                Some((e.to_string(), status)),
            )
        }
        Err(AppError::NotFound) => prove_page(
            &st,
            &seed,
            &user,
            &code,
            &f.phone,
            Some((
                "Số điện thoại không khớp với đơn hàng".into(),
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            )),
        ),
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "buyer_confirm.html")]
struct ConfirmPage {
    layout: Layout,
    code: String,
    shop_name: String,
    total: String,
}

/// The confirmation step before "Đã nhận được hàng".
async fn confirm_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    jar: CookieJar,
    Path(code): Path<String>,
) -> PageResult {
    let o = proven(&st, &jar, &code).await?;
    render(ConfirmPage {
        layout: Layout::new(&st, &seed, &user, "Xác nhận đã nhận hàng"),
        code: o.code.clone(),
        shop_name: o.shop_name.clone(),
        total: o.total_words(),
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CsrfOnly {
    csrf: String,
    tracking: String,
}

/// A refused step is shown on the order page with one plain sentence.
async fn with_error(
    st: &AppState,
    seed: &CsrfSeed,
    user: &Option<crate::accounts::User>,
    o: &OrderView,
    e: AppError,
) -> PageResult {
    let status = e.status();
    let msg = match &e {
        AppError::Validation(f) => f.0.values().cloned().collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    };
    let mut resp = buyer_page(st, seed, user, o, None, ("", "", "", msg)).await?;
    *resp.status_mut() = status;
    Ok(resp)
}

async fn confirm_form(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    jar: CookieJar,
    Path(code): Path<String>,
    axum::Form(f): axum::Form<CsrfOnly>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let o = proven(&st, &jar, &code).await?;
    match bp::confirm_receipt(&st.db, &o).await {
        Ok(()) => see_other(&format!("/don-hang/{}?ok=received", o.code)),
        Err(e) => with_error(&st, &seed, &user, &o, e).await,
    }
}

async fn extend_form(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    jar: CookieJar,
    Path(code): Path<String>,
    axum::Form(f): axum::Form<CsrfOnly>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let o = proven(&st, &jar, &code).await?;
    match bp::extend(&st.db, &o).await {
        Ok(()) => see_other(&format!("/don-hang/{}?ok=extended", o.code)),
        Err(e) => with_error(&st, &seed, &user, &o, e).await,
    }
}

async fn buyer_request_action(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    jar: CookieJar,
    Path((code, id, action)): Path<(String, i64, String)>,
    axum::Form(f): axum::Form<CsrfOnly>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let o = proven(&st, &jar, &code).await?;
    let r = match action.as_str() {
        "dong-y" => bp::accept_reply(&st.db, &o, id).await,
        "nho-quyet-dinh" => bp::escalate(&st.db, &o, id).await,
        "gui-tra" => bp::return_shipped(&st.db, &st.config, &o, id, &f.tracking).await,
        _ => Err(AppError::NotFound),
    };
    match r {
        Ok(()) => see_other(&format!("/don-hang/{}?ok=done", o.code)),
        Err(e) => with_error(&st, &seed, &user, &o, e).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AccountForm {
    csrf: String,
    /// "payer": the account the transfer came from; else the typed one.
    source: String,
    bank_bin: String,
    account_no: String,
    account_name: String,
}

async fn refund_account_form(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    jar: CookieJar,
    Path(code): Path<String>,
    axum::Form(f): axum::Form<AccountForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let o = proven(&st, &jar, &code).await?;
    let account = if f.source == "payer" {
        bp::payer_account(&st.db, o.checkout_id)
            .await?
            .ok_or_else(|| AppError::field("account_no", "Không có tài khoản đã chuyển"))
    } else {
        PayoutAccount::parse(&f.bank_bin, &f.account_no, &f.account_name)
    };
    let r = match account {
        Ok(a) => bp::set_refund_account(&st.db, &st.config, &o, &a).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(()) => see_other(&format!("/don-hang/{}?ok=account", o.code)),
        Err(e) => {
            let status = e.status();
            let msg = match &e {
                AppError::Validation(f) => f.0.values().cloned().collect::<Vec<_>>().join(" "),
                other => other.to_string(),
            };
            let mut resp = buyer_page(
                &st,
                &seed,
                &user,
                &o,
                None,
                (&f.bank_bin, &f.account_no, &f.account_name, msg),
            )
            .await?;
            *resp.status_mut() = status;
            Ok(resp)
        }
    }
}

// ---------------------------------------------------------------------------------------
// The request form (multipart: up to four photos)

#[derive(Template)]
#[template(path = "buyer_request.html")]
struct RequestPage {
    layout: Layout,
    code: String,
    total: String,
    reasons: Vec<(&'static str, &'static str)>,
    reason: String,
    text: String,
    amount: String,
    errors: std::collections::BTreeMap<String, String>,
}

fn reasons() -> Vec<(&'static str, &'static str)> {
    Reason::ALL
        .iter()
        .map(|r| (r.as_str(), r.label()))
        .collect()
}

async fn request_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    jar: CookieJar,
    Path(code): Path<String>,
) -> PageResult {
    let o = proven(&st, &jar, &code).await?;
    render(RequestPage {
        layout: Layout::new(&st, &seed, &user, "Có vấn đề với đơn hàng"),
        code: o.code.clone(),
        total: o.total_words(),
        reasons: reasons(),
        reason: String::new(),
        text: String::new(),
        amount: String::new(),
        errors: Default::default(),
    })
}

/// The fields of a multipart form with photos.
#[derive(Default)]
struct PhotoForm {
    fields: std::collections::HashMap<String, String>,
    photos: Vec<Vec<u8>>,
}

async fn read_form(form: &mut Multipart) -> Result<PhotoForm, AppError> {
    let mut out = PhotoForm::default();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|_| AppError::BadRequest("Biểu mẫu không hợp lệ hoặc ảnh quá lớn".into()))?
    {
        let name = field.name().unwrap_or("").to_string();
        if name == "photo" || name == "photos" {
            let bytes = field.bytes().await.map_err(|_| AppError::PayloadTooLarge)?;
            if !bytes.is_empty() {
                if out.photos.len() >= bp::MAX_PHOTOS {
                    return Err(AppError::field("photo", "Tối đa 4 ảnh"));
                }
                out.photos.push(bytes.to_vec());
            }
        } else if out.fields.len() < 20 {
            let text = field
                .text()
                .await
                .map_err(|_| AppError::BadRequest("Biểu mẫu không hợp lệ".into()))?;
            out.fields.insert(name, text);
        }
    }
    Ok(out)
}

/// Check and store the photos (the bounded photo pipeline); the files are removed again if
/// what they belong to is refused.
async fn save_photos(st: &AppState, photos: Vec<Vec<u8>>) -> Result<Vec<bp::SavedPhoto>, AppError> {
    let mut saved = Vec::new();
    let max = st.config.max_upload_bytes;
    let dir = st.config.photos_dir();
    for bytes in photos {
        let img = {
            let _turn = crate::catalog::photos::DECODING.turn("xử lý ảnh").await?;
            tokio::task::spawn_blocking(move || crate::catalog::photos::process(&bytes, max))
                .await
                .map_err(|e| AppError::Internal(e.into()))?
        };
        match img {
            Ok(img) => saved.push(crate::catalog::photos::save(&dir, &img).await?),
            Err(e) => {
                remove_photos(st, &saved).await;
                return Err(e);
            }
        }
    }
    Ok(saved)
}

async fn remove_photos(st: &AppState, saved: &[bp::SavedPhoto]) {
    let dir = st.config.photos_dir();
    for (full, thumb) in saved {
        let _ = tokio::fs::remove_file(dir.join(full)).await;
        let _ = tokio::fs::remove_file(dir.join(thumb)).await;
    }
}

/// Money as people type it ("60.000", "60,000", "60000", "60k"); None when empty.
fn parse_amount(s: &str) -> Result<Option<i64>, AppError> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    crate::domain::money::parse_amount(s)
        .ok()
        .filter(|a| *a > 0)
        .map(Some)
        .ok_or_else(|| AppError::field("amount_vnd", "Số tiền chưa đúng (ví dụ 60.000)"))
}

/// Open a request with its photos; the photos' files go again if it is refused.
async fn open_with_photos(st: &AppState, o: &OrderView, f: PhotoForm) -> Result<i64, AppError> {
    let get = |k: &str| f.fields.get(k).cloned().unwrap_or_default();
    let amount = parse_amount(&get("amount_vnd"))?;
    let req = NewRequest::parse(&get("reason"), &get("text"), amount)?;
    let saved = save_photos(st, f.photos).await?;
    match bp::open_request(&st.db, &st.config, o, &req, &saved).await {
        Ok(id) => Ok(id),
        Err(e) => {
            remove_photos(st, &saved).await;
            Err(e)
        }
    }
}

async fn request_form(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    jar: CookieJar,
    Path(code): Path<String>,
    mut form: Multipart,
) -> PageResult {
    let f = read_form(&mut form).await?;
    verify_csrf(&st, &seed, f.fields.get("csrf").map_or("", |s| s.as_str()))?;
    let o = proven(&st, &jar, &code).await?;
    let typed = (
        f.fields.get("reason").cloned().unwrap_or_default(),
        f.fields.get("text").cloned().unwrap_or_default(),
        f.fields.get("amount_vnd").cloned().unwrap_or_default(),
    );
    match open_with_photos(&st, &o, f).await {
        Ok(_) => see_other(&format!("/don-hang/{}?ok=request", o.code)),
        Err(e) => {
            let status = e.status();
            let errors = match e {
                AppError::Validation(f) => f.0,
                other => [("form".to_string(), other.to_string())]
                    .into_iter()
                    .collect(),
            };
            let mut resp = render(RequestPage {
                layout: Layout::new(&st, &seed, &user, "Có vấn đề với đơn hàng"),
                code: o.code.clone(),
                total: o.total_words(),
                reasons: reasons(),
                reason: typed.0,
                text: typed.1,
                amount: typed.2,
                errors,
            })?;
            *resp.status_mut() = status;
            Ok(resp)
        }
    }
}

// ---------------------------------------------------------------------------------------
// The seller's answers (on the seller's order page)

async fn seller_answer_form(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
    mut form: Multipart,
) -> PageResult {
    let f = read_form(&mut form).await?;
    verify_csrf(&st, &seed, f.fields.get("csrf").map_or("", |s| s.as_str()))?;
    let answer = match f.fields.get("answer").map(|s| s.as_str()) {
        Some("accept") => Answer::Accept { full: false },
        Some("accept_full") => Answer::Accept { full: true },
        _ => Answer::Reply {
            text: f.fields.get("text").cloned().unwrap_or_default(),
        },
    };
    let order = bp::order_of_request(&st.db, id).await?;
    // Only the shop's own people get their photos decoded and stored.
    let shop =
        crate::catalog::store::shop_by_id(&st.db, crate::catalog::ShopId(order.shop_id)).await?;
    crate::catalog::store::authorize_shop(&user, &shop)?;
    let saved = match &answer {
        Answer::Reply { .. } => save_photos(&st, f.photos).await?,
        _ => Vec::new(),
    };
    let r = bp::answer(&st.db, &st.config, &user, id, &answer, &saved).await;
    if r.is_err() {
        remove_photos(&st, &saved).await;
    }
    match r {
        Ok(()) => see_other(&format!(
            "/quan-ly/don-hang?ok=moved&tab=tat-ca#don-{}",
            order.code
        )),
        Err(e @ (AppError::Validation(_) | AppError::Conflict(_))) => {
            super::orders::orders_page_with_error(&st, &seed, user, e).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn seller_return_received(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
    axum::Form(f): axum::Form<CsrfOnly>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    match bp::return_received(&st.db, &st.config, &user, id).await {
        Ok(()) => see_other("/quan-ly/don-hang?ok=moved&tab=tat-ca"),
        Err(e @ AppError::Conflict(_)) => {
            super::orders::orders_page_with_error(&st, &seed, user, e).await
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------
// Decisions (village moderators for their village, admins everywhere) and refund transfers

struct DecisionRow {
    id: i64,
    order: String,
    shop: String,
    total: String,
    reason: String,
    text: String,
    amount: String,
    seller_text: String,
    photos: Vec<String>,
    seller_photos: Vec<String>,
    steps: Vec<StepRow>,
    error: String,
    typed_reason: String,
}

struct RefundRow {
    code: String,
    order: String,
    amount: String,
    bank: String,
    method: String,
    status: String,
    qr_svg: String,
}

#[derive(Template)]
#[template(path = "decisions.html")]
struct DecisionsPage {
    layout: Layout,
    requests: Vec<DecisionRow>,
    refunds: Vec<RefundRow>,
    is_admin: bool,
}

async fn decisions(
    st: &AppState,
    seed: &CsrfSeed,
    user: crate::accounts::User,
    refused: Option<(i64, String, String)>,
) -> PageResult {
    let list = bp::escalated_for(&st.db, &user).await?;
    if list.is_empty() && !user.is_admin() && user.role != crate::accounts::Role::Moderator {
        return Err(AppError::Forbidden.into());
    }
    let mut requests = Vec::new();
    for (r, o) in list {
        let (error, typed_reason) = match &refused {
            Some((id, e, t)) if *id == r.id => (e.clone(), t.clone()),
            _ => (String::new(), String::new()),
        };
        requests.push(DecisionRow {
            id: r.id,
            order: o.code.clone(),
            shop: o.shop_name.clone(),
            total: o.total_words(),
            reason: r.reason_label.clone(),
            text: r.text.clone(),
            amount: format_vnd(r.amount_vnd),
            seller_text: r.seller_text.clone().unwrap_or_default(),
            photos: r.buyer_photos.clone(),
            seller_photos: r.seller_photos.clone(),
            steps: bp::steps_of_order(&st.db, o.id)
                .await?
                .into_iter()
                .map(|s| StepRow {
                    at: format_vn_time(s.at),
                    words: s.words,
                })
                .collect(),
            error,
            typed_reason,
        });
    }
    let refunds = if user.is_admin() {
        crate::refund_payouts::open(&st.db)
            .await?
            .into_iter()
            .map(|r| RefundRow {
                qr_svg: r
                    .vietqr_payload
                    .as_ref()
                    .and_then(|p| qrcode::QrCode::new(p.as_bytes()).ok())
                    .map(|q| {
                        q.render::<qrcode::render::svg::Color>()
                            .min_dimensions(180, 180)
                            .build()
                    })
                    .unwrap_or_default(),
                code: r.code,
                order: r.order_code.unwrap_or(r.payment_code),
                amount: format_vnd(r.amount_vnd),
                bank: format!("{} · {} · {}", r.bank_name, r.account_no, r.account_name),
                method: if r.method == "payos" {
                    "payOS (tự động)".into()
                } else {
                    "Chuyển từ ứng dụng ngân hàng".into()
                },
                status: r.status.label().to_string(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let status = if refused.is_some() {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    } else {
        axum::http::StatusCode::OK
    };
    let is_admin = user.is_admin();
    let mut resp = render(DecisionsPage {
        layout: Layout::new(st, seed, &Some(user), "Yêu cầu trả hàng / hoàn tiền"),
        requests,
        refunds,
        is_admin,
    })?;
    *resp.status_mut() = status;
    Ok(resp)
}

async fn decisions_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
) -> PageResult {
    decisions(&st, &seed, user, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DecideForm {
    csrf: String,
    outcome: String,
    amount_vnd: String,
    reason: String,
    return_first: String,
}

async fn decide_form(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
    axum::Form(f): axum::Form<DecideForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let r = match parse_amount(&f.amount_vnd)
        .and_then(|a| Decision::parse(&f.outcome, a, &f.reason, f.return_first == "1"))
    {
        Ok(d) => bp::decide(&st.db, &st.config, &user, id, &d).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(()) => see_other("/quan-tri/yeu-cau"),
        Err(e @ (AppError::Validation(_) | AppError::Conflict(_))) => {
            let msg = match &e {
                AppError::Validation(f) => f.0.values().cloned().collect::<Vec<_>>().join(" "),
                other => other.to_string(),
            };
            decisions(&st, &seed, user, Some((id, msg, f.reason.clone()))).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RefundPayoutForm {
    csrf: String,
    reference: String,
    reason: String,
}

async fn refund_payout_form(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path((code, action)): Path<(String, String)>,
    axum::Form(f): axum::Form<RefundPayoutForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let r = match action.as_str() {
        "da-chuyen" => {
            crate::refund_payouts::admin_mark_paid(&st.db, &user, &code, &f.reference).await
        }
        "khong-thanh-cong" => {
            crate::refund_payouts::admin_mark_failed(&st.db, &user, &code, &f.reason).await
        }
        _ => Err(AppError::NotFound),
    };
    r?;
    see_other("/quan-tri/yeu-cau")
}

// ---------------------------------------------------------------------------------------
// API

/// The buyer's proof: the checkout phone, or the token of the receipt email's link.
#[derive(Deserialize, Default, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
struct BuyerProof {
    phone: Option<String>,
    token: Option<String>,
}

impl BuyerProof {
    fn proof(&self) -> Result<Proof, AppError> {
        match (&self.token, &self.phone) {
            (Some(t), _) if !t.is_empty() => Ok(Proof::Token(t.clone())),
            (_, Some(p)) if !p.is_empty() => Ok(Proof::Phone(p.clone())),
            _ => Err(AppError::NotFound),
        }
    }
}

async fn api_buyer(
    st: &AppState,
    client: &ClientIp,
    code: &str,
    p: &BuyerProof,
) -> Result<OrderView, AppError> {
    bp::prove(&st.db, &st.config, &client.key(), code, &p.proof()?).await
}

/// An order with its release block, as the buyer and the seller see it.
#[derive(Serialize, ToSchema)]
struct ProtectedOrderOut {
    order: super::json::OrderJson,
    release: Release,
}

async fn order_out(st: &AppState, code: &str) -> Result<Json<ProtectedOrderOut>, AppError> {
    let order = orders::order_by_code(&st.db, code).await?;
    let release = bp::release_of(&st.db, &st.config, order.id).await?;
    Ok(Json(ProtectedOrderOut {
        order: order.into(),
        release,
    }))
}

/// `POST /orders/{code}/receipt`: the buyer confirms receipt; the money is released at once.
#[utoipa::path(post, path = "/orders/{code}/receipt", tag = "buyer protection",
    params(super::openapi::CodeParam), request_body = BuyerProof,
    responses((status = 200, body = ProtectedOrderOut),
        (status = 404, description = "No such order for this proof (never says which)"),
        (status = 409), (status = 422), (status = 429)))]
async fn api_receipt(
    State(st): State<AppState>,
    client: ClientIp,
    ApiPath(code): ApiPath<String>,
    ApiJson(b): ApiJson<BuyerProof>,
) -> Result<Json<ProtectedOrderOut>, AppError> {
    let o = api_buyer(&st, &client, &code, &b).await?;
    bp::confirm_receipt(&st.db, &o).await?;
    order_out(&st, &o.code).await
}

/// `POST /orders/{code}/extend`: "Chưa nhận được hàng" — the window runs 3 more days, once.
#[utoipa::path(post, path = "/orders/{code}/extend", tag = "buyer protection",
    params(super::openapi::CodeParam), request_body = BuyerProof,
    responses((status = 200, body = ProtectedOrderOut), (status = 404), (status = 409),
        (status = 422), (status = 429)))]
async fn api_extend(
    State(st): State<AppState>,
    client: ClientIp,
    ApiPath(code): ApiPath<String>,
    ApiJson(b): ApiJson<BuyerProof>,
) -> Result<Json<ProtectedOrderOut>, AppError> {
    let o = api_buyer(&st, &client, &code, &b).await?;
    bp::extend(&st.db, &o).await?;
    order_out(&st, &o.code).await
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(default)]
struct RequestBody {
    phone: Option<String>,
    token: Option<String>,
    /// not_received | damaged | wrong_item | missing_items | not_as_described
    reason: String,
    text: String,
    /// Whole đồng; absent: the whole order.
    amount_vnd: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct RequestOut {
    request: bp::RequestView,
    release: Release,
}

/// `POST /orders/{code}/requests`: a return/refund request (JSON, or multipart with up to
/// four `photo` parts and the same fields); the order's release freezes.
#[utoipa::path(post, path = "/orders/{code}/requests", tag = "buyer protection",
    params(super::openapi::CodeParam), request_body = RequestBody,
    responses((status = 201, body = RequestOut), (status = 404), (status = 409),
        (status = 413), (status = 422), (status = 429)))]
async fn api_open_request(
    State(st): State<AppState>,
    client: ClientIp,
    ApiPath(code): ApiPath<String>,
    req: axum::extract::Request,
) -> Result<(axum::http::StatusCode, Json<RequestOut>), AppError> {
    let multipart = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let id = if multipart {
        let mut form = <Multipart as axum::extract::FromRequest<AppState>>::from_request(req, &st)
            .await
            .map_err(|_| AppError::BadRequest("Biểu mẫu không hợp lệ".into()))?;
        let f = read_form(&mut form).await?;
        let proof = BuyerProof {
            phone: f.fields.get("phone").cloned(),
            token: f.fields.get("token").cloned(),
        };
        let o = api_buyer(&st, &client, &code, &proof).await?;
        open_with_photos(&st, &o, f).await?
    } else {
        let ApiJson(b) =
            <ApiJson<RequestBody> as axum::extract::FromRequest<AppState>>::from_request(req, &st)
                .await?;
        let proof = BuyerProof {
            phone: b.phone.clone(),
            token: b.token.clone(),
        };
        let o = api_buyer(&st, &client, &code, &proof).await?;
        let r = NewRequest::parse(&b.reason, &b.text, b.amount_vnd)?;
        bp::open_request(&st.db, &st.config, &o, &r, &[]).await?
    };
    Ok((
        axum::http::StatusCode::CREATED,
        Json(request_out(&st, id).await?),
    ))
}

async fn request_out(st: &AppState, id: i64) -> Result<RequestOut, AppError> {
    let o = bp::order_of_request(&st.db, id).await?;
    let request = bp::requests_of_order(&st.db, o.id)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or(AppError::NotFound)?;
    let release = bp::release_of(&st.db, &st.config, o.id).await?;
    Ok(RequestOut { request, release })
}

#[derive(Serialize, ToSchema)]
struct RequestsOut {
    requests: Vec<bp::RequestView>,
    steps: Vec<bp::StepView>,
    release: Release,
}

/// `GET /orders/{code}/requests`: the order's requests and steps — for the buyer with proof
/// (`phone` or `token` in the query), the shop, the village's moderators and admins.
#[utoipa::path(get, path = "/orders/{code}/requests", tag = "buyer protection",
    params(super::openapi::CodeParam, BuyerProof),
    responses((status = 200, body = RequestsOut), (status = 404), (status = 429)))]
async fn api_requests(
    State(st): State<AppState>,
    client: ClientIp,
    MaybeUser(user): MaybeUser,
    ApiPath(code): ApiPath<String>,
    ApiQuery(q): ApiQuery<BuyerProof>,
) -> Result<Json<RequestsOut>, AppError> {
    let o = match &user {
        Some(u) => {
            let o = orders::order_by_code(&st.db, &code)
                .await
                .map_err(|_| AppError::NotFound)?;
            let shop = crate::catalog::store::shop_by_id(&st.db, crate::catalog::ShopId(o.shop_id))
                .await?;
            let mine = crate::catalog::store::authorize_shop(u, &shop).is_ok();
            if !mine && !bp::may_decide(&st.db, u, &o).await? {
                return Err(AppError::NotFound);
            }
            o
        }
        None => api_buyer(&st, &client, &code, &q).await?,
    };
    Ok(Json(RequestsOut {
        requests: bp::requests_of_order(&st.db, o.id).await?,
        steps: bp::steps_of_order(&st.db, o.id).await?,
        release: bp::release_of(&st.db, &st.config, o.id).await?,
    }))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(default)]
struct AnswerBody {
    /// accept (what the buyer asked) | accept_full (the whole order) | reply
    answer: String,
    text: String,
}

/// `POST /requests/{id}/answer`: the seller accepts (part or all) or replies.
#[utoipa::path(post, path = "/requests/{id}/answer", tag = "buyer protection",
    params(super::openapi::IdParam), security(("bearer" = [])), request_body = AnswerBody,
    responses((status = 200, body = RequestOut), (status = 403), (status = 404),
        (status = 409), (status = 422)))]
async fn api_answer(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<AnswerBody>,
) -> Result<Json<RequestOut>, AppError> {
    let a = match b.answer.as_str() {
        "accept" => Answer::Accept { full: false },
        "accept_full" => Answer::Accept { full: true },
        "reply" => Answer::Reply { text: b.text },
        _ => {
            return Err(AppError::field(
                "answer",
                "Chọn accept, accept_full hoặc reply",
            ));
        }
    };
    bp::answer(&st.db, &st.config, &user, id, &a, &[]).await?;
    Ok(Json(request_out(&st, id).await?))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(default)]
struct EscalateBody {
    phone: Option<String>,
    token: Option<String>,
    /// accept_reply: close the request accepting the seller's reply; else escalate.
    action: Option<String>,
    /// With `return_sent`: the tracking code of the goods sent back.
    tracking: Option<String>,
}

/// `POST /requests/{id}/escalate`: the buyer asks the moderator and the platform to decide
/// (or, with `action`: `accept_reply`, closes it; `return_sent` with `tracking`).
#[utoipa::path(post, path = "/requests/{id}/escalate", tag = "buyer protection",
    params(super::openapi::IdParam), request_body = EscalateBody,
    responses((status = 200, body = RequestOut), (status = 404), (status = 409),
        (status = 422), (status = 429)))]
async fn api_escalate(
    State(st): State<AppState>,
    client: ClientIp,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<EscalateBody>,
) -> Result<Json<RequestOut>, AppError> {
    let code = bp::order_of_request(&st.db, id)
        .await
        .map_err(|_| AppError::NotFound)?
        .code;
    let proof = BuyerProof {
        phone: b.phone.clone(),
        token: b.token.clone(),
    };
    let o = api_buyer(&st, &client, &code, &proof).await?;
    match b.action.as_deref() {
        Some("accept_reply") => bp::accept_reply(&st.db, &o, id).await?,
        Some("return_sent") => {
            bp::return_shipped(
                &st.db,
                &st.config,
                &o,
                id,
                b.tracking.as_deref().unwrap_or(""),
            )
            .await?
        }
        _ => bp::escalate(&st.db, &o, id).await?,
    }
    Ok(Json(request_out(&st, id).await?))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(default)]
struct DecisionBody {
    /// refund | partial | release
    outcome: String,
    amount_vnd: Option<i64>,
    /// Shown to both sides; at least 15 characters.
    reason: String,
    /// The buyer sends the goods back first.
    return_first: bool,
}

/// `POST /requests/{id}/decision`: the village moderator (their village) or an admin decides.
#[utoipa::path(post, path = "/requests/{id}/decision", tag = "buyer protection",
    params(super::openapi::IdParam), security(("bearer" = [])), request_body = DecisionBody,
    responses((status = 200, body = RequestOut), (status = 403), (status = 404),
        (status = 409), (status = 422)))]
async fn api_decision(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<DecisionBody>,
) -> Result<Json<RequestOut>, AppError> {
    let d = Decision::parse(&b.outcome, b.amount_vnd, &b.reason, b.return_first)?;
    bp::decide(&st.db, &st.config, &user, id, &d).await?;
    Ok(Json(request_out(&st, id).await?))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(default)]
struct RefundAccountBody {
    phone: Option<String>,
    token: Option<String>,
    /// "payer": the account the transfer came from (as the bank feed reported it).
    source: Option<String>,
    bank_bin: String,
    account_no: String,
    account_name: String,
}

#[derive(Serialize, ToSchema)]
struct RefundAccountOut {
    account: String,
    refunds: Vec<crate::refund_payouts::RefundPayoutView>,
}

/// `PUT /requests/{id}/refund-account`: where the buyer's refunds go; whatever is owed is
/// sent at once.
#[utoipa::path(put, path = "/requests/{id}/refund-account", tag = "buyer protection",
    params(super::openapi::IdParam), request_body = RefundAccountBody,
    responses((status = 200, body = RefundAccountOut), (status = 404), (status = 409),
        (status = 422), (status = 429)))]
async fn api_refund_account(
    State(st): State<AppState>,
    client: ClientIp,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<RefundAccountBody>,
) -> Result<Json<RefundAccountOut>, AppError> {
    let code = bp::order_of_request(&st.db, id)
        .await
        .map_err(|_| AppError::NotFound)?
        .code;
    let proof = BuyerProof {
        phone: b.phone.clone(),
        token: b.token.clone(),
    };
    let o = api_buyer(&st, &client, &code, &proof).await?;
    let account = if b.source.as_deref() == Some("payer") {
        bp::payer_account(&st.db, o.checkout_id)
            .await?
            .ok_or_else(|| AppError::field("source", "Không có tài khoản đã chuyển"))?
    } else {
        PayoutAccount::parse(&b.bank_bin, &b.account_no, &b.account_name)?
    };
    bp::set_refund_account(&st.db, &st.config, &o, &account).await?;
    Ok(Json(RefundAccountOut {
        account: crate::payouts::masked_account(&account.bank_bin, &account.account_no),
        refunds: crate::refund_payouts::of_order(&st.db, o.id).await?,
    }))
}
