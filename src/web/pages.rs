//! Public pages for buyers: home, village, storefront, product, simple search.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;

use super::views::{CardView, DetailView, ShopView, VillageView, cards, detail};
use super::{CsrfSeed, Layout, MaybeUser, PageResult, render};
use crate::app::AppState;
use crate::catalog::store;

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
        ),
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
}

async fn village(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    Path(slug): Path<String>,
) -> PageResult {
    let v = store::village_by_slug(&st.db, &slug).await?;
    let shops = store::shops_of_village(&st.db, v.id).await?;
    let products = store::products_of_village(&st.db, v.id).await?;
    render(VillagePage {
        layout: Layout::new(&st, &seed, &user, format!("Làng {}", v.name)),
        village: VillageView::from(&v),
        shops: shops.iter().map(ShopView::from).collect(),
        products: cards(&products),
    })
}

#[derive(Template)]
#[template(path = "shop.html")]
struct ShopPage {
    layout: Layout,
    shop: ShopView,
    village: VillageView,
    products: Vec<CardView>,
}

async fn shop(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    Path(slug): Path<String>,
) -> PageResult {
    let s = store::shop_by_slug(&st.db, &slug).await?;
    if !s.is_member() {
        return Err(crate::error::AppError::NotFound.into());
    }
    let v = store::village_by_id(&st.db, s.village_id).await?;
    let products = store::products_of_shop(&st.db, s.id, false).await?;
    render(ShopPage {
        layout: Layout::new(&st, &seed, &user, s.name.clone()),
        shop: ShopView::from(&s),
        village: VillageView::from(&v),
        products: cards(&products),
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
    let d = store::product_by_slug(&st.db, slug).await?;
    let mut resp = render(ProductPage {
        layout: Layout::new(st, seed, user, d.card.name.clone()),
        village_url: format!("/lang/{}", d.card.village_slug),
        p: detail(&d),
        quantity: typed.chars().take(10).collect(),
        error: Some(error),
        origin_url: origin_url(st, &d).await?,
        chart: chart(st, &d).await?,
    })?;
    *resp.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    Ok(resp)
}

async fn chart(
    st: &AppState,
    d: &crate::catalog::ProductDetail,
) -> Result<Option<super::views::ChartView>, crate::error::AppError> {
    let history = crate::pricing::store::history_of_item(&st.db, d.card.price_item_id).await?;
    Ok(super::views::ChartView::of(
        d.card.price_item_id,
        &d.price_item_name,
        &d.card.unit,
        &history,
    ))
}

async fn origin_url(
    st: &AppState,
    d: &crate::catalog::ProductDetail,
) -> Result<Option<String>, crate::error::AppError> {
    Ok(crate::origin::store::selling_code(&st.db, d.card.id.0)
        .await?
        .map(|c| format!("/truy-xuat/{c}")))
}

async fn product(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    Path(slug): Path<String>,
) -> PageResult {
    let d = store::product_by_slug(&st.db, &slug).await?;
    if !d.card.active {
        return Err(crate::error::AppError::NotFound.into());
    }
    render(ProductPage {
        layout: Layout::new(&st, &seed, &user, d.card.name.clone()),
        village_url: format!("/lang/{}", d.card.village_slug),
        p: detail(&d),
        quantity: "1".into(),
        error: None,
        origin_url: origin_url(&st, &d).await?,
        chart: chart(&st, &d).await?,
    })
}
