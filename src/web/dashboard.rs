//! The seller dashboard: my shops, my products (created from the village price board),
//! photos, and the proposals open in my villages.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Multipart, Path, Query, State};
use axum::routing::{get, post};
use serde::Deserialize;

use super::board::notice;
use super::session::{CurrentUser, verify_csrf};
use super::views::{CardView, ItemView, ProposalView, ShopView, VillageView, cards};
use super::{CsrfSeed, Layout, PageResult, render, see_other};
use crate::accounts::User;
use crate::catalog::helpers;
use crate::catalog::{self, ProductInput, Shop, ShopInput, store};
use crate::error::{AppError, FieldErrors};
use crate::pricing::store as pricing;
use crate::web::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/quan-ly", get(dashboard))
        .route("/quan-ly/cua-hang", post(create_shop))
        .route(
            "/quan-ly/cua-hang/{slug}",
            get(edit_shop_page).post(edit_shop),
        )
        .route("/quan-ly/cua-hang/{slug}/thu-thong-bao", post(test_notice))
        .route("/quan-ly/ocop/{slug}", post(decide_ocop))
        .route("/quan-ly/mat-hang/{slug}", post(decide_item))
        .route("/xac-nhan-email/{token}", get(confirm_email))
        .route("/quan-ly/san-pham/{slug}/anh/{id}/xoa", post(remove_photo))
        .route("/quan-ly/san-pham/{slug}/anh/{id}/len", post(move_photo))
        .route(
            "/quan-ly/san-pham/{slug}",
            get(edit_product_page).post(edit_product),
        )
}

/// Forms that carry a photo (multipart, with the upload size limit).
pub fn upload_router() -> Router<AppState> {
    Router::new()
        .route("/quan-ly/san-pham/{slug}/anh", post(upload_photo))
        .route(
            "/quan-ly/san-pham/moi",
            get(new_product_page).post(new_product),
        )
}

struct ShopBlock {
    shop: ShopView,
    village_name: String,
    board_url: String,
    products: Vec<CardView>,
    /// (time, channel, delivery state, last error)
    notices: Vec<(String, String, String, String)>,
    /// Helpers of the village's digital team working for this shop, by name.
    helpers: Vec<String>,
    /// What they did lately: (time, helper, what).
    helped: Vec<(String, String, String)>,
}

/// A channel as sellers call it.
fn channel_words(channel: &str) -> &str {
    match channel {
        "email" => "email",
        "zalo" => "Zalo",
        "telegram" => "Telegram",
        "sms" => "tin nhắn SMS",
        other => other,
    }
}

fn notice_state(s: &str) -> &'static str {
    match s {
        "delivered" => "đã gửi",
        "failed" => "gửi không được",
        "sending" => "đang gửi",
        _ => "chờ gửi",
    }
}

/// What waits for a moderator in one village: (village, board url, proposals to decide,
/// shops asking to join as (slug, name, owner)).
type InboxVillage = (
    String,
    String,
    Vec<ProposalView>,
    Vec<store::JoinRequest>,
    Vec<OcopClaim>,
    Vec<(String, String, String, String)>,
);

/// A product's OCOP stars waiting for the moderator: (slug, name, shop, stars, certificate).
type OcopClaim = (String, String, String, String, String);

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    shops: Vec<ShopBlock>,
    villages: Vec<VillageView>,
    /// (board url, proposal, how my shops voted: "đồng ý" / "không đồng ý" / "")
    open_proposals: Vec<(String, ProposalView, String)>,
    /// Paid orders waiting to be accepted: (code, shop, total, when).
    paid_orders: Vec<(String, String, String, String)>,
    /// A moderator's inbox, per village.
    inbox: Vec<InboxVillage>,
    /// Villages this user moderates: (name, slug).
    moderated: Vec<(String, String)>,
    /// For admins: villages without a moderator, whose undecidable proposals wait for them.
    unmoderated: Vec<(String, String)>,
    my_proposals: Vec<(String, ProposalView)>,
    shop_form: ShopInput,
    shop_village: String,
    errors: FieldErrors,
    is_admin: bool,
    /// A village head: their own shop, if any, is opened from a folded form.
    is_moderator: bool,
    /// On a village's digital team: the helper's page is one tap away.
    is_helper: bool,
    /// The account's phone was never proven by a code.
    phone_unproven: bool,
    /// Return/refund requests waiting for this admin's or moderator's decision; None for
    /// those who do not decide any.
    requests_waiting: Option<usize>,
}

