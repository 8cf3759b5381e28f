//! Orders for sellers (their list, moving orders along) and money reconciliation for admins.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{CodeParam, IdParam};
use super::session::{CurrentUser, verify_csrf};
use super::{CsrfSeed, Layout, PageResult, render, see_other};
use crate::domain::format_vn_time;
use crate::domain::money::format_vnd;
use crate::error::AppError;
use crate::orders::store as orders;
use crate::orders::{Actor, OrderStatus};
use crate::payments::store as payments;
use crate::web::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/quan-ly/don-hang", get(seller_orders))
        .route("/quan-ly/don-hang/{code}", post(move_order))
        .route("/quan-tri/doi-soat", get(reconcile))
        .route("/quan-tri/doi-soat/gan", post(assign))
        .route("/quan-tri/doi-soat/hoan-giao-dich", post(refund_txn))
        .route("/quan-tri/doi-soat/hoan-thanh-toan", post(refund_payment))
        .route("/quan-tri/doi-soat/hoan-don", post(refund_order))
        .route("/quan-tri/doi-soat/tien-ra", post(explain_outflow))
        .route("/quan-tri/thong-bao", get(failed_notices))
        .route("/quan-tri/thong-bao/{id}/gui-lai", post(retry_notice))
}

struct OrderRow {
    code: String,
    shop_name: String,
    status: String,
    total: String,
    created: String,
    lines: Vec<String>,
    buyer: String,
    buyer_phone: String,
    shipping: String,
    /// Forward moves (accept, ship, deliver): (status, label).
    next: Vec<(String, String)>,
    /// The cancelling move, kept apart and confirmed: (whether it refunds, label).
    cancel: Option<(bool, String)>,
    ship: bool,
    /// When the money reaches the shop and why (buyer protection), in plain words.
    release: String,
    requests: Vec<SellerRequest>,
    /// The parcel booked with a carrier, when the buyer chose one.
    parcel: Option<crate::shipments::store::ShipmentView>,
}

/// A buyer's return/refund request as the seller sees and answers it.
struct SellerRequest {
    id: i64,
    status: String,
    reason: String,
    text: String,
    amount: String,
    photos: Vec<String>,
    seller_text: String,
    decision: String,
    answer_by: String,
    answerable: bool,
    /// "Đồng ý hoàn toàn bộ …" when the buyer asked for part of the order.
    full: Option<String>,
    return_sent: String,
    /// Every step of buyer protection on the order: (time, words).
    steps: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "seller_orders.html")]
struct SellerOrdersPage {
    layout: Layout,
    orders: Vec<OrderRow>,
    /// (tab key, label, count, current)
    tabs: Vec<(&'static str, &'static str, usize, bool)>,
    error: Option<String>,
}

/// The tabs of the seller's orders and which statuses each shows.
const TABS: &[(&str, &str)] = &[
    ("moi", "Mới thanh toán"),
    ("dang-xu-ly", "Đã nhận"),
    ("dang-giao", "Đang giao"),
    ("xong", "Đã giao"),
    ("khac", "Chờ thanh toán, hủy, hoàn tiền"),
    ("tat-ca", "Tất cả"),
];

fn tab_of(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::Paid => "moi",
        OrderStatus::Accepted => "dang-xu-ly",
        OrderStatus::Shipped => "dang-giao",
        OrderStatus::Delivered => "xong",
        _ => "khac",
    }
}

fn action_label(to: OrderStatus) -> &'static str {
    match to {
        OrderStatus::Accepted => "Nhận đơn",
        OrderStatus::Shipped => "Đã gửi hàng",
        OrderStatus::Delivered => "Đã giao xong",
        OrderStatus::RefundDue => "Hủy đơn (hoàn tiền)",
        OrderStatus::Cancelled => "Hủy đơn",
        _ => "",
    }
}

#[derive(Deserialize, Default)]
struct OkQuery {
    #[serde(default)]
    ok: String,
    #[serde(default)]
    tab: String,
}

async fn seller_orders(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Query(q): Query<OkQuery>,
) -> PageResult {
    let notice = (q.ok == "moved").then_some("Đã cập nhật đơn hàng.");
    orders_page(&st, &seed, user, &q.tab, notice, None).await
}

