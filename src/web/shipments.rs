//! Parcels with carriers: the seller's "book again" and label, the API's shipment of an
//! order, and the carriers' webhooks (a secret in the URL compared in constant time; the
//! report stored once and confirmed by the carrier's API in `shipments::store::report`).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::ApiPath;
use super::openapi::CodeParam;
use super::session::{CsrfForm, CurrentUser, verify_csrf};
use super::{CsrfSeed, PageResult, see_other};
use crate::error::{AppError, Result};
use crate::orders::store::{OrderView, order_by_code};
use crate::shipments::store::{self, Label, Outcome, Report, ShipmentView};
use crate::shipping::Method;
use crate::web::AppState;

pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(shipment, book_again))
}

pub fn webhook_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ghn_webhook))
        .routes(routes!(ghtk_webhook))
}

pub fn page_router() -> Router<AppState> {
    Router::new()
        .route("/quan-ly/don-hang/{code}/dat-giao", post(book_page))
        .route("/quan-ly/don-hang/{code}/tem-van-chuyen", get(label_page))
}

/// An order this user may work on (its shop's people, a helper, the admin).
async fn my_order(st: &AppState, user: &crate::accounts::User, code: &str) -> Result<OrderView> {
    let o = order_by_code(&st.db, code).await?;
    super::dashboard::my_shop_work(
        st,
        user,
        &crate::catalog::store::shop_by_id(&st.db, crate::catalog::ShopId(o.shop_id))
            .await?
            .slug,
    )
    .await?;
    Ok(o)
}

#[derive(Serialize, ToSchema)]
struct ShipmentOut {
    shipment: ShipmentView,
}

/// `GET /orders/{code}/shipment`: the parcel booked for the order, its carrier's status and
/// timeline (the shop's people and the admin).
#[utoipa::path(get, path = "/orders/{code}/shipment", tag = "orders", params(CodeParam),
    security(("bearer" = [])),
    responses((status = 200, body = ShipmentOut), (status = 403), (status = 404)))]
async fn shipment(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<ShipmentOut>> {
    let o = my_order(&st, &user, &code).await?;
    let s = store::of_order(&st.db, o.id)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Json(ShipmentOut { shipment: s }))
}

/// `POST /orders/{code}/shipment`: book the parcel again after a refusal or a lost answer
/// (looked up first: never booked twice).
#[utoipa::path(post, path = "/orders/{code}/shipment", tag = "orders", params(CodeParam),
    security(("bearer" = [])),
    responses((status = 200, body = ShipmentOut, description = "The shipment as it now stands (`failed` keeps the carrier's message)"),
        (status = 403), (status = 404), (status = 409)))]
async fn book_again(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<ShipmentOut>> {
    let o = my_order(&st, &user, &code).await?;
    let s = store::book(&st.db, &st.config.carriers, &o).await?;
    Ok(Json(ShipmentOut { shipment: s }))
}

async fn book_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(code): Path<String>,
    axum::Form(f): axum::Form<CsrfForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let o = my_order(&st, &user, &code).await?;
    store::book(&st.db, &st.config.carriers, &o).await?;
    see_other(&format!("/quan-ly/don-hang?tab=tat-ca#don-{}", o.code))
}

#[derive(Deserialize)]
struct LabelQuery {
    /// `80` for the 80×80 mm (GHN) or A6 (GHTK) label; A5 otherwise.
    #[serde(default)]
    kho: String,
}

async fn label_page(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(code): Path<String>,
    Query(q): Query<LabelQuery>,
) -> PageResult {
    let o = my_order(&st, &user, &code).await?;
    match store::label(&st.db, &st.config.carriers, &o, q.kho == "80").await? {
        Label::Page(url) => Ok(Redirect::to(&url).into_response()),
        Label::Pdf(bytes) => Ok((
            [
                (header::CONTENT_TYPE, "application/pdf".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("inline; filename=\"tem-{}.pdf\"", o.code),
                ),
            ],
            bytes,
        )
            .into_response()),
    }
}

/// The answer to a carrier's report that was kept.
#[derive(Serialize, ToSchema)]
struct CarrierWebhookOut {
    ok: bool,
    /// `duplicate`, `unknown_shipment`, `unverified` (kept; asked again later) or `applied`
    /// (confirmed by the carrier's API).
    outcome: String,
}

fn answered(o: Outcome) -> Response {
    let outcome = match o {
        Outcome::Duplicate => "duplicate",
        Outcome::Unknown => "unknown_shipment",
        Outcome::Unverified => "unverified",
        Outcome::Applied => "applied",
    };
    Json(CarrierWebhookOut {
        ok: true,
        outcome: outcome.into(),
    })
    .into_response()
}

