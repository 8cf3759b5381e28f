//! Who is asking (session cookie or API bearer token), CSRF protection, and the shared
//! page chrome every template receives as `layout`.

use axum::extract::FromRequestParts;
use axum::http::HeaderValue;
use axum::http::header::{AUTHORIZATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::response::Response;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::accounts::User;
use crate::error::AppError;
use crate::web::AppState;

pub const SESSION_COOKIE: &str = "cl_session";
pub const CSRF_COOKIE: &str = "cl_csrf";

/// The random value of this browser's CSRF cookie (new if the request had none), and how
/// many lines its cart cookie holds (for the header's count).
#[derive(Clone)]
pub struct CsrfSeed(pub String, pub usize);

/// A form that carries nothing but its CSRF token (a button: remove, retry, log out…).
#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct CsrfForm {
    pub csrf: String,
}

/// This browser's CSRF seed from its cookie, or a new one (`true`: to be set on the answer),
/// with its cart's line count. Every browser gets a CSRF cookie; forms carry
/// HMAC(secret, cookie) and posts must match (`web::frame` puts the seed on the request).
pub fn csrf_seed(headers: &axum::http::HeaderMap) -> (CsrfSeed, bool) {
    let jar = CookieJar::from_headers(headers);
    let existing = jar
        .get(CSRF_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|v| v.len() == 43);
    let (seed, is_new) = match existing {
        Some(v) => (v, false),
        None => {
            let mut b = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut b);
            (
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b),
                true,
            )
        }
    };
    let cart_lines = super::cart::parse_cart(
        jar.get(super::cart::CART_COOKIE)
            .map(|c| c.value())
            .unwrap_or(""),
    )
    .len();
    (CsrfSeed(seed, cart_lines), is_new)
}

/// Set a new CSRF seed as the browser's cookie.
pub fn set_csrf_cookie(state: &AppState, resp: &mut Response, seed: &CsrfSeed) {
    // Kept across browser restarts (like the cart): a form left open overnight still sends.
    let cookie = Cookie::build((CSRF_COOKIE, seed.0.clone()))
        .path("/")
        .max_age(cookie::time::Duration::days(400))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.config.secure_cookies())
        .build();
    if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
        resp.headers_mut().append(SET_COOKIE, v);
    }
}

pub fn csrf_token(state: &AppState, seed: &CsrfSeed) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&state.config.secret_key).expect("hmac key");
    mac.update(b"csrf:");
    mac.update(seed.0.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time check of a form's token against this browser's cookie.
pub fn verify_csrf(state: &AppState, seed: &CsrfSeed, submitted: &str) -> Result<(), AppError> {
    let expected = csrf_token(state, seed);
    if expected.as_bytes().ct_eq(submitted.as_bytes()).into() {
        Ok(())
    } else {
        Err(AppError::Csrf)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CsrfSeed {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<CsrfSeed>()
            .cloned()
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("csrf middleware missing")))
    }
}

/// The path as the client sent it (nested routers see a shortened URI).
fn original_path(parts: &Parts) -> String {
    parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map(|u| u.0.path().to_string())
        .unwrap_or_else(|| parts.uri.path().to_string())
}

/// The session token: the `Authorization: Bearer` header on the API, the cookie on pages.
/// The API never reads the cookie, so no cross-site request can act with a browser's
/// session there; pages are protected by CSRF tokens.
pub fn session_token(parts: &Parts) -> Option<String> {
    if original_path(parts).starts_with("/api/") {
        let h = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
        return h.strip_prefix("Bearer ").map(|t| t.trim().to_string());
    }
    CookieJar::from_headers(&parts.headers)
        .get(SESSION_COOKIE)
        .map(|c| c.value().to_string())
}

/// The logged-in user, if any.
pub struct MaybeUser(pub Option<User>);

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = AppError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(u) = parts.extensions.get::<CachedUser>() {
            return Ok(MaybeUser(u.0.clone()));
        }
        let user = match session_token(parts) {
            Some(t) => crate::accounts::store::user_by_session(&state.db, &t).await?,
            None => None,
        };
        parts.extensions.insert(CachedUser(user.clone()));
        Ok(MaybeUser(user))
    }
}

#[derive(Clone)]
struct CachedUser(Option<User>);

/// A logged-in user, or 401 (the API) / a redirect to the login page (pages).
pub struct CurrentUser(pub User);

/// Why `CurrentUser` was refused, answered in the caller's language: JSON for the API,
/// a redirect to the login page (coming back afterwards) for pages.
pub enum NotLoggedIn {
    Api,
    Page { next: String },
    Failed(AppError),
}