/// The seller's order page again with why an answer was refused (buyer protection).
pub(super) async fn orders_page_with_error(
    st: &AppState,
    seed: &CsrfSeed,
    user: crate::accounts::User,
    e: AppError,
) -> PageResult {
    let msg = match &e {
        AppError::Validation(f) => f.0.values().cloned().collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    };
    orders_page(st, seed, user, "tat-ca", None, Some(msg)).await
}

async fn orders_page(
    st: &AppState,
    seed: &CsrfSeed,
    user: crate::accounts::User,
    tab: &str,
    notice: Option<&str>,
    error: Option<String>,
) -> PageResult {
    let shops = crate::catalog::store::shops_worked_by(&st.db, &user).await?;
    let ids: Vec<i64> = shops.iter().map(|s| s.id.0).collect();
    // Shops this user works on as a helper: no cancelling (it owes the buyer money) and no
    // answers to buyers' requests there.
    let helped: Vec<i64> = shops
        .iter()
        .filter(|s| crate::catalog::helpers::acts_as_helper(&user, s))
        .map(|s| s.id.0)
        .collect();
    let list = orders::orders_of_shops(&st.db, &ids, 500).await?;
    // New paid orders first when there are any, else everything.
    let tab = if TABS.iter().any(|(k, _)| *k == tab) {
        tab
    } else if list.iter().any(|o| o.status == OrderStatus::Paid) {
        "moi"
    } else {
        "tat-ca"
    };
    let tabs = TABS
        .iter()
        .map(|(k, label)| {
            let n = list
                .iter()
                .filter(|o| *k == "tat-ca" || tab_of(o.status) == *k)
                .count();
            (*k, *label, n, *k == tab)
        })
        .collect();
    let mut rows = Vec::new();
    for o in list
        .into_iter()
        .filter(|o| tab == "tat-ca" || tab_of(o.status) == tab)
    {
        let (buyer, buyer_phone) = match orders::buyer_of(&st.db, &o).await? {
            Some(c) => {
                let mut b = format!("{} · {}", c.name, c.address);
                if !c.note.is_empty() {
                    b.push_str(&format!(" · Ghi chú: {}", c.note));
                }
                (b, c.phone)
            }
            None => (String::new(), String::new()),
        };
        let as_helper = helped.contains(&o.shop_id);
        let moves = o.status.next(Actor::Seller);
        let release = crate::protection::store::release_of(&st.db, &st.config, o.id)
            .await?
            .words();
        let steps: Vec<(String, String)> = crate::protection::store::steps_of_order(&st.db, o.id)
            .await?
            .into_iter()
            .map(|s| (format_vn_time(s.at), s.words))
            .collect();
        let requests = crate::protection::store::requests_of_order(&st.db, o.id)
            .await?
            .into_iter()
            .map(|r| SellerRequest {
                id: r.id,
                status: r.status_label.clone(),
                reason: r.reason_label.clone(),
                text: r.text.clone(),
                amount: format_vnd(r.amount_vnd),
                photos: r.buyer_photos.clone(),
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
                answer_by: format_vn_time(r.answer_due_at),
                answerable: r.status == crate::protection::RequestStatus::Open && !as_helper,
                full: (r.amount_vnd < o.total_vnd).then(|| format_vnd(o.total_vnd)),
                steps: steps.clone(),
                return_sent: if r.status == crate::protection::RequestStatus::ReturnSent {
                    r.return_tracking.clone().unwrap_or_default()
                } else {
                    String::new()
                },
            })
            .collect();
        rows.push(OrderRow {
            parcel: crate::shipments::store::of_order(&st.db, o.id).await?,
            release,
            requests,
            code: o.code.clone(),
            shop_name: o.shop_name.clone(),
            status: o.status.label().into(),
            total: o.total_words(),
            created: format_vn_time(o.created_at),
            lines: o.lines.iter().map(|l| l.describe()).collect(),
            buyer,
            buyer_phone,
            shipping: o.shipping_line(),
            ship: moves.contains(&OrderStatus::Shipped),
            next: moves
                .iter()
                .filter(|s| {
                    !matches!(
                        s,
                        OrderStatus::RefundDue | OrderStatus::Cancelled | OrderStatus::Shipped
                    )
                })
                .map(|s| (s.as_str().to_string(), action_label(*s).to_string()))
                .collect(),
            // Cancelling is asked as "cancelled"; for a paid order it means a refund
            // (`OrderStatus::seller_meant`), which the label says.
            cancel: moves
                .iter()
                .filter(|_| !as_helper)
                .find(|s| matches!(s, OrderStatus::RefundDue | OrderStatus::Cancelled))
                .map(|s| (*s == OrderStatus::RefundDue, action_label(*s).to_string())),
        });
    }
    let status = if error.is_some() {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    } else {
        axum::http::StatusCode::OK
    };
    let mut resp = render(SellerOrdersPage {
        layout: Layout::new(st, seed, &Some(user), "Đơn hàng của cửa hàng").with_notice(notice),
        orders: rows,
        tabs,
        error,
    })?;
    *resp.status_mut() = status;
    Ok(resp)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MoveForm {
    csrf: String,
    to: String,
    /// "1" when the seller ticked "I am sure" (cancelling).
    confirm: String,
    carrier: String,
    tracking_code: String,
}

async fn move_order(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(code): Path<String>,
    Form(f): Form<MoveForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let to = OrderStatus::seller_asks(&f.to)
        .ok_or_else(|| AppError::field("to", "trạng thái không hợp lệ"))?;
    if to == OrderStatus::Cancelled && f.confirm != "1" {
        let msg = format!(
            "Đơn {code} chưa bị hủy: hãy đánh dấu “Tôi chắc chắn hủy đơn này” rồi bấm hủy."
        );
        return orders_page(&st, &seed, user, "tat-ca", None, Some(msg)).await;
    }
    // "Đã giao xong" starts the buyer's guarantee days: the page asks first.
    if to == OrderStatus::Delivered && f.confirm != "1" {
        let msg = format!(
            "Đơn {code} chưa được ghi là đã giao: hãy đánh dấu “Người mua đã nhận hàng” rồi bấm xác nhận."
        );
        let mut resp = orders_page(&st, &seed, user, "dang-giao", None, Some(msg)).await?;
        *resp.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(resp);
    }
    let shipping = orders::Shipping::parse(&f.carrier, &f.tracking_code)?;
    crate::shipments::store::seller_move(&st.db, &st.config, &user, &code, to, &shipping).await?;
    see_other("/quan-ly/don-hang?ok=moved")
}

struct TxnRow {
    id: i64,
    provider: String,
    amount: String,
    description: String,
    received: String,
}

struct PaymentRow {
    code: String,
    reason: String,
    status: String,
    amount: String,
    paid: String,
    to_refund: String,
    late: bool,
}

#[derive(Template)]
#[template(path = "reconcile.html")]
struct ReconcilePage {
    layout: Layout,
    unmatched: Vec<TxnRow>,
    outflows: Vec<TxnRow>,
    payments: Vec<PaymentRow>,
    orders: Vec<(String, String, String)>,
    audit: Vec<(String, String, String, String, String)>,
}

impl From<&payments::TxnView> for TxnRow {
    fn from(t: &payments::TxnView) -> Self {
        TxnRow {
            id: t.id,
            provider: t.provider.clone(),
            amount: format_vnd(t.amount_vnd),
            description: t.description.clone(),
            received: format_vn_time(t.received_at),
        }
    }
}

fn reason_label(r: &str) -> &'static str {
    match r {
        "underpaid" => "Chuyển thiếu",
        "overpaid" => "Chuyển thừa",
        "refund_due" => "Cần hoàn tiền",
        _ => "Đến muộn",
    }
}

