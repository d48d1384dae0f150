//! A file played as a stream: `filesrc` (or `souphttpsrc` on a presigned S3 URL, which reads
//! with range requests as the demuxer seeks) into `parsebin`, whose tracks become the stream's.
//! H.264, AAC, Opus and VP8 pass through; MP3 is decoded and encoded to Opus. Every other track
//! is left out.
//!
//! Files are paced at their own rate by synchronised sinks. Their times (from zero) are moved
//! onto the server's clock with a pad offset fixed when the first track appears, so what the
//! producers get means the same as a live source's. A loop plays the file again in a new
//! pipeline whose offset continues where the last one ended: timestamps keep rising and no
//! output sees a jump.

use crate::engine::media::Codec;
use crate::engine::pipeline::{attach_chain, discard_pad, shared_clock, PipelineGuard};
use crate::engine::producer::{track_sink, Stamping};
use crate::engine::{templates, StreamMedia};
use gst::prelude::*;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::mpsc;

/// Where the file is read from.
#[derive(Debug, Clone)]
pub enum Location {
    /// A local file.
    File(std::path::PathBuf),
    /// An HTTP(S) URL (a presigned S3 object).
    Http(String),
}

/// How one playing of the file ended.
#[derive(Debug)]
pub enum Ended {
    /// Every track reached its end; the running time the last one ended at.
    Eos(gst::ClockTime),
    /// The pipeline failed (no such object, not a media file).
    Error(String),
}

/// Time between building a pipeline and its first frame's due time: what demuxing the start of
/// a file takes, so the first frames are not late.
const START_MARGIN: gst::ClockTime = gst::ClockTime::from_mseconds(300);

/// One playing of the file. `start`: the running time its first frame is due at (the previous
/// loop's end), or `None` for "now". `ended` hears how it ends.
pub fn build(
    location: &Location,
    media: &Arc<StreamMedia>,
    start: Option<gst::ClockTime>,
    ended: mpsc::Sender<Ended>,
) -> anyhow::Result<PipelineGuard> {
    let mut guard = PipelineGuard::new(&format!("{}-vod", media.name()), media.pipelines());
    let pipeline = guard.pipeline().clone();
    let src = match location {
        Location::File(p) => gst::ElementFactory::make("filesrc")
            .property("location", p.to_string_lossy().as_ref())
            .build()?,
        Location::Http(url) => gst::ElementFactory::make("souphttpsrc")
            .property("location", url.as_str())
            .property("timeout", 10u32)
            .property("retries", 2i32)
            .build()?,
    };
    let parse = gst::ElementFactory::make("parsebin").build()?;
    pipeline.add_many([&src, &parse])?;
    src.link(&parse)?;
    let offset: Arc<OnceLock<i64>> = Arc::default();
    let tracks = Arc::new(Tracks {
        sinks: AtomicUsize::new(0),
        at_end: AtomicUsize::new(0),
        end: AtomicU64::new(0),
        ended: Mutex::new(Some(ended.clone())),
    });
    let weak_media = Arc::downgrade(media);
    let weak_pipeline = pipeline.downgrade();
    let t = tracks.clone();
    let first_pad = std::sync::atomic::AtomicBool::new(true);
    parse.connect_pad_added(move |_, pad| {
        let (Some(media), Some(pipeline)) = (weak_media.upgrade(), weak_pipeline.upgrade()) else {
            return;
        };
        // One offset for every track of this playing, fixed by the first.
        let off = *offset.get_or_init(|| {
            let due = start.unwrap_or_else(|| shared_clock().now_running() + START_MARGIN);
            due.nseconds() as i64
        });
        pad.set_offset(off);
        // parsebin exposes a file's tracks together, but says nothing when it has: the tracks
        // are taken as complete shortly after the first.
        if first_pad.swap(false, Ordering::SeqCst) {
            let weak = Arc::downgrade(&media);
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(200));
                if let Some(m) = weak.upgrade() {
                    m.tracks_complete();
                }
            });
        }
        match link_track(&pipeline, pad, &media, &t) {
            Ok(true) => {}
            Ok(false) => {
                let _ = discard_pad(&pipeline, pad);
            }
            Err(e) => {
                tracing::warn!(stream = %crate::redact::Escaped(media.name()), "file track not used: {e:#}");
                let _ = discard_pad(&pipeline, pad);
            }
        }
    });
    let weak_media = Arc::downgrade(media);
    parse.connect("no-more-pads", false, move |_| {
        if let Some(m) = weak_media.upgrade() {
            m.tracks_complete();
        }
        None
    });
    guard.watch_bus(move |e| {
        let _ = ended.try_send(Ended::Error(e.to_string()));
    });
    pipeline.set_state(gst::State::Playing)?;
    Ok(guard)
}

/// The playing's tracks: how many reached their end, and the latest running time one ended at.
struct Tracks {
    sinks: AtomicUsize,
    at_end: AtomicUsize,
    end: AtomicU64,
    ended: Mutex<Option<mpsc::Sender<Ended>>>,
}

impl Tracks {
    fn track_ended(&self) {
        let done = self.at_end.fetch_add(1, Ordering::SeqCst) + 1;
        if done >= self.sinks.load(Ordering::SeqCst) {
            if let Some(tx) = crate::sync::lock(&self.ended).take() {
                let end = gst::ClockTime::from_nseconds(self.end.load(Ordering::SeqCst));
                let _ = tx.try_send(Ended::Eos(end));
            }
        }
    }
}

