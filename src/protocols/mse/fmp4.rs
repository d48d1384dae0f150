//! MSE over WebSocket with fMP4 fragments, for the first-party SDK's MSE player:
//! `ws://host:8080/mse/NAME?token=…`. The fragments are the stream's LL-HLS parts, muxed once by
//! the shared fMP4 packager, so an MSE viewer costs a socket and reads of shared buffers.
//!
//! The server sends a text message `{"type":"init","codecs":"avc1…,mp4a.40.2","width":…,
//! "height":…}` followed by the init section as a binary message, then every part as a binary
//! message from the newest keyframe on (a new `init` pair at a discontinuity). A player that
//! falls out of the window starts again at the newest keyframe. `{"type":"error","info":…}` (WCS's
//! wording: "Stream not found", "Restricted access") and `{"type":"stopped"}` end the socket.

use crate::engine::{MediaEvent, MediaRequest};
use crate::protocols::hls::Channel;
use crate::server::AppState;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use futures::SinkExt;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The query an MSE player may carry.
#[derive(Debug, Default, Deserialize)]
pub struct MseQuery {
    token: Option<String>,
}

/// The route.
pub fn router() -> Router<AppState> {
    Router::new().route("/mse/{name}", get(upgrade))
}

async fn upgrade(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    Query(q): Query<MseQuery>,
) -> Response {
    ws.max_message_size(4096)
        .on_upgrade(move |socket| run(socket, state, peer, name, q.token))
}

async fn send_json(ws: &mut WebSocket, v: serde_json::Value) -> bool {
    ws.send(Message::Text(v.to_string().into())).await.is_ok()
}

async fn run(
    mut ws: WebSocket,
    state: AppState,
    peer: SocketAddr,
    name: String,
    token: Option<String>,
) {
    let id = uuid::Uuid::new_v4().to_string();
    let (events, mut notices) = tokio::sync::mpsc::channel(16);
    let req = MediaRequest {
        session_id: format!("mse-{id}"),
        app_key: "mse".into(),
        media_session_id: id,
        name: name.clone(),
        sdp: String::new(),
        record: false,
        custom: token.map_or_else(
            || serde_json::json!({}),
            |t| serde_json::json!({ "token": t }),
        ),
        client: Some(peer.ip()),
        login: String::new(),
        resume_token: None,
        events,
    };
    let handle = match state.engine.play(&req, "MSE", true).await {
        Ok(h) => h,
        Err(e) => {
            tracing::debug!(stream = %crate::redact::Escaped(&name), %peer, "MSE play refused: {e}");
            let _ = send_json(
                &mut ws,
                serde_json::json!({"type": "error", "info": e.to_string()}),
            )
            .await;
            let _ = ws.close().await;
            return;
        }
    };
    let channel = state.hls.rendition_of(handle.name(), handle.media());
    let _busy = channel.busy();
    let wait = Duration::from_secs(15);
    if !channel.wait_for(wait, |t| t.live_point().is_some()).await {
        let _ = send_json(
            &mut ws,
            serde_json::json!({"type": "error", "info": "Stream is not ready"}),
        )
        .await;
        return;
    }
    let ended = follow(&mut ws, &channel, &mut notices).await;
    if ended {
        let _ = send_json(&mut ws, serde_json::json!({"type": "stopped"})).await;
    }
    let _ = ws.close().await;
    drop(handle);
}

/// Sends parts as they come until the socket closes (false) or the stream ends (true).
async fn follow(
    ws: &mut WebSocket,
    channel: &Arc<Channel>,
    notices: &mut tokio::sync::mpsc::Receiver<crate::engine::MediaNotice>,
) -> bool {
    let mut changed = channel.subscribe();
    let mut cursor: Option<(u64, usize)> = None;
    let mut init_sent: Option<u64> = None;
    loop {
        let batch = {
            let t = channel.timeline();
            let from = cursor.or_else(|| t.live_point());
            let parts = from.and_then(|(m, i)| t.parts_since(m, i));
            let parts = match parts {
                Some(p) => p,
                // Fell behind the window: start again at the newest keyframe.
                None => t
                    .live_point()
                    .and_then(|(m, i)| t.parts_since(m, i))
                    .unwrap_or_default(),
            };
            let describe = (t.codecs.clone(), t.resolution);
            let inits: Vec<(u64, bytes::Bytes)> = parts
                .iter()
                .map(|p| p.2)
                .filter(|n| Some(*n) != init_sent)
                .filter_map(|n| t.init(n).map(|d| (n, d)))
                .collect();
            (parts, describe, inits)
        };
        let (parts, (codecs, size), inits) = batch;
        for (msn, i, init, data) in parts {
            if init_sent != Some(init) {
                let Some((_, bytes)) = inits.iter().find(|(n, _)| *n == init) else {
                    continue;
                };
                let msg = serde_json::json!({
                    "type": "init",
                    "codecs": codecs,
                    "width": size.map(|s| s.0),
                    "height": size.map(|s| s.1),
                });
                if !send_json(ws, msg).await
                    || ws.send(Message::Binary(bytes.clone())).await.is_err()
                {
                    return false;
                }
                init_sent = Some(init);
            }
            if ws.send(Message::Binary(data)).await.is_err() {
                return false;
            }
            cursor = Some((msn, i + 1));
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { return true },
            n = notices.recv() => match n {
                Some(n) if matches!(n.event, MediaEvent::Stop(_) | MediaEvent::Failed(_)) => return true,
                Some(_) => {}
                None => return true,
            },
            m = ws.recv() => match m {
                // Players send nothing but pings (answered by axum) and a close.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return false,
                Some(Ok(_)) => {}
            },
        }
    }
}
