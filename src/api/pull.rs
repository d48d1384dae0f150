//! The `pull` group: streams pulled from other RTMP servers (`/rest-api/pull/rtmp/*`).

use super::{body, redacted, ApiError};
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/rest-api/pull/rtmp/pull", post(pull_rtmp))
        .route(
            "/rest-api/pull/rtmp/find_all",
            post(pull_find_all).get(pull_find_all),
        )
        .route("/rest-api/pull/rtmp/terminate", post(pull_terminate))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PullReq {
    uri: Option<String>,
    local_stream_name: Option<String>,
}

async fn pull_rtmp(State(state): State<AppState>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let r: PullReq = body(&bytes)?;
    let uri = r
        .uri
        .ok_or_else(|| ApiError::BadRequest("uri is required".into()))?;
    use crate::rtmp::pull::{self, PullError};
    match pull::start(&state.engine, &uri, r.local_stream_name.as_deref()).await {
        Ok(name) => Ok(redacted(json!({ "localStreamName": name, "uri": uri }))),
        Err(PullError::BadUri) => Err(ApiError::BadRequest(PullError::BadUri.to_string())),
        Err(e @ PullError::AlreadyPulled(_)) => Err(ApiError::Conflict(e.to_string())),
        Err(PullError::Engine(e)) => Err(e.into()),
    }
}

async fn pull_find_all(State(state): State<AppState>) -> Json<Value> {
    redacted(crate::rtmp::pull::list(&state.engine))
}

async fn pull_terminate(
    State(state): State<AppState>,
    bytes: Bytes,
) -> Result<StatusCode, ApiError> {
    let r: PullReq = body(&bytes)?;
    if r.uri.is_none() && r.local_stream_name.is_none() {
        return Err(ApiError::BadRequest(
            "uri or localStreamName is required".into(),
        ));
    }
    match crate::rtmp::pull::terminate(
        &state.engine,
        r.uri.as_deref(),
        r.local_stream_name.as_deref(),
    ) {
        0 => Err(ApiError::NotFound("Pull not found".into())),
        _ => Ok(StatusCode::OK),
    }
}
