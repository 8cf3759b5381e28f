//! Sellers' money and payouts: balances and ledger entries (page, CSV, API), the payout
//! account, payout runs for admins (bank-app QR codes and bulk CSV, payOS), the trial
//! balance, and the orders API sellers move their orders with.

use askama::Template;
use axum::Form;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::ApiJson;
use super::openapi::{CodeParam, ShopSlug};
use super::session::{CurrentUser, verify_csrf};
use super::{CsrfSeed, Layout, PageResult, render, see_other};
use crate::accounts::User;
use crate::catalog::store as catalog;
use crate::domain::format_vn_time;
use crate::domain::money::format_vnd;
use crate::error::{AppError, Result};
use crate::ledger::store as ledger;
use crate::orders::OrderStatus;
use crate::payouts::{self, PayoutAccount, statement, store as payout_store};
use crate::web::AppState;

/// Routes under `/api/v1`, with their documentation.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(api_balance))
        .routes(routes!(api_ledger))
        .routes(routes!(api_statement))
        .routes(routes!(api_payout_account))
        .routes(routes!(api_start_run))
        .routes(routes!(api_preview))
        .routes(routes!(api_run))
        .routes(routes!(api_payout))
        .routes(routes!(api_mark_paid))
        .routes(routes!(api_mark_failed))
        .routes(routes!(api_trial_balance))
        .routes(routes!(api_movements))
        .routes(routes!(api_orders))
        .routes(routes!(api_transition))
}

pub fn page_router() -> Router<AppState> {
    Router::new()
        .route("/quan-ly/doanh-thu", get(revenue_page))
        .route("/quan-ly/doanh-thu.csv", get(revenue_csv))
        .route(
            "/quan-ly/cua-hang/{slug}/tai-khoan-nhan-tien",
            post(payout_account_form),
        )
        .route("/quan-tri/so-cai", get(trial_balance_page))
        .route("/quan-tri/chi-tra", get(runs_page).post(start_run_form))
        .route("/quan-tri/chi-tra/{code}", get(run_page))
        .route("/quan-tri/chi-tra/{code}/tai-ve.csv", get(run_csv))
        .route(
            "/quan-tri/chi-tra/khoan/{code}/da-chuyen",
            post(mark_paid_form),
        )
        .route(
            "/quan-tri/chi-tra/khoan/{code}/khong-thanh-cong",
            post(mark_failed_form),
        )
}

#[utoipa::path(get, path = "/shops/{slug}/balance", tag = "money", params(ShopSlug),
    security(("bearer" = [])), responses((status = 200, body = ledger::ShopBalance)))]
async fn api_balance(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    super::api::ApiPath(slug): super::api::ApiPath<String>,
) -> Result<Json<impl Serialize>> {
    let shop = super::dashboard::my_shop(&st, &user, &slug).await?;
    Ok(Json(ledger::shop_balance(&st.db, shop.id.0).await?))
}

/// The shop's money in words: what it sold, what goes to its bank and when, a line per
/// order and per payout (the seller's money page reads the same).
#[utoipa::path(get, path = "/shops/{slug}/statement", tag = "money", params(ShopSlug),
    security(("bearer" = [])), responses((status = 200, body = statement::Statement)))]
async fn api_statement(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    super::api::ApiPath(slug): super::api::ApiPath<String>,
) -> Result<Json<impl Serialize>> {
    let shop = super::dashboard::my_shop(&st, &user, &slug).await?;
    Ok(Json(statement_of(&st, shop.id.0).await?))
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    page: Option<String>,
    shop: Option<String>,
    status: Option<String>,
}

const LEDGER_PAGE: i64 = 50;

#[utoipa::path(get, path = "/shops/{slug}/ledger", tag = "money", params(ShopSlug, PageQuery),
    security(("bearer" = [])), responses((status = 200, body = LedgerOut), (status = 422)))]
