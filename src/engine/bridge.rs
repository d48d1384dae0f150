//! Codec bridges: when a consumer needs a codec the stream does not carry (a VP8-only player of an
//! H.264 stream, AAC for RTMP from a WebRTC publisher's Opus), one bridge per stream and target codec
//! decodes the source track and encodes it again into a derived producer. It is made on first
//! demand, shared by every consumer that needs it, and stops when the last of them lets go.

use super::media::Codec;
use super::pipeline::PipelineGuard;
use super::producer::{
    consumer_appsrc, forward_keyframe_requests, track_sink, ConsumerLink, Producer, ProducerLimits,
    Stamping,
};
use super::templates;
use gst::prelude::*;
use std::sync::Arc;

/// A running transcode from one producer to a derived one.
pub struct Bridge {
    /// The derived track.
    pub producer: Arc<Producer>,
    _link: ConsumerLink,
    _guard: PipelineGuard,
}

impl Bridge {
    /// Starts a bridge turning `source` into `target`.
    pub fn start(
        stream: &str,
        source: &Arc<Producer>,
        target: Codec,
        limits: ProducerLimits,
        counter: &super::pipeline::PipelineCounter,
    ) -> anyhow::Result<Arc<Self>> {
        let from = source.codec();
        anyhow::ensure!(
            from.is_video() == target.is_video(),
            "cannot bridge {from:?} to {target:?}"
        );
        let mut guard = PipelineGuard::new(&format!("{stream}-bridge-{}", target.slug()), counter);
        let pipeline = guard.pipeline().clone();
        let src = consumer_appsrc("src", &limits);
        src.set_caps(Some(&source.caps().unwrap_or_else(|| from.caps())));
        let dec = templates::decoder(from)?;
        let enc = templates::encoder(target)?;
        let caps = gst::ElementFactory::make("capsfilter")
            .property("caps", target.caps())
            .build()?;
        let producer = Producer::new(target, limits);
        let stamping = Stamping {
            clock: None,
            dts_is_pts: true,
        };
        let sink = track_sink("sink", &producer, stamping, 0);
        let mut chain: Vec<gst::Element> = vec![src.clone().upcast(), dec.upcast(), enc.upcast()];
        if target.is_video() {
            // Keep the encoder fed at a steady pace even when the source hiccups.
            chain.insert(
                2,
                gst::ElementFactory::make("queue")
                    .property("max-size-buffers", 3u32)
                    .property_from_str("leaky", "downstream")
                    .build()?,
            );
        }
        chain.push(caps);
        chain.push(sink.upcast());
        pipeline.add_many(&chain)?;
        gst::Element::link_many(&chain)?;
        // Keyframe requests from the bridge's own input decoder go to the source.
        forward_keyframe_requests(&src, source);
        guard.watch_bus(|_| {});
        pipeline.set_state(gst::State::Playing)?;
        let link = source.add_consumer(&src);
        tracing::info!(stream, ?from, ?target, "codec bridge started");
        Ok(Arc::new(Self {
            producer,
            _link: link,
            _guard: guard,
        }))
    }
}
