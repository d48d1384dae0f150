//! Mixers (MCU): an operation that consumes streams and produces a new one. Each mixer is a job
//! of the engine (kind `mixer`, named after its `mixer://NAME` URI) whose output is published
//! through the engine's seam like any source, so it plays over WebRTC, WHEP and RTMP, can be
//! recorded and pushed. Inputs come from the streams' shared decoders (a stream is decoded once
//! however many mixers show it). The picture follows a layout file (see [`layout`]), reflowed when
//! inputs come and go or the active speaker changes (see [`speaker`]).
//!
//! In MCU mode a participant also gets a "minus one" stream: the same picture, with every voice
//! but their own (WCS names it `room-<login>room`). Its video is the mixer's own video track,
//! forwarded buffer by buffer without a pipeline; only its audio mix is its own.

pub mod auto;
mod graph;
pub mod layout;
pub mod speaker;

use crate::engine::media::Codec;
use crate::engine::producer::{ConsumerLink, Producer};
use crate::engine::{
    pipeline::PipelineGuard, Engine, EngineError, EngineEvent, MediaEvent, MediaNotice,
    MediaRequest, PublishHandle, PublishSpec, WeakEngine, MAILBOX_CAPACITY,
};
use crate::ops::decoded::{Decoded, SampleFn, Subscription};
use crate::sync::lock;
pub use graph::Picture;
use graph::{AudioBranch, Graph, TileBranch};
use gst::prelude::*;
use layout::{InputDesc, Layout};
use serde_json::{json, Value};
use speaker::{SpeakerParams, SpeakerTracker};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The engine's job kind for mixers.
pub const KIND: &str = "mixer";

/// What a mixer is asked to be.
#[derive(Debug, Clone)]
pub struct MixerSpec {
    /// Its name (`mixer://NAME`).
    pub name: String,
    /// The name of its output stream.
    pub output: String,
    /// Make a picture.
    pub has_video: bool,
    /// Make a sound mix.
    pub has_audio: bool,
    /// The picture.
    pub picture: Picture,
    /// How long a late input is waited for.
    pub latency: Duration,
    /// The layout.
    pub layout: Layout,
    /// Screen shares are marked by this in their names.
    pub desktop_marker: String,
    /// MCU mode: each input gets a minus-one stream, and the mixer ends with its last input.
    pub mcu: bool,
}

impl MixerSpec {
    /// A mixer named `name` (output `name` too) with the server's defaults (`[mixer]`), making
    /// both a picture and a sound mix.
    pub fn defaults(
        cfg: &crate::config::MixerConfig,
        name: &str,
        mcu: bool,
    ) -> Result<Self, MixerError> {
        Ok(MixerSpec {
            name: name.to_owned(),
            output: name.to_owned(),
            has_video: true,
            has_audio: true,
            picture: Picture {
                width: cfg.width,
                height: cfg.height,
                fps: cfg.fps,
                kbps: cfg.kbps,
                background: 0xff00_0000,
            },
            latency: Duration::from_millis(cfg.latency_ms),
            layout: Layout::resolve(&cfg.layout, cfg.layout_dir.as_deref())
                .map_err(MixerError::Invalid)?,
            desktop_marker: cfg.desktop_marker.clone(),
            mcu,
        })
    }
}

/// Why a mixer request failed, in WCS's words.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum MixerError {
    /// No mixer by that URI.
    #[error("Mixer not found")]
    NotFound,
    /// No stream by that name (or it is not in the mixer).
    #[error("Stream not found")]
    StreamNotFound,
    /// A mixer by that URI exists already.
    #[error("Mixer already exists")]
    Exists,
    /// The stream is in the mixer already.
    #[error("Stream is already in the mixer")]
    AlreadyAdded,
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The engine refused (output name in use, shutting down).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// A participant's minus-one stream.
struct MinusOne {
    mix: u64,
    handle: PublishHandle,
    _relay: Option<ConsumerLink>,
}

/// One input.
struct Input {
    stream: String,
    label: String,
    is_screen: bool,
    video: Option<TileBranch>,
    placeholder: Option<TileBranch>,
    audio: Option<AudioBranch>,
    subs: Vec<Subscription>,
    video_muted: bool,
    audio_muted: bool,
    minus: Option<MinusOne>,
}

