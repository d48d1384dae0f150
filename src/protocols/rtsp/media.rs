//! The media factories behind the RTSP server's mount points. A play mount serves one stream:
//! an `appsrc` per track, fed from the stream's producers (video as H.264, through the shared
//! bridge when the source is VP8; Opus or AAC audio as it comes), into gst-rtsp-server's
//! payloaders. Its media is shared by every viewer of the stream that gst-rtsp-server lets share
//! (same URL), and detaches from the producers when its last viewer leaves. A record mount takes
//! what an RTSP publisher ANNOUNCEd: a depayloader per SDP media and the same ingest chains as a
//! pulled camera, into the publisher's producers.
//!
//! Both run on the engine's shared clock and base time, so timestamps mean the same here as in
//! every other pipeline.

use super::tracks;
use crate::engine::media::Codec;
use crate::engine::producer::{forward_keyframe_requests, track_sink, ConsumerLink, Stamping};
use crate::engine::{pipeline::shared_clock, StreamMedia};
use crate::sync::lock;
use gst::prelude::*;
use gst_rtsp_server::gst_rtsp;
use gst_rtsp_server::prelude::*;
use gst_rtsp_server::{RTSPMediaFactory, RTSPTransportMode};
use std::sync::{Arc, Mutex, Weak};

/// The codecs a play mount serves `media` in, in stream order.
pub fn play_tracks(media: &StreamMedia) -> Vec<Codec> {
    let mut out = Vec::new();
    // H.264 (VP8 through the bridge), or H.265 as the camera sends it: RTSP players take both.
    if let Some(v) = media.video() {
        out.push(if v.codec() == Codec::H265 {
            Codec::H265
        } else {
            Codec::H264
        });
    }
    if let Some(a) = media.audio() {
        out.push(if a.codec() == Codec::Aac {
            Codec::Aac
        } else {
            Codec::Opus
        });
    }
    out
}

/// The launch description of a play mount with `tracks`.
pub fn play_launch(tracks: &[Codec], max_bytes: u64) -> String {
    let parts: Vec<String> = tracks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "appsrc name=src{i} format=time is-live=true do-timestamp=false block=false \
                 max-bytes={max_bytes} ! {}",
                tracks::payloader(*c, i)
            )
        })
        .collect();
    format!("( {} )", parts.join(" "))
}