/// The chain for a demuxed track's caps: its engine codec and the elements up to its canonical
/// caps; `None` for a track we leave out.
fn chain_for(caps: &gst::CapsRef) -> anyhow::Result<Option<(Codec, Vec<gst::Element>)>> {
    let Some(s) = caps.structure(0) else {
        return Ok(None);
    };
    let make = |f: &str| gst::ElementFactory::make(f).build();
    let chain = match s.name().as_str() {
        "video/x-h264" => (
            Codec::H264,
            vec![gst::ElementFactory::make("h264parse")
                .property("config-interval", -1i32)
                .build()?],
        ),
        "video/x-h265" => (
            Codec::H265,
            vec![gst::ElementFactory::make("h265parse")
                .property("config-interval", -1i32)
                .build()?],
        ),
        "video/x-vp8" => (Codec::Vp8, vec![]),
        "audio/x-opus" => (Codec::Opus, vec![]),
        "audio/mpeg" if s.get::<i32>("mpegversion").ok() == Some(1) => (
            Codec::Opus,
            std::iter::once(templates::mp3_decoder()?.upcast())
                .chain(templates::raw_to_opus()?)
                .collect(),
        ),
        "audio/mpeg" => (Codec::Aac, vec![make("aacparse")?]),
        _ => return Ok(None),
    };
    Ok(Some(chain))
}

/// Links one demuxed track into the stream; `false` when it is left out.
fn link_track(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    media: &Arc<StreamMedia>,
    tracks: &Arc<Tracks>,
) -> anyhow::Result<bool> {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let Some((codec, mut chain)) = chain_for(&caps)? else {
        tracing::debug!(caps = %caps, "file track left out");
        return Ok(false);
    };
    // One track of each kind (a second language or angle is left out), in the codec the
    // stream has (a loop of the same file always has it).
    if linked_kind(pipeline, codec.is_video())
        || media
            .track(codec.is_video())
            .is_some_and(|p| p.codec() != codec)
    {
        return Ok(false);
    }
    let producer = media.add_track(codec);
    // A queue per track: a sink waiting for its frame's time must not hold the demuxer back
    // from the other track (FLV shows its tracks only as their first frames come).
    chain.insert(
        0,
        gst::ElementFactory::make("queue")
            .property("max-size-time", 2_000_000_000u64)
            .property("max-size-buffers", 0u32)
            .property("max-size-bytes", 0u32)
            .build()?,
    );
    chain.push(
        gst::ElementFactory::make("capsfilter")
            .property("caps", codec.caps())
            .build()?,
    );
    let kind = if codec.is_video() { "video" } else { "audio" };
    let sink = track_sink(&format!("{kind}-sink"), &producer, Stamping::default(), 8);
    // Paced at the file's own rate.
    sink.set_property("sync", true);
    tracks.sinks.fetch_add(1, Ordering::SeqCst);
    if let Some(sinkpad) = sink.static_pad("sink") {
        let t = tracks.clone();
        sinkpad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
            move |pad, info| {
                match &info.data {
                    Some(gst::PadProbeData::Buffer(b)) => {
                        let seg = pad
                            .sticky_event::<gst::event::Segment>(0)
                            .map(|e| e.segment().clone());
                        let end = b.pts().map(|p| p + b.duration().unwrap_or_default());
                        if let (Some(seg), Some(end)) = (seg, end) {
                            if let Some(seg) = seg.downcast_ref::<gst::ClockTime>() {
                                if let Some(rt) = seg.to_running_time(end) {
                                    t.end.fetch_max(rt.nseconds(), Ordering::SeqCst);
                                }
                            }
                        }
                    }
                    Some(gst::PadProbeData::Event(ev)) if ev.type_() == gst::EventType::Eos => {
                        t.track_ended();
                    }
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            },
        );
    }
    chain.push(sink.upcast());
    attach_chain(pipeline, pad, &chain)?;
    Ok(true)
}

/// Whether this playing already feeds a video (or audio) track.
fn linked_kind(pipeline: &gst::Pipeline, video: bool) -> bool {
    pipeline
        .by_name(if video { "video-sink" } else { "audio-sink" })
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_we_take() {
        gst::init().unwrap();
        let codec = |c: &str| {
            chain_for(&gst::Caps::from_str(c).unwrap())
                .unwrap()
                .map(|(c, _)| c)
        };
        use std::str::FromStr;
        assert_eq!(codec("video/x-h264,stream-format=avc"), Some(Codec::H264));
        assert_eq!(codec("audio/mpeg,mpegversion=4"), Some(Codec::Aac));
        assert_eq!(codec("audio/mpeg,mpegversion=1,layer=3"), Some(Codec::Opus));
        assert_eq!(codec("audio/x-opus"), Some(Codec::Opus));
        assert_eq!(codec("video/x-vp8"), Some(Codec::Vp8));
        assert_eq!(codec("video/x-h265,stream-format=hvc1"), Some(Codec::H265));
        assert_eq!(codec("video/x-av1"), None);
        assert_eq!(codec("subpicture/x-dvd"), None);
    }
}
