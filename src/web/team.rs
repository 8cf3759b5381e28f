//! Phone codes over the API, reset codes given in person, and the village's digital team:
//! helpers named by the moderator, households brought online with their consent code, the
//! owner's view of (and veto over) their helpers. Pages and API call the same rooms
//! (`accounts::reset`, `accounts::phone`, `catalog::helpers`).

use askama::Template;
use axum::Form;
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::{ApiJson, ApiPath, LoginOut, MessageOut};
use super::openapi::{ShopSlug, VillageSlug};
use super::session::{CurrentUser, verify_csrf};
use super::{CsrfSeed, Layout, PageResult, render, see_other};
use crate::accounts::{self, User};
use crate::catalog::helpers::{self, Helper, Household, HouseholdTasks, NewHousehold, ShopHelper};
use crate::catalog::{Shop, store};
use crate::error::{AppError, FieldErrors, Result};
use crate::web::AppState;

pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(verify_phone))
        .routes(routes!(add_phone))
        .routes(routes!(confirm_phone))
        .routes(routes!(reset_code))
        .routes(routes!(list_helpers, name_helper))
        .routes(routes!(remove_helper))
        .routes(routes!(start_household))
        .routes(routes!(confirm_household))
        .routes(routes!(my_households))
        .routes(routes!(shop_helpers))
        .routes(routes!(revoke_helper))
}

pub fn page_router() -> Router<AppState> {
    Router::new()
        .route(
            "/quan-ly/lang/{slug}/to-cong-nghe",
            get(team_page).post(team_form),
        )
        .route("/quan-ly/cap-lai-mat-khau", post(reset_code_form))
        .route("/quan-ly/giup-ho", get(helper_page).post(household_form))
        .route("/quan-ly/giup-ho/{id}", post(household_code_form))
        .route(
            "/quan-ly/cua-hang/{slug}/nguoi-giup",
            get(owner_helpers_page).post(owner_revoke_form),
        )
}

// ---------------------------------------------------------------- API: phones and codes

#[derive(Deserialize, ToSchema)]
struct VerifyBody {
    #[serde(default)]
    login: String,
    #[serde(default)]
    code: String,
}

/// Prove a phone registration with the 6-digit code sent by Zalo or SMS: the account is
/// created and a session token returned.
#[utoipa::path(post, path = "/auth/verify-phone", tag = "accounts", request_body = VerifyBody,
    responses((status = 200, body = LoginOut), (status = 409, description = "The phone already has an account"),
        (status = 422, description = "Wrong, expired or used code")))]
async fn verify_phone(
    State(st): State<AppState>,
    ApiJson(b): ApiJson<VerifyBody>,
) -> Result<Json<LoginOut>> {
    let user = accounts::reset::verify_phone(&st.db, &st.config, &b.login, &b.code).await?;
    let token = accounts::store::create_session(&st.db, user.id, st.config.session_days).await?;
    Ok(Json(LoginOut::new(user, token)))
}

#[derive(Deserialize, ToSchema)]
struct PhoneBody {
    #[serde(default)]
    phone: String,
    #[serde(default)]
    code: String,
}

/// Send a code to prove a phone for this account (a new phone for an email account, or the
/// login phone of an account made before phones were proven).
#[utoipa::path(post, path = "/me/phone", tag = "accounts", request_body = PhoneBody,
    security(("bearer" = [])),
    responses((status = 202, body = MessageOut), (status = 422), (status = 429)))]
async fn add_phone(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(b): ApiJson<PhoneBody>,
) -> Result<Response> {
    accounts::reset::add_phone(&st.db, &st.config, &user, &b.phone).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(MessageOut::new(
            "Đã gửi mã 6 số qua Zalo hoặc tin nhắn SMS tới số này.",
        )),
    )
        .into_response())
}

#[utoipa::path(post, path = "/me/phone/confirm", tag = "accounts", request_body = PhoneBody,
    security(("bearer" = [])), responses((status = 200, body = MessageOut), (status = 422)))]
async fn confirm_phone(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(b): ApiJson<PhoneBody>,
) -> Result<Json<MessageOut>> {
    accounts::reset::confirm_phone(&st.db, &st.config, &user, &b.phone, &b.code).await?;
    Ok(Json(MessageOut::new("Đã xác nhận số điện thoại.")))
}