async fn reconcile(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Query(q): Query<OkQuery>,
) -> PageResult {
    user.require_admin()?;
    let unmatched = payments::unmatched_transactions(&st.db).await?;
    let outflows = payments::unexplained_outflows(&st.db).await?;
    let attention = payments::payments_needing_attention(&st.db).await?;
    let orders_due = refund_due_orders(&st).await?;
    let audit = payments::recent_audit(&st.db, 50).await?;
    let notice = (q.ok == "done").then_some("Đã ghi nhận.");
    let mut payment_rows = Vec::new();
    for (reason, p) in &attention {
        // What may be refunded comes from the one function that records refunds.
        let r = crate::payments::refunds::refundable(&st.db, p.id).await?;
        payment_rows.push(PaymentRow {
            code: p.code.clone(),
            reason: reason_label(reason).into(),
            status: super::cart::status_label(p.status),
            amount: format_vnd(p.amount_vnd),
            paid: format_vnd(p.amount_paid_vnd),
            to_refund: format_vnd(r.payment_refundable_vnd),
            late: p.late,
        });
    }
    render(ReconcilePage {
        layout: Layout::new(&st, &seed, &Some(user), "Đối soát giao dịch").with_notice(notice),
        unmatched: unmatched.iter().map(TxnRow::from).collect(),
        outflows: outflows.iter().map(TxnRow::from).collect(),
        payments: payment_rows,
        orders: orders_due
            .iter()
            .map(|o| {
                (
                    o.order.code.clone(),
                    o.order.shop_name.clone(),
                    format_vnd(o.refundable_vnd),
                )
            })
            .collect(),
        audit: audit
            .iter()
            .map(|a| {
                (
                    format_vn_time(a.at),
                    a.actor.clone().unwrap_or_default(),
                    payments::audit_action_words(&a.action),
                    payments::audit_subject_words(&a.subject),
                    a.detail.clone(),
                )
            })
            .collect(),
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AdminForm {
    csrf: String,
    txn_id: String,
    payment_code: String,
    code: String,
    order_code: String,
}

fn txn_id(f: &AdminForm) -> Result<i64, AppError> {
    f.txn_id
        .trim()
        .parse()
        .map_err(|_| AppError::field("txn_id", "giao dịch không hợp lệ"))
}

async fn assign(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Form(f): Form<AdminForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    payments::assign(&st.db, &user, txn_id(&f)?, &f.payment_code).await?;
    see_other("/quan-tri/doi-soat?ok=done")
}

async fn refund_txn(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Form(f): Form<AdminForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    payments::refund_transaction(&st.db, &user, txn_id(&f)?).await?;
    see_other("/quan-tri/doi-soat?ok=done")
}

async fn refund_payment(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Form(f): Form<AdminForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    payments::refund_payment(&st.db, &user, &f.code).await?;
    see_other("/quan-tri/doi-soat?ok=done")
}

async fn refund_order(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Form(f): Form<AdminForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    payments::refund_order(&st.db, &user, &f.order_code).await?;
    see_other("/quan-tri/doi-soat?ok=done")
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OutflowForm {
    csrf: String,
    txn_id: String,
    #[serde(rename = "as")]
    how: String,
    payout_code: String,
    note: String,
}

async fn explain_outflow(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Form(f): Form<OutflowForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let id = f
        .txn_id
        .trim()
        .parse()
        .map_err(|_| AppError::field("txn_id", "giao dịch không hợp lệ"))?;
    crate::payouts::store::explain_outflow(&st.db, &user, id, &f.how, &f.payout_code, &f.note)
        .await?;
    see_other("/quan-tri/doi-soat?ok=done")
}

#[derive(Template)]
#[template(path = "admin_notices.html")]
struct NoticesPage {
    layout: Layout,
    failed: Vec<crate::notify::store::NoticeRow>,
    /// (shop slug, shop name, what it could not be told, when)
    /// (shop slug, shop name, shop phone, what it missed, when).
    unreachable: Vec<(String, String, String, String, String)>,
}

async fn failed_notices(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Query(q): Query<OkQuery>,
) -> PageResult {
    user.require_admin()?;
    let failed = crate::notify::store::failed_notices(&st.db).await?;
    let notice = (q.ok == "queued").then_some("Đã đưa thông báo vào hàng gửi lại.");
    render(NoticesPage {
        layout: Layout::new(&st, &seed, &Some(user), "Thông báo gửi không được")
            .with_notice(notice),
        failed,
        unreachable: crate::notify::store::unreachable(&st.db, 200)
            .await?
            .into_iter()
            .map(|u| {
                (
                    u.shop_slug,
                    u.shop_name,
                    u.shop_phone,
                    lower_first(crate::notify::store::kind_words(&u.kind)),
                    format_vn_time(u.at),
                )
            })
            .collect(),
    })
}

/// "Đơn hàng mới…" inside a sentence: "… không nhận được đơn hàng mới…".
fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

async fn retry_notice(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
    Form(f): Form<super::session::CsrfForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    user.require_admin()?;
    if !crate::notify::store::retry_now(&st.db, id).await? {
        return Err(
            AppError::Conflict("thông báo này không ở trạng thái gửi không được".into()).into(),
        );
    }
    see_other("/quan-tri/thong-bao?ok=queued")
}

/// The admin's reconciliation and failed notices over the API (the pages' rules).
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(api_reconciliation))
        .routes(routes!(api_assign))
        .routes(routes!(api_refund_txn))
        .routes(routes!(api_refund_payment))
        .routes(routes!(api_refund_order))
        .routes(routes!(api_explain_outflow))
        .routes(routes!(api_failed_notices))
        .routes(routes!(api_retry_notice))
}

/// What the admin sees to reconcile.
#[derive(Serialize, ToSchema)]
struct ReconciliationOut {
    /// Incoming transfers no payment could claim.
    unmatched_transactions: Vec<payments::TxnView>,
    /// Outgoing transfers that confirm no payout.
    unexplained_outflows: Vec<payments::TxnView>,
    payments_needing_attention: Vec<Attention>,
    orders_refund_due: Vec<OrderDue>,
    audit: Vec<payments::AuditEntry>,
}

#[derive(Serialize, ToSchema)]
struct Attention {
    /// `underpaid`, `refund_due`, `overpaid` or `late`.
    reason: String,
    payment: super::json::PaymentJson,
    /// What may still be refunded, from the ledger (`payments::refunds::refundable`).
    refundable: crate::payments::refunds::Refundable,
}

/// An order cancelled after payment and what a refund of it may record now.
#[derive(Serialize, ToSchema)]
struct OrderDue {
    #[serde(flatten)]
    order: super::json::OrderJson,
    refundable_vnd: i64,
}

async fn refund_due_orders(st: &AppState) -> Result<Vec<OrderDue>, AppError> {
    let mut out = Vec::new();
    for order in payments::orders_refund_due(&st.db).await? {
        let payment = payments::payment_of_checkout(&st.db, order.checkout_id).await?;
        let r = crate::payments::refunds::refundable(&st.db, payment.id).await?;
        out.push(OrderDue {
            refundable_vnd: r.for_order(&order.code),
            order: order.into(),
        });
    }
    Ok(out)
}

#[derive(Serialize, ToSchema)]
struct FailedNoticesOut {
    failed: Vec<crate::notify::store::NoticeRow>,
    unreachable: Vec<crate::notify::store::Unreachable>,
}

/// The action was done (exactly one of the flags is present).
#[derive(Serialize, ToSchema, Default)]
struct DoneOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    assigned: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    explained: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refunded: Option<bool>,
}

impl DoneOut {
    fn assigned() -> Self {
        DoneOut {
            assigned: Some(true),
            ..Default::default()
        }
    }
    fn explained() -> Self {
        DoneOut {
            explained: Some(true),
            ..Default::default()
        }
    }
    fn refunded() -> Self {
        DoneOut {
            refunded: Some(true),
            ..Default::default()
        }
    }
}

type ApiResult<T> = Result<axum::Json<T>, AppError>;

#[utoipa::path(get, path = "/reconciliation", tag = "reconciliation", security(("bearer" = [])),
    responses((status = 200, body = ReconciliationOut)))]
