//! Origin tracing on the web: the public origin page of a batch, the GS1 Digital Link
//! resolver, the seller's batch pages and labels, and the batch API.

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::{ApiJson, text};
use super::board::notice;
use super::dashboard::{read_photo_form, save_photo};
use super::openapi::{CodeParam, ProductSlug};
use super::session::{CurrentUser, verify_csrf};
use super::{CsrfSeed, Layout, MaybeUser, PageResult, render, see_other};
use crate::accounts::User;
use crate::catalog::helpers;
use crate::catalog::{ProductDetail, Shop, store as catalog_store};
use crate::domain::Gtin;
use crate::domain::format_vn_time;
use crate::domain::money::format_vnd;
use crate::error::{AppError, FieldErrors, Result};
use crate::origin::label::{self, LabelText, Sheet};
use crate::origin::store::{self, Batch, Revision};
use crate::origin::{self as origin, BatchInput, inputs_text};
use crate::web::AppState;

pub fn page_router() -> Router<AppState> {
    Router::new()
        .route("/truy-xuat/{code}", get(origin_page))
        .route("/01/{gtin}", get(resolve_product))
        .route("/01/{gtin}/10/{batch}", get(resolve_batch))
        .route("/01/{gtin}/10/{batch}/21/{serial}", get(resolve_item))
        .route(
            "/quan-ly/san-pham/{slug}/lo",
            get(batches_page).post(create_batch_form),
        )
        .route("/quan-ly/san-pham/{slug}/lo-dang-ban", post(choose_current))
        .route("/quan-ly/lo/{code}", get(batch_page).post(edit_batch_form))
        .route("/quan-ly/lo/{code}/tem.pdf", get(label_pdf))
        .route("/quan-ly/lo/{code}/da-in", post(labels_printed_form))
        .route("/quan-ly/lo/{code}/tem.svg", get(label_svg))
}

pub fn upload_router() -> Router<AppState> {
    Router::new().route("/quan-ly/lo/{code}/anh", post(upload_photo))
}

pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(api_list, api_create))
        .routes(routes!(api_get, api_update))
        .routes(routes!(api_scans))
}

use origin::store::Traced;

async fn traced(st: &AppState, code: &str) -> Result<Traced> {
    origin::store::traced(&st.db, code).await
}

impl Traced {
    fn gtin(&self) -> Option<Gtin> {
        self.product
            .gtin
            .as_deref()
            .and_then(|g| Gtin::parse(g).ok())
    }

    fn qr_payload(&self, st: &AppState) -> String {
        origin::qr_payload(
            &st.config.public_url,
            self.gtin().as_ref(),
            &self.batch.code,
        )
    }

    fn price_line(&self) -> String {
        format!(
            "Giá cộng đồng: {} / {}",
            format_vnd(self.product.card.price_vnd),
            self.product.card.unit
        )
    }

    fn label(&self, st: &AppState) -> LabelText {
        LabelText {
            qr_payload: self.qr_payload(st),
            product: self.product.card.name.clone(),
            village: format!("Làng {}, {}", self.village.name, self.village.province),
            batch: self.batch.code.clone(),
            produced: vn_date(&self.batch.current.produced_on),
            price: self.price_line(),
        }
    }

    /// The batch's public fields (API).
    fn json(&self, st: &AppState) -> BatchJson {
        let base = st.config.public_url.trim_end_matches('/');
        let gtin = self.gtin();
        let cur = &self.batch.current;
        let card = &self.product.card;
        BatchJson {
            code: self.batch.code.clone(),
            url: format!("{base}/truy-xuat/{}", self.batch.code),
            qr_payload: self.qr_payload(st),
            gs1_digital_link: gtin.as_ref().map(|_| self.qr_payload(st)),
            label_pdf_url: format!("{base}/quan-ly/lo/{}/tem.pdf", self.batch.code),
            label_svg_url: format!("{base}/quan-ly/lo/{}/tem.svg", self.batch.code),
            revision: cur.revision,
            produced_on: cur.produced_on.clone(),
            quantity: cur.quantity,
            maker: cur.maker.clone(),
            inputs: cur.inputs.clone(),
            notes: cur.notes.clone(),
            expires_on: cur.expires_on.clone(),
            ocop_stars: card.ocop_stars,
            ocop_verified: card.ocop_stars.is_some() && card.ocop_verified,
            // The product's certificate, once the moderator verified it; never the batch's.
            ocop_cert_no: if card.ocop_verified {
                self.product.ocop_cert_no.clone()
            } else {
                None
            },
            ocop_cert_year: if card.ocop_verified {
                self.product.ocop_cert_year
            } else {
                None
            },
            labels_printed: self.batch.labels_printed_at.is_some(),
            created_at: self.batch.created_at,
            updated_at: self.batch.updated_at,
            product: BatchProduct {
                slug: card.slug.clone(),
                name: card.name.clone(),
                gtin: gtin.map(|g| g.to_string()),
                price_vnd: card.price_vnd,
                unit: card.unit.clone(),
                url: format!("{base}/san-pham/{}", card.slug),
            },
            shop: crate::payments::service::ShopRefOut {
                slug: self.shop.slug.clone(),
                name: self.shop.name.clone(),
            },
            village: BatchVillage {
                slug: self.village.slug.clone(),
                name: self.village.name.clone(),
                commune: self.village.commune.clone(),
                district: self.village.district.clone(),
                province: self.village.province.clone(),
            },
        }
    }
}

