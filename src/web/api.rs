//! JSON API under `/api/v1`: the same rules and authorization as the pages.
//! Auth: `POST /auth/login` returns a bearer token; send `Authorization: Bearer <token>`.
//! Errors: `{"error":{"code","message","fields"}}` (see `error.rs`).

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::ClientIp;
use super::session::{CurrentUser, session_token};
use crate::accounts::{self, NewUser, Role};
use crate::app::AppState;
use crate::catalog::store::NewVillage;
use crate::catalog::{ProductInput, ShopInput, store};
use crate::domain::text::clean_line;
use crate::error::{AppError, FieldErrors, Result};
use crate::pricing::store as pricing;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/logout-all", post(logout_all))
        .route("/auth/password", post(change_password))
        .route("/auth/password-reset", post(password_reset))
        .route("/auth/password-reset/confirm", post(password_reset_confirm))
        .route("/me", get(me))
        .route("/villages", get(villages).post(create_village))
        .route("/villages/{slug}", get(village))
        .route(
            "/villages/{slug}/price-items",
            get(price_items).post(create_price_item),
        )
        .route("/villages/{slug}/proposals", get(village_proposals))
        .route(
            "/villages/{slug}/categories",
            get(categories).post(create_category),
        )
        .route(
            "/villages/{slug}/categories/{id}",
            axum::routing::patch(rename_category).delete(remove_category),
        )
        .route("/price-items/{id}", get(price_item))
        .route("/price-items/{id}/proposals", post(propose))
        .route("/proposals/{id}", get(proposal))
        .route("/proposals/{id}/votes", post(vote))
        .route("/proposals/{id}/approve", post(approve))
        .route("/proposals/{id}/reject", post(reject))
        .route("/shops", get(shops).post(create_shop))
        .route("/shops/{slug}", get(shop).patch(update_shop))
        .route("/shops/{slug}/membership", post(decide_membership))
        .route("/shops/{slug}/notice-channels", get(notice_channels))
        .route("/shops/{slug}/test-notice", post(test_notice))
        .route("/villages/{slug}/join-requests", get(join_requests))
        .route("/products", get(products).post(create_product))
        .route("/products/{slug}", get(product).patch(update_product))
        .route("/products/{slug}/ocop", post(decide_ocop))
        .route("/checkout", post(checkout))
        .route("/payments/{code}", get(payment))
}

/// `Json` whose rejections use our error body.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct ApiJson<T>(pub T);

impl From<JsonRejection> for AppError {
    fn from(r: JsonRejection) -> Self {
        AppError::BadRequest(format!("nội dung JSON không hợp lệ: {}", r.body_text()))
    }
}

fn created(v: Value) -> Response {
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

#[derive(Deserialize)]
struct RegisterBody {
    #[serde(default)]
    login: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
}

/// The same 202 answer whether or not the login already had an account (its owner is told
/// by notice instead); the new seller then logs in with `POST /auth/login`.
async fn register(
    State(st): State<AppState>,
    client: ClientIp,
    ApiJson(b): ApiJson<RegisterBody>,
) -> Result<Response> {
    let new = NewUser::parse(&b.login, &b.display_name, &b.password, Role::Seller)?;
    super::auth::register_limited(&st, &client, new).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"message": accounts::reset::REGISTERED})),
    )
        .into_response())
}

#[derive(Deserialize)]
struct LoginBody {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
}

async fn login(
    State(st): State<AppState>,
    client: ClientIp,
    ApiJson(b): ApiJson<LoginBody>,
) -> Result<Json<Value>> {
    let user = match super::auth::authenticate(&st, &b.login, &b.password, client).await {
        Err(AppError::Validation(_)) => return Err(AppError::Unauthorized),
        other => other?,
    };
    let token = accounts::store::create_session(&st.db, user.id, st.config.session_days).await?;
    Ok(Json(json!({"user": user, "token": token})))
}