/// `{login}` of an account (phone or email).
#[derive(utoipa::IntoParams, Deserialize)]
#[into_params(parameter_in = Path)]
struct LoginPath {
    /// Phone (`0912000101`) or email.
    login: String,
}

/// A village moderator (for a seller with a shop in their village) or the admin issues a
/// one-time reset code, to read to the seller in person: valid 30 minutes, shown once,
/// audited; the seller is told on every channel they have.
#[utoipa::path(post, path = "/users/{login}/reset-code", tag = "accounts", params(LoginPath),
    security(("bearer" = [])),
    responses((status = 201, body = accounts::reset::InPersonCode), (status = 403), (status = 404), (status = 422), (status = 429)))]
async fn reset_code(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(p): ApiPath<LoginPath>,
) -> Result<Response> {
    let code = accounts::reset::issue_in_person(&st.db, &st.config, &user, &p.login).await?;
    Ok((StatusCode::CREATED, Json(code)).into_response())
}

// ---------------------------------------------------------------- API: the digital team

#[derive(Serialize, ToSchema)]
struct HelpersOut {
    helpers: Vec<Helper>,
}

#[utoipa::path(get, path = "/villages/{slug}/helpers", tag = "team", params(VillageSlug),
    security(("bearer" = [])), responses((status = 200, body = HelpersOut), (status = 403)))]
async fn list_helpers(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
) -> Result<Json<HelpersOut>> {
    let v = store::village_by_slug(&st.db, &slug).await?;
    Ok(Json(HelpersOut {
        helpers: helpers::helpers_of(&st.db, &user, &v).await?,
    }))
}

#[derive(Deserialize, ToSchema)]
struct LoginBody {
    #[serde(default)]
    login: String,
}

/// The village's moderator names a helper of its digital team.
#[utoipa::path(post, path = "/villages/{slug}/helpers", tag = "team", params(VillageSlug),
    request_body = LoginBody, security(("bearer" = [])),
    responses((status = 201, body = Helper), (status = 403), (status = 422)))]
async fn name_helper(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    ApiJson(b): ApiJson<LoginBody>,
) -> Result<Response> {
    let v = store::village_by_slug(&st.db, &slug).await?;
    let h = helpers::name_helper(&st.db, &user, &v, &b.login).await?;
    Ok((StatusCode::CREATED, Json(h)).into_response())
}

#[derive(utoipa::IntoParams, Deserialize)]
#[into_params(parameter_in = Path)]
struct SlugLogin {
    /// The village's or shop's slug.
    slug: String,
    /// The helper's phone or email.
    login: String,
}

#[utoipa::path(delete, path = "/villages/{slug}/helpers/{login}", tag = "team", params(SlugLogin),
    security(("bearer" = [])), responses((status = 204), (status = 403), (status = 404)))]
async fn remove_helper(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(p): ApiPath<SlugLogin>,
) -> Result<StatusCode> {
    let v = store::village_by_slug(&st.db, &p.slug).await?;
    helpers::remove_helper(&st.db, &user, &v, &p.login).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
struct HouseholdBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    shop_name: String,
}

/// A helper starts bringing a household online: the household's phone gets a code, which
/// the helper types in once the household agrees.
#[utoipa::path(post, path = "/villages/{slug}/households", tag = "team", params(VillageSlug),
    request_body = HouseholdBody, security(("bearer" = [])),
    responses((status = 202, body = Household), (status = 403), (status = 422), (status = 429)))]
async fn start_household(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    ApiJson(b): ApiJson<HouseholdBody>,
) -> Result<Response> {
    let v = store::village_by_slug(&st.db, &slug).await?;
    let new = NewHousehold::parse(&b.name, &b.phone, &b.shop_name)?;
    let h = helpers::start_household(&st.db, &st.config, &user, &v, new).await?;
    Ok((StatusCode::ACCEPTED, Json(h)).into_response())
}

#[derive(utoipa::IntoParams, Deserialize)]
#[into_params(parameter_in = Path)]
struct HouseholdId {
    /// The household's id (from `POST /villages/{slug}/households`).
    id: i64,
}

