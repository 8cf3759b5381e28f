//! Public pages for buyers: home, village, storefront, product, simple search.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;

use super::product_cache::ProductParts;
use super::views::{CardView, DetailView, ShopView, VillageView, cards, detail};
use super::{CsrfSeed, Layout, MaybeUser, PageResult, render};
use crate::catalog::store;
use crate::web::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/lang/{slug}", get(village))
        .route("/shop/{slug}", get(shop))
        .route("/san-pham/{slug}", get(product))
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
    villages: Vec<VillageView>,
    products: Vec<CardView>,
}

async fn home(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
) -> PageResult {
    let villages = store::list_villages(&st.db).await?;
    let products = store::newest_products(&st.db, 12).await?;
    render(HomePage {
        layout: Layout::new(
            &st,
            &seed,
            &user,
            "Chợ Làng — hàng làng nghề, giá cộng đồng",
        )
        .with_own_search(),
        villages: villages.iter().map(VillageView::from).collect(),
        products: cards(&products),
    })
}

#[derive(Template)]
#[template(path = "village.html")]
struct VillagePage {
    layout: Layout,
    village: VillageView,
    shops: Vec<ShopView>,
    products: Vec<CardView>,
    pager: Pager,
}

async fn village(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    Path(slug): Path<String>,
    Query(page): Query<PageNo>,
) -> PageResult {
    let v = store::village_by_slug(&st.db, &slug).await?;
    let shops = store::shops_of_village(&st.db, v.id).await?;
    let (products, total) = store::storefront_page(
        &st.db,
        store::Storefront::Village(v.id),
        PER_PAGE,
        page.offset(),
    )
    .await?;
    let share = super::Share::new(
        &st,
        &format!("/lang/{}", v.slug),
        &format!("Làng {} trên Chợ Làng", v.name),
        &format!(
            "{} cửa hàng của làng {}, {}. Giá công khai theo bảng giá cộng đồng.",
            shops.len(),
            v.name,
            v.province
        ),
        first_photo(&products).as_deref(),
    );
    render(VillagePage {
        layout: Layout::new(&st, &seed, &user, format!("Làng {}", v.name)).with_share(share),
        village: VillageView::from(&v),
        shops: shops.iter().map(ShopView::from).collect(),
        products: cards(&products),
        pager: Pager::new(&format!("/lang/{}", v.slug), page.no(), total),
    })
}

#[derive(Template)]
#[template(path = "shop.html")]
struct ShopPage {
    layout: Layout,
    shop: ShopView,
    village: VillageView,
    products: Vec<CardView>,
    pager: Pager,
}

async fn shop(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    Path(slug): Path<String>,
    Query(page): Query<PageNo>,
) -> PageResult {
    let s = store::shop_by_slug(&st.db, &slug).await?;
    if !s.is_member() {
        return Err(crate::error::AppError::NotFound.into());
    }
    let v = store::village_by_id(&st.db, s.village_id).await?;
    let (products, total) = store::storefront_page(
        &st.db,
        store::Storefront::Shop(s.id),
        PER_PAGE,
        page.offset(),
    )
    .await?;
    let share = super::Share::new(
        &st,
        &format!("/shop/{}", s.slug),
        &format!("{} — làng {}", s.name, v.name),
        &format!(
            "Hàng làm tại làng {}, giá theo bảng giá cộng đồng của làng. Mua trên Chợ Làng.",
            v.name
        ),
        first_photo(&products).as_deref(),
    );
    render(ShopPage {
        layout: Layout::new(&st, &seed, &user, s.name.clone()).with_share(share),
        shop: ShopView::from(&s),
        village: VillageView::from(&v),
        products: cards(&products),
        pager: Pager::new(&format!("/shop/{}", s.slug), page.no(), total),
    })
}

#[derive(Template)]
#[template(path = "product.html")]
struct ProductPage {
    layout: Layout,
    p: DetailView,
    village_url: String,
    /// The quantity typed and what was wrong with it (adding to the cart).
    quantity: String,
    error: Option<String>,
    /// The origin page of the batch on sale, if the seller records batches.
    origin_url: Option<String>,
    /// The agreed price of the product's item over time.
    chart: Option<super::views::ChartView>,
}