impl DashboardPage {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).unwrap_or("").to_string()
    }
    /// A bank field sent with the shop's details (no input of the form has one): refused.
    fn bank_err(&self) -> String {
        ["bank_bin", "bank_account_no", "bank_account_name"]
            .iter()
            .find_map(|f| self.errors.get(f))
            .unwrap_or("")
            .to_string()
    }

    fn village_selected(&self, slug: &str) -> bool {
        self.shop_village == slug
    }
}

#[derive(Deserialize, Default)]
struct OkQuery {
    #[serde(default)]
    ok: String,
}

async fn dashboard_page(
    st: &AppState,
    seed: &CsrfSeed,
    user: &User,
    notice_code: &str,
    shop_form: ShopInput,
    shop_village: String,
    errors: FieldErrors,
) -> PageResult {
    let shops = store::shops_of_owner(&st.db, user).await?;
    let shop_ids: Vec<i64> = shops.iter().map(|s| s.id.0).collect();
    let paid_orders = crate::orders::store::orders_of_shops(&st.db, &shop_ids, 200)
        .await?
        .into_iter()
        .filter(|o| o.status == crate::orders::OrderStatus::Paid)
        .map(|o| {
            (
                o.code,
                o.shop_name,
                crate::domain::money::format_vnd(o.total_vnd),
                crate::domain::format_vn_time(o.created_at),
            )
        })
        .collect();
    let mut blocks = Vec::new();
    let mut my_villages = Vec::new();
    for s in &shops {
        let v = store::village_by_id(&st.db, s.village_id).await?;
        let products = store::products_of_shop(&st.db, s.id, true).await?;
        let notices = crate::notify::store::recent_for_shop(&st.db, s.id.0, 10)
            .await?
            .into_iter()
            .map(|n| {
                (
                    crate::domain::format_vn_time(n.created_at),
                    format!("{} — qua {}", n.about, channel_words(&n.channel)),
                    notice_state(&n.status).to_string(),
                    n.last_error.unwrap_or_default(),
                )
            })
            .collect();
        let helped = helpers::actions_for_shop(&st.db, s.id, 5)
            .await?
            .into_iter()
            .map(|a| (crate::domain::format_vn_time(a.at_ms), a.helper, a.action))
            .collect();
        blocks.push(ShopBlock {
            shop: ShopView::from(s),
            village_name: v.name.clone(),
            board_url: format!("/lang/{}/bang-gia", v.slug),
            products: cards(&products),
            notices,
            helpers: helpers::helpers_of_shop(&st.db, s.id)
                .await?
                .into_iter()
                .map(|h| h.display_name)
                .collect(),
            helped,
        });
        if !my_villages.iter().any(|x: &catalog::Village| x.id == v.id) {
            my_villages.push(v);
        }
    }
    let my_shop_ids: Vec<i64> = shops.iter().map(|s| s.id.0).collect();
    let mut open = Vec::new();
    let mut mine = Vec::new();
    for v in &my_villages {
        let url = format!("/lang/{}/bang-gia", v.slug);
        for p in pricing::proposals_of_village(&st.db, v.id.0).await? {
            if p.proposer_user_id == user.id.0 {
                mine.push((url.clone(), ProposalView::from(&p)));
            }
            // Only a shop the village accepted has a vote to ask for.
            let votes_here = shops.iter().any(|s| s.village_id == v.id && s.is_member());
            if votes_here && p.status == crate::pricing::ProposalStatus::Open {
                let my_vote = match p.votes.iter().find(|v| my_shop_ids.contains(&v.shop_id)) {
                    Some(v) if v.approve => "đồng ý",
                    Some(_) => "không đồng ý",
                    None => "",
                };
                open.push((url.clone(), ProposalView::from(&p), my_vote.to_string()));
            }
        }
    }
    let villages = store::list_villages(&st.db).await?;
    // What waits for this moderator (or admin): proposals still open and shops asking to join.
    let mut inbox = Vec::new();
    let mut moderated = Vec::new();
    for v in &villages {
        if !crate::accounts::store::can_moderate(&st.db, user, v.id.0).await? {
            continue;
        }
        moderated.push((v.name.clone(), v.slug.clone()));
        let proposals: Vec<ProposalView> = pricing::proposals_of_village(&st.db, v.id.0)
            .await?
            .iter()
            .filter(|p| p.status.is_pending())
            .map(ProposalView::from)
            .collect();
        let joins = store::join_requests(&st.db, v.id).await?;
        let ocop: Vec<OcopClaim> = store::ocop_to_verify(&st.db, v.id)
            .await?
            .into_iter()
            .map(|(slug, name, shop, stars, no, year)| {
                (
                    slug,
                    name,
                    shop,
                    format!("{stars} sao"),
                    format!("số {no}, năm {year}"),
                )
            })
            .collect();
        let items = store::item_requests(&st.db, v.id).await?;
        if !proposals.is_empty() || !joins.is_empty() || !ocop.is_empty() || !items.is_empty() {
            inbox.push((
                v.name.clone(),
                format!("/lang/{}/bang-gia", v.slug),
                proposals,
                joins,
                ocop,
                items,
            ));
        }
    }
    let unmoderated = if user.is_admin() {
        pricing::villages_without_moderator(&st.db).await?
    } else {
        Vec::new()
    };
    let requests_waiting = if user.is_admin() || !moderated.is_empty() {
        Some(
            crate::protection::store::escalated_for(&st.db, user)
                .await?
                .len(),
        )
    } else {
        None
    };
    render(DashboardPage {
        // Each role's own page: the admin's, the village head's, the seller's.
        layout: Layout::new(
            st,
            seed,
            &Some(user.clone()),
            if user.is_admin() {
                "Quản trị Chợ Làng"
            } else if user.role == crate::accounts::Role::Moderator {
                "Việc của điều phối viên"
            } else {
                "Quản lý cửa hàng"
            },
        )
        .with_notice(notice(notice_code)),
        shops: blocks,
        villages: villages.iter().map(VillageView::from).collect(),
        open_proposals: open,
        paid_orders,
        inbox,
        moderated,
        unmoderated,
        my_proposals: mine,
        shop_form,
        shop_village,
        errors,
        is_admin: user.is_admin(),
        is_moderator: user.role == crate::accounts::Role::Moderator,
        is_helper: !helpers::helper_villages(&st.db, user).await?.is_empty(),
        phone_unproven: user.phone.is_some() && !user.phone_proven,
        requests_waiting,
    })
}