struct State {
    graph: Graph,
    inputs: Vec<Input>,
    output: Option<PublishHandle>,
    /// Who joined and left, and when (seconds since the mixer started).
    history: Vec<Value>,
    closed: bool,
}

/// A running mixer.
pub struct Mixer {
    me: std::sync::Weak<Mixer>,
    spec: MixerSpec,
    engine: WeakEngine,
    started: Instant,
    state: Mutex<State>,
    speaker: Mutex<SpeakerTracker>,
    job_id: Mutex<String>,
    /// Wakes the mixer's task to reflow the layout (the active speaker changed).
    reflow: mpsc::UnboundedSender<()>,
}

/// What keeps a mixer job running; dropping it stops the mixer.
pub struct MixerJob(pub Arc<Mixer>);

impl Drop for MixerJob {
    fn drop(&mut self) {
        let m = self.0.clone();
        // Stopping takes branches to NULL: not on a tokio worker.
        std::thread::spawn(move || m.close());
    }
}

fn internal(e: impl std::fmt::Display) -> MixerError {
    MixerError::Engine(EngineError::Internal(e.to_string()))
}

/// The name a mixer is known by, from `mixer://NAME` (or a bare name).
pub fn name_of_uri(uri: &str) -> Result<String, MixerError> {
    let name = uri.strip_prefix("mixer://").unwrap_or(uri);
    crate::engine::valid_name(name)
        .map_err(|_| MixerError::Invalid("uri must be mixer://NAME".into()))?;
    Ok(name.to_owned())
}

/// WCS's name for a participant's minus-one stream.
pub fn minus_one_name(room: &str, login: &str) -> String {
    format!("{room}-{login}{room}")
}

async fn publish(
    engine: &Engine,
    name: &str,
    mixer: &str,
    video: bool,
    audio: bool,
) -> Result<(PublishHandle, mpsc::Receiver<MediaNotice>), MixerError> {
    let (tx, rx) = mpsc::channel::<MediaNotice>(MAILBOX_CAPACITY);
    let msid = uuid::Uuid::new_v4().to_string();
    let req = MediaRequest {
        session_id: format!("mixer-{msid}"),
        app_key: "mixer".into(),
        media_session_id: msid,
        name: name.to_owned(),
        sdp: String::new(),
        record: false,
        custom: json!({ "mixer": mixer }),
        events: tx,
        client: None,
        login: String::new(),
        resume_token: None,
    };
    let spec = PublishSpec {
        provider: "Mixer",
        video: video.then_some(Codec::H264),
        audio: audio.then_some(Codec::Opus),
        complete: true,
        may_reorder: false,
        connected: true,
        resumable: false,
    };
    let handle = engine.publish(&req, spec).await?;
    Ok((handle, rx))
}

/// Starts a mixer: its output stream is published at once (black and silent until inputs come).
pub async fn start(engine: &Engine, spec: MixerSpec) -> Result<Arc<Mixer>, MixerError> {
    if !spec.has_video && !spec.has_audio {
        return Err(MixerError::Invalid(
            "a mixer needs hasVideo or hasAudio".into(),
        ));
    }
    if engine
        .with_job(KIND, &spec.name, |_: &MixerJob| ())
        .is_some()
    {
        return Err(MixerError::Exists);
    }
    let (handle, rx) = publish(
        engine,
        &spec.output,
        &spec.name,
        spec.has_video,
        spec.has_audio,
    )
    .await?;
    let media = handle.media().clone();
    let guard = PipelineGuard::new(&format!("{}-mixer", spec.name), engine.pipelines());
    let latency = gst::ClockTime::from_nseconds(spec.latency.as_nanos() as u64);
    let graph = Graph::start(
        guard,
        spec.picture,
        latency,
        media.video().as_ref(),
        media.audio().as_ref(),
    )
    .map_err(internal)?;
    let (reflow, reflow_rx) = mpsc::unbounded_channel();
    let mixer = Arc::new_cyclic(|me| Mixer {
        me: me.clone(),
        engine: engine.downgrade(),
        started: Instant::now(),
        state: Mutex::new(State {
            graph,
            inputs: Vec::new(),
            output: Some(handle),
            history: Vec::new(),
            closed: false,
        }),
        speaker: Mutex::new(SpeakerTracker::new(SpeakerParams::default())),
        job_id: Mutex::new(String::new()),
        reflow,
        spec,
    });
    let id = engine.start_job(
        KIND,
        &mixer.spec.name,
        mixer.info(),
        Box::new(MixerJob(mixer.clone())),
    );
    *lock(&mixer.job_id) = id.clone();
    mixer.clone().follow(engine, id, rx, reflow_rx);
    tracing::info!(mixer = %mixer.spec.name, output = %mixer.spec.output, layout = mixer.spec.layout.name(), "mixer started");
    Ok(mixer)
}

