//! JSON API under `/api/v1`: the same rules and authorization as the pages.
//! Auth: `POST /auth/login` returns a bearer token; send `Authorization: Bearer <token>`.
//! Errors: `{"error":{"code","message","fields"}}` (see `error.rs`).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::client::ClientIp;
use super::openapi::{CodeParam, IdParam, ProductSlug, ShopSlug, VillageSlug};
use super::session::{CurrentUser, session_token};
use crate::accounts::{self, NewUser, Role};
use crate::catalog::{
    Category, ProductCard, ProductDetail, ProductInput, PublicShop, Shop, ShopInput, Village, store,
};
use crate::error::{AppError, Result};
use crate::pricing::store as pricing;
use crate::pricing::{PriceChange, PriceItem, Proposal};
use crate::web::AppState;

/// Every `/api/v1` route of this module, with its documentation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(logout_all))
        .routes(routes!(change_password))
        .routes(routes!(password_reset))
        .routes(routes!(password_reset_confirm))
        .routes(routes!(me))
        .routes(routes!(villages, create_village))
        .routes(routes!(village))
        .routes(routes!(price_items, create_price_item))
        .routes(routes!(village_proposals))
        .routes(routes!(categories, create_category))
        .routes(routes!(rename_category, remove_category))
        .routes(routes!(category_parcel))
        .routes(routes!(price_item))
        .routes(routes!(propose))
        .routes(routes!(proposal))
        .routes(routes!(vote))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(withdraw))
        .routes(routes!(shops, create_shop))
        .routes(routes!(shop, update_shop))
        .routes(routes!(decide_membership))
        .routes(routes!(notice_channels))
        .routes(routes!(test_notice))
        .routes(routes!(join_requests))
        .routes(routes!(products, create_product))
        .routes(routes!(product, update_product))
        .routes(routes!(decide_ocop))
        .routes(routes!(decide_item))
        .routes(routes!(checkout))
        .routes(routes!(payment))
}

/// `Json` whose rejections use our error body.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct ApiJson<T>(pub T);

/// `Path` whose rejections (a number out of range, say) use our error body.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct ApiPath<T>(pub T);

impl From<axum::extract::rejection::PathRejection> for AppError {
    fn from(r: axum::extract::rejection::PathRejection) -> Self {
        AppError::BadRequest(format!("địa chỉ không hợp lệ: {}", r.body_text()))
    }
}

/// `Query` whose rejections use our error body.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct ApiQuery<T>(pub T);

impl From<axum::extract::rejection::QueryRejection> for AppError {
    fn from(r: axum::extract::rejection::QueryRejection) -> Self {
        AppError::BadRequest(format!("tham số không hợp lệ: {}", r.body_text()))
    }
}

impl From<JsonRejection> for AppError {
    fn from(r: JsonRejection) -> Self {
        AppError::BadRequest(format!("nội dung JSON không hợp lệ: {}", r.body_text()))
    }
}

fn created(v: impl Serialize) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

/// A field that was sent, even as `null` (which then means "clear it").
pub(super) fn present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Numbers or strings in JSON both become the text the domain parser reads.
pub(super) fn text(v: &Option<Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[derive(Deserialize, ToSchema)]
struct RegisterBody {
    #[serde(default)]
    login: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
}

/// The same 202 answer whether or not the login already had an account (its owner is told
/// by notice instead). An email login then logs in with `POST /auth/login`; a phone login
/// gets a 6-digit code by Zalo or SMS and proves it with `POST /auth/verify-phone`.
#[utoipa::path(post, path = "/auth/register", tag = "accounts", request_body = RegisterBody,
    responses((status = 202, body = MessageOut, description = "Registered, or the owner of an existing account was told"),
        (status = 422), (status = 429)))]
async fn register(
    State(st): State<AppState>,
    client: ClientIp,
    ApiJson(b): ApiJson<RegisterBody>,
) -> Result<Response> {
    let new = NewUser::parse(&b.login, &b.display_name, &b.password, Role::Seller)?;
    let message =
        match crate::accounts::reset::register(&st.db, &st.config, new, &client.key()).await? {
            accounts::reset::Registered::Done => accounts::reset::REGISTERED,
            accounts::reset::Registered::CodeSent => accounts::reset::CODE_SENT,
        };
    Ok((StatusCode::ACCEPTED, Json(MessageOut::new(message))).into_response())
}

#[derive(Deserialize, ToSchema)]
struct LoginBody {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
}

#[utoipa::path(post, path = "/auth/login", tag = "accounts", request_body = LoginBody,
    responses((status = 200, body = LoginOut, description = "A session token"),
        (status = 401, description = "Wrong login or password"), (status = 429)))]
async fn login(
    State(st): State<AppState>,
    client: ClientIp,
    ApiJson(b): ApiJson<LoginBody>,
) -> Result<Json<impl Serialize>> {
    let user = match super::auth::authenticate(&st, &b.login, &b.password, client).await {
        Err(AppError::Validation(_)) => return Err(AppError::Unauthorized),
        other => other?,
    };
    let token = accounts::store::create_session(&st.db, user.id, st.config.session_days).await?;
    Ok(Json(LoginOut { user, token }))
}

#[utoipa::path(post, path = "/auth/logout", tag = "accounts", security((), ("bearer" = [])),
    responses((status = 204, description = "The token (if any) no longer works")))]
async fn logout(State(st): State<AppState>, req: axum::extract::Request) -> Result<StatusCode> {
    let (parts, _) = req.into_parts();
    if let Some(t) = session_token(&parts) {
        accounts::store::delete_session(&st.db, &t).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/auth/logout-all", tag = "accounts", security(("bearer" = [])),
    responses((status = 204, description = "Every session of the account ended")))]