async fn dashboard(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Query(q): Query<OkQuery>,
) -> PageResult {
    dashboard_page(
        &st,
        &seed,
        &user,
        &q.ok,
        ShopInput::default(),
        String::new(),
        FieldErrors::new(),
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ShopForm {
    csrf: String,
    village: String,
    #[serde(flatten)]
    shop: ShopInput,
}

fn into_fields(e: AppError, fallback_field: &str) -> Result<FieldErrors, AppError> {
    match e {
        AppError::Validation(fe) => Ok(fe),
        AppError::Conflict(m) => {
            let mut fe = FieldErrors::new();
            fe.add(fallback_field, m);
            Ok(fe)
        }
        other => Err(other),
    }
}

async fn create_shop(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Form(f): Form<ShopForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let result = async {
        let village = store::village_by_slug(&st.db, &f.village)
            .await
            .map_err(|_| AppError::field("village", "chọn làng của cửa hàng"))?;
        let fields = f.shop.parse()?;
        store::create_shop(&st.db, &st.config, &user, &village, &fields).await
    }
    .await;
    match result {
        Ok(_) => see_other("/quan-ly?ok=shop-created"),
        Err(e) => {
            let status = e.status();
            let errors = into_fields(e, "name")?;
            let mut resp = dashboard_page(&st, &seed, &user, "", f.shop, f.village, errors).await?;
            *resp.status_mut() = status;
            Ok(resp)
        }
    }
}

#[derive(Template)]
#[template(path = "shop_form.html")]
struct ShopFormPage {
    layout: Layout,
    shop: ShopView,
    input: ShopInput,
    errors: FieldErrors,
    /// (field, label, ticked, can deliver, what is missing)
    channels: Vec<(&'static str, &'static str, bool, bool, String)>,
}

impl ShopFormPage {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).unwrap_or("").to_string()
    }
    /// A bank field sent with the shop's details (no input of the form has one): refused.
    fn bank_err(&self) -> String {
        ["bank_bin", "bank_account_no", "bank_account_name"]
            .iter()
            .find_map(|f| self.errors.get(f))
            .unwrap_or("")
            .to_string()
    }
}