fn same_secret(expected: &str, given: &str) -> bool {
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

fn wrong_secret(carrier: &str) -> Response {
    tracing::warn!(carrier, "carrier webhook with a wrong secret refused");
    (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({"error": {"code": "bad_signature",
            "message": "wrong webhook secret", "fields": {}}})),
    )
        .into_response()
}

/// A body as JSON, or as a form (GHTK may post either).
fn body_fields(headers: &HeaderMap, body: &[u8]) -> std::result::Result<Value, String> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if form {
        let map: serde_json::Map<String, Value> = form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        Ok(Value::Object(map))
    } else {
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
struct GhnSecret {
    /// The secret part of the URL registered with GHN (`GHN_WEBHOOK_SECRET`).
    secret: String,
}

/// `POST /webhooks/ghn/{secret}`: GHN's status report (no signature exists: the secret is
/// in the URL). Stored once per (order code, type, status, time); nothing moves until GHN's
/// API confirms the status.
#[utoipa::path(post, path = "/webhooks/ghn/{secret}", tag = "webhooks", params(GhnSecret),
    request_body(content = Object, description = "GHN: `{OrderCode, ClientOrderCode, Status, Type, Time, …}`"),
    responses((status = 200, body = CarrierWebhookOut, description = "Kept (a repeat answers `duplicate`)"),
        (status = 400, description = "Malformed body"),
        (status = 401, description = "Wrong secret"),
        (status = 404, description = "GHN webhooks are not configured here")))]
async fn ghn_webhook(
    State(st): State<AppState>,
    Path(GhnSecret { secret }): Path<GhnSecret>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(expected) = &st.config.carriers.ghn_webhook_secret else {
        return AppError::NotFound.into_response();
    };
    if !same_secret(expected, &secret) {
        return wrong_secret("ghn");
    }
    let v = match body_fields(&headers, &body) {
        Ok(v) => v,
        Err(m) => return AppError::BadRequest(m).into_response(),
    };
    let code = text_of(&v["OrderCode"]);
    let status = text_of(&v["Status"]).to_ascii_lowercase();
    if code.is_empty() || status.is_empty() {
        return AppError::BadRequest("OrderCode and Status are required".into()).into_response();
    }
    let r = Report {
        carrier: Method::Ghn,
        dedup_key: format!(
            "{code}|{}|{status}|{}",
            text_of(&v["Type"]).to_ascii_lowercase(),
            text_of(&v["Time"])
        ),
        carrier_code: Some(code),
        client_code: Some(text_of(&v["ClientOrderCode"])).filter(|c| !c.is_empty()),
        claimed: status,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    match store::report(&st.db, &st.config, &r).await {
        Ok(o) => answered(o),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct GhtkHash {
    /// The `hash` put in the URL registered with GHTK (`GHTK_WEBHOOK_HASH`).
    #[serde(default)]
    hash: String,
}

/// `POST /webhooks/ghtk?hash=…`: GHTK's status report, form or JSON (no signature exists:
/// the hash is in the URL). Stored once per (label, status, time); confirmed by GHTK's API.
#[utoipa::path(post, path = "/webhooks/ghtk", tag = "webhooks", params(GhtkHash),
    request_body(content = Object, description = "GHTK: `label_id, partner_id, status_id, action_time, reason…` (form or JSON)"),
    responses((status = 200, body = CarrierWebhookOut, description = "Kept (a repeat answers `duplicate`)"),
        (status = 400, description = "Malformed body"),
        (status = 401, description = "Wrong hash"),
        (status = 404, description = "GHTK webhooks are not configured here")))]
async fn ghtk_webhook(
    State(st): State<AppState>,
    Query(q): Query<GhtkHash>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(expected) = &st.config.carriers.ghtk_webhook_hash else {
        return AppError::NotFound.into_response();
    };
    if !same_secret(expected, &q.hash) {
        return wrong_secret("ghtk");
    }
    let v = match body_fields(&headers, &body) {
        Ok(v) => v,
        Err(m) => return AppError::BadRequest(m).into_response(),
    };
    let label = text_of(&v["label_id"]);
    let status = text_of(&v["status_id"]);
    if label.is_empty() || status.is_empty() {
        return AppError::BadRequest("label_id and status_id are required".into()).into_response();
    }
    let r = Report {
        carrier: Method::Ghtk,
        dedup_key: format!("{label}|{status}|{}", text_of(&v["action_time"])),
        carrier_code: Some(label),
        client_code: Some(text_of(&v["partner_id"])).filter(|c| !c.is_empty()),
        claimed: status,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    match store::report(&st.db, &st.config, &r).await {
        Ok(o) => answered(o),
        Err(e) => e.into_response(),
    }
}
