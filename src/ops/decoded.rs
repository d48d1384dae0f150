//! A stream's track decoded to raw media, once, for every operation that needs pictures or samples
//! (each mixer that shows the stream; later transcoders and watermarks). It is a shared output of
//! the stream (kinds `decoded-video`, `decoded-audio`): made on first demand, shared by every
//! subscriber, and stopped with the last. Video comes out as I420 at the source's size and rate;
//! audio as interleaved F32 stereo at 48 kHz, so mixers can add inputs up without converting each.
//! Timestamps stay in the server's running time, so decoded tracks of one stream stay in step.

use crate::engine::media::Codec;
use crate::engine::pipeline::PipelineGuard;
use crate::engine::producer::{consumer_appsrc, forward_keyframe_requests, ConsumerLink};
use crate::engine::{templates, SharedOutput, StreamMedia};
use gst::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// What a subscriber is given: each decoded sample (caps with every buffer, so a size change
/// mid-stream is seen). Called on the decoder's streaming thread: it must not block.
pub type SampleFn = Arc<dyn Fn(&gst::Sample) + Send + Sync>;

/// The caps decoded audio comes out in.
pub const AUDIO_CAPS: &str = "audio/x-raw,format=F32LE,rate=48000,channels=2,layout=interleaved";

type Subscribers = Arc<Mutex<Vec<(u64, SampleFn)>>>;

/// One decoded track.
pub struct Decoded {
    video: bool,
    subscribers: Subscribers,
    next_id: AtomicU64,
    _link: ConsumerLink,
    _guard: PipelineGuard,
}

/// A subscription; dropping it stops the samples (and, with the last one, the decoder).
pub struct Subscription {
    decoded: Arc<Decoded>,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Ok(mut s) = self.decoded.subscribers.lock() {
            s.retain(|(id, _)| *id != self.id);
        }
    }
}

impl SharedOutput for Decoded {
    fn kind(&self) -> &'static str {
        if self.video {
            "decoded-video"
        } else {
            "decoded-audio"
        }
    }
}

impl Decoded {
    /// The stream's decoded video (or audio) track, started on first demand. Fails when the stream
    /// has no such track.
    pub fn of(media: &StreamMedia, video: bool) -> anyhow::Result<Arc<Decoded>> {
        let kind = if video {
            "decoded-video"
        } else {
            "decoded-audio"
        };
        media.shared_output(kind, |m| Self::start(m, video))
    }

    fn start(media: &StreamMedia, video: bool) -> anyhow::Result<Decoded> {
        let source = media
            .track(video)
            .ok_or_else(|| anyhow::anyhow!("the stream has no {} track", kind_word(video)))?;
        let codec: Codec = source.codec();
        let limits = media.limits();
        let mut guard = PipelineGuard::new(
            &format!("{}-decode-{}", media.name(), kind_word(video)),
            media.pipelines(),
        );
        let pipeline = guard.pipeline().clone();
        let src = consumer_appsrc("src", &limits);
        src.set_caps(Some(&source.caps().unwrap_or_else(|| codec.caps())));
        let dec = templates::decoder(codec)?;
        let mut chain: Vec<gst::Element> = vec![src.clone().upcast(), dec.upcast()];
        let caps = if video {
            chain.push(gst::ElementFactory::make("videoconvert").build()?);
            gst::Caps::builder("video/x-raw")
                .field("format", "I420")
                .build()
        } else {
            chain.push(gst::ElementFactory::make("audioconvert").build()?);
            chain.push(gst::ElementFactory::make("audioresample").build()?);
            AUDIO_CAPS.parse::<gst::Caps>()?
        };
        let sink = gst_app::AppSink::builder()
            .name("sink")
            .caps(&caps)
            .sync(false)
            .async_(false)
            .enable_last_sample(false)
            .build();
        chain.push(sink.clone().upcast());
        pipeline.add_many(&chain)?;
        gst::Element::link_many(&chain)?;
        let subscribers: Subscribers = Arc::default();
        let weak: Weak<Mutex<Vec<(u64, SampleFn)>>> = Arc::downgrade(&subscribers);
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let Some(subs) = weak.upgrade() else {
                        return Err(gst::FlowError::Eos);
                    };
                    // Called outside the lock: a subscriber may take its own locks.
                    let now: Vec<SampleFn> = subs
                        .lock()
                        .map(|s| s.iter().map(|(_, f)| f.clone()).collect())
                        .unwrap_or_default();
                    for f in now {
                        f(&sample);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        // The decoder asks for a keyframe after a loss; the source is asked in turn.
        forward_keyframe_requests(&src, &source);
        let name = media.name().to_owned();
        guard.watch_bus(move |e| {
            tracing::warn!(stream = %crate::redact::Escaped(&name), "decoder failed: {e}");
        });
        pipeline.set_state(gst::State::Playing)?;
        let link = source.add_consumer(&src);
        tracing::debug!(stream = %crate::redact::Escaped(media.name()), ?codec, "decoding for operations");
        Ok(Decoded {
            video,
            subscribers,
            next_id: AtomicU64::new(0),
            _link: link,
            _guard: guard,
        })
    }

    /// Subscribes `f` to the decoded samples.
    pub fn subscribe(self: &Arc<Self>, f: SampleFn) -> Subscription {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut s) = self.subscribers.lock() {
            s.push((id, f));
        }
        Subscription {
            decoded: self.clone(),
            id,
        }
    }
}

fn kind_word(video: bool) -> &'static str {
    if video {
        "video"
    } else {
        "audio"
    }
}