async fn api_reconciliation(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<impl Serialize> {
    user.require_admin()?;
    let mut attention = Vec::new();
    for (reason, payment) in payments::payments_needing_attention(&st.db).await? {
        let refundable = crate::payments::refunds::refundable(&st.db, payment.id).await?;
        attention.push(Attention {
            reason,
            payment: payment.into(),
            refundable,
        });
    }
    Ok(axum::Json(ReconciliationOut {
        unmatched_transactions: payments::unmatched_transactions(&st.db).await?,
        unexplained_outflows: payments::unexplained_outflows(&st.db).await?,
        payments_needing_attention: attention,
        orders_refund_due: refund_due_orders(&st).await?,
        audit: payments::recent_audit(&st.db, 50).await?,
    }))
}

#[derive(Deserialize, ToSchema)]
struct AssignBody {
    #[serde(default)]
    payment_code: String,
}

#[utoipa::path(post, path = "/transactions/{id}/assign", tag = "reconciliation", params(IdParam),
    security(("bearer" = [])), request_body = AssignBody,
    responses((status = 200, body = DoneOut), (status = 409), (status = 422)))]
async fn api_assign(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    super::api::ApiPath(id): super::api::ApiPath<i64>,
    super::api::ApiJson(b): super::api::ApiJson<AssignBody>,
) -> ApiResult<impl Serialize> {
    payments::assign(&st.db, &user, id, &b.payment_code).await?;
    Ok(axum::Json(DoneOut::assigned()))
}