async fn logout(State(st): State<AppState>, req: axum::extract::Request) -> Result<StatusCode> {
    let (parts, _) = req.into_parts();
    if let Some(t) = session_token(&parts) {
        accounts::store::delete_session(&st.db, &t).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn logout_all(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<StatusCode> {
    accounts::store::delete_sessions_of(&st.db, user.id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct PasswordBody {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

/// Change the password; every other session of the account ends, this token stays valid.
async fn change_password(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    req_parts: axum::http::HeaderMap,
    ApiJson(b): ApiJson<PasswordBody>,
) -> Result<Json<Value>> {
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
    Ok(Json(
        json!({"message": "Đã đổi mật khẩu; các phiên đăng nhập khác đã kết thúc."}),
    ))
}

#[derive(Deserialize)]
struct ResetBody {
    #[serde(default)]
    login: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    new_password: String,
}

/// Ask for a reset code: 202 whether or not the account exists.
async fn password_reset(
    State(st): State<AppState>,
    client: ClientIp,
    ApiJson(b): ApiJson<ResetBody>,
) -> Result<Response> {
    accounts::reset::request_reset(&st.db, &st.config, &b.login, &client.key()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"message": accounts::reset::RESET_SENT})),
    )
        .into_response())
}

async fn password_reset_confirm(
    State(st): State<AppState>,
    ApiJson(b): ApiJson<ResetBody>,
) -> Result<Json<Value>> {
    accounts::reset::finish_reset(&st.db, &b.login, &b.code, &b.new_password).await?;
    Ok(Json(
        json!({"message": "Đã đặt mật khẩu mới; hãy đăng nhập lại."}),
    ))
}

async fn me(State(st): State<AppState>, CurrentUser(user): CurrentUser) -> Result<Json<Value>> {
    let shops = store::shops_of_owner(&st.db, &user).await?;
    Ok(Json(json!({"user": user, "shops": shops})))
}

async fn villages(State(st): State<AppState>) -> Result<Json<Value>> {
    Ok(Json(
        json!({"villages": store::list_villages(&st.db).await?}),
    ))
}

#[derive(Deserialize)]
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

async fn create_village(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(b): ApiJson<VillageBody>,
) -> Result<Response> {
    if !user.is_admin() {
        return Err(AppError::Forbidden);
    }
    let mut e = FieldErrors::new();
    let name = e.check("name", clean_line(&b.name, "tên làng", 80));
    let commune = e.check("commune", clean_line(&b.commune, "xã", 80));
    let district = e.check("district", clean_line(&b.district, "huyện", 80));
    let province = e.check("province", clean_line(&b.province, "tỉnh/thành phố", 80));
    let story = e.check(
        "story",
        crate::domain::text::clean_text(&b.story, "giới thiệu", 4000),
    );
    let min_yes = b.quorum_min_yes.unwrap_or(3);
    let percent = b.quorum_percent.unwrap_or(50);
    let days = b.proposal_days.unwrap_or(7);
    if !(1..=1000).contains(&min_yes) {
        e.add("quorum_min_yes", "số phiếu tối thiểu từ 1 đến 1000");
    }
    if !(0..=99).contains(&percent) {
        e.add("quorum_percent", "tỷ lệ từ 0 đến 99 (%)");
    }
    if !(1..=60).contains(&days) {
        e.add("proposal_days", "thời gian biểu quyết từ 1 đến 60 ngày");
    }
    e.into_result()?;
    let mut tx = st.db.begin().await?;
    let id = store::insert_village(
        &mut tx,
        &NewVillage {
            name: name.unwrap(),
            commune: commune.unwrap(),
            district: district.unwrap(),
            province: province.unwrap(),
            story: story.unwrap(),
        },
    )
    .await?;
    tx.commit().await.map_err(|e| {
        if crate::db::is_unique_violation(&e, "villages_slug_key") {
            AppError::Conflict("làng đã tồn tại".into())
        } else {
            e.into()
        }
    })?;
    store::set_quorum(&st.db, id, min_yes, percent, days).await?;
    let v = store::village_by_id(&st.db, id).await?;
    Ok(created(json!({"village": v})))
}

async fn village(State(st): State<AppState>, Path(slug): Path<String>) -> Result<Json<Value>> {
    let v = store::village_by_slug(&st.db, &slug).await?;
    let shops: Vec<Value> = store::shops_of_village(&st.db, v.id)
        .await?
        .iter()
        .map(|s| s.public_json())
        .collect();
    let (voters, needed) = pricing::quorum_status(&st.db, &v).await?;
    Ok(Json(
        json!({"village": v, "shops": shops, "quorum": {"voters": voters, "yes_needed": needed}}),
    ))
}

async fn price_items(State(st): State<AppState>, Path(slug): Path<String>) -> Result<Json<Value>> {
    let v = store::village_by_slug(&st.db, &slug).await?;
    Ok(Json(
        json!({"price_items": pricing::items_of_village(&st.db, v.id.0).await?}),
    ))
}

#[derive(Deserialize)]
struct ItemBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    unit: String,
    price_vnd: Option<Value>,
}

async fn create_price_item(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    ApiJson(b): ApiJson<ItemBody>,
) -> Result<Response> {
    let v = store::village_by_slug(&st.db, &slug).await?;
    let item =
        pricing::create_item(&st.db, &user, &v, &b.name, &b.unit, &text(&b.price_vnd)).await?;
    Ok(created(json!({"price_item": item})))
}

async fn categories(State(st): State<AppState>, Path(slug): Path<String>) -> Result<Json<Value>> {
    let v = store::village_by_slug(&st.db, &slug).await?;
    Ok(Json(
        json!({"categories": crate::catalog::categories::list(&st.db, v.id).await?}),
    ))
}

#[derive(Deserialize)]
struct CategoryBody {
    #[serde(default)]
    name: String,
}

async fn create_category(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    ApiJson(b): ApiJson<CategoryBody>,
) -> Result<Response> {
    let v = store::village_by_slug(&st.db, &slug).await?;
    let c = crate::catalog::categories::add(&st.db, &user, v.id, &b.name).await?;
    Ok(created(json!({"category": c})))
}

async fn rename_category(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path((slug, id)): Path<(String, i64)>,
    ApiJson(b): ApiJson<CategoryBody>,
) -> Result<Json<Value>> {
    let v = store::village_by_slug(&st.db, &slug).await?;
    let c = crate::catalog::categories::rename(&st.db, &user, v.id, id, &b.name).await?;
    Ok(Json(json!({"category": c})))
}

async fn remove_category(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path((slug, id)): Path<(String, i64)>,
) -> Result<StatusCode> {
    let v = store::village_by_slug(&st.db, &slug).await?;
    crate::catalog::categories::remove(&st.db, &user, v.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn village_proposals(
    State(st): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<Value>> {
    let v = store::village_by_slug(&st.db, &slug).await?;
    Ok(Json(
        json!({"proposals": pricing::proposals_of_village(&st.db, v.id.0).await?}),
    ))
}

async fn price_item(State(st): State<AppState>, Path(id): Path<i64>) -> Result<Json<Value>> {
    let item = pricing::item_by_id(&st.db, id).await?;
    let history = pricing::history_of_item(&st.db, id).await?;
    let listings = store::products_of_item(&st.db, id).await?;
    Ok(Json(
        json!({"price_item": item, "history": history, "products": listings}),
    ))
}

#[derive(Deserialize)]
struct ProposalBody {
    price_vnd: Option<Value>,
    #[serde(default)]
    reason: String,
}

async fn propose(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<ProposalBody>,
) -> Result<Response> {
    let p = pricing::propose(&st.db, &user, id, &text(&b.price_vnd), &b.reason).await?;
    Ok(created(json!({"proposal": p})))
}

async fn proposal(State(st): State<AppState>, Path(id): Path<i64>) -> Result<Json<Value>> {
    Ok(Json(
        json!({"proposal": pricing::proposal_by_id(&st.db, id).await?}),
    ))
}

#[derive(Deserialize)]
struct VoteBody {
    approve: Option<bool>,
}

async fn vote(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<VoteBody>,
) -> Result<Json<Value>> {
    let approve = b
        .approve
        .ok_or_else(|| AppError::field("approve", "cần true (đồng ý) hoặc false (không đồng ý)"))?;
    Ok(Json(
        json!({"proposal": pricing::vote(&st.db, &user, id, approve).await?}),
    ))
}

#[derive(Deserialize, Default)]
struct DecideBody {
    #[serde(default)]
    confirm: bool,
    #[serde(default)]
    reason: String,
}

/// `POST /proposals/{id}/approve {"confirm": true}`: the moderator confirms the new price.
async fn approve(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    // An empty body is allowed (and means "not confirmed").
    let confirm = if body.is_empty() {
        false
    } else {
        serde_json::from_slice::<DecideBody>(&body)
            .map_err(|e| AppError::BadRequest(format!("nội dung JSON không hợp lệ: {e}")))?
            .confirm
    };
    Ok(Json(
        json!({"proposal": pricing::approve_by_moderator(&st.db, &user, id, confirm).await?}),
    ))
}

/// `POST /proposals/{id}/reject {"reason"}`: the moderator rejects, with a public reason.
async fn reject(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<DecideBody>,
) -> Result<Json<Value>> {
    Ok(Json(
        json!({"proposal": pricing::reject_by_moderator(&st.db, &user, id, &b.reason).await?}),
    ))
}

#[derive(Deserialize, Default)]
struct ListQuery {
    village: Option<String>,
    shop: Option<String>,
}

async fn shops(State(st): State<AppState>, Query(q): Query<ListQuery>) -> Result<Json<Value>> {
    let list = match q.village {
        Some(slug) => {
            let v = store::village_by_slug(&st.db, &slug).await?;
            store::shops_of_village(&st.db, v.id).await?
        }
        None => store::all_shops(&st.db).await?,
    };
    let list: Vec<Value> = list.iter().map(|s| s.public_json()).collect();
    Ok(Json(json!({"shops": list})))
}

/// A shop: everyone sees its public face; its owner and admins also see its email, bank
/// account, notice settings and whether the village has accepted it.
async fn shop(
    State(st): State<AppState>,
    super::MaybeUser(user): super::MaybeUser,
    Path(slug): Path<String>,
) -> Result<Json<Value>> {
    let s = store::shop_by_slug(&st.db, &slug).await?;
    let owner = user
        .as_ref()
        .is_some_and(|u| store::authorize_shop(u, &s).is_ok());
    if !owner && !s.is_member() {
        return Err(AppError::NotFound);
    }
    let products = store::products_of_shop(&st.db, s.id, false).await?;
    let shop = if owner { json!(s) } else { s.public_json() };
    Ok(Json(json!({"shop": shop, "products": products})))
}

#[derive(Deserialize)]
struct MembershipBody {
    decision: Option<String>,
    #[serde(default)]
    reason: String,
}

/// `POST /shops/{slug}/membership {"decision":"accept"|"reject","reason"?}`: the village's
/// moderator (or an admin) decides on a shop asking to join the board.
/// Whether each channel can reach the shop now, and what is missing (owner, admins).
async fn notice_channels(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
) -> Result<Json<Value>> {
    let shop = store::shop_by_slug(&st.db, &slug).await?;
    store::authorize_shop(&user, &shop)?;
    Ok(Json(
        json!({"channels": crate::notify::reach(&st.config.notify, &shop)}),
    ))
}

/// Queue a test notice on every channel of the shop (3 an hour).
async fn test_notice(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
) -> Result<Response> {
    let shop = store::shop_by_slug(&st.db, &slug).await?;
    store::authorize_shop(&user, &shop)?;
    crate::notify::send_test(&st.db, shop.id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"queued": true}))).into_response())
}

