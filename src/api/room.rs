//! The `room` group: rooms of the room application listed and ended, and recorded as interviews
//! (a composite file, a file per participant and a sidecar; see [`crate::ops::interview`]).

use super::{body, ApiError};
use crate::ops::interview::{self, Member};
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
        .route(
            "/rest-api/room/find_all",
            post(room_find_all).get(room_find_all),
        )
        .route("/rest-api/room/find", post(room_find))
        .route("/rest-api/room/terminate", post(room_terminate))
        .route("/rest-api/room/startRecording", post(start_recording))
        .route("/rest-api/room/stopRecording", post(stop_recording))
        .route(
            "/rest-api/room/recordings",
            post(recordings).get(recordings),
        )
}

async fn room_find_all(State(state): State<AppState>) -> Json<Value> {
    Json(Value::Array(state.rooms_lock().list(None)))
}

#[derive(Deserialize)]
struct RoomRef {
    name: String,
}

async fn room_find(State(state): State<AppState>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let r: RoomRef = body(&bytes)?;
    let found = state.rooms_lock().list(Some(&r.name));
    if found.is_empty() {
        return Err(ApiError::NotFound("Room not found".into()));
    }
    Ok(Json(Value::Array(found)))
}

async fn room_terminate(
    State(state): State<AppState>,
    bytes: Bytes,
) -> Result<StatusCode, ApiError> {
    let r: RoomRef = body(&bytes)?;
    let removed = state.rooms_lock().remove(&r.name);
    let Some((deliveries, streams)) = removed else {
        return Err(ApiError::NotFound("Room not found".into()));
    };
    let ids: Vec<String> = streams
        .iter()
        .flat_map(|s| state.engine.find(Some(s), None, None))
        .map(|s| s.media_session_id)
        .collect();
    state.engine.terminate(&ids, "Stopped by rest /terminate");
    for d in deliveries {
        let frame = crate::signaling::protocol::frame(
            "OnDataEvent",
            json!({ "nodeId": state.node_id, "sessionId": d.session_id, "payload": d.payload }),
        );
        state.sessions.send(&d.session_id, frame);
    }
    interview::emptied(&state.engine, &r.name).await;
    tracing::info!(room = %r.name, streams = ids.len(), "room terminated over REST");
    Ok(StatusCode::OK)
}

/// The streams published in room `name`, with their publishers' logins.
fn members(state: &AppState, name: &str) -> Result<Vec<Member>, ApiError> {
    let pairs = state.rooms_lock().members(name);
    pairs
        .map(Member::from_pairs)
        .ok_or_else(|| ApiError::NotFound("Room not found".into()))
}

async fn start_recording(
    State(state): State<AppState>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let r: RoomRef = body(&bytes)?;
    let members = members(&state, &r.name)?;
    let composite = interview::start(&state.engine, &r.name, members).await?;
    Ok(Json(json!({ "room": r.name, "composite": composite })))
}

async fn stop_recording(
    State(state): State<AppState>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let r: RoomRef = body(&bytes)?;
    Ok(Json(interview::stop(&state.engine, &r.name).await?))
}

#[derive(Deserialize, Default)]
struct RecordingsRequest {
    name: Option<String>,
}

/// Past room recordings (their sidecars), newest first; a body `{name}` keeps one room's.
async fn recordings(State(state): State<AppState>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let r: RecordingsRequest = if bytes.is_empty() {
        RecordingsRequest::default()
    } else {
        body(&bytes)?
    };
    let dir = state.engine.config().record_dir();
    let found = tokio::task::spawn_blocking(move || interview::recordings(&dir, r.name.as_deref()))
        .await
        .unwrap_or_default();
    Ok(Json(Value::Array(found)))
}