async fn api_ledger(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    super::api::ApiPath(slug): super::api::ApiPath<String>,
    super::api::ApiQuery(q): super::api::ApiQuery<PageQuery>,
) -> Result<Json<impl Serialize>> {
    let shop = super::dashboard::my_shop(&st, &user, &slug).await?;
    let page = match q.page.as_deref() {
        None | Some("") => 1,
        Some(p) => p
            .parse::<i64>()
            .ok()
            .filter(|p| (1..=100_000).contains(p))
            .ok_or_else(|| AppError::field("page", "Trang là số từ 1"))?,
    };
    let (entries, total) =
        ledger::shop_entries(&st.db, shop.id.0, LEDGER_PAGE, (page - 1) * LEDGER_PAGE).await?;
    Ok(Json(LedgerOut {
        entries,
        page,
        total,
    }))
}

#[derive(Deserialize, Default, ToSchema)]
struct AccountBody {
    #[schema(schema_with = super::openapi::text_or_number)]
    bank_bin: Option<Value>,
    #[schema(schema_with = super::openapi::text_or_number)]
    account_no: Option<Value>,
    #[serde(default)]
    account_name: String,
    #[serde(default)]
    password: String,
}

#[utoipa::path(put, path = "/shops/{slug}/payout-account", tag = "money", params(ShopSlug),
    security(("bearer" = [])), request_body = AccountBody,
    responses((status = 200, body = PayoutAccountOut), (status = 422), (status = 429)))]
async fn api_payout_account(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    super::api::ApiPath(slug): super::api::ApiPath<String>,
    ApiJson(b): ApiJson<AccountBody>,
) -> Result<Json<impl Serialize>> {
    let shop = super::dashboard::my_shop(&st, &user, &slug).await?;
    let account = PayoutAccount::parse(
        &super::api::text(&b.bank_bin),
        &super::api::text(&b.account_no),
        &b.account_name,
    )?;
    let hold_until =
        payout_store::set_account(&st.db, &st.config, &user, &shop, &account, &b.password).await?;
    Ok(Json(PayoutAccountOut {
        account,
        hold_until,
        hold_until_local: format_vn_time(hold_until),
    }))
}

#[derive(Deserialize, Default, ToSchema)]
struct RunBody {
    #[serde(default)]
    method: String,
}

#[utoipa::path(post, path = "/payout-runs", tag = "money", security(("bearer" = [])),
    request_body = RunBody,
    responses((status = 201, body = payout_store::RunView), (status = 409), (status = 422)))]
async fn api_start_run(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(b): ApiJson<RunBody>,
) -> Result<Response> {
    let run = payout_store::start_run(&st.db, &st.config, &user, &b.method).await?;
    Ok((StatusCode::CREATED, Json(run)).into_response())
}

/// What a run started now would pay each shop, and whom it would hold and why.
#[utoipa::path(get, path = "/payout-runs/preview", tag = "money", security(("bearer" = [])),
    responses((status = 200, body = payout_store::Plan)))]
async fn api_preview(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<impl Serialize>> {
    user.require_admin()?;
    Ok(Json(payout_store::plan(&st.db, &st.config).await?))
}

#[utoipa::path(get, path = "/payout-runs/{code}", tag = "money", params(CodeParam),
    security(("bearer" = [])), responses((status = 200, body = payout_store::RunView)))]
async fn api_run(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    super::api::ApiPath(code): super::api::ApiPath<String>,
) -> Result<Json<impl Serialize>> {
    user.require_admin()?;
    Ok(Json(payout_store::run_by_code(&st.db, &code).await?))
}

#[utoipa::path(get, path = "/payouts/{code}", tag = "money", params(CodeParam),
    security(("bearer" = [])), responses((status = 200, body = payout_store::PayoutView)))]
async fn api_payout(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    super::api::ApiPath(code): super::api::ApiPath<String>,
) -> Result<Json<impl Serialize>> {
    let p = payout_store::payout_by_code(&st.db, &code).await?;
    let shop = catalog::shop_by_id(&st.db, crate::catalog::ShopId(p.shop_id)).await?;
    catalog::authorize_shop(&user, &shop).map_err(|_| AppError::NotFound)?;
    Ok(Json(p))
}

