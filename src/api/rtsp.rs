//! The `rtsp` group: cameras pulled into streams (`/rest-api/rtsp/startup`, `find`, `find_all`,
//! `terminate`), in WCS's words ("RTSP not found", "Rtsp has wrong format").

use super::{body, redacted, ApiError};
use crate::protocols::rtsp::pull::{self, RtspError, Transport};
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
        .route("/rest-api/rtsp/startup", post(startup))
        .route("/rest-api/rtsp/find", post(find))
        .route("/rest-api/rtsp/find_all", post(find_all).get(find_all))
        .route("/rest-api/rtsp/terminate", post(terminate))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Req {
    uri: Option<String>,
    local_stream_name: Option<String>,
    transport: Option<String>,
}

fn uri_of(r: &Req) -> Result<&str, ApiError> {
    r.uri
        .as_deref()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::BadRequest("uri is required".into()))
}

async fn startup(State(state): State<AppState>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let r: Req = body(&bytes)?;
    let uri = uri_of(&r)?;
    let transport = Transport::parse(r.transport.as_deref())
        .ok_or_else(|| ApiError::BadRequest("transport must be tcp or udp".into()))?;
    match pull::start(
        &state.engine,
        uri,
        r.local_stream_name.as_deref(),
        transport,
    )
    .await
    {
        Ok(name) => Ok(redacted(json!({ "localStreamName": name, "uri": uri }))),
        Err(RtspError::BadUri) => Err(ApiError::BadRequest(RtspError::BadUri.to_string())),
        Err(e @ RtspError::AlreadyPulled(_)) => Err(ApiError::Conflict(e.to_string())),
        Err(RtspError::Engine(e)) => Err(e.into()),
    }
}

async fn find(State(state): State<AppState>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let r: Req = body(&bytes)?;
    let uri = uri_of(&r)?;
    let found: Vec<Value> = pull::list(&state.engine)
        .into_iter()
        .filter(|p| p["uri"] == uri)
        .collect();
    if found.is_empty() {
        return Err(ApiError::NotFound("RTSP not found".into()));
    }
    Ok(redacted(json!(found)))
}

async fn find_all(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let all = pull::list(&state.engine);
    if all.is_empty() {
        return Err(ApiError::NotFound("RTSP not found".into()));
    }
    Ok(redacted(json!(all)))
}

async fn terminate(State(state): State<AppState>, bytes: Bytes) -> Result<StatusCode, ApiError> {
    let r: Req = body(&bytes)?;
    let uri = uri_of(&r)?;
    match pull::terminate(&state.engine, uri) {
        0 => Err(ApiError::NotFound("RTSP not found".into())),
        _ => Ok(StatusCode::OK),
    }
}
