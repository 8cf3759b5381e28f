//! Provider webhooks: verify the raw bytes first (401 on any signature problem, nothing
//! stored), then parse (400 on malformed JSON), then record once and match.
//! A provider whose secret is not configured has no endpoint (404).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::bankfeed::Incoming;
use crate::bankfeed::parse;
use crate::error::AppError;
use crate::payments::signatures::{self, SignatureError};
use crate::payments::store::Outcome;
use crate::treasury::receive as record;
use crate::web::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(bank))
        .routes(routes!(casso))
        .routes(routes!(payos))
        .routes(routes!(stripe))
}

/// The answer to a delivery that was accepted (stored, or a duplicate of one stored).
#[derive(Serialize, ToSchema)]
struct WebhookOut {
    ok: bool,
    outcome: WebhookOutcome,
}

#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum WebhookOutcome {
    /// `duplicate`, `ignored`, `unmatched`, or `applied` with the payment and its status.
    Recorded(Outcome),
    /// A Stripe event that moves no money.
    NotMoney { result: NotMoney },
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum NotMoney {
    NotMoney,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn refused(e: SignatureError) -> Response {
    tracing::warn!(error = %e, "webhook refused");
    let code = match e {
        SignatureError::Malformed => StatusCode::BAD_REQUEST,
        _ => StatusCode::UNAUTHORIZED,
    };
    (
        code,
        axum::Json(
            json!({"error": {"code": "bad_signature", "message": e.to_string(), "fields": {}}}),
        ),
    )
        .into_response()
}

fn bad_body(msg: String) -> Response {
    AppError::BadRequest(msg).into_response()
}

fn json_body(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))
}

async fn store(st: &AppState, incoming: Incoming) -> Response {
    match record(&st.db, &incoming).await {
        Ok(outcome) => (
            StatusCode::OK,
            axum::Json(WebhookOut {
                ok: true,
                outcome: WebhookOutcome::Recorded(outcome),
            }),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

fn now_secs() -> i64 {
    crate::domain::now_ms() / 1000
}

#[utoipa::path(post, path = "/webhooks/bank", tag = "webhooks", security(("bank_signature" = [])),
    request_body(content = Object, description = "Our own format: `{id, amount, description, account_number, reference, transaction_time}`"),
    responses((status = 200, body = WebhookOut, description = "Stored once (a repeat answers `duplicate`)"),
        (status = 400, description = "Malformed signature header or body"),
        (status = 401, description = "Signature missing, wrong or outside the replay window"),
        (status = 404, description = "This provider is not configured here")))]
async fn bank(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = &st.config.payments.bank_webhook_secret else {
        return AppError::NotFound.into_response();
    };
    if let Err(e) = signatures::verify_bank(
        secret,
        header(&headers, "x-cholang-signature"),
        &body,
        now_secs(),
    ) {
        return refused(e);
    }
    let v = match json_body(&body) {
        Ok(v) => v,
        Err(m) => return bad_body(m),
    };
    match parse::from_bank(&v, &String::from_utf8_lossy(&body)) {
        Ok(i) => store(&st, i).await,
        Err(e) => bad_body(e.0),
    }
}

#[utoipa::path(post, path = "/webhooks/casso", tag = "webhooks", security(("casso_signature" = [])),
    request_body(content = Object, description = "Casso webhook v2: `{error, data: {id, amount, description, …}}`"),
    responses((status = 200, body = WebhookOut, description = "Stored once (a repeat answers `duplicate`)"),
        (status = 400, description = "Malformed signature header or body"),
        (status = 401, description = "Signature missing, wrong or outside the replay window"),
        (status = 404, description = "This provider is not configured here")))]
async fn casso(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(key) = &st.config.payments.casso_checksum_key else {
        return AppError::NotFound.into_response();
    };
    let v = match signatures::verify_casso(
        key,
        header(&headers, "x-casso-signature"),
        &body,
        Some(crate::domain::now_ms()),
    ) {
        Ok(v) => v,
        Err(e) => return refused(e),
    };
    match parse::from_casso(&v, &String::from_utf8_lossy(&body)) {
        Ok(i) => store(&st, i).await,
        Err(e) => bad_body(e.0),
    }
}

#[utoipa::path(post, path = "/webhooks/payos", tag = "webhooks", security(("payos_signature" = [])),
    request_body(content = Object, description = "payOS payment webhook: `{code, desc, success, data, signature}`; the signature is checked over `data`"),
    responses((status = 200, body = WebhookOut, description = "Stored once (a repeat answers `duplicate`)"),
        (status = 400, description = "Malformed signature header or body"),
        (status = 401, description = "Signature missing, wrong or outside the replay window"),
        (status = 404, description = "This provider is not configured here")))]
async fn payos(State(st): State<AppState>, body: Bytes) -> Response {
    let Some(cfg) = &st.config.payments.payos else {
        return AppError::NotFound.into_response();
    };
    // payOS signs `data` inside the body, so the JSON must be read to be verified.
    let data = match signatures::verify_payos(&cfg.checksum_key, &body) {
        Ok(d) => d,
        Err(e) => return refused(e),
    };
    let top: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match parse::from_payos(&top, &data, &String::from_utf8_lossy(&body)) {
        Ok(i) => store(&st, i).await,
        Err(e) => bad_body(e.0),
    }
}

#[utoipa::path(post, path = "/webhooks/stripe", tag = "webhooks", security(("stripe_signature" = [])),
    request_body(content = Object, description = "A Stripe event (`checkout.session.completed`, …)"),
    responses((status = 200, body = WebhookOut, description = "Stored once (a repeat answers `duplicate`)"),
        (status = 400, description = "Malformed signature header or body"),
        (status = 401, description = "Signature missing, wrong or outside the replay window"),
        (status = 404, description = "This provider is not configured here")))]
async fn stripe(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = st
        .config
        .payments
        .stripe
        .as_ref()
        .and_then(|s| s.webhook_secret.as_ref())
    else {
        return AppError::NotFound.into_response();
    };
    if let Err(e) = signatures::verify_stripe(
        secret,
        header(&headers, "stripe-signature"),
        &body,
        now_secs(),
    ) {
        return refused(e);
    }
    let v = match json_body(&body) {
        Ok(v) => v,
        Err(m) => return bad_body(m),
    };
    match parse::from_stripe(&v, &String::from_utf8_lossy(&body)) {
        Ok(Some(i)) => store(&st, i).await,
        Ok(None) => (
            StatusCode::OK,
            axum::Json(WebhookOut {
                ok: true,
                outcome: WebhookOutcome::NotMoney {
                    result: NotMoney::NotMoney,
                },
            }),
        )
            .into_response(),
        Err(e) => bad_body(e.0),
    }
}