async fn decide_membership(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    ApiJson(b): ApiJson<MembershipBody>,
) -> Result<Json<Value>> {
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
    Ok(Json(json!({"shop": s})))
}

/// `GET /villages/{slug}/join-requests`: shops waiting for the moderator.
async fn join_requests(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
) -> Result<Json<Value>> {
    let v = store::village_by_slug(&st.db, &slug).await?;
    if !crate::accounts::store::can_moderate(&st.db, &user, v.id.0).await? {
        return Err(AppError::Forbidden);
    }
    let list: Vec<Value> = store::join_requests(&st.db, v.id)
        .await?
        .into_iter()
        .map(|(slug, name, owner)| json!({"slug": slug, "name": name, "owner": owner}))
        .collect();
    Ok(Json(json!({"shops": list})))
}

/// Shop fields in JSON; every field optional so PATCH can send only what changes.
#[derive(Deserialize, Default)]
struct ShopBody {
    village: Option<String>,
    name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    zalo_phone: Option<String>,
    telegram_chat_id: Option<Value>,
    bank_bin: Option<Value>,
    bank_account_no: Option<Value>,
    bank_account_name: Option<String>,
    story: Option<String>,
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
    Ok(created(json!({"shop": shop})))
}

async fn update_shop(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    ApiJson(b): ApiJson<ShopBody>,
) -> Result<Json<Value>> {
    let s = store::shop_by_slug(&st.db, &slug).await?;
    store::authorize_shop(&user, &s)?;
    if b.village.is_some() {
        return Err(AppError::field(
            "village",
            "không thể chuyển cửa hàng sang làng khác",
        ));
    }
    if b.bank_bin.is_some() || b.bank_account_no.is_some() || b.bank_account_name.is_some() {
        return Err(AppError::field(
            "bank_bin",
            "Tài khoản nhận tiền được đổi qua PUT /api/v1/shops/{slug}/payout-account, kèm mật khẩu",
        ));
    }
    let fields = b.over(ShopInput::from_shop(&s)).parse()?;
    Ok(Json(
        json!({"shop": store::update_shop(&st.db, &st.config, &s, &fields).await?}),
    ))
}

