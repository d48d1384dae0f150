//! Recording a stream to files, as it is (no re-encoding): H.264 with AAC or Opus into MP4, VP8
//! with Opus into WebM, or everything into Matroska. Each recording is its own pipeline,
//! `{stream}-record-{id}`, fed from the stream's producers like any viewer, so a failing
//! recording (disk full) stops alone and the publisher and viewers never notice.
//!
//! How it stays playable and in step:
//! - **Crash-safe files.** MP4 is written fragmented (`mp4mux fragment-duration=500`): a file cut
//!   short by `kill -9` still plays up to its last whole fragment, well under a second before the
//!   end. Matroska/WebM writes each block as it comes, in clusters of at most a second (a killed
//!   WebM has no duration in its header, which players do without). The file sink writes
//!   unbuffered, so what the muxer gave away is in the file, not in a process buffer.
//! - **A/V in step.** The fragmented MP4 muxer starts each track at its own first timestamp, so
//!   both tracks must start together: a file (and each part) begins at a video keyframe, and audio
//!   joins at that keyframe's time. With both tracks present the first part does not use the
//!   producer's cached GOP (audio has no cache to match it): it waits for the next keyframe,
//!   which is requested at once (a WebRTC source sends one within a round trip; an RTMP source at
//!   its next keyframe). Audio is held back until video has passed its time, so where a part
//!   starts is known before its audio is placed, however late video arrives.
//! - **Rotation** (`Rotation::Size`/`Duration`) cuts at video keyframes (asking the source for one
//!   when a part is due) into numbered parts. Each part is a bin of its own (appsrc per track,
//!   parser, muxer, file sink) in the recording's pipeline; buffers are routed to parts as data,
//!   so nothing is relinked, and a finished part gets EOS and is finalised on its own.
//! - **Names.** See [`super::naming`]: a file is written under its interim name (`{endTime}` reads
//!   `recording`) and renamed at its finish; a crashed recording keeps the interim name. Each file
//!   has a JSON sidecar (see [`super::listing`]).

use super::listing::{self, Sidecar};
pub use super::listing::{list, probe, FileInfo};
use super::naming::{self, Container, NameFields};
pub use super::naming::{ContainerPolicy, Rotation};
use crate::engine::media::Codec;
use crate::engine::pipeline::{shared_clock, PipelineCounter, PipelineGuard};
use crate::engine::producer::{ConsumerLink, Producer, ProducerLimits};
use crate::sync::lock;
use gst::glib;
use gst::prelude::*;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod parts;

/// How long [`Recording::stop`] (and a dropped recording) waits for its files to be finalised
/// after EOS. Finalising rewrites a header or an index (well under a second); past this the
/// muxer is stuck, and the files are left as they are, under their interim names, still playable.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest time audio is held back waiting for video to catch up (see `State::held`). Video
/// normally lags audio by its decode or encode latency (well under a second); a video track that
/// stops (camera off) must not hold the audio for good.
pub const MAX_AUDIO_HOLD: Duration = Duration::from_secs(3);

/// What to record and where.
#[derive(Debug, Clone)]
pub struct RecordSpec {
    /// The records folder (created when missing).
    pub dir: PathBuf,
    /// File name template (see [`naming::DEFAULT_TEMPLATE`]).
    pub template: String,
    /// When to start a new part; `None` writes one file.
    pub rotation: Option<Rotation>,
    /// `{streamName}`.
    pub stream_name: String,
    /// `{mediaSessionId}`.
    pub media_session_id: String,
    /// `{login}`.
    pub login: String,
    /// Container choice.
    pub container: ContainerPolicy,
}

/// What happens to a recording's files. Sent from the producers' threads and GStreamer's: the
/// callback must be quick and must not block (queue it onward).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordEvent {
    /// A file was opened (under its interim name).
    FileStarted {
        /// File name in the records folder.
        name: String,
    },
    /// A file was finalised and renamed. A file that got no media (stopped before the first
    /// keyframe) is reported too, with zero bytes.
    FileFinished {
        /// Its final name.
        name: String,
        /// Media bytes written (container overhead not counted).
        bytes: u64,
        /// Media duration.
        duration: Duration,
    },
    /// The recording failed and stopped; its files stay as they are (interim names).
    Failed {
        /// Why, in words for people ("No space left on device").
        reason: String,
    },
}

/// One finished file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedFile {
    /// Final name in the records folder.
    pub name: String,
    /// Media bytes written.
    pub bytes: u64,
    /// Media duration.
    pub duration: Duration,
}

