//! Sharing where villagers already are: link previews' pictures (Open Graph, 1200 × 630,
//! made from the product's photo and kept on disk), the "Chia sẻ qua Zalo" page (the link to
//! copy and paste into a Zalo chat or the village's group, no script needed), and the shop's
//! printable A5 poster with a QR code to its page.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::session::CurrentUser;
use super::{CsrfSeed, Layout, MaybeUser, PageResult, render};
use crate::catalog::{photos, store};
use crate::error::{AppError, Result};
use crate::web::AppState;

/// The picture of a page without a photo.
pub const PLAIN: &str = "cho-lang.jpg";

pub fn page_router() -> Router<AppState> {
    Router::new()
        .route("/anh-chia-se/{file}", get(share_picture))
        .route("/chia-se", get(share_page))
        .route("/quan-ly/cua-hang/{slug}/to-gioi-thieu.pdf", get(poster))
}

/// The preview picture for a stored photo (or the plain one), made once and kept.
async fn share_picture(State(st): State<AppState>, Path(file): Path<String>) -> Result<Response> {
    if file != PLAIN && !photos::is_stored_name(&file) {
        return Err(AppError::NotFound);
    }
    let dir = st.config.photos_dir().join("share");
    let kept = dir.join(&file);
    let bytes = match tokio::fs::read(&kept).await {
        Ok(b) => b,
        Err(_) => {
            let source = if file == PLAIN {
                None
            } else {
                Some(
                    tokio::fs::read(st.config.photos_dir().join(&file))
                        .await
                        .map_err(|_| AppError::NotFound)?,
                )
            };
            let _turn = photos::DECODING.turn("làm ảnh chia sẻ").await?;
            let made = tokio::task::spawn_blocking(move || photos::share_image(source.as_deref()))
                .await
                .map_err(|e| AppError::Internal(e.into()))??;
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| AppError::Internal(e.into()))?;
            // Written whole under another name, then moved: a reader never sees half a file.
            let tmp = dir.join(format!("{file}.{}", uuid::Uuid::new_v4().simple()));
            tokio::fs::write(&tmp, &made)
                .await
                .map_err(|e| AppError::Internal(e.into()))?;
            tokio::fs::rename(&tmp, &kept)
                .await
                .map_err(|e| AppError::Internal(e.into()))?;
            made
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ShareQuery {
    #[serde(rename = "duong-dan")]
    path: String,
}

#[derive(Template)]
#[template(path = "share.html")]
struct SharePage {
    layout: Layout,
    url: String,
    qr_svg: String,
}

/// "Chia sẻ qua Zalo": the page's full address to copy, and how to paste it in Zalo.
async fn share_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    Query(q): Query<ShareQuery>,
) -> PageResult {
    // Only a page of this site.
    let path = if q.path.starts_with('/') {
        super::auth::safe_next(&q.path)
    } else {
        "/".to_string()
    };
    let url = format!("{}{}", st.config.public_url, path);
    let qr = qrcode::QrCode::new(url.as_bytes()).map_err(|_| AppError::NotFound)?;
    let qr_svg = qr
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build();
    let qr_svg = qr_svg[qr_svg.find("<svg").unwrap_or(0)..].to_string();
    render(SharePage {
        layout: Layout::new(&st, &seed, &user, "Chia sẻ qua Zalo"),
        url,
        qr_svg,
    })
}

/// The shop's A5 poster: for its owner, the admin, or a helper of the household.
async fn poster(
    State(st): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
) -> Result<Response> {
    let shop = store::shop_by_slug(&st.db, &slug).await?;
    store::authorize_shop_work(&user, &shop)?;
    let village = store::village_by_id(&st.db, shop.village_id).await?;
    let _turn = crate::origin::label::RENDERING
        .turn("in tờ giới thiệu")
        .await?;
    let url = format!("{}/shop/{}", st.config.public_url, shop.slug);
    let promise = format!(
        "Giá bán đúng bảng giá cộng đồng của làng {}: cả làng cùng bàn, cùng biểu quyết, công khai trên Chợ Làng.",
        village.name
    );
    let (name, vname) = (shop.name.clone(), village.name.clone());
    let pdf = tokio::task::spawn_blocking(move || {
        crate::origin::label::poster_pdf(&crate::origin::label::Poster {
            shop: &name,
            village: &vname,
            promise: &promise,
            url: &url,
        })
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))??;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"to-gioi-thieu-{}.pdf\"", shop.slug),
            ),
        ],
        pdf,
    )
        .into_response())
}