async fn products(State(st): State<AppState>, Query(q): Query<ListQuery>) -> Result<Json<Value>> {
    let list = match (q.shop, q.village) {
        (Some(slug), _) => {
            let s = store::shop_by_slug(&st.db, &slug).await?;
            store::products_of_shop(&st.db, s.id, false).await?
        }
        (None, Some(slug)) => {
            let v = store::village_by_slug(&st.db, &slug).await?;
            store::products_of_village(&st.db, v.id).await?
        }
        (None, None) => store::newest_products(&st.db, 200).await?,
    };
    Ok(Json(json!({"products": list})))
}

async fn product(State(st): State<AppState>, Path(slug): Path<String>) -> Result<Json<Value>> {
    let p = store::product_by_slug(&st.db, &slug).await?;
    if !p.card.active {
        return Err(AppError::NotFound);
    }
    Ok(Json(json!({"product": p})))
}

/// Product fields in JSON. A price cannot be sent: it comes from the village board.
#[derive(Deserialize, Default)]
struct ProductBody {
    shop: Option<String>,
    name: Option<String>,
    description: Option<String>,
    category: Option<String>,
    stock: Option<Value>,
    ocop_stars: Option<Value>,
    maker: Option<String>,
    materials: Option<String>,
    made_in: Option<String>,
    price_item_id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    gtin: Option<Value>,
    ocop_cert_no: Option<Value>,
    ocop_cert_year: Option<Value>,
    /// A batch code, or null to sell from the newest batch.
    #[serde(default, deserialize_with = "present")]
    current_batch: Option<Value>,
    active: Option<bool>,
    price_vnd: Option<Value>,
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
        }
    }
}

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
    store::authorize_shop(&user, &shop)?;
    let fields = b.over(ProductInput::default()).parse()?;
    let p = store::create_product(&st.db, &shop, &fields).await?;
    Ok(created(json!({"product": p})))
}