#[derive(Deserialize, ToSchema)]
struct CodeBody {
    #[serde(default)]
    code: String,
}

#[derive(Serialize, ToSchema)]
struct HouseholdOut {
    /// The household's login (its phone).
    login: String,
    display_name: String,
    shop: Shop,
}

/// The helper types the code the household received: its account and shop exist, with the
/// helper's rights on the shop.
#[utoipa::path(post, path = "/households/{id}/confirm", tag = "team", params(HouseholdId),
    request_body = CodeBody, security(("bearer" = [])),
    responses((status = 201, body = HouseholdOut), (status = 404), (status = 409), (status = 422)))]
async fn confirm_household(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(p): ApiPath<HouseholdId>,
    ApiJson(b): ApiJson<CodeBody>,
) -> Result<Response> {
    let (owner, shop) =
        helpers::confirm_household(&st.db, &st.config, &user, p.id, &b.code).await?;
    Ok((
        StatusCode::CREATED,
        Json(HouseholdOut {
            login: owner.phone.clone().unwrap_or_default(),
            display_name: owner.display_name,
            shop,
        }),
    )
        .into_response())
}

#[derive(Serialize, ToSchema)]
struct MyHouseholdsOut {
    households: Vec<Household>,
    /// What needs doing at each household this helper helps now.
    tasks: Vec<HouseholdTasks>,
}

#[utoipa::path(get, path = "/me/households", tag = "team", security(("bearer" = [])),
    responses((status = 200, body = MyHouseholdsOut)))]
async fn my_households(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<MyHouseholdsOut>> {
    Ok(Json(MyHouseholdsOut {
        households: helpers::households_of(&st.db, &user).await?,
        tasks: helpers::tasks(&st.db, &user).await?,
    }))
}

#[derive(Serialize, ToSchema)]
struct ShopHelpersOut {
    helpers: Vec<ShopHelper>,
    /// What helpers did for the shop, newest first.
    actions: Vec<helpers::HelperAction>,
}

/// The shop's helpers and what they did (the owner's view).
#[utoipa::path(get, path = "/shops/{slug}/helpers", tag = "team", params(ShopSlug),
    security(("bearer" = [])), responses((status = 200, body = ShopHelpersOut), (status = 403)))]
async fn shop_helpers(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
) -> Result<Json<ShopHelpersOut>> {
    let shop = store::shop_by_slug(&st.db, &slug).await?;
    let (helpers, actions) = helpers::for_owner(&st.db, &user, &shop, 100).await?;
    Ok(Json(ShopHelpersOut { helpers, actions }))
}

/// The owner takes a helper's rights on the shop away.
#[utoipa::path(delete, path = "/shops/{slug}/helpers/{login}", tag = "team", params(SlugLogin),
    security(("bearer" = [])), responses((status = 204), (status = 403), (status = 404)))]
async fn revoke_helper(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(p): ApiPath<SlugLogin>,
) -> Result<StatusCode> {
    let shop = store::shop_by_slug(&st.db, &p.slug).await?;
    helpers::revoke(&st.db, &user, &shop, &p.login).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- pages

fn field_errors(e: AppError, field: &str) -> std::result::Result<FieldErrors, AppError> {
    match e {
        AppError::Validation(fe) => Ok(fe),
        e @ (AppError::TooManyAttempts(_)
        | AppError::Busy(_)
        | AppError::Unavailable(_)
        | AppError::Conflict(_)) => {
            let mut fe = FieldErrors::new();
            fe.add(field, e.to_string());
            Ok(fe)
        }
        other => Err(other),
    }
}

#[derive(Template)]
#[template(path = "team.html")]
struct TeamPage {
    layout: Layout,
    village: String,
    slug: String,
    helpers: Vec<Helper>,
    login: String,
    errors: FieldErrors,
    /// A reset code just issued: (seller, code, valid until).
    issued: Option<(String, String, String)>,
    reset_login: String,
}

impl TeamPage {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).unwrap_or("").to_string()
    }
    fn phone(&self, login: &str) -> String {
        crate::domain::format_phone(login)
    }
}