#[derive(Deserialize, Default, ToSchema)]
struct MarkPaidBody {
    #[serde(default)]
    reference: String,
}

#[utoipa::path(post, path = "/payouts/{code}/mark-paid", tag = "money", params(CodeParam),
    security(("bearer" = [])), request_body = MarkPaidBody,
    responses((status = 200, body = payout_store::PayoutView), (status = 409), (status = 422)))]
async fn api_mark_paid(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    super::api::ApiPath(code): super::api::ApiPath<String>,
    ApiJson(b): ApiJson<MarkPaidBody>,
) -> Result<Json<impl Serialize>> {
    Ok(Json(
        payout_store::admin_mark_paid(&st.db, &user, &code, &b.reference).await?,
    ))
}

#[derive(Deserialize, Default, ToSchema)]
struct MarkFailedBody {
    /// Why it did not go through (at least 5 characters; shown to the shop).
    #[serde(default)]
    reason: String,
}

/// The payout did not go through: its money is the shop's available money again, the shop
/// is told to check its account, and it is paid in the next run. Audited.
#[utoipa::path(post, path = "/payouts/{code}/fail", tag = "money", params(CodeParam),
    security(("bearer" = [])), request_body = MarkFailedBody,
    responses((status = 200, body = payout_store::PayoutView), (status = 409), (status = 422)))]
async fn api_mark_failed(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    super::api::ApiPath(code): super::api::ApiPath<String>,
    ApiJson(b): ApiJson<MarkFailedBody>,
) -> Result<Json<impl Serialize>> {
    Ok(Json(
        payout_store::admin_mark_failed(&st.db, &user, &code, &b.reason).await?,
    ))
}

#[utoipa::path(get, path = "/ledger/trial-balance", tag = "money", security(("bearer" = [])),
    responses((status = 200, body = TrialBalanceOut)))]
async fn api_trial_balance(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<impl Serialize>> {
    user.require_admin()?;
    let accounts = ledger::trial_balance(&st.db).await?;
    let total: i64 = accounts.iter().map(|a| a.balance_vnd).sum();
    Ok(Json(TrialBalanceOut {
        accounts,
        total_vnd: total,
    }))
}

/// `GET /orders?status=&shop=`: the caller's shops' orders (admins: every shop's).
#[utoipa::path(get, path = "/orders", tag = "orders", params(PageQuery),
    security(("bearer" = [])), responses((status = 200, body = OrdersOut), (status = 422)))]
async fn api_orders(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    super::api::ApiQuery(q): super::api::ApiQuery<PageQuery>,
) -> Result<Json<impl Serialize>> {
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            OrderStatus::parse(s)
                .ok_or_else(|| AppError::field("status", "Trạng thái không hợp lệ"))?,
        ),
    };
    let shops: Vec<i64> = match q.shop.as_deref() {
        Some(slug) if !slug.is_empty() => {
            let s = catalog::shop_by_slug(&st.db, slug)
                .await
                .map_err(|_| AppError::field("shop", "Không có cửa hàng này"))?;
            catalog::authorize_shop_work(&user, &s)?;
            vec![s.id.0]
        }
        _ if user.is_admin() => catalog::all_shops(&st.db)
            .await?
            .iter()
            .map(|s| s.id.0)
            .collect(),
        _ => catalog::shops_worked_by(&st.db, &user)
            .await?
            .iter()
            .map(|s| s.id.0)
            .collect(),
    };
    let list = crate::orders::store::orders_of_shops(&st.db, &shops, 500).await?;
    let orders: Vec<crate::orders::store::OrderView> = list
        .into_iter()
        .filter(|o| status.is_none_or(|s| o.status == s))
        .collect();
    let mut out = Vec::with_capacity(orders.len());
    for mut o in orders {
        o.release = Some(crate::protection::store::release_of(&st.db, &st.config, o.id).await?);
        let buyer = crate::orders::store::buyer_of(&st.db, &o).await?;
        let mut j = super::json::OrderJson::from(o);
        j.buyer = buyer.map(Into::into);
        out.push(j);
    }
    Ok(Json(OrdersOut { orders: out }))
}