async fn logout_all(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<StatusCode> {
    accounts::store::delete_sessions_of(&st.db, user.id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
struct PasswordBody {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

/// Change the password; every other session of the account ends, this token stays valid.
#[utoipa::path(post, path = "/auth/password", tag = "accounts", security(("bearer" = [])),
    request_body = PasswordBody,
    responses((status = 200, body = MessageOut), (status = 422), (status = 429)))]
async fn change_password(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    req_parts: axum::http::HeaderMap,
    ApiJson(b): ApiJson<PasswordBody>,
) -> Result<Json<impl Serialize>> {
    let token = req_parts
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    accounts::reset::change_password(
        &st.db,
        &user,
        &b.current_password,
        &b.new_password,
        token.as_deref(),
    )
    .await?;
    Ok(Json(MessageOut::new(
        "Đã đổi mật khẩu; các phiên đăng nhập khác đã kết thúc.",
    )))
}

#[derive(Deserialize, ToSchema)]
struct ResetBody {
    #[serde(default)]
    login: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    new_password: String,
}

/// Ask for a reset code: 202 whether or not the account exists.
#[utoipa::path(post, path = "/auth/password-reset", tag = "accounts", request_body = ResetBody,
    responses((status = 202, body = MessageOut, description = "A code was sent if the account exists"),
        (status = 422), (status = 429)))]
async fn password_reset(
    State(st): State<AppState>,
    client: ClientIp,
    ApiJson(b): ApiJson<ResetBody>,
) -> Result<Response> {
    accounts::reset::request_reset(&st.db, &st.config, &b.login, &client.key()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(MessageOut::new(accounts::reset::RESET_SENT)),
    )
        .into_response())
}

#[utoipa::path(post, path = "/auth/password-reset/confirm", tag = "accounts", request_body = ResetBody,
    responses((status = 200, body = MessageOut), (status = 422), (status = 429)))]
async fn password_reset_confirm(
    State(st): State<AppState>,
    ApiJson(b): ApiJson<ResetBody>,
) -> Result<Json<impl Serialize>> {
    accounts::reset::finish_reset(&st.db, &st.config, &b.login, &b.code, &b.new_password).await?;
    Ok(Json(MessageOut::new(
        "Đã đặt mật khẩu mới; hãy đăng nhập lại.",
    )))
}

#[utoipa::path(get, path = "/me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = MeOut)))]
async fn me(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<impl Serialize>> {
    let shops = store::shops_of_owner(&st.db, &user).await?;
    Ok(Json(MeOut { user, shops }))
}

#[utoipa::path(get, path = "/villages", tag = "villages",
    responses((status = 200, body = VillagesOut)))]
async fn villages(State(st): State<AppState>) -> Result<Json<impl Serialize>> {
    Ok(Json(VillagesOut {
        villages: store::list_villages(&st.db).await?,
    }))
}

#[derive(Deserialize, ToSchema)]
struct VillageBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    commune: String,
    #[serde(default)]
    district: String,
    #[serde(default)]
    province: String,
    #[serde(default)]
    story: String,
    quorum_min_yes: Option<i64>,
    quorum_percent: Option<i64>,
    proposal_days: Option<i64>,
}

#[utoipa::path(post, path = "/villages", tag = "villages", security(("bearer" = [])),
    request_body = VillageBody,
    responses((status = 201, body = VillageOut), (status = 409), (status = 422)))]
async fn create_village(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(b): ApiJson<VillageBody>,
) -> Result<Response> {
    let v = store::create_village(&st.db, &user, || {
        store::VillageInput::parse(
            &b.name,
            &b.commune,
            &b.district,
            &b.province,
            &b.story,
            b.quorum_min_yes,
            b.quorum_percent,
            b.proposal_days,
        )
    })
    .await?;
    Ok(created(VillageOut { village: v }))
}

#[utoipa::path(get, path = "/villages/{slug}", tag = "villages", params(VillageSlug),
    responses((status = 200, body = VillageDetailOut)))]
async fn village(
    State(st): State<AppState>,
    ApiPath(slug): ApiPath<String>,
) -> Result<Json<impl Serialize>> {
    let v = store::village_by_slug(&st.db, &slug).await?;
    let shops: Vec<PublicShop> = store::shops_of_village(&st.db, v.id)
        .await?
        .iter()
        .map(Shop::public)
        .collect();
    let (voters, needed) = pricing::quorum_status(&st.db, &v).await?;
    Ok(Json(VillageDetailOut {
        village: v,
        shops,
        quorum: Quorum {
            voters,
            yes_needed: needed,
        },
    }))
}

#[utoipa::path(get, path = "/villages/{slug}/price-items", tag = "pricing", params(VillageSlug),
    responses((status = 200, body = PriceItemsOut)))]
async fn price_items(
    State(st): State<AppState>,
    ApiPath(slug): ApiPath<String>,
) -> Result<Json<impl Serialize>> {
    let v = store::village_by_slug(&st.db, &slug).await?;
    Ok(Json(PriceItemsOut {
        price_items: pricing::items_of_village(&st.db, v.id.0).await?,
    }))
}

#[derive(Deserialize, ToSchema)]
struct ItemBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    unit: String,
    #[schema(schema_with = super::openapi::text_or_number)]
    price_vnd: Option<Value>,
}

#[utoipa::path(post, path = "/villages/{slug}/price-items", tag = "pricing", params(VillageSlug),
    security(("bearer" = [])), request_body = ItemBody,
    responses((status = 201, body = PriceItemOut), (status = 409), (status = 422)))]
async fn create_price_item(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
    ApiJson(b): ApiJson<ItemBody>,
) -> Result<Response> {
    let v = store::village_by_slug(&st.db, &slug).await?;
    let item =
        pricing::create_item(&st.db, &user, &v, &b.name, &b.unit, &text(&b.price_vnd)).await?;
    Ok(created(PriceItemOut { price_item: item }))
}

#[utoipa::path(get, path = "/villages/{slug}/categories", tag = "villages", params(VillageSlug),
    responses((status = 200, body = CategoriesOut)))]
