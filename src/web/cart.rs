//! The buyer's path: cart (a cookie, no account needed), checkout form, payment page with
//! the VietQR code and a live status, and order tracking after confirming the phone number.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::Deserialize;

use super::session::verify_csrf;
use super::{CsrfSeed, Layout, MaybeUser, PageResult, render, see_other};
use crate::catalog::store as catalog;
use crate::domain::format_vn_time;
use crate::domain::money::format_vnd;
use crate::error::{AppError, FieldErrors};
use std::collections::BTreeMap;

use crate::orders::checkout::{self, ProductRef, RawBuyer, RawItem};
use crate::orders::store as orders;
use crate::payments::service;
use crate::payments::store as payments;
use crate::shipping::addresses::{self, Address, Unit};
use crate::web::AppState;

pub const CART_COOKIE: &str = "cl_cart";
const MAX_CART_LINES: usize = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/gio-hang", get(cart_page).post(update_cart))
        .route("/thanh-toan", get(checkout_page).post(place_order))
        .route("/pay/{code}", get(pay_page))
        .route("/pay/{code}/dat-lai", axum::routing::post(order_again))
        .route("/pay/{code}/qr.png", get(qr_png))
        .route("/pay/{code}/qr.svg", get(qr_svg))
}

/// The cart cookie: `product_id:quantity` pairs separated by commas.
pub fn parse_cart(v: &str) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for part in v.split(',').take(MAX_CART_LINES) {
        if let Some((id, q)) = part.split_once(':')
            && let (Ok(id), Ok(q)) = (id.parse::<i64>(), q.parse::<i64>())
            && q > 0
            && q <= checkout::MAX_QUANTITY
            && !out.iter().any(|(i, _)| *i == id)
        {
            out.push((id, q));
        }
    }
    out
}

fn cart_of(jar: &CookieJar) -> Vec<(i64, i64)> {
    jar.get(CART_COOKIE)
        .map(|c| parse_cart(c.value()))
        .unwrap_or_default()
}

fn cart_cookie(st: &AppState, lines: &[(i64, i64)]) -> Cookie<'static> {
    let v = lines
        .iter()
        .map(|(i, q)| format!("{i}:{q}"))
        .collect::<Vec<_>>()
        .join(",");
    Cookie::build((CART_COOKIE, v))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(st.config.secure_cookies())
        .max_age(cookie::time::Duration::days(30))
        .build()
}

struct CartLine {
    product_id: i64,
    name: String,
    url: String,
    shop_name: String,
    unit: String,
    price: String,
    quantity: i64,
    subtotal: String,
    stock: i64,
}

#[derive(Template)]
#[template(path = "cart.html")]
struct CartPage {
    layout: Layout,
    error: Option<String>,
    lines: Vec<CartLine>,
    /// Pieces in the cart, all lines together.
    items: i64,
    total: String,
}

/// The cart's lines with today's agreed prices (display only; checkout recomputes).
async fn cart_lines(st: &AppState, cart: &[(i64, i64)]) -> Result<(Vec<CartLine>, i64), AppError> {
    let mut lines = Vec::new();
    let mut total = 0i64;
    for (id, q) in cart {
        let Ok(p) = catalog::product_by_id(&st.db, *id).await else {
            continue;
        };
        if !p.active {
            continue;
        }
        total += p.price_vnd * q;
        lines.push(CartLine {
            product_id: *id,
            name: p.name.clone(),
            url: format!("/san-pham/{}", p.slug),
            shop_name: p.shop_name.clone(),
            unit: p.unit.clone(),
            price: format_vnd(p.price_vnd),
            quantity: *q,
            subtotal: format_vnd(p.price_vnd * q),
            stock: p.stock,
        });
    }
    Ok((lines, total))
}

async fn cart_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    jar: CookieJar,
) -> PageResult {
    cart_view(&st, &seed, &user, &cart_of(&jar), None).await
}