#[derive(Deserialize, Default, ToSchema)]
struct TransitionBody {
    #[serde(default)]
    to: String,
}

#[utoipa::path(post, path = "/orders/{code}/transitions", tag = "orders", params(CodeParam),
    security(("bearer" = [])), request_body = TransitionBody,
    responses((status = 200, body = OrderOut), (status = 409), (status = 422)))]
async fn api_transition(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    super::api::ApiPath(code): super::api::ApiPath<String>,
    ApiJson(b): ApiJson<TransitionBody>,
) -> Result<Json<impl Serialize>> {
    let to = OrderStatus::seller_asks(&b.to)
        .ok_or_else(|| AppError::field("to", "Chọn accepted, shipped, delivered hoặc cancelled"))?;
    let mut o = crate::shipments::store::seller_move(
        &st.db,
        &st.config,
        &user,
        &code,
        to,
        &crate::orders::store::Shipping::default(),
    )
    .await?;
    o.release = Some(crate::protection::store::release_of(&st.db, &st.config, o.id).await?);
    Ok(Json(OrderOut { order: o.into() }))
}

#[derive(Serialize, ToSchema)]
struct LedgerOut {
    /// Newest first, 50 a page.
    entries: Vec<ledger::EntryView>,
    page: i64,
    total: i64,
}

#[derive(Serialize, ToSchema)]
struct PayoutAccountOut {
    account: PayoutAccount,
    /// Payouts wait until then (Unix seconds): a changed account is held for a while.
    hold_until: i64,
    hold_until_local: String,
}

#[derive(Serialize, ToSchema)]
struct TrialBalanceOut {
    accounts: Vec<ledger::AccountBalance>,
    /// Always 0: debits equal credits.
    total_vnd: i64,
}

#[derive(Serialize, ToSchema)]
struct OrdersOut {
    orders: Vec<super::json::OrderJson>,
}

#[derive(Serialize, ToSchema)]
struct OrderOut {
    order: super::json::OrderJson,
}

// ---------------------------------------------------------------------------------------
// Pages

struct ShopMoney {
    name: String,
    slug: String,
    headline: Vec<String>,
    fees: String,
    schedule: String,
    account: String,
    hold: String,
    lines: Vec<MoneyLine>,
}

struct MoneyLine {
    amount: String,
    what: String,
    when: String,
    words: String,
    link: String,
}

#[derive(Template)]
#[template(path = "revenue.html")]
struct RevenuePage {
    layout: Layout,
    shops: Vec<ShopMoney>,
    banks: Vec<(&'static str, &'static str)>,
    error: String,
}

/// One of my shops' statement (the page, the CSV and the API read the same).
async fn statement_of(st: &AppState, shop: i64) -> Result<statement::Statement> {
    statement::load(
        &st.db,
        shop,
        &st.config.payouts.schedule,
        st.config.payouts.min_vnd,
        crate::domain::now_ms(),
    )
    .await
}

