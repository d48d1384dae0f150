//! The engine: the only owner of streams and their pipelines. A stream has a name, one source (a
//! publisher) and any number of consumers (viewers); each is a media session with its own pipeline.
//! Front ends (signaling, REST) hold an [`Engine`] handle and the publish/play handles it returns;
//! they never touch GStreamer. Everything an owner must react to (connected, failed, asked to stop,
//! a stream event for its viewer) arrives on the owner's mailbox as a [`MediaNotice`].

pub mod bridge;
mod handles;
pub mod media;
pub mod pipeline;
pub mod producer;
mod registry;
mod rtmp;
mod stream;
pub mod templates;

use handles::IngestKind;
pub use handles::{PlayHandle, PublishHandle};
pub use registry::{StreamInfo, StreamStatus};
pub use stream::{RtmpOut, StreamMedia};

use crate::config::Config;
use crate::webrtc::{self, sdp, PeerState};
use bridge::Bridge;

use producer::ProducerLimits;
use registry::{Registry, SessionEntry, StreamEntry};
use serde_json::Value;

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

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
    #[error("Server is shutting down")]
    ShuttingDown,
    /// A resource the request needs is used up (media ports); trying later may work.
    #[error("{0}")]
    Unavailable(String),
    /// The client already has as many negotiations pending as it may.
    #[error("Too many pending negotiations from this client")]
    TooManyPending,
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
    /// The SDP offer.
    pub sdp: String,
    /// Whether this is to be recorded.
    pub record: bool,
    /// `custom` object from the client, kept for hooks.
    pub custom: Value,
    /// The client's address, when it has one (limits on pending negotiations count per address).
    pub client: Option<std::net::IpAddr>,
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
    /// Streams with a running RTMP output.
    pub rtmp_outputs: usize,
    /// Bytes queued for RTMP viewers and not yet written.
    pub rtmp_queued_bytes: u64,
    /// Messages not sent to RTMP viewers that had fallen behind (for the live streams).
    pub rtmp_dropped_messages: u64,
}

struct EngineInner {
    config: Config,
    pipelines: pipeline::PipelineCounter,
    limits: ProducerLimits,
    registry: Mutex<Registry>,
}

