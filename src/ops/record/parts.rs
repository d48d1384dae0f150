//! The inside of a recording: its parts (one bin, muxer and file each) and how each track's
//! buffers are routed to them. Routing runs on the producers' threads, when they hand a buffer
//! over; every decision is taken under the recording's one state lock, and events are sent after
//! it is released. Nothing here blocks: appsrcs take buffers without waiting.

use super::*;
use crate::engine::producer::{admit, consumer_appsrc, Admit};
use crate::engine::templates;

/// Opus's usual pre-skip (312 samples at 48 kHz), which Matroska demuxers subtract from the
/// audio's timestamps.
const OPUS_CODEC_DELAY: gst::ClockTime = gst::ClockTime::from_useconds(6_500);

/// Sends EOS into track `i`'s input of `part`, once.
pub(super) fn end_input(part: &mut Part, i: usize) {
    if let (Some(src), false) = (&part.srcs[i], part.ended[i]) {
        part.ended[i] = true;
        let _ = src.end_of_stream();
    }
}

impl Shared {
    /// Creates the file for part `index` (a new name, never an existing file) and its bin in the
    /// pipeline, in the pipeline's state. Errors are reasons for people.
    pub(super) fn open_part(
        self: &Arc<Self>,
        st: &State,
        index: u32,
        origin: gst::ClockTime,
        first: Option<gst::ClockTime>,
    ) -> Result<Part, String> {
        let start_ms = now_ms();
        let ext = self.container.extension();
        let fields = self.fields(start_ms, None);
        let mut file = None;
        for dedup in std::iter::once(0).chain(2..1000) {
            let name = naming::file_name(
                &self.spec.template,
                &fields,
                self.part_number(index),
                dedup,
                ext,
            );
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(self.spec.dir.join(&name))
            {
                Ok(_) => {
                    file = Some(name);
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        let file = file.ok_or("no free file name")?;
        let path = self.spec.dir.join(&file);
        let srcs = match self.part_bin(st, index, &path) {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(format!("{e:#}"));
            }
        };
        let part = Part {
            index,
            caps: [0, 1].map(|i| srcs[i].as_ref().and(st.caps[i].clone())),
            srcs,
            ended: [false; 2],
            waiting_keyframe: false,
            file,
            start_ms,
            origin,
            first,
            end: None,
            bytes: 0,
        };
        // Without a sidecar the file is still described from its name; not worth failing for.
        if let Err(e) = listing::write_sidecar(&path, &self.sidecar(&part, &part.file, None)) {
            tracing::warn!(pipeline = %self.name, "could not write the sidecar: {e}");
        }
        Ok(part)
    }

    /// `appsrc ! record/<codec>.gst` per track into `record/<container>.gst`, added to the
    /// pipeline and started.
    fn part_bin(
        self: &Arc<Self>,
        st: &State,
        index: u32,
        path: &std::path::Path,
    ) -> anyhow::Result<[Option<gst_app::AppSrc>; 2]> {
        let bin = templates::record_writer(self.container.extension())?;
        bin.set_property("name", format!("part-{index}"));
        let mux = bin
            .by_name("mux")
            .ok_or_else(|| anyhow::anyhow!("no mux"))?;
        let sink = bin
            .by_name("sink")
            .ok_or_else(|| anyhow::anyhow!("no sink"))?;
        sink.set_property("location", path.to_string_lossy().as_ref());
        let mut srcs: [Option<gst_app::AppSrc>; 2] = [None, None];
        for (i, codec) in self.codecs.iter().enumerate() {
            let Some(codec) = *codec else { continue };
            let src = consumer_appsrc(TRACK_NAMES[i], &self.limits);
            src.set_caps(Some(&st.caps[i].clone().unwrap_or_else(|| codec.caps())));
            let input = templates::record_track(codec)?;
            bin.add_many([src.upcast_ref(), input.upcast_ref::<gst::Element>()])?;
            src.link(&input)?;
            let template = if i == VIDEO { "video_%u" } else { "audio_%u" };
            let pad = mux
                .request_pad_simple(template)
                .ok_or_else(|| anyhow::anyhow!("the muxer refused a {template} pad"))?;
            input
                .static_pad("src")
                .ok_or_else(|| anyhow::anyhow!("record/{}.gst has no src pad", codec.slug()))?
                .link(&pad)?;
            srcs[i] = Some(src);
        }
        // When EOS reaches the file sink the muxer has written everything: finalise the file,
        // away from this streaming thread (a bin cannot be stopped from inside itself).
        let weak = Arc::downgrade(self);
        let weak_bin = bin.downgrade();
        let sinkpad = sink
            .static_pad("sink")
            .ok_or_else(|| anyhow::anyhow!("file sink without pad"))?;
        sinkpad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            if info
                .event()
                .is_some_and(|e| e.type_() == gst::EventType::Eos)
            {
                if let Some(bin) = weak_bin.upgrade() {
                    let weak = weak.clone();
                    bin.call_async(move |bin| {
                        // Locked first: a sink prerolling elsewhere in the pipeline (a new part)
                        // makes the pipeline re-commit its state to every child, which would
                        // take this bin back up while it is being let go.
                        bin.set_locked_state(true);
                        let _ = bin.set_state(gst::State::Null);
                        if let Some(s) = weak.upgrade() {
                            s.finalize(index, bin);
                        }
                    });
                }
            }
            gst::PadProbeReturn::Ok
        });
        if let Some(p) = self.pipeline.upgrade() {
            p.add(&bin)?;
            bin.sync_state_with_parent()?;
        }
        Ok(srcs)
    }