async fn revenue(
    st: &AppState,
    seed: &CsrfSeed,
    user: &User,
    notice: Option<&str>,
    error: String,
) -> PageResult {
    let shops = catalog::shops_of_owner(&st.db, user).await?;
    let mut out = Vec::new();
    for s in shops {
        let m = statement_of(st, s.id.0).await?;
        out.push(ShopMoney {
            name: s.name.clone(),
            slug: s.slug.clone(),
            headline: m.headline(),
            fees: if m.fees_vnd > 0 {
                format_vnd(m.fees_vnd)
            } else {
                String::new()
            },
            schedule: m.schedule.clone(),
            account: match (&s.bank_bin, &s.bank_account_no, &s.bank_account_name) {
                (Some(bin), Some(no), Some(name)) => {
                    format!("{} · {name}", payouts::masked_account(bin, no))
                }
                _ => String::new(),
            },
            hold: s
                .payout_hold_until
                .filter(|h| *h > crate::domain::now_ms())
                .map(format_vn_time)
                .unwrap_or_default(),
            lines: m
                .lines
                .iter()
                .map(|l| MoneyLine {
                    amount: format_vnd(l.amount_vnd),
                    what: l.what(),
                    when: crate::domain::format_vn_date(l.at),
                    words: l.words.clone(),
                    link: if l.kind == statement::LineKind::Order {
                        format!("/quan-ly/don-hang#don-{}", l.code)
                    } else {
                        String::new()
                    },
                })
                .collect(),
        });
    }
    let mut resp = render(RevenuePage {
        layout: Layout::new(st, seed, &Some(user.clone()), "Tiền bán hàng").with_notice(notice),
        shops: out,
        banks: crate::payments::banks::BANKS
            .iter()
            .map(|b| (b.bin, b.short_name))
            .collect(),
        error: error.clone(),
    })?;
    if !error.is_empty() {
        *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(resp)
}

#[derive(Deserialize, Default)]
struct OkQuery {
    #[serde(default)]
    ok: String,
    #[serde(default)]
    shop: String,
}

async fn revenue_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Query(q): Query<OkQuery>,
) -> PageResult {
    let notice = match q.ok.as_str() {
        "account" => Some(
            "Đã lưu tài khoản nhận tiền. Để an toàn, tiền chỉ chuyển vào tài khoản mới sau thời gian chờ.",
        ),
        _ => None,
    };
    revenue(&st, &seed, &user, notice, String::new()).await
}

/// One of my shops' statement as a spreadsheet (UTF-8 with BOM): the page's lines, with
/// Vietnamese headers and no account codes.
async fn revenue_csv(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Query(q): Query<OkQuery>,
) -> Result<Response> {
    let shop = super::dashboard::my_shop(&st, &user, &q.shop).await?;
    let m = statement_of(&st, shop.id.0).await?;
    let mut w =
        crate::domain::sheet::Sheet::new(&["Ngày", "Nội dung", "Mã", "Số tiền (₫)", "Tình trạng"]);
    for l in &m.lines {
        w.row(&[
            format_vn_time(l.at),
            l.what(),
            l.code.clone(),
            l.amount_vnd.to_string(),
            l.words.clone(),
        ]);
    }
    let mut body = "\u{feff}".as_bytes().to_vec();
    body.extend(w.into_string().into_bytes());
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"tien-ban-hang-{}.csv\"", shop.slug),
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AccountForm {
    csrf: String,
    bank_bin: String,
    account_no: String,
    account_name: String,
    password: String,
}

async fn payout_account_form(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    Form(f): Form<AccountForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let shop = super::dashboard::my_shop(&st, &user, &slug).await?;
    let result = match PayoutAccount::parse(&f.bank_bin, &f.account_no, &f.account_name) {
        Ok(a) => payout_store::set_account(&st.db, &st.config, &user, &shop, &a, &f.password)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => see_other("/quan-ly/doanh-thu?ok=account"),
        Err(AppError::Validation(fe)) => {
            let msg = fe.0.into_values().collect::<Vec<_>>().join(". ");
            revenue(&st, &seed, &user, None, msg).await
        }
        Err(e @ AppError::TooManyAttempts(_)) => {
            revenue(&st, &seed, &user, None, e.to_string()).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "trial_balance.html")]
struct TrialBalancePage {
    layout: Layout,
    rows: Vec<(String, String, String)>,
    total: String,
    shops: Vec<(String, String)>,
    q: MovementQuery,
    moves: Vec<MoveRow>,
    count: i64,
    next: String,
    error: String,
}

struct MoveRow {
    at: String,
    what: String,
    reference: String,
    /// (account label, shop slug, amount)
    postings: Vec<(String, String, String)>,
}

#[derive(Deserialize, Default, Clone, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
struct MovementQuery {
    /// A shop's slug: its movements only.
    shop: String,
    /// First day (Hà Nội), `YYYY-MM-DD`.
    from: String,
    /// Last day (Hà Nội), `YYYY-MM-DD`, included.
    to: String,
    page: String,
}

const MOVES_PAGE: i64 = 50;

/// The filter a query names, or the field it got wrong.
async fn movement_filter(
    st: &AppState,
    q: &MovementQuery,
) -> Result<(ledger::MovementFilter, i64)> {
    let day = |field: &'static str, v: &str, end: bool| -> Result<Option<i64>> {
        if v.trim().is_empty() {
            return Ok(None);
        }
        let d = chrono::NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d")
            .map_err(|_| AppError::field(field, "Ngày viết dạng 2026-12-31"))?;
        let d = if end { d.succ_opt() } else { Some(d) };
        // A day past chrono's range is no filter a person means: refused like a bad date.
        d.and_then(crate::domain::vn_midnight)
            .map(Some)
            .ok_or_else(|| AppError::field(field, "Ngày viết dạng 2026-12-31"))
    };
    let shop = match q.shop.trim() {
        "" => None,
        slug => Some(
            catalog::shop_by_slug(&st.db, slug)
                .await
                .map_err(|_| AppError::field("shop", "Không có cửa hàng này"))?
                .id
                .0,
        ),
    };
    let page = match q.page.trim() {
        "" => 1,
        p => p
            .parse::<i64>()
            .ok()
            .filter(|p| (1..=100_000).contains(p))
            .ok_or_else(|| AppError::field("page", "Trang là số từ 1"))?,
    };
    Ok((
        ledger::MovementFilter {
            shop,
            from: day("from", &q.from, false)?,
            until: day("to", &q.to, true)?,
        },
        page,
    ))
}