async fn cart_view(
    st: &AppState,
    seed: &CsrfSeed,
    user: &Option<crate::accounts::User>,
    cart: &[(i64, i64)],
    error: Option<String>,
) -> PageResult {
    let (lines, total) = cart_lines(st, cart).await?;
    let status = if error.is_some() {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    } else {
        axum::http::StatusCode::OK
    };
    let mut resp = render(CartPage {
        layout: Layout::new(st, seed, user, "Giỏ hàng"),
        items: lines.iter().map(|l| l.quantity).sum(),
        lines,
        total: format_vnd(total),
        error,
    })?;
    *resp.status_mut() = status;
    Ok(resp)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CartForm {
    csrf: String,
    product_id: String,
    quantity: String,
    /// "add" adds to what is there (from a product page); anything else sets the quantity
    /// (0 removes).
    action: String,
}

/// "Đặt lại" on an expired or cancelled payment: its goods go back into the cart (added to
/// what is there, within the cart's limits) and the buyer checks out again.
async fn order_again(
    State(st): State<AppState>,
    seed: CsrfSeed,
    jar: CookieJar,
    Path(code): Path<String>,
    Form(f): Form<super::session::CsrfForm>,
) -> Result<Response, super::PageError> {
    verify_csrf(&st, &seed, &f.csrf)?;
    let p = payments::payment_by_code(&st.db, &code).await?;
    let c = orders::checkout_by_id(&st.db, p.checkout_id).await?;
    let mut cart = cart_of(&jar);
    for o in &c.orders {
        for l in &o.lines {
            let room = cart.len() < MAX_CART_LINES;
            match cart.iter_mut().find(|(i, _)| *i == l.product_id) {
                Some(line) => line.1 = (line.1 + l.quantity).min(checkout::MAX_QUANTITY),
                None if room => cart.push((l.product_id, l.quantity)),
                None => {}
            }
        }
    }
    let jar = jar.add(cart_cookie(&st, &cart));
    Ok((jar, see_other("/gio-hang")?).into_response())
}

async fn update_cart(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    jar: CookieJar,
    Form(f): Form<CartForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let id: i64 = f
        .product_id
        .trim()
        .parse()
        .map_err(|_| AppError::field("product_id", "Sản phẩm không hợp lệ"))?;
    let product = catalog::product_by_id(&st.db, id).await?;
    let mut cart = cart_of(&jar);
    let in_cart = cart
        .iter()
        .find(|(i, _)| *i == id)
        .map(|l| l.1)
        .unwrap_or(0);
    let adding = f.action == "add";
    let wanted = match crate::orders::checkout::check_quantity(
        &f.quantity,
        adding,
        in_cart,
        product.stock,
        &product.unit,
    ) {
        Ok(q) => q,
        // The message stands where the buyer was: the product page, or the cart.
        Err(msg) if adding => {
            return super::pages::product_with_error(
                &st,
                &seed,
                &user,
                &product.slug,
                &f.quantity,
                msg,
            )
            .await;
        }
        Err(msg) => return cart_view(&st, &seed, &user, &cart, Some(msg)).await,
    };
    if in_cart == 0 && wanted > 0 && cart.len() >= MAX_CART_LINES {
        return cart_view(
            &st,
            &seed,
            &user,
            &cart,
            Some(format!("Giỏ hàng có tối đa {MAX_CART_LINES} sản phẩm")),
        )
        .await;
    }
    match cart.iter_mut().find(|(i, _)| *i == id) {
        Some(line) => line.1 = wanted,
        None => cart.push((id, wanted)),
    }
    cart.retain(|(_, q)| *q > 0);
    let jar = jar.add(cart_cookie(&st, &cart));
    Ok((jar, see_other("/gio-hang")?).into_response())
}

#[derive(Template)]
#[template(path = "checkout.html")]
struct CheckoutPage {
    layout: Layout,
    lines: Vec<CartLine>,
    goods: String,
    total: String,
    buyer: RawBuyer,
    provinces: &'static [Unit],
    wards: &'static [Unit],
    /// Each shop's ways to ship, once an address from the lists is chosen.
    quotes: Vec<ShopChoice>,
    methods: Vec<(&'static str, &'static str)>,
    method: String,
    errors: FieldErrors,
}

/// One shop's ways to ship as the checkout page offers them.
struct ShopChoice {
    slug: String,
    name: String,
    goods: String,
    /// (option id, words, fee as shown, chosen)
    options: Vec<(String, String, String, bool)>,
    /// A carrier left out, and why.
    notes: Vec<String>,
}

impl CheckoutPage {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).unwrap_or("").to_string()
    }
    fn ship_err(&self, slug: &str) -> String {
        self.err(&format!("shipping.{slug}"))
    }
    fn email(&self) -> String {
        self.buyer.email.clone().unwrap_or_default()
    }
    fn note(&self) -> String {
        self.buyer.note.clone().unwrap_or_default()
    }
}