impl axum::response::IntoResponse for NotLoggedIn {
    fn into_response(self) -> Response {
        match self {
            NotLoggedIn::Api => AppError::Unauthorized.into_response(),
            NotLoggedIn::Page { next } => {
                let next: String = url_escape(&next);
                axum::response::Redirect::to(&format!("/dang-nhap?next={next}")).into_response()
            }
            NotLoggedIn::Failed(e) => e.into_response(),
        }
    }
}

/// Percent-encode a path for use as a query value.
fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = NotLoggedIn;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let path = original_path(parts);
        match MaybeUser::from_request_parts(parts, state).await {
            Ok(MaybeUser(Some(u))) => Ok(CurrentUser(u)),
            Ok(MaybeUser(None)) if path.starts_with("/api/") => Err(NotLoggedIn::Api),
            Ok(MaybeUser(None)) => Err(NotLoggedIn::Page { next: path }),
            Err(e) => Err(NotLoggedIn::Failed(e)),
        }
    }
}

pub fn session_cookie(state: &AppState, token: String) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, token))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.config.secure_cookies())
        .max_age(time_days(state.config.session_days))
        .build()
}

fn time_days(days: i64) -> cookie::time::Duration {
    cookie::time::Duration::days(days)
}

/// What every page's chrome needs.
pub struct Layout {
    pub title: String,
    pub user_name: Option<String>,
    pub is_seller: bool,
    /// Paid orders waiting for the seller (shown as a count in the header).
    pub paid_waiting: i64,
    /// Lines in this browser's cart.
    pub cart_lines: usize,
    pub csrf: String,
    pub notice: Option<String>,
    /// Admins only: the ledger rules broken at the last check, one per line.
    pub ledger_alert: Vec<String>,
    /// The page has its own search box: the header's is left out (one per page).
    pub own_search: bool,
    /// What a link to this page shows when pasted in Zalo or Facebook (Open Graph, Twitter
    /// card), with its canonical address.
    pub share: Option<Share>,
}

/// A page's link preview.
#[derive(Clone, Debug)]
pub struct Share {
    pub title: String,
    pub description: String,
    /// Absolute canonical URL.
    pub url: String,
    /// Absolute URL of the 1200 × 630 picture (`/anh-chia-se/…`).
    pub image: String,
    /// `product` or `website`.
    pub kind: &'static str,
    /// Whole đồng, for `product:price:amount`.
    pub price_vnd: Option<i64>,
    /// The "Chia sẻ qua Zalo" page for this one.
    pub share_link: String,
}

impl Share {
    /// A preview for `path` on this site; `photo` is a stored full photo's file name.
    pub fn new(
        state: &AppState,
        path: &str,
        title: &str,
        description: &str,
        photo: Option<&str>,
    ) -> Share {
        let base = &state.config.public_url;
        let image = photo
            .filter(|p| crate::catalog::photos::is_stored_name(p))
            .unwrap_or(super::share::PLAIN);
        Share {
            title: title.to_string(),
            description: description.chars().take(200).collect(),
            url: format!("{base}{path}"),
            image: format!("{base}/anh-chia-se/{image}"),
            kind: "website",
            price_vnd: None,
            share_link: format!("/chia-se?duong-dan={}", super::urlencode(path)),
        }
    }
}

impl Layout {
    pub fn new(
        state: &AppState,
        seed: &CsrfSeed,
        user: &Option<User>,
        title: impl Into<String>,
    ) -> Layout {
        Layout {
            title: title.into(),
            user_name: user.as_ref().map(|u| u.display_name.clone()),
            is_seller: user.is_some(),
            paid_waiting: user.as_ref().map(|u| u.paid_waiting).unwrap_or(0),
            cart_lines: seed.1,
            csrf: csrf_token(state, seed),
            notice: None,
            ledger_alert: user
                .as_ref()
                .and_then(|u| u.ledger_alert.as_deref())
                .map(|v| v.lines().map(str::to_string).collect())
                .unwrap_or_default(),
            own_search: false,
            share: None,
        }
    }

    /// For error pages, which have no forms.
    pub fn bare(title: &str) -> Layout {
        Layout {
            title: title.into(),
            user_name: None,
            is_seller: false,
            paid_waiting: 0,
            cart_lines: 0,
            csrf: String::new(),
            notice: None,
            ledger_alert: Vec::new(),
            own_search: false,
            share: None,
        }
    }

    pub fn with_share(mut self, share: Share) -> Layout {
        self.share = Some(share);
        self
    }

    /// The page has its own search box.
    pub fn with_own_search(mut self) -> Layout {
        self.own_search = true;
        self
    }

    pub fn with_notice(mut self, notice: Option<&str>) -> Layout {
        self.notice = notice.map(|s| s.to_string());
        self
    }
}