/// A cheap, cloneable handle to the engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
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
            }),
        }
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

    /// How many host candidates to wait for before answering, when that is knowable.
    fn expected_candidates(&self) -> Option<usize> {
        let ice = &self.inner.config.ice;
        (ice.stun_servers.is_empty() && ice.turn_servers.is_empty() && !ice.addresses.is_empty())
            .then_some(ice.addresses.len())
    }

    fn finish_answer(&self, answer: String) -> String {
        match self.inner.config.ice.announce_address {
            Some(ip) => sdp::announce_address(&answer, ip),
            None => answer,
        }
    }

    /// Publishes a WebRTC stream from an offer. Returns the handle that keeps it alive and the answer.
    pub async fn publish_webrtc(
        &self,
        req: MediaRequest,
    ) -> Result<(PublishHandle, String), EngineError> {
        valid_name(&req.name)?;
        if req.media_session_id.is_empty() {
            return Err(EngineError::Invalid("MediaSessionId is null".into()));
        }
        let offer = self.read_offer(&req.sdp)?;
        let plan =
            webrtc::publish::IngestPlan::from_offer(&offer).ok_or(EngineError::NoCommonCodecs)?;
        let limits = self.inner.limits;
        let media = StreamMedia::new(
            &req.name,
            plan.video.as_ref().map(|(c, _)| c.codec),
            plan.audio.as_ref().map(|(c, _)| c.codec),
            false,
            limits,
            self.inner.pipelines.clone(),
        );
        let info = StreamInfo::new(&req, true, &media, "WebRTC");
        {
            let mut reg = self.registry();
            if reg.shutting_down {
                return Err(EngineError::ShuttingDown);
            }
            if reg.sessions.contains_key(&req.media_session_id) {
                return Err(EngineError::MediaSessionInUse);
            }
            if reg.streams.contains_key(&req.name) {
                return Err(EngineError::NameInUse);
            }
            self.check_pending(&reg, &req)?;
            reg.streams.insert(
                req.name.clone(),
                StreamEntry {
                    media: media.clone(),
                    publisher: req.media_session_id.clone(),
                    viewers: Default::default(),
                    resume_token: None,
                },
            );
            reg.sessions.insert(
                req.media_session_id.clone(),
                SessionEntry {
                    info,
                    events: req.events.clone(),
                    client: req.client,
                },
            );
        }
        // From here on, dropping the handle undoes the registration.
        let mut handle = PublishHandle {
            engine: self.clone(),
            media_session_id: req.media_session_id.clone(),
            ingest: None,
            rtmp_out: None,
        };
        let pipeline_name = format!("{}-publish-{}", req.name, short(&req.media_session_id));
        let mut ingest = webrtc::publish::build(
            &pipeline_name,
            &self.inner.pipelines,
            &plan,
            media.video.clone(),
            media.audio.clone(),
            &self.inner.config.ice,
        )
        .map_err(|e| EngineError::Internal(format!("{e:#}")))?;
        self.watch_session(
            &mut ingest.guard,
            &ingest.webrtcbin,
            &req,
            StreamStatus::Publishing,
        );
        let webrtcbin = ingest.webrtcbin.clone();
        let answer = webrtc::answer(&webrtcbin, &req.sdp, self.expected_candidates());
        handle.ingest = Some(IngestKind::WebRtc(ingest));
        let answer = answer.await.map_err(negotiation_error)?;
        tracing::info!(stream = %crate::redact::Escaped(&req.name), media_session = %req.media_session_id, "publishing");
        tracing::debug!(offer = %req.sdp, answer = %answer, "publish negotiated");
        Ok((handle, self.finish_answer(answer)))
    }

    /// Plays a stream over WebRTC from a (recvonly) offer.
    pub async fn play_webrtc(
        &self,
        req: MediaRequest,
    ) -> Result<(PlayHandle, String), EngineError> {
        if req.media_session_id.is_empty() {
            return Err(EngineError::Invalid("MediaSessionId is null".into()));
        }
        valid_name(&req.name).map_err(|_| EngineError::StreamNotFound)?;
        let offer = self.read_offer(&req.sdp)?;
        let media = self.register_viewer(&req, "WebRTC", StreamStatus::Pending)?;
        let mut handle = PlayHandle::new(self, &req);
        media.probe_reordering().await;
        let (tracks, bridges) = viewer_tracks(&media, &offer)?;
        handle._bridges = bridges;
        let pipeline_name = format!("{}-play-{}", req.name, short(&req.media_session_id));
        let mut viewer = webrtc::play::build(
            &pipeline_name,
            &self.inner.pipelines,
            tracks,
            &self.inner.config.ice,
            &self.inner.limits,
        )
        .map_err(|e| EngineError::Internal(format!("{e:#}")))?;
        self.watch_session(
            &mut viewer.guard,
            &viewer.webrtcbin,
            &req,
            StreamStatus::Playing,
        );
        let webrtcbin = viewer.webrtcbin.clone();
        let answer = webrtc::answer(&webrtcbin, &req.sdp, self.expected_candidates());
        handle.viewer = Some(viewer);
        let answer = answer.await.map_err(negotiation_error)?;
        tracing::info!(stream = %crate::redact::Escaped(&req.name), media_session = %req.media_session_id, "playing");
        let answer = sdp::unify_msid(
            &answer,
            &format!("streamgate-{}", short(&req.media_session_id)),
        );
        Ok((handle, self.finish_answer(answer)))
    }

    /// Registers a viewer media session of stream `req.name`; returns the stream's media.
    fn register_viewer(
        &self,
        req: &MediaRequest,
        provider: &'static str,
        status: StreamStatus,
    ) -> Result<Arc<StreamMedia>, EngineError> {
        let mut reg = self.registry();
        if reg.shutting_down {
            return Err(EngineError::ShuttingDown);
        }
        if reg.sessions.contains_key(&req.media_session_id) {
            return Err(EngineError::MediaSessionInUse);
        }
        if status == StreamStatus::Pending {
            self.check_pending(&reg, req)?;
        }
        let entry = reg
            .streams
            .get_mut(&req.name)
            .ok_or(EngineError::StreamNotFound)?;
        entry.viewers.insert(req.media_session_id.clone());
        let media = entry.media.clone();
        let mut info = StreamInfo::new(req, false, &media, provider);
        info.status = status;
        reg.sessions.insert(
            req.media_session_id.clone(),
            SessionEntry {
                info,
                events: req.events.clone(),
                client: req.client,
            },
        );
        Ok(media)
    }

    /// Checks an offer's size before reading it, then reads it.
    fn read_offer(&self, text: &str) -> Result<Vec<sdp::OfferedMedia>, EngineError> {
        let l = &self.inner.config.limits;
        sdp::check_limits(text, l.max_sdp_bytes, l.max_media_sections)
            .and_then(|()| sdp::analyze_offer(text))
            .map_err(|e| EngineError::BadSdp(e.to_string()))
    }

    /// Refuses one more negotiation from a client that has its fill pending: each holds a
    /// webrtcbin, a media port and perhaps a stream name until it connects or times out.
    fn check_pending(&self, reg: &Registry, req: &MediaRequest) -> Result<(), EngineError> {
        let Some(ip) = req.client else {
            return Ok(());
        };
        let pending = reg
            .sessions
            .values()
            .filter(|s| s.client == Some(ip) && s.info.status == StreamStatus::Pending)
            .count();
        if pending >= self.inner.config.limits.max_pending_per_client {
            tracing::warn!(client = %ip, pending, "negotiation refused: too many pending");
            return Err(EngineError::TooManyPending);
        }
        Ok(())
    }

    /// Wires a media session's peer state, bus errors and connect timeout to its owner's mailbox.
    fn watch_session(
        &self,
        guard: &mut pipeline::PipelineGuard,
        webrtcbin: &gst::Element,
        req: &MediaRequest,
        on_connect: StreamStatus,
    ) {
        let weak = Arc::downgrade(&self.inner);
        let msid = req.media_session_id.clone();
        let tx = req.events.clone();
        webrtc::on_peer_state(webrtcbin, move |state| {
            let Some(inner) = weak.upgrade() else { return };
            let engine = Engine { inner };
            match state {
                PeerState::Connected => {
                    if engine.set_status(&msid, on_connect) {
                        notify(&tx, &msid, MediaEvent::Connected);
                    }
                }
                PeerState::Failed => {
                    engine.set_status(&msid, StreamStatus::Failed);
                    notify(&tx, &msid, MediaEvent::Failed("Failed by ICE error".into()));
                }
            }
        });
        let (msid, tx) = (req.media_session_id.clone(), req.events.clone());
        guard.watch_bus(move |_| notify(&tx, &msid, MediaEvent::Failed("Failed by error".into())));
        let (msid, tx) = (req.media_session_id.clone(), req.events.clone());
        let timeout = self.inner.config.ice.connect_timeout;
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let Some(inner) = weak.upgrade() else { return };
            let engine = Engine { inner };
            if engine.status(&msid) == Some(StreamStatus::Pending) {
                notify(
                    &tx,
                    &msid,
                    MediaEvent::Failed("Failed by ICE timeout".into()),
                );
            }
        });
    }

    /// Sets a media session's status; false when it is gone or already past PENDING.
    fn set_status(&self, msid: &str, status: StreamStatus) -> bool {
        let mut reg = self.registry();
        match reg.sessions.get_mut(msid) {
            Some(s) if s.info.status == StreamStatus::Pending || status == StreamStatus::Failed => {
                s.info.status = status;
                true
            }
            _ => false,
        }
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
    }

    /// Counts for metrics and leak checks.
    pub fn counts(&self) -> EngineCounts {
        let reg = self.registry();
        EngineCounts {
            streams: reg.streams.len(),
            media_sessions: reg.sessions.len(),
            pipelines: self.inner.pipelines.get(),
            bridges: reg.streams.values().map(|s| s.media.live_bridges()).sum(),
            rtmp_queued_bytes: reg.streams.values().map(|s| s.media.rtmp_backlog().0).sum(),
            rtmp_dropped_messages: reg.streams.values().map(|s| s.media.rtmp_backlog().1).sum(),
            rtmp_outputs: reg
                .streams
                .values()
                .filter(|s| s.media.has_rtmp_output())
                .count(),
        }
    }

    fn remove_publisher(&self, msid: &str, allow_grace: bool) {
        let mut reg = self.registry();
        let Some(session) = reg.sessions.remove(msid) else {
            return;
        };
        let name = session.info.name;
        let grace = self.inner.config.rtmp_reconnect_grace;
        let keep = allow_grace
            && session.info.media_provider == "RTMP"
            && !grace.is_zero()
            && !reg.shutting_down;
        if keep && reg.streams.get(&name).is_some_and(|s| s.publisher == msid) {
            // An encoder that drops and comes back soon (network blip, OBS restart) resumes the
            // same stream: viewers stay attached to its producers meanwhile.
            if let Some(s) = reg.streams.get_mut(&name) {
                s.publisher = format!("orphan:{msid}");
            }
            tracing::info!(stream = %name, ?grace, "RTMP publisher gone; keeping the stream for a reconnect");
            let weak = Arc::downgrade(&self.inner);
            let orphan = format!("orphan:{msid}");
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    tokio::time::sleep(grace).await;
                    let Some(inner) = weak.upgrade() else { return };
                    let engine = Engine { inner };
                    let mut reg = engine.registry();
                    if reg.streams.get(&name).is_some_and(|s| s.publisher == orphan) {
                        reg.notify_viewers(&name, |_| MediaEvent::Stop("Stopped by publisher stop".into()));
                        reg.streams.remove(&name);
                        tracing::info!(stream = %name, "RTMP publisher did not come back; unpublished");
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
            tracing::info!(stream = %name, media_session = %msid, "unpublished");
        }
    }

    fn remove_viewer(&self, msid: &str) {
        let mut reg = self.registry();
        let Some(session) = reg.sessions.remove(msid) else {
            return;
        };
        if let Some(s) = reg.streams.get_mut(&session.info.name) {
            s.viewers.remove(msid);
        }
        tracing::debug!(stream = %session.info.name, media_session = %msid, "viewer left");
    }
}