async fn categories(
    State(st): State<AppState>,
    ApiPath(slug): ApiPath<String>,
) -> Result<Json<impl Serialize>> {
    let v = store::village_by_slug(&st.db, &slug).await?;
    Ok(Json(CategoriesOut {
        categories: crate::catalog::categories::list(&st.db, v.id).await?,
    }))
}

#[derive(Deserialize, ToSchema)]
struct CategoryBody {
    #[serde(default)]
    name: String,
}

#[utoipa::path(post, path = "/villages/{slug}/categories", tag = "villages", params(VillageSlug),
    security(("bearer" = [])), request_body = CategoryBody,
    responses((status = 201, body = CategoryOut), (status = 409), (status = 422)))]
async fn create_category(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
    ApiJson(b): ApiJson<CategoryBody>,
) -> Result<Response> {
    let v = store::village_by_slug(&st.db, &slug).await?;
    let c = crate::catalog::categories::add(&st.db, &user, v.id, &b.name).await?;
    Ok(created(CategoryOut { category: c }))
}

#[utoipa::path(patch, path = "/villages/{slug}/categories/{id}", tag = "villages",
    params(VillageSlug, IdParam), security(("bearer" = [])), request_body = CategoryBody,
    responses((status = 200, body = CategoryOut), (status = 409), (status = 422)))]
async fn rename_category(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath((slug, id)): ApiPath<(String, i64)>,
    ApiJson(b): ApiJson<CategoryBody>,
) -> Result<Json<impl Serialize>> {
    let v = store::village_by_slug(&st.db, &slug).await?;
    let c = crate::catalog::categories::rename(&st.db, &user, v.id, id, &b.name).await?;
    Ok(Json(CategoryOut { category: c }))
}

/// A category's default parcel: weight in grams, packed size in cm (each may be null).
#[derive(Deserialize, ToSchema)]
struct ParcelBody {
    #[schema(schema_with = super::openapi::text_or_number)]
    weight_g: Option<Value>,
    #[schema(schema_with = super::openapi::text_or_number)]
    length_cm: Option<Value>,
    #[schema(schema_with = super::openapi::text_or_number)]
    width_cm: Option<Value>,
    #[schema(schema_with = super::openapi::text_or_number)]
    height_cm: Option<Value>,
}

/// `PUT /villages/{slug}/categories/{id}/parcel`: what a product of the category weighs and
/// measures packed when its seller gave nothing (the village's moderators).
#[utoipa::path(put, path = "/villages/{slug}/categories/{id}/parcel", tag = "villages",
    params(VillageSlug, IdParam), security(("bearer" = [])), request_body = ParcelBody,
    responses((status = 200, body = CategoryOut), (status = 403), (status = 422)))]
async fn category_parcel(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath((slug, id)): ApiPath<(String, i64)>,
    ApiJson(b): ApiJson<ParcelBody>,
) -> Result<Json<impl Serialize>> {
    let v = store::village_by_slug(&st.db, &slug).await?;
    let mut e = crate::error::FieldErrors::new();
    let parcel = crate::catalog::Parcel::parse(
        &text(&b.weight_g),
        &text(&b.length_cm),
        &text(&b.width_cm),
        &text(&b.height_cm),
        &mut e,
        "",
    );
    e.into_result()?;
    let c = crate::catalog::categories::set_parcel(&st.db, &user, v.id, id, parcel).await?;
    Ok(Json(CategoryOut { category: c }))
}

#[utoipa::path(delete, path = "/villages/{slug}/categories/{id}", tag = "villages",
    params(VillageSlug, IdParam), security(("bearer" = [])),
    responses((status = 204, description = "Removed"), (status = 409, description = "Products still use it")))]
async fn remove_category(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath((slug, id)): ApiPath<(String, i64)>,
) -> Result<StatusCode> {
    let v = store::village_by_slug(&st.db, &slug).await?;
    crate::catalog::categories::remove(&st.db, &user, v.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/villages/{slug}/proposals", tag = "pricing", params(VillageSlug),
    responses((status = 200, body = ProposalsOut)))]
async fn village_proposals(
    State(st): State<AppState>,
    ApiPath(slug): ApiPath<String>,
) -> Result<Json<impl Serialize>> {
    let v = store::village_by_slug(&st.db, &slug).await?;
    Ok(Json(ProposalsOut {
        proposals: pricing::proposals_of_village(&st.db, v.id.0).await?,
    }))
}

#[utoipa::path(get, path = "/price-items/{id}", tag = "pricing", params(IdParam),
    responses((status = 200, body = PriceItemDetailOut)))]
async fn price_item(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<impl Serialize>> {
    let item = pricing::item_by_id(&st.db, id).await?;
    let history = pricing::history_of_item(&mut *st.db.conn().await?, id).await?;
    let listings = store::products_of_item(&st.db, id).await?;
    Ok(Json(PriceItemDetailOut {
        price_item: item,
        history,
        products: listings,
    }))
}

#[derive(Deserialize, ToSchema)]
struct ProposalBody {
    #[schema(schema_with = super::openapi::text_or_number)]
    price_vnd: Option<Value>,
    #[serde(default)]
    reason: String,
}

#[utoipa::path(post, path = "/price-items/{id}/proposals", tag = "pricing", params(IdParam),
    security(("bearer" = [])), request_body = ProposalBody,
    responses((status = 201, body = ProposalOut), (status = 409), (status = 422)))]
async fn propose(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<ProposalBody>,
) -> Result<Response> {
    let p = pricing::propose(
        &st.db,
        &st.config.board,
        &user,
        id,
        &text(&b.price_vnd),
        &b.reason,
    )
    .await?;
    Ok(created(ProposalOut { proposal: p }))
}

#[utoipa::path(get, path = "/proposals/{id}", tag = "pricing", params(IdParam),
    responses((status = 200, body = ProposalOut)))]
