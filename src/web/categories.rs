//! A village's categories page (`/lang/{slug}/loai-hang`): everyone sees the list with links to
//! browse each; the village's moderators (and admins) add, rename and remove categories there.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use serde::Deserialize;

use super::session::{CurrentUser, verify_csrf};
use super::views::VillageView;
use super::{CsrfSeed, Layout, MaybeUser, PageResult, render, see_other};
use crate::accounts::User;
use crate::catalog::categories::{self, Category};
use crate::catalog::store as catalog;
use crate::error::{AppError, FieldErrors};
use crate::web::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/lang/{slug}/loai-hang", get(page).post(add))
        .route("/lang/{slug}/loai-hang/{id}/doi-ten", post(rename))
        .route("/lang/{slug}/loai-hang/{id}/xoa", post(remove))
        .route("/lang/{slug}/loai-hang/{id}/goi-hang", post(set_parcel))
}

#[derive(Template)]
#[template(path = "categories.html")]
struct CategoriesPage {
    layout: Layout,
    village: VillageView,
    categories: Vec<Category>,
    can_moderate: bool,
    errors: FieldErrors,
    /// What the moderator typed in the add form, kept after a refusal.
    new_name: String,
    /// The category whose rename was refused, and the name typed for it.
    rename_id: i64,
    rename_name: String,
    /// The category whose parcel was refused, and the four numbers typed for it.
    parcel_id: i64,
    parcel_typed: [String; 4],
}

impl CategoriesPage {
    /// The parcel form's values for a category: what was typed if it was refused, else
    /// the category's own numbers.
    fn parcel_for(&self, c: &Category) -> [String; 4] {
        if c.id == self.parcel_id {
            return self.parcel_typed.clone();
        }
        let t = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
        [
            t(c.parcel.weight_g),
            t(c.parcel.length_cm),
            t(c.parcel.width_cm),
            t(c.parcel.height_cm),
        ]
    }
    fn err(&self, field: &str) -> String {
        self.errors.get(field).unwrap_or("").to_string()
    }
    fn search_url(&self, name: &str) -> String {
        format!(
            "/tim-kiem?village={}&category={}",
            self.village.slug,
            form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
        )
    }
    fn value_for(&self, c: &Category) -> String {
        if c.id == self.rename_id {
            self.rename_name.clone()
        } else {
            c.name.clone()
        }
    }
}

fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "added" => "Đã thêm loại hàng; người bán trong làng chọn được ngay.",
        "renamed" => "Đã đổi tên loại hàng; sản phẩm thuộc loại này đổi theo.",
        "removed" => "Đã xóa loại hàng.",
        "parcel" => "Đã lưu số đo gói hàng mặc định của loại hàng.",
        _ => return None,
    })
}

#[derive(Default)]
struct Draft {
    errors: FieldErrors,
    new_name: String,
    rename_id: i64,
    rename_name: String,
    parcel_id: i64,
    parcel_typed: [String; 4],
}

async fn show(
    st: &AppState,
    seed: &CsrfSeed,
    user: &Option<User>,
    slug: &str,
    notice_code: &str,
    draft: Draft,
) -> PageResult {
    let v = catalog::village_by_slug(&st.db, slug).await?;
    let can_moderate = match user {
        Some(u) => crate::accounts::store::can_moderate(&st.db, u, v.id.0).await?,
        None => false,
    };
    render(CategoriesPage {
        layout: Layout::new(st, seed, user, format!("Loại hàng — Làng {}", v.name))
            .with_notice(notice(notice_code)),
        categories: categories::list(&st.db, v.id).await?,
        village: VillageView::from(&v),
        can_moderate,
        errors: draft.errors,
        new_name: draft.new_name,
        rename_id: draft.rename_id,
        rename_name: draft.rename_name,
        parcel_id: draft.parcel_id,
        parcel_typed: draft.parcel_typed,
    })
}

#[derive(Deserialize, Default)]
struct OkQuery {
    #[serde(default)]
    ok: String,
}

async fn page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    Path(slug): Path<String>,
    Query(q): Query<OkQuery>,
) -> PageResult {
    show(&st, &seed, &user, &slug, &q.ok, Draft::default()).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NameForm {
    csrf: String,
    name: String,
}

/// A refused change is shown on the page again, the message on the form's field and in the
/// summary at the top; other errors (not a moderator, no such category) are error pages.
async fn refused(
    (st, seed, user): (&AppState, &CsrfSeed, User),
    slug: &str,
    e: AppError,
    field: &str,
    mut draft: Draft,
) -> PageResult {
    let status = e.status();
    draft.errors = match e {
        AppError::Validation(fe) => {
            let mut out = FieldErrors::new();
            for (_, m) in fe.0 {
                out.add(field, m);
            }
            out
        }
        AppError::Conflict(m) => {
            let mut out = FieldErrors::new();
            out.add(field, m);
            out
        }
        other => return Err(other.into()),
    };
    let mut resp = show(st, seed, &Some(user), slug, "", draft).await?;
    *resp.status_mut() = status;
    Ok(resp)
}

async fn add(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    Form(f): Form<NameForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let v = catalog::village_by_slug(&st.db, &slug).await?;
    match categories::add(&st.db, &user, v.id, &f.name).await {
        Ok(_) => see_other(&format!("/lang/{slug}/loai-hang?ok=added")),
        Err(e) => {
            let draft = Draft {
                new_name: f.name,
                ..Draft::default()
            };
            refused((&st, &seed, user), &slug, e, "new", draft).await
        }
    }
}

async fn rename(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path((slug, id)): Path<(String, i64)>,
    Form(f): Form<NameForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let v = catalog::village_by_slug(&st.db, &slug).await?;
    match categories::rename(&st.db, &user, v.id, id, &f.name).await {
        Ok(_) => see_other(&format!("/lang/{slug}/loai-hang?ok=renamed")),
        Err(e) => {
            let draft = Draft {
                rename_id: id,
                rename_name: f.name,
                ..Draft::default()
            };
            refused((&st, &seed, user), &slug, e, &format!("c{id}"), draft).await
        }
    }
}

async fn remove(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path((slug, id)): Path<(String, i64)>,
    Form(f): Form<super::session::CsrfForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let v = catalog::village_by_slug(&st.db, &slug).await?;
    match categories::remove(&st.db, &user, v.id, id).await {
        Ok(()) => see_other(&format!("/lang/{slug}/loai-hang?ok=removed")),
        Err(e) => {
            refused(
                (&st, &seed, user),
                &slug,
                e,
                &format!("c{id}"),
                Draft::default(),
            )
            .await
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ParcelForm {
    csrf: String,
    weight_g: String,
    length_cm: String,
    width_cm: String,
    height_cm: String,
}

async fn set_parcel(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path((slug, id)): Path<(String, i64)>,
    Form(f): Form<ParcelForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let v = catalog::village_by_slug(&st.db, &slug).await?;
    let mut e = FieldErrors::new();
    let parcel = crate::catalog::Parcel::parse(
        &f.weight_g,
        &f.length_cm,
        &f.width_cm,
        &f.height_cm,
        &mut e,
        "",
    );
    let result = match e.into_result() {
        Ok(()) => categories::set_parcel(&st.db, &user, v.id, id, parcel).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => see_other(&format!("/lang/{slug}/loai-hang?ok=parcel")),
        Err(e) => {
            let draft = Draft {
                parcel_id: id,
                parcel_typed: [f.weight_g, f.length_cm, f.width_cm, f.height_cm],
                ..Draft::default()
            };
            refused((&st, &seed, user), &slug, e, &format!("p{id}"), draft).await
        }
    }
}
