//! RTMP publishers, pulls and viewers in the engine: an RTMP stream's producers are fed by an
//! `flvdemux` ingest; its viewers share the stream's RTMP output.

use super::handles::IngestKind;
use super::media::Codec;
use super::registry::{SessionEntry, StreamEntry};
use super::{
    notify, short, valid_name, Engine, EngineError, MediaEvent, MediaRequest, PlayHandle,
    PublishHandle, StreamInfo, StreamMedia, StreamStatus,
};

impl Engine {
    /// Registers an RTMP publisher (H.264 + AAC) and starts its ingest pipeline.
    pub fn publish_rtmp(&self, req: MediaRequest) -> Result<PublishHandle, EngineError> {
        self.publish_flv(req, crate::rtmp::ingest::FlvSource::Push)
    }

    /// Pulls `url` from another RTMP server as the stream `req.name`.
    pub fn pull_rtmp(&self, req: MediaRequest, url: &str) -> Result<PublishHandle, EngineError> {
        self.publish_flv(req, crate::rtmp::ingest::FlvSource::Pull(url))
    }

    fn publish_flv(
        &self,
        req: MediaRequest,
        source: crate::rtmp::ingest::FlvSource<'_>,
    ) -> Result<PublishHandle, EngineError> {
        valid_name(&req.name)?;
        let limits = self.inner.limits;
        let media = {
            let mut reg = self.registry();
            if reg.shutting_down {
                return Err(EngineError::ShuttingDown);
            }
            if reg.sessions.contains_key(&req.media_session_id) {
                return Err(EngineError::MediaSessionInUse);
            }
            let media = match reg.streams.get_mut(&req.name) {
                // The same encoder coming back within the grace period takes its stream over;
                // anyone else is refused until the grace ends, so viewers never silently watch a
                // different publisher.
                Some(entry)
                    if entry.publisher.starts_with("orphan:")
                        && req.resume_token.is_some()
                        && entry.resume_token == req.resume_token =>
                {
                    entry.publisher = req.media_session_id.clone();
                    tracing::info!(stream = %req.name, viewers = entry.viewers.len(), "RTMP publisher resumed its stream");
                    entry.media.clone()
                }
                Some(entry) => {
                    if entry.publisher.starts_with("orphan:") {
                        tracing::warn!(stream = %crate::redact::Escaped(&req.name), "RTMP publish refused: the stream waits for its own publisher to come back");
                    }
                    return Err(EngineError::NameInUse);
                }
                None => {
                    let media = StreamMedia::new(
                        &req.name,
                        Some(Codec::H264),
                        Some(Codec::Aac),
                        true,
                        limits,
                        self.inner.pipelines.clone(),
                    );
                    reg.streams.insert(
                        req.name.clone(),
                        StreamEntry {
                            media: media.clone(),
                            publisher: req.media_session_id.clone(),
                            viewers: Default::default(),
                            resume_token: req.resume_token.clone(),
                        },
                    );
                    media
                }
            };
            let mut info = StreamInfo::new(&req, true, &media, "RTMP");
            info.status = StreamStatus::Publishing;
            reg.sessions.insert(
                req.media_session_id.clone(),
                SessionEntry {
                    info,
                    events: req.events.clone(),
                    client: req.client,
                },
            );
            media
        };
        let mut handle = PublishHandle {
            engine: self.clone(),
            media_session_id: req.media_session_id.clone(),
            ingest: None,
            rtmp_out: None,
        };
        let mut ingest = crate::rtmp::ingest::RtmpIngest::build(
            &format!("{}-rtmp-{}", req.name, short(&req.media_session_id)),
            &self.inner.pipelines,
            media.video.clone(),
            media.audio.clone(),
            source,
        )
        .map_err(|e| EngineError::Internal(format!("{e:#}")))?;
        let (msid, tx) = (req.media_session_id.clone(), req.events.clone());
        ingest
            .guard
            .watch_bus(move |_| notify(&tx, &msid, MediaEvent::Failed("Failed by error".into())));
        handle.ingest = Some(IngestKind::Rtmp(ingest));
        // RTMP streams mostly have RTMP viewers: mux from the start, so even the first viewer
        // starts at a cached keyframe. The handle keeps the output for the stream's lifetime.
        match media.rtmp_output() {
            Ok(out) => handle.rtmp_out = Some(out),
            Err(e) => tracing::warn!(stream = %req.name, "RTMP output not started: {e:#}"),
        }
        tracing::info!(stream = %req.name, media_session = %req.media_session_id, "publishing over RTMP");
        Ok(handle)
    }

    /// Registers an RTMP viewer of stream `name`; returns its handle and its feed of shared chunks.
    pub fn play_rtmp(
        &self,
        req: MediaRequest,
    ) -> Result<(PlayHandle, crate::rtmp::output::ViewerFeed), EngineError> {
        let media = self.register_viewer(&req, "RTMP", StreamStatus::Playing)?;
        let mut handle = PlayHandle::new(self, &req);
        let out = media
            .rtmp_output()
            .map_err(|e| EngineError::Internal(format!("{e:#}")))?;
        let feed = out.out.subscribe();
        handle._rtmp = Some(out);
        Ok((handle, feed))
    }
}