#[derive(Deserialize, ToSchema)]
struct ExplainBody {
    #[serde(default, rename = "as")]
    how: String,
    #[serde(default)]
    payout_code: String,
    #[serde(default)]
    note: String,
}

#[utoipa::path(post, path = "/transactions/{id}/explain", tag = "reconciliation", params(IdParam),
    security(("bearer" = [])), request_body = ExplainBody,
    responses((status = 200, body = DoneOut), (status = 409), (status = 422)))]
async fn api_explain_outflow(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    super::api::ApiPath(id): super::api::ApiPath<i64>,
    super::api::ApiJson(b): super::api::ApiJson<ExplainBody>,
) -> ApiResult<impl Serialize> {
    crate::payouts::store::explain_outflow(&st.db, &user, id, &b.how, &b.payout_code, &b.note)
        .await?;
    Ok(axum::Json(DoneOut::explained()))
}

#[utoipa::path(post, path = "/transactions/{id}/refund", tag = "reconciliation", params(IdParam),
    security(("bearer" = [])), responses((status = 200, body = DoneOut), (status = 409)))]
async fn api_refund_txn(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    super::api::ApiPath(id): super::api::ApiPath<i64>,
) -> ApiResult<impl Serialize> {
    payments::refund_transaction(&st.db, &user, id).await?;
    Ok(axum::Json(DoneOut::refunded()))
}

