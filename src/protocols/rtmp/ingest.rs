//! RTMP ingest: the publisher's audio and video messages are wrapped back into an FLV byte stream
//! and handed to GStreamer (`appsrc ! flvdemux`), whose tracks are parsed into the engine's
//! canonical forms (H.264 byte-stream access units, raw AAC) and fed to the stream's producers.

use super::flv;
use crate::engine::media::Codec;
use crate::engine::pipeline::{attach_chain, discard_pad, PipelineCounter, PipelineGuard};
use crate::engine::producer::{track_sink, IngestClock, Producer, Stamping};
use crate::engine::templates;
use gst::prelude::*;
use std::sync::Arc;

/// Largest FLV backlog queued into the demuxer before tags are dropped (a stalled pipeline must
/// not make the publisher's connection buffer without bound).
const MAX_QUEUED_BYTES: u64 = 16 * 1024 * 1024;

/// Where the FLV comes from.
pub enum FlvSource<'a> {
    /// Pushed by our RTMP server, message by message.
    Push,
    /// Pulled from another RTMP server by GStreamer's `rtmp2src`.
    Pull(&'a str),
}

/// A running RTMP ingest pipeline.
pub struct RtmpIngest {
    /// Keeps the pipeline alive.
    pub guard: PipelineGuard,
    src: Option<gst_app::AppSrc>,
}

impl RtmpIngest {
    /// Builds and starts the pipeline feeding `video` (H.264) and `audio` (AAC).
    pub fn build(
        name: &str,
        counter: &PipelineCounter,
        video: Option<Arc<Producer>>,
        audio: Option<Arc<Producer>>,
        source: FlvSource<'_>,
    ) -> anyhow::Result<Self> {
        let guard = PipelineGuard::new(name, counter);
        let pipeline = guard.pipeline().clone();
        let demux = gst::ElementFactory::make("flvdemux")
            .name("demux")
            .build()?;
        let (src_element, appsrc) = match source {
            FlvSource::Push => {
                let src = gst_app::AppSrc::builder()
                    .name("src")
                    .caps(&gst::Caps::builder("video/x-flv").build())
                    .format(gst::Format::Bytes)
                    .is_live(true)
                    .block(false)
                    .max_bytes(MAX_QUEUED_BYTES)
                    .build();
                (src.clone().upcast::<gst::Element>(), Some(src))
            }
            FlvSource::Pull(url) => {
                let src = gst::ElementFactory::make("rtmp2src")
                    .name("src")
                    .property("location", url)
                    .property("timeout", 10u32)
                    .build()?;
                (src, None)
            }
        };
        pipeline.add_many([&src_element, &demux])?;
        src_element.link(&demux)?;
        let clock = IngestClock::new();
        let pipe_weak = pipeline.downgrade();
        demux.connect_pad_added(move |_, pad| {
            let Some(pipeline) = pipe_weak.upgrade() else {
                return;
            };
            let caps = pad.current_caps();
            let sname = caps
                .as_ref()
                .and_then(|c| c.structure(0))
                .map(|s| s.name().to_string())
                .unwrap_or_default();
            let mpeg_version = caps
                .as_ref()
                .and_then(|c| c.structure(0))
                .and_then(|s| s.get::<i32>("mpegversion").ok());
            let (codec, producer) = match sname.as_str() {
                "video/x-h264" => (Codec::H264, video.clone()),
                "audio/mpeg" if mpeg_version == Some(1) => {
                    // MP3: transcoded to AAC once here, so the stream has one audio codec.
                    let r = match audio.clone() {
                        Some(p) => link_mp3(&pipeline, pad, &p, clock.clone()),
                        None => discard_pad(&pipeline, pad),
                    };
                    if let Err(e) = r {
                        tracing::warn!("could not link RTMP MP3 track: {e:#}");
                    }
                    return;
                }
                "audio/mpeg" => (Codec::Aac, audio.clone()),
                other => {
                    tracing::warn!(
                        caps = other,
                        "RTMP publisher sends a codec streamgate does not take; discarded"
                    );
                    (Codec::Aac, None)
                }
            };
            let r = match producer {
                Some(p) => link(&pipeline, pad, codec, &p, clock.clone()),
                None => discard_pad(&pipeline, pad),
            };
            if let Err(e) = r {
                tracing::warn!("could not link RTMP track {sname}: {e:#}");
            }
        });
        pipeline.set_state(gst::State::Playing)?;
        if let Some(src) = &appsrc {
            let _ = src.push_buffer(gst::Buffer::from_slice(flv::header()));
        }
        Ok(Self { guard, src: appsrc })
    }

    /// Queues one RTMP audio or video message.
    pub fn push(&self, kind: u8, ts_ms: u32, body: &[u8]) {
        let Some(src) = &self.src else { return };
        if src.current_level_bytes() > MAX_QUEUED_BYTES / 2 {
            tracing::warn!("RTMP ingest is backed up; dropping a tag");
            return;
        }
        let _ = src.push_buffer(gst::Buffer::from_slice(flv::tag(kind, ts_ms, body)));
    }
}

fn link_mp3(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    producer: &Arc<Producer>,
    clock: Arc<IngestClock>,
) -> anyhow::Result<()> {
    let stamping = Stamping {
        clock: Some(clock),
        dts_is_pts: true,
    };
    let filter = gst::ElementFactory::make("capsfilter")
        .property("caps", Codec::Aac.caps())
        .build()?;
    let chain = [
        templates::mp3_decoder()?.upcast(),
        templates::encoder(Codec::Aac)?.upcast(),
        filter,
        track_sink("mp3-sink", producer, stamping, 0).upcast(),
    ];
    attach_chain(pipeline, pad, &chain)
}

fn link(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    codec: Codec,
    producer: &Arc<Producer>,
    clock: Arc<IngestClock>,
) -> anyhow::Result<()> {
    let parse = match codec {
        Codec::H264 => gst::ElementFactory::make("h264parse")
            .property("config-interval", -1i32)
            .build()?,
        _ => gst::ElementFactory::make("aacparse").build()?,
    };
    let filter = gst::ElementFactory::make("capsfilter")
        .property("caps", codec.caps())
        .build()?;
    let stamping = Stamping {
        clock: Some(clock),
        dts_is_pts: false,
    };
    let sink = track_sink(&format!("{}-sink", codec.slug()), producer, stamping, 0);
    attach_chain(pipeline, pad, &[parse, filter, sink.upcast()])
}
