//! WebRTC ingest: one pipeline per publisher, `webrtcbin → depayloader → parser → appsink` per
//! track, each appsink feeding the stream's producer for that track. Transceivers are made from the
//! offer before it is applied, so the answer keeps the browser's codec choice and payload types and
//! negotiates transport-wide congestion control (without it Chrome never raises its bitrate).

use super::sdp::{Kind, OfferedCodec, OfferedMedia, TWCC_URI};
use crate::config::IceConfig;
use crate::engine::media::Codec;
use crate::engine::pipeline::PipelineGuard;
use crate::engine::pipeline::{attach_chain, discard_pad};
use crate::engine::producer::{track_sink, Producer, Stamping};
use gst::prelude::*;
use std::sync::Arc;

/// The tracks a publisher's offer carries, as the server will receive them.
#[derive(Debug, Clone, Default)]
pub struct IngestPlan {
    /// Video codec and its offer entry.
    pub video: Option<(OfferedCodec, Option<u32>)>,
    /// Audio codec and its offer entry.
    pub audio: Option<(OfferedCodec, Option<u32>)>,
}

impl IngestPlan {
    /// Picks, per kind, the publisher's preferred codec among those we take. `None` when the offer
    /// sends nothing we can receive.
    pub fn from_offer(offer: &[OfferedMedia]) -> Option<Self> {
        let mut plan = IngestPlan::default();
        for m in offer.iter().filter(|m| m.peer_sends) {
            let Some(c) = m.preferred() else { continue };
            let slot = match m.kind {
                Kind::Video => &mut plan.video,
                Kind::Audio => &mut plan.audio,
            };
            if slot.is_none() {
                *slot = Some((c.clone(), m.twcc_id));
            }
        }
        (plan.video.is_some() || plan.audio.is_some()).then_some(plan)
    }
}

/// A running ingest pipeline.
pub struct Ingest {
    /// Keeps the pipeline alive; dropping the ingest stops it.
    pub guard: PipelineGuard,
    /// The webrtcbin, for state notifications.
    pub webrtcbin: gst::Element,
}

fn transceiver_caps(c: &OfferedCodec, twcc: Option<u32>) -> gst::Caps {
    let media = if c.codec.is_video() { "video" } else { "audio" };
    let mut b = gst::Caps::builder("application/x-rtp")
        .field("media", media)
        .field("encoding-name", c.codec.rtp_name())
        .field("payload", i32::from(c.pt))
        .field("clock-rate", c.codec.clock_rate() as i32);
    match c.codec {
        Codec::H264 => {
            b = b.field("packetization-mode", "1");
            if let Some(p) = &c.profile_level_id {
                b = b.field("profile-level-id", p.as_str());
            }
        }
        Codec::Opus => {
            b = b.field("encoding-params", "2");
        }
        _ => {}
    }
    if let Some(id) = twcc {
        b = b.field(format!("extmap-{id}"), TWCC_URI);
    }
    b.build()
}

/// Builds the ingest pipeline and starts it; negotiation is then up to the caller.
pub fn build(
    pipeline_name: &str,
    counter: &crate::engine::pipeline::PipelineCounter,
    plan: &IngestPlan,
    video: Option<Arc<Producer>>,
    audio: Option<Arc<Producer>>,
    ice: &IceConfig,
) -> anyhow::Result<Ingest> {
    let guard = PipelineGuard::new(pipeline_name, counter);
    let pipeline = guard.pipeline().clone();
    let webrtcbin = super::make_webrtcbin("webrtc", ice)?;
    // Received media goes straight to producers; webrtcbin's default 200 ms jitter buffer would
    // only delay every viewer.
    webrtcbin.set_property("latency", 50u32);
    pipeline.add(&webrtcbin)?;
    for entry in [&plan.video, &plan.audio].into_iter().flatten() {
        let caps = transceiver_caps(&entry.0, entry.1);
        let t = webrtcbin.emit_by_name::<gst_webrtc::WebRTCRTPTransceiver>(
            "add-transceiver",
            &[&gst_webrtc::WebRTCRTPTransceiverDirection::Recvonly, &caps],
        );
        t.set_property("do-nack", true);
    }
    let pipe_weak = pipeline.downgrade();
    webrtcbin.connect_pad_added(move |_, pad| {
        let Some(pipeline) = pipe_weak.upgrade() else { return };
        let caps = pad.current_caps().or_else(|| pad.allowed_caps());
        let enc = caps
            .as_ref()
            .and_then(|c| c.structure(0))
            .and_then(|s| s.get::<String>("encoding-name").ok())
            .unwrap_or_default();
        let codec = Codec::from_rtp_name(&enc);
        let producer = codec.and_then(|c| if c.is_video() { video.clone() } else { audio.clone() });
        let linked = match (codec, producer) {
            (Some(codec), Some(producer)) => link_track(&pipeline, pad, codec, &producer)
                .map_err(|e| tracing::warn!("could not link received {enc} track: {e:#}"))
                .is_ok(),
            _ => {
                tracing::warn!(encoding = %enc, "publisher sends a track that was not negotiated; discarding it");
                false
            }
        };
        if !linked {
            if let Err(e) = discard_pad(&pipeline, pad) {
                tracing::warn!("could not discard an unwanted track: {e:#}");
            }
        }
    });
    pipeline.set_state(gst::State::Playing)?;
    Ok(Ingest { guard, webrtcbin })
}

fn link_track(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    codec: Codec,
    producer: &Arc<Producer>,
) -> anyhow::Result<()> {
    let mut chain: Vec<gst::Element> = Vec::new();
    match codec {
        Codec::H264 => {
            chain.push(gst::ElementFactory::make("rtph264depay").build()?);
            // config-interval=-1: SPS/PPS before every IDR, so a viewer can start at any keyframe.
            chain.push(
                gst::ElementFactory::make("h264parse")
                    .property("config-interval", -1i32)
                    .build()?,
            );
        }
        Codec::Vp8 => chain.push(gst::ElementFactory::make("rtpvp8depay").build()?),
        Codec::Opus => chain.push(gst::ElementFactory::make("rtpopusdepay").build()?),
        Codec::Aac => anyhow::bail!("AAC is not received over WebRTC"),
        Codec::H265 => anyhow::bail!("H.265 is not received over WebRTC"),
    }
    chain.push(
        gst::ElementFactory::make("capsfilter")
            .property("caps", codec.caps())
            .build()?,
    );
    let stamping = Stamping {
        clock: None,
        dts_is_pts: true,
    };
    chain.push(track_sink(&format!("{}-sink", codec.slug()), producer, stamping, 64).upcast());
    attach_chain(pipeline, pad, &chain)
}