    /// Attaches to the producers. The video producer first replays its cached GOP, which is
    /// skipped when audio must start with the video (`video_gated`); then a fresh keyframe is
    /// asked for.
    pub(super) fn attach(self: &Arc<Self>, producers: &[Option<Arc<Producer>>; 2]) {
        let mut links = Vec::new();
        for i in [VIDEO, AUDIO] {
            let Some(p) = &producers[i] else { continue };
            let weak = Arc::downgrade(self);
            let f: crate::engine::producer::BufferFn = Arc::new(move |caps, buf| {
                if let Some(s) = weak.upgrade() {
                    s.on_track(i, caps, buf);
                }
            });
            // The producer replays its cache inside `add_consumer_fn`, under its own lock, so
            // no live buffer can come in between: what arrives meanwhile is exactly the cache.
            lock(&self.state).replaying_cache = i == VIDEO;
            links.push(p.add_consumer_fn(f));
            lock(&self.state).replaying_cache = false;
        }
        *lock(&self.links) = links;
        if self.video_gated {
            if let Some(v) = &producers[VIDEO] {
                v.request_keyframe();
            }
        }
    }

    fn emit_all(&self, events: Vec<RecordEvent>) {
        for e in events {
            (self.on_event)(e);
        }
    }

    /// One buffer of track `i` from its producer.
    fn on_track(self: &Arc<Self>, i: usize, caps: Option<&gst::Caps>, buf: &gst::Buffer) {
        let mut events = Vec::new();
        let mut want_keyframe = false;
        let result = {
            let mut st = lock(&self.state);
            if st.failed.is_some() || st.closed {
                return;
            }
            if let Some(c) = caps {
                if st.caps[i].as_ref() != Some(c) {
                    st.caps[i] = Some(c.clone());
                }
            }
            if i == AUDIO && self.codecs[VIDEO].is_some() {
                st.held.push_back(buf.clone());
                self.release_audio(&mut st, false);
                Ok(())
            } else {
                let r = self.lead(&mut st, i, buf, &mut events, &mut want_keyframe);
                if i == VIDEO {
                    if let Some(t) = buf.dts().or(buf.pts()) {
                        st.video_pos = Some(st.video_pos.map_or(t, |v| v.max(t)));
                    }
                    self.release_audio(&mut st, false);
                }
                r
            }
        };
        self.emit_all(events);
        if want_keyframe {
            if let Some(v) = self.video_producer.upgrade() {
                v.request_keyframe();
            }
        }
        if let Err(reason) = result {
            // Failing detaches from the producers, which waits for the producer's lock: this
            // thread holds it (it is inside the producer's hand-over), so fail on another one.
            let s = self.clone();
            let spawned = std::thread::Builder::new()
                .name("record-fail".into())
                .spawn(move || s.fail(reason));
            if spawned.is_err() {
                tracing::error!(pipeline = %self.name, "no thread to stop a failed recording");
            }
        }
    }