/// The launch description of a record mount for SDP media of `encodings`: the depayloaders
/// gst-rtsp-server looks for (`depayN`); the rest is linked when the media is configured.
pub fn record_launch(encodings: &[String]) -> anyhow::Result<String> {
    let parts = encodings
        .iter()
        .enumerate()
        .map(|(i, e)| Ok(format!("{} name=depay{i}", tracks::ingest_chain(e)?.depay)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(format!("( {} )", parts.join(" ")))
}

/// A factory serving stream `media` to viewers.
pub fn play_factory(media: &Arc<StreamMedia>, rt: tokio::runtime::Handle) -> RTSPMediaFactory {
    let tracks = play_tracks(media);
    let factory = RTSPMediaFactory::new();
    let max_bytes = media.limits().consumer_queue_bytes.saturating_mul(2);
    factory.set_launch(&play_launch(&tracks, max_bytes));
    factory.set_shared(true);
    factory.set_protocols(gst_rtsp::RTSPLowerTrans::TCP | gst_rtsp::RTSPLowerTrans::UDP);
    let weak = Arc::downgrade(media);
    factory.connect_media_configure(move |_, rtsp_media| {
        // Bridges (VP8 → H.264) are made here, on gst-rtsp-server's thread, and watch their
        // pipelines' buses on the runtime.
        let _rt = rt.enter();
        on_shared_clock(rtsp_media);
        if let Err(e) = feed_play(&weak, &tracks, rtsp_media) {
            tracing::warn!("RTSP media not fed: {e:#}");
        }
    });
    factory
}

/// A factory taking a publisher's SDP media of `encodings` into `media`'s tracks.
pub fn record_factory(
    media: &Arc<StreamMedia>,
    encodings: Vec<String>,
) -> anyhow::Result<RTSPMediaFactory> {
    let factory = RTSPMediaFactory::new();
    factory.set_launch(&record_launch(&encodings)?);
    factory.set_transport_mode(RTSPTransportMode::RECORD);
    factory.set_protocols(gst_rtsp::RTSPLowerTrans::TCP | gst_rtsp::RTSPLowerTrans::UDP);
    factory.set_latency(200);
    let weak = Arc::downgrade(media);
    factory.connect_media_configure(move |_, rtsp_media| {
        on_shared_clock(rtsp_media);
        if let Err(e) = feed_record(&weak, &encodings, rtsp_media) {
            tracing::warn!("RTSP publish not taken in: {e:#}");
        }
    });
    Ok(factory)
}

/// Puts a media's pipeline on the engine's clock and base time.
fn on_shared_clock(rtsp_media: &gst_rtsp_server::RTSPMedia) {
    let shared = shared_clock();
    rtsp_media.set_clock(Some(shared.clock()));
    if let Some(pipeline) = rtsp_media
        .element()
        .parent()
        .and_then(|p| p.downcast::<gst::Pipeline>().ok())
    {
        shared.adopt(&pipeline);
    }
}

/// What keeps a play media fed: its consumer links and bridges, dropped when it unprepares.
#[derive(Default)]
struct Feed {
    links: Vec<ConsumerLink>,
    bridges: Vec<Arc<crate::engine::bridge::Bridge>>,
}

fn feed_play(
    media: &Weak<StreamMedia>,
    tracks: &[Codec],
    rtsp_media: &gst_rtsp_server::RTSPMedia,
) -> anyhow::Result<()> {
    let media = media
        .upgrade()
        .ok_or_else(|| anyhow::anyhow!("the stream is gone"))?;
    let bin = rtsp_media
        .element()
        .downcast::<gst::Bin>()
        .map_err(|_| anyhow::anyhow!("media element is not a bin"))?;
    let feed = Arc::new(Mutex::new(Feed::default()));
    for (i, codec) in tracks.iter().enumerate() {
        let appsrc = bin
            .by_name(&format!("src{i}"))
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .ok_or_else(|| anyhow::anyhow!("no appsrc src{i}"))?;
        let (producer, bridge) = media.track_in(*codec, false)?;
        if let Some(c) = producer.caps() {
            appsrc.set_caps(Some(&c));
        }
        forward_keyframe_requests(&appsrc, &producer);
        lock(&feed).bridges.extend(bridge);
        // Attached once the appsrc runs: the cached GOP it is given first must not land in an
        // appsrc that is not started yet (it would be dropped, and the viewer wait a keyframe).
        let weak_producer = Arc::downgrade(&producer);
        let feed_for_src = Arc::downgrade(&feed);
        let attached = std::sync::atomic::AtomicBool::new(false);
        appsrc.set_callbacks(
            gst_app::AppSrcCallbacks::builder()
                .need_data(move |src, _| {
                    if attached.swap(true, std::sync::atomic::Ordering::SeqCst) {
                        return;
                    }
                    if let (Some(p), Some(f)) = (weak_producer.upgrade(), feed_for_src.upgrade()) {
                        let link = p.add_consumer(src);
                        lock(&f).links.push(link);
                    }
                })
                .build(),
        );
    }
    rtsp_media.connect_unprepared(move |_| {
        let mut f = lock(&feed);
        f.links.clear();
        f.bridges.clear();
    });
    Ok(())
}

fn feed_record(
    media: &Weak<StreamMedia>,
    encodings: &[String],
    rtsp_media: &gst_rtsp_server::RTSPMedia,
) -> anyhow::Result<()> {
    let media = media
        .upgrade()
        .ok_or_else(|| anyhow::anyhow!("the stream is gone"))?;
    let bin = rtsp_media
        .element()
        .downcast::<gst::Bin>()
        .map_err(|_| anyhow::anyhow!("media element is not a bin"))?;
    for (i, encoding) in encodings.iter().enumerate() {
        let depay = bin
            .by_name(&format!("depay{i}"))
            .ok_or_else(|| anyhow::anyhow!("no depay{i}"))?;
        let chain = tracks::ingest_chain(encoding)?;
        let producer = media
            .track(chain.codec.is_video())
            .ok_or_else(|| anyhow::anyhow!("the stream has no {:?} track", chain.codec))?;
        let sink = track_sink(&format!("sink{i}"), &producer, Stamping::default(), 64);
        let mut elements = chain.rest;
        elements.push(sink.upcast());
        bin.add_many(&elements)?;
        let mut prev = depay;
        for e in elements {
            prev.link(&e)?;
            prev = e;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_lines() {
        let l = play_launch(&[Codec::H264, Codec::Opus], 1000);
        assert!(l.starts_with("( appsrc name=src0 "));
        assert!(l.contains("rtph264pay name=pay0"));
        assert!(l.contains("appsrc name=src1"));
        assert!(l.contains("rtpopuspay name=pay1"));
        gst::init().unwrap();
        let r = record_launch(&["H264".into(), "PCMA".into()]).unwrap();
        assert_eq!(r, "( rtph264depay name=depay0 rtppcmadepay name=depay1 )");
        assert!(record_launch(&["AV1".into()]).is_err());
    }
}
