//! The REST API in WCS's shape: `POST /rest-api/<group>/<method>` with a JSON body, JSON answers,
//! WCS's status codes (404 "Stream not found", 409 on conflicts, 400 on bad input). Also `/health`
//! and Prometheus `/metrics`.

mod connection;
mod error;
mod health;
mod history;
mod hooks;
mod mixer;
mod pull;
mod recorder;
mod room;
mod rtsp;
mod stream;
mod token;
mod vod;

pub use error::ApiError;

use crate::server::AppState;
use axum::body::Bytes;
use axum::http::header;
use axum::response::Response;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

/// The REST routes, with their CORS policy and the JSON content-type rule.
pub fn router(config: &crate::config::RestConfig) -> Router<AppState> {
    let keys = std::sync::Arc::new(config.api_keys.clone());
    routes()
        .layer(axum::middleware::from_fn(require_json))
        .layer(axum::middleware::from_fn(move |req, next| {
            require_key(keys.clone(), req, next)
        }))
        .layer(cors(config))
}

/// Which pages may call REST. Reads (GET) are open to any origin; state-changing methods only to
/// the configured origins, so a page a user happens to open cannot stop their streams. Together
/// with [`require_json`] this makes every cross-origin POST need a preflight that fails.
fn cors(config: &crate::config::RestConfig) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins: Vec<HeaderValue> = config
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        CorsLayer::new()
            .allow_origin(tower_http::cors::Any)
            .allow_methods([Method::GET, Method::HEAD])
    } else {
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::HEAD, Method::POST])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
    }
}

/// A POST must say `Content-Type: application/json`. Browsers send other types (`text/plain`,
/// forms) cross-origin without asking first; insisting on JSON makes them ask (preflight), and
/// [`cors`] says no to origins that are not configured.
async fn require_json(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<Response, ApiError> {
    if req.method() == axum::http::Method::POST && req.uri().path().starts_with("/rest-api/") {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = ct.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::UnsupportedMediaType(
                "REST requests must be sent as Content-Type: application/json".into(),
            ));
        }
    }
    Ok(next.run(req).await)
}

/// With API keys configured, every REST method needs one (see [`crate::auth::api_key_ok`]).
/// Preflights pass (browsers never send credentials on them), and so does the one method made
/// for pages holding an interviewer's token rather than a key (`token/invite`, which checks that
/// token itself).
async fn require_key(
    keys: std::sync::Arc<Vec<String>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<Response, ApiError> {
    let path = req.uri().path();
    let guarded =
        (path.starts_with("/rest-api/") && path != "/rest-api/token/invite") || path == "/metrics";
    if keys.is_empty() || !guarded || req.method() == axum::http::Method::OPTIONS {
        return Ok(next.run(req).await);
    }
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !crate::auth::api_key_ok(&keys, auth) {
        tracing::info!(%path, "REST request without a valid API key refused");
        return Err(ApiError::Unauthorized(
            "An API key is required: Authorization: Bearer KEY".into(),
        ));
    }
    Ok(next.run(req).await)
}

fn routes() -> Router<AppState> {
    Router::new()
        .merge(health::routes())
        .merge(stream::routes())
        .merge(connection::routes())
        .merge(pull::routes())
        .merge(rtsp::routes())
        .merge(vod::routes())
        .merge(mixer::routes())
        .merge(room::routes())
        .merge(recorder::routes())
        .merge(hooks::routes())
        .merge(history::routes())
        .merge(token::routes())
}

/// Parses a JSON body; an empty body is `{}`. Errors name what is wrong.
pub(super) fn body<T: for<'de> Deserialize<'de>>(bytes: &Bytes) -> Result<T, ApiError> {
    let text = if bytes.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        &bytes[..]
    };
    serde_json::from_slice(text)
        .map_err(|e| ApiError::BadRequest(format!("Malformed JSON body: {e}")))
}

/// A JSON answer with secrets (stream keys, tokens in queries) hidden.
pub(super) fn redacted(v: impl serde::Serialize) -> Json<Value> {
    let mut v = serde_json::to_value(v).unwrap_or(Value::Null);
    crate::redact::json(&mut v);
    Json(v)
}
