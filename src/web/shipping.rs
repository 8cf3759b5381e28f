//! Delivery pages and API: the address lists, a shop's ways to ship (its owner's settings
//! page and `PUT /shops/{slug}/shipping`), and the quote of a cart to an address.

use askama::Template;
use axum::Form;
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::{ApiJson, ApiPath, ApiQuery};
use super::openapi::ShopSlug;
use super::session::{CurrentUser, verify_csrf};
use super::{CsrfSeed, Layout, PageResult, render, see_other};
use crate::error::{AppError, FieldErrors, Result};
use crate::orders::checkout::RawItem;
use crate::shipping::addresses::{self, RawAddress, Unit};
use crate::shipping::{Method, RawSelfFees, RawSettings, Settings, carriers, store};
use crate::web::AppState;

pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(provinces))
        .routes(routes!(wards))
        .routes(routes!(shop_shipping, set_shop_shipping))
        .routes(routes!(quote))
}

pub fn page_router() -> Router<AppState> {
    Router::new().route(
        "/quan-ly/cua-hang/{slug}/giao-hang",
        get(settings_page).post(save_settings),
    )
}

/// `GET /addresses/provinces`: the 34 provinces and centrally-run cities (official codes).
#[utoipa::path(get, path = "/addresses/provinces", tag = "addresses",
    responses((status = 200, body = [Unit])))]
async fn provinces() -> Json<&'static [Unit]> {
    Json(addresses::provinces())
}

#[derive(Deserialize, utoipa::IntoParams)]
struct ProvinceCode {
    /// Official province code, e.g. `01` for Hà Nội.
    code: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct WardFilter {
    /// Keep the wards whose name holds this (with or without diacritics).
    #[serde(default)]
    q: String,
}

/// `GET /addresses/provinces/{code}/wards`: the communes, wards and special zones of a
/// province since 1 July 2025.
#[utoipa::path(get, path = "/addresses/provinces/{code}/wards", tag = "addresses",
    params(ProvinceCode, WardFilter),
    responses((status = 200, body = [Unit]), (status = 404)))]
async fn wards(
    ApiPath(ProvinceCode { code }): ApiPath<ProvinceCode>,
    ApiQuery(f): ApiQuery<WardFilter>,
) -> Result<Json<Vec<&'static Unit>>> {
    if addresses::province(&code).is_none() {
        return Err(AppError::NotFound);
    }
    let mut q = f.q;
    q.truncate(q.char_indices().nth(60).map_or(q.len(), |(i, _)| i));
    Ok(Json(addresses::filter_wards(&code, &q)))
}

/// A shop's ways to ship as the API shows them.
#[derive(Serialize, ToSchema)]
pub struct ShippingOut {
    pickup: PickupOut,
    methods: Vec<Method>,
    self_fees: crate::shipping::SelfFees,
    /// Whether the shop books GHN / GHTK with its own account (the tokens are never shown).
    ghn_own_account: bool,
    ghtk_own_account: bool,
}

#[derive(Serialize, ToSchema)]
struct PickupOut {
    province_code: &'static str,
    province_name: &'static str,
    ward_code: &'static str,
    ward_name: &'static str,
    street: String,
}

impl From<&Settings> for ShippingOut {
    fn from(s: &Settings) -> Self {
        ShippingOut {
            pickup: PickupOut {
                province_code: s.pickup.province_code,
                province_name: s.pickup.province_name(),
                ward_code: s.pickup.ward_code,
                ward_name: s.pickup.ward_name(),
                street: s.pickup.street.clone(),
            },
            methods: s.methods.clone(),
            self_fees: s.self_fees,
            ghn_own_account: s.own_ghn.is_some(),
            ghtk_own_account: s.own_ghtk.is_some(),
        }
    }
}

/// `GET /shops/{slug}/shipping`: the shop's pickup address and ways to ship (its owner or
/// the admin); 404 until it set them.
#[utoipa::path(get, path = "/shops/{slug}/shipping", tag = "shops", params(ShopSlug),
    security(("bearer" = [])), responses((status = 200, body = ShippingOut), (status = 404)))]
async fn shop_shipping(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
) -> Result<Json<ShippingOut>> {
    let shop = super::dashboard::my_shop(&st, &user, &slug).await?;
    let s = store::load(&st.db.pool, shop.id.0)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Json(ShippingOut::from(&s)))
}