fn methods(st: &AppState) -> Vec<(&'static str, &'static str)> {
    let mut m = Vec::new();
    if st.config.payments.collect.is_some() {
        m.push(("vietqr", "Chuyển khoản ngân hàng (quét mã VietQR)"));
    }
    if st.config.payments.payos.is_some() {
        m.push(("payos", "Chuyển khoản qua payOS"));
    }
    if st.config.payments.stripe.is_some() {
        m.push((
            "stripe",
            "Thẻ quốc tế (Stripe) — cho người mua ở nước ngoài",
        ));
    }
    m
}

/// What the checkout form sent: the buyer, the payment method, a way to ship per shop
/// (`ship.{shop slug}`), and which button: choose the province, see the fees, or order.
#[derive(Default)]
struct CheckoutForm {
    csrf: String,
    buyer: RawBuyer,
    method: String,
    shipping: BTreeMap<String, String>,
    step: String,
}

impl CheckoutForm {
    fn read(pairs: Vec<(String, String)>) -> CheckoutForm {
        let mut f = CheckoutForm {
            buyer: RawBuyer {
                email: Some(String::new()),
                note: Some(String::new()),
                ..Default::default()
            },
            ..Default::default()
        };
        for (k, v) in pairs {
            match k.as_str() {
                "csrf" => f.csrf = v,
                "name" => f.buyer.name = v,
                "phone" => f.buyer.phone = v,
                "address" => f.buyer.address = v,
                "province_code" => f.buyer.province_code = v,
                "ward_code" => f.buyer.ward_code = v,
                "street" => f.buyer.street = v,
                "email" => f.buyer.email = Some(v),
                "note" => f.buyer.note = Some(v),
                "method" => f.method = v,
                "step" => f.step = v,
                other => {
                    if let Some(slug) = other.strip_prefix("ship.") {
                        f.shipping.insert(slug.to_string(), v);
                    }
                }
            }
        }
        f
    }
}

/// The page, with each shop's ways to ship when the address is complete enough to quote.
async fn checkout_view(
    st: &AppState,
    seed: &CsrfSeed,
    user: &Option<crate::accounts::User>,
    cart: &[(i64, i64)],
    f: CheckoutForm,
    errors: FieldErrors,
) -> Result<CheckoutPage, AppError> {
    let (lines, goods) = cart_lines(st, cart).await?;
    let b = &f.buyer;
    let mut quotes = Vec::new();
    let mut fees = 0i64;
    if let Some(to) =
        Address::from_codes(b.province_code.trim(), b.ward_code.trim(), b.street.trim())
    {
        let items: Vec<(ProductRef, i64)> = cart
            .iter()
            .map(|(id, q)| (ProductRef::Id(*id), *q))
            .collect();
        // A product gone since it was put in the cart shows as the cart's error on ordering.
        for q in orders::quote(&st.db, &st.config.carriers, &items, &to)
            .await
            .unwrap_or_default()
        {
            // The buyer's choice, else the cheapest way (the first of equals) is ticked.
            let cheapest = q
                .options
                .iter()
                .min_by_key(|o| o.fee_vnd)
                .map(|o| o.id.clone());
            let picked = f
                .shipping
                .get(&q.shop_slug)
                .filter(|p| q.options.iter().any(|o| o.id == **p))
                .or(cheapest.as_ref());
            let options = q
                .options
                .iter()
                .map(|o| {
                    let chosen = picked.is_some_and(|p| *p == o.id);
                    if chosen {
                        fees += o.fee_vnd;
                    }
                    let fee = if o.fee_vnd == 0 {
                        "miễn phí".to_string()
                    } else {
                        format_vnd(o.fee_vnd)
                    };
                    let words = match &o.expected_on {
                        Some(day) => {
                            let day = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
                                .map(|d| d.format("%d/%m").to_string())
                                .unwrap_or_else(|_| day.clone());
                            format!("{} (dự kiến giao {day})", o.carrier.words())
                        }
                        None => o.carrier.words().to_string(),
                    };
                    (o.id.clone(), words, fee, chosen)
                })
                .collect();
            quotes.push(ShopChoice {
                slug: q.shop_slug,
                name: q.shop_name,
                goods: format_vnd(q.goods_vnd),
                options,
                notes: q.notes,
            });
        }
    }
    Ok(CheckoutPage {
        layout: Layout::new(st, seed, user, "Đặt hàng"),
        lines,
        goods: format_vnd(goods),
        total: format_vnd(goods + fees),
        wards: addresses::wards(b.province_code.trim()).unwrap_or(&[]),
        provinces: addresses::provinces(),
        quotes,
        methods: methods(st),
        method: if f.method.is_empty() {
            "vietqr".into()
        } else {
            f.method.clone()
        },
        buyer: f.buyer,
        errors,
    })
}

