//! The engine's tables: streams by name and media sessions by id, with the WCS-shaped description
//! of each media session that REST and hooks report.

use super::{MediaEvent, MediaRequest, StreamMedia};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::mpsc;

/// WCS stream statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamStatus {
    /// Negotiating.
    Pending,
    /// A publisher's media flows.
    Publishing,
    /// A viewer's media flows.
    Playing,
    /// A publisher stopped.
    Unpublished,
    /// A viewer stopped.
    Stopped,
    /// Failed; `info` says why.
    Failed,
}

impl StreamStatus {
    /// The status name as WCS spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Pending => "PENDING",
            StreamStatus::Publishing => "PUBLISHING",
            StreamStatus::Playing => "PLAYING",
            StreamStatus::Unpublished => "UNPUBLISHED",
            StreamStatus::Stopped => "STOPPED",
            StreamStatus::Failed => "FAILED",
        }
    }
}

/// A media session as WCS's REST API and hooks describe it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamInfo {
    /// Application key of the owning connection.
    pub app_key: String,
    /// Owning connection.
    pub session_id: String,
    /// This media session.
    pub media_session_id: String,
    /// Stream name.
    pub name: String,
    /// Publisher (true) or viewer (false).
    pub published: bool,
    /// Whether the stream has video.
    pub has_video: bool,
    /// Whether the stream has audio.
    pub has_audio: bool,
    /// Current status.
    pub status: StreamStatus,
    /// Audio codec name.
    pub audio_codec: String,
    /// Video codec name.
    pub video_codec: String,
    /// Recording requested (or running).
    pub record: bool,
    /// The file being (or last) written, once recording has started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_name: Option<String>,
    /// Video width, once known.
    pub width: i32,
    /// Video height, once known.
    pub height: i32,
    /// `publish` or `play`.
    pub media_type: &'static str,
    /// `WebRTC`, `RTMP` (WCS says `Flash` for RTMP in older builds).
    pub media_provider: &'static str,
    /// Creation time, milliseconds since the epoch.
    pub create_date: u64,
    /// Publisher's audio mute state.
    pub audio_state: MuteState,
    /// Publisher's video mute state.
    pub video_state: MuteState,
    /// The client's `custom` object.
    pub custom: Value,
}

/// Mute state as WCS reports it.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct MuteState {
    /// Muted by the publisher.
    pub muted: bool,
}

impl StreamInfo {
    pub(super) fn new(
        req: &MediaRequest,
        published: bool,
        media: &StreamMedia,
        provider: &'static str,
    ) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Self {
            app_key: req.app_key.clone(),
            session_id: req.session_id.clone(),
            media_session_id: req.media_session_id.clone(),
            name: req.name.clone(),
            published,
            has_video: media.video().is_some(),
            has_audio: media.audio().is_some(),
            status: StreamStatus::Pending,
            audio_codec: media
                .audio()
                .map(|p| p.codec().wcs_name())
                .unwrap_or("")
                .into(),
            video_codec: media
                .video()
                .map(|p| p.codec().wcs_name())
                .unwrap_or("")
                .into(),
            record: req.record,
            record_name: None,
            width: 0,
            height: 0,
            media_type: if published { "publish" } else { "play" },
            media_provider: provider,
            create_date: now,
            audio_state: MuteState::default(),
            video_state: MuteState::default(),
            custom: req.custom.clone(),
        }
    }

    /// Tracks mute state from the publisher's stream events.
    pub(super) fn apply_event(&mut self, kind: &str) {
        match kind {
            "audioMuted" => self.audio_state.muted = true,
            "audioUnmuted" => self.audio_state.muted = false,
            "videoMuted" => self.video_state.muted = true,
            "videoUnmuted" => self.video_state.muted = false,
            _ => {}
        }
    }
}

pub(super) struct StreamEntry {
    pub(super) media: Arc<StreamMedia>,
    pub(super) publisher: String,
    pub(super) viewers: BTreeSet<String>,
    /// Who may resume the stream while its publisher is gone (see `MediaRequest::resume_token`).
    pub(super) resume_token: Option<String>,
}

pub(super) struct SessionEntry {
    pub(super) info: StreamInfo,
    pub(super) events: mpsc::Sender<super::MediaNotice>,
    /// The client's address, for per-client limits.
    pub(super) client: Option<std::net::IpAddr>,
    /// The client's login.
    pub(super) login: String,
}

#[derive(Default)]
pub(super) struct Registry {
    pub(super) streams: HashMap<String, StreamEntry>,
    pub(super) sessions: HashMap<String, SessionEntry>,
    pub(super) shutting_down: bool,
}

impl Registry {
    /// Sends an event to every viewer of stream `name`; returns how many.
    pub(super) fn notify_viewers(&self, name: &str, event: impl Fn(&str) -> MediaEvent) -> usize {
        let Some(stream) = self.streams.get(name) else {
            return 0;
        };
        let mut n = 0;
        for v in &stream.viewers {
            if let Some(s) = self.sessions.get(v) {
                super::notify(&s.events, v, event(v));
                n += 1;
            }
        }
        n
    }

    /// The info with live figures (picture size, publisher mute state) filled in.
    pub(super) fn snapshot(&self, info: &StreamInfo) -> StreamInfo {
        let mut out = info.clone();
        if let Some(stream) = self.streams.get(&info.name) {
            // Tracks a source announced after it started show up here.
            let (video, audio) = (stream.media.video(), stream.media.audio());
            out.has_video = video.is_some();
            out.has_audio = audio.is_some();
            if let Some(v) = &video {
                out.video_codec = v.codec().wcs_name().into();
            }
            if let Some(a) = &audio {
                out.audio_codec = a.codec().wcs_name().into();
            }
            if let Some(caps) = video.and_then(|p| p.caps()) {
                if let Some(s) = caps.structure(0) {
                    out.width = s.get::<i32>("width").unwrap_or(0);
                    out.height = s.get::<i32>("height").unwrap_or(0);
                }
            }
            if !info.published {
                if let Some(p) = self.sessions.get(&stream.publisher) {
                    out.audio_state = p.info.audio_state;
                    out.video_state = p.info.video_state;
                }
            }
        }
        out
    }
}
