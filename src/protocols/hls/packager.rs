//! The HLS packager of one stream and container: a shared output that muxes the stream's H.264 and
//! AAC once (fMP4 with `isofmp4mux`, cut into fragments at keyframes and into LL-HLS parts in
//! between; or MPEG-TS cut at keyframes) and hands every part to the rendition's [`Channel`].
//! Video passes through; VP8 and Opus reach it through the stream's shared bridges.
//!
//! The muxer is a pipeline of its own, made afresh when the publisher changes (a resume after a
//! drop): its new init section is what the playlist marks as a discontinuity. It starts at a video
//! keyframe, with audio from that keyframe's time on, so both tracks begin together.

use super::playlist::Part;
use super::Channel;
use crate::engine::bridge::Bridge;
use crate::engine::media::Codec;
use crate::engine::pipeline::{shared_clock, PipelineGuard};
use crate::engine::producer::{consumer_appsrc, forward_keyframe_requests, ConsumerLink, Producer};
use crate::engine::{templates, SharedOutput, StreamMedia};
use crate::sync::lock;
use bytes::{Bytes, BytesMut};
use gst::prelude::*;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

/// A stream's packager for one container; dropping it stops the muxer.
pub struct Packager {
    _links: Vec<ConsumerLink>,
    _bridges: Vec<Arc<Bridge>>,
    _state: Arc<Mutex<State>>,
}

impl SharedOutput for Packager {
    fn kind(&self) -> &'static str {
        "hls"
    }
}

/// Where the muxer is.
struct State {
    channel: Arc<Channel>,
    media: Weak<StreamMedia>,
    video: Option<Arc<Producer>>,
    has_audio: bool,
    mux: Option<Mux>,
    /// The stream's publisher generation the muxer was made for.
    generation: u64,
    /// The producer is replaying its cached GOP (inside `add_consumer_fn`): with audio it is
    /// skipped, as audio from that far back is gone.
    replaying: bool,
    /// Running time of the last keyframe that started a TS segment.
    segment_start: Option<gst::ClockTime>,
    /// The stream declares video that has not come (an RTMP publisher with sound only): after
    /// [`NO_VIDEO_AFTER`] of audio the muxer runs without it, until a picture arrives.
    audio_only: bool,
    /// The first audio time seen while waiting for video.
    first_audio: Option<gst::ClockTime>,
    /// The last video decode time seen.
    last_dts: Option<gst::ClockTime>,
    /// The runtime the muxer's bus watch runs on (muxers are made on streaming threads).
    rt: tokio::runtime::Handle,
}

/// One muxer pipeline.
struct Mux {
    _guard: PipelineGuard,
    video: Option<gst_app::AppSrc>,
    audio: Option<gst_app::AppSrc>,
    video_caps: Option<gst::Caps>,
    audio_caps: Option<gst::Caps>,
    /// Running time of its first keyframe; earlier audio is dropped.
    start: gst::ClockTime,
}

impl Packager {
    /// Starts packaging `media` into `channel`.
    pub fn start(media: &Arc<StreamMedia>, channel: Arc<Channel>) -> anyhow::Result<Self> {
        let mut bridges = Vec::new();
        let mut track = |codec: Codec| -> anyhow::Result<Option<Arc<Producer>>> {
            if media.track(codec.is_video()).is_none() {
                return Ok(None);
            }
            let (p, b) = media.track_in(codec, false)?;
            bridges.extend(b);
            Ok(Some(p))
        };
        let video = track(Codec::H264)?;
        let audio = track(Codec::Aac)?;
        anyhow::ensure!(
            video.is_some() || audio.is_some(),
            "the stream has no media"
        );
        let state = Arc::new(Mutex::new(State {
            channel,
            media: Arc::downgrade(media),
            video: video.clone(),
            has_audio: audio.is_some(),
            mux: None,
            generation: media.generation(),
            replaying: false,
            segment_start: None,
            last_dts: None,
            audio_only: false,
            first_audio: None,
            rt: tokio::runtime::Handle::try_current()?,
        }));
        let mut links = Vec::new();
        if let Some(v) = &video {
            let st = state.clone();
            lock(&state).replaying = true;
            links.push(v.add_consumer_fn(Arc::new(move |caps, b| on_video(&st, caps, b))));
            let mut s = lock(&state);
            s.replaying = false;
            if s.mux.is_none() {
                drop(s);
                v.request_keyframe();
            }
        }
        if let Some(a) = &audio {
            let st = state.clone();
            links.push(a.add_consumer_fn(Arc::new(move |caps, b| on_audio(&st, caps, b))));
        }
        Ok(Self {
            _links: links,
            _bridges: bridges,
            _state: state,
        })
    }
}