/// Which notice channels can reach this shop now, and what is missing for the others. A box
/// can be ticked when what it lacks is on this form (an email, a Telegram chat id typed in the
/// same submit); only channels Chợ Làng itself has not set up are disabled.
fn channels(
    st: &AppState,
    shop: &Shop,
    input: &ShopInput,
) -> Vec<(&'static str, &'static str, bool, bool, String)> {
    let mut reach = crate::catalog::reach(&st.config.notify, shop);
    // Zalo first: most sellers have it; Telegram last.
    reach.sort_by_key(|r| match r.channel {
        "zalo" => 0,
        "email" => 1,
        _ => 2,
    });
    reach
        .into_iter()
        .map(|r| {
            let (field, label, asked) = match r.channel {
                "email" => ("notify_email", "Email", input.notify_email.is_some()),
                "zalo" => (
                    "notify_zalo",
                    "Zalo (số Zalo ở trên, mặc định là số điện thoại)",
                    input.notify_zalo.is_some(),
                ),
                _ => (
                    "notify_telegram",
                    "Telegram",
                    input.notify_telegram.is_some(),
                ),
            };
            let usable = match r.channel {
                "email" => true,
                "telegram" => st.config.notify.telegram.is_some(),
                _ => r.can_deliver,
            };
            (field, label, asked && usable, usable, r.missing)
        })
        .collect()
}

/// Load a shop and check that this user may change it (or see its money): its owner or an
/// admin.
pub(super) async fn my_shop(st: &AppState, user: &User, slug: &str) -> Result<Shop, AppError> {
    let shop = store::shop_by_slug(&st.db, slug).await?;
    store::authorize_shop(user, &shop)?;
    Ok(shop)
}

/// Load a shop this user may work on: its owner, an admin, or a helper the household let in
/// (listings, stock, photos, batches, labels, orders — not money or settings).
pub(super) async fn my_shop_work(st: &AppState, user: &User, slug: &str) -> Result<Shop, AppError> {
    let shop = store::shop_by_slug(&st.db, slug).await?;
    store::authorize_shop_work(user, &shop)?;
    Ok(shop)
}

async fn edit_shop_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
) -> PageResult {
    let shop = my_shop(&st, &user, &slug).await?;
    render(ShopFormPage {
        layout: Layout::new(
            &st,
            &seed,
            &Some(user),
            format!("Sửa cửa hàng {}", shop.name),
        ),
        channels: channels(&st, &shop, &ShopInput::from_shop(&shop)),
        input: ShopInput::from_shop(&shop),
        shop: ShopView::from(&shop),
        errors: FieldErrors::new(),
    })
}