async fn checkout_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    jar: CookieJar,
) -> PageResult {
    let cart = cart_of(&jar);
    if cart.is_empty() {
        return see_other("/gio-hang");
    }
    let page = checkout_view(
        &st,
        &seed,
        &user,
        &cart,
        CheckoutForm::read(Vec::new()),
        FieldErrors::new(),
    )
    .await?;
    if page.lines.is_empty() {
        return see_other("/gio-hang");
    }
    render(page)
}

async fn place_order(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    client: super::client::ClientIp,
    jar: CookieJar,
    Form(pairs): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = CheckoutForm::read(pairs);
    verify_csrf(&st, &seed, &f.csrf)?;
    let cart = cart_of(&jar);
    if f.step == "province" || f.step == "quote" {
        // Show the province's wards, or the fees to the address chosen; nothing is placed.
        let mut f = f;
        if addresses::ward(f.buyer.ward_code.trim())
            .is_none_or(|(p, _)| p != f.buyer.province_code.trim())
        {
            f.buyer.ward_code.clear();
        }
        return render(checkout_view(&st, &seed, &user, &cart, f, FieldErrors::new()).await?);
    }
    let items: Vec<RawItem> = cart
        .iter()
        .map(|(id, q)| RawItem {
            product_id: Some((*id).into()),
            product_slug: None,
            quantity: Some((*q).into()),
        })
        .collect();
    let result = match checkout::validate(&items, &f.buyer, &f.method, &f.shipping) {
        Ok(req) => service::start(&st.db, &st.config, &req, &client.key()).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(checkout_id) => {
            let p = payments::payment_of_checkout(&st.db, checkout_id).await?;
            let jar = jar.remove(Cookie::build(CART_COOKIE).path("/"));
            // The browser that ordered may open its order page without the phone again.
            let jar = super::lookup::remember(&st, jar, checkout_id);
            let to = match (p.method.as_str(), &p.checkout_url) {
                ("stripe", Some(url)) => url.clone(),
                _ => format!("/pay/{}", p.code),
            };
            Ok((jar, see_other(&to)?).into_response())
        }
        Err(e @ (AppError::Validation(_) | AppError::Conflict(_))) => {
            let status = e.status();
            let errors = match e {
                AppError::Validation(fe) => fe,
                other => {
                    let mut fe = FieldErrors::new();
                    fe.add("items", other.to_string());
                    fe
                }
            };
            let mut resp = render(checkout_view(&st, &seed, &user, &cart, f, errors).await?)?;
            *resp.status_mut() = status;
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}

pub fn status_label(status: crate::payments::state::PaymentStatus) -> String {
    crate::error::sentence(status.label())
}

#[derive(Template)]
#[template(path = "pay.html")]
struct PayPage {
    layout: Layout,
    code: String,
    status: String,
    status_label: String,
    amount: String,
    paid: String,
    remaining: String,
    /// The amount still to transfer, as digits (what the copy button copies).
    remaining_vnd: i64,
    overpaid: String,
    expires_local: String,
    expires_at: i64,
    description: String,
    bank_name: String,
    account_no: String,
    account_name: String,
    demo_account: bool,
    qr_svg: Option<String>,
    checkout_url: Option<String>,
    orders: Vec<(String, String, String)>,
}

fn qr_svg_of(payload: &str) -> Result<String, AppError> {
    let code = qrcode::QrCode::with_error_correction_level(payload, qrcode::EcLevel::M)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("qr: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

async fn pay_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    Path(code): Path<String>,
) -> PageResult {
    let p = payments::payment_by_code(&st.db, &code).await?;
    let c = orders::checkout_by_id(&st.db, p.checkout_id).await?;
    let qr = service::qr_payload(&st.config, &p)?;
    let collect = st.config.payments.collect.as_ref();
    render(PayPage {
        layout: Layout::new(&st, &seed, &user, format!("Thanh toán {}", p.code)),
        code: p.code.clone(),
        status: p.status.as_str().to_string(),
        status_label: if p.cancelled && p.status == crate::payments::state::PaymentStatus::Expired {
            "Đơn đã bị hủy".into()
        } else {
            status_label(p.status)
        },
        amount: format_vnd(p.amount_vnd),
        paid: format_vnd(p.amount_paid_vnd),
        remaining: format_vnd(p.amount_remaining_vnd),
        remaining_vnd: p.amount_remaining_vnd,
        overpaid: format_vnd(p.overpaid_vnd),
        expires_local: format_vn_time(p.expires_at),
        expires_at: p.expires_at,
        description: service::transfer_description(&p),
        bank_name: collect
            .and_then(|c| c.bin.bank())
            .map(|b| format!("{} — {}", b.short_name, b.name))
            .unwrap_or_default(),
        account_no: collect.map(|c| c.account_no.clone()).unwrap_or_default(),
        account_name: collect.map(|c| c.account_name.clone()).unwrap_or_default(),
        demo_account: collect.is_some_and(|c| c.demo),
        qr_svg: match (&qr, p.status.as_str()) {
            (Some(q), "pending" | "underpaid") => Some(qr_svg_of(q)?),
            _ => None,
        },
        checkout_url: p.checkout_url.clone(),
        orders: c
            .orders
            .iter()
            .map(|o| (o.code.clone(), o.shop_name.clone(), o.total_words()))
            .collect(),
    })
}

async fn qr_png(
    State(st): State<AppState>,
    Path(code): Path<String>,
) -> Result<Response, AppError> {
    let p = payments::payment_by_code(&st.db, &code).await?;
    let payload = service::qr_payload(&st.config, &p)?.ok_or(AppError::NotFound)?;
    let png = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, AppError> {
        let qr =
            qrcode::QrCode::with_error_correction_level(payload.as_bytes(), qrcode::EcLevel::M)
                .map_err(|e| AppError::Internal(anyhow::anyhow!("qr: {e}")))?;
        let img = qr
            .render::<image::Luma<u8>>()
            .min_dimensions(480, 480)
            .build();
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("png: {e}")))?;
        Ok(out.into_inner())
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))??;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        png,
    )
        .into_response())
}

