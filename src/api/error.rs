//! One error type for every REST handler, turned into WCS-style status codes and a JSON body that
//! says what was wrong. Internal details are logged, never sent.

use crate::engine::EngineError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// A REST error.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400.
    #[error("{0}")]
    BadRequest(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 401: no valid API key.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: admission refused.
    #[error("{0}")]
    Forbidden(String),
    /// 415: a state-changing request that is not `application/json`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429: the client has too much in progress already.
    #[error("{0}")]
    TooMany(String),
    /// 503: the server cannot take this now (no free media ports, shutting down).
    #[error("{0}")]
    Unavailable(String),
    /// 500.
    #[error("{0}")]
    Internal(String),
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::StreamNotFound => ApiError::NotFound(e.to_string()),
            EngineError::NameInUse
            | EngineError::MediaSessionInUse
            | EngineError::AlreadyRecording => ApiError::Conflict(e.to_string()),
            EngineError::NotRecording => ApiError::NotFound(e.to_string()),
            EngineError::Denied(_) => ApiError::Forbidden(e.to_string()),
            EngineError::Invalid(_) | EngineError::BadSdp(_) | EngineError::NoCommonCodecs => {
                ApiError::BadRequest(e.to_string())
            }
            EngineError::Internal(d) => ApiError::Internal(d),
            EngineError::TooManyPending => ApiError::TooMany(e.to_string()),
            EngineError::ShuttingDown | EngineError::Unavailable(_) => {
                ApiError::Unavailable(e.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m.clone()),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone()),
            ApiError::Unauthorized(m) => {
                let body = json!({ "status": 401, "error": "Unauthorized", "message": m });
                let mut r = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
                r.headers_mut().insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Bearer, Basic realm=\"streamgate\""),
                );
                return r;
            }
            ApiError::UnsupportedMediaType(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, m.clone()),
            ApiError::TooMany(m) => (StatusCode::TOO_MANY_REQUESTS, m.clone()),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m.clone()),
            ApiError::Internal(d) => {
                tracing::error!("internal error: {d}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error".to_owned(),
                )
            }
        };
        let body = json!({
            "status": status.as_u16(),
            "error": status.canonical_reason().unwrap_or(""),
            "message": message,
        });
        (status, Json(body)).into_response()
    }
}