async fn proposal(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<impl Serialize>> {
    Ok(Json(ProposalOut {
        proposal: pricing::proposal_by_id(&st.db, id).await?,
    }))
}

#[derive(Deserialize, ToSchema)]
struct VoteBody {
    approve: Option<bool>,
}

#[utoipa::path(post, path = "/proposals/{id}/votes", tag = "pricing", params(IdParam),
    security(("bearer" = [])), request_body = VoteBody,
    responses((status = 200, body = ProposalOut), (status = 409), (status = 422)))]
async fn vote(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<VoteBody>,
) -> Result<Json<impl Serialize>> {
    let approve = b
        .approve
        .ok_or_else(|| AppError::field("approve", "cần true (đồng ý) hoặc false (không đồng ý)"))?;
    Ok(Json(ProposalOut {
        proposal: pricing::vote(&st.db, &st.config.board, &user, id, approve).await?,
    }))
}

#[derive(Deserialize, Default, ToSchema)]
struct DecideBody {
    #[serde(default)]
    confirm: bool,
    #[serde(default)]
    reason: String,
}

/// `POST /proposals/{id}/approve {"confirm": true}`: the moderator confirms the new price.
#[utoipa::path(post, path = "/proposals/{id}/approve", tag = "pricing", params(IdParam),
    security(("bearer" = [])), request_body(content = Option<DecideBody>, description = "`{\"confirm\": true}`; an empty body means not confirmed"),
    responses((status = 200, body = ProposalOut), (status = 409), (status = 422)))]
async fn approve(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<i64>,
    body: axum::body::Bytes,
) -> Result<Json<impl Serialize>> {
    // An empty body is allowed (and means "not confirmed").
    let confirm = if body.is_empty() {
        false
    } else {
        serde_json::from_slice::<DecideBody>(&body)
            .map_err(|e| AppError::BadRequest(format!("nội dung JSON không hợp lệ: {e}")))?
            .confirm
    };
    Ok(Json(ProposalOut {
        proposal: pricing::approve_by_moderator(&st.db, &user, id, confirm).await?,
    }))
}

/// `POST /proposals/{id}/withdraw`: the author takes back an open proposal.
#[utoipa::path(post, path = "/proposals/{id}/withdraw", tag = "pricing", params(IdParam),
    security(("bearer" = [])),
    responses((status = 200, body = ProposalOut), (status = 403), (status = 409)))]
async fn withdraw(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<impl Serialize>> {
    Ok(Json(ProposalOut {
        proposal: pricing::withdraw(&st.db, &user, id).await?,
    }))
}

/// `POST /proposals/{id}/reject {"reason"}`: the moderator rejects, with a public reason.
#[utoipa::path(post, path = "/proposals/{id}/reject", tag = "pricing", params(IdParam),
    security(("bearer" = [])), request_body = DecideBody,
    responses((status = 200, body = ProposalOut), (status = 409), (status = 422)))]
async fn reject(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<DecideBody>,
) -> Result<Json<impl Serialize>> {
    Ok(Json(ProposalOut {
        proposal: pricing::reject_by_moderator(&st.db, &user, id, &b.reason).await?,
    }))
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    village: Option<String>,
}

#[utoipa::path(get, path = "/shops", tag = "shops", params(ListQuery),
    responses((status = 200, body = PublicShopsOut), (status = 404, description = "No such village")))]
async fn shops(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<impl Serialize>> {
    let list = match q.village {
        Some(slug) => {
            let v = store::village_by_slug(&st.db, &slug).await?;
            store::shops_of_village(&st.db, v.id).await?
        }
        None => store::all_shops(&st.db).await?,
    };
    let shops = list.iter().map(Shop::public).collect();
    Ok(Json(PublicShopsOut { shops }))
}

/// A shop: everyone sees its public face; its owner and admins also see its email, bank
/// account, notice settings and whether the village has accepted it.
#[utoipa::path(get, path = "/shops/{slug}", tag = "shops", params(ShopSlug),
    security((), ("bearer" = [])),
    responses((status = 200, body = ShopDetailOut)))]
async fn shop(
    State(st): State<AppState>,
    super::MaybeUser(user): super::MaybeUser,
    ApiPath(slug): ApiPath<String>,
) -> Result<Json<impl Serialize>> {
    let s = store::shop_by_slug(&st.db, &slug).await?;
    let owner = user
        .as_ref()
        .is_some_and(|u| store::authorize_shop(u, &s).is_ok());
    if !owner && !s.is_member() {
        return Err(AppError::NotFound);
    }
    let products = store::products_of_shop(&st.db, s.id, false).await?;
    let shop = if owner {
        ShopView::Full(Box::new(s))
    } else {
        ShopView::Public(s.public())
    };
    Ok(Json(ShopDetailOut { shop, products }))
}

#[derive(Deserialize, ToSchema)]
struct MembershipBody {
    decision: Option<String>,
    #[serde(default)]
    reason: String,
}

/// `POST /shops/{slug}/membership {"decision":"accept"|"reject","reason"?}`: the village's
/// moderator (or an admin) decides on a shop asking to join the board.
/// Whether each channel can reach the shop now, and what is missing (owner, admins).
#[utoipa::path(get, path = "/shops/{slug}/notice-channels", tag = "shops", params(ShopSlug),
    security(("bearer" = [])), responses((status = 200, body = ChannelsOut)))]
async fn notice_channels(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
) -> Result<Json<impl Serialize>> {
    let shop = store::shop_by_slug(&st.db, &slug).await?;
    store::authorize_shop(&user, &shop)?;
    Ok(Json(ChannelsOut {
        channels: crate::catalog::reach(&st.config.notify, &shop).to_vec(),
    }))
}

/// Queue a test notice on every channel of the shop (3 an hour).
#[utoipa::path(post, path = "/shops/{slug}/test-notice", tag = "shops", params(ShopSlug),
    security(("bearer" = [])),
    responses((status = 202, body = QueuedOut), (status = 429, description = "Three test notices an hour")))]