    /// The leading track (video, or audio alone) decides where files start and are cut.
    fn lead(
        self: &Arc<Self>,
        st: &mut State,
        i: usize,
        buf: &gst::Buffer,
        events: &mut Vec<RecordEvent>,
        want_keyframe: &mut bool,
    ) -> Result<(), String> {
        let keyframe = i == AUDIO || !buf.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let Some(ts) = buf.dts().or(buf.pts()) else {
            return Ok(());
        };
        let replaying = st.replaying_cache;
        let Some(newest) = st.parts.last_mut() else {
            return Ok(());
        };
        match newest.first {
            None => {
                if !keyframe || (replaying && self.video_gated) {
                    return Ok(());
                }
                newest.first = Some(ts);
                tracing::debug!(pipeline = %self.name, part = newest.index, track = TRACK_NAMES[i], "the file's media starts");
                if i == AUDIO {
                    st.audio_part = newest.index;
                }
            }
            Some(first) => {
                let elapsed = Duration::from_nanos(ts.saturating_sub(first).nseconds());
                let due = self
                    .spec
                    .rotation
                    .is_some_and(|r| r.is_due(newest.bytes, elapsed));
                if due && keyframe {
                    self.cut(st, i, ts, events)?;
                } else if due {
                    *want_keyframe = true;
                }
            }
        }
        let index = st.parts.last().map_or(0, |p| p.index);
        self.push(st, index, i, buf, keyframe, want_keyframe);
        Ok(())
    }

    /// Starts part `next_index` at `ts`; the leading track `i` leaves the old part now, audio
    /// (when it follows video) when it reaches `ts`.
    fn cut(
        self: &Arc<Self>,
        st: &mut State,
        i: usize,
        ts: gst::ClockTime,
        events: &mut Vec<RecordEvent>,
    ) -> Result<(), String> {
        let index = st.next_index;
        st.next_index += 1;
        let part = self.open_part(st, index, ts, Some(ts))?;
        tracing::debug!(pipeline = %self.name, part = index, "rotating to a new part");
        events.push(RecordEvent::FileStarted {
            name: part.file.clone(),
        });
        if let Some(old) = st.parts.last_mut() {
            end_input(old, i);
        }
        if i == AUDIO {
            st.audio_part = index;
        }
        st.parts.push(part);
        Ok(())
    }

    /// Places one audio buffer (following video): in the newest part once it reaches that
    /// part's start, in the part audio is in until then, nowhere before the first start.
    fn route_audio(&self, st: &mut State, buf: &gst::Buffer) {
        let Some((newest, Some(start))) = st.parts.last().map(|p| (p.index, p.first)) else {
            return;
        };
        let ts = buf.pts().or(buf.dts()).unwrap_or(start);
        if st.audio_part != newest && self.joins(buf, ts, start) {
            for p in st.parts.iter_mut().filter(|p| p.index != newest) {
                end_input(p, AUDIO);
            }
            st.audio_part = newest;
        }
        if st.audio_part == 0 {
            return;
        }
        let mut unused = false;
        self.push(st, st.audio_part, AUDIO, buf, true, &mut unused);
    }

    /// Whether an audio buffer belongs to a part whose video starts at `start`. MP4 starts each
    /// track at its own first sample, so the buffer nearest `start` joins (off by at most half a
    /// frame). Matroska keeps the tracks' times, and a player starts at the earliest of them:
    /// audio must not start before the video, counting Opus's codec delay, which the demuxer
    /// takes off (Chrome refuses a WebM whose audio starts before its first video cue).
    fn joins(&self, buf: &gst::Buffer, pts: gst::ClockTime, start: gst::ClockTime) -> bool {
        if self.container == Container::Mp4 {
            return pts + buf.duration().unwrap_or_default() / 2 >= start;
        }
        let delay = if self.codecs[AUDIO] == Some(Codec::Opus) {
            OPUS_CODEC_DELAY
        } else {
            gst::ClockTime::ZERO
        };
        pts >= start + delay
    }

    /// Hands one buffer to part `index`'s input of track `i`, under the producer's own queue
    /// policy (a backed-up video input is cut back to the next keyframe, audio just drops).
    fn push(
        &self,
        st: &mut State,
        index: u32,
        i: usize,
        buf: &gst::Buffer,
        keyframe: bool,
        want_keyframe: &mut bool,
    ) {
        let caps = st.caps[i].clone();
        let Some(part) = st.parts.iter_mut().find(|p| p.index == index) else {
            return;
        };
        let Some(src) = part.srcs[i].as_ref().filter(|_| !part.ended[i]) else {
            return;
        };
        if caps.is_some() && part.caps[i] != caps {
            src.set_caps(caps.as_ref());
            part.caps[i] = caps;
        }
        let queued = src.current_level_bytes();
        let limit = self.limits.consumer_queue_bytes;
        let mut audio_waiting = false;
        let waiting = if i == VIDEO {
            &mut part.waiting_keyframe
        } else {
            &mut audio_waiting
        };
        match admit(waiting, i == VIDEO, keyframe, queued, limit) {
            Admit::Push => {
                let _ = src.push_buffer(buf.clone());
                part.bytes += buf.size() as u64;
                if let Some(pts) = buf.pts().or(buf.dts()) {
                    let end = pts + buf.duration().unwrap_or_default();
                    part.end = Some(part.end.map_or(end, |e| e.max(end)));
                }
            }
            Admit::Drop => *want_keyframe |= i == VIDEO,
        }
    }

