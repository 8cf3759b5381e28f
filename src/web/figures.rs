//! The village's smart-village figures: the public page `/lang/{slug}/so-lieu`, its CSV for
//! the commune's report, and `GET /api/v1/villages/{slug}/stats` (all from `figures`).

use askama::Template;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::ApiQuery;
use super::openapi::VillageSlug;
use super::{CsrfSeed, Layout, MaybeUser, PageResult, render};
use crate::catalog::store;
use crate::error::{AppError, FieldErrors, Result};
use crate::figures::{self, Figures};
use crate::web::AppState;

pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(api_stats))
}

pub fn page_router() -> Router<AppState> {
    Router::new()
        .route("/lang/{slug}/so-lieu", get(page))
        .route("/lang/{slug}/so-lieu.csv", get(csv))
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
struct Range {
    /// First month, `YYYY-MM` (default: 11 months before `to`).
    from: String,
    /// Last month, `YYYY-MM` (default: this month). At most 36 months.
    to: String,
}

async fn load(st: &AppState, slug: &str, r: &Range) -> Result<Figures> {
    let v = store::village_by_slug(&st.db, slug).await?;
    let (from, to) = figures::parse_range(&r.from, &r.to, figures::today())?;
    figures::load(&st.db, &v, from, to).await
}

/// A village's figures month by month (public; counts only, no personal data).
#[utoipa::path(get, path = "/villages/{slug}/stats", tag = "villages", params(VillageSlug, Range),
    responses((status = 200, body = Figures), (status = 404), (status = 422)))]
async fn api_stats(
    State(st): State<AppState>,
    Path(slug): Path<String>,
    ApiQuery(r): ApiQuery<Range>,
) -> Result<Json<Figures>> {
    Ok(Json(load(&st, &slug, &r).await?))
}

/// One figure on the page: its words, its chart, and (month, value) as text.
struct Figure {
    name: &'static str,
    svg: String,
    values: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "figures.html")]
struct FiguresPage {
    layout: Layout,
    village: String,
    slug: String,
    from: String,
    to: String,
    figures: Vec<Figure>,
    errors: FieldErrors,
}

impl FiguresPage {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).unwrap_or("").to_string()
    }
}

async fn page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    Path(slug): Path<String>,
    Query(r): Query<Range>,
) -> PageResult {
    let v = store::village_by_slug(&st.db, &slug).await?;
    let (f, errors) = match load(&st, &slug, &r).await {
        Ok(f) => (f, FieldErrors::new()),
        Err(AppError::Validation(e)) => (load(&st, &slug, &Range::default()).await?, e),
        Err(e) => return Err(e.into()),
    };
    let figures = figures::NAMES
        .iter()
        .map(|(key, name)| {
            let values: Vec<(String, i64)> = f
                .months
                .iter()
                .map(|m| (m.month[5..].to_string(), m.get(key)))
                .collect();
            Figure {
                name,
                svg: figures::bar_chart(key, name, &values),
                values: f
                    .months
                    .iter()
                    .map(|m| {
                        let shown = match *key {
                            "value_paid_vnd" => crate::domain::money::format_vnd(m.value_paid_vnd),
                            "received_percent" => m
                                .received_percent
                                .map(|p| format!("{p}%"))
                                .unwrap_or_else(|| "—".into()),
                            k => m.get(k).to_string(),
                        };
                        (figures::month_words(&m.month), shown)
                    })
                    .collect(),
            }
        })
        .collect();
    let failed = !errors.is_empty();
    let mut resp = render(FiguresPage {
        layout: Layout::new(
            &st,
            &seed,
            &user,
            format!("Số liệu thôn thông minh — {}", v.name),
        ),
        village: v.name,
        slug: v.slug,
        from: if failed { r.from } else { f.from },
        to: if failed { r.to } else { f.to },
        figures,
        errors,
    })?;
    if failed {
        *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(resp)
}

/// The same table for the commune's report: one row per month, a column per figure.
async fn csv(
    State(st): State<AppState>,
    Path(slug): Path<String>,
    Query(r): Query<Range>,
) -> Result<Response> {
    let f = load(&st, &slug, &r).await?;
    let mut header = vec!["Tháng"];
    header.extend(figures::NAMES.iter().map(|(_, n)| *n));
    let mut w = crate::domain::sheet::Sheet::new(&header);
    for m in &f.months {
        let mut row = vec![figures::month_words(&m.month)];
        for (key, _) in figures::NAMES {
            row.push(match *key {
                "received_percent" => m
                    .received_percent
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                k => m.get(k).to_string(),
            });
        }
        w.row(&row);
    }
    let mut body = "\u{feff}".as_bytes().to_vec();
    body.extend(w.into_string().into_bytes());
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"so-lieu-{}-{}-{}.csv\"",
                    slug, f.from, f.to
                ),
            ),
        ],
        body,
    )
        .into_response())
}
