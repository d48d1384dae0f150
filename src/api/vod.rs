//! The `vod` group: files played as shared live streams (`/rest-api/vod/startup`, `find`,
//! `find_all`, `terminate`), with WCS's words for a missing file and a file in the wrong format.

use super::{body, ApiError};
use crate::protocols::vod::{self, paths::FileError, VodError};
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
        .route("/rest-api/vod/startup", post(startup))
        .route("/rest-api/vod/find", post(find))
        .route("/rest-api/vod/find_all", post(find_all).get(find_all))
        .route("/rest-api/vod/terminate", post(terminate))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Req {
    uri: Option<String>,
    local_stream_name: Option<String>,
    #[serde(rename = "loop")]
    looped: Option<bool>,
}

const NOT_FOUND: &str = "VOD not found";

async fn startup(State(state): State<AppState>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let r: Req = body(&bytes)?;
    let uri = r
        .uri
        .as_deref()
        .filter(|u| u.starts_with("vod-live://"))
        .ok_or_else(|| ApiError::BadRequest("uri must be vod-live://FILE".into()))?;
    let name = r
        .local_stream_name
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(uri);
    let looped = r.looped.unwrap_or(false);
    match vod::start(&state.engine, uri, name, looped, false).await {
        Ok(name) => Ok(Json(
            json!({ "localStreamName": name, "uri": uri, "loop": looped }),
        )),
        Err(VodError::BadUri) => Err(ApiError::BadRequest(VodError::BadUri.to_string())),
        Err(VodError::File(e @ FileError::NotFound(_))) => Err(ApiError::NotFound(e.to_string())),
        Err(VodError::File(e @ FileError::WrongFormat)) => Err(ApiError::BadRequest(e.to_string())),
        Err(VodError::Engine(e)) => Err(e.into()),
    }
}

/// The URI or the stream name a request names.
fn key(r: &Req) -> Result<&str, ApiError> {
    r.uri
        .as_deref()
        .or(r.local_stream_name.as_deref())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::BadRequest("uri or localStreamName is required".into()))
}

async fn find(State(state): State<AppState>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let r: Req = body(&bytes)?;
    let k = key(&r)?;
    let found: Vec<Value> = vod::list(&state.engine)
        .into_iter()
        .filter(|v| v["uri"] == k || v["localStreamName"] == k)
        .collect();
    if found.is_empty() {
        return Err(ApiError::NotFound(NOT_FOUND.into()));
    }
    Ok(Json(json!(found)))
}

async fn find_all(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let all = vod::list(&state.engine);
    if all.is_empty() {
        return Err(ApiError::NotFound(NOT_FOUND.into()));
    }
    Ok(Json(json!(all)))
}

async fn terminate(State(state): State<AppState>, bytes: Bytes) -> Result<StatusCode, ApiError> {
    let r: Req = body(&bytes)?;
    match vod::terminate(&state.engine, key(&r)?) {
        0 => Err(ApiError::NotFound(NOT_FOUND.into())),
        _ => Ok(StatusCode::OK),
    }
}