#[allow(clippy::too_many_arguments)]
async fn team_view(
    st: &AppState,
    seed: &CsrfSeed,
    user: User,
    slug: &str,
    login: String,
    errors: FieldErrors,
    issued: Option<(String, String, String)>,
    reset_login: String,
) -> PageResult {
    let v = store::village_by_slug(&st.db, slug).await?;
    let helpers = helpers::helpers_of(&st.db, &user, &v).await?;
    let failed = !errors.is_empty();
    let mut resp = render(TeamPage {
        layout: Layout::new(
            st,
            seed,
            &Some(user),
            format!("Tổ công nghệ số — {}", v.name),
        ),
        helpers,
        village: v.name,
        slug: v.slug,
        login,
        errors,
        issued,
        reset_login,
    })?;
    if failed {
        *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(resp)
}

async fn team_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
) -> PageResult {
    team_view(
        &st,
        &seed,
        user,
        &slug,
        String::new(),
        FieldErrors::new(),
        None,
        String::new(),
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TeamForm {
    csrf: String,
    /// "add" or "remove"
    action: String,
    login: String,
    /// The village page to come back to (the reset form).
    village: String,
}

async fn team_form(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    Form(f): Form<TeamForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let v = store::village_by_slug(&st.db, &slug).await?;
    let done = if f.action == "remove" {
        helpers::remove_helper(&st.db, &user, &v, &f.login).await
    } else {
        helpers::name_helper(&st.db, &user, &v, &f.login)
            .await
            .map(|_| ())
    };
    match done {
        Ok(()) => see_other(&format!("/quan-ly/lang/{}/to-cong-nghe", v.slug)),
        Err(e) => {
            let errors = field_errors(e, "login")?;
            team_view(
                &st,
                &seed,
                user,
                &slug,
                f.login,
                errors,
                None,
                String::new(),
            )
            .await
        }
    }
}

/// "Cấp lại mật khẩu": the code is shown once, on the answer to this form.
async fn reset_code_form(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Form(f): Form<TeamForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    match accounts::reset::issue_in_person(&st.db, &st.config, &user, &f.login).await {
        Ok(c) => {
            let until = crate::domain::format_vn_time(c.expires_ms);
            let resp = team_view(
                &st,
                &seed,
                user,
                &f.village,
                String::new(),
                FieldErrors::new(),
                Some((c.display_name, c.code, until)),
                String::new(),
            )
            .await?;
            Ok(resp)
        }
        Err(AppError::NotFound | AppError::Forbidden) => {
            let mut fe = FieldErrors::new();
            fe.add(
                "reset_login",
                "Không có người bán nào của làng với số/email này",
            );
            team_view(
                &st,
                &seed,
                user,
                &f.village,
                String::new(),
                fe,
                None,
                f.login,
            )
            .await
        }
        Err(e) => {
            let errors = field_errors(e, "reset_login")?;
            team_view(
                &st,
                &seed,
                user,
                &f.village,
                String::new(),
                errors,
                None,
                f.login,
            )
            .await
        }
    }
}

/// A household's product on the helper's page: (slug, name, stock).
type ProductLine = (String, String, i64);

#[derive(Template)]
#[template(path = "helper.html")]
struct HelperPage {
    layout: Layout,
    /// Villages whose team this helper is on: (slug, name).
    villages: Vec<(String, String)>,
    /// Each household helped: what needs doing, and its products as (slug, name, stock).
    tasks: Vec<(HouseholdTasks, Vec<ProductLine>)>,
    households: Vec<Household>,
    /// The household form, kept when refused.
    form: (String, String, String, String),
    errors: FieldErrors,
    /// The household whose code the helper is asked for now.
    asking: Option<Household>,
}

impl HelperPage {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).unwrap_or("").to_string()
    }
    fn phone(&self, p: &str) -> String {
        crate::domain::format_phone(p)
    }
}

