//! The engine: the only owner of streams and their pipelines. A stream has a name, one source (a
//! publisher) and any number of consumers (viewers); each is a media session. The engine knows
//! streams, tracks, producers and pipelines, and no protocol: protocols plug in through its seam
//! ([`seam`]): [`Engine::publish`] and [`Engine::play`] (both through one admission point),
//! shared outputs made once per stream, jobs the server owns, and one event stream.
//! Front ends hold an [`Engine`] handle and the publish/play handles it returns. Everything an
//! owner must react to (connected, failed, asked to stop, a stream event for its viewer) arrives on
//! the owner's mailbox as a [`MediaNotice`].

pub mod admission;
pub mod bridge;
pub mod events;
mod handles;
mod jobs;
pub mod media;
pub mod pipeline;
pub mod producer;
mod registry;
pub mod seam;
mod sessions;
mod stream;
pub mod templates;

pub use admission::{Action, Admission, AdmissionRequest, Admitted, BoxFuture, Resolver};
pub use events::EngineEvent;
pub use handles::{PlayHandle, PublishHandle};
pub use jobs::JobInfo;
pub use registry::{StreamInfo, StreamStatus};
pub use seam::{Output, SharedOutput, Source};
pub use stream::StreamMedia;

use crate::config::Config;
use media::Codec;
use producer::ProducerLimits;
use registry::Registry;
use serde_json::Value;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// What went wrong, worded as WCS's `info` strings where WCS has one.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum EngineError {
    /// No stream by that name (or media session by that id).
    #[error("Stream not found")]
    StreamNotFound,
    /// A stream by that name is being published.
    #[error("Stream name is already in use")]
    NameInUse,
    /// The client reused a media session id.
    #[error("MediaSessionId is already in use")]
    MediaSessionInUse,
    /// The request lacks something it needs.
    #[error("{0}")]
    Invalid(String),
    /// The SDP offer is unusable.
    #[error("Bad SDP: {0}")]
    BadSdp(String),
    /// Nothing in the offer can carry the stream.
    #[error("No common codecs")]
    NoCommonCodecs,
    /// A pipeline could not be built or negotiated.
    #[error("Failed by error")]
    Internal(String),
    /// The server is stopping.
    #[error("Requested stream shutdown")]
    ShuttingDown,
    /// A resource the request needs is used up (media ports); trying later may work.
    #[error("{0}")]
    Unavailable(String),
    /// The client already has as many negotiations pending as it may.
    #[error("Too many pending negotiations from this client")]
    TooManyPending,
    /// Admission said no (a hook, a token); the reason is the client's to read.
    #[error("{0}")]
    Denied(String),
    /// The stream is already being recorded.
    #[error("Stream is already being recorded")]
    AlreadyRecording,
    /// The stream is not being recorded.
    #[error("Stream is not being recorded")]
    NotRecording,
}

/// Something a media session's owner has to know.
#[derive(Debug, Clone)]
pub enum MediaEvent {
    /// The peer connection is up; the status is now PUBLISHING or PLAYING.
    Connected,
    /// The media session failed; `info` says why (WCS wording).
    Failed(String),
    /// The owner must end the session (REST terminate, the publisher left, shutdown).
    Stop(String),
    /// Recording of the stream started or stopped (every publisher and viewer is told).
    Recording {
        /// Recording now.
        active: bool,
        /// The file being (or last) written.
        file_name: String,
    },
    /// A publisher's stream event for this viewer (mute, unmute, data).
    StreamEvent {
        /// Event type, e.g. `audioMuted` or `data`.
        kind: String,
        /// Event payload.
        payload: Value,
    },
}

/// An event for one media session.
#[derive(Debug, Clone)]
pub struct MediaNotice {
    /// Which media session.
    pub media_session_id: String,
    /// What happened.
    pub event: MediaEvent,
}

/// Capacity of an owner's mailbox. Events are rare (state changes, mute toggles); when a mailbox is
/// full, stop requests are still delivered from a task and other events are dropped and logged.
pub const MAILBOX_CAPACITY: usize = 256;