async fn qr_svg(
    State(st): State<AppState>,
    Path(code): Path<String>,
) -> Result<Response, AppError> {
    let p = payments::payment_by_code(&st.db, &code).await?;
    let payload = service::qr_payload(&st.config, &p)?.ok_or(AppError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        qr_svg_of(&payload)?,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use crate::orders::checkout::check_quantity;

    #[test]
    fn the_cart_holds_what_is_in_stock() {
        assert_eq!(check_quantity("3", true, 0, 40, "chiếc"), Ok(3));
        assert_eq!(check_quantity(" 10 ", true, 30, 40, "chiếc"), Ok(40));
        assert_eq!(
            check_quantity("11", true, 30, 40, "chiếc"),
            Err("Chỉ còn 40 chiếc; giỏ hàng đã có 30 chiếc".into())
        );
        assert_eq!(
            check_quantity("41", true, 0, 40, "chiếc"),
            Err("Chỉ còn 40 chiếc".into())
        );
        assert_eq!(
            check_quantity("0", true, 0, 40, "chiếc"),
            Err("Số lượng ít nhất là 1".into())
        );
        assert_eq!(
            check_quantity("0", false, 5, 40, "chiếc"),
            Ok(0),
            "0 removes in the cart"
        );
        assert!(check_quantity("abc", false, 0, 40, "chiếc").is_err());
        assert!(check_quantity("-1", false, 0, 40, "chiếc").is_err());
        assert!(check_quantity("5000", false, 0, 1_000_000, "chiếc").is_err());
    }
}