/// The product page again with the cart's message beside the quantity the buyer typed.
pub async fn product_with_error(
    st: &AppState,
    seed: &CsrfSeed,
    user: &Option<crate::accounts::User>,
    slug: &str,
    typed: &str,
    error: String,
) -> PageResult {
    let parts = product_parts(st, slug).await?;
    let d = &parts.detail;
    let mut resp = render(ProductPage {
        layout: Layout::new(st, seed, user, d.card.name.clone()),
        village_url: format!("/lang/{}", d.card.village_slug),
        p: detail(d),
        quantity: typed.chars().take(10).collect(),
        error: Some(error),
        origin_url: parts.origin_url.clone(),
        chart: parts.chart.clone(),
    })?;
    *resp.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    Ok(resp)
}

/// What a product page reads from the database: the product, the batch on sale and its
/// item's price history, asked one after the other on one held connection (one ping back to
/// the pool, not three: `Db::conn`), and kept until any of it changes (`product_cache`).
async fn product_parts(
    st: &AppState,
    slug: &str,
) -> Result<Arc<ProductParts>, crate::error::AppError> {
    st.products
        .get_or_read_one(slug, || async {
            let mut conn = st.db.conn().await?;
            let detail = store::product_by_slug_on(&mut conn, st.db.backend, slug).await?;
            let origin_url = origin_url(&mut conn, &detail).await?;
            let chart = chart(&mut conn, &detail).await?;
            Ok(ProductParts {
                detail,
                origin_url,
                chart,
            })
        })
        .await
}

async fn chart(
    conn: &mut sqlx::AnyConnection,
    d: &crate::catalog::ProductDetail,
) -> Result<Option<super::views::ChartView>, crate::error::AppError> {
    let history = crate::pricing::store::history_of_item(conn, d.card.price_item_id).await?;
    Ok(super::views::ChartView::of(
        d.card.price_item_id,
        &d.price_item_name,
        &d.card.unit,
        &history,
    ))
}

async fn origin_url(
    conn: &mut sqlx::AnyConnection,
    d: &crate::catalog::ProductDetail,
) -> Result<Option<String>, crate::error::AppError> {
    Ok(crate::origin::store::current_code(conn, d.card.id.0)
        .await?
        .map(|c| format!("/truy-xuat/{c}")))
}

async fn product(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    Path(slug): Path<String>,
) -> PageResult {
    let parts = product_parts(&st, &slug).await?;
    let d = &parts.detail;
    if !d.card.active {
        return Err(crate::error::AppError::NotFound.into());
    }
    let mut share = super::Share::new(
        &st,
        &format!("/san-pham/{}", d.card.slug),
        &format!(
            "{} — {} / {}",
            d.card.name,
            crate::domain::money::format_vnd(d.card.price_vnd),
            d.card.unit
        ),
        &format!(
            "{}, làng {}. Giá theo bảng giá cộng đồng của làng.",
            d.card.shop_name, d.card.village_name
        ),
        d.photos.first().map(|p| p.file_name.as_str()),
    );
    share.kind = "product";
    share.price_vnd = Some(d.card.price_vnd);
    render(ProductPage {
        layout: Layout::new(&st, &seed, &user, d.card.name.clone()).with_share(share),
        village_url: format!("/lang/{}", d.card.village_slug),
        p: detail(d),
        quantity: "1".into(),
        error: None,
        origin_url: parts.origin_url.clone(),
        chart: parts.chart.clone(),
    })
}

/// The first product photo of a list (its full picture's stored name), for link previews.
fn first_photo(products: &[crate::catalog::ProductCard]) -> Option<String> {
    products
        .iter()
        .find_map(|p| p.thumb.as_deref())
        .map(|t| t.replace("-thumb.jpg", ".jpg"))
}

/// Products per page on village and shop pages.
const PER_PAGE: i64 = 48;

/// `?trang=N` (1-based); anything else is page 1.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct PageNo {
    trang: Option<String>,
}

impl PageNo {
    fn no(&self) -> i64 {
        self.trang
            .as_deref()
            .and_then(|t| t.parse::<i64>().ok())
            .filter(|n| (1..=100_000).contains(n))
            .unwrap_or(1)
    }

    fn offset(&self) -> i64 {
        (self.no() - 1) * PER_PAGE
    }
}

/// Previous / next links under a storefront's products.
struct Pager {
    current: i64,
    last: i64,
    prev_url: Option<String>,
    next_url: Option<String>,
}

impl Pager {
    fn new(base: &str, current: i64, total: i64) -> Pager {
        let last = ((total + PER_PAGE - 1) / PER_PAGE).max(1);
        let url = |n: i64| {
            if n == 1 {
                base.to_string()
            } else {
                format!("{base}?trang={n}")
            }
        };
        Pager {
            current,
            last,
            prev_url: (current > 1).then(|| url((current - 1).min(last))),
            next_url: (current < last).then(|| url(current + 1)),
        }
    }
}