/// The ledger's movements, newest first, filtered by shop and by day.
#[utoipa::path(get, path = "/ledger/movements", tag = "money", params(MovementQuery),
    security(("bearer" = [])), responses((status = 200, body = MovementsOut), (status = 422)))]
async fn api_movements(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    super::api::ApiQuery(q): super::api::ApiQuery<MovementQuery>,
) -> Result<Json<impl Serialize>> {
    user.require_admin()?;
    let (f, page) = movement_filter(&st, &q).await?;
    let (movements, total) =
        ledger::movements(&st.db, &f, MOVES_PAGE, (page - 1) * MOVES_PAGE).await?;
    Ok(Json(MovementsOut {
        movements,
        page,
        total,
    }))
}

#[derive(Serialize, ToSchema)]
struct MovementsOut {
    movements: Vec<ledger::Movement>,
    page: i64,
    total: i64,
}

async fn trial_balance_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Query(q): Query<MovementQuery>,
) -> PageResult {
    user.require_admin()?;
    let accounts = ledger::trial_balance(&st.db).await?;
    let total: i64 = accounts.iter().map(|a| a.balance_vnd).sum();
    let (moves, count, next, error) = match movement_filter(&st, &q).await {
        Ok((f, page)) => {
            let (m, n) = ledger::movements(&st.db, &f, MOVES_PAGE, (page - 1) * MOVES_PAGE).await?;
            let next = if page * MOVES_PAGE < n {
                format!(
                    "/quan-tri/so-cai?shop={}&from={}&to={}&page={}",
                    super::urlencode(&q.shop),
                    super::urlencode(&q.from),
                    super::urlencode(&q.to),
                    page + 1
                )
            } else {
                String::new()
            };
            (m, n, next, String::new())
        }
        Err(AppError::Validation(fe)) => (
            Vec::new(),
            0,
            String::new(),
            fe.0.into_values().collect::<Vec<_>>().join(". "),
        ),
        Err(e) => return Err(e.into()),
    };
    let mut resp = render(TrialBalancePage {
        layout: Layout::new(&st, &seed, &Some(user), "Sổ cái"),
        rows: accounts
            .iter()
            .map(|a| {
                (
                    crate::ledger::Account::label(&a.account).to_string(),
                    a.account.clone(),
                    format_vnd(a.balance_vnd),
                )
            })
            .collect(),
        total: format_vnd(total),
        shops: catalog::all_shops(&st.db)
            .await?
            .into_iter()
            .map(|s| (s.slug, s.name))
            .collect(),
        moves: moves
            .iter()
            .map(|m| MoveRow {
                at: format_vn_time(m.at),
                what: crate::ledger::kind_words(&m.kind).to_string(),
                reference: m
                    .order_code
                    .clone()
                    .or_else(|| m.payout_code.clone())
                    .or_else(|| m.payment_code.clone())
                    .unwrap_or_default(),
                postings: m
                    .postings
                    .iter()
                    .map(|p| {
                        (
                            crate::ledger::Account::label(&p.account).to_string(),
                            p.shop.clone().unwrap_or_default(),
                            format_vnd(p.amount_vnd),
                        )
                    })
                    .collect(),
            })
            .collect(),
        count,
        next,
        error: error.clone(),
        q,
    })?;
    if !error.is_empty() {
        *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(resp)
}

#[derive(Template)]
#[template(path = "payout_runs.html")]
struct RunsPage {
    layout: Layout,
    runs: Vec<(String, String, String, i64, String)>,
    payos: bool,
    error: String,
    /// (shop, bank, amount, owed netted)
    due: Vec<(String, String, String, String)>,
    /// (shop, available, why)
    held: Vec<(String, String, String)>,
    due_total: String,
}

async fn runs(st: &AppState, seed: &CsrfSeed, user: User, error: String) -> PageResult {
    user.require_admin()?;
    let runs = payout_store::recent_runs(&st.db, 50)
        .await?
        .into_iter()
        .map(|(code, method, at, n, total)| {
            (
                code,
                if method == "payos" {
                    "payOS".to_string()
                } else {
                    "Ứng dụng ngân hàng".to_string()
                },
                format_vn_time(at),
                n,
                format_vnd(total),
            )
        })
        .collect();
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let plan = payout_store::plan(&st.db, &st.config).await?;
    let mut resp = render(RunsPage {
        layout: Layout::new(st, seed, &Some(user), "Chi trả cho người bán"),
        runs,
        payos: st.config.payouts.payos.is_some(),
        error,
        due: plan
            .due
            .iter()
            .map(|l| {
                (
                    l.shop.name.clone(),
                    l.bank.clone().unwrap_or_default(),
                    format_vnd(l.amount_vnd),
                    if l.owed_vnd > 0 {
                        format_vnd(l.owed_vnd.min(l.available_vnd))
                    } else {
                        String::new()
                    },
                )
            })
            .collect(),
        held: plan
            .held
            .iter()
            .map(|l| {
                let mut why = l.reason_words.clone().unwrap_or_default();
                if let Some(t) = l.hold_until {
                    why = format!("{why} (đến {})", format_vn_time(t));
                }
                if l.owed_vnd > 0 {
                    why = format!("{why}; còn nợ {}", format_vnd(l.owed_vnd));
                }
                (l.shop.name.clone(), format_vnd(l.available_vnd), why)
            })
            .collect(),
        due_total: format_vnd(plan.total_vnd),
    })?;
    *resp.status_mut() = status;
    Ok(resp)
}

async fn runs_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
) -> PageResult {
    runs(&st, &seed, user, String::new()).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RunForm {
    csrf: String,
    method: String,
    reference: String,
}

async fn start_run_form(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Form(f): Form<RunForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    match payout_store::start_run(&st.db, &st.config, &user, &f.method).await {
        Ok(run) => see_other(&format!("/quan-tri/chi-tra/{}", run.code)),
        Err(AppError::Validation(fe)) => {
            let msg = fe.0.into_values().collect::<Vec<_>>().join(". ");
            runs(&st, &seed, user, msg).await
        }
        Err(AppError::Conflict(msg)) => runs(&st, &seed, user, msg).await,
        Err(e) => Err(e.into()),
    }
}

struct PayoutRow {
    /// The error of a "did not go through" form just sent for this payout, and its reason.
    fail_error: String,
    fail_reason: String,
    code: String,
    shop: String,
    amount: String,
    status: String,
    bank: String,
    qr_svg: String,
    flag: String,
    open: bool,
}

#[derive(Template)]
#[template(path = "payout_run.html")]
struct RunPage {
    layout: Layout,
    code: String,
    method: String,
    created: String,
    payouts: Vec<PayoutRow>,
    total: String,
}

async fn run_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(code): Path<String>,
) -> PageResult {
    run_page_with(&st, &seed, user, &code, None).await
}

