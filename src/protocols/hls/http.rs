//! HLS over HTTP. On the HTTP port: `/hls/NAME/index.m3u8` (the multivariant playlist),
//! `/hls/NAME/media.m3u8` (the media playlist) and the files they name; on the HLS listener,
//! WCS's spelling `/NAME/NAME.m3u8` and the same files beside it.
//!
//! Query: `format=ts` (or `fmp4`) picks the container, `token=` is the player's token (carried on
//! into every URI of the playlists), `_HLS_msn`/`_HLS_part` ask for a blocking reload (LL-HLS),
//! and a part named by a preload hint is answered once it exists. Playlists are `no-cache`
//! (blocking ones may be cached briefly, as their URL names what they hold); segments, parts and
//! init sections never change under their names and are cacheable.

use super::playlist::{multivariant, File, Ready};
use super::{Container, Hls, HlsError};
use crate::engine::EngineError;
use crate::server::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;
use tower_http::cors::CorsLayer;

/// The query an HLS request may carry.
#[derive(Debug, Default, Deserialize)]
pub struct HlsQuery {
    format: Option<String>,
    token: Option<String>,
    #[serde(rename = "_HLS_msn")]
    msn: Option<u64>,
    #[serde(rename = "_HLS_part")]
    part: Option<usize>,
}

/// HLS routes on the HTTP port.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/hls/{name}/{file}", get(serve))
        .layer(cors())
}

/// The HLS listener's routes (WCS's `/NAME/NAME.m3u8`).
pub fn listener_router() -> Router<AppState> {
    Router::new()
        .route("/{name}/{file}", get(serve))
        .layer(cors())
}

/// Players run on any page: GET from anywhere.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([axum::http::Method::GET, axum::http::Method::HEAD])
}

fn status(code: StatusCode, text: &str) -> Response {
    let mut r = (code, format!("{text}\n")).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn error(e: HlsError) -> Response {
    match e {
        HlsError::Disabled => status(StatusCode::NOT_FOUND, "HLS is disabled"),
        HlsError::Engine(e) => {
            let code = match &e {
                EngineError::StreamNotFound => StatusCode::NOT_FOUND,
                EngineError::Denied(_) => StatusCode::FORBIDDEN,
                EngineError::ShuttingDown | EngineError::Unavailable(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                EngineError::TooManyPending => StatusCode::TOO_MANY_REQUESTS,
                EngineError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            };
            status(code, &e.to_string())
        }
    }
}

fn with_headers(body: impl Into<Body>, content_type: &'static str, cache: String) -> Response {
    let mut r = Response::new(body.into());
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    r
}

/// What a request names.
enum Wanted {
    Multivariant,
    Media,
    File(Container, String),
}

fn wanted(name: &str, file: &str) -> Option<Wanted> {
    if file == "index.m3u8" || file == format!("{name}.m3u8") {
        return Some(Wanted::Multivariant);
    }
    if file == "media.m3u8" {
        return Some(Wanted::Media);
    }
    let container = if file.ends_with(".ts") {
        Container::Ts
    } else if file.ends_with(".m4s") || file.ends_with(".mp4") {
        Container::Fmp4
    } else {
        return None;
    };
    Some(Wanted::File(container, file.to_owned()))
}

async fn serve(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((name, file)): Path<(String, String)>,
    query: Result<Query<HlsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return status(StatusCode::BAD_REQUEST, "Bad query");
    };
    let hls = state.hls.clone();
    let Some(want) = wanted(&name, &file) else {
        return status(StatusCode::NOT_FOUND, "Not found");
    };
    let container = match (&want, query.format.as_deref()) {
        (Wanted::File(c, _), _) => *c,
        (_, None) => hls.default_container(),
        (_, Some(f)) => match Container::parse(f) {
            Some(c) => c,
            None => return status(StatusCode::BAD_REQUEST, "Unknown format"),
        },
    };
    let token = query.token.as_deref().filter(|t| !t.is_empty());
    let channel = match hls.channel(&name, container, peer.ip(), token).await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(stream = %crate::redact::Escaped(&name), %peer, "HLS request refused: {e}");
            return error(e);
        }
    };
    let _busy = channel.busy();
    // Every URI a playlist names carries the player's token on.
    let token_query = token
        .map(|t| format!("token={}", urlencode(t)))
        .unwrap_or_default();
    match want {
        Wanted::Multivariant => {
            let ready = first_segment(&hls, &channel).await;
            if !ready {
                return status(StatusCode::SERVICE_UNAVAILABLE, "Stream is not ready");
            }
            let mut q = Vec::new();
            if container == Container::Ts {
                q.push("format=ts".to_string());
            }
            if !token_query.is_empty() {
                q.push(token_query.clone());
            }
            let uri = if q.is_empty() {
                "media.m3u8".to_string()
            } else {
                format!("media.m3u8?{}", q.join("&"))
            };
            let text = {
                let t = channel.timeline();
                multivariant(&uri, &t)
            };
            with_headers(text, "application/vnd.apple.mpegurl", "no-cache".into())
        }
        Wanted::Media => media_playlist(&hls, &channel, &query, &token_query).await,
        Wanted::File(_, file) => serve_file(&channel, &file).await,
    }
}

