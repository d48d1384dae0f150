//! Recording and snapshots over REST, in WCS's shape: `/stream/startRecording` and
//! `/stream/stopRecording` (aliases `/recorder/startup`, `/recorder/terminate`),
//! `/recorder/find_all`, `/stream/snapshot`; and the files: `GET /records/` lists the recordings,
//! `GET /records/FILE` downloads one with range requests (so a `<video>` element can seek), and
//! `GET /snapshots/NAME.jpg` serves the periodic snapshots.

use super::{body, ApiError};
use crate::ops::service::{self, RecordOptions};
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/rest-api/stream/startRecording", post(start))
        .route("/rest-api/recorder/startup", post(start))
        .route("/rest-api/stream/stopRecording", post(stop))
        .route("/rest-api/recorder/terminate", post(stop))
        .route("/rest-api/recorder/find_all", post(find_all).get(find_all))
        .route("/rest-api/stream/snapshot", post(snapshot))
        .route("/records/", get(list))
        .route("/records/{file}", get(download))
        .route("/snapshots/{file}", get(snapshot_file))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RecordRequest {
    media_session_id: Option<String>,
    stream_name: Option<String>,
    #[serde(default)]
    config: RecordOptions,
}

impl RecordRequest {
    fn target(&self) -> Result<(Option<&str>, Option<&str>), ApiError> {
        let (n, m) = (
            self.stream_name.as_deref(),
            self.media_session_id.as_deref(),
        );
        if n.is_none() && m.is_none() {
            return Err(ApiError::BadRequest("mediaSessionId is required".into()));
        }
        Ok((n, m))
    }
}

async fn start(State(state): State<AppState>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let r: RecordRequest = body(&bytes)?;
    let (name, msid) = r.target()?;
    let file = service::start_recording(&state.engine, name, msid, &r.config)?;
    Ok(Json(json!({ "fileName": file })))
}

async fn stop(State(state): State<AppState>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let r: RecordRequest = body(&bytes)?;
    let (name, msid) = r.target()?;
    service::stop_recording(&state.engine, name, msid)?;
    Ok(Json(json!({})))
}

async fn find_all(State(state): State<AppState>) -> Json<Value> {
    Json(Value::Array(service::recordings(&state.engine)))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SnapshotRequest {
    stream_name: Option<String>,
    media_session_id: Option<String>,
}

async fn snapshot(State(state): State<AppState>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let r: SnapshotRequest = body(&bytes)?;
    if r.stream_name.is_none() && r.media_session_id.is_none() {
        return Err(ApiError::BadRequest(
            "streamName or mediaSessionId is required".into(),
        ));
    }
    let png = service::snapshot_png(
        &state.engine,
        r.stream_name.as_deref(),
        r.media_session_id.as_deref(),
    )
    .await?;
    Ok(Json(json!({ "data": png })))
}

async fn list(State(state): State<AppState>) -> Json<Value> {
    let dir = state.engine.config().record_dir();
    let files = tokio::task::spawn_blocking(move || crate::ops::listing::list(&dir))
        .await
        .unwrap_or_default();
    // Durations as seconds, times as milliseconds since the epoch (as WCS reports times).
    let files: Vec<Value> = files
        .into_iter()
        .map(|f| {
            json!({
                "name": f.name,
                "size": f.size,
                "duration": f.duration.map(|d| d.as_secs_f64()),
                "stream": f.stream,
                "startTime": f.start_time,
                "endTime": f.end_time,
                "complete": f.complete,
            })
        })
        .collect();
    Json(Value::Array(files))
}

/// A bare file name: no separators, no `..`, nothing hidden. Anything else is refused before the
/// file system is asked.
fn plain_file_name(name: &str) -> Result<&str, ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && !name.contains("..");
    if ok {
        Ok(name)
    } else {
        Err(ApiError::BadRequest(format!(
            "{:?} is not a file name",
            crate::redact::Escaped(name).to_string()
        )))
    }
}

/// Serves `file` from `dir` with range requests, or 404.
async fn serve(dir: std::path::PathBuf, file: String, req: Request) -> Response {
    let name = match plain_file_name(&file) {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    let path = dir.join(name);
    if !path.is_file() {
        return ApiError::NotFound("File not found".into()).into_response();
    }
    match tower::ServiceExt::oneshot(tower_http::services::ServeFile::new(path), req).await {
        Ok(r) => r.into_response(),
        Err(e) => ApiError::Internal(format!("serving {file}: {e}")).into_response(),
    }
}

async fn download(
    State(state): State<AppState>,
    Path(file): Path<String>,
    req: Request,
) -> Response {
    serve(state.engine.config().record_dir(), file, req).await
}

async fn snapshot_file(
    State(state): State<AppState>,
    Path(file): Path<String>,
    req: Request,
) -> Response {
    serve(state.engine.config().snapshot_dir(), file, req).await
}
