//! The REST API in WCS's shape: `POST /rest-api/<group>/<method>` with a JSON body, JSON answers,
//! WCS's status codes (404 "Stream not found", 409 on conflicts, 400 on bad input). Also `/health`
//! and Prometheus `/metrics`.

mod error;

pub use error::ApiError;

use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

/// The REST routes, with their CORS policy and the JSON content-type rule.
pub fn router(config: &crate::config::RestConfig) -> Router<AppState> {
    routes()
        .layer(axum::middleware::from_fn(require_json))
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

fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route(
            "/rest-api/stream/find_all",
            post(stream_find_all).get(stream_find_all),
        )
        .route("/rest-api/stream/find", post(stream_find))
        .route("/rest-api/stream/terminate", post(stream_terminate))
        .route("/rest-api/stream/event/send", post(stream_event_send))
        .route(
            "/rest-api/connection/find_all",
            post(connection_find_all).get(connection_find_all),
        )
        .route("/rest-api/connection/terminate", post(connection_terminate))
        .route("/rest-api/data/send", post(data_send))
        .route("/rest-api/pull/rtmp/pull", post(pull_rtmp))
        .route(
            "/rest-api/pull/rtmp/find_all",
            post(pull_find_all).get(pull_find_all),
        )
        .route("/rest-api/pull/rtmp/terminate", post(pull_terminate))
        .route(
            "/rest-api/room/find_all",
            post(room_find_all).get(room_find_all),
        )
        .route("/rest-api/room/find", post(room_find))
        .route("/rest-api/room/terminate", post(room_terminate))
}

/// Parses a JSON body; an empty body is `{}`. Errors name what is wrong.
fn body<T: for<'de> Deserialize<'de>>(bytes: &Bytes) -> Result<T, ApiError> {
    let text = if bytes.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        &bytes[..]
    };
    serde_json::from_slice(text)
        .map_err(|e| ApiError::BadRequest(format!("Malformed JSON body: {e}")))
}

async fn health(State(state): State<AppState>) -> Response {
    if *state.shutdown.borrow() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
    } else {
        (StatusCode::OK, "ok").into_response()
    }
}

fn proc_status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(field).map(|v| {
                    v.trim()
                        .split(' ')
                        .next()
                        .unwrap_or("0")
                        .parse()
                        .unwrap_or(0)
                })
            })
        })
        .unwrap_or(0)
}

/// Open file descriptors of the process: a leak of sockets or pipes shows here first.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

async fn metrics(State(state): State<AppState>) -> Response {
    let c = state.engine.counts();
    let text = format!(
        "# HELP streamgate_streams Streams being published.\n# TYPE streamgate_streams gauge\nstreamgate_streams {}\n\
# HELP streamgate_media_sessions Publishers and viewers.\n# TYPE streamgate_media_sessions gauge\nstreamgate_media_sessions {}\n\
# HELP streamgate_pipelines GStreamer pipelines alive.\n# TYPE streamgate_pipelines gauge\nstreamgate_pipelines {}\n\
# HELP streamgate_bridges Codec bridges running.\n# TYPE streamgate_bridges gauge\nstreamgate_bridges {}\n\
# HELP streamgate_rtmp_queued_bytes Bytes queued for RTMP viewers.\n# TYPE streamgate_rtmp_queued_bytes gauge\nstreamgate_rtmp_queued_bytes {}\n\
# HELP streamgate_rtmp_dropped_messages Messages skipped for RTMP viewers that fell behind.\n# TYPE streamgate_rtmp_dropped_messages counter\nstreamgate_rtmp_dropped_messages {}\n\
# HELP streamgate_signaling_sessions Signaling connections past the handshake.\n# TYPE streamgate_signaling_sessions gauge\nstreamgate_signaling_sessions {}\n\
# HELP process_threads Threads of the server process.\n# TYPE process_threads gauge\nprocess_threads {}\n\
# HELP process_resident_memory_bytes Resident memory.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}\n\
# HELP process_open_fds Open file descriptors (sockets, pipes, files).\n# TYPE process_open_fds gauge\nprocess_open_fds {}\n",
        c.streams,
        c.media_sessions,
        c.pipelines,
        c.bridges,
        c.rtmp_queued_bytes,
        c.rtmp_dropped_messages,
        state.sessions.len(),
        proc_status("Threads:"),
        proc_status("VmRSS:") * 1024,
        open_fds(),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// A JSON answer with secrets (stream keys, tokens in queries) hidden.
fn redacted(v: impl serde::Serialize) -> Json<Value> {
    let mut v = serde_json::to_value(v).unwrap_or(Value::Null);
    crate::redact::json(&mut v);
    Json(v)
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
    Ok((StatusCode::OK, "termination request received").into_response())
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
    tracing::info!(room = %r.name, streams = ids.len(), "room terminated over REST");
    Ok(StatusCode::OK)
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
    use crate::pull::PullError;
    match state
        .pulls
        .start(&state, &uri, r.local_stream_name.as_deref())
    {
        Ok(name) => Ok(redacted(json!({ "localStreamName": name, "uri": uri }))),
        Err(PullError::BadUri) => Err(ApiError::BadRequest(PullError::BadUri.to_string())),
        Err(e @ PullError::AlreadyPulled(_)) => Err(ApiError::Conflict(e.to_string())),
        Err(PullError::Engine(e)) => Err(e.into()),
    }
}

async fn pull_find_all(State(state): State<AppState>) -> Json<Value> {
    redacted(state.pulls.list())
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
    match state
        .pulls
        .terminate(r.uri.as_deref(), r.local_stream_name.as_deref())
    {
        0 => Err(ApiError::NotFound("Pull not found".into())),
        _ => Ok(StatusCode::OK),
    }
}