async fn test_notice(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
) -> Result<Response> {
    let shop = store::shop_by_slug(&st.db, &slug).await?;
    store::authorize_shop(&user, &shop)?;
    crate::notify::send_test(&st.db, shop.id.0).await?;
    Ok((StatusCode::ACCEPTED, Json(QueuedOut { queued: true })).into_response())
}

#[utoipa::path(post, path = "/shops/{slug}/membership", tag = "shops", params(ShopSlug),
    security(("bearer" = [])), request_body = MembershipBody,
    responses((status = 200, body = ShopOut), (status = 409), (status = 422)))]
async fn decide_membership(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
    ApiJson(b): ApiJson<MembershipBody>,
) -> Result<Json<impl Serialize>> {
    let s = store::shop_by_slug(&st.db, &slug).await?;
    let accept = match b.decision.as_deref() {
        Some("accept") => true,
        Some("reject") => false,
        _ => {
            return Err(AppError::field(
                "decision",
                "Cần \"accept\" (chấp nhận) hoặc \"reject\" (từ chối)",
            ));
        }
    };
    let s = store::decide_membership(&st.db, &user, &s, accept, &b.reason).await?;
    Ok(Json(ShopOut { shop: s }))
}

/// `GET /villages/{slug}/join-requests`: shops waiting for the moderator.
#[utoipa::path(get, path = "/villages/{slug}/join-requests", tag = "shops", params(VillageSlug),
    security(("bearer" = [])), responses((status = 200, body = JoinRequestsOut)))]
async fn join_requests(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
) -> Result<Json<impl Serialize>> {
    let v = store::village_by_slug(&st.db, &slug).await?;
    if !crate::accounts::store::can_moderate(&st.db, &user, v.id.0).await? {
        return Err(AppError::Forbidden);
    }
    let shops = store::join_requests(&st.db, v.id)
        .await?
        .into_iter()
        .map(|j| JoinRequest {
            slug: j.slug,
            name: j.name,
            owner: j.owner,
            phone: j.phone,
            makes: j.makes,
        })
        .collect();
    let products = store::item_requests(&st.db, v.id)
        .await?
        .into_iter()
        .map(|(slug, name, shop, item)| ItemJoinRequest {
            slug,
            name,
            shop,
            item,
        })
        .collect();
    Ok(Json(JoinRequestsOut { shops, products }))
}

/// Shop fields in JSON; every field optional so PATCH can send only what changes.
#[derive(Deserialize, Default, ToSchema)]
struct ShopBody {
    village: Option<String>,
    name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    zalo_phone: Option<String>,
    #[schema(schema_with = super::openapi::text_or_number)]
    telegram_chat_id: Option<Value>,
    #[schema(schema_with = super::openapi::text_or_number)]
    bank_bin: Option<Value>,
    #[schema(schema_with = super::openapi::text_or_number)]
    bank_account_no: Option<Value>,
    bank_account_name: Option<String>,
    story: Option<String>,
    /// Your password: needed to change the shop's email.
    password: Option<String>,
    notify_email: Option<bool>,
    notify_zalo: Option<bool>,
    notify_telegram: Option<bool>,
}

impl ShopBody {
    fn over(self, base: ShopInput) -> ShopInput {
        let tg = self
            .telegram_chat_id
            .as_ref()
            .map(|v| text(&Some(v.clone())));
        let bin = self.bank_bin.as_ref().map(|v| text(&Some(v.clone())));
        let acct = self
            .bank_account_no
            .as_ref()
            .map(|v| text(&Some(v.clone())));
        ShopInput {
            name: self.name.unwrap_or(base.name),
            phone: self.phone.unwrap_or(base.phone),
            email: self.email.unwrap_or(base.email),
            zalo_phone: self.zalo_phone.unwrap_or(base.zalo_phone),
            telegram_chat_id: tg.unwrap_or(base.telegram_chat_id),
            bank_bin: bin.unwrap_or(base.bank_bin),
            bank_account_no: acct.unwrap_or(base.bank_account_no),
            bank_account_name: self.bank_account_name.unwrap_or(base.bank_account_name),
            story: self.story.unwrap_or(base.story),
            password: self.password.unwrap_or_default(),
            notify_email: self
                .notify_email
                .map(|b| b.then(|| "1".into()))
                .unwrap_or(base.notify_email),
            notify_zalo: self
                .notify_zalo
                .map(|b| b.then(|| "1".into()))
                .unwrap_or(base.notify_zalo),
            notify_telegram: self
                .notify_telegram
                .map(|b| b.then(|| "1".into()))
                .unwrap_or(base.notify_telegram),
        }
    }
}

#[utoipa::path(post, path = "/shops", tag = "shops", security(("bearer" = [])),
    request_body = ShopBody,
    responses((status = 201, body = ShopOut), (status = 409), (status = 422)))]
async fn create_shop(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(b): ApiJson<ShopBody>,
) -> Result<Response> {
    let village_slug = b.village.clone().unwrap_or_default();
    let village = store::village_by_slug(&st.db, &village_slug)
        .await
        .map_err(|_| AppError::field("village", "không có làng này"))?;
    let on = Some("1".to_string());
    let defaults = ShopInput {
        notify_email: on.clone(),
        notify_zalo: on.clone(),
        notify_telegram: on,
        ..Default::default()
    };
    let fields = b.over(defaults).parse()?;
    let shop = store::create_shop(&st.db, &st.config, &user, &village, &fields).await?;
    Ok(created(ShopOut { shop }))
}

#[utoipa::path(patch, path = "/shops/{slug}", tag = "shops", params(ShopSlug),
    security(("bearer" = [])), request_body = ShopBody,
    responses((status = 200, body = ShopOut), (status = 409), (status = 422)))]
async fn update_shop(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
    ApiJson(b): ApiJson<ShopBody>,
) -> Result<Json<impl Serialize>> {
    let s = store::shop_by_slug(&st.db, &slug).await?;
    store::authorize_shop(&user, &s)?;
    if b.village.is_some() {
        return Err(AppError::field(
            "village",
            "không thể chuyển cửa hàng sang làng khác",
        ));
    }
    let input = b.over(ShopInput::from_shop(&s));
    let fields = input.parse()?;
    Ok(Json(ShopOut {
        shop: store::update_shop(&st.db, &st.config, &user, &s, &fields, &input.password).await?,
    }))
}

