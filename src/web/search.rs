//! Catalogue search: `GET /api/v1/search` (JSON) and `GET /tim-kiem` (the page). Both parse
//! the same parameters into a `SearchRequest`; `search::Search` does the rest.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::session::{CsrfSeed, Layout, MaybeUser};
use super::views::CardView;
use super::{PageResult, render};
use crate::domain::money::format_vnd;
use crate::error::{AppError, Result};
use crate::search::{SearchOutcome, SearchRequest, Sort};
use crate::web::AppState;

pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(api_search))
}

pub fn page_router() -> Router<AppState> {
    Router::new().route("/tim-kiem", get(page))
}

fn params(raw: &Option<String>) -> HashMap<String, String> {
    form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

#[utoipa::path(get, path = "/search", tag = "search", params(SearchParams),
    responses((status = 200, body = SearchOut), (status = 422),
        (status = 503, description = "The search engine is unavailable")))]
async fn api_search(
    State(st): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<SearchOut>> {
    let req = SearchRequest::parse(&params(&raw))?;
    let out = st.search.search(&req).await?;
    let hits = out
        .hits
        .iter()
        .map(|h| {
            let c = &h.card;
            SearchHit {
                id: c.id.0,
                slug: c.slug.clone(),
                name: c.name.clone(),
                price_vnd: c.price_vnd,
                unit: c.unit.clone(),
                in_stock: c.stock > 0,
                stock: c.stock,
                ocop_stars: c.ocop_stars,
                category: c.category.clone(),
                village: c.village_name.clone(),
                village_slug: c.village_slug.clone(),
                shop: crate::payments::service::ShopRefOut {
                    slug: c.shop_slug.clone(),
                    name: c.shop_name.clone(),
                },
                url: format!("/san-pham/{}", c.slug),
                image_url: c.thumb.as_ref().map(|t| format!("/anh/{t}")),
                highlight: h.highlight.clone(),
                snippet: h.snippet.clone(),
            }
        })
        .collect();
    Ok(Json(SearchOut {
        query: req.q.clone(),
        total: out.total,
        page: req.page as u64,
        per_page: req.per_page as u64,
        sort: out.sort,
        hits,
        facets: FacetsOut {
            ocop_at_least: out.facets.ocop_at_least(),
            counts: out.facets,
        },
        suggestions: out.suggestions,
        most_words: out.most_words,
        took_ms: out.took_ms,
        engine: st.search.engine.name().to_string(),
    }))
}

/// Query parameters of `GET /search` (all optional).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct SearchParams {
    /// Words to find, with or without diacritics (≤ 200 characters).
    #[param(example = "man tuyn")]
    q: Option<String>,
    /// A village's slug.
    village: Option<String>,
    /// A category name (≤ 60 characters).
    category: Option<String>,
    /// Lowest OCOP stars, 1–5.
    #[param(minimum = 1, maximum = 5)]
    ocop_min: Option<i64>,
    /// Lowest price in đồng, as people type it: `50000`, `50.000`, `50,000`, `50k`, `50 nghìn`.
    #[param(example = "50.000")]
    price_min: Option<String>,
    /// Highest price in đồng, typed the same ways (`200.000`, `200k`).
    #[param(example = "200k")]
    price_max: Option<String>,
    /// `true`/`false` or `1`/`0`.
    in_stock: Option<bool>,
    sort: Option<Sort>,
    #[param(minimum = 1, maximum = 1000)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<i64>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct SearchHit {
    id: i64,
    slug: String,
    name: String,
    price_vnd: i64,
    unit: String,
    in_stock: bool,
    stock: i64,
    ocop_stars: Option<i64>,
    category: String,
    /// The village's name.
    village: String,
    village_slug: String,
    shop: crate::payments::service::ShopRefOut,
    url: String,
    image_url: Option<String>,
    /// The name with matched words in `<mark>` (HTML-escaped otherwise).
    highlight: String,
    /// When the name holds none of the query's words: the words around one in the
    /// product's own text, highlighted the same way; empty otherwise.
    #[serde(skip_serializing_if = "String::is_empty")]
    snippet: String,
}

