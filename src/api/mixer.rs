//! The `mixer` group, in WCS's shape: `/rest-api/mixer/startup`, `add`, `remove`, `find_all`,
//! `terminate` and `setAudioVideo`. Mixers are addressed as `mixer://NAME`; errors are WCS's
//! (404 "Mixer not found" / "Stream not found", 409 when the mixer or its output name exists).

use super::{body, redacted, ApiError};
use crate::ops::mixer::{self, layout::Layout, MixerError, MixerSpec, Picture};
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
        .route("/rest-api/mixer/startup", post(startup))
        .route("/rest-api/mixer/add", post(add))
        .route("/rest-api/mixer/remove", post(remove))
        .route("/rest-api/mixer/find_all", post(find_all).get(find_all))
        .route("/rest-api/mixer/terminate", post(terminate))
        .route("/rest-api/mixer/setAudioVideo", post(set_audio_video))
        .route("/rest-api/mixer/set_stream_label", post(set_stream_label))
}

impl From<MixerError> for ApiError {
    fn from(e: MixerError) -> Self {
        match e {
            MixerError::NotFound | MixerError::StreamNotFound => ApiError::NotFound(e.to_string()),
            MixerError::Exists | MixerError::AlreadyAdded => ApiError::Conflict(e.to_string()),
            MixerError::Invalid(m) => ApiError::BadRequest(m),
            MixerError::Engine(e) => e.into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Startup {
    uri: Option<String>,
    local_stream_name: Option<String>,
    has_video: Option<bool>,
    has_audio: Option<bool>,
    mixer_video_width: Option<u32>,
    mixer_video_height: Option<u32>,
    mixer_video_fps: Option<u32>,
    mixer_video_bitrate_kbps: Option<u32>,
    mixer_layout_class: Option<String>,
    watermark: Option<String>,
    background: Option<String>,
}

/// `#RRGGBB` (or `RRGGBB`) as 0xAARRGGBB.
fn colour(text: &str) -> Result<u32, ApiError> {
    let hex = text.trim_start_matches('#');
    match (hex.len(), u32::from_str_radix(hex, 16)) {
        (6, Ok(rgb)) => Ok(0xff00_0000 | rgb),
        _ => Err(ApiError::BadRequest(
            "background must be a colour such as #202020".into(),
        )),
    }
}

fn uri_name(uri: Option<&str>) -> Result<String, ApiError> {
    let uri = uri.ok_or_else(|| ApiError::BadRequest("uri is required".into()))?;
    Ok(mixer::name_of_uri(uri)?)
}

fn found(state: &AppState, uri: Option<&str>) -> Result<std::sync::Arc<mixer::Mixer>, ApiError> {
    let name = uri_name(uri)?;
    mixer::find(&state.engine, &name).ok_or_else(|| MixerError::NotFound.into())
}

async fn startup(State(state): State<AppState>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let r: Startup = body(&bytes)?;
    let name = uri_name(r.uri.as_deref())?;
    let cfg = &state.engine.config().mixer;
    if r.watermark.as_deref().is_some_and(|w| !w.is_empty()) {
        return Err(ApiError::BadRequest(
            "watermark is not supported by mixers yet".into(),
        ));
    }
    let width = r.mixer_video_width.unwrap_or(cfg.width);
    let height = r.mixer_video_height.unwrap_or(cfg.height);
    let fps = r.mixer_video_fps.unwrap_or(cfg.fps);
    if !(16..=3840).contains(&width) || !(16..=2160).contains(&height) || !(1..=60).contains(&fps) {
        return Err(ApiError::BadRequest(
            "mixerVideoWidth/Height must be 16..3840 x 16..2160 and mixerVideoFps 1..60".into(),
        ));
    }
    let layout_name = r.mixer_layout_class.as_deref().unwrap_or(&cfg.layout);
    let layout =
        Layout::resolve(layout_name, cfg.layout_dir.as_deref()).map_err(ApiError::BadRequest)?;
    let spec = MixerSpec {
        output: r
            .local_stream_name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| name.clone()),
        name,
        has_video: r.has_video.unwrap_or(true),
        has_audio: r.has_audio.unwrap_or(true),
        picture: Picture {
            // I420 needs even sizes.
            width: width & !1,
            height: height & !1,
            fps,
            kbps: r
                .mixer_video_bitrate_kbps
                .unwrap_or(cfg.kbps)
                .clamp(50, 50_000),
            background: r
                .background
                .as_deref()
                .map(colour)
                .transpose()?
                .unwrap_or(0xff00_0000),
        },
        latency: std::time::Duration::from_millis(cfg.latency_ms),
        layout,
        desktop_marker: cfg.desktop_marker.clone(),
        mcu: false,
    };
    let m = mixer::start(&state.engine, spec).await?;
    Ok(redacted(m.info()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Member {
    uri: Option<String>,
    remote_stream_name: Option<String>,
    has_video: Option<bool>,
    has_audio: Option<bool>,
    stream_label: Option<String>,
}

fn stream_of(r: &Member) -> Result<String, ApiError> {
    r.remote_stream_name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::BadRequest("remoteStreamName is required".into()))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, MixerError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("mixer task: {e}")))?
        .map_err(ApiError::from)
}

async fn add(State(state): State<AppState>, bytes: Bytes) -> Result<StatusCode, ApiError> {
    let r: Member = body(&bytes)?;
    let m = found(&state, r.uri.as_deref())?;
    let stream = stream_of(&r)?;
    let label = r.stream_label.clone().unwrap_or_default();
    let (video, audio) = (r.has_video.unwrap_or(true), r.has_audio.unwrap_or(true));
    blocking(move || m.add(&stream, &label, video, audio)).await?;
    Ok(StatusCode::OK)
}

async fn remove(State(state): State<AppState>, bytes: Bytes) -> Result<StatusCode, ApiError> {
    let r: Member = body(&bytes)?;
    let m = found(&state, r.uri.as_deref())?;
    let stream = stream_of(&r)?;
    blocking(move || m.remove(&stream)).await?;
    Ok(StatusCode::OK)
}

async fn find_all(State(state): State<AppState>) -> Json<Value> {
    redacted(mixer::list(&state.engine))
}

#[derive(Deserialize)]
struct Uri {
    uri: Option<String>,
}

async fn terminate(State(state): State<AppState>, bytes: Bytes) -> Result<StatusCode, ApiError> {
    let r: Uri = body(&bytes)?;
    let name = uri_name(r.uri.as_deref())?;
    mixer::terminate(&state.engine, &name)?;
    Ok(StatusCode::OK)
}

/// `streams` as a list of names, or one pattern.
#[derive(Deserialize)]
#[serde(untagged)]
enum Streams {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AudioVideo {
    uri: Option<String>,
    streams: Option<Streams>,
    remote_stream_name: Option<String>,
    /// WCS's: 0 mutes.
    audio_level: Option<f64>,
    audio_muted: Option<bool>,
    video_muted: Option<bool>,
}

async fn set_audio_video(
    State(state): State<AppState>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let r: AudioVideo = body(&bytes)?;
    let m = found(&state, r.uri.as_deref())?;
    let mut streams = match r.streams {
        Some(Streams::One(s)) => vec![s],
        Some(Streams::Many(v)) => v,
        None => Vec::new(),
    };
    if let Some(s) = r.remote_stream_name {
        // A single name is a name, not a pattern.
        streams.push(regex::escape(&s));
    }
    let audio_muted = r.audio_muted.or(r.audio_level.map(|l| l <= 0.0));
    if audio_muted.is_none() && r.video_muted.is_none() {
        return Err(ApiError::BadRequest(
            "audioLevel, audioMuted or videoMuted is required".into(),
        ));
    }
    let n = blocking(move || m.set_audio_video(&streams, audio_muted, r.video_muted)).await?;
    Ok(Json(json!({ "matched": n })))
}

async fn set_stream_label(
    State(state): State<AppState>,
    bytes: Bytes,
) -> Result<StatusCode, ApiError> {
    let r: Member = body(&bytes)?;
    let m = found(&state, r.uri.as_deref())?;
    let stream = stream_of(&r)?;
    let label = r
        .stream_label
        .ok_or_else(|| ApiError::BadRequest("streamLabel is required".into()))?;
    blocking(move || m.set_label(&stream, &label)).await?;
    Ok(StatusCode::OK)
}
