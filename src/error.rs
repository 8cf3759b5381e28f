//! One error type for the whole service, mapped to HTTP in one place.
//!
//! API handlers return `AppError` as JSON `{"error":{"code","message","fields"}}`;
//! page handlers wrap it in `web::PageError`, which renders the same status as an HTML page.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// Per-field validation messages, in Vietnamese, keyed by the field name the client sent.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FieldErrors(pub BTreeMap<String, String>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }
    /// Messages are shown as sentences: the first letter is made upper case here, so every
    /// parser may write its message in the middle-of-sentence form.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_string())
            .or_insert_with(|| sentence(&message.into()));
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(|s| s.as_str())
    }
    /// Collect the error of a parse into this set, returning the value if it parsed.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        r: std::result::Result<T, E>,
    ) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e.to_string());
                None
            }
        }
    }
    /// `Ok(())` when empty, else a validation error carrying every message.
    pub fn into_result(self) -> Result<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation(self))
        }
    }
}

/// "vui lòng nhập tên" → "Vui lòng nhập tên".
pub fn sentence(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("Không tìm thấy trang hoặc mục này; có thể địa chỉ bị gõ sai hoặc mục đã bị gỡ")]
    NotFound,
    #[error("Cần đăng nhập")]
    Unauthorized,
    #[error("Bạn không có quyền làm việc này")]
    Forbidden,
    #[error("Dữ liệu chưa hợp lệ")]
    Validation(FieldErrors),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("Phiên biểu mẫu đã hết hạn, vui lòng tải lại trang và thử lại")]
    Csrf,
    #[error("Quá nhiều lần thử sai, vui lòng thử lại sau {0} phút")]
    TooManyAttempts(i64),
    /// Too many requests from one client address (`limits::rate`); seconds to wait.
    #[error("Quá nhiều yêu cầu từ địa chỉ của bạn, vui lòng thử lại sau {0} giây")]
    RateLimited(u64),
    #[error("Tệp quá lớn")]
    PayloadTooLarge,
    /// A bounded pool (password hashing, photo decoding) is full: retry in a moment.
    #[error("Máy chủ đang bận ({0}), vui lòng thử lại sau ít giây")]
    Busy(&'static str),
    /// A dependency (the search engine) is down; the client may retry later.
    #[error("{0}")]
    Unavailable(String),
    #[error("Lỗi hệ thống, vui lòng thử lại sau")]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn field(field: &str, message: impl Into<String>) -> AppError {
        let mut f = FieldErrors::new();
        f.add(field, message);
        AppError::Validation(f)
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden | AppError::Csrf => StatusCode::FORBIDDEN,
            AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::TooManyAttempts(_) | AppError::RateLimited(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unavailable(_) | AppError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::NotFound => "not_found",
            AppError::Unauthorized => "unauthorized",
            AppError::Forbidden => "forbidden",
            AppError::Validation(_) => "validation",
            AppError::Conflict(_) => "conflict",
            AppError::BadRequest(_) => "bad_request",
            AppError::Csrf => "csrf",
            AppError::TooManyAttempts(_) => "too_many_attempts",
            AppError::RateLimited(_) => "rate_limited",
            AppError::PayloadTooLarge => "payload_too_large",
            AppError::Unavailable(_) => "unavailable",
            AppError::Busy(_) => "busy",
            AppError::Internal(_) => "internal",
        }
    }

    /// Seconds after which a retry may succeed, sent as `Retry-After`.
    pub fn retry_after(&self) -> Option<i64> {
        match self {
            AppError::Busy(_) => Some(1),
            AppError::Unavailable(_) => Some(5),
            AppError::TooManyAttempts(minutes) => Some(minutes * 60),
            AppError::RateLimited(secs) => Some(*secs as i64),
            _ => None,
        }
    }

    /// The database went away (restarted, network cut, pool exhausted): a 503 the client may
    /// retry, never a 500. The transaction in hand was rolled back with its connection.
    pub fn db_unreachable(e: &sqlx::Error) -> AppError {
        tracing::warn!(error = %e, "database unreachable");
        AppError::Unavailable("Hệ thống đang tạm gián đoạn, vui lòng thử lại sau ít phút".into())
    }

    /// An internal error whose cause is an unreachable database becomes that 503 (errors
    /// that went through `anyhow` on their way up).
    pub fn normalized(self) -> AppError {
        if let AppError::Internal(e) = &self
            && let Some(db) = e
                .chain()
                .find_map(|c| c.downcast_ref::<sqlx::Error>())
                .filter(|db| crate::db::is_unreachable(db))
        {
            return AppError::db_unreachable(db);
        }
        self
    }

    /// Log internal errors with their whole cause chain; the client sees a generic message.
    pub fn log(&self) {
        if let AppError::Internal(e) = self {
            tracing::error!(error = ?e, "internal error");
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::RowNotFound = e {
            return AppError::NotFound;
        }
        if let Some(msg) = crate::db::constraint_message(&e) {
            return AppError::Conflict(msg.to_string());
        }
        if crate::db::is_unreachable(&e) {
            return AppError::db_unreachable(&e);
        }
        AppError::Internal(e.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let this = self.normalized();
        this.log();
        let fields = match &this {
            AppError::Validation(f) => json!(f.0),
            _ => json!({}),
        };
        let body = json!({"error": {"code": this.code(), "message": sentence(&this.to_string()), "fields": fields}});
        let mut resp = (this.status(), Json(body)).into_response();
        if let Some(secs) = this.retry_after() {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        resp
    }
}