/// Counts per value of each filter, and per "OCOP from N stars" link.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct FacetsOut {
    #[serde(flatten)]
    counts: crate::search::Facets,
    /// Products with at least N stars (`search::Facets::ocop_at_least`): what the page's
    /// "OCOP từ N sao" links show and `ocop_min=N` finds.
    ocop_at_least: std::collections::BTreeMap<String, u64>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct SearchOut {
    query: String,
    total: u64,
    page: u64,
    per_page: u64,
    sort: Sort,
    hits: Vec<SearchHit>,
    facets: FacetsOut,
    /// When nothing matched: shorter queries that do.
    suggestions: Vec<crate::search::Suggestion>,
    /// No product has every word: the hits have the most of them.
    most_words: bool,
    took_ms: u64,
    /// `embedded` or `meilisearch`.
    engine: String,
}

/// A facet value as a link that toggles it.
pub struct FacetLink {
    pub label: String,
    pub count: u64,
    pub url: String,
    pub active: bool,
}

pub struct FacetGroup {
    pub title: &'static str,
    pub links: Vec<FacetLink>,
}

pub struct Chip {
    pub label: String,
    pub remove_url: String,
}

pub struct SortLink {
    pub label: &'static str,
    pub url: String,
    pub active: bool,
}

pub struct PageLink {
    pub label: String,
    pub url: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    layout: Layout,
    q: String,
    searched: bool,
    errors: Vec<String>,
    total: u64,
    hits: Vec<CardView>,
    facets: Vec<FacetGroup>,
    chips: Vec<Chip>,
    sorts: Vec<SortLink>,
    pages: Vec<PageLink>,
    prev_url: Option<String>,
    next_url: Option<String>,
    suggestions: Vec<(String, String, u64)>,
    /// No product has every word: these have the most of them.
    most_words: bool,
    categories: Vec<FacetLink>,
    price_min: String,
    price_max: String,
    in_stock: bool,
    hidden: Vec<(String, String)>,
}

/// The current parameters with some replaced (an empty value removes the parameter); the
/// page goes back to 1 unless `page` itself is set.
fn url_with(p: &HashMap<String, String>, set: &[(&str, &str)]) -> String {
    let mut m: BTreeMap<String, String> = p
        .iter()
        .filter(|(k, v)| !v.is_empty() && k.as_str() != "page")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in set {
        if v.is_empty() {
            m.remove(*k);
        } else {
            m.insert(k.to_string(), v.to_string());
        }
    }
    let mut ser = form_urlencoded::Serializer::new(String::new());
    // q first, for readable addresses
    if let Some(q) = m.remove("q") {
        ser.append_pair("q", &q);
    }
    for (k, v) in &m {
        ser.append_pair(k, v);
    }
    format!("/tim-kiem?{}", ser.finish())
}

fn hit_view(h: &crate::search::Hit) -> CardView {
    let mut v = CardView::from(&h.card);
    v.highlight = Some(h.highlight.clone());
    v.snippet = h.snippet.clone();
    v
}

