//! The `connection` and `data` groups: signaling connections listed and closed, data sent to one.

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
        .route(
            "/rest-api/connection/find_all",
            post(connection_find_all).get(connection_find_all),
        )
        .route("/rest-api/connection/terminate", post(connection_terminate))
        .route("/rest-api/data/send", post(data_send))
}

/// Connections as WCS lists them, without their `authToken`s: a token lets its holder act as that
/// client, so it is only ever given to the client itself (in `getUserData`).
async fn connection_find_all(State(state): State<AppState>) -> Json<Value> {
    let mut list = state.sessions.list();
    for c in &mut list {
        if let Some(o) = c.as_object_mut() {
            o.remove("authToken");
        }
    }
    redacted(list)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionRef {
    session_id: String,
}

async fn connection_terminate(
    State(state): State<AppState>,
    bytes: Bytes,
) -> Result<StatusCode, ApiError> {
    let r: SessionRef = body(&bytes)?;
    if state.sessions.close(&r.session_id) {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::NotFound("Session not found".into()))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DataSend {
    session_id: String,
    #[serde(default)]
    operation_id: Option<String>,
    #[serde(default)]
    node_id: Option<String>,
    #[serde(default)]
    payload: Value,
}

async fn data_send(State(state): State<AppState>, bytes: Bytes) -> Result<StatusCode, ApiError> {
    let d: DataSend = body(&bytes)?;
    let event = json!({
        "nodeId": d.node_id.unwrap_or_else(|| state.node_id.clone()),
        "operationId": d.operation_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        "sessionId": d.session_id,
        "payload": d.payload,
    });
    if state.sessions.send(
        &d.session_id,
        crate::signaling::protocol::frame("OnDataEvent", event),
    ) {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::NotFound("Session not found".into()))
    }
}