/// Who asks, for a publish or play.
#[derive(Debug, Clone)]
pub struct MediaRequest {
    /// The signaling session (or API client) that owns the media session.
    pub session_id: String,
    /// The client's application key.
    pub app_key: String,
    /// Client-chosen media session id.
    pub media_session_id: String,
    /// Stream name.
    pub name: String,
    /// The SDP offer, for sources that negotiate one (kept for hooks too).
    pub sdp: String,
    /// Whether this is to be recorded.
    pub record: bool,
    /// `custom` object from the client, kept for hooks.
    pub custom: Value,
    /// The client's address, when it has one (limits on pending negotiations count per address).
    pub client: Option<std::net::IpAddr>,
    /// The client's login (WCS `custom.login` of the connection), empty when it has none; used in
    /// recording file names.
    pub login: String,
    /// What a publisher that comes back must present to resume its stream during the reconnect
    /// grace (a source's own idea of "the same publisher"); `None`: it may not resume.
    pub resume_token: Option<String>,
    /// Where this session's events go.
    pub events: mpsc::Sender<MediaNotice>,
}

/// Counts for leak checks and metrics.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct EngineCounts {
    /// Streams being published.
    pub streams: usize,
    /// Media sessions (publishers and viewers).
    pub media_sessions: usize,
    /// Pipelines alive.
    pub pipelines: usize,
    /// Codec bridges running.
    pub bridges: usize,
    /// Shared outputs running (one per stream and format).
    pub shared_outputs: usize,
    /// Bytes queued in shared outputs for their users and not yet written.
    pub output_queued_bytes: u64,
    /// Messages shared outputs did not send to users that had fallen behind (live streams).
    pub output_dropped_messages: u64,
    /// Jobs the engine runs (pulls, WHIP/WHEP resources, recordings).
    pub jobs: usize,
}

struct EngineInner {
    config: Config,
    pipelines: pipeline::PipelineCounter,
    limits: ProducerLimits,
    registry: Mutex<Registry>,
    jobs: Mutex<jobs::Jobs>,
    events: broadcast::Sender<EngineEvent>,
    admission: RwLock<Arc<dyn Admission>>,
    resolvers: RwLock<Vec<Arc<dyn Resolver>>>,
}

/// How a source publishes: what the engine must know before its media flows.
#[derive(Debug, Clone)]
pub struct PublishSpec {
    /// `WebRTC`, `RTMP`, … as REST and hooks report it.
    pub provider: &'static str,
    /// The video track's codec, when known now (more can be announced later with
    /// [`StreamMedia::add_track`]).
    pub video: Option<Codec>,
    /// The audio track's codec, when known now.
    pub audio: Option<Codec>,
    /// Whether the tracks are all known now; otherwise the source calls
    /// [`StreamMedia::tracks_complete`] once it has demuxed them, and viewers wait for that.
    pub complete: bool,
    /// The source may send B-frames (encoders do; browsers never do).
    pub may_reorder: bool,
    /// The source is connected now (PUBLISHING); otherwise it is PENDING until
    /// [`Engine::connected`].
    pub connected: bool,
    /// A dropped publisher may come back within the reconnect grace and resume the stream (given
    /// the same `MediaRequest::resume_token`), its viewers kept meanwhile.
    pub resumable: bool,
}

/// A cheap, cloneable handle to the engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

/// A published stream, as the jobs that consume it see it.
#[derive(Clone)]
pub struct StreamRef {
    /// Stream name.
    pub name: String,
    /// The publisher's media session id.
    pub publisher: String,
    /// Its media.
    pub media: Arc<StreamMedia>,
    /// The publisher's login, when it has one.
    pub login: String,
    /// The publisher asked for the stream to be recorded.
    pub record_requested: bool,
}

/// A handle that does not keep the engine alive, for callbacks and timers.
#[derive(Clone)]
pub struct WeakEngine(std::sync::Weak<EngineInner>);

impl WeakEngine {
    /// The engine, while it exists.
    pub fn upgrade(&self) -> Option<Engine> {
        self.0.upgrade().map(|inner| Engine { inner })
    }
}

/// Checks a stream name a client asks to publish or play: 1 to 255 bytes, no control characters.
pub fn valid_name(name: &str) -> Result<(), EngineError> {
    if name.is_empty() {
        return Err(EngineError::Invalid("Stream name is empty".into()));
    }
    if name.len() > 255 || name.chars().any(char::is_control) {
        return Err(EngineError::Invalid(
            "Stream name must be 1 to 255 printable characters".into(),
        ));
    }
    Ok(())
}

fn notify(tx: &mpsc::Sender<MediaNotice>, media_session_id: &str, event: MediaEvent) {
    let notice = MediaNotice {
        media_session_id: media_session_id.to_owned(),
        event,
    };
    match tx.try_send(notice) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(n)) => {
            if matches!(n.event, MediaEvent::Stop(_) | MediaEvent::Failed(_)) {
                // Must not be lost: deliver it once the owner catches up.
                let tx = tx.clone();
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move {
                        let _ = tx.send(n).await;
                    });
                }
            } else {
                tracing::warn!(media_session = %n.media_session_id, "mailbox full; event dropped");
            }
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}