async fn page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let p = params(&raw);
    let q = p.get("q").cloned().unwrap_or_default();
    // A label's batch code typed in the search box leads to its origin page.
    if let Some(code) = crate::origin::BatchCode::typed_in_search(&q)
        && crate::origin::store::by_code(&st.db, code.as_str())
            .await
            .is_ok()
    {
        return super::see_other(&format!("/truy-xuat/{code}"));
    }
    let title = if q.trim().is_empty() {
        "Tìm kiếm".to_string()
    } else {
        format!("Tìm “{}”", q.trim())
    };
    let mut view = SearchPage {
        layout: Layout::new(&st, &seed, &user, title).with_own_search(),
        q: q.trim().to_string(),
        searched: p.keys().any(|k| k != "page"),
        errors: vec![],
        total: 0,
        hits: vec![],
        facets: vec![],
        chips: vec![],
        sorts: vec![],
        pages: vec![],
        prev_url: None,
        next_url: None,
        suggestions: vec![],
        most_words: false,
        categories: vec![],
        price_min: p.get("price_min").cloned().unwrap_or_default(),
        price_max: p.get("price_max").cloned().unwrap_or_default(),
        in_stock: p.get("in_stock").is_some_and(|v| v == "1" || v == "true"),
        hidden: vec![],
    };
    let req = match SearchRequest::parse(&p) {
        Ok(r) => r,
        Err(AppError::Validation(f)) => {
            view.errors =
                f.0.iter()
                    .map(|(k, m)| format!("{}: {}", field_label(k), after_colon(m)))
                    .collect();
            let mut resp = render(view)?;
            *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(resp);
        }
        Err(e) => return Err(e.into()),
    };
    if !view.searched {
        // The bare page: show the categories to browse.
        let all = st.search.search(&req).await?;
        view.categories = category_links(&p, &all);
        return render(view);
    }
    let out = match st.search.search(&req).await {
        Ok(o) => o,
        Err(AppError::Validation(f)) => {
            view.errors = f.0.values().cloned().collect();
            let mut resp = render(view)?;
            *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(resp);
        }
        Err(e) => return Err(e.into()),
    };
    let villages: HashMap<String, String> = crate::catalog::store::list_villages(&st.db)
        .await?
        .into_iter()
        .map(|v| (v.slug, v.name))
        .collect();
    let village_name = |slug: &str| {
        villages
            .get(slug)
            .cloned()
            .unwrap_or_else(|| slug.to_string())
    };
    view.total = out.total;
    view.most_words = out.most_words;
    view.hits = out.hits.iter().map(hit_view).collect();
    let fl = &req.filters;
    let toggle = |key: &str, value: &str, current: &Option<String>| -> (String, bool) {
        let active = current.as_deref() == Some(value);
        (
            url_with(&p, &[(key, if active { "" } else { value })]),
            active,
        )
    };
    let mut village_links: Vec<FacetLink> = out
        .facets
        .village
        .iter()
        .map(|(slug, n)| {
            let (url, active) = toggle("village", slug, &fl.village);
            FacetLink {
                label: village_name(slug),
                count: *n,
                url,
                active,
            }
        })
        .collect();
    village_links.sort_by(|a, b| b.count.cmp(&a.count).then(a.label.cmp(&b.label)));
    let mut cat_links: Vec<FacetLink> = out
        .facets
        .category
        .iter()
        .map(|(c, n)| {
            let (url, active) = toggle("category", c, &fl.category);
            FacetLink {
                label: c.clone(),
                count: *n,
                url,
                active,
            }
        })
        .collect();
    cat_links.sort_by(|a, b| b.count.cmp(&a.count).then(a.label.cmp(&b.label)));
    let ocop_now = fl.ocop_min.map(|n| n.to_string());
    // The link filters "at least N stars", so its count is of N stars and more.
    let at_least = out.facets.ocop_at_least();
    let ocop_links = at_least
        .iter()
        .rev()
        .map(|(stars, count)| {
            let (url, active) = toggle("ocop_min", stars, &ocop_now);
            let count = *count;
            FacetLink {
                label: if stars == "5" {
                    "OCOP 5 sao".to_string()
                } else {
                    format!("OCOP từ {stars} sao")
                },
                count,
                url,
                active,
            }
        })
        .collect();
    view.facets = vec![
        FacetGroup {
            title: "Làng nghề",
            links: village_links,
        },
        FacetGroup {
            title: "Loại hàng",
            links: cat_links,
        },
        FacetGroup {
            title: "Hạng OCOP",
            links: ocop_links,
        },
    ];
    if let Some(v) = &fl.village {
        view.chips.push(Chip {
            label: format!("Làng {}", village_name(v)),
            remove_url: url_with(&p, &[("village", "")]),
        });
    }
    if let Some(c) = &fl.category {
        view.chips.push(Chip {
            label: c.clone(),
            remove_url: url_with(&p, &[("category", "")]),
        });
    }
    if let Some(n) = fl.ocop_min {
        view.chips.push(Chip {
            label: format!("OCOP từ {n} sao"),
            remove_url: url_with(&p, &[("ocop_min", "")]),
        });
    }
    if fl.price_min.is_some() || fl.price_max.is_some() {
        let label = match (fl.price_min, fl.price_max) {
            (Some(a), Some(b)) => format!("Giá {} – {}", format_vnd(a), format_vnd(b)),
            (Some(a), None) => format!("Giá từ {}", format_vnd(a)),
            (None, Some(b)) => format!("Giá đến {}", format_vnd(b)),
            _ => unreachable!(),
        };
        view.chips.push(Chip {
            label,
            remove_url: url_with(&p, &[("price_min", ""), ("price_max", "")]),
        });
    }
    if fl.in_stock == Some(true) {
        view.chips.push(Chip {
            label: "Còn hàng".into(),
            remove_url: url_with(&p, &[("in_stock", "")]),
        });
    }
    let sorts: [(Sort, &str); 4] = [
        (Sort::Relevance, "Phù hợp nhất"),
        (Sort::PriceAsc, "Giá thấp trước"),
        (Sort::PriceDesc, "Giá cao trước"),
        (Sort::Newest, "Mới nhất"),
    ];
    view.sorts = sorts
        .iter()
        .filter(|(s, _)| *s != Sort::Relevance || !view.q.is_empty())
        .map(|(s, label)| SortLink {
            label,
            url: url_with(
                &p,
                &[(
                    "sort",
                    if *s == Sort::Relevance {
                        ""
                    } else {
                        s.as_str()
                    },
                )],
            ),
            active: *s == out.sort,
        })
        .collect();
    pagination(&mut view, &p, &req, &out, st.search.settings.max_total_hits);
    view.suggestions = out
        .suggestions
        .iter()
        .map(|s| {
            (
                // The filters stay: the count was made with them.
                url_with(&p, &[("q", &s.q)]),
                s.q.clone(),
                s.total,
            )
        })
        .collect();
    if out.total == 0 {
        let all = st
            .search
            .search(&SearchRequest::parse(&HashMap::new())?)
            .await?;
        view.categories = category_links(&HashMap::new(), &all);
    }
    // Filters kept when the buyer submits the price/stock form.
    for k in ["q", "village", "category", "ocop_min", "sort"] {
        if let Some(v) = p.get(k).filter(|v| !v.is_empty()) {
            view.hidden.push((k.to_string(), v.clone()));
        }
    }
    render(view)
}