async fn helper_view(
    st: &AppState,
    seed: &CsrfSeed,
    user: User,
    form: (String, String, String, String),
    errors: FieldErrors,
    asking: Option<Household>,
    notice: Option<&str>,
) -> PageResult {
    let mut villages = Vec::new();
    for id in helpers::helper_villages(&st.db, &user).await? {
        let v = store::village_by_id(&st.db, crate::catalog::VillageId(id)).await?;
        villages.push((v.slug, v.name));
    }
    if villages.is_empty() {
        return Err(AppError::Forbidden.into());
    }
    let failed = !errors.is_empty();
    let mut tasks = Vec::new();
    for t in helpers::tasks(&st.db, &user).await? {
        let shop = store::shop_by_slug(&st.db, &t.shop).await?;
        let products = store::products_of_shop(&st.db, shop.id, true)
            .await?
            .into_iter()
            .map(|p| (p.slug, p.name, p.stock))
            .collect();
        tasks.push((t, products));
    }
    let mut resp = render(HelperPage {
        tasks,
        households: helpers::households_of(&st.db, &user).await?,
        layout: Layout::new(st, seed, &Some(user), "Giúp các hộ bán hàng").with_notice(notice),
        villages,
        form,
        errors,
        asking,
    })?;
    if failed {
        *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(resp)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OkQuery {
    ok: String,
}

async fn helper_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    axum::extract::Query(q): axum::extract::Query<OkQuery>,
) -> PageResult {
    let notice = (q.ok == "household").then_some(
        "Đã mở cửa hàng cho hộ. Cửa hàng chờ điều phối viên của làng chấp nhận vào bảng giá; khi được chấp nhận, bạn đăng sản phẩm giúp hộ.",
    );
    helper_view(
        &st,
        &seed,
        user,
        Default::default(),
        FieldErrors::new(),
        None,
        notice,
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct HouseholdForm {
    csrf: String,
    village: String,
    name: String,
    phone: String,
    shop_name: String,
    code: String,
}

async fn household_form(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Form(f): Form<HouseholdForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let kept = (
        f.village.clone(),
        f.name.clone(),
        f.phone.clone(),
        f.shop_name.clone(),
    );
    let started = async {
        let v = store::village_by_slug(&st.db, &f.village)
            .await
            .map_err(|_| AppError::field("village", "Chọn làng"))?;
        let new = NewHousehold::parse(&f.name, &f.phone, &f.shop_name)?;
        helpers::start_household(&st.db, &st.config, &user, &v, new).await
    }
    .await;
    match started {
        Ok(h) => helper_view(
            &st,
            &seed,
            user,
            Default::default(),
            FieldErrors::new(),
            Some(h),
            Some("Đã gửi mã 6 số tới điện thoại của hộ. Khi hộ đồng ý, hỏi mã và nhập vào ô dưới."),
        )
        .await,
        Err(e) => {
            let errors = field_errors(e, "phone")?;
            helper_view(&st, &seed, user, kept, errors, None, None).await
        }
    }
}

async fn household_code_form(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
    Form(f): Form<HouseholdForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    match helpers::confirm_household(&st.db, &st.config, &user, id, &f.code).await {
        Ok(_) => see_other("/quan-ly/giup-ho?ok=household"),
        Err(e) => {
            let errors = field_errors(e, "code")?;
            let asking = helpers::household(&st.db, &user, id).await.ok();
            helper_view(&st, &seed, user, Default::default(), errors, asking, None).await
        }
    }
}

#[derive(Template)]
#[template(path = "shop_helpers.html")]
struct OwnerHelpersPage {
    layout: Layout,
    shop: Shop,
    helpers: Vec<ShopHelper>,
    /// (when, helper, what)
    actions: Vec<(String, String, String)>,
}

impl OwnerHelpersPage {
    fn phone(&self, p: &str) -> String {
        crate::domain::format_phone(p)
    }
}

async fn owner_helpers_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
) -> PageResult {
    let shop = store::shop_by_slug(&st.db, &slug).await?;
    let (helpers, actions) = helpers::for_owner(&st.db, &user, &shop, 100).await?;
    let actions = actions
        .into_iter()
        .map(|a| (crate::domain::format_vn_time(a.at_ms), a.helper, a.action))
        .collect();
    render(OwnerHelpersPage {
        layout: Layout::new(&st, &seed, &Some(user), "Người giúp cửa hàng"),
        helpers,
        shop,
        actions,
    })
}

async fn owner_revoke_form(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    Form(f): Form<TeamForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let shop = store::shop_by_slug(&st.db, &slug).await?;
    helpers::revoke(&st.db, &user, &shop, &f.login).await?;
    see_other(&format!("/quan-ly/cua-hang/{}/nguoi-giup", shop.slug))
}