/// A batch as the API shows it: its current revision, where it comes from, its label.
#[derive(Serialize, ToSchema)]
struct BatchJson {
    code: String,
    /// The public origin page.
    url: String,
    /// What the label's QR code holds (a GS1 Digital Link when the product has a GTIN).
    qr_payload: String,
    gs1_digital_link: Option<String>,
    label_pdf_url: String,
    label_svg_url: String,
    revision: i64,
    /// `YYYY-MM-DD`.
    produced_on: String,
    quantity: i64,
    maker: String,
    inputs: Vec<crate::origin::InputSource>,
    notes: String,
    expires_on: Option<String>,
    ocop_stars: Option<i64>,
    /// The product's stars were verified by the village's moderator.
    ocop_verified: bool,
    /// The product's verified OCOP certificate (batches carry none of their own).
    ocop_cert_no: Option<String>,
    ocop_cert_year: Option<i64>,
    labels_printed: bool,
    created_at: i64,
    updated_at: i64,
    product: BatchProduct,
    shop: crate::payments::service::ShopRefOut,
    village: BatchVillage,
}

#[derive(Serialize, ToSchema)]
struct BatchProduct {
    slug: String,
    name: String,
    gtin: Option<String>,
    price_vnd: i64,
    unit: String,
    url: String,
}

#[derive(Serialize, ToSchema)]
struct BatchVillage {
    slug: String,
    name: String,
    commune: String,
    district: String,
    province: String,
}