/// How long audio waits for a declared video track before it is packaged alone.
const NO_VIDEO_AFTER: Duration = Duration::from_secs(2);

fn on_video(state: &Arc<Mutex<State>>, caps: Option<&gst::Caps>, buffer: &gst::Buffer) {
    let mut st = lock(state);
    if st.replaying && st.has_audio {
        return;
    }
    let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
    let Some(pts) = buffer.pts() else { return };
    // The muxer needs decode times. A stream's first frames may have none (decode time before
    // the ingest's start, with B-frames): the muxer never starts on such a frame, and later ones
    // take the last decode time seen.
    let mut fixed = None;
    match (buffer.dts(), st.last_dts) {
        (Some(d), _) => st.last_dts = Some(d),
        (None, Some(d)) if st.mux.is_some() => {
            let mut b = buffer.copy();
            b.make_mut().set_dts(d);
            fixed = Some(b);
        }
        // A source that never reorders (an RTSP camera's depayloaded H.264 carries presentation
        // times only): decode time is presentation time.
        (None, _) if st.video.as_ref().is_some_and(|v| !v.has_reordering()) => {
            let mut b = buffer.copy();
            b.make_mut().set_dts(pts);
            st.last_dts = Some(pts);
            fixed = Some(b);
        }
        (None, _) => return,
    }
    let buffer = fixed.as_ref().unwrap_or(buffer);
    if keyframe {
        let generation = st.media.upgrade().map(|m| m.generation()).unwrap_or(0);
        if st.mux.is_none() || generation != st.generation || st.audio_only {
            st.audio_only = false;
            st.generation = generation;
            match build_mux(state, &st, pts) {
                Ok(m) => {
                    st.mux = Some(m);
                    st.segment_start = None;
                }
                Err(e) => {
                    tracing::warn!(stream = %crate::redact::Escaped(&st.channel.name), "HLS muxer not started: {e:#}");
                    st.mux = None;
                    return;
                }
            }
        }
    }
    let ts = st.channel.names.ext == "ts";
    let target = st.channel.shape.target;
    let mut cut = false;
    if ts && keyframe {
        cut = st.segment_start.is_none_or(|s| {
            Duration::from(pts.saturating_sub(s)) + Duration::from_millis(50) >= target
        });
        if cut {
            st.segment_start = Some(pts);
        }
    } else if ts
        && st
            .segment_start
            .is_some_and(|s| Duration::from(pts.saturating_sub(s)) >= target)
    {
        // Due for a cut: ask the source for a keyframe (the producer paces such requests).
        if let Some(v) = &st.video {
            v.request_keyframe();
        }
    }
    let Some(mux) = st.mux.as_mut() else { return };
    let Some(src) = mux.video.clone() else { return };
    if let Some(c) = caps.filter(|c| mux.video_caps.as_ref() != Some(*c)) {
        src.set_caps(Some(c));
        mux.video_caps = Some(c.clone());
    }
    if cut {
        // The TS muxer passes this on in order, just before the keyframe's packets, with the
        // program tables repeated: that is where the segment is cut.
        let ev = gst_video::DownstreamForceKeyUnitEvent::builder()
            .running_time(pts)
            .all_headers(true)
            .build();
        src.send_event(ev);
    }
    let _ = src.push_buffer(buffer.clone());
}

