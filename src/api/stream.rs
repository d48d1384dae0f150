//! The `stream` group: find, terminate and stream events (`/rest-api/stream/*`).

use super::{body, redacted, ApiError};
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/rest-api/stream/find_all",
            post(stream_find_all).get(stream_find_all),
        )
        .route("/rest-api/stream/find", post(stream_find))
        .route("/rest-api/stream/terminate", post(stream_terminate))
        .route("/rest-api/stream/event/send", post(stream_event_send))
}

async fn stream_find_all(State(state): State<AppState>) -> Json<Value> {
    redacted(state.engine.find_all())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct StreamFilter {
    name: Option<String>,
    media_session_id: Option<String>,
    #[serde(default)]
    media_session_ids: Vec<String>,
    published: Option<bool>,
    status: Option<String>,
}

impl StreamFilter {
    fn select(&self, state: &AppState) -> Vec<crate::engine::StreamInfo> {
        state
            .engine
            .find(
                self.name.as_deref(),
                self.media_session_id.as_deref(),
                self.published,
            )
            .into_iter()
            .filter(|s| {
                self.media_session_ids.is_empty()
                    || self.media_session_ids.contains(&s.media_session_id)
            })
            .filter(|s| {
                self.status
                    .as_deref()
                    .is_none_or(|st| s.status.as_str() == st)
            })
            .collect()
    }
}

async fn stream_find(State(state): State<AppState>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let f: StreamFilter = body(&bytes)?;
    if f.name.is_none() && f.media_session_id.is_none() {
        return Err(ApiError::BadRequest(
            "name or mediaSessionId is required".into(),
        ));
    }
    let found = f.select(&state);
    if found.is_empty() {
        return Err(ApiError::NotFound("Stream not found".into()));
    }
    Ok(redacted(found))
}

async fn stream_terminate(
    State(state): State<AppState>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let f: StreamFilter = body(&bytes)?;
    let ids: Vec<String> = f
        .select(&state)
        .into_iter()
        .map(|s| s.media_session_id)
        .collect();
    if ids.is_empty() {
        return Err(ApiError::NotFound("Stream not found".into()));
    }
    let n = state.engine.terminate(&ids, "Stopped by rest /terminate");
    tracing::info!(count = n, "streams terminated over REST");
    // JSON: the Web SDK's REST client parses every 200 body.
    Ok((
        StatusCode::OK,
        Json(json!({ "terminated": n, "info": "termination request received" })),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventSend {
    stream_name: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    payload: Value,
}

async fn stream_event_send(
    State(state): State<AppState>,
    bytes: Bytes,
) -> Result<StatusCode, ApiError> {
    let e: EventSend = body(&bytes)?;
    let kind = e.kind.unwrap_or_else(|| "data".into());
    state
        .engine
        .stream_event_by_name(&e.stream_name, &kind, e.payload)
        .map_err(ApiError::from)?;
    Ok(StatusCode::OK)
}