/// The run's page; `failed_form` is (payout code, error, typed reason) of a fail form that
/// was refused, shown beside that payout with what was typed kept.
async fn run_page_with(
    st: &AppState,
    seed: &CsrfSeed,
    user: User,
    code: &str,
    failed_form: Option<(String, String, String)>,
) -> PageResult {
    user.require_admin()?;
    let run = payout_store::run_by_code(&st.db, code).await?;
    let total: i64 = run.payouts.iter().map(|p| p.amount_vnd).sum();
    let mut rows = Vec::new();
    for p in &run.payouts {
        let qr_svg = match &p.vietqr_payload {
            Some(payload) => qrcode::QrCode::new(payload.as_bytes())
                .map(|q| {
                    q.render::<qrcode::render::svg::Color>()
                        .min_dimensions(180, 180)
                        .build()
                })
                .unwrap_or_default(),
            None => String::new(),
        };
        let (fail_error, fail_reason) = match &failed_form {
            Some((c, e, r)) if *c == p.code => (e.clone(), r.clone()),
            _ => (String::new(), String::new()),
        };
        rows.push(PayoutRow {
            fail_error,
            fail_reason,
            code: p.code.clone(),
            shop: p.shop.name.clone(),
            amount: format_vnd(p.amount_vnd),
            status: p.status.label().to_string(),
            bank: format!(
                "{} · {} · {}",
                p.bank.bank_name, p.bank.account_no, p.bank.account_name
            ),
            qr_svg,
            flag: p.flag.clone().unwrap_or_default(),
            open: p.status.is_open(),
        });
    }
    render(RunPage {
        layout: Layout::new(st, seed, &Some(user), format!("Đợt chi {}", run.code)),
        code: run.code.clone(),
        method: run.method.clone(),
        created: format_vn_time(run.created_at),
        payouts: rows,
        total: format_vnd(total),
    })
}