impl Engine {
    /// Creates the engine.
    pub fn new(config: Config) -> Self {
        let limits = ProducerLimits {
            gop_cache_bytes: config.engine.gop_cache_bytes,
            consumer_queue_bytes: config.engine.consumer_queue_bytes,
            keyframe_request_interval: Duration::from_millis(
                config.engine.keyframe_request_interval_ms,
            ),
        };
        Self {
            inner: Arc::new(EngineInner {
                config,
                pipelines: pipeline::PipelineCounter::default(),
                limits,
                registry: Mutex::new(Registry::default()),
                jobs: Mutex::default(),
                events: events::channel(),
                admission: RwLock::new(Arc::new(admission::AdmitAll)),
                resolvers: RwLock::default(),
            }),
        }
    }

    /// A handle that does not keep the engine alive.
    pub fn downgrade(&self) -> WeakEngine {
        WeakEngine(Arc::downgrade(&self.inner))
    }

    /// The fan-out limits every producer and consumer queue uses.
    pub fn limits(&self) -> ProducerLimits {
        self.inner.limits
    }

    /// The pipeline counter every pipeline of this engine registers with.
    pub fn pipelines(&self) -> &pipeline::PipelineCounter {
        &self.inner.pipelines
    }

    /// Subscribes to the engine's events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.inner.events.subscribe()
    }

    /// Announces an event to every subscriber (none listening is fine).
    pub fn emit(&self, event: EngineEvent) {
        let _ = self.inner.events.send(event);
    }

    /// Puts `admission` in charge of every publish and play from now on.
    pub fn set_admission(&self, admission: Arc<dyn Admission>) {
        if let Ok(mut a) = self.inner.admission.write() {
            *a = admission;
        }
    }

    /// Adds a resolver, asked (in the order added) for names nobody publishes.
    pub fn add_resolver(&self, resolver: Arc<dyn Resolver>) {
        if let Ok(mut r) = self.inner.resolvers.write() {
            r.push(resolver);
        }
    }

    async fn admit(
        &self,
        req: &MediaRequest,
        action: Action,
        provider: &'static str,
    ) -> Result<Admitted, EngineError> {
        let admission = match self.inner.admission.read() {
            Ok(a) => a.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let ask = AdmissionRequest {
            action,
            name: req.name.clone(),
            media_session_id: req.media_session_id.clone(),
            session_id: req.session_id.clone(),
            app_key: req.app_key.clone(),
            provider,
            client: req.client,
            custom: req.custom.clone(),
            record: req.record,
            sdp: req.sdp.clone(),
            login: req.login.clone(),
        };
        admission.admit(ask).await.inspect_err(|e| {
            tracing::info!(stream = %crate::redact::Escaped(&req.name), ?action, "not admitted: {e}");
        })
    }

    /// Makes stream `name` with the first resolver that knows it; false when none does.
    async fn resolve(&self, name: &str) -> Result<bool, EngineError> {
        let resolvers: Vec<Arc<dyn Resolver>> = match self.inner.resolvers.read() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        };
        for r in resolvers {
            if let Some(fut) = r.resolve(self, name) {
                fut.await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        match self.inner.registry.lock() {
            Ok(g) => g,
            // A panic elsewhere must not take the whole server down with it.
            Err(p) => p.into_inner(),
        }
    }

    /// How many viewers stream `name` has now.
    pub fn viewer_count(&self, name: &str) -> usize {
        self.registry()
            .streams
            .get(name)
            .map_or(0, |s| s.viewers.len())
    }

    /// The published stream with this name or this (publisher's or viewer's) media session id.
    pub fn stream_of(&self, name: Option<&str>, msid: Option<&str>) -> Option<StreamRef> {
        let reg = self.registry();
        let name = match (name, msid) {
            (Some(n), _) => n.to_owned(),
            (None, Some(m)) => reg.sessions.get(m)?.info.name.clone(),
            (None, None) => return None,
        };
        let entry = reg.streams.get(&name)?;
        let publisher = reg.sessions.get(&entry.publisher);
        Some(StreamRef {
            name,
            publisher: entry.publisher.clone(),
            media: entry.media.clone(),
            login: publisher.map(|p| p.login.clone()).unwrap_or_default(),
            record_requested: publisher.is_some_and(|p| p.info.record),
        })
    }

    /// Recording of stream `name` started or stopped: the publisher's description says so
    /// (`record`, `recordName`), the publisher and every viewer are told, and the event goes out.
    pub fn recording_changed(
        &self,
        name: &str,
        active: bool,
        file_name: &str,
        reason: Option<String>,
    ) {
        let publisher = {
            let mut reg = self.registry();
            // A recording that ends with its stream is still announced (the stream is gone then,
            // so there is no one of it left to tell but the event's subscribers).
            let publisher = reg
                .streams
                .get(name)
                .map(|s| s.publisher.clone())
                .unwrap_or_default();
            if let Some(p) = reg.sessions.get_mut(&publisher) {
                p.info.record = active;
                p.info.record_name = Some(file_name.to_owned());
                notify(
                    &p.events,
                    &publisher,
                    MediaEvent::Recording {
                        active,
                        file_name: file_name.to_owned(),
                    },
                );
            }
            reg.notify_viewers(name, |_| MediaEvent::Recording {
                active,
                file_name: file_name.to_owned(),
            });
            publisher
        };
        self.emit(if active {
            EngineEvent::RecordingStarted {
                name: name.to_owned(),
                media_session_id: publisher,
                file_name: file_name.to_owned(),
            }
        } else {
            EngineEvent::RecordingStopped {
                name: name.to_owned(),
                media_session_id: publisher,
                file_name: file_name.to_owned(),
                reason,
            }
        });
    }

    fn status(&self, msid: &str) -> Option<StreamStatus> {
        self.registry().sessions.get(msid).map(|s| s.info.status)
    }

    /// Passes a publisher's stream event (mute, unmute, data) to every viewer of its stream.
    pub fn stream_event(
        &self,
        publisher_msid: &str,
        kind: &str,
        payload: Value,
    ) -> Result<usize, EngineError> {
        let mut reg = self.registry();
        let name = {
            let s = reg
                .sessions
                .get_mut(publisher_msid)
                .ok_or(EngineError::StreamNotFound)?;
            if !s.info.published {
                return Err(EngineError::Invalid(
                    "Only a publisher sends stream events".into(),
                ));
            }
            s.info.apply_event(kind);
            s.info.name.clone()
        };
        Ok(reg.notify_viewers(&name, |_| MediaEvent::StreamEvent {
            kind: kind.to_owned(),
            payload: payload.clone(),
        }))
    }

    /// Sends a stream event to the viewers of stream `name` (REST `/stream/event/send`).
    pub fn stream_event_by_name(
        &self,
        name: &str,
        kind: &str,
        payload: Value,
    ) -> Result<usize, EngineError> {
        let publisher = self
            .registry()
            .streams
            .get(name)
            .map(|s| s.publisher.clone())
            .ok_or(EngineError::StreamNotFound)?;
        self.stream_event(&publisher, kind, payload)
    }

    /// Every media session, publishers first.
    pub fn find_all(&self) -> Vec<StreamInfo> {
        let reg = self.registry();
        let mut out: Vec<StreamInfo> = reg
            .sessions
            .values()
            .map(|s| reg.snapshot(&s.info))
            .collect();
        out.sort_by(|a, b| {
            b.published
                .cmp(&a.published)
                .then(a.create_date.cmp(&b.create_date))
        });
        out
    }

    /// Media sessions matching a name and/or a media session id (and `published` when given).
    pub fn find(
        &self,
        name: Option<&str>,
        msid: Option<&str>,
        published: Option<bool>,
    ) -> Vec<StreamInfo> {
        self.find_all()
            .into_iter()
            .filter(|s| name.is_none_or(|n| s.name == n))
            .filter(|s| msid.is_none_or(|m| s.media_session_id == m))
            .filter(|s| published.is_none_or(|p| s.published == p))
            .collect()
    }

    /// Asks the owners of the matching media sessions to end them; returns how many.
    pub fn terminate(&self, matching: &[String], info: &str) -> usize {
        let reg = self.registry();
        let mut n = 0;
        for msid in matching {
            if let Some(s) = reg.sessions.get(msid) {
                notify(&s.events, msid, MediaEvent::Stop(info.to_owned()));
                n += 1;
            }
        }
        n
    }

    /// Stops accepting new media and asks every owner to end its sessions.
    pub fn shutdown(&self) {
        let ids: Vec<String> = {
            let mut reg = self.registry();
            reg.shutting_down = true;
            reg.sessions.keys().cloned().collect()
        };
        self.terminate(&ids, "Requested stream shutdown");
        self.stop_all_jobs();
    }

    /// Counts for metrics and leak checks.
    pub fn counts(&self) -> EngineCounts {
        let reg = self.registry();
        let mut c = EngineCounts {
            streams: reg.streams.len(),
            media_sessions: reg.sessions.len(),
            pipelines: self.inner.pipelines.get(),
            bridges: reg.streams.values().map(|s| s.media.live_bridges()).sum(),
            shared_outputs: 0,
            output_queued_bytes: 0,
            output_dropped_messages: 0,
            jobs: self.jobs_lock().table.len(),
        };
        for s in reg.streams.values() {
            for o in s.media.live_shared_outputs() {
                let (queued, dropped) = o.backlog();
                c.shared_outputs += 1;
                c.output_queued_bytes += queued;
                c.output_dropped_messages += dropped;
            }
        }
        c
    }

    fn remove_publisher(&self, msid: &str, allow_grace: bool) {
        let mut reg = self.registry();
        let Some(session) = reg.sessions.remove(msid) else {
            return;
        };
        let name = session.info.name;
        let grace = self.inner.config.rtmp_reconnect_grace;
        let resumable = reg
            .streams
            .get(&name)
            .is_some_and(|s| s.publisher == msid && s.resume_token.is_some());
        if allow_grace && resumable && !grace.is_zero() && !reg.shutting_down {
            // An encoder that drops and comes back soon (network blip, OBS restart) resumes the
            // same stream: viewers stay attached to its producers meanwhile.
            if let Some(s) = reg.streams.get_mut(&name) {
                s.publisher = format!("orphan:{msid}");
            }
            tracing::info!(stream = %crate::redact::Escaped(&name), ?grace, "publisher gone; keeping the stream for a reconnect");
            let weak = Arc::downgrade(&self.inner);
            let orphan = format!("orphan:{msid}");
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let msid = msid.to_owned();
                rt.spawn(async move {
                    tokio::time::sleep(grace).await;
                    let Some(inner) = weak.upgrade() else { return };
                    let engine = Engine { inner };
                    let ended = {
                        let mut reg = engine.registry();
                        let ended = reg.streams.get(&name).is_some_and(|s| s.publisher == orphan);
                        if ended {
                            reg.notify_viewers(&name, |_| MediaEvent::Stop("Stopped by publisher stop".into()));
                            reg.streams.remove(&name);
                            tracing::info!(stream = %crate::redact::Escaped(&name), "publisher did not come back; unpublished");
                        }
                        ended
                    };
                    if ended {
                        engine.stream_ended(&name, &msid);
                    }
                });
                return;
            }
        }
        if reg.streams.get(&name).is_some_and(|s| s.publisher == msid) {
            reg.notify_viewers(&name, |_| {
                MediaEvent::Stop("Stopped by publisher stop".into())
            });
            reg.streams.remove(&name);
            drop(reg);
            tracing::info!(stream = %crate::redact::Escaped(&name), media_session = %msid, "unpublished");
            self.stream_ended(&name, msid);
        }
    }

    /// What ends with a stream: its recordings (and other jobs about it that cannot outlive it),
    /// and the announcement.
    fn stream_ended(&self, name: &str, msid: &str) {
        self.stop_jobs_of(name, "recording");
        self.emit(EngineEvent::Unpublished {
            name: name.to_owned(),
            media_session_id: msid.to_owned(),
        });
    }

    fn remove_viewer(&self, msid: &str) {
        let session = {
            let mut reg = self.registry();
            let Some(session) = reg.sessions.remove(msid) else {
                return;
            };
            if let Some(s) = reg.streams.get_mut(&session.info.name) {
                s.viewers.remove(msid);
            }
            session
        };
        tracing::debug!(stream = %crate::redact::Escaped(&session.info.name), media_session = %msid, "viewer left");
        self.emit(EngineEvent::Stopped {
            name: session.info.name,
            media_session_id: msid.to_owned(),
        });
    }
}

/// The first characters of an id, for readable pipeline names.
pub fn short(id: &str) -> &str {
    let end = id.char_indices().nth(8).map(|(i, _)| i).unwrap_or(id.len());
    &id[..end]
}

/// How long a viewer waits for a source that announces its tracks late (a demuxer).
const TRACKS_TIMEOUT: Duration = Duration::from_secs(5);