async fn edit_shop(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    Form(f): Form<ShopForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let shop = my_shop(&st, &user, &slug).await?;
    let result = match f.shop.parse() {
        Ok(fields) => {
            store::update_shop(&st.db, &st.config, &user, &shop, &fields, &f.shop.password).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => see_other("/quan-ly?ok=shop-saved"),
        Err(e) => {
            let status = e.status();
            let errors = into_fields(e, "name")?;
            let mut resp = render(ShopFormPage {
                layout: Layout::new(
                    &st,
                    &seed,
                    &Some(user),
                    format!("Sửa cửa hàng {}", shop.name),
                ),
                shop: ShopView::from(&shop),
                channels: channels(&st, &shop, &f.shop),
                input: f.shop,
                errors,
            })?;
            *resp.status_mut() = status;
            Ok(resp)
        }
    }
}

#[derive(Template)]
#[template(path = "product_form.html")]
struct ProductFormPage {
    layout: Layout,
    shop: ShopView,
    items: Vec<ItemView>,
    /// The village's categories, the only ones a product may have.
    categories: Vec<String>,
    categories_url: String,
    board_url: String,
    input: ProductInput,
    errors: FieldErrors,
    action: String,
    is_new: bool,
    /// (photo id, thumbnail URL), in order: the first is the main picture.
    photos: Vec<(i64, String)>,
    active: bool,
    /// The product asks to take an item under another name: what the moderator said so far.
    item_request: Option<catalog::ItemRequest>,
}

impl ProductFormPage {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).unwrap_or("").to_string()
    }
    fn item_selected(&self, id: &i64) -> bool {
        self.input.price_item_id.trim() == id.to_string()
    }
    fn category_selected(&self, name: &str) -> bool {
        catalog::categories::key(&self.input.category) == catalog::categories::key(name)
    }
}

/// The product form, new (`existing` is None) or edit; posts to the matching address.
async fn product_form(
    (st, seed, user): (&AppState, &CsrfSeed, &User),
    shop: &Shop,
    input: ProductInput,
    errors: FieldErrors,
    existing: Option<&catalog::ProductDetail>,
    notice_code: &str,
) -> PageResult {
    let action = match existing {
        Some(d) => format!("/quan-ly/san-pham/{}", d.card.slug),
        None => format!("/quan-ly/san-pham/moi?shop={}", shop.slug),
    };
    let v = store::village_by_id(&st.db, shop.village_id).await?;
    let items = pricing::items_of_village(&st.db, v.id.0).await?;
    render(ProductFormPage {
        layout: Layout::new(
            st,
            seed,
            &Some(user.clone()),
            if existing.is_some() {
                "Sửa sản phẩm"
            } else {
                "Đăng sản phẩm mới"
            },
        )
        .with_notice(notice(notice_code)),
        shop: ShopView::from(shop),
        items: items.iter().map(ItemView::from).collect(),
        categories: catalog::categories::list(&st.db, v.id)
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect(),
        categories_url: format!("/lang/{}/loai-hang", v.slug),
        board_url: format!("/lang/{}/bang-gia", v.slug),
        input,
        errors,
        action,
        is_new: existing.is_none(),
        item_request: existing.and_then(|d| d.item_request.clone()),
        photos: existing
            .map(|d| {
                d.photos
                    .iter()
                    .map(|p| (p.id, format!("/anh/{}", p.thumb_name)))
                    .collect()
            })
            .unwrap_or_default(),
        active: existing.map(|d| d.card.active).unwrap_or(true),
    })
}

#[derive(Deserialize, Default)]
struct ShopQuery {
    #[serde(default)]
    shop: String,
}