fn category_links(p: &HashMap<String, String>, out: &SearchOutcome) -> Vec<FacetLink> {
    let mut links: Vec<FacetLink> = out
        .facets
        .category
        .iter()
        .map(|(c, n)| FacetLink {
            label: c.clone(),
            count: *n,
            url: url_with(p, &[("category", c)]),
            active: false,
        })
        .collect();
    links.sort_by(|a, b| b.count.cmp(&a.count).then(a.label.cmp(&b.label)));
    links
}

fn pagination(
    view: &mut SearchPage,
    p: &HashMap<String, String>,
    req: &SearchRequest,
    out: &SearchOutcome,
    max_total: usize,
) {
    let reachable = (out.total as usize).min(max_total);
    let last = reachable.div_ceil(req.per_page).max(1);
    if last <= 1 {
        return;
    }
    let page_url = |n: usize| {
        let s = n.to_string();
        url_with(p, &[("page", if n == 1 { "" } else { &s })])
    };
    let cur = req.page;
    if cur > 1 {
        view.prev_url = Some(page_url(cur - 1));
    }
    if cur < last {
        view.next_url = Some(page_url(cur + 1));
    }
    let lo = cur.saturating_sub(2).max(1);
    let hi = (cur + 2).min(last);
    view.pages = (lo..=hi)
        .map(|n| PageLink {
            label: n.to_string(),
            url: page_url(n),
            current: n == cur,
        })
        .collect();
}

/// A sentence continued after "Label: " starts in lower case again.
fn after_colon(m: &str) -> String {
    let mut c = m.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn field_label(k: &str) -> &'static str {
    match k {
        "q" => "Từ khoá",
        "village" => "Làng",
        "category" => "Loại hàng",
        "ocop_min" => "Hạng OCOP",
        "price_min" => "Giá từ",
        "price_max" => "Giá đến",
        "in_stock" => "Còn hàng",
        "sort" => "Sắp xếp",
        "page" => "Trang",
        "per_page" => "Số kết quả mỗi trang",
        _ => "Tham số",
    }
}