/// `?shop=` or `?village=`: that storefront's products by name, `per_page` (default and at
/// most 200) at a time, with how many there are in all; neither: the newest products.
#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct ProductListQuery {
    village: Option<String>,
    shop: Option<String>,
    /// 1-based page of a shop's or village's list.
    page: Option<i64>,
    /// Products per page, 1 to 200 (200 when not given).
    per_page: Option<i64>,
}

const MAX_PRODUCTS_PER_PAGE: i64 = 200;

#[utoipa::path(get, path = "/products", tag = "products", params(ProductListQuery),
    responses((status = 200, body = ProductsOut), (status = 404, description = "No such shop or village"),
        (status = 422, description = "page or per_page out of range")))]
async fn products(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<ProductListQuery>,
) -> Result<Json<impl Serialize>> {
    let page = q.page.unwrap_or(1);
    if page < 1 {
        return Err(AppError::field("page", "trang bắt đầu từ 1"));
    }
    let per_page = q.per_page.unwrap_or(MAX_PRODUCTS_PER_PAGE);
    if !(1..=MAX_PRODUCTS_PER_PAGE).contains(&per_page) {
        return Err(AppError::field(
            "per_page",
            format!("mỗi trang từ 1 đến {MAX_PRODUCTS_PER_PAGE} sản phẩm"),
        ));
    }
    let of = match (q.shop, q.village) {
        (Some(slug), _) => Some(store::Storefront::Shop(
            store::shop_by_slug(&st.db, &slug).await?.id,
        )),
        (None, Some(slug)) => Some(store::Storefront::Village(
            store::village_by_slug(&st.db, &slug).await?.id,
        )),
        (None, None) => None,
    };
    let Some(of) = of else {
        let products = store::newest_products(&st.db, per_page).await?;
        return Ok(Json(ProductsOut {
            page: 1,
            per_page,
            total: None,
            products,
        }));
    };
    let offset = (page - 1).saturating_mul(per_page);
    let (products, total) = store::storefront_page(&st.db, of, per_page, offset).await?;
    Ok(Json(ProductsOut {
        page,
        per_page,
        total: Some(total),
        products,
    }))
}

#[utoipa::path(get, path = "/products/{slug}", tag = "products", params(ProductSlug),
    responses((status = 200, body = ProductOut)))]
async fn product(
    State(st): State<AppState>,
    ApiPath(slug): ApiPath<String>,
) -> Result<Json<impl Serialize>> {
    let p = store::product_by_slug(&st.db, &slug).await?;
    if !p.card.active {
        return Err(AppError::NotFound);
    }
    Ok(Json(ProductOut { product: p }))
}

/// Product fields in JSON. A price cannot be sent: it comes from the village board.
#[derive(Deserialize, Default, ToSchema)]
struct ProductBody {
    shop: Option<String>,
    name: Option<String>,
    description: Option<String>,
    category: Option<String>,
    #[schema(schema_with = super::openapi::text_or_number)]
    stock: Option<Value>,
    #[schema(schema_with = super::openapi::text_or_number)]
    ocop_stars: Option<Value>,
    maker: Option<String>,
    materials: Option<String>,
    made_in: Option<String>,
    #[schema(schema_with = super::openapi::text_or_number)]
    price_item_id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = super::openapi::text_or_number)]
    gtin: Option<Value>,
    #[schema(schema_with = super::openapi::text_or_number)]
    ocop_cert_no: Option<Value>,
    #[schema(schema_with = super::openapi::text_or_number)]
    ocop_cert_year: Option<Value>,
    /// A batch code, or null to sell from the newest batch.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = super::openapi::text_or_number)]
    current_batch: Option<Value>,
    active: Option<bool>,
    /// Weight packed, in grams (for carriers' quotes; never shown to buyers). Null for the
    /// category's default.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = super::openapi::text_or_number)]
    weight_g: Option<Value>,
    /// Packed size in cm, each null for the category's default.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = super::openapi::text_or_number)]
    length_cm: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = super::openapi::text_or_number)]
    width_cm: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = super::openapi::text_or_number)]
    height_cm: Option<Value>,
    #[schema(schema_with = super::openapi::text_or_number)]
    price_vnd: Option<Value>,
    #[schema(schema_with = super::openapi::text_or_number)]
    price: Option<Value>,
}

impl ProductBody {
    fn refuse_price(&self) -> Result<()> {
        if self.price_vnd.is_some() || self.price.is_some() {
            return Err(AppError::field(
                "price_vnd",
                "giá do bảng giá cộng đồng của làng quyết định; hãy chọn price_item_id hoặc đề xuất giá mới",
            ));
        }
        Ok(())
    }

    fn over(self, base: ProductInput) -> ProductInput {
        let opt = |v: &Option<Value>| v.as_ref().map(|x| text(&Some(x.clone())));
        ProductInput {
            stock: opt(&self.stock).unwrap_or(base.stock),
            ocop_stars: opt(&self.ocop_stars).unwrap_or(base.ocop_stars),
            price_item_id: opt(&self.price_item_id).unwrap_or(base.price_item_id),
            gtin: opt(&self.gtin).unwrap_or(base.gtin),
            ocop_cert_no: opt(&self.ocop_cert_no).unwrap_or(base.ocop_cert_no),
            ocop_cert_year: opt(&self.ocop_cert_year).unwrap_or(base.ocop_cert_year),
            name: self.name.unwrap_or(base.name),
            description: self.description.unwrap_or(base.description),
            category: self.category.unwrap_or(base.category),
            maker: self.maker.unwrap_or(base.maker),
            materials: self.materials.unwrap_or(base.materials),
            made_in: self.made_in.unwrap_or(base.made_in),
            weight_g: opt(&self.weight_g).unwrap_or(base.weight_g),
            length_cm: opt(&self.length_cm).unwrap_or(base.length_cm),
            width_cm: opt(&self.width_cm).unwrap_or(base.width_cm),
            height_cm: opt(&self.height_cm).unwrap_or(base.height_cm),
        }
    }
}