/// The run for the bank's bulk-transfer upload.
async fn run_csv(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(code): Path<String>,
) -> Result<Response> {
    user.require_admin()?;
    let run = payout_store::run_by_code(&st.db, &code).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"chi-tra-{}.csv\"", run.code),
            ),
        ],
        run.bulk_csv(),
    )
        .into_response())
}

async fn mark_paid_form(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(code): Path<String>,
    Form(f): Form<RunForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let p = payout_store::admin_mark_paid(&st.db, &user, &code, &f.reference).await?;
    see_other(&format!("/quan-tri/chi-tra/{}", p.run_code))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FailForm {
    csrf: String,
    reason: String,
    /// The "I am sure" box: a failed payout puts the money back to the shop's balance.
    confirm: String,
}

async fn mark_failed_form(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(code): Path<String>,
    Form(f): Form<FailForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    user.require_admin()?;
    let p = payout_store::payout_by_code(&st.db, &code).await?;
    let result = if f.confirm != "1" {
        Err(AppError::field(
            "confirm",
            "Đánh dấu ô xác nhận: tiền sẽ trở lại số dư của cửa hàng và được chi ở đợt sau",
        ))
    } else {
        payout_store::admin_mark_failed(&st.db, &user, &code, &f.reason).await
    };
    match result {
        Ok(_) => see_other(&format!(
            "/quan-tri/chi-tra/{}?ok=failed#khoan-{code}",
            p.run_code
        )),
        Err(e @ (AppError::Validation(_) | AppError::Conflict(_))) => {
            let msg = match e {
                AppError::Validation(fe) => fe.0.into_values().collect::<Vec<_>>().join(". "),
                other => other.to_string(),
            };
            let mut resp =
                run_page_with(&st, &seed, user, &p.run_code, Some((code, msg, f.reason))).await?;
            *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}