fn on_audio(state: &Arc<Mutex<State>>, caps: Option<&gst::Caps>, buffer: &gst::Buffer) {
    let mut st = lock(state);
    if st.mux.is_none() && st.video.is_some() && !st.audio_only {
        if let Some(pts) = buffer.pts() {
            let first = *st.first_audio.get_or_insert(pts);
            if Duration::from(pts.saturating_sub(first)) >= NO_VIDEO_AFTER {
                st.audio_only = true;
            }
        }
    }
    let has_video = st.video.is_some() && !st.audio_only;
    if st.mux.is_none() && !has_video {
        // Audio only: the muxer starts with the first buffer.
        let Some(pts) = buffer.pts() else { return };
        match build_mux(state, &st, pts) {
            Ok(m) => st.mux = Some(m),
            Err(e) => {
                tracing::warn!(stream = %crate::redact::Escaped(&st.channel.name), "HLS muxer not started: {e:#}");
                return;
            }
        }
    }
    let Some(mux) = st.mux.as_mut() else { return };
    let Some(src) = mux.audio.clone() else { return };
    if buffer.pts().is_some_and(|p| p < mux.start) {
        return;
    }
    if let Some(c) = caps.filter(|c| mux.audio_caps.as_ref() != Some(*c)) {
        src.set_caps(Some(c));
        mux.audio_caps = Some(c.clone());
    }
    let _ = src.push_buffer(buffer.clone());
}

/// Builds a muxer pipeline starting at running time `start`.
fn build_mux(state: &Arc<Mutex<State>>, st: &State, start: gst::ClockTime) -> anyhow::Result<Mux> {
    let _rt = st.rt.enter();
    let channel = &st.channel;
    let container = if channel.names.ext == "ts" {
        "ts"
    } else {
        "fmp4"
    };
    let media = st
        .media
        .upgrade()
        .ok_or_else(|| anyhow::anyhow!("stream ended"))?;
    let mut guard = PipelineGuard::new(
        &format!("{}-hls-{container}", channel.name),
        media.pipelines(),
    );
    let pipeline = guard.pipeline().clone();
    let muxer = templates::hls_muxer(container)?;
    let mux = muxer
        .by_name("mux")
        .ok_or_else(|| anyhow::anyhow!("no mux"))?;
    if container == "fmp4" {
        let shape = channel.shape;
        mux.set_property("fragment-duration", shape.target.as_nanos() as u64);
        if let Some(p) = shape.part_target {
            mux.set_property("chunk-duration", p.as_nanos() as u64);
        }
        // Waits this long for a track that is late (the audio bridge) before muxing without it.
        mux.set_property("latency", gst::ClockTime::from_mseconds(300));
    }
    let sink = muxer
        .by_name("sink")
        .and_downcast::<gst_app::AppSink>()
        .ok_or_else(|| anyhow::anyhow!("no app sink"))?;
    sink.set_property("sync", false);
    sink.set_property("async", false);
    sink.set_property("enable-last-sample", false);
    sink.set_property("buffer-list", true);
    pipeline.add(&muxer)?;
    let limits = media.limits();
    let mut inputs = Vec::new();
    for (codec, present) in [
        (Codec::H264, st.video.is_some() && !st.audio_only),
        (Codec::Aac, st.has_audio),
    ] {
        if !present {
            inputs.push(None);
            continue;
        }
        let src = consumer_appsrc(codec.slug(), &limits);
        let prep = templates::hls_track(container, codec)?;
        pipeline.add_many([src.upcast_ref::<gst::Element>(), prep.upcast_ref()])?;
        src.link(&prep)?;
        // The muxer sits in its fragment's bin: linking elements (not pads) requests its pad and
        // ghosts it out of the bin.
        prep.link(&mux)?;
        if codec.is_video() {
            if let Some(v) = &st.video {
                forward_keyframe_requests(&src, v);
            }
        }
        inputs.push(Some(src));
    }
    let output = Output::new(channel.clone(), container == "ts");
    if let Some(pad) = sink.static_pad("sink") {
        let out = output.clone();
        pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            if let Some(gst::PadProbeData::Event(ev)) = &info.data {
                if let Ok(fku) = gst_video::DownstreamForceKeyUnitEvent::parse(ev) {
                    out.cut(fku.running_time);
                }
            }
            gst::PadProbeReturn::Ok
        });
    }
    let weak_mux = mux.downgrade();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                output.sample(&sample, weak_mux.upgrade().as_ref());
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let weak_state = Arc::downgrade(state);
    guard.watch_bus(move |e| {
        // A muxer that fails is made afresh at the next keyframe.
        tracing::warn!("HLS muxer failed: {e}");
        if let Some(s) = weak_state.upgrade() {
            lock(&s).mux = None;
        }
    });
    pipeline.set_state(gst::State::Playing)?;
    tracing::debug!(stream = %crate::redact::Escaped(&channel.name), container, "HLS muxer started");
    let mut inputs = inputs.into_iter();
    Ok(Mux {
        _guard: guard,
        video: inputs.next().flatten(),
        audio: inputs.next().flatten(),
        video_caps: None,
        audio_caps: None,
        start,
    })
}