async fn update_product(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    ApiJson(b): ApiJson<ProductBody>,
) -> Result<Json<Value>> {
    b.refuse_price()?;
    let p = store::product_by_slug(&st.db, &slug).await?;
    let shop = store::shop_by_id(&st.db, p.shop_id).await?;
    store::authorize_shop(&user, &shop)?;
    if b.shop.is_some() {
        return Err(AppError::field(
            "shop",
            "không thể chuyển sản phẩm sang cửa hàng khác",
        ));
    }
    let active = b.active;
    let current_batch = b.current_batch.clone();
    let fields = b.over(ProductInput::from_detail(&p)).parse()?;
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
    if let Some(v) = current_batch {
        let code = text(&Some(v));
        let code = Some(code.trim()).filter(|c| !c.is_empty());
        crate::origin::store::set_current(&st.db, updated.card.id.0, code).await?;
    }
    if let Some(a) = active {
        store::set_product_active(&st.db, updated.card.id, a).await?;
        updated = store::product_by_slug(&st.db, &slug).await?;
    }
    let current = crate::origin::store::chosen_code(&st.db, updated.card.id.0).await?;
    Ok(Json(json!({"product": updated, "current_batch": current})))
}

#[derive(Deserialize)]
struct OcopDecision {
    #[serde(default)]
    decision: String,
}

/// `POST /products/{slug}/ocop {"decision": "confirm"|"reject"}`: the village's moderator
/// (or an admin) checked the OCOP certificate.
async fn decide_ocop(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    ApiJson(b): ApiJson<OcopDecision>,
) -> Result<Json<Value>> {
    let confirm = crate::catalog::parse_ocop_decision(&b.decision)?;
    store::decide_ocop(&st.db, &user, &slug, confirm).await?;
    let p = store::product_by_slug(&st.db, &slug).await?;
    Ok(Json(json!({"product": p})))
}

#[derive(Deserialize)]
struct CheckoutBody {
    #[serde(default)]
    items: Vec<crate::orders::checkout::RawItem>,
    #[serde(default)]
    buyer: crate::orders::checkout::RawBuyer,
    #[serde(default)]
    method: String,
}

/// `POST /checkout`: prices and totals come from the board, never from the client.
async fn checkout(
    State(st): State<AppState>,
    client: ClientIp,
    ApiJson(b): ApiJson<CheckoutBody>,
) -> Result<Response> {
    let req = crate::orders::checkout::validate(&b.items, &b.buyer, &b.method)?;
    let checkout_id =
        crate::payments::service::start(&st.db, &st.config, &req, &client.key()).await?;
    Ok(created(
        crate::payments::service::checkout_json(&st.db, &st.config, checkout_id).await?,
    ))
}

async fn payment(State(st): State<AppState>, Path(code): Path<String>) -> Result<Json<Value>> {
    let p = crate::payments::store::payment_by_code(&st.db, &code).await?;
    Ok(Json(crate::payments::service::payment_status_json(&p)))
}
