//! "Tra cứu đơn hàng": a buyer finds their order again with any code they were shown (the
//! payment code `CL…`, an order code `CL…-1`, the checkout code `DH…`) and the phone number
//! once; the browser remembers it for the session (a signed cookie naming the checkout), and
//! the page shows every shop's order of the checkout with its steps and the seller's phone.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::client::ClientIp;
use super::session::verify_csrf;
use super::{CsrfSeed, Layout, MaybeUser, PageResult, render, see_other};
use crate::domain::format_vn_time;
use crate::domain::money::format_vnd;
use crate::error::AppError;
use crate::orders::OrderStatus;
use crate::orders::store as orders;
use crate::web::AppState;

pub const LOOKUP_COOKIE: &str = "cl_orders";
/// Checkouts one browser session remembers.
const REMEMBERED: usize = 10;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tra-cuu-don", get(form_page).post(lookup))
        .route("/tra-cuu-don/{code}", get(checkout_page))
}

fn token(st: &AppState, checkout: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&st.config.secret_key).expect("hmac key");
    mac.update(format!("orders:{checkout}").as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// The checkouts this browser proved it may see.
pub(super) fn remembered(st: &AppState, jar: &CookieJar) -> Vec<i64> {
    let Some(c) = jar.get(LOOKUP_COOKIE) else {
        return Vec::new();
    };
    c.value()
        .split('_')
        .take(REMEMBERED)
        .filter_map(|part| {
            let (id, mac) = part.split_once('.')?;
            let id: i64 = id.parse().ok()?;
            let ok: bool = token(st, id).as_bytes().ct_eq(mac.as_bytes()).into();
            ok.then_some(id)
        })
        .collect()
}

pub(super) fn remember(st: &AppState, jar: CookieJar, checkout: i64) -> CookieJar {
    let mut ids = remembered(st, &jar);
    ids.retain(|i| *i != checkout);
    ids.insert(0, checkout);
    ids.truncate(REMEMBERED);
    let value = ids
        .iter()
        .map(|i| format!("{i}.{}", token(st, *i)))
        .collect::<Vec<_>>()
        .join("_");
    // No max-age: forgotten when the browser session ends.
    jar.add(
        Cookie::build((LOOKUP_COOKIE, value))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(st.config.secure_cookies())
            .build(),
    )
}

#[derive(Template)]
#[template(path = "lookup.html")]
struct FormPage {
    layout: Layout,
    code: String,
    phone: String,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct CodeQuery {
    #[serde(default)]
    ma: String,
}

async fn form_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    Query(q): Query<CodeQuery>,
) -> PageResult {
    render(FormPage {
        layout: Layout::new(&st, &seed, &user, "Tra cứu đơn hàng"),
        code: q.ma.trim().chars().take(40).collect(),
        phone: String::new(),
        error: None,
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LookupForm {
    csrf: String,
    code: String,
    phone: String,
}

async fn lookup(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    client: ClientIp,
    jar: CookieJar,
    Form(f): Form<LookupForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let again = |error: String, status: axum::http::StatusCode| -> PageResult {
        let mut resp = render(FormPage {
            layout: Layout::new(&st, &seed, &user, "Tra cứu đơn hàng"),
            code: f.code.chars().take(40).collect(),
            phone: f.phone.chars().take(20).collect(),
            error: Some(error),
        })?;
        *resp.status_mut() = status;
        Ok(resp)
    };
    let not_found = "Không tìm thấy đơn với mã và số điện thoại này. Mã nằm trong nội dung chuyển khoản (CL…) hoặc email biên nhận.";
    let id = match find_checkout(&st, &client, &f.code, &f.phone).await {
        Ok(Some(id)) => id,
        Ok(None) => {
            return again(
                not_found.into(),
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
        Err(e @ AppError::TooManyAttempts(_)) => {
            let status = e.status();
            return again(e.to_string(), status);
        }
        Err(e) => return Err(e.into()),
    };
    let p = crate::payments::store::payment_of_checkout(&st.db, id).await?;
    let jar = remember(&st, jar, id);
    Ok((jar, see_other(&format!("/don-hang/{}", p.code))?).into_response())
}

/// The checkout a buyer asks about with any of its codes (purchase, order, old checkout
/// code) and the phone used to order; `None` when they do not match. Every try counts
/// against the checkout and the address (`protection::store::prove_purchase`).
async fn find_checkout(
    st: &AppState,
    client: &ClientIp,
    code: &str,
    phone: &str,
) -> Result<Option<i64>, AppError> {
    match crate::protection::store::prove_purchase(
        &st.db,
        &st.config,
        &client.key(),
        code,
        &crate::protection::store::Proof::Phone(phone.to_string()),
    )
    .await
    {
        Ok(id) => Ok(Some(id)),
        Err(AppError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
struct LookupBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    phone: String,
}

/// `POST /api/v1/orders/lookup {code, phone}`: what the lookup page shows, as JSON.
#[utoipa::path(post, path = "/orders/lookup", tag = "checkout", request_body = LookupBody,
    responses((status = 200, body = LookupOut),
        (status = 404, description = "No order with this code and phone (counted against the address)"),
        (status = 422), (status = 429)))]
async fn api_lookup(
    State(st): State<AppState>,
    client: ClientIp,
    super::api::ApiJson(b): super::api::ApiJson<LookupBody>,
) -> Result<axum::Json<LookupOut>, AppError> {
    let Some(id) = find_checkout(&st, &client, &b.code, &b.phone).await? else {
        return Err(AppError::NotFound);
    };
    let c = orders::checkout_by_id(&st.db, id).await?;
    let p = crate::payments::store::payment_of_checkout(&st.db, id).await?;
    let mut list = Vec::new();
    for o in &c.orders {
        let shop =
            crate::catalog::store::shop_by_id(&st.db, crate::catalog::ShopId(o.shop_id)).await?;
        let (steps, note) = steps(o.status);
        list.push(LookupOrder {
            code: o.code.clone(),
            status: o.status,
            status_label: o.status.label().to_string(),
            note: note.to_string(),
            steps: steps
                .iter()
                .map(|s| LookupStep {
                    label: s.label.to_string(),
                    done: s.done,
                })
                .collect(),
            shipping: o.shipping_line(),
            shop: LookupShop {
                slug: o.shop_slug.clone(),
                name: o.shop_name.clone(),
                phone: shop.phone.clone(),
                zalo: shop
                    .zalo_phone
                    .clone()
                    .unwrap_or_else(|| shop.phone.clone()),
            },
            lines: o
                .lines
                .iter()
                .map(|l| LookupLine {
                    description: l.describe(),
                    batch_code: l.batch_code.clone(),
                    origin_url: l.batch_code.as_ref().map(|c| format!("/truy-xuat/{c}")),
                })
                .collect(),
            total_vnd: o.total_vnd,
        });
    }
    Ok(axum::Json(LookupOut {
        checkout: LookupCheckout {
            // The purchase's code is the payment's (the one in the transfer).
            code: p.code.clone(),
            created_at: c.created_at,
            total_vnd: c.total_vnd,
            payment: LookupPayment {
                pay_url: format!("/pay/{}", p.code),
                code: p.code,
                status: p.status,
            },
            orders: list,
        },
    }))
}

/// What the buyer's look-up finds: the checkout, its payment, each shop's order.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct LookupOut {
    checkout: LookupCheckout,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct LookupCheckout {
    code: String,
    created_at: i64,
    total_vnd: i64,
    payment: LookupPayment,
    orders: Vec<LookupOrder>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct LookupPayment {
    code: String,
    status: crate::payments::state::PaymentStatus,
    /// The payment page (QR code, live status).
    pay_url: String,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct LookupOrder {
    code: String,
    status: crate::orders::OrderStatus,
    status_label: String,
    note: String,
    steps: Vec<LookupStep>,
    /// Carrier and tracking code once shipped ("" before).
    shipping: String,
    shop: LookupShop,
    lines: Vec<LookupLine>,
    total_vnd: i64,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct LookupStep {
    label: String,
    done: bool,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct LookupShop {
    slug: String,
    name: String,
    phone: String,
    zalo: String,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct LookupLine {
    description: String,
    batch_code: Option<String>,
    origin_url: Option<String>,
}

pub fn api_routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(api_lookup))
}

pub(super) struct Step {
    pub(super) label: &'static str,
    pub(super) done: bool,
}

struct OrderCard {
    code: String,
    shop_name: String,
    shop_url: String,
    phone: String,
    zalo: String,
    status: String,
    note: String,
    shipping: String,
    steps: Vec<Step>,
    /// (description, origin page of the batch sold, if any)
    lines: Vec<(String, Option<String>)>,
    total: String,
}

#[derive(Template)]
#[template(path = "lookup_checkout.html")]
struct CheckoutPage {
    layout: Layout,
    created: String,
    payment_code: String,
    payment_status: String,
    pay_url: String,
    buyer: String,
    total: String,
    orders: Vec<OrderCard>,
}

/// How far an order got: đặt → thanh toán → nhận → gửi → giao.
pub(super) fn steps(status: OrderStatus) -> (Vec<Step>, &'static str) {
    use OrderStatus::*;
    let reached = match status {
        PendingPayment | Cancelled | Expired => 1,
        Paid | RefundDue | Refunded => 2,
        Accepted => 3,
        Shipped => 4,
        Delivered => 5,
    };
    let note = match status {
        Cancelled => "Đơn đã bị hủy.",
        Expired => "Đơn hết hạn thanh toán.",
        RefundDue => "Đơn đã hủy; Chợ Làng sẽ hoàn tiền cho bạn.",
        Refunded => "Đơn đã hủy và đã hoàn tiền.",
        _ => "",
    };
    let labels = [
        "Đặt hàng",
        "Thanh toán",
        "Người bán nhận đơn",
        "Đã gửi hàng",
        "Đã giao",
    ];
    (
        labels
            .iter()
            .enumerate()
            .map(|(i, l)| Step {
                label: l,
                done: i < reached,
            })
            .collect(),
        note,
    )
}

/// Old links (`/tra-cuu-don/{any code}`) lead to the one order page, `/don-hang/{code}`.
async fn checkout_page(State(st): State<AppState>, Path(code): Path<String>) -> PageResult {
    let Some(id) = orders::checkout_id_by_any_code(&st.db, &code).await? else {
        return see_other(&format!("/tra-cuu-don?ma={}", super::urlencode(&code)));
    };
    let p = crate::payments::store::payment_of_checkout(&st.db, id).await?;
    see_other(&format!("/don-hang/{}", p.code))
}

/// The buyer's page of a purchase this browser proved: with one shop's order it is that
/// order's page (`/don-hang/CODE-1`); with several, each shop's order under the purchase code.
pub(super) async fn purchase_page(
    st: &AppState,
    seed: &CsrfSeed,
    user: &Option<crate::accounts::User>,
    id: i64,
) -> PageResult {
    let c = orders::checkout_by_id(&st.db, id).await?;
    let p = crate::payments::store::payment_of_checkout(&st.db, id).await?;
    let mut cards = Vec::new();
    for o in &c.orders {
        let shop =
            crate::catalog::store::shop_by_id(&st.db, crate::catalog::ShopId(o.shop_id)).await?;
        let (steps, note) = steps(o.status);
        let zalo = shop
            .zalo_phone
            .clone()
            .unwrap_or_else(|| shop.phone.clone());
        cards.push(OrderCard {
            code: o.code.clone(),
            shop_name: o.shop_name.clone(),
            shop_url: format!("/shop/{}", o.shop_slug),
            phone: shop.phone.clone(),
            zalo,
            status: o.status.label().to_string(),
            note: note.to_string(),
            shipping: o.shipping_line(),
            steps,
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
            total: o.total_words(),
        });
    }
    if let [only] = c.orders.as_slice() {
        return see_other(&format!("/don-hang/{}", only.code));
    }
    render(CheckoutPage {
        layout: Layout::new(st, seed, user, format!("Đơn hàng {}", p.code)),
        created: format_vn_time(c.created_at),
        payment_code: p.code.clone(),
        payment_status: super::cart::status_label(p.status),
        pay_url: format!("/pay/{}", p.code),
        buyer: format!("{}, {}", c.buyer_name, c.buyer_address),
        total: format_vnd(c.total_vnd),
        orders: cards,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_follow_the_order() {
        let (s, note) = steps(OrderStatus::Shipped);
        assert_eq!(s.iter().filter(|s| s.done).count(), 4);
        assert!(note.is_empty());
        let (s, note) = steps(OrderStatus::RefundDue);
        assert_eq!(s.iter().filter(|s| s.done).count(), 2);
        assert!(note.contains("hoàn tiền"));
    }
}