/// Why a recording did not start or end well.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// Neither a video nor an audio track was given.
    #[error("nothing to record: no track")]
    NoTracks,
    /// A track of the wrong kind (audio given as video, or the reverse).
    #[error("invalid track: {0}")]
    InvalidTrack(String),
    /// The records folder cannot be created or written.
    #[error("records folder: {0}")]
    Folder(String),
    /// The pipeline could not be built or started.
    #[error("recording pipeline: {0}")]
    Pipeline(String),
    /// The recording failed while it ran (see [`RecordEvent::Failed`]).
    #[error("{0}")]
    Failed(String),
    /// Finalising did not end within [`STOP_TIMEOUT`].
    #[error("the recording did not finish within {0:?}")]
    StopTimeout(Duration),
}

type EventFn = Arc<dyn Fn(RecordEvent) + Send + Sync>;

const VIDEO: usize = 0;
const AUDIO: usize = 1;
const TRACK_NAMES: [&str; 2] = ["video", "audio"];

/// One file being written: the inputs of its bin (`part-{index}` in the pipeline).
struct Part {
    index: u32,
    srcs: [Option<gst_app::AppSrc>; 2],
    /// Whether each input has had EOS.
    ended: [bool; 2],
    /// The caps last set on each input.
    caps: [Option<gst::Caps>; 2],
    /// The video input fell behind and waits for a keyframe (the producer's own policy).
    waiting_keyframe: bool,
    /// Its name on disk now (the interim name).
    file: String,
    /// Wall-clock start, and the running time it stands for.
    start_ms: u64,
    origin: gst::ClockTime,
    /// Running time of its first media (the leading track's first buffer).
    first: Option<gst::ClockTime>,
    /// Running time where its media ends so far.
    end: Option<gst::ClockTime>,
    bytes: u64,
}

#[derive(Default)]
struct State {
    /// Parts not yet finalised, oldest first; the last one is where new media goes.
    parts: Vec<Part>,
    /// The part audio goes to (0 before it joins the first one).
    audio_part: u32,
    next_index: u32,
    /// Parts taken out of `parts` whose finalising has not ended yet.
    finishing: usize,
    finished: Vec<FinishedFile>,
    failed: Option<String>,
    /// Set when stopping: media still arriving is ignored.
    closed: bool,
    /// The video producer is replaying its cached GOP into us (inside `add_consumer_fn`).
    replaying_cache: bool,
    /// Audio waiting for video to pass its time: where a file starts or a part is cut is known
    /// only when the video keyframe arrives, and video often arrives later than audio of the
    /// same instant. Bounded by [`MAX_AUDIO_HOLD`] of audio (a few hundred small buffers).
    held: VecDeque<gst::Buffer>,
    /// Latest video decode time received (recorded or not).
    video_pos: Option<gst::ClockTime>,
    /// The tracks' latest caps.
    caps: [Option<gst::Caps>; 2],
}

struct Shared {
    name: String,
    spec: RecordSpec,
    container: Container,
    codecs: [Option<Codec>; 2],
    limits: ProducerLimits,
    /// With audio, video starts at the first keyframe after the cached GOP, so both start
    /// together.
    video_gated: bool,
    pipeline: glib::WeakRef<gst::Pipeline>,
    video_producer: Weak<Producer>,
    on_event: EventFn,
    state: Mutex<State>,
    /// Signalled when a part is finalised or the recording fails.
    changed: Condvar,
    links: Mutex<Vec<ConsumerLink>>,
    /// The pipeline; dropping the guard also ends its bus watch.
    guard: Mutex<Option<PipelineGuard>>,
}