#[utoipa::path(post, path = "/payments/{code}/refund", tag = "reconciliation", params(CodeParam),
    security(("bearer" = [])), responses((status = 200, body = DoneOut), (status = 409)))]
async fn api_refund_payment(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    super::api::ApiPath(code): super::api::ApiPath<String>,
) -> ApiResult<impl Serialize> {
    payments::refund_payment(&st.db, &user, &code).await?;
    Ok(axum::Json(DoneOut::refunded()))
}

#[utoipa::path(post, path = "/orders/{code}/refund", tag = "reconciliation", params(CodeParam),
    security(("bearer" = [])), responses((status = 200, body = DoneOut), (status = 409)))]
async fn api_refund_order(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    super::api::ApiPath(code): super::api::ApiPath<String>,
) -> ApiResult<impl Serialize> {
    payments::refund_order(&st.db, &user, &code).await?;
    Ok(axum::Json(DoneOut::refunded()))
}

#[utoipa::path(get, path = "/notices/failed", tag = "reconciliation", security(("bearer" = [])),
    responses((status = 200, body = FailedNoticesOut)))]
async fn api_failed_notices(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<impl Serialize> {
    user.require_admin()?;
    Ok(axum::Json(FailedNoticesOut {
        failed: crate::notify::store::failed_notices(&st.db).await?,
        unreachable: crate::notify::store::unreachable(&st.db, 200).await?,
    }))
}

#[utoipa::path(post, path = "/notices/{id}/retry", tag = "reconciliation", params(IdParam),
    security(("bearer" = [])), responses((status = 200, body = super::api::QueuedOut), (status = 409)))]
async fn api_retry_notice(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    super::api::ApiPath(id): super::api::ApiPath<i64>,
) -> ApiResult<impl Serialize> {
    user.require_admin()?;
    if !crate::notify::store::retry_now(&st.db, id).await? {
        return Err(AppError::Conflict(
            "thông báo này không ở trạng thái gửi không được".into(),
        ));
    }
    Ok(axum::Json(super::api::QueuedOut { queued: true }))
}