async fn new_product_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Query(q): Query<ShopQuery>,
) -> PageResult {
    let shop = my_shop_work(&st, &user, &q.shop).await?;
    product_form(
        (&st, &seed, &user),
        &shop,
        ProductInput::default(),
        FieldErrors::new(),
        None,
        "",
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ProductForm {
    csrf: String,
    #[serde(flatten)]
    product: ProductInput,
    /// "1" to list, "0" to hide (edit form only)
    active: Option<String>,
}

async fn new_product(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Query(q): Query<ShopQuery>,
    mut form: Multipart,
) -> PageResult {
    // The form is multipart so the first photo comes with it (a seller on a phone adds the
    // product and its picture in one go).
    let mut fields = serde_json::Map::new();
    let mut photo: Vec<u8> = Vec::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|_| AppError::BadRequest("Biểu mẫu không hợp lệ hoặc ảnh quá lớn".into()))?
    {
        let Some(name) = field.name().map(str::to_string) else {
            continue;
        };
        if name == "photo" {
            photo = field
                .bytes()
                .await
                .map_err(|_| AppError::PayloadTooLarge)?
                .to_vec();
        } else {
            let text = field
                .text()
                .await
                .map_err(|_| AppError::BadRequest("Biểu mẫu không hợp lệ".into()))?;
            fields.insert(name, serde_json::Value::String(text));
        }
    }
    let csrf = fields
        .remove("csrf")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    verify_csrf(&st, &seed, &csrf)?;
    let input: ProductInput = serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|_| AppError::BadRequest("Biểu mẫu sản phẩm thiếu ô".into()))?;
    let shop = my_shop_work(&st, &user, &q.shop).await?;
    let result = match input.parse() {
        Ok(fields) => store::create_product(&st.db, &shop, &fields).await,
        Err(e) => Err(e),
    };
    let p = match result {
        Ok(p) => p,
        Err(e) => {
            let status = e.status();
            let errors = into_fields(e, "name")?;
            let mut resp =
                product_form((&st, &seed, &user), &shop, input, errors, None, "").await?;
            *resp.status_mut() = status;
            return Ok(resp);
        }
    };
    helpers::record(
        &st.db,
        &user,
        &shop,
        &format!("đăng sản phẩm “{}”", p.card.name),
    )
    .await?;
    if !photo.is_empty() {
        let (db, id) = (st.db.clone(), p.card.id);
        if let Err(e) = save_photo(&st, photo, |full, thumb| async move {
            store::add_photo(&db, id, &full, &thumb).await
        })
        .await
        {
            // The product is saved; the photo's problem is shown on its edit page.
            let p = store::product_by_slug(&st.db, &p.card.slug).await?;
            return photo_refused((&st, &seed, &user), &shop, &p, e, "product-created").await;
        }
    }
    see_other(&format!(
        "/quan-ly/san-pham/{}?ok={}",
        p.card.slug,
        if p.item_request.is_some() {
            "product-waits-item"
        } else {
            "product-created"
        }
    ))
}

async fn my_product(
    st: &AppState,
    user: &User,
    slug: &str,
) -> Result<(Shop, catalog::ProductDetail), AppError> {
    let p = store::product_by_slug(&st.db, slug).await?;
    let shop = store::shop_by_id(&st.db, p.shop_id).await?;
    store::authorize_shop_work(user, &shop)?;
    Ok((shop, p))
}

async fn edit_product_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    Query(q): Query<OkQuery>,
) -> PageResult {
    let (shop, p) = my_product(&st, &user, &slug).await?;
    product_form(
        (&st, &seed, &user),
        &shop,
        ProductInput::from_detail(&p),
        FieldErrors::new(),
        Some(&p),
        &q.ok,
    )
    .await
}