/// A running recording. Stop it with [`Recording::stop`]; dropping it also finalises its files,
/// on a thread of its own.
pub struct Recording {
    shared: Arc<Shared>,
    stopped: bool,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Recording {
    /// Starts recording `video` and/or `audio` per `spec`. Must be called within a tokio runtime
    /// (the bus is watched there). It does not wait for media: the first file is opened at once
    /// (so an unwritable folder fails here) and media arrives from the next keyframe.
    pub fn start(
        spec: RecordSpec,
        video: Option<Arc<Producer>>,
        audio: Option<Arc<Producer>>,
        limits: &ProducerLimits,
        counter: &PipelineCounter,
        on_event: impl Fn(RecordEvent) + Send + Sync + 'static,
    ) -> Result<Recording, RecordError> {
        let codecs = [
            video.as_ref().map(|p| p.codec()),
            audio.as_ref().map(|p| p.codec()),
        ];
        match codecs {
            [None, None] => return Err(RecordError::NoTracks),
            [Some(c), _] if !c.is_video() => {
                return Err(RecordError::InvalidTrack(format!("{c:?} is not video")))
            }
            [_, Some(c)] if c.is_video() => {
                return Err(RecordError::InvalidTrack(format!("{c:?} is not audio")))
            }
            _ => {}
        }
        // The bus is watched on the runtime.
        tokio::runtime::Handle::try_current()
            .map_err(|_| RecordError::Pipeline("must start within a tokio runtime".into()))?;
        std::fs::create_dir_all(&spec.dir).map_err(|e| RecordError::Folder(e.to_string()))?;
        let container = naming::choose_container(spec.container, codecs[VIDEO], codecs[AUDIO]);
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("{}-record-{}", spec.stream_name, &id[..8]);
        let mut guard = PipelineGuard::new(&name, counter);
        let pipeline = guard.pipeline().clone();
        let producers = [video, audio];
        let shared = Arc::new(Shared {
            name,
            container,
            codecs,
            limits: *limits,
            video_gated: codecs[VIDEO].is_some() && codecs[AUDIO].is_some(),
            pipeline: pipeline.downgrade(),
            video_producer: producers[VIDEO]
                .as_ref()
                .map_or_else(Weak::new, Arc::downgrade),
            on_event: Arc::new(on_event),
            state: Mutex::new(State {
                next_index: 2,
                caps: [0, 1].map(|i| producers[i].as_ref().and_then(|p| p.caps())),
                ..Default::default()
            }),
            changed: Condvar::new(),
            links: Mutex::new(Vec::new()),
            guard: Mutex::new(None),
            spec,
        });
        let start_rt = shared_clock().now_running();
        let first = {
            let st = lock(&shared.state);
            shared.open_part(&st, 1, start_rt, None)
        }
        .map_err(RecordError::Folder)?;
        let first_file = first.file.clone();
        lock(&shared.state).parts.push(first);
        let mut messages = pipeline
            .bus()
            .map(|b| b.stream())
            .ok_or_else(|| RecordError::Pipeline("pipeline has no bus".into()))?;
        if let Err(e) = pipeline.set_state(gst::State::Playing) {
            let reason = first_error(&mut messages).unwrap_or_else(|| e.to_string());
            let path = shared.spec.dir.join(&first_file);
            let _ = std::fs::remove_file(listing::sidecar_path(&path));
            let _ = std::fs::remove_file(path);
            return Err(RecordError::Folder(reason));
        }
        // An error fails the recording; failing drops links and the pipeline guard: quick, but
        // not for an async worker.
        let weak = Arc::downgrade(&shared);
        guard.watch_bus_stream(messages, true, move |e| {
            if let Some(s) = weak.upgrade() {
                let reason = failure_reason(&e.error, e.debug.as_deref());
                tokio::task::spawn_blocking(move || s.fail(reason));
            }
        });
        *lock(&shared.guard) = Some(guard);
        (shared.on_event)(RecordEvent::FileStarted { name: first_file });
        shared.attach(&producers);
        tracing::info!(pipeline = %shared.name, container = shared.container.extension(), "recording started");
        Ok(Recording {
            shared,
            stopped: false,
        })
    }

    /// The pipeline's name, `{stream}-record-{id}`.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The container the files are written in.
    pub fn container(&self) -> Container {
        self.shared.container
    }

    /// The file being written now (its interim name), or the last one finished.
    pub fn current_file(&self) -> String {
        let st = lock(&self.shared.state);
        st.parts
            .last()
            .map(|p| p.file.clone())
            .or_else(|| st.finished.last().map(|f| f.name.clone()))
            .unwrap_or_default()
    }

    /// Stops cleanly: detaches from the producers, sends EOS, waits (at most [`STOP_TIMEOUT`])
    /// for every file to be finalised and renamed, and returns them all, earlier parts included.
    /// Blocks: call it from a thread of its own or `spawn_blocking`, or use [`Self::stop_async`].
    pub fn stop(mut self) -> Result<Vec<FinishedFile>, RecordError> {
        self.stopped = true;
        self.shared.finish(STOP_TIMEOUT)
    }

    /// [`Self::stop`] on tokio's blocking pool.
    pub async fn stop_async(self) -> Result<Vec<FinishedFile>, RecordError> {
        tokio::task::spawn_blocking(move || self.stop())
            .await
            .map_err(|e| RecordError::Pipeline(format!("stop task: {e}")))?
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name("record-finish".into())
            .spawn(move || {
                let _ = shared.finish(STOP_TIMEOUT);
            });
        if spawned.is_err() {
            // No thread to wait on: let the pipeline go now; the files stay playable as written.
            self.shared.release();
        }
    }
}

/// The first error already posted on the bus (the stream has them all), in words.
fn first_error(messages: &mut gst::bus::BusStream) -> Option<String> {
    use futures::{FutureExt, StreamExt};
    while let Some(Some(msg)) = messages.next().now_or_never() {
        if let gst::MessageView::Error(e) = msg.view() {
            return Some(failure_reason(&e.error(), e.debug().as_deref()));
        }
    }
    None
}

/// An element error as a reason for people; paths are left out (they may reach clients).
fn failure_reason(err: &glib::Error, debug: Option<&str>) -> String {
    use gst::ResourceError as R;
    match err.kind::<R>() {
        Some(R::NoSpaceLeft) => "No space left on device".into(),
        Some(R::OpenWrite | R::OpenReadWrite | R::NotAuthorized) => {
            "Cannot write to the records folder".into()
        }
        Some(R::Write) => format!("Write error: {}", debug.unwrap_or("unknown")),
        _ => err.message().to_string(),
    }
}

impl Shared {
    fn fields(&self, start_ms: u64, end_ms: Option<u64>) -> NameFields<'_> {
        NameFields {
            stream_name: &self.spec.stream_name,
            start_time_ms: start_ms,
            end_time_ms: end_ms,
            media_session_id: &self.spec.media_session_id,
            login: &self.spec.login,
            audio_codec: self.codecs[AUDIO],
            video_codec: self.codecs[VIDEO],
        }
    }