/// The muxer's output side: turns its buffers into init sections and parts.
#[derive(Clone)]
struct Output(Arc<Mutex<OutState>>);

struct OutState {
    channel: Arc<Channel>,
    ts: bool,
    /// TS: bytes of the segment being made, and when it started.
    pending: BytesMut,
    started: Option<gst::ClockTime>,
    /// TS: a cut was signalled at this running time; the next buffer starts a segment.
    cut_at: Option<gst::ClockTime>,
    has_init: bool,
}

impl Output {
    fn new(channel: Arc<Channel>, ts: bool) -> Self {
        Self(Arc::new(Mutex::new(OutState {
            channel,
            ts,
            pending: BytesMut::new(),
            started: None,
            cut_at: None,
            has_init: false,
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OutState> {
        match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn cut(&self, at: Option<gst::ClockTime>) {
        let mut st = self.lock();
        if st.ts {
            st.cut_at = at.or(Some(gst::ClockTime::ZERO));
        }
    }

    fn sample(&self, sample: &gst::Sample, mux: Option<&gst::Element>) {
        let buffers: Vec<gst::Buffer> = match (sample.buffer_list(), sample.buffer()) {
            (Some(list), _) => list.iter_owned().collect(),
            (None, Some(b)) => vec![b.to_owned()],
            _ => return,
        };
        let mut st = self.lock();
        if st.ts {
            st.ts_buffers(&buffers, mux);
        } else {
            st.fmp4_buffers(&buffers, mux);
        }
    }
}

impl OutState {
    fn fmp4_buffers(&mut self, buffers: &[gst::Buffer], mux: Option<&gst::Element>) {
        let mut rest = buffers;
        if let Some(first) = rest.first() {
            let f = first.flags();
            if f.contains(gst::BufferFlags::HEADER) && f.contains(gst::BufferFlags::DISCONT) {
                let init = bytes_of(std::slice::from_ref(first));
                let (codecs, size) = describe(mux);
                self.channel.update(|t| {
                    t.set_init(init);
                    t.codecs = codecs.or(t.codecs.take());
                    t.resolution = size.or(t.resolution);
                });
                self.has_init = true;
                rest = &rest[1..];
            }
        }
        let Some(moof) = rest.first() else { return };
        if !self.has_init {
            return;
        }
        let starts_segment = !moof.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let part = Part {
            data: bytes_of(rest),
            duration: moof.duration().map(Duration::from).unwrap_or_default(),
            independent: starts_segment,
        };
        let date = moof.pts().map(wall_clock);
        self.channel
            .update(|t| t.push_part(part, starts_segment, date));
    }

    fn ts_buffers(&mut self, buffers: &[gst::Buffer], mux: Option<&gst::Element>) {
        if !self.has_init {
            let (codecs, size) = describe(mux);
            self.channel.update(|t| {
                // MPEG-TS has no init section; an empty one marks where a muxer began.
                t.set_init(Bytes::new());
                t.codecs = codecs.or(t.codecs.take());
                t.resolution = size.or(t.resolution);
            });
            self.has_init = true;
        }
        if let Some(at) = self.cut_at.take() {
            if let Some(start) = self.started {
                let data = std::mem::take(&mut self.pending).freeze();
                let part = Part {
                    data,
                    duration: at.saturating_sub(start).into(),
                    independent: true,
                };
                let date = Some(wall_clock(start));
                self.channel.update(|t| {
                    t.push_part(part, true, date);
                    t.close();
                });
            }
            self.pending.clear();
            self.started = Some(at);
        }
        if self.started.is_none() {
            return; // before the first cut: not decodable on its own
        }
        for b in buffers {
            if let Ok(map) = b.map_readable() {
                self.pending.extend_from_slice(&map);
            }
        }
        // A source that stops sending keyframes must not grow a segment for ever.
        if self.pending.len() > 64 * 1024 * 1024 {
            self.pending.clear();
            self.started = None;
        }
    }
}

/// The buffers' bytes, as one piece.
fn bytes_of(buffers: &[gst::Buffer]) -> Bytes {
    let mut out = BytesMut::with_capacity(buffers.iter().map(|b| b.size()).sum());
    for b in buffers {
        if let Ok(map) = b.map_readable() {
            out.extend_from_slice(&map);
        }
    }
    out.freeze()
}

/// The wall-clock time of a running time on the shared clock.
fn wall_clock(t: gst::ClockTime) -> SystemTime {
    let now = shared_clock().now_running();
    let ago = Duration::from(now.saturating_sub(t));
    SystemTime::now() - ago
}

/// RFC 6381 codecs and the picture size, from the muxer's negotiated inputs.
fn describe(mux: Option<&gst::Element>) -> (Option<String>, Option<(u32, u32)>) {
    let Some(mux) = mux else {
        return (None, None);
    };
    let mut codecs = Vec::new();
    let mut size = None;
    for pad in mux.sink_pads() {
        let Some(caps) = pad.current_caps() else {
            continue;
        };
        if let Ok(c) = gst_pbutils::functions::codec_utils_caps_get_mime_codec(&caps) {
            // Byte-stream H.264 (MPEG-TS) has no avcC to read the profile from: spell it from the
            // parser's profile and level.
            let c = match c.as_str() {
                "avc1" => caps
                    .structure(0)
                    .and_then(avc1_from_caps)
                    .unwrap_or_default(),
                _ => c.to_string(),
            };
            if !c.is_empty() {
                codecs.push(c);
            }
        }
        if let Some(s) = caps.structure(0) {
            if let (Ok(w), Ok(h)) = (s.get::<i32>("width"), s.get::<i32>("height")) {
                size = Some((w.max(0) as u32, h.max(0) as u32));
            }
        }
    }
    // Video first, as players expect.
    codecs.sort_by_key(|c| !c.starts_with("avc"));
    ((!codecs.is_empty()).then(|| codecs.join(",")), size)
}

/// `avc1.PPCCLL` from `h264parse`'s `profile` and `level` fields.
fn avc1_from_caps(s: &gst::StructureRef) -> Option<String> {
    let (idc, constraints) = match s.get::<&str>("profile").ok()? {
        "constrained-baseline" => (66, 0xC0),
        "baseline" => (66, 0x80),
        "main" => (77, 0x40),
        "extended" => (88, 0x00),
        "high" => (100, 0x00),
        "constrained-high" => (100, 0x0C),
        "progressive-high" => (100, 0x08),
        "high-10" => (110, 0x00),
        "high-4:2:2" => (122, 0x00),
        "high-4:4:4" => (244, 0x00),
        _ => return None,
    };
    let level: f64 = s.get::<&str>("level").ok()?.parse().ok()?;
    Some(format!(
        "avc1.{idc:02X}{constraints:02X}{:02X}",
        (level * 10.0).round() as u32
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn avc1_codec_from_profile_and_level() {
        gst::init().unwrap();
        let caps = gst::Caps::builder("video/x-h264")
            .field("profile", "high")
            .field("level", "3.1")
            .build();
        assert_eq!(
            super::avc1_from_caps(caps.structure(0).unwrap()).as_deref(),
            Some("avc1.64001F")
        );
    }
}