/// The mixer named `name`.
pub fn find(engine: &Engine, name: &str) -> Option<Arc<Mixer>> {
    engine.with_job(KIND, name, |j: &MixerJob| j.0.clone())
}

/// Every mixer, WCS-shaped.
pub fn list(engine: &Engine) -> Vec<Value> {
    engine
        .jobs(Some(KIND))
        .into_iter()
        .map(|j| j.info)
        .collect()
}

/// Stops the mixer named `name`.
pub fn terminate(engine: &Engine, name: &str) -> Result<(), MixerError> {
    let id = engine
        .jobs(Some(KIND))
        .into_iter()
        .find(|j| j.name == name)
        .map(|j| j.id)
        .ok_or(MixerError::NotFound)?;
    drop(engine.stop_job(&id));
    Ok(())
}

impl Mixer {
    /// The mixer's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The output stream's name.
    pub fn output(&self) -> &str {
        &self.spec.output
    }

    /// Whether the mixer is in MCU mode.
    pub fn is_mcu(&self) -> bool {
        self.spec.mcu
    }

    fn since_start(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Ends the job when the output is stopped (REST terminate of the stream), follows the
    /// engine's events (an input that unpublishes leaves the mix) and reflows on request.
    fn follow(
        self: Arc<Self>,
        engine: &Engine,
        id: String,
        mut rx: mpsc::Receiver<MediaNotice>,
        mut reflow_rx: mpsc::UnboundedReceiver<()>,
    ) {
        let weak = engine.downgrade();
        let mut events = engine.subscribe();
        let me = self.me.clone();
        drop(self);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    n = rx.recv() => match n {
                        Some(MediaNotice { event: MediaEvent::Stop(_) | MediaEvent::Failed(_), .. }) | None => break,
                        Some(_) => {}
                    },
                    e = events.recv() => match e {
                        Ok(EngineEvent::Unpublished { name, .. }) => {
                            let Some(m) = me.upgrade() else { break };
                            if m.has_input(&name) {
                                let _ = tokio::task::spawn_blocking(move || m.remove(&name)).await;
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                        _ => {}
                    },
                    r = reflow_rx.recv() => {
                        if r.is_none() { break; }
                        while reflow_rx.try_recv().is_ok() {}
                        let Some(m) = me.upgrade() else { break };
                        let _ = tokio::task::spawn_blocking(move || m.reflow()).await;
                    }
                }
                if me.upgrade().is_none_or(|m| lock(&m.state).closed) {
                    break;
                }
            }
            if let Some(engine) = weak.upgrade() {
                drop(engine.stop_job(&id));
            }
        });
    }

    fn has_input(&self, stream: &str) -> bool {
        lock(&self.state).inputs.iter().any(|i| i.stream == stream)
    }

    /// Adds published stream `stream` under `label` (its name when empty). Blocks: call it off
    /// the async workers.
    pub fn add(
        &self,
        stream: &str,
        label: &str,
        video: bool,
        audio: bool,
    ) -> Result<(), MixerError> {
        let engine = self.engine.upgrade().ok_or(EngineError::ShuttingDown)?;
        let sref = engine
            .stream_of(Some(stream), None)
            .ok_or(MixerError::StreamNotFound)?;
        if stream == self.spec.output {
            return Err(MixerError::Invalid(
                "a mixer cannot mix its own output".into(),
            ));
        }
        let media = sref.media;
        let label = if label.is_empty() {
            if sref.login.is_empty() {
                stream.to_owned()
            } else {
                sref.login.clone()
            }
        } else {
            label.to_owned()
        };
        let mut st = lock(&self.state);
        if st.closed {
            return Err(EngineError::ShuttingDown.into());
        }
        if st.inputs.iter().any(|i| i.stream == stream) {
            return Err(MixerError::AlreadyAdded);
        }
        let mut input = Input {
            stream: stream.to_owned(),
            label: label.clone(),
            is_screen: layout::is_screen_name(stream, &self.spec.desktop_marker),
            video: None,
            placeholder: None,
            audio: None,
            subs: Vec::new(),
            video_muted: false,
            audio_muted: false,
            minus: None,
        };
        let result = self.build_input(&mut st, &mut input, &media, video, audio);
        if let Err(e) = result {
            Self::teardown(&mut st, input);
            return Err(internal(format!("{e:#}")));
        }
        st.inputs.push(input);
        let t = self.since_start();
        st.history
            .push(json!({ "event": "joined", "stream": stream, "label": label, "at": t }));
        self.place(&st);
        drop(st);
        self.update_info();
        tracing::info!(mixer = %self.spec.name, stream = %crate::redact::Escaped(stream), "input added");
        Ok(())
    }

    fn build_input(
        &self,
        st: &mut State,
        input: &mut Input,
        media: &Arc<crate::engine::StreamMedia>,
        video: bool,
        audio: bool,
    ) -> anyhow::Result<()> {
        if st.graph.has_picture() {
            input.placeholder = Some(st.graph.add_placeholder(&input.label)?);
            if video && media.video().is_some() {
                let tile = st.graph.add_video(&input.label)?;
                let decoded = Decoded::of(media, true)?;
                let src = tile.appsrc.clone();
                let f: SampleFn = Arc::new(move |s| {
                    if let Some(src) = &src {
                        let _ = src.push_sample(s);
                    }
                });
                input.subs.push(decoded.subscribe(f));
                input.video = Some(tile);
            }
        }
        if audio && media.audio().is_some() && !st.graph.mix_ids().is_empty() {
            let mut branch = st.graph.add_audio()?;
            // The full mix, and every other participant's minus-one.
            for m in st.inputs.iter().filter_map(|i| i.minus.as_ref()) {
                st.graph.link_audio(&mut branch, m.mix)?;
            }
            st.graph.link_audio(&mut branch, 0)?;
            self.measure_levels(&branch, &input.stream);
            let decoded = Decoded::of(media, false)?;
            let src = branch.appsrc.clone();
            input.subs.push(decoded.subscribe(Arc::new(move |s| {
                let _ = src.push_sample(s);
            })));
            input.audio = Some(branch);
        }
        if self.spec.mcu && !st.graph.mix_ids().is_empty() {
            input.minus = Some(self.minus_one(st, input)?);
        }
        Ok(())
    }

    /// Makes `input`'s minus-one stream: the mixer's picture, every other input's voice.
    fn minus_one(&self, st: &mut State, input: &Input) -> anyhow::Result<MinusOne> {
        let engine = self
            .engine
            .upgrade()
            .ok_or_else(|| anyhow::anyhow!("shutting down"))?;
        let name = minus_one_name(&self.spec.name, &input.label);
        let (handle, _rx) = tokio::runtime::Handle::current()
            .block_on(publish(
                &engine,
                &name,
                &self.spec.name,
                st.graph.has_picture(),
                true,
            ))
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let audio = handle
            .media()
            .audio()
            .ok_or_else(|| anyhow::anyhow!("minus-one without audio"))?;
        let latency = gst::ClockTime::from_nseconds(self.spec.latency.as_nanos() as u64);
        let mix = st.graph.add_mix(&audio, latency)?;
        for other in st.inputs.iter_mut() {
            if let Some(b) = other.audio.as_mut() {
                st.graph.link_audio(b, mix)?;
            }
        }
        let relay = match (
            handle.media().video(),
            st.output.as_ref().and_then(|o| o.media().video()),
        ) {
            (Some(to), Some(from)) => Some(relay(&from, &to)),
            _ => None,
        };
        Ok(MinusOne {
            mix,
            handle,
            _relay: relay,
        })
    }

    /// Measures the input's level after muting, for the speaker layout and the chapters.
    fn measure_levels(&self, branch: &AudioBranch, stream: &str) {
        let Some(pad) = branch.level_pad() else {
            return;
        };
        let me = self.me.clone();
        let stream = stream.to_owned();
        let started = self.started;
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let Some(m) = me.upgrade() else {
                return gst::PadProbeReturn::Ok;
            };
            if let Some(buf) = info.buffer() {
                if let Ok(map) = buf.map_readable() {
                    let samples: Vec<f32> = map
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect();
                    let db = speaker::rms_db(&samples);
                    let changed = lock(&m.speaker).update(&stream, db, started.elapsed());
                    if changed && m.spec.layout.follows_speaker() {
                        let _ = m.reflow.send(());
                    }
                }
            }
            gst::PadProbeReturn::Ok
        });
    }

    /// Takes `stream` out of the mix; the layout reflows. Blocks.
    pub fn remove(&self, stream: &str) -> Result<(), MixerError> {
        let mut st = lock(&self.state);
        let pos = st
            .inputs
            .iter()
            .position(|i| i.stream == stream)
            .ok_or(MixerError::StreamNotFound)?;
        let input = st.inputs.remove(pos);
        // The branch (and its level probe) stops first, so no late level brings it back.
        Self::teardown(&mut st, input);
        lock(&self.speaker).remove(stream, self.started.elapsed());
        let t = self.since_start();
        st.history
            .push(json!({ "event": "left", "stream": stream, "at": t }));
        self.place(&st);
        let empty = st.inputs.is_empty();
        drop(st);
        self.update_info();
        tracing::info!(mixer = %self.spec.name, stream = %crate::redact::Escaped(stream), "input removed");
        if empty && self.spec.mcu {
            // An MCU room ends with its last participant.
            if let Some(engine) = self.engine.upgrade() {
                let _ = terminate(&engine, &self.spec.name);
            }
        }
        Ok(())
    }

    fn teardown(st: &mut State, mut input: Input) {
        input.subs.clear();
        if let Some(m) = input.minus.take() {
            for other in st.inputs.iter_mut() {
                if let Some(b) = other.audio.as_mut() {
                    st.graph.unlink_audio(b, m.mix);
                }
            }
            st.graph.remove_mix(m.mix);
            m.handle.unpublish();
        }
        if let Some(t) = input.video.take() {
            st.graph.remove_tile(t);
        }
        if let Some(t) = input.placeholder.take() {
            st.graph.remove_tile(t);
        }
        if let Some(a) = input.audio.take() {
            st.graph.remove_audio(a);
        }
    }

    /// Mutes or unmutes the inputs whose names match `streams` (names, or one regular expression
    /// such as `^stream.*`); returns how many matched.
    pub fn set_audio_video(
        &self,
        streams: &[String],
        audio_muted: Option<bool>,
        video_muted: Option<bool>,
    ) -> Result<usize, MixerError> {
        let patterns: Vec<regex::Regex> = streams
            .iter()
            .map(|s| regex::Regex::new(&format!("^(?:{s})$")))
            .collect::<Result<_, _>>()
            .map_err(|e| MixerError::Invalid(format!("streams: {e}")))?;
        let mut st = lock(&self.state);
        let mut n = 0;
        for input in st.inputs.iter_mut() {
            if !patterns.is_empty() && !patterns.iter().any(|p| p.is_match(&input.stream)) {
                continue;
            }
            n += 1;
            if let Some(m) = audio_muted {
                input.audio_muted = m;
                if let Some(a) = &input.audio {
                    a.set_muted(m);
                }
            }
            if let Some(m) = video_muted {
                input.video_muted = m;
            }
        }
        self.place(&st);
        drop(st);
        self.update_info();
        if n == 0 {
            return Err(MixerError::StreamNotFound);
        }
        Ok(n)
    }

    /// Changes the caption of `stream`'s tile.
    pub fn set_label(&self, stream: &str, label: &str) -> Result<(), MixerError> {
        let mut st = lock(&self.state);
        let input = st
            .inputs
            .iter_mut()
            .find(|i| i.stream == stream)
            .ok_or(MixerError::StreamNotFound)?;
        input.label = label.to_owned();
        for tile in [&input.video, &input.placeholder].into_iter().flatten() {
            tile.set_caption(label);
        }
        drop(st);
        self.update_info();
        Ok(())
    }

    fn reflow(&self) {
        let st = lock(&self.state);
        self.place(&st);
    }

    /// Puts every tile where the layout says.
    fn place(&self, st: &State) {
        if !st.graph.has_picture() {
            return;
        }
        let descs: Vec<InputDesc<'_>> = st
            .inputs
            .iter()
            .map(|i| InputDesc {
                name: &i.stream,
                is_screen: i.is_screen,
            })
            .collect();
        let speaker = lock(&self.speaker)
            .speaker()
            .and_then(|s| st.inputs.iter().position(|i| i.stream == s));
        let p = st.graph.picture();
        let tiles = self.spec.layout.place(&descs, speaker, p.width, p.height);
        for (input, tile) in st.inputs.iter().zip(tiles) {
            let mut under = tile;
            if let Some(t) = under.as_mut() {
                t.zorder *= 2;
            }
            let mut over = under;
            if let Some(t) = over.as_mut() {
                t.zorder += 1;
            }
            if let Some(ph) = &input.placeholder {
                ph.place(under.as_ref());
            }
            if let Some(v) = &input.video {
                v.place(over.as_ref());
                v.set_visible(over.is_some() && !input.video_muted);
            }
        }
    }

    /// What `/mixer/find_all` shows.
    pub fn info(&self) -> Value {
        let st = lock(&self.state);
        let p = st.graph.picture();
        let sessions: Vec<Value> = st
            .inputs
            .iter()
            .map(|i| {
                json!({
                    "streamName": i.stream, "streamLabel": i.label,
                    "hasVideo": i.video.is_some(), "hasAudio": i.audio.is_some(),
                    "audioMuted": i.audio_muted, "videoMuted": i.video_muted,
                    "minusOneStream": i.minus.as_ref().map(|m| m.handle.media().name().to_owned()),
                })
            })
            .collect();
        json!({
            "uri": format!("mixer://{}", self.spec.name),
            "localStreamName": self.spec.output,
            "localMediaSessionId": st.output.as_ref().map(|o| o.media_session_id().to_owned()),
            "status": "PROCESSED_LOCAL",
            "hasVideo": self.spec.has_video, "hasAudio": self.spec.has_audio,
            "record": false,
            "mixerVideoWidth": p.width, "mixerVideoHeight": p.height,
            "mixerVideoFps": p.fps, "mixerVideoBitrateKbps": p.kbps,
            "mixerLayoutClass": self.spec.layout.name(),
            "mcu": self.spec.mcu,
            "mediaSessions": sessions,
        })
    }

    /// Who joined and left, and when each spoke (seconds since the mixer started).
    pub fn history(&self) -> Value {
        let st = lock(&self.state);
        let spoke: Vec<Value> = lock(&self.speaker)
            .intervals(self.started.elapsed())
            .into_iter()
            .map(|i| json!({ "stream": i.input, "start": i.start.as_secs_f64(), "end": i.end.as_secs_f64() }))
            .collect();
        json!({ "events": st.history, "spoke": spoke })
    }

    fn update_info(&self) {
        if let Some(engine) = self.engine.upgrade() {
            let id = lock(&self.job_id).clone();
            engine.set_job_info(&id, self.info());
        }
    }

    /// Stops everything: inputs, minus-one streams, the pipeline, the output stream. Blocks.
    fn close(&self) {
        let mut st = lock(&self.state);
        if st.closed {
            return;
        }
        st.closed = true;
        for input in std::mem::take(&mut st.inputs) {
            Self::teardown(&mut st, input);
        }
        st.graph.stop();
        if let Some(h) = st.output.take() {
            h.unpublish();
        }
        tracing::info!(mixer = %self.spec.name, "mixer stopped");
    }
}

/// Forwards every buffer of `from` into `to` (a minus-one stream's video is the mixer's), and
/// keyframe requests back.
fn relay(from: &Arc<Producer>, to: &Arc<Producer>) -> ConsumerLink {
    let target = to.clone();
    let link = from.add_consumer_fn(Arc::new(move |caps, buf| {
        target.push(caps.map(|c| c.as_ref()), buf.clone());
    }));
    let weak = Arc::downgrade(from);
    to.set_keyframe_requester(move || {
        if let Some(p) = weak.upgrade() {
            p.request_keyframe();
        }
    });
    link
}
