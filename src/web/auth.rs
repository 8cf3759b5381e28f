//! Login, registration and logout pages.

use std::net::SocketAddr;

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use super::session::{SESSION_COOKIE, session_cookie, verify_csrf};
use super::{CsrfSeed, Layout, MaybeUser, PageResult, render, see_other};
use crate::accounts::{self, Login, NewUser, Role, User};
use crate::app::AppState;
use crate::error::{AppError, FieldErrors};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dang-nhap", get(login_page).post(login))
        .route("/dang-ky", get(register_page).post(register))
        .route("/dang-xuat", post(logout))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    login: String,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Only same-site relative paths are followed after login.
fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next.to_string()
    } else {
        "/quan-ly".to_string()
    }
}

async fn login_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    Query(q): Query<NextQuery>,
) -> PageResult {
    render(LoginPage {
        layout: Layout::new(&st, &seed, &user, "Đăng nhập"),
        login: String::new(),
        next: safe_next(&q.next),
        error: None,
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LoginForm {
    pub csrf: String,
    pub login: String,
    pub password: String,
    pub next: String,
}

/// Check the attempt limit, then the password. Every failure is counted against both the
/// login name and the client address. Shared by the login page and the API.
pub async fn authenticate(
    st: &AppState,
    login: &str,
    password: &str,
    client: SocketAddr,
) -> Result<User, AppError> {
    let parsed = Login::parse(login).map_err(|m| AppError::field("login", m))?;
    let keys = [parsed.limit_key(), format!("ip:{}", client.ip())];
    accounts::store::check_login_limit(
        &st.db,
        &keys,
        st.config.login_max_failures,
        st.config.login_window_minutes,
    )
    .await?;
    let found = accounts::store::find_for_login(&st.db, &parsed).await?;
    let (user, hash) = match found {
        Some((u, h)) => (Some(u), h),
        None => (None, accounts::DUMMY_HASH.to_string()),
    };
    let ok = accounts::verify_password(password.to_string(), hash).await?;
    match user {
        Some(u) if ok => {
            accounts::store::clear_failures(&st.db, &keys[0]).await?;
            Ok(u)
        }
        _ => {
            for k in &keys {
                accounts::store::record_failure(&st.db, k).await?;
            }
            Err(AppError::field(
                "password",
                "sai email/số điện thoại hoặc mật khẩu",
            ))
        }
    }
}

async fn login(
    State(st): State<AppState>,
    seed: CsrfSeed,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Form(f): Form<LoginForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    match authenticate(&st, &f.login, &f.password, client).await {
        Ok(user) => {
            let token =
                accounts::store::create_session(&st.db, user.id, st.config.session_days).await?;
            let jar = jar.add(session_cookie(&st, token));
            Ok((jar, see_other(&safe_next(&f.next))?).into_response())
        }
        Err(e @ (AppError::Validation(_) | AppError::TooManyAttempts(_))) => {
            let message = match &e {
                AppError::Validation(fe) => fe.0.values().next().cloned().unwrap_or_default(),
                other => other.to_string(),
            };
            let mut resp = render(LoginPage {
                layout: Layout::new(&st, &seed, &None, "Đăng nhập"),
                login: f.login,
                next: safe_next(&f.next),
                error: Some(message),
            })?;
            *resp.status_mut() = e.status();
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    layout: Layout,
    login: String,
    display_name: String,
    errors: FieldErrors,
}

impl RegisterPage {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).unwrap_or("").to_string()
    }
}

async fn register_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
) -> PageResult {
    render(RegisterPage {
        layout: Layout::new(&st, &seed, &user, "Đăng ký người bán"),
        login: String::new(),
        display_name: String::new(),
        errors: FieldErrors::new(),
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RegisterForm {
    csrf: String,
    login: String,
    display_name: String,
    password: String,
}

async fn register(
    State(st): State<AppState>,
    seed: CsrfSeed,
    jar: CookieJar,
    Form(f): Form<RegisterForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let created = match NewUser::parse(&f.login, &f.display_name, &f.password, Role::Seller) {
        Ok(new) => accounts::store::create_user(&st.db, new).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(user) => {
            let token =
                accounts::store::create_session(&st.db, user.id, st.config.session_days).await?;
            let jar = jar.add(session_cookie(&st, token));
            Ok((jar, see_other("/quan-ly?ok=welcome")?).into_response())
        }
        Err(e @ (AppError::Validation(_) | AppError::Conflict(_))) => {
            let status = e.status();
            let errors = match e {
                AppError::Validation(fe) => fe,
                other => {
                    let mut fe = FieldErrors::new();
                    fe.add("login", other.to_string());
                    fe
                }
            };
            let mut resp = render(RegisterPage {
                layout: Layout::new(&st, &seed, &None, "Đăng ký người bán"),
                login: f.login,
                display_name: f.display_name,
                errors,
            })?;
            *resp.status_mut() = status;
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CsrfOnly {
    csrf: String,
}

async fn logout(
    State(st): State<AppState>,
    seed: CsrfSeed,
    jar: CookieJar,
    Form(f): Form<CsrfOnly>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    if let Some(c) = jar.get(SESSION_COOKIE) {
        accounts::store::delete_session(&st.db, c.value()).await?;
    }
    let jar = jar.remove(axum_extra::extract::cookie::Cookie::build(SESSION_COOKIE).path("/"));
    Ok((jar, see_other("/")?).into_response())
}