/// A failed negotiation as the client should hear it.
fn negotiation_error(e: webrtc::NegotiationError) -> EngineError {
    match e {
        webrtc::NegotiationError::NoCandidates => {
            tracing::warn!(
                "no free media port for a WebRTC session: the ICE port range is used up"
            );
            EngineError::Unavailable("No free media ports; try again later".into())
        }
        e => EngineError::BadSdp(e.to_string()),
    }
}

fn short(id: &str) -> &str {
    let end = id.char_indices().nth(8).map(|(i, _)| i).unwrap_or(id.len());
    &id[..end]
}

type Tracks = (Vec<webrtc::play::ViewerTrack>, Vec<Arc<Bridge>>);

/// Chooses, per m-line the viewer receives on, the stream's track as is when the viewer takes its
/// codec, or a bridged one in the viewer's most preferred codec otherwise.
fn viewer_tracks(media: &StreamMedia, offer: &[sdp::OfferedMedia]) -> Result<Tracks, EngineError> {
    let mut tracks = Vec::new();
    let mut bridges = Vec::new();
    let (mut have_video, mut have_audio) = (false, false);
    for m in offer.iter().filter(|m| m.peer_receives) {
        let video = m.kind == sdp::Kind::Video;
        if (video && have_video) || (!video && have_audio) {
            continue;
        }
        let Some(source) = media.track(video) else {
            continue;
        };
        // Pass the codec through when the viewer takes it (re-encoded once, shared, if it has
        // B-frames); otherwise bridge to the viewer's preferred codec.
        let chosen = match m.pt_for(source.codec()) {
            Some(oc) => Some((source.codec(), oc.pt)),
            None => m.preferred().map(|oc| (oc.codec, oc.pt)),
        };
        let Some((codec, pt)) = chosen else { continue };
        let (producer, bridge) = media
            .track_in(codec, true)
            .map_err(|e| EngineError::Internal(format!("{e:#}")))?;
        bridges.extend(bridge);
        tracks.push(webrtc::play::ViewerTrack { producer, pt });
        if video {
            have_video = true;
        } else {
            have_audio = true;
        }
    }
    if tracks.is_empty() {
        return Err(EngineError::NoCommonCodecs);
    }
    Ok((tracks, bridges))
}
