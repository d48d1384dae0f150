//! The handles front ends hold: a publish handle keeps a stream alive, a play handle a viewer.
//! Dropping one undoes what it stands for.

use super::bridge::Bridge;
use super::{Engine, RtmpOut};
use crate::webrtc;
use std::sync::Arc;

/// Keeps a published stream alive; dropping it unpublishes the stream and tells its viewers.
pub struct PublishHandle {
    pub(super) engine: Engine,
    pub(super) media_session_id: String,
    pub(super) ingest: Option<IngestKind>,
    pub(super) rtmp_out: Option<Arc<RtmpOut>>,
}

pub(super) enum IngestKind {
    WebRtc(#[allow(dead_code)] webrtc::publish::Ingest),
    Rtmp(crate::rtmp::ingest::RtmpIngest),
}

impl PublishHandle {
    /// The media session id.
    pub fn media_session_id(&self) -> &str {
        &self.media_session_id
    }

    /// Hands one RTMP audio/video message to an RTMP ingest (ignored for other ingests).
    pub fn push_rtmp(&self, kind: u8, ts_ms: u32, body: &[u8]) {
        if let Some(IngestKind::Rtmp(i)) = &self.ingest {
            i.push(kind, ts_ms, body);
        }
    }
}

impl PublishHandle {
    /// Ends the stream now, for a deliberate stop (the client unpublished, REST terminate): no
    /// reconnect grace period, viewers are told at once.
    pub fn unpublish(mut self) {
        self.engine.remove_publisher(&self.media_session_id, false);
        self.ingest.take();
    }
}

impl Drop for PublishHandle {
    /// Dropped without [`PublishHandle::unpublish`]: the publisher went away (an RTMP stream then
    /// waits for it during the grace period).
    fn drop(&mut self) {
        self.engine.remove_publisher(&self.media_session_id, true);
        self.ingest.take();
    }
}

/// Keeps a viewer alive; dropping it detaches the viewer and stops its pipeline.
pub struct PlayHandle {
    pub(super) engine: Engine,
    pub(super) media_session_id: String,
    pub(super) viewer: Option<webrtc::play::Viewer>,
    pub(super) _bridges: Vec<Arc<Bridge>>,
    pub(super) _rtmp: Option<Arc<RtmpOut>>,
}

impl PlayHandle {
    /// A handle for a registered viewer, before its pipeline exists (dropping it unregisters).
    pub(super) fn new(engine: &Engine, req: &super::MediaRequest) -> Self {
        Self {
            engine: engine.clone(),
            media_session_id: req.media_session_id.clone(),
            viewer: None,
            _bridges: Vec::new(),
            _rtmp: None,
        }
    }

    /// The media session id.
    pub fn media_session_id(&self) -> &str {
        &self.media_session_id
    }
}

impl Drop for PlayHandle {
    fn drop(&mut self) {
        self.engine.remove_viewer(&self.media_session_id);
        self.viewer.take();
    }
}