    fn part_number(&self, index: u32) -> Option<u32> {
        self.spec.rotation.map(|_| index)
    }

    fn sidecar(&self, part: &Part, file: &str, end: Option<(u64, Duration)>) -> Sidecar {
        Sidecar {
            file: file.to_owned(),
            stream: self.spec.stream_name.clone(),
            media_session_id: self.spec.media_session_id.clone(),
            login: self.spec.login.clone(),
            container: self.container.extension().to_owned(),
            video_codec: self.codecs[VIDEO].map(|c| c.wcs_name().to_owned()),
            audio_codec: self.codecs[AUDIO].map(|c| c.wcs_name().to_owned()),
            part: self.part_number(part.index),
            start_time: part.start_ms,
            end_time: end.map(|(e, _)| e),
            duration: end.map(|(_, d)| d.as_millis() as u64),
            bytes: end.map(|_| part.bytes),
        }
    }

    /// Stops: detaches from the producers, ends both inputs, waits for every part to be
    /// finalised (at most `timeout`), then lets the pipeline go. Blocks.
    fn finish(&self, timeout: Duration) -> Result<Vec<FinishedFile>, RecordError> {
        // Detaching waits for a producer call in progress, so nothing arrives after this.
        drop(std::mem::take(&mut *lock(&self.links)));
        {
            let mut st = lock(&self.state);
            st.closed = true;
            self.release_audio(&mut st, true);
            for p in st.parts.iter_mut() {
                for i in [VIDEO, AUDIO] {
                    parts::end_input(p, i);
                }
            }
        }
        let st = lock(&self.state);
        let (st, _) = self
            .changed
            .wait_timeout_while(st, timeout, |st| {
                (!st.parts.is_empty() || st.finishing > 0) && st.failed.is_none()
            })
            .unwrap_or_else(|p| p.into_inner());
        let result = match (&st.failed, st.parts.is_empty() && st.finishing == 0) {
            (Some(reason), _) => Err(RecordError::Failed(reason.clone())),
            (None, false) => Err(RecordError::StopTimeout(timeout)),
            (None, true) => Ok(st.finished.clone()),
        };
        drop(st);
        if let Err(e) = &result {
            tracing::warn!(pipeline = %self.name, "recording ended badly: {e}");
        }
        self.release();
        result
    }

    /// Fails the recording: it stops at once (the pipeline goes to NULL, the producers are let
    /// go) and says why. The files stay as written, under their interim names.
    fn fail(&self, reason: String) {
        {
            let mut st = lock(&self.state);
            if st.failed.is_some() {
                return;
            }
            st.failed = Some(reason.clone());
        }
        tracing::warn!(pipeline = %self.name, "recording failed: {reason}");
        drop(std::mem::take(&mut *lock(&self.links)));
        self.release();
        (self.on_event)(RecordEvent::Failed { reason });
        self.changed.notify_all();
    }

    /// Lets the pipeline go (NULL on the reaper thread) and ends the bus watch.
    fn release(&self) {
        drop(std::mem::take(&mut *lock(&self.links)));
        drop(lock(&self.guard).take());
    }
}