    /// Places held audio: what video has passed, what is older than [`MAX_AUDIO_HOLD`] behind
    /// the newest audio, or (`all`) everything.
    pub(super) fn release_audio(&self, st: &mut State, all: bool) {
        let hold = gst::ClockTime::from_nseconds(MAX_AUDIO_HOLD.as_nanos() as u64);
        let newest = st.held.back().and_then(|b| b.pts());
        while let Some(front) = st.held.front() {
            let due = match front.pts() {
                None => true,
                Some(p) => {
                    all || st.video_pos.is_some_and(|v| p <= v)
                        || newest.is_some_and(|n| n.saturating_sub(p) > hold)
                }
            };
            if !due {
                break;
            }
            let Some(b) = st.held.pop_front() else { break };
            self.route_audio(st, &b);
        }
    }

    /// Finalises part `index` once its writer is stopped: renames it with its end time, writes
    /// the final sidecar and reports it.
    pub(super) fn finalize(&self, index: u32, bin: &gst::Bin) {
        if let Some(p) = self.pipeline.upgrade() {
            let _ = p.remove(bin);
        }
        let Some(part) = ({
            let mut st = lock(&self.state);
            let pos = st.parts.iter().position(|p| p.index == index);
            st.finishing += usize::from(pos.is_some());
            pos.map(|pos| st.parts.remove(pos))
        }) else {
            return;
        };
        let dir = &self.spec.dir;
        let interim = dir.join(&part.file);
        // A part that got no media (stopped before the first keyframe) is kept and reported
        // like any other, so every FileStarted has its FileFinished.
        let duration = match (part.first, part.end) {
            (Some(first), Some(end)) => Duration::from_nanos(end.saturating_sub(first).nseconds()),
            _ => Duration::ZERO,
        };
        let end_ms = part.start_ms
            + part
                .end
                .map_or(0, |end| end.saturating_sub(part.origin).mseconds());
        let name = self.final_name(&part, end_ms);
        let path = dir.join(&name);
        if name != part.file {
            if let Err(e) = std::fs::rename(&interim, &path) {
                tracing::warn!(pipeline = %self.name, "could not rename {}: {e}", part.file);
            }
            let _ = std::fs::remove_file(listing::sidecar_path(&interim));
        }
        let sidecar = self.sidecar(&part, &name, Some((end_ms, duration)));
        if let Err(e) = listing::write_sidecar(&path, &sidecar) {
            tracing::warn!(pipeline = %self.name, "could not write the sidecar: {e}");
        }
        {
            let mut st = lock(&self.state);
            st.finished.push(FinishedFile {
                name: name.clone(),
                bytes: part.bytes,
                duration,
            });
            st.finishing -= 1;
        }
        tracing::info!(pipeline = %self.name, file = %name, ?duration, "record file finished");
        let event = RecordEvent::FileFinished {
            name,
            bytes: part.bytes,
            duration,
        };
        (self.on_event)(event);
        self.changed.notify_all();
    }

    /// The finished name of `part`: with its end time when the template has one, and a free
    /// name in the folder (the interim one is free by construction).
    fn final_name(&self, part: &Part, end_ms: u64) -> String {
        if !naming::has_end_time(&self.spec.template) {
            return part.file.clone();
        }
        let fields = self.fields(part.start_ms, Some(end_ms));
        let ext = self.container.extension();
        for dedup in std::iter::once(0).chain(2..1000) {
            let name = naming::file_name(
                &self.spec.template,
                &fields,
                self.part_number(part.index),
                dedup,
                ext,
            );
            if name == part.file || std::fs::symlink_metadata(self.spec.dir.join(&name)).is_err() {
                return name;
            }
        }
        part.file.clone()
    }
}