#[derive(Serialize, ToSchema)]
struct BatchesOut {
    batches: Vec<BatchJson>,
    current_batch: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct BatchCreatedOut {
    batch: BatchJson,
}

#[derive(Serialize, ToSchema)]
struct BatchOut {
    batch: BatchJson,
    /// Every revision, oldest first.
    history: Vec<Revision>,
}

#[derive(Serialize, ToSchema)]
struct ScanDay {
    /// `YYYY-MM-DD` (Vietnam's date).
    day: String,
    scans: i64,
}

#[derive(Serialize, ToSchema)]
struct ScansOut {
    code: String,
    total: i64,
    days: Vec<ScanDay>,
}

/// `2024-11-30` → `30/11/2024`.
fn vn_date(iso: &str) -> String {
    chrono::NaiveDate::parse_from_str(iso, "%Y-%m-%d")
        .map(|d| d.format("%d/%m/%Y").to_string())
        .unwrap_or_else(|_| iso.to_string())
}

// ---------------------------------------------------------------------------------------
// Public origin page and GS1 Digital Link resolver

struct RevisionView {
    revision: i64,
    when: String,
    reason: String,
    summary: String,
}

fn revision_view(r: &Revision) -> RevisionView {
    let mut parts = vec![
        format!("Ngày sản xuất {}", vn_date(&r.produced_on)),
        format!("số lượng {}", r.quantity),
        format!("hộ {}", r.maker),
    ];
    if let Some(e) = &r.expires_on {
        parts.push(format!("hạn dùng {}", vn_date(e)));
    }
    if !r.inputs.is_empty() {
        parts.push(format!(
            "nguyên liệu: {}",
            r.inputs
                .iter()
                .map(|i| format!("{} ({})", i.material, i.source))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    RevisionView {
        revision: r.revision,
        when: format_vn_time(r.created_at),
        reason: r.reason.clone(),
        summary: parts.join(" · "),
    }
}

#[derive(Template)]
#[template(path = "origin.html")]
struct OriginPage {
    layout: Layout,
    code: String,
    product_name: String,
    product_url: String,
    category: String,
    description: String,
    photos: Vec<(String, String)>,
    shop_name: String,
    shop_url: String,
    maker: String,
    village_name: String,
    village_url: String,
    place: String,
    produced: String,
    quantity: String,
    inputs: Vec<(String, String)>,
    notes: String,
    expires: Option<String>,
    ocop: Option<String>,
    gtin: Option<String>,
    price: String,
    board_url: String,
    in_stock: bool,
    revision: i64,
    reason: String,
    updated: String,
    history: Vec<RevisionView>,
    json_ld: String,
}

#[derive(Template)]
#[template(path = "origin_missing.html")]
struct OriginMissing {
    layout: Layout,
    code: String,
}

async fn origin_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    client: super::client::ClientIp,
    headers: axum::http::HeaderMap,
    method: Method,
    Path(code): Path<String>,
) -> PageResult {
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(300).collect::<String>());
    let t = match origin::store::public_trace(&st.db, &code).await {
        Ok(t) => t,
        Err(AppError::NotFound) => {
            let mut resp = render(OriginMissing {
                layout: Layout::new(&st, &seed, &user, "Không tìm thấy lô hàng").with_own_search(),
                code: code.chars().take(40).collect(),
            })?;
            *resp.status_mut() = StatusCode::NOT_FOUND;
            return Ok(resp);
        }
        Err(e) => return Err(e.into()),
    };
    // A scan is a GET by someone other than the shop's own people (their previews are not
    // buyers); nothing about the viewer is stored.
    let own = user
        .as_ref()
        .is_some_and(|u| t.shop.owner_id == Some(u.id.0));
    if method == Method::GET && !own {
        st.scans.record(
            t.batch.id,
            &client.key(),
            user_agent.as_deref().unwrap_or(""),
        );
    }
    let base = st.config.public_url.trim_end_matches('/');
    let gtin = t.gtin();
    let mut photos: Vec<(String, String)> = store::photos(&st.db, t.batch.id)
        .await?
        .into_iter()
        .map(|(f, th)| (format!("/anh/{f}"), format!("/anh/{th}")))
        .collect();
    if photos.is_empty() {
        photos = t
            .product
            .photos
            .iter()
            .map(|p| {
                (
                    format!("/anh/{}", p.file_name),
                    format!("/anh/{}", p.thumb_name),
                )
            })
            .collect();
    }
    let b = &t.batch.current;
    let product_url = format!("/san-pham/{}", t.product.card.slug);
    let mut ld = json!({
        "@context": "https://schema.org",
        "@type": "Product",
        "name": t.product.card.name,
        "category": t.product.card.category,
        "url": format!("{base}/truy-xuat/{}", t.batch.code),
        "productionDate": b.produced_on,
        "additionalProperty": [{"@type": "PropertyValue", "name": "Mã lô", "value": t.batch.code}],
        "manufacturer": {
            "@type": "Organization",
            "name": t.shop.name,
            "address": {
                "@type": "PostalAddress",
                "addressLocality": format!("{}, {}", t.village.name, t.village.commune),
                "addressRegion": t.village.province,
                "addressCountry": "VN",
            },
        },
        "countryOfOrigin": {"@type": "Country", "name": "Việt Nam"},
        "offers": {
            "@type": "Offer",
            "price": t.product.card.price_vnd.to_string(),
            "priceCurrency": "VND",
            "availability": if t.product.card.stock > 0 {
                "https://schema.org/InStock"
            } else {
                "https://schema.org/OutOfStock"
            },
            "url": format!("{base}{product_url}"),
        },
    });
    if !t.product.description.is_empty() {
        ld["description"] = json!(t.product.description);
    }
    if let Some(g) = &gtin {
        ld["gtin"] = json!(g.to_string());
        ld["hasGS1DigitalLink"] = json!(t.qr_payload(&st));
    }
    if !photos.is_empty() {
        ld["image"] = json!(
            photos
                .iter()
                .map(|(f, _)| format!("{base}{f}"))
                .collect::<Vec<_>>()
        );
    }
    // Inside <script>: `<`, `>` and `&` as JSON escapes, so neither "</script>" nor "<!--"
    // in a seller's text can end the element or swallow the rest of the page.
    let json_ld = ld
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let history = store::history(&st.db, &t.batch).await?;
    let share = super::Share::new(
        &st,
        &format!("/truy-xuat/{}", t.batch.code),
        &format!("Nguồn gốc {} — lô {}", t.product.card.name, t.batch.code),
        &format!(
            "Làm tại {}, làng {}. Xem ai làm ra sản phẩm này.",
            t.shop.name, t.village.name
        ),
        photos.first().map(|(f, _)| f.trim_start_matches("/anh/")),
    );
    render(OriginPage {
        layout: Layout::new(
            &st,
            &seed,
            &user,
            format!("Nguồn gốc {} — lô {}", t.product.card.name, t.batch.code),
        )
        .with_share(share),
        code: t.batch.code.clone(),
        product_name: t.product.card.name.clone(),
        product_url,
        category: t.product.card.category.clone(),
        description: t.product.description.clone(),
        photos,
        shop_name: t.shop.name.clone(),
        shop_url: format!("/shop/{}", t.shop.slug),
        maker: b.maker.clone(),
        village_name: t.village.name.clone(),
        village_url: format!("/lang/{}", t.village.slug),
        place: format!(
            "Xã {}, huyện {}, {}",
            t.village.commune, t.village.district, t.village.province
        ),
        produced: vn_date(&b.produced_on),
        quantity: format!("{} {}", b.quantity, t.product.card.unit),
        inputs: b
            .inputs
            .iter()
            .map(|i| (i.material.clone(), i.source.clone()))
            .collect(),
        notes: b.notes.clone(),
        expires: b.expires_on.as_deref().map(vn_date),
        ocop: t.product.card.ocop_stars.map(|s| {
            let mut o = format!("OCOP {s} sao");
            if !t.product.card.ocop_verified {
                o.push_str(" (chờ xác minh)");
            } else if let (Some(no), Some(y)) = (&t.product.ocop_cert_no, t.product.ocop_cert_year)
            {
                // Only the product's certificate the moderator verified.
                o.push_str(&format!(" · Giấy chứng nhận số {no}, năm {y}"));
            }
            o
        }),
        gtin: gtin.map(|g| g.to_string()),
        price: format!(
            "{} / {}",
            format_vnd(t.product.card.price_vnd),
            t.product.card.unit
        ),
        board_url: format!(
            "/lang/{}/bang-gia#muc-{}",
            t.village.slug, t.product.card.price_item_id
        ),
        in_stock: t.product.card.stock > 0,
        revision: b.revision,
        reason: b.reason.clone(),
        updated: format_vn_time(t.batch.updated_at),
        history: history.iter().map(revision_view).collect(),
        json_ld,
    })
}

/// 302 Found, as GS1 resolvers answer (the link may point elsewhere tomorrow).
fn found(to: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to.to_string())]).into_response()
}