#[utoipa::path(post, path = "/products", tag = "products", security(("bearer" = [])),
    request_body = ProductBody,
    responses((status = 201, body = ProductOut), (status = 409), (status = 422)))]
async fn create_product(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(b): ApiJson<ProductBody>,
) -> Result<Response> {
    b.refuse_price()?;
    let shop_slug = b.shop.clone().unwrap_or_default();
    let shop = store::shop_by_slug(&st.db, &shop_slug)
        .await
        .map_err(|_| AppError::field("shop", "không có cửa hàng này"))?;
    store::authorize_shop_work(&user, &shop)?;
    let fields = b.over(ProductInput::default()).parse()?;
    let p = store::create_product(&st.db, &shop, &fields).await?;
    crate::catalog::helpers::record(
        &st.db,
        &user,
        &shop,
        &format!("đăng sản phẩm “{}”", p.card.name),
    )
    .await?;
    Ok(created(ProductOut { product: p }))
}

#[utoipa::path(patch, path = "/products/{slug}", tag = "products", params(ProductSlug),
    security(("bearer" = [])), request_body = ProductBody,
    responses((status = 200, body = ProductUpdatedOut), (status = 409), (status = 422)))]
async fn update_product(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
    ApiJson(b): ApiJson<ProductBody>,
) -> Result<Json<impl Serialize>> {
    b.refuse_price()?;
    let p = store::product_by_slug(&st.db, &slug).await?;
    let shop = store::shop_by_id(&st.db, p.shop_id).await?;
    store::authorize_shop_work(&user, &shop)?;
    if b.shop.is_some() {
        return Err(AppError::field(
            "shop",
            "không thể chuyển sản phẩm sang cửa hàng khác",
        ));
    }
    let active = b.active;
    let current_batch = b.current_batch.clone();
    // A PATCH validates what it changes: the OCOP claim only when it is in the body.
    let ocop_untouched =
        b.ocop_stars.is_none() && b.ocop_cert_no.is_none() && b.ocop_cert_year.is_none();
    let fields = b
        .over(ProductInput::from_detail(&p))
        .parse_with(ocop_untouched)?;
    if let Some(v) = &current_batch {
        // Checked before anything is written: a bad code leaves the product as it was.
        let code = text(&Some(v.clone()));
        let code = code.trim();
        if !code.is_empty() {
            let b = crate::origin::store::by_code(&st.db, code)
                .await
                .map_err(|_| AppError::field("current_batch", "Không có lô này"))?;
            if b.product_id != p.card.id.0 {
                return Err(AppError::field(
                    "current_batch",
                    "Lô này thuộc sản phẩm khác",
                ));
            }
        }
    }
    let mut updated = store::update_product(&st.db, &shop, &p, &fields).await?;
    crate::catalog::helpers::record(
        &st.db,
        &user,
        &shop,
        &format!("sửa sản phẩm “{}”", updated.card.name),
    )
    .await?;
    if let Some(v) = current_batch {
        let code = text(&Some(v));
        let code = Some(code.trim()).filter(|c| !c.is_empty());
        crate::origin::store::set_current(&st.db, updated.card.id.0, code).await?;
    }
    // A product asking for its item stays unlisted until the moderator decides; its
    // `item_request` says so.
    if let Some(a) = active
        && updated.item_request.is_none()
    {
        store::set_product_active(&st.db, updated.card.id, a).await?;
        updated = store::product_by_slug(&st.db, &slug).await?;
    }
    let current = crate::origin::store::chosen_code(&st.db, updated.card.id.0).await?;
    Ok(Json(ProductUpdatedOut {
        product: updated,
        current_batch: current,
    }))
}

#[derive(Deserialize, ToSchema)]
struct OcopDecision {
    #[serde(default)]
    decision: String,
}

/// `POST /products/{slug}/ocop {"decision": "confirm"|"reject"}`: the village's moderator
/// (or an admin) checked the OCOP certificate.
#[utoipa::path(post, path = "/products/{slug}/ocop", tag = "products", params(ProductSlug),
    security(("bearer" = [])), request_body = OcopDecision,
    responses((status = 200, body = ProductOut), (status = 409), (status = 422)))]
async fn decide_ocop(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
    ApiJson(b): ApiJson<OcopDecision>,
) -> Result<Json<impl Serialize>> {
    let confirm = crate::catalog::parse_ocop_decision(&b.decision)?;
    store::decide_ocop(&st.db, &user, &slug, confirm).await?;
    let p = store::product_by_slug(&st.db, &slug).await?;
    Ok(Json(ProductOut { product: p }))
}

#[derive(Deserialize, ToSchema)]
struct ItemDecision {
    #[serde(default)]
    decision: String,
    /// Required when refusing (at least 10 characters; the seller reads it).
    #[serde(default)]
    reason: String,
}

/// `POST /products/{slug}/item-decision {"decision": "accept"|"reject", "reason"}`: the
/// village's moderator lets a product take its price item under another name (it is listed
/// at once), or refuses.
#[utoipa::path(post, path = "/products/{slug}/item-decision", tag = "products", params(ProductSlug),
    security(("bearer" = [])), request_body = ItemDecision,
    responses((status = 200, body = ProductOut), (status = 403), (status = 409), (status = 422)))]
async fn decide_item(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(slug): ApiPath<String>,
    ApiJson(b): ApiJson<ItemDecision>,
) -> Result<Json<impl Serialize>> {
    let accept = crate::catalog::parse_item_decision(&b.decision)?;
    let p = store::decide_item_request(&st.db, &user, &slug, accept, &b.reason).await?;
    Ok(Json(ProductOut { product: p }))
}

