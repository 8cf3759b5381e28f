//! Login, registration and logout pages.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use super::client::ClientIp;
use super::session::{CurrentUser, SESSION_COOKIE, session_cookie, verify_csrf};
use super::{CsrfSeed, Layout, MaybeUser, PageError, PageResult, render, see_other};
use crate::accounts::{self, Login, NewUser, Role, User};
use crate::error::{AppError, FieldErrors};
use crate::web::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dang-nhap", get(login_page).post(login))
        .route("/dang-ky", get(register_page).post(register))
        .route("/dang-xuat", post(logout))
        .route("/dang-xuat-moi-noi", post(logout_everywhere))
        .route("/doi-mat-khau", get(password_page).post(change_password))
        .route("/quen-mat-khau", get(forgot_page).post(forgot))
        .route("/dat-lai-mat-khau", get(reset_page).post(reset))
        .route(
            "/xac-nhan-so-dien-thoai",
            get(verify_page).post(verify_phone),
        )
        .route("/xac-nhan-so-dien-thoai/gui-lai", post(resend_code))
        .route(
            "/tai-khoan/so-dien-thoai",
            get(account_phone_page).post(account_phone),
        )
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
    #[serde(default)]
    ok: String,
}

/// Only a path on this site is followed after login: it starts with one `/`, and holds no
/// backslash, whitespace or control character (browsers drop a tab or newline and read
/// `/\t/evil.example` as `//evil.example`; a newline would also break the header).
pub fn safe_next(next: &str) -> String {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && next.len() <= 2000
        && !next
            .chars()
            .any(|c| c == '\\' || c.is_whitespace() || c.is_control());
    if ok {
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
    let notice = match q.ok.as_str() {
        "registered" => Some(accounts::reset::REGISTERED),
        "password-reset" => Some("Đã đặt mật khẩu mới. Hãy đăng nhập."),
        _ => None,
    };
    render(LoginPage {
        layout: Layout::new(&st, &seed, &user, "Đăng nhập").with_notice(notice),
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

/// Reserve the attempt (per account and address, and per address), then check the
/// password. Over the limit the attempt is refused before any hashing. Shared by the login
/// page and the API.
pub async fn authenticate(
    st: &AppState,
    login: &str,
    password: &str,
    client: ClientIp,
) -> Result<User, AppError> {
    let parsed = Login::parse(login).map_err(|m| AppError::field("login", m))?;
    let keys = accounts::store::AttemptKeys::new("login", &parsed.limit_key(), &client.key());
    keys.reserve(
        &st.db,
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
            keys.succeeded(&st.db).await?;
            Ok(u)
        }
        _ => Err(AppError::field(
            "password",
            "Sai email/số điện thoại hoặc mật khẩu",
        )),
    }
}

async fn login(
    State(st): State<AppState>,
    seed: CsrfSeed,
    client: ClientIp,
    jar: CookieJar,
    Form(f): Form<LoginForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let next = safe_next(&f.next);
    match authenticate(&st, &f.login, &f.password, client).await {
        Ok(user) => {
            let token =
                accounts::store::create_session(&st.db, user.id, st.config.session_days).await?;
            let jar = jar.add(session_cookie(&st, token));
            Ok((jar, see_other(&next)?).into_response())
        }
        Err(e @ (AppError::Validation(_) | AppError::TooManyAttempts(_) | AppError::Busy(_))) => {
            let message = match &e {
                AppError::Validation(fe) => fe.0.values().next().cloned().unwrap_or_default(),
                other => other.to_string(),
            };
            let mut resp = render(LoginPage {
                layout: Layout::new(&st, &seed, &None, "Đăng nhập"),
                login: f.login,
                next,
                error: Some(message),
            })?;
            *resp.status_mut() = e.status();
            if let Some(secs) = e.retry_after() {
                resp.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, secs.into());
            }
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
    /// The second box ("Nhập lại mật khẩu"); absent from older forms.
    password_again: Option<String>,
}

async fn register(
    State(st): State<AppState>,
    seed: CsrfSeed,
    client: ClientIp,
    Form(f): Form<RegisterForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let result = match NewUser::parse(&f.login, &f.display_name, &f.password, Role::Seller) {
        Ok(new) => match accounts::reset::typed_twice(
            &f.password,
            f.password_again.as_deref(),
            "password_again",
        ) {
            Ok(()) => accounts::reset::register(&st.db, &st.config, new, &client.key()).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match result {
        // The same answer whether or not the login had an account.
        Ok(accounts::reset::Registered::Done) => see_other("/dang-nhap?ok=registered"),
        Ok(accounts::reset::Registered::CodeSent) => see_other(&format!(
            "/xac-nhan-so-dien-thoai?so={}",
            super::urlencode(f.login.trim())
        )),
        Err(e @ (AppError::Validation(_) | AppError::TooManyAttempts(_) | AppError::Busy(_))) => {
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

async fn logout(
    State(st): State<AppState>,
    seed: CsrfSeed,
    jar: CookieJar,
    Form(f): Form<super::session::CsrfForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    if let Some(c) = jar.get(SESSION_COOKIE) {
        accounts::store::delete_session(&st.db, c.value()).await?;
    }
    let jar = jar.remove(axum_extra::extract::cookie::Cookie::build(SESSION_COOKIE).path("/"));
    Ok((jar, see_other("/")?).into_response())
}

/// End every session of this account, this one included (a lost phone, a shared computer).
async fn logout_everywhere(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    jar: CookieJar,
    Form(f): Form<super::session::CsrfForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    accounts::store::delete_sessions_of(&st.db, user.id, None).await?;
    let jar = jar.remove(axum_extra::extract::cookie::Cookie::build(SESSION_COOKIE).path("/"));
    Ok((jar, see_other("/dang-nhap")?).into_response())
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    layout: Layout,
    /// "change", "forgot" or "reset"
    mode: &'static str,
    login: String,
    errors: FieldErrors,
}

impl PasswordPage {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).unwrap_or("").to_string()
    }
}

fn password_form(
    st: &AppState,
    seed: &CsrfSeed,
    user: &Option<User>,
    mode: &'static str,
    login: String,
    errors: FieldErrors,
    notice: Option<&str>,
) -> PageResult {
    let title = match mode {
        "change" => "Đổi mật khẩu",
        "forgot" => "Quên mật khẩu",
        _ => "Đặt lại mật khẩu",
    };
    let status = if errors.is_empty() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    let mut resp = render(PasswordPage {
        layout: Layout::new(st, seed, user, title).with_notice(notice),
        mode,
        login,
        errors,
    })?;
    *resp.status_mut() = status;
    Ok(resp)
}

/// A form's error as field messages (other errors go to the error page).
fn as_fields(e: AppError, field: &str) -> Result<FieldErrors, PageError> {
    match e {
        AppError::Validation(fe) => Ok(fe),
        e @ (AppError::TooManyAttempts(_) | AppError::Busy(_)) => {
            let mut fe = FieldErrors::new();
            fe.add(field, e.to_string());
            Ok(fe)
        }
        other => Err(other.into()),
    }
}

async fn password_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
) -> PageResult {
    password_form(
        &st,
        &seed,
        &Some(user),
        "change",
        String::new(),
        FieldErrors::new(),
        None,
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ChangeForm {
    csrf: String,
    current_password: String,
    new_password: String,
    new_password_again: Option<String>,
}

async fn change_password(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    jar: CookieJar,
    Form(f): Form<ChangeForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let keep = jar.get(SESSION_COOKIE).map(|c| c.value().to_string());
    let changed = match accounts::reset::typed_twice(
        &f.new_password,
        f.new_password_again.as_deref(),
        "new_password_again",
    ) {
        Ok(()) => {
            accounts::reset::change_password(
                &st.db,
                &user,
                &f.current_password,
                &f.new_password,
                keep.as_deref(),
            )
            .await
        }
        Err(e) => Err(e),
    };
    match changed {
        Ok(()) => see_other("/quan-ly?ok=password-changed"),
        Err(e) => {
            let errors = as_fields(e, "current_password")?;
            password_form(
                &st,
                &seed,
                &Some(user),
                "change",
                String::new(),
                errors,
                None,
            )
        }
    }
}

async fn forgot_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
) -> PageResult {
    password_form(
        &st,
        &seed,
        &user,
        "forgot",
        String::new(),
        FieldErrors::new(),
        None,
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ForgotForm {
    csrf: String,
    login: String,
}

async fn forgot(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    client: ClientIp,
    Form(f): Form<ForgotForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    match accounts::reset::request_reset(&st.db, &st.config, &f.login, &client.key()).await {
        Ok(()) => password_form(
            &st,
            &seed,
            &user,
            "reset",
            f.login,
            FieldErrors::new(),
            Some(accounts::reset::RESET_SENT),
        ),
        Err(e) => {
            let errors = as_fields(e, "login")?;
            password_form(&st, &seed, &user, "forgot", f.login, errors, None)
        }
    }
}

async fn reset_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
) -> PageResult {
    password_form(
        &st,
        &seed,
        &user,
        "reset",
        String::new(),
        FieldErrors::new(),
        None,
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResetForm {
    csrf: String,
    login: String,
    code: String,
    password: String,
    password_again: Option<String>,
}

async fn reset(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    Form(f): Form<ResetForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let done = match accounts::reset::typed_twice(
        &f.password,
        f.password_again.as_deref(),
        "password_again",
    ) {
        Ok(()) => {
            accounts::reset::finish_reset(&st.db, &st.config, &f.login, &f.code, &f.password).await
        }
        Err(e) => Err(e),
    };
    match done {
        Ok(_) => see_other("/dang-nhap?ok=password-reset"),
        Err(e) => {
            let errors = as_fields(e, "code")?;
            password_form(&st, &seed, &user, "reset", f.login, errors, None)
        }
    }
}

#[derive(Template)]
#[template(path = "phone_code.html")]
struct PhoneCodePage {
    layout: Layout,
    /// "register": a new account's code; "account": prove a phone of a logged-in account.
    mode: &'static str,
    phone: String,
    /// A code was sent (the account page then asks for it).
    sent: bool,
    errors: FieldErrors,
}

impl PhoneCodePage {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).unwrap_or("").to_string()
    }
}

#[allow(clippy::too_many_arguments)]
fn phone_code_form(
    st: &AppState,
    seed: &CsrfSeed,
    user: &Option<User>,
    mode: &'static str,
    phone: String,
    sent: bool,
    errors: FieldErrors,
    notice: Option<&str>,
) -> PageResult {
    let title = if mode == "register" {
        "Nhập mã xác nhận"
    } else {
        "Số điện thoại"
    };
    let status = if errors.is_empty() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    let mut resp = render(PhoneCodePage {
        layout: Layout::new(st, seed, user, title).with_notice(notice),
        mode,
        phone,
        sent,
        errors,
    })?;
    *resp.status_mut() = status;
    Ok(resp)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PhoneQuery {
    so: String,
}

async fn verify_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    Query(q): Query<PhoneQuery>,
) -> PageResult {
    phone_code_form(
        &st,
        &seed,
        &user,
        "register",
        q.so,
        true,
        FieldErrors::new(),
        Some(accounts::reset::CODE_SENT),
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PhoneCodeForm {
    csrf: String,
    login: String,
    phone: String,
    code: String,
}

/// The code of a phone registration: the account is made and logged in.
async fn verify_phone(
    State(st): State<AppState>,
    seed: CsrfSeed,
    jar: CookieJar,
    Form(f): Form<PhoneCodeForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    match accounts::reset::verify_phone(&st.db, &st.config, &f.login, &f.code).await {
        Ok(user) => {
            let token =
                accounts::store::create_session(&st.db, user.id, st.config.session_days).await?;
            let jar = jar.add(session_cookie(&st, token));
            Ok((jar, see_other("/quan-ly?ok=phone-proven")?).into_response())
        }
        Err(AppError::Conflict(m)) => {
            let mut fe = FieldErrors::new();
            fe.add("code", m);
            phone_code_form(&st, &seed, &None, "register", f.login, true, fe, None)
        }
        Err(e) => {
            let errors = as_fields(e, "code")?;
            phone_code_form(&st, &seed, &None, "register", f.login, true, errors, None)
        }
    }
}

async fn resend_code(
    State(st): State<AppState>,
    seed: CsrfSeed,
    client: ClientIp,
    Form(f): Form<PhoneCodeForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    match accounts::reset::resend_register(&st.db, &st.config, &f.login, &client.key()).await {
        Ok(()) => phone_code_form(
            &st,
            &seed,
            &None,
            "register",
            f.login,
            true,
            FieldErrors::new(),
            Some("Đã gửi mã mới. Mã cũ không dùng được nữa."),
        ),
        Err(e @ AppError::Unavailable(_)) => {
            let mut fe = FieldErrors::new();
            fe.add("code", e.to_string());
            phone_code_form(&st, &seed, &None, "register", f.login, true, fe, None)
        }
        Err(e) => {
            let errors = as_fields(e, "code")?;
            phone_code_form(&st, &seed, &None, "register", f.login, true, errors, None)
        }
    }
}

async fn account_phone_page(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
) -> PageResult {
    let phone = user
        .phone
        .as_deref()
        .map(crate::domain::format_phone)
        .unwrap_or_default();
    let notice = user
        .phone_proven
        .then_some("Số điện thoại của tài khoản đã được xác nhận.");
    phone_code_form(
        &st,
        &seed,
        &Some(user),
        "account",
        phone,
        false,
        FieldErrors::new(),
        notice,
    )
}

/// Prove a phone for a logged-in account: first the number (a code is sent), then the code.
async fn account_phone(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Form(f): Form<PhoneCodeForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let u = Some(user.clone());
    if f.code.trim().is_empty() {
        return match accounts::reset::add_phone(&st.db, &st.config, &user, &f.phone).await {
            Ok(()) => phone_code_form(
                &st,
                &seed,
                &u,
                "account",
                f.phone,
                true,
                FieldErrors::new(),
                Some("Chợ Làng đã gửi mã 6 số qua Zalo (hoặc tin nhắn SMS) tới số này."),
            ),
            Err(e @ AppError::Unavailable(_)) => {
                let mut fe = FieldErrors::new();
                fe.add("phone", e.to_string());
                phone_code_form(&st, &seed, &u, "account", f.phone, false, fe, None)
            }
            Err(e) => {
                let errors = as_fields(e, "phone")?;
                phone_code_form(&st, &seed, &u, "account", f.phone, false, errors, None)
            }
        };
    }
    match accounts::reset::confirm_phone(&st.db, &st.config, &user, &f.phone, &f.code).await {
        Ok(()) => see_other("/quan-ly?ok=phone-proven"),
        Err(e) => {
            let errors = as_fields(e, "code")?;
            phone_code_form(&st, &seed, &u, "account", f.phone, true, errors, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;
    use proptest::prelude::*;

    #[test]
    fn only_paths_on_this_site() {
        assert_eq!(
            safe_next("/quan-ly/don-hang?tab=moi"),
            "/quan-ly/don-hang?tab=moi"
        );
        for bad in [
            "/\t/evil.example",
            "/\t/x",
            "//evil",
            "/\\evil",
            "https://evil",
            "",
            "/a b",
            "/\u{7f}",
        ] {
            assert_eq!(safe_next(bad), "/quan-ly", "{bad:?}");
        }
    }

    proptest! {
        /// Whatever a client sends, the redirect target is a path on this site that a browser
        /// cannot read as another host, and a valid header value.
        #[test]
        fn any_next_is_safe(next in "\\PC*|/[ -~\t\n\r\u{b}\u{7f}\\\\/]{0,40}") {
            let out = safe_next(&next);
            prop_assert!(out.starts_with('/'));
            prop_assert!(!out.starts_with("//"));
            prop_assert!(!out.contains('\\'));
            prop_assert!(!out.chars().any(|c| c.is_whitespace() || c.is_control()));
            prop_assert!(axum::http::HeaderValue::from_str(&out).is_ok());
        }
    }
}