/// `/01/{gtin}`: a GS1 Digital Link for the product → its page.
async fn resolve_product(State(st): State<AppState>, Path(gtin): Path<String>) -> PageResult {
    let g = Gtin::parse(&gtin).map_err(|_| AppError::NotFound)?;
    match store::product_slug_by_gtin(&st.db, g.as_str()).await? {
        Some(slug) => Ok(found(&format!("/san-pham/{slug}"))),
        None => Err(AppError::NotFound.into()),
    }
}

/// `/01/{gtin}/10/{batch}` → the batch's origin page (302), if the batch is that product's.
async fn resolve_batch(
    State(st): State<AppState>,
    Path((gtin, batch)): Path<(String, String)>,
) -> PageResult {
    let g = Gtin::parse(&gtin).map_err(|_| AppError::NotFound)?;
    let b = store::by_code(&st.db, &batch).await?;
    let slug = store::product_slug_by_gtin(&st.db, g.as_str())
        .await?
        .ok_or(AppError::NotFound)?;
    let p = catalog_store::product_by_id(&st.db, b.product_id).await?;
    if p.slug != slug {
        return Err(AppError::NotFound.into());
    }
    Ok(found(&format!("/truy-xuat/{}", b.code)))
}

/// `…/21/{serial}`: we trace batches, not single items; the batch page answers.
async fn resolve_item(
    st: State<AppState>,
    Path((gtin, batch, _serial)): Path<(String, String, String)>,
) -> PageResult {
    resolve_batch(st, Path((gtin, batch))).await
}

// ---------------------------------------------------------------------------------------
// The seller's batch pages

/// A form page answers 422 while it shows errors.
fn form_status(errors: &FieldErrors) -> StatusCode {
    if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}

async fn my_product(st: &AppState, user: &User, slug: &str) -> Result<(Shop, ProductDetail)> {
    let p = catalog_store::product_by_slug(&st.db, slug).await?;
    let shop = catalog_store::shop_by_id(&st.db, p.shop_id).await?;
    catalog_store::authorize_shop_work(user, &shop)?;
    Ok((shop, p))
}

async fn my_batch(st: &AppState, user: &User, code: &str) -> Result<Traced> {
    let t = traced(st, code).await?;
    catalog_store::authorize_shop_work(user, &t.shop)?;
    Ok(t)
}

struct BatchRow {
    code: String,
    produced: String,
    quantity: i64,
    maker: String,
    current: bool,
    printed: bool,
}

#[derive(Template)]
#[template(path = "batches.html")]
struct BatchesPage {
    layout: Layout,
    product_name: String,
    product_slug: String,
    rules_food: bool,
    rules_ocop: bool,
    batches: Vec<BatchRow>,
    chosen: Option<String>,
    input: BatchInput,
    errors: FieldErrors,
    is_new_batch: bool,
}

impl BatchesPage {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).unwrap_or("").to_string()
    }
}