#[derive(Deserialize, ToSchema)]
struct CheckoutBody {
    #[serde(default)]
    items: Vec<crate::orders::checkout::RawItem>,
    #[serde(default)]
    buyer: crate::orders::checkout::RawBuyer,
    #[serde(default)]
    method: String,
    /// The way to ship chosen for each shop's order: shop slug → an option `id` from
    /// `POST /checkout/quote`. Needed for each shop that set its ways to ship.
    #[serde(default)]
    shipping: std::collections::BTreeMap<String, String>,
}

/// `POST /checkout`: prices and totals come from the board, never from the client.
#[utoipa::path(post, path = "/checkout", tag = "checkout", request_body = CheckoutBody,
    responses((status = 201, body = crate::payments::service::CheckoutOut),
        (status = 409, description = "Out of stock, or a product is no longer sold"),
        (status = 422), (status = 429)))]
async fn checkout(
    State(st): State<AppState>,
    client: ClientIp,
    ApiJson(b): ApiJson<CheckoutBody>,
) -> Result<Response> {
    let req = crate::orders::checkout::validate(&b.items, &b.buyer, &b.method, &b.shipping)?;
    let checkout_id =
        crate::payments::service::start(&st.db, &st.config, &req, &client.key()).await?;
    Ok(created(
        crate::payments::service::checkout_out(&st.db, &st.config, checkout_id).await?,
    ))
}

#[utoipa::path(get, path = "/payments/{code}", tag = "checkout", params(CodeParam),
    responses((status = 200, body = crate::payments::service::PaymentState)))]
async fn payment(
    State(st): State<AppState>,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<impl Serialize>> {
    let p = crate::payments::store::payment_by_code(&st.db, &code).await?;
    Ok(Json(crate::payments::service::payment_status(&p)))
}

// ---------------------------------------------------------------------------------------
// Response bodies (the document's schemas come from these types)

#[derive(Serialize, ToSchema)]
pub struct MessageOut {
    /// A sentence for the person, in Vietnamese.
    message: String,
}

impl MessageOut {
    pub(super) fn new(m: &str) -> Self {
        MessageOut { message: m.into() }
    }
}

#[derive(Serialize, ToSchema)]
pub(super) struct LoginOut {
    user: accounts::User,
    /// Send as `Authorization: Bearer <token>`.
    token: String,
}

impl LoginOut {
    pub(super) fn new(user: accounts::User, token: String) -> LoginOut {
        LoginOut { user, token }
    }
}

#[derive(Serialize, ToSchema)]
struct MeOut {
    user: accounts::User,
    shops: Vec<Shop>,
}

#[derive(Serialize, ToSchema)]
struct VillagesOut {
    villages: Vec<Village>,
}

#[derive(Serialize, ToSchema)]
struct VillageOut {
    village: Village,
}

#[derive(Serialize, ToSchema)]
struct Quorum {
    /// Accepted shops that can vote.
    voters: i64,
    /// Yes votes a proposal needs to pass.
    yes_needed: i64,
}

#[derive(Serialize, ToSchema)]
struct VillageDetailOut {
    village: Village,
    shops: Vec<PublicShop>,
    quorum: Quorum,
}

#[derive(Serialize, ToSchema)]
struct PriceItemsOut {
    price_items: Vec<PriceItem>,
}

#[derive(Serialize, ToSchema)]
struct PriceItemOut {
    price_item: PriceItem,
}

#[derive(Serialize, ToSchema)]
struct PriceItemDetailOut {
    price_item: PriceItem,
    /// Every change of the agreed price, oldest first.
    history: Vec<PriceChange>,
    products: Vec<ProductCard>,
}

#[derive(Serialize, ToSchema)]
struct CategoriesOut {
    categories: Vec<Category>,
}

#[derive(Serialize, ToSchema)]
struct CategoryOut {
    category: Category,
}

#[derive(Serialize, ToSchema)]
struct ProposalsOut {
    proposals: Vec<Proposal>,
}

#[derive(Serialize, ToSchema)]
struct ProposalOut {
    proposal: Proposal,
}

#[derive(Serialize, ToSchema)]
struct PublicShopsOut {
    shops: Vec<PublicShop>,
}

/// The shop's owner and admins see every field; everyone else its public face.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum ShopView {
    Full(Box<Shop>),
    Public(PublicShop),
}

#[derive(Serialize, ToSchema)]
struct ShopDetailOut {
    shop: ShopView,
    products: Vec<ProductCard>,
}

#[derive(Serialize, ToSchema)]
struct ShopOut {
    shop: Shop,
}

#[derive(Serialize, ToSchema)]
struct ChannelsOut {
    channels: Vec<crate::catalog::Reach>,
}

#[derive(Serialize, ToSchema)]
pub struct QueuedOut {
    pub queued: bool,
}

#[derive(Serialize, ToSchema)]
struct JoinRequest {
    slug: String,
    name: String,
    /// The owner's display name.
    owner: String,
    /// The shop's phone, to call before deciding.
    phone: String,
    /// What the shop says it makes (its story, shortened).
    makes: String,
}

#[derive(Serialize, ToSchema)]
struct JoinRequestsOut {
    shops: Vec<JoinRequest>,
    /// Products asking to take a price item under another name (not listed until decided).
    products: Vec<ItemJoinRequest>,
}

#[derive(Serialize, ToSchema)]
struct ItemJoinRequest {
    slug: String,
    name: String,
    shop: String,
    /// The price item it asks for.
    item: String,
}

#[derive(Serialize, ToSchema)]
struct ProductsOut {
    products: Vec<ProductCard>,
    page: i64,
    per_page: i64,
    /// Products of the shop or village in all (absent for the newest products).
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct ProductOut {
    product: ProductDetail,
}

#[derive(Serialize, ToSchema)]
struct ProductUpdatedOut {
    product: ProductDetail,
    /// The batch sold now (chosen, or the newest), if any.
    current_batch: Option<String>,
}