/// `PUT /shops/{slug}/shipping`: the pickup address (from the lists), the ways to ship and
/// the "tự giao" fee table (same commune, same province, elsewhere; free from an amount).
#[utoipa::path(put, path = "/shops/{slug}/shipping", tag = "shops", params(ShopSlug),
    security(("bearer" = [])), request_body = RawSettings,
    responses((status = 200, body = ShippingOut), (status = 422)))]
async fn set_shop_shipping(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
    ApiJson(b): ApiJson<RawSettings>,
) -> Result<Json<ShippingOut>> {
    let shop = super::dashboard::my_shop(&st, &user, &slug).await?;
    let before = store::load(&st.db.pool, shop.id.0).await?;
    let s = Settings::parse(
        &b,
        &carriers::available(&st.config.carriers),
        before.as_ref(),
    )?;
    store::save(&st.db, &user, &slug, &s).await?;
    Ok(Json(ShippingOut::from(&s)))
}

#[derive(Deserialize, ToSchema)]
struct QuoteBody {
    #[serde(default)]
    items: Vec<RawItem>,
    #[serde(default)]
    address: RawAddress,
}

#[derive(Serialize, ToSchema)]
struct QuoteOut {
    shops: Vec<crate::orders::store::ShopQuote>,
}

/// `POST /checkout/quote`: each shop's ways to ship a cart to an address, with fees; send
/// the chosen option's `id` per shop as `shipping` in `POST /checkout`.
#[utoipa::path(post, path = "/checkout/quote", tag = "checkout", request_body = QuoteBody,
    responses((status = 200, body = QuoteOut), (status = 409), (status = 422)))]
async fn quote(
    State(st): State<AppState>,
    ApiJson(b): ApiJson<QuoteBody>,
) -> Result<Json<QuoteOut>> {
    let (items, to) = crate::orders::checkout::validate_quote(&b.items, &b.address)?;
    Ok(Json(QuoteOut {
        shops: crate::orders::store::quote(&st.db, &st.config.carriers, &items, &to).await?,
    }))
}

#[derive(Template)]
#[template(path = "shop_shipping.html")]
struct SettingsPage {
    layout: Layout,
    shop_name: String,
    slug: String,
    form: SettingsForm,
    provinces: &'static [Unit],
    wards: &'static [Unit],
    /// The carriers offered as checkboxes: the platform's, and GHN/GHTK always (a shop may
    /// use its own account).
    carriers: Vec<(&'static str, &'static str)>,
    /// Whether the shop's own GHN / GHTK accounts are saved.
    own_ghn: bool,
    own_ghtk: bool,
    errors: FieldErrors,
}

impl SettingsPage {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).unwrap_or("").to_string()
    }
    /// The error of a ticked way to ship (errors are named by its place in the form).
    fn method_err(&self, m: &str) -> String {
        self.form
            .methods
            .iter()
            .position(|x| x == m)
            .map(|i| self.err(&format!("methods[{i}]")))
            .unwrap_or_default()
    }
    fn has(&self, m: &str) -> bool {
        self.form.methods.iter().any(|x| x == m)
    }
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct SettingsForm {
    csrf: String,
    province_code: String,
    ward_code: String,
    street: String,
    #[serde(rename = "method")]
    methods: Vec<String>,
    same_commune: String,
    same_province: String,
    elsewhere: String,
    free_from: String,
    /// The shop's own carrier accounts: empty keeps what is saved; the boxes remove them.
    ghn_token: String,
    ghn_shop_id: String,
    ghn_remove: bool,
    ghtk_token: String,
    ghtk_remove: bool,
    /// "Chọn tỉnh": show the chosen province's wards without saving (no JavaScript).
    step: String,
}

impl SettingsForm {
    fn of(s: &Settings) -> SettingsForm {
        let n = |v: i64| v.to_string();
        SettingsForm {
            province_code: s.pickup.province_code.into(),
            ward_code: s.pickup.ward_code.into(),
            street: s.pickup.street.clone(),
            methods: s.methods.iter().map(|m| m.as_str().to_string()).collect(),
            same_commune: n(s.self_fees.same_commune),
            same_province: n(s.self_fees.same_province),
            elsewhere: n(s.self_fees.elsewhere),
            free_from: s.self_fees.free_from.map(n).unwrap_or_default(),
            ..Default::default()
        }
    }