async fn batches_view(
    st: &AppState,
    seed: &CsrfSeed,
    user: &User,
    p: &ProductDetail,
    input: BatchInput,
    errors: FieldErrors,
    notice_code: &str,
) -> PageResult {
    let list = store::of_product(&st.db, p.card.id.0).await?;
    let chosen = store::chosen_code(&st.db, p.card.id.0).await?;
    let current = chosen
        .clone()
        .or_else(|| list.first().map(|b| b.code.clone()));
    let rules = store::rules_for(p);
    let p_ocop = p.card.ocop_stars.is_some();
    let status = form_status(&errors);
    let mut resp = render(BatchesPage {
        layout: Layout::new(
            st,
            seed,
            &Some(user.clone()),
            format!("Lô sản xuất — {}", p.card.name),
        )
        .with_notice(notice(notice_code)),
        product_name: p.card.name.clone(),
        product_slug: p.card.slug.clone(),
        rules_food: rules.food,
        rules_ocop: p_ocop,
        batches: list
            .iter()
            .map(|b| BatchRow {
                code: b.code.clone(),
                produced: vn_date(&b.current.produced_on),
                quantity: b.current.quantity,
                maker: b.current.maker.clone(),
                current: current.as_deref() == Some(b.code.as_str()),
                printed: b.labels_printed_at.is_some(),
            })
            .collect(),
        chosen,
        input,
        errors,
        is_new_batch: true,
    })?;
    *resp.status_mut() = status;
    Ok(resp)
}

#[derive(Deserialize, Default)]
struct NoticeQuery {
    #[serde(default)]
    ok: String,
}

async fn batches_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> PageResult {
    let (_, p) = my_product(&st, &user, &slug).await?;
    let input = BatchInput {
        produced_on: origin::today_vn().format("%Y-%m-%d").to_string(),
        maker: p.maker.clone(),
        ..Default::default()
    };
    batches_view(&st, &seed, &user, &p, input, FieldErrors::new(), &q.ok).await
}

#[derive(Deserialize)]
struct BatchForm {
    csrf: String,
    #[serde(flatten)]
    input: BatchInput,
}

