//! One engine-wide stream of events that any part of the server can subscribe to: streams published
//! and unpublished, viewers playing and stopped, failures, recordings started and stopped, jobs.
//! REST hooks, the call history, CDN announcements and metrics are its subscribers.

use serde::Serialize;
use tokio::sync::broadcast;

/// How many events a slow subscriber may fall behind before it misses some (and is told how many it
/// missed by `RecvError::Lagged`). Events are small and rare next to media; a subscriber this far
/// behind is stuck, and must not hold the engine back.
pub const EVENT_CAPACITY: usize = 1024;

/// Something that happened to a stream, a media session or a job.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum EngineEvent {
    /// A stream's media flows (status PUBLISHING).
    #[serde(rename_all = "camelCase")]
    Published {
        /// Stream name.
        name: String,
        /// The publisher's media session.
        media_session_id: String,
        /// `WebRTC`, `RTMP`, …
        provider: &'static str,
    },
    /// A stream ended.
    #[serde(rename_all = "camelCase")]
    Unpublished {
        /// Stream name.
        name: String,
        /// The publisher's media session.
        media_session_id: String,
    },
    /// A viewer's media flows (status PLAYING).
    #[serde(rename_all = "camelCase")]
    Playing {
        /// Stream name.
        name: String,
        /// The viewer's media session.
        media_session_id: String,
        /// `WebRTC`, `RTMP`, …
        provider: &'static str,
    },
    /// A viewer left.
    #[serde(rename_all = "camelCase")]
    Stopped {
        /// Stream name.
        name: String,
        /// The viewer's media session.
        media_session_id: String,
    },
    /// A media session failed.
    #[serde(rename_all = "camelCase")]
    Failed {
        /// Stream name.
        name: String,
        /// The media session.
        media_session_id: String,
        /// Why, in WCS's words.
        info: String,
    },
    /// Recording of a stream started.
    #[serde(rename_all = "camelCase")]
    RecordingStarted {
        /// Stream name.
        name: String,
        /// The publisher's media session.
        media_session_id: String,
        /// The file being written.
        file_name: String,
    },
    /// Recording of a stream stopped.
    #[serde(rename_all = "camelCase")]
    RecordingStopped {
        /// Stream name.
        name: String,
        /// The publisher's media session.
        media_session_id: String,
        /// The last file written.
        file_name: String,
        /// Why it stopped, when it was not asked to (a full disk).
        reason: Option<String>,
    },
    /// The engine took over a job (a pull, a WHIP resource, a recording).
    #[serde(rename_all = "camelCase")]
    JobStarted {
        /// Job id.
        id: String,
        /// What kind of job.
        kind: &'static str,
        /// The stream it is about.
        name: String,
    },
    /// A job ended.
    #[serde(rename_all = "camelCase")]
    JobStopped {
        /// Job id.
        id: String,
        /// What kind of job.
        kind: &'static str,
        /// The stream it was about.
        name: String,
    },
}

/// The sending half, kept by the engine.
pub(super) fn channel() -> broadcast::Sender<EngineEvent> {
    broadcast::channel(EVENT_CAPACITY).0
}
