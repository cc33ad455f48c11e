//! The one mapping from failures to HTTP: JSON `{error:{code,message,field?}}` (SPEC §13).

use atende_engine::EngineError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub retry_after_secs: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `validation_failed`, `not_found`.
    pub code: &'static str,
    /// What is wrong, in words a person can act on.
    pub message: String,
    /// The input field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after_secs: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "not found")
    }

    pub fn unprocessable(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            message,
        )
        .with_field(field)
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        use EngineError as E;
        match error {
            E::Validation(validation) => {
                let first = validation.0.first().cloned();
                let (field, message) = first
                    .map(|f| (Some(f.field.clone()), format!("{}: {}", f.field, f.message)))
                    .unwrap_or((None, "invalid input".to_owned()));
                ApiError {
                    field,
                    ..ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "validation_failed",
                        message,
                    )
                }
            }
            E::NotFound => ApiError::not_found(),
            E::UnknownReference { field, id } => ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_reference",
                format!("{field}: {id} does not exist"),
            )
            .with_field(field),
            E::Conflict(message) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            E::InvalidState(message) => {
                ApiError::new(StatusCode::CONFLICT, "invalid_state", message)
            }
            E::WindowClosed(message) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "window_closed", message)
            }
            E::Unauthenticated => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "log in first: send a Bearer token or the session cookie",
            ),
            E::BadCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_credentials",
                "wrong e-mail or password",
            ),
            E::Forbidden(message) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", message),
            E::RateLimited { retry_after_secs } => ApiError {
                retry_after_secs: Some(retry_after_secs),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("too many failed attempts; try again in {retry_after_secs} s"),
                )
            },
            other @ (E::SecretKey(_) | E::Decrypt(_) | E::Db(_)) => {
                tracing::error!(error = %other, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the server log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_client_error() {
            tracing::info!(status = self.status.as_u16(), code = self.code, message = %self.message, "request refused");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                field: self.field,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after_secs
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<atende_engine::db::DbError> for ApiError {
    fn from(error: atende_engine::db::DbError) -> Self {
        EngineError::from(error).into()
    }
}

impl From<atende_domain::ValidationError> for ApiError {
    fn from(error: atende_domain::ValidationError) -> Self {
        EngineError::Validation(error).into()
    }
}

impl From<atende_domain::FieldError> for ApiError {
    fn from(error: atende_domain::FieldError) -> Self {
        EngineError::Validation(error.into()).into()
    }
}
