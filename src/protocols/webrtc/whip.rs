//! WHIP (RFC 9725) ingest and WHEP playback over HTTP: `POST /whip/{name}` or `/whep/{name}` with an
//! `application/sdp` offer answers `201 Created` with the SDP answer and a `Location` to `DELETE`
//! when done. A WHIP stream is a stream like any other; a WHEP player is a viewer like any other.
//! Each resource is a job of the engine (kind `whip` or `whep`); a task per resource follows the
//! engine's notices so a failed or terminated session disappears on its own.

use crate::engine::{
    EngineError, MediaEvent, MediaNotice, MediaRequest, PlayHandle, PublishHandle, MAILBOX_CAPACITY,
};
use crate::server::AppState;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::Router;
use std::net::SocketAddr;
use tokio::sync::mpsc;

/// What keeps a WHIP or WHEP resource alive, as an engine job.
enum Handle {
    Publish(PublishHandle),
    Play(PlayHandle),
}

/// The WHIP and WHEP routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/whip/{name}", post(whip).options(options))
        .route("/whep/{name}", post(whep).options(options))
        .route(
            "/whip/{name}/{id}",
            delete(end_whip).patch(patch).options(options),
        )
        .route(
            "/whep/{name}/{id}",
            delete(end_whep).patch(patch).options(options),
        )
}

fn error(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain")],
        text.to_owned(),
    )
        .into_response()
}

fn status_of(e: &EngineError) -> StatusCode {
    match e {
        EngineError::StreamNotFound => StatusCode::NOT_FOUND,
        EngineError::NameInUse | EngineError::MediaSessionInUse | EngineError::AlreadyRecording => {
            StatusCode::CONFLICT
        }
        EngineError::NotRecording => StatusCode::NOT_FOUND,
        EngineError::Denied(_) => StatusCode::FORBIDDEN,
        EngineError::Invalid(_) | EngineError::BadSdp(_) | EngineError::NoCommonCodecs => {
            StatusCode::BAD_REQUEST
        }
        EngineError::ShuttingDown | EngineError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        EngineError::TooManyPending => StatusCode::TOO_MANY_REQUESTS,
        EngineError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Checks the bearer token (when one is configured) and the content type.
/// The bearer token of `Authorization`. The scheme name is case-insensitive (RFC 9110 11.1); the
/// token is not.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
}

fn admit(state: &AppState, headers: &HeaderMap, need_sdp: bool) -> Result<(), Box<Response>> {
    if let Some(token) = &state.engine.config().whip.token {
        // The scheme name is case-insensitive (RFC 9110 11.1); the token is not.
        if bearer(headers) != Some(token.as_str()) {
            let mut r = error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return Err(Box::new(r));
        }
    }
    if need_sdp {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct
            .trim()
            .to_ascii_lowercase()
            .starts_with("application/sdp")
        {
            return Err(Box::new(error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the offer must be sent as application/sdp",
            )));
        }
    }
    Ok(())
}

async fn whip(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    start(state, peer, name, headers, body, true).await
}

async fn whep(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    start(state, peer, name, headers, body, false).await
}

async fn start(
    state: AppState,
    peer: SocketAddr,
    name: String,
    headers: HeaderMap,
    offer: String,
    publish: bool,
) -> Response {
    if let Err(r) = admit(&state, &headers, true) {
        return *r;
    }
    let id = uuid::Uuid::new_v4().to_string();
    let (tx, rx) = mpsc::channel::<MediaNotice>(MAILBOX_CAPACITY);
    // A bearer token that is not the configured WHIP token reaches admission as `custom.token`: a
    // signed token, or whatever the back end's hooks check.
    let custom = match (&state.engine.config().whip.token, bearer(&headers)) {
        (None, Some(t)) => serde_json::json!({ "token": t }),
        _ => serde_json::json!({}),
    };
    let req = MediaRequest {
        session_id: format!("{}-{id}", if publish { "whip" } else { "whep" }),
        app_key: if publish { "whip" } else { "whep" }.into(),
        media_session_id: id.clone(),
        name: name.clone(),
        sdp: offer,
        record: false,
        custom,
        events: tx,
        client: Some(peer.ip()),
        login: String::new(),
        resume_token: None,
    };
    let result = if publish {
        super::session::publish(&state.engine, req, "WebRTC")
            .await
            .map(|(h, a)| (Handle::Publish(h), a))
    } else {
        super::session::play(&state.engine, req, "WebRTC")
            .await
            .map(|(h, a)| (Handle::Play(h), a))
    };
    let (handle, answer) = match result {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(stream = %crate::redact::Escaped(&name), %peer, whip = publish, "WHIP/WHEP request refused: {e}");
            return error(status_of(&e), &e.to_string());
        }
    };
    let kind = if publish { "whip" } else { "whep" };
    // Admission may have renamed the stream.
    let name = match &handle {
        Handle::Publish(h) => h.name(),
        Handle::Play(h) => h.name(),
    }
    .to_owned();
    let job = state.engine.start_job(
        kind,
        &name,
        serde_json::json!({ "resource": id, "name": name }),
        Box::new(handle),
    );
    follow(&state.engine, job, rx);
    let location = format!("/{kind}/{}/{id}", urlencode(&name));
    let mut r = (StatusCode::CREATED, answer).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{id}\"")) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, ETag"),
    );
    r
}

/// Ends the job when the engine says its session failed or must stop.
fn follow(engine: &crate::engine::Engine, job: String, mut rx: mpsc::Receiver<MediaNotice>) {
    let weak = engine.downgrade();
    tokio::spawn(async move {
        while let Some(n) = rx.recv().await {
            if let MediaEvent::Failed(why) | MediaEvent::Stop(why) = &n.event {
                tracing::info!(job = %job, "WHIP/WHEP session ended: {why}");
                if let Some(engine) = weak.upgrade() {
                    drop(engine.stop_job(&job));
                }
                break;
            }
        }
    });
}

async fn end_whip(
    State(state): State<AppState>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    end(state, "whip", name, id, headers)
}

async fn end_whep(
    State(state): State<AppState>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    end(state, "whep", name, id, headers)
}

/// Ends a resource, but only through the exact URL it was issued under.
fn end(state: AppState, kind: &str, name: String, id: String, headers: HeaderMap) -> Response {
    if let Err(r) = admit(&state, &headers, false) {
        return *r;
    }
    let job = state
        .engine
        .jobs(Some(kind))
        .into_iter()
        .find(|j| j.name == name && j.info["resource"] == id.as_str());
    match job.and_then(|j| state.engine.stop_job(&j.id)) {
        Some(h) => {
            drop(h);
            StatusCode::OK.into_response()
        }
        None => error(StatusCode::NOT_FOUND, "no such session"),
    }
}

/// Trickle ICE and ICE restarts are not supported: the answer already carries every candidate.
async fn patch() -> Response {
    let mut r = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "trickle ICE is not supported",
    );
    r.headers_mut().insert(
        header::ALLOW,
        HeaderValue::from_static("POST, DELETE, OPTIONS"),
    );
    r
}

async fn options() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(
        header::ALLOW,
        HeaderValue::from_static("POST, DELETE, OPTIONS"),
    );
    h.insert("Accept-Post", HeaderValue::from_static("application/sdp"));
    r
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
