//! MSE over WebSocket, as the WCS Web SDK plays it (`mediaProviders: ['MSE']`): `playStream` with a
//! placeholder offer is answered with the kinds of media the stream has, then the SDK opens a
//! second WebSocket and sends `connectMediaTransport {authToken}`; from then on the stream goes to
//! it as binary frames ([`frames`]). Each player takes its frames from the stream's FLV feed, the
//! one made once per stream for RTMP viewers (with the shared H.264 and AAC bridges), so an MSE
//! viewer costs a socket and a bounded queue.

pub mod fmp4;
pub mod frames;

use crate::engine::{Engine, EngineError, MediaRequest, Output, PlayHandle};
use crate::protocols::rtmp::stream::{flv_output, RtmpOut};
use axum::extract::ws::Message;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;

/// How long an MSE viewer waits for its `connectMediaTransport`.
pub const TRANSPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What an MSE viewer holds: the stream's FLV feed.
struct MseViewer(#[allow(dead_code)] Arc<RtmpOut>);

impl Output for MseViewer {
    fn kind(&self) -> &'static str {
        "mse"
    }
}

/// One MSE player of a signaling connection: its stream's feed, and the task that sends it to the
/// media transport once there is one.
pub struct MsePlayer {
    out: Arc<RtmpOut>,
    msid: String,
    has_audio: bool,
    pump: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for MsePlayer {
    fn drop(&mut self) {
        if let Some(p) = self.pump.take() {
            p.abort();
        }
    }
}

/// Registers an MSE viewer of `req.name` (PENDING until its transport connects); returns its
/// handle, its player and the answer to the SDK's offer.
pub async fn play(
    engine: &Engine,
    req: MediaRequest,
) -> Result<(PlayHandle, MsePlayer, String), EngineError> {
    let mut handle = engine.play(&req, "MSE", false).await?;
    let media = handle.media().clone();
    let out = flv_output(&media, true).map_err(|e| EngineError::Internal(format!("{e:#}")))?;
    let answer = frames::answer(&req.sdp, media.video().is_some(), media.audio().is_some());
    handle.set_output(Box::new(MseViewer(out.clone())));
    // A player whose media transport never connects (the second WebSocket blocked, the page gone)
    // does not stay PENDING for good.
    engine.fail_if_pending_after(
        &req.media_session_id,
        TRANSPORT_TIMEOUT,
        "Failed by MSE transport timeout",
    );
    let player = MsePlayer {
        out,
        msid: req.media_session_id.clone(),
        has_audio: media.audio().is_some(),
        pump: None,
    };
    Ok((handle, player, answer))
}

impl MsePlayer {
    /// Whether it sends to a transport already.
    pub fn attached(&self) -> bool {
        self.pump.is_some()
    }

    /// Starts sending the stream to `transport`; the viewer becomes PLAYING.
    pub fn attach(&mut self, engine: &Engine, transport: mpsc::Sender<Message>) {
        if self.pump.is_some() {
            return;
        }
        let feed = self.out.out.subscribe();
        let has_audio = self.has_audio;
        let out = self.out.clone();
        engine.connected(&self.msid);
        self.pump = Some(tokio::spawn(async move {
            // The whole feed moves in (its guard keeps this viewer on the shared output), not only
            // the fields used below.
            let mut feed = feed;
            let mut framer = frames::Framer::new(has_audio);
            let mut buf = Vec::new();
            while let Some(m) = feed.rx.recv().await {
                framer.push(&m.tag, &mut buf);
                if framer.waiting() && m.tag.is_keyframe() {
                    // That keyframe came before the sound reached it: ask for another.
                    out.out.request_keyframe();
                }
                // What is already queued goes in the same message: fewer, larger writes.
                let mut taken = m.chunks.len() as u64;
                while buf.len() < 256 * 1024 {
                    let Ok(more) = feed.rx.try_recv() else { break };
                    framer.push(&more.tag, &mut buf);
                    taken += more.chunks.len() as u64;
                }
                if !buf.is_empty() {
                    let msg = Message::Binary(std::mem::take(&mut buf).into());
                    if transport.send(msg).await.is_err() {
                        break;
                    }
                }
                // Counted as sent once handed to the socket's writer: a transport that cannot keep
                // up backs this up, and the shared feed then cuts the viewer back to a keyframe.
                feed.queued.fetch_sub(
                    taken.min(feed.queued.load(Ordering::Relaxed)),
                    Ordering::Relaxed,
                );
            }
        }));
    }
}