async fn edit_product(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    Form(f): Form<ProductForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let (shop, p) = my_product(&st, &user, &slug).await?;
    let result = match f.product.parse() {
        Ok(fields) => store::update_product(&st.db, &shop, &p, &fields).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(updated) => {
            helpers::record(
                &st.db,
                &user,
                &shop,
                &format!("sửa sản phẩm “{}”", updated.card.name),
            )
            .await?;
            if updated.item_request.is_some() {
                // Not listed until the moderator decides: the page says so.
                return see_other(&format!(
                    "/quan-ly/san-pham/{}?ok=product-waits-item",
                    updated.card.slug
                ));
            }
            if let Some(a) = f.active.as_deref() {
                store::set_product_active(&st.db, updated.card.id, a == "1").await?;
            }
            see_other(&format!(
                "/quan-ly/san-pham/{}?ok=product-saved",
                updated.card.slug
            ))
        }
        Err(e) => {
            let status = e.status();
            let errors = into_fields(e, "name")?;
            let mut resp =
                product_form((&st, &seed, &user), &shop, f.product, errors, Some(&p), "").await?;
            *resp.status_mut() = status;
            Ok(resp)
        }
    }
}

/// The CSRF token and the photo of an upload form (product and batch photos).
pub(super) async fn read_photo_form(form: &mut Multipart) -> Result<(String, Vec<u8>), AppError> {
    let mut csrf = String::new();
    let mut data: Option<Vec<u8>> = None;
    while let Some(field) = form.next_field().await.map_err(|_| {
        AppError::BadRequest("Biểu mẫu tải ảnh không hợp lệ hoặc ảnh quá lớn".into())
    })? {
        match field.name() {
            Some("csrf") => csrf = field.text().await.map_err(|_| AppError::Csrf)?,
            Some("photo") => {
                let bytes = field.bytes().await.map_err(|_| AppError::PayloadTooLarge)?;
                data = Some(bytes.to_vec());
            }
            _ => {}
        }
    }
    Ok((csrf, data.unwrap_or_default()))
}

/// Check, re-encode and save a photo, at most a few decoded at once (each may take up to
/// ~100 MB while it is worked on), then `attach` it; the files of a photo that could not be
/// attached (e.g. too many photos) are removed, leaving no orphans.
pub(super) async fn save_photo<F, Fut>(
    st: &AppState,
    bytes: Vec<u8>,
    attach: F,
) -> Result<(), AppError>
where
    F: FnOnce(String, String) -> Fut,
    Fut: std::future::Future<Output = Result<(), AppError>>,
{
    let max = st.config.max_upload_bytes;
    let img = {
        let _turn = catalog::photos::DECODING.turn("xử lý ảnh").await?;
        tokio::task::spawn_blocking(move || catalog::photos::process(&bytes, max))
            .await
            .map_err(|e| AppError::Internal(e.into()))??
    };
    let dir = st.config.photos_dir();
    let (full, thumb) = catalog::photos::save(&dir, &img).await?;
    let attached = attach(full.clone(), thumb.clone()).await;
    if attached.is_err() {
        let _ = tokio::fs::remove_file(dir.join(&full)).await;
        let _ = tokio::fs::remove_file(dir.join(&thumb)).await;
    }
    attached
}

/// The product's edit page again with why a photo was refused beside the photo field.
async fn photo_refused(
    ctx: (&AppState, &CsrfSeed, &User),
    shop: &Shop,
    p: &catalog::ProductDetail,
    e: AppError,
    notice_code: &str,
) -> PageResult {
    let status = e.status();
    let errors = into_fields(e, "photo")?;
    let mut resp = product_form(
        ctx,
        shop,
        ProductInput::from_detail(p),
        errors,
        Some(p),
        notice_code,
    )
    .await?;
    *resp.status_mut() = status;
    Ok(resp)
}

async fn upload_photo(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    mut form: Multipart,
) -> PageResult {
    let (csrf, bytes) = read_photo_form(&mut form).await?;
    verify_csrf(&st, &seed, &csrf)?;
    let (shop, p) = my_product(&st, &user, &slug).await?;
    // The photo limit is counted before any decoding.
    let result = if p.photos.len() as i64 >= catalog::photos::MAX_PHOTOS {
        Err(AppError::field(
            "photo",
            format!("Mỗi sản phẩm có tối đa {} ảnh", catalog::photos::MAX_PHOTOS),
        ))
    } else {
        let (db, id) = (st.db.clone(), p.card.id);
        save_photo(&st, bytes, |full, thumb| async move {
            store::add_photo(&db, id, &full, &thumb).await
        })
        .await
    };
    match result {
        Ok(()) => {
            helpers::record(
                &st.db,
                &user,
                &shop,
                &format!("thêm ảnh cho “{}”", p.card.name),
            )
            .await?;
            see_other(&format!("/quan-ly/san-pham/{}?ok=photo-added", p.card.slug))
        }
        Err(e) => photo_refused((&st, &seed, &user), &shop, &p, e, "").await,
    }
}