async fn create_batch_form(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    Form(f): Form<BatchForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let (shop, p) = my_product(&st, &user, &slug).await?;
    let village = catalog_store::village_by_id(&st.db, shop.village_id).await?;
    let result = match f.input.parse(store::rules_for(&p), origin::today_vn()) {
        Ok(fields) => store::create(&st.db, &shop, &p, &village.name, &fields, user.id.0).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(b) => {
            helpers::record(
                &st.db,
                &user,
                &shop,
                &format!("ghi lô {} của “{}”", b.code, p.card.name),
            )
            .await?;
            see_other(&format!("/quan-ly/lo/{}?ok=batch-created", b.code))
        }
        // Everything typed stays in the form, each error beside its field.
        Err(AppError::Validation(errors)) => {
            batches_view(&st, &seed, &user, &p, f.input, errors, "").await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct ChooseForm {
    csrf: String,
    #[serde(default)]
    code: String,
}

async fn choose_current(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    Form(f): Form<ChooseForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let (shop, p) = my_product(&st, &user, &slug).await?;
    let code = Some(f.code.trim()).filter(|c| !c.is_empty());
    store::set_current(&st.db, p.card.id.0, code).await?;
    helpers::record(
        &st.db,
        &user,
        &shop,
        &format!("chọn lô đang bán của “{}”", p.card.name),
    )
    .await?;
    see_other(&format!("/quan-ly/san-pham/{slug}/lo?ok=batch-current"))
}

#[derive(Template)]
#[template(path = "batch.html")]
struct BatchPage {
    layout: Layout,
    code: String,
    product_name: String,
    product_slug: String,
    origin_url: String,
    qr_payload: String,
    printed: bool,
    revision: i64,
    rules_food: bool,
    rules_ocop: bool,
    input: BatchInput,
    errors: FieldErrors,
    scans_total: i64,
    scans: Vec<(String, i64)>,
    photos: Vec<String>,
    sheets: Vec<(&'static str, &'static str)>,
    is_new_batch: bool,
}

impl BatchPage {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).unwrap_or("").to_string()
    }
}

fn input_of(b: &Batch) -> BatchInput {
    let r = &b.current;
    BatchInput {
        code: b.code.clone(),
        produced_on: r.produced_on.clone(),
        quantity: r.quantity.to_string(),
        maker: r.maker.clone(),
        inputs: inputs_text(&r.inputs),
        notes: r.notes.clone(),
        expires_on: r.expires_on.clone().unwrap_or_default(),
        reason: String::new(),
    }
}

async fn batch_view(
    st: &AppState,
    seed: &CsrfSeed,
    user: &User,
    t: &Traced,
    input: BatchInput,
    errors: FieldErrors,
    notice_code: &str,
) -> PageResult {
    let rules = store::rules_for(&t.product);
    let p_ocop = t.product.card.ocop_stars.is_some();
    let scans = scan_days(st, t.batch.id).await?;
    let status = form_status(&errors);
    let mut resp = render(BatchPage {
        layout: Layout::new(
            st,
            seed,
            &Some(user.clone()),
            format!("Lô {} — {}", t.batch.code, t.product.card.name),
        )
        .with_notice(notice(notice_code)),
        code: t.batch.code.clone(),
        product_name: t.product.card.name.clone(),
        product_slug: t.product.card.slug.clone(),
        origin_url: format!("/truy-xuat/{}", t.batch.code),
        qr_payload: t.qr_payload(st),
        printed: t.batch.labels_printed_at.is_some(),
        revision: t.batch.current.revision,
        rules_food: rules.food,
        rules_ocop: p_ocop,
        input,
        errors,
        scans_total: scans.iter().map(|(_, n)| n).sum(),
        scans: scans
            .into_iter()
            .take(30)
            .map(|(d, n)| (vn_date(&d), n))
            .collect(),
        photos: store::photos(&st.db, t.batch.id)
            .await?
            .into_iter()
            .map(|(_, th)| format!("/anh/{th}"))
            .collect(),
        sheets: Sheet::ALL
            .iter()
            .map(|s| (s.name(), s.describe()))
            .collect(),
        is_new_batch: false,
    })?;
    *resp.status_mut() = status;
    Ok(resp)
}

async fn batch_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(code): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> PageResult {
    let t = my_batch(&st, &user, &code).await?;
    let input = input_of(&t.batch);
    batch_view(&st, &seed, &user, &t, input, FieldErrors::new(), &q.ok).await
}

async fn edit_batch_form(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(code): Path<String>,
    Form(mut f): Form<BatchForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let t = my_batch(&st, &user, &code).await?;
    catalog_store::require_member(&t.shop)?;
    f.input.code = t.batch.code.clone();
    let result = match f
        .input
        .parse(store::rules_for(&t.product), origin::today_vn())
    {
        Ok(fields) => store::update(&st.db, &t.batch, &fields, user.id.0).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(b) => {
            let ok = if b.current.revision > t.batch.current.revision {
                "batch-revised"
            } else {
                "batch-saved"
            };
            helpers::record(&st.db, &user, &t.shop, &format!("sửa lô {}", b.code)).await?;
            see_other(&format!("/quan-ly/lo/{}?ok={ok}", b.code))
        }
        Err(AppError::Validation(errors)) => {
            batch_view(&st, &seed, &user, &t, f.input, errors, "").await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct LabelQuery {
    #[serde(default)]
    layout: String,
    #[serde(default)]
    count: Option<String>,
}

async fn label_pdf(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(code): Path<String>,
    Query(q): Query<LabelQuery>,
) -> PageResult {
    let t = my_batch(&st, &user, &code).await?;
    let sheet = Sheet::parse(&q.layout)?;
    let count = match q.count.as_deref().map(str::trim) {
        None | Some("") => sheet.per_page(),
        Some(c) => c.parse::<u32>().map_err(|_| {
            AppError::field("count", format!("Số tem từ 1 đến {}", label::MAX_COUNT))
        })?,
    };
    let text = t.label(&st);
    // Labels render in their own pool, two per seller at most: a seller printing many
    // never holds up another seller's photos or labels.
    let _mine = label::seller_turn(&format!("{}#{}", st.config.database_url, user.id.0))?;
    let _turn = label::RENDERING.turn("in tem").await?;
    let pdf = tokio::task::spawn_blocking(move || label::pdf(sheet, &text, count))
        .await
        .map_err(|e| AppError::Internal(e.into()))??;
    // A download records nothing: printing is said with "Đã in tem" (a POST).
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "inline; filename=\"tem-{}-{}.pdf\"",
                    t.batch.code,
                    sheet.name()
                ),
            ),
        ],
        pdf,
    )
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CsrfForm {
    csrf: String,
}

/// "Đã in tem": from now on a correction of the batch needs a reason and makes a revision.
async fn labels_printed_form(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(code): Path<String>,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let t = my_batch(&st, &user, &code).await?;
    store::mark_printed(&st.db, t.batch.id).await?;
    helpers::record(
        &st.db,
        &user,
        &t.shop,
        &format!("in tem lô {}", t.batch.code),
    )
    .await?;
    see_other(&format!("/quan-ly/lo/{}?ok=labels-printed", t.batch.code))
}

async fn label_svg(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(code): Path<String>,
    Query(q): Query<LabelQuery>,
) -> PageResult {
    let t = my_batch(&st, &user, &code).await?;
    let sheet = Sheet::parse(&q.layout)?;
    let svg = label::svg(sheet, &t.label(&st))?;
    Ok((
        [(header::CONTENT_TYPE, "image/svg+xml; charset=utf-8")],
        svg,
    )
        .into_response())
}

async fn upload_photo(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(code): Path<String>,
    mut form: Multipart,
) -> PageResult {
    let (csrf, bytes) = read_photo_form(&mut form).await?;
    verify_csrf(&st, &seed, &csrf)?;
    let t = my_batch(&st, &user, &code).await?;
    let (db, id) = (st.db.clone(), t.batch.id);
    let result = save_photo(&st, bytes, |full, thumb| async move {
        store::add_photo(&db, id, &full, &thumb).await
    })
    .await;
    match result {
        Ok(()) => {
            helpers::record(
                &st.db,
                &user,
                &t.shop,
                &format!("thêm ảnh cho lô {}", t.batch.code),
            )
            .await?;
            see_other(&format!("/quan-ly/lo/{}?ok=photo-added", t.batch.code))
        }
        Err(AppError::Validation(errors)) => {
            let input = input_of(&t.batch);
            batch_view(&st, &seed, &user, &t, input, errors, "").await
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------
// API

/// A batch in JSON: strings or numbers; `inputs` as `[{material, source}]`.
#[derive(Deserialize, Default, ToSchema)]
struct BatchBody {
    #[schema(schema_with = super::openapi::text_or_number)]
    code: Option<Value>,
    #[schema(schema_with = super::openapi::text_or_number)]
    produced_on: Option<Value>,
    #[schema(schema_with = super::openapi::text_or_number)]
    quantity: Option<Value>,
    #[schema(schema_with = super::openapi::text_or_number)]
    maker: Option<Value>,
    inputs: Option<Vec<InputBody>>,
    #[schema(schema_with = super::openapi::text_or_number)]
    notes: Option<Value>,
    #[schema(schema_with = super::openapi::text_or_number)]
    expires_on: Option<Value>,
    /// Refused when not empty: a batch carries no OCOP certificate of its own.
    #[schema(schema_with = super::openapi::text_or_number)]
    ocop_cert_no: Option<Value>,
    /// Refused when not empty, as `ocop_cert_no`.
    #[schema(schema_with = super::openapi::text_or_number)]
    ocop_cert_year: Option<Value>,
    #[schema(schema_with = super::openapi::text_or_number)]
    reason: Option<Value>,
}

#[derive(Deserialize, ToSchema)]
struct InputBody {
    #[serde(default)]
    material: String,
    #[serde(default)]
    source: String,
}

impl BatchBody {
    fn over(self, base: BatchInput) -> Result<BatchInput> {
        let t = |v: Option<Value>, b: String| v.map(|v| text(&Some(v))).unwrap_or(b);
        let mut e = crate::error::FieldErrors::new();
        for (k, v) in [
            ("ocop_cert_no", &self.ocop_cert_no),
            ("ocop_cert_year", &self.ocop_cert_year),
        ] {
            if v.as_ref()
                .is_some_and(|v| !text(&Some(v.clone())).trim().is_empty())
            {
                e.add(
                    k,
                    "Lô không ghi giấy chứng nhận OCOP riêng: trang nguồn gốc hiện giấy chứng nhận của sản phẩm đã được điều phối viên xác minh",
                );
            }
        }
        e.into_result()?;
        let inputs = match self.inputs {
            None => base.inputs,
            Some(list) => {
                // Validated as the form's lines: a colon would split a material.
                for i in &list {
                    if i.material.contains(':') || i.material.contains('\n') {
                        return Err(AppError::field(
                            "inputs",
                            "Tên nguyên liệu không chứa dấu hai chấm hay xuống dòng",
                        ));
                    }
                    if i.material.trim().is_empty() || i.source.trim().is_empty() {
                        return Err(AppError::field(
                            "inputs",
                            "Mỗi nguyên liệu cần tên (material) và nguồn gốc (source)",
                        ));
                    }
                }
                list.iter()
                    .map(|i| format!("{}: {}", i.material, i.source.replace('\n', " ")))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        };
        Ok(BatchInput {
            code: t(self.code, base.code),
            produced_on: t(self.produced_on, base.produced_on),
            quantity: t(self.quantity, base.quantity),
            maker: t(self.maker, base.maker),
            inputs,
            notes: t(self.notes, base.notes),
            expires_on: t(self.expires_on, base.expires_on),
            reason: t(self.reason, String::new()),
        })
    }
}

#[utoipa::path(post, path = "/products/{slug}/batches", tag = "origin", params(ProductSlug),
    security(("bearer" = [])), request_body = BatchBody,
    responses((status = 201, body = BatchCreatedOut), (status = 409), (status = 422)))]
async fn api_create(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    super::api::ApiPath(slug): super::api::ApiPath<String>,
    ApiJson(b): ApiJson<BatchBody>,
) -> Result<Response> {
    let (shop, p) = my_product(&st, &user, &slug).await?;
    let village = catalog_store::village_by_id(&st.db, shop.village_id).await?;
    let base = BatchInput {
        maker: p.maker.clone(),
        ..Default::default()
    };
    let fields = b
        .over(base)?
        .parse(store::rules_for(&p), origin::today_vn())?;
    let batch = store::create(&st.db, &shop, &p, &village.name, &fields, user.id.0).await?;
    helpers::record(
        &st.db,
        &user,
        &shop,
        &format!("ghi lô {} của “{}”", batch.code, p.card.name),
    )
    .await?;
    let t = traced(&st, &batch.code).await?;
    Ok((
        StatusCode::CREATED,
        Json(BatchCreatedOut { batch: t.json(&st) }),
    )
        .into_response())
}

#[utoipa::path(patch, path = "/batches/{code}", tag = "origin", params(CodeParam),
    security(("bearer" = [])), request_body = BatchBody,
    responses((status = 200, body = BatchOut), (status = 409), (status = 422)))]
async fn api_update(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    super::api::ApiPath(code): super::api::ApiPath<String>,
    ApiJson(b): ApiJson<BatchBody>,
) -> Result<Json<impl Serialize>> {
    let t = my_batch(&st, &user, &code).await?;
    catalog_store::require_member(&t.shop)?;
    let mut input = b.over(input_of(&t.batch))?;
    if input.code.trim().is_empty() {
        input.code = t.batch.code.clone();
    }
    let fields = input.parse(store::rules_for(&t.product), origin::today_vn())?;
    store::update(&st.db, &t.batch, &fields, user.id.0).await?;
    helpers::record(&st.db, &user, &t.shop, &format!("sửa lô {}", t.batch.code)).await?;
    let t = traced(&st, &code).await?;
    let history = store::history(&st.db, &t.batch).await?;
    Ok(Json(BatchOut {
        batch: t.json(&st),
        history,
    }))
}

#[utoipa::path(get, path = "/batches/{code}", tag = "origin", params(CodeParam),
    responses((status = 200, body = BatchOut)))]