    fn raw(&self) -> RawSettings {
        let v = |s: &str| Some(serde_json::Value::String(s.to_string()));
        RawSettings {
            pickup: RawAddress {
                province_code: self.province_code.clone(),
                ward_code: self.ward_code.clone(),
                street: self.street.clone(),
            },
            methods: self.methods.clone(),
            self_fees: Some(RawSelfFees {
                same_commune: v(&self.same_commune),
                same_province: v(&self.same_province),
                elsewhere: v(&self.elsewhere),
                free_from: v(&self.free_from),
            }),
            ghn_token: if self.ghn_remove {
                Some(String::new())
            } else {
                Some(self.ghn_token.clone()).filter(|t| !t.trim().is_empty())
            },
            ghn_shop_id: v(&self.ghn_shop_id),
            ghtk_token: if self.ghtk_remove {
                Some(String::new())
            } else {
                Some(self.ghtk_token.clone()).filter(|t| !t.trim().is_empty())
            },
        }
    }
}

fn page(
    st: &AppState,
    seed: &CsrfSeed,
    user: crate::accounts::User,
    shop: &crate::catalog::Shop,
    form: SettingsForm,
    errors: FieldErrors,
    saved: Option<&Settings>,
) -> SettingsPage {
    let own_ghn = saved.is_some_and(|s| s.own_ghn.is_some());
    let own_ghtk = saved.is_some_and(|s| s.own_ghtk.is_some());
    SettingsPage {
        layout: Layout::new(
            st,
            seed,
            &Some(user),
            format!("Giao hàng của {}", shop.name),
        ),
        shop_name: shop.name.clone(),
        slug: shop.slug.clone(),
        wards: addresses::wards(form.province_code.trim()).unwrap_or(&[]),
        provinces: addresses::provinces(),
        carriers: [Method::Ghn, Method::Ghtk]
            .into_iter()
            .map(|m| (m.as_str(), m.words()))
            .collect(),
        own_ghn,
        own_ghtk,
        form,
        errors,
    }
}

async fn settings_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
) -> PageResult {
    let shop = super::dashboard::my_shop(&st, &user, &slug).await?;
    let saved = store::load(&st.db.pool, shop.id.0).await?;
    let form = match &saved {
        Some(s) => SettingsForm::of(s),
        None => SettingsForm {
            methods: vec!["self".into()],
            same_commune: "0".into(),
            ..Default::default()
        },
    };
    render(page(
        &st,
        &seed,
        user,
        &shop,
        form,
        FieldErrors::new(),
        saved.as_ref(),
    ))
}

async fn save_settings(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    // Checkboxes repeat `method`; the form is read as pairs.
    let mut form = SettingsForm::default();
    for (k, v) in f {
        match k.as_str() {
            "csrf" => form.csrf = v,
            "province_code" => form.province_code = v,
            "ward_code" => form.ward_code = v,
            "street" => form.street = v,
            "method" => form.methods.push(v),
            "same_commune" => form.same_commune = v,
            "same_province" => form.same_province = v,
            "elsewhere" => form.elsewhere = v,
            "free_from" => form.free_from = v,
            "ghn_token" => form.ghn_token = v,
            "ghn_shop_id" => form.ghn_shop_id = v,
            "ghn_remove" => form.ghn_remove = !v.is_empty(),
            "ghtk_token" => form.ghtk_token = v,
            "ghtk_remove" => form.ghtk_remove = !v.is_empty(),
            "step" => form.step = v,
            _ => {}
        }
    }
    verify_csrf(&st, &seed, &form.csrf)?;
    let shop = super::dashboard::my_shop(&st, &user, &slug).await?;
    let before = store::load(&st.db.pool, shop.id.0).await?;
    if form.step == "province" {
        // The ward list of the province just chosen; nothing saved yet.
        if addresses::ward(&form.ward_code).is_none_or(|(p, _)| p != form.province_code) {
            form.ward_code.clear();
        }
        return render(page(
            &st,
            &seed,
            user,
            &shop,
            form,
            FieldErrors::new(),
            before.as_ref(),
        ));
    }
    let result = match Settings::parse(
        &form.raw(),
        &carriers::available(&st.config.carriers),
        before.as_ref(),
    ) {
        Ok(s) => store::save(&st.db, &user, &slug, &s).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => see_other("/quan-ly?ok=shipping-saved"),
        Err(AppError::Validation(errors)) => {
            let mut resp = render(page(&st, &seed, user, &shop, form, errors, before.as_ref()))?;
            *resp.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}