/// The seller checks their channels: a test notice through the same outbox as real ones.
async fn test_notice(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    Form(f): Form<super::session::CsrfForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let shop = my_shop(&st, &user, &slug).await?;
    crate::notify::send_test(&st.db, shop.id.0).await?;
    see_other("/quan-ly?ok=test-sent")
}

/// The link mailed to a shop's new email address.
async fn confirm_email(State(st): State<AppState>, Path(token): Path<String>) -> PageResult {
    store::confirm_email(&st.db, &token).await?;
    see_other("/quan-ly?ok=email-confirmed")
}

#[derive(Deserialize)]
struct OcopForm {
    csrf: String,
    #[serde(default)]
    decision: String,
}

/// The moderator confirms or refuses a product's OCOP stars from the inbox.
async fn decide_ocop(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    Form(f): Form<OcopForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let confirm = catalog::parse_ocop_decision(&f.decision)?;
    store::decide_ocop(&st.db, &user, &slug, confirm).await?;
    see_other(if confirm {
        "/quan-ly?ok=ocop-confirmed"
    } else {
        "/quan-ly?ok=ocop-rejected"
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ItemDecisionForm {
    csrf: String,
    decision: String,
    reason: String,
}

/// The moderator lets a product take an item under its own name, or refuses with a reason;
/// a refusal without a reason comes back as the dashboard with the message beside it.
async fn decide_item(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    Form(f): Form<ItemDecisionForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let accept = catalog::parse_item_decision(&f.decision)?;
    match store::decide_item_request(&st.db, &user, &slug, accept, &f.reason).await {
        Ok(_) => see_other(if accept {
            "/quan-ly?ok=item-accepted"
        } else {
            "/quan-ly?ok=item-refused"
        }),
        Err(AppError::Validation(fe)) => {
            let mut errors = FieldErrors::new();
            for (_, m) in fe.0 {
                errors.add(&format!("item_{slug}"), m);
            }
            let mut resp = dashboard_page(
                &st,
                &seed,
                &user,
                "",
                ShopInput::default(),
                String::new(),
                errors,
            )
            .await?;
            *resp.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}

async fn remove_photo(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path((slug, id)): Path<(String, i64)>,
    Form(f): Form<super::session::CsrfForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let (shop, p) = my_product(&st, &user, &slug).await?;
    let (full, thumb) = store::remove_photo(&st.db, p.card.id, id).await?;
    helpers::record(
        &st.db,
        &user,
        &shop,
        &format!("bỏ một ảnh của “{}”", p.card.name),
    )
    .await?;
    let dir = st.config.photos_dir();
    let _ = tokio::fs::remove_file(dir.join(&full)).await;
    let _ = tokio::fs::remove_file(dir.join(&thumb)).await;
    see_other(&format!("/quan-ly/san-pham/{slug}?ok=photo-removed#anh"))
}

async fn move_photo(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path((slug, id)): Path<(String, i64)>,
    Form(f): Form<super::session::CsrfForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let (shop, p) = my_product(&st, &user, &slug).await?;
    store::move_photo_earlier(&st.db, p.card.id, id).await?;
    helpers::record(
        &st.db,
        &user,
        &shop,
        &format!("đổi thứ tự ảnh của “{}”", p.card.name),
    )
    .await?;
    see_other(&format!("/quan-ly/san-pham/{slug}?ok=photo-moved#anh"))
}