/// Waits for a rendition's first complete segment (a rendition just started needs one GOP).
async fn first_segment(hls: &Hls, channel: &super::Channel) -> bool {
    let wait = Duration::from_secs_f64((hls.config().segment_duration * 3.0).max(10.0));
    channel.wait_for(wait, |t| t.is_playable()).await
}

async fn media_playlist(
    hls: &Hls,
    channel: &super::Channel,
    query: &HlsQuery,
    token_query: &str,
) -> Response {
    if !first_segment(hls, channel).await {
        return status(StatusCode::SERVICE_UNAVAILABLE, "Stream is not ready");
    }
    let ll = channel.shape.part_target.is_some();
    let blocking = query.msn.is_some();
    if let Some(msn) = query.msn {
        let part = query.part;
        let ready = channel.timeline().ready(msn, part);
        match ready {
            Ready::TooFar => {
                return status(StatusCode::BAD_REQUEST, "_HLS_msn is too far ahead");
            }
            Ready::Yes => {}
            Ready::NotYet => {
                // RFC 8216bis 6.2.5.2: wait up to three target durations, then give up.
                let wait = channel.shape.target * 3 + Duration::from_secs(1);
                let ok = channel
                    .wait_for(wait, |t| t.ready(msn, part) == Ready::Yes)
                    .await;
                if !ok {
                    return status(StatusCode::SERVICE_UNAVAILABLE, "Stream is not advancing");
                }
            }
        }
    } else if query.part.is_some() {
        return status(StatusCode::BAD_REQUEST, "_HLS_part needs _HLS_msn");
    }
    let t = channel.timeline();
    let text = t.render(ll, &channel.names, token_query);
    let cache = if blocking {
        // The URL names what it holds: a CDN may keep it briefly.
        format!(
            "public, max-age={}",
            channel.shape.target.as_secs().max(1) * 3
        )
    } else {
        "no-cache".into()
    };
    with_headers(text, "application/vnd.apple.mpegurl", cache)
}

async fn serve_file(channel: &super::Channel, file: &str) -> Response {
    let Some(what) = channel.names.parse(file) else {
        return status(StatusCode::NOT_FOUND, "Not found");
    };
    let media_type = if channel.names.ext == "ts" {
        "video/mp2t"
    } else {
        "video/mp4"
    };
    let cache = "public, max-age=3600, immutable".to_string();
    match what {
        File::Init(n) => match channel.timeline().init(n) {
            Some(d) if !d.is_empty() => with_headers(d, "video/mp4", cache),
            _ => status(StatusCode::NOT_FOUND, "Not found"),
        },
        File::Segment(msn) => {
            let parts: Option<Vec<Bytes>> = channel
                .timeline()
                .segment(msn)
                .map(|s| s.parts.iter().map(|p| p.data.clone()).collect());
            let Some(parts) = parts else {
                return status(StatusCode::NOT_FOUND, "Not found");
            };
            let len: usize = parts.iter().map(Bytes::len).sum();
            let body = Body::from_stream(futures::stream::iter(
                parts.into_iter().map(Ok::<_, std::convert::Infallible>),
            ));
            let mut r = with_headers(body, media_type, cache);
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            r
        }
        File::Part(msn, i) => {
            let found = channel.timeline().part(msn, i);
            let may_come = found.is_none() && channel.timeline().part_may_come(msn, i);
            let data = match found {
                Some(d) => Some(d),
                // A part named by a preload hint: answered once it exists.
                None if may_come => {
                    let wait = channel.shape.target + Duration::from_secs(1);
                    channel.wait_for(wait, |t| t.part(msn, i).is_some()).await;
                    channel.timeline().part(msn, i)
                }
                None => None,
            };
            match data {
                Some(d) => with_headers(d, media_type, cache),
                None => status(StatusCode::NOT_FOUND, "Not found"),
            }
        }
    }
}

/// Percent-encodes a query value.
fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_names() {
        assert!(matches!(
            wanted("cam", "index.m3u8"),
            Some(Wanted::Multivariant)
        ));
        assert!(matches!(
            wanted("cam", "cam.m3u8"),
            Some(Wanted::Multivariant)
        ));
        assert!(matches!(wanted("cam", "media.m3u8"), Some(Wanted::Media)));
        assert!(matches!(
            wanted("cam", "ab-1.ts"),
            Some(Wanted::File(Container::Ts, _))
        ));
        assert!(wanted("cam", "other.m3u8").is_none());
        assert!(wanted("cam", "passwd").is_none());
        assert_eq!(urlencode("a b&c"), "a%20b%26c");
    }
}