async fn api_get(
    State(st): State<AppState>,
    super::api::ApiPath(code): super::api::ApiPath<String>,
) -> Result<Json<impl Serialize>> {
    let t = origin::store::public_trace(&st.db, &code).await?;
    let history = store::history(&st.db, &t.batch).await?;
    Ok(Json(BatchOut {
        batch: t.json(&st),
        history,
    }))
}

#[utoipa::path(get, path = "/products/{slug}/batches", tag = "origin", params(ProductSlug),
    responses((status = 200, body = BatchesOut)))]
async fn api_list(
    State(st): State<AppState>,
    super::api::ApiPath(slug): super::api::ApiPath<String>,
) -> Result<Json<impl Serialize>> {
    let p = catalog_store::product_by_slug(&st.db, &slug).await?;
    if !p.card.active {
        return Err(AppError::NotFound);
    }
    let mut out = Vec::new();
    for b in store::of_product(&st.db, p.card.id.0).await? {
        match origin::store::public_trace(&st.db, &b.code).await {
            Ok(t) => out.push(t.json(&st)),
            Err(AppError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    let current = store::current_code(&mut *st.db.conn().await?, p.card.id.0).await?;
    Ok(Json(BatchesOut {
        batches: out,
        current_batch: current,
    }))
}

/// Views per day, newest first: what is written plus this instance's views not yet written.
async fn scan_days(st: &AppState, batch_id: i64) -> Result<Vec<(String, i64)>> {
    let mut days = store::scans(&st.db, batch_id).await?;
    for (day, n) in st.scans.pending(batch_id) {
        match days.iter_mut().find(|(d, _)| *d == day) {
            Some(row) => row.1 += n,
            None => days.push((day, n)),
        }
    }
    days.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(days)
}

/// Scan counts per day (the shop's own people only).
#[utoipa::path(get, path = "/batches/{code}/scans", tag = "origin", params(CodeParam),
    security(("bearer" = [])), responses((status = 200, body = ScansOut)))]
async fn api_scans(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    super::api::ApiPath(code): super::api::ApiPath<String>,
) -> Result<Json<impl Serialize>> {
    let t = my_batch(&st, &user, &code).await?;
    let days = scan_days(&st, t.batch.id).await?;
    Ok(Json(ScansOut {
        code: t.batch.code.clone(),
        total: days.iter().map(|(_, n)| n).sum::<i64>(),
        days: days
            .into_iter()
            .map(|(day, scans)| ScanDay { day, scans })
            .collect(),
    }))
}
