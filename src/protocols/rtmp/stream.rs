//! RTMP streams through the engine's seam: a publisher (pushed to our server, or pulled from
//! another) is a source whose `flvdemux` ingest feeds the stream's producers; every RTMP viewer of a
//! stream shares one FLV feed, a shared output made once per stream (with the bridges to H.264 and
//! AAC it needs) and dropped with its last user.

use super::ingest::{FlvSource, RtmpIngest};
use super::output::{FlvOutput, ViewerFeed};
use crate::engine::bridge::Bridge;
use crate::engine::media::Codec;
use crate::engine::{
    short, Engine, EngineError, MediaRequest, Output, PlayHandle, PublishHandle, PublishSpec,
    SharedOutput, Source, StreamMedia,
};
use std::sync::Arc;

/// A stream's FLV feed for RTMP viewers (H.264 + AAC, bridged when the stream carries VP8 or Opus).
pub struct RtmpOut {
    /// The shared FLV output.
    pub out: Arc<FlvOutput>,
    _bridges: Vec<Arc<Bridge>>,
}

impl SharedOutput for RtmpOut {
    fn kind(&self) -> &'static str {
        "flv"
    }

    fn backlog(&self) -> (u64, u64) {
        self.out.backlog()
    }
}

/// The stream's shared RTMP output, made on first demand.
pub fn rtmp_output(media: &StreamMedia) -> anyhow::Result<Arc<RtmpOut>> {
    flv_output(media, false)
}

/// The stream's shared FLV feed; `in_order` asks for video without B-frames (for players that
/// ignore composition times, as the WCS SDK's MSE player does), which is a second feed from the
/// shared re-encode only when the source has reordered frames.
pub fn flv_output(media: &StreamMedia, in_order: bool) -> anyhow::Result<Arc<RtmpOut>> {
    let in_order = in_order && media.video().is_some_and(|v| v.has_reordering());
    let key = if in_order { "flv-in-order" } else { "flv" };
    media.shared_output(key, |m| {
        let mut bridges = Vec::new();
        let mut track = |codec: Codec| -> anyhow::Result<Option<_>> {
            if m.track(codec.is_video()).is_none() {
                return Ok(None);
            }
            let (p, b) = m.track_in(codec, in_order)?;
            bridges.extend(b);
            Ok(Some(p))
        };
        let video = track(Codec::H264)?;
        let audio = track(Codec::Aac)?;
        let out = FlvOutput::start(m.name(), video.as_ref(), audio.as_ref(), m.limits())?;
        Ok(RtmpOut {
            out,
            _bridges: bridges,
        })
    })
}

/// An RTMP publisher's (or pull's) ingest pipeline, with the stream's FLV feed kept for as long
/// as the stream lives.
struct FlvIngestSource {
    _ingest: Arc<RtmpIngest>,
    _out: Option<Arc<RtmpOut>>,
}

impl Source for FlvIngestSource {
    fn kind(&self) -> &'static str {
        "flv"
    }
}

/// An RTMP viewer: it holds on to the stream's FLV feed.
struct FlvViewer(#[allow(dead_code)] Arc<RtmpOut>);

impl Output for FlvViewer {
    fn kind(&self) -> &'static str {
        "flv"
    }
}

/// Publishes an RTMP stream (H.264 + AAC) fed from `source`. Returns the handle and the ingest
/// (a pushing connection hands it each message).
pub async fn publish(
    engine: &Engine,
    req: MediaRequest,
    source: FlvSource<'_>,
) -> Result<(PublishHandle, Arc<RtmpIngest>), EngineError> {
    let pushed = matches!(source, FlvSource::Push);
    let spec = PublishSpec {
        provider: "RTMP",
        video: Some(Codec::H264),
        audio: Some(Codec::Aac),
        complete: true,
        may_reorder: true,
        connected: true,
        // An encoder that drops may come back within the grace; a pull is restarted by its owner.
        resumable: pushed,
    };
    let mut handle = engine.publish(&req, spec).await?;
    let media = handle.media().clone();
    let mut ingest = RtmpIngest::build(
        &format!("{}-rtmp-{}", req.name, short(&req.media_session_id)),
        engine.pipelines(),
        media.video(),
        media.audio(),
        source,
    )
    .map_err(|e| EngineError::Internal(format!("{e:#}")))?;
    let weak = engine.downgrade();
    let msid = req.media_session_id.clone();
    ingest.guard.watch_bus(move |_| {
        if let Some(engine) = weak.upgrade() {
            engine.failed(&msid, "Failed by error");
        }
    });
    let ingest = Arc::new(ingest);
    // RTMP streams mostly have RTMP viewers: mux from the start, so even the first viewer
    // starts at a cached keyframe. The source keeps the output for the stream's lifetime.
    let out = match rtmp_output(&media) {
        Ok(o) => Some(o),
        Err(e) => {
            tracing::warn!(stream = %crate::redact::Escaped(&req.name), "RTMP output not started: {e:#}");
            None
        }
    };
    handle.set_source(Box::new(FlvIngestSource {
        _ingest: ingest.clone(),
        _out: out,
    }));
    Ok((handle, ingest))
}

/// Registers an RTMP viewer of stream `req.name`; returns its handle and its feed of shared chunks.
pub async fn play(
    engine: &Engine,
    req: MediaRequest,
) -> Result<(PlayHandle, ViewerFeed), EngineError> {
    let mut handle = engine.play(&req, "RTMP", true).await?;
    let out = rtmp_output(handle.media()).map_err(|e| EngineError::Internal(format!("{e:#}")))?;
    let feed = out.out.subscribe();
    handle.set_output(Box::new(FlvViewer(out)));
    Ok((handle, feed))
}
