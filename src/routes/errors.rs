//! The two error boundaries of the HTTP layer, each mapped to a response once:
//! [`PageError`] for browser routes (a styled HTML page) and [`ApiError`] for `/api/...` and server-to-server
//! callbacks (`{"error":{"code","message"}}`). Neither ever puts internals in the body; the cause chain goes to
//! the log through `Debug`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

pub const SESSION_EXPIRED: &str = "Session expired — reopen Profile Bridge from the Apps menu";

fn error_chain_fmt(
    e: &impl std::error::Error,
    f: &mut std::fmt::Formatter<'_>,
) -> std::fmt::Result {
    writeln!(f, "{e}")?;
    let mut current = e.source();
    while let Some(cause) = current {
        writeln!(f, "Caused by:\n\t{cause}")?;
        current = cause.source();
    }
    Ok(())
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    status: u16,
}

#[derive(thiserror::Error)]
pub enum PageError {
    #[error("{0}")]
    BadRequest(&'static str),
    #[error("{}", SESSION_EXPIRED)]
    SessionExpired,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    BadGateway(&'static str),
    #[error("Something went wrong on our side")]
    Unexpected(#[from] anyhow::Error),
}

impl std::fmt::Debug for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unexpected(e) => write!(f, "{e:?}"),
            other => error_chain_fmt(other, f),
        }
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::SessionExpired => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let title = match self {
            Self::BadRequest(_) => "This link is incomplete",
            Self::SessionExpired => "Session expired",
            Self::Forbidden(_) => "Profile Bridge is not installed here",
            Self::BadGateway(_) => "BigCommerce did not answer as expected",
            Self::Unexpected(_) => "Something went wrong",
        };
        let message = match self {
            Self::Unexpected(_) => "Please try again in a moment. If it keeps happening, contact Profile Bridge support.".to_string(),
            other => other.to_string(),
        };
        let body = ErrorPage {
            title,
            message: &message,
            status: status.as_u16(),
        }
        .render()
        .unwrap_or_else(|_| format!("<!doctype html><title>{title}</title><p>{title}</p>"));
        HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body)
    }
}

#[derive(thiserror::Error)]
pub enum ApiError {
    #[error("{}", SESSION_EXPIRED)]
    SessionExpired,
    #[error("The signed payload did not verify")]
    InvalidSignedPayload,
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: String,
        field: String,
    },
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("{message}")]
    Upstream { code: &'static str, message: String },
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("The request body is larger than 8 KB")]
    TooLarge,
    #[error("Too many requests; retry in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("Something went wrong on our side")]
    Unexpected(#[from] anyhow::Error),
}

impl std::fmt::Debug for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unexpected(e) => write!(f, "{e:?}"),
            other => error_chain_fmt(other, f),
        }
    }
}

impl ApiError {
    pub fn invalid(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
            field: field.to_string(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::SessionExpired => "session_expired",
            Self::InvalidSignedPayload => "invalid_signed_payload",
            Self::BadRequest { code, .. }
            | Self::Invalid { code, .. }
            | Self::NotFound { code, .. }
            | Self::Upstream { code, .. }
            | Self::Unauthorized { code, .. }
            | Self::Forbidden { code, .. } => code,
            Self::TooLarge => "body_too_large",
            Self::TooManyRequests { .. } => "rate_limited",
            Self::Unexpected(_) => "internal_error",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SessionExpired | Self::InvalidSignedPayload => StatusCode::UNAUTHORIZED,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Upstream { .. } => StatusCode::BAD_GATEWAY,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut error = serde_json::json!({ "code": self.code(), "message": self.to_string() });
        if let Self::Invalid { field, .. } = self {
            error["field"] = serde_json::Value::String(field.clone());
        }
        let mut response = HttpResponse::build(self.status_code());
        if let Self::TooManyRequests { retry_after_secs } = self {
            response.insert_header((
                actix_web::http::header::RETRY_AFTER,
                retry_after_secs.to_string(),
            ));
        }
        response.json(serde_json::json!({ "error": error }))
    }
}

/// Malformed JSON bodies on admin routes: a JSON `400`, not actix's plain-text default.
pub fn json_error_handler(
    error: actix_web::error::JsonPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    let (code, message) = match &error {
        actix_web::error::JsonPayloadError::Overflow { .. }
        | actix_web::error::JsonPayloadError::OverflowKnownLength { .. } => (
            "body_too_large",
            "The request body is too large".to_string(),
        ),
        actix_web::error::JsonPayloadError::ContentType => (
            "unsupported_media_type",
            "Send JSON with Content-Type: application/json".to_string(),
        ),
        other => (
            "invalid_json",
            format!("The request body is not valid: {other}"),
        ),
    };
    ApiError::BadRequest { code, message }.into()
}

/// Unknown `/api/...` paths: the JSON error shape, like every other API error.
pub async fn api_not_found() -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({
        "error": { "code": "not_found", "message": "There is no such API route" }
    }))
}

pub async fn api_method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((actix_web::http::header::ALLOW, "POST, OPTIONS"))
        .json(serde_json::json!({
            "error": { "code": "method_not_allowed", "message": "Use POST for this route" }
        }))
}

/// Unknown browser paths: a styled page, never a bare 404.
pub async fn page_not_found() -> HttpResponse {
    let body = ErrorPage {
        title: "Page not found",
        message: "This address is not part of Profile Bridge. Open the app from the Apps menu of your BigCommerce control panel.",
        status: 404,
    }
    .render()
    .unwrap_or_else(|_| "Page not found".into());
    HttpResponse::NotFound()
        .content_type("text/html; charset=utf-8")
        .body(body)
}
