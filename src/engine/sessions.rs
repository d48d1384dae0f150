//! Media sessions through the seam: [`Engine::publish`] and [`Engine::play`] (admission, name
//! resolution, registration), and the state changes a source or output reports back (connected,
//! failed, never connected).

use super::admission::{Action, Admitted};
use super::registry::{Registry, SessionEntry, StreamEntry};
use super::{
    notify, valid_name, Engine, EngineError, EngineEvent, MediaEvent, MediaRequest, PlayHandle,
    PublishHandle, PublishSpec, StreamInfo, StreamMedia, StreamStatus, TRACKS_TIMEOUT,
};
use std::sync::Arc;
use std::time::Duration;

impl Engine {
    /// Publishes stream `req.name`: admission, then the name is reserved (or, for a resumable
    /// source presenting the same resume token during the reconnect grace, the waiting stream is
    /// taken over). The handle gives the stream's media (its producers) to the source, which builds
    /// its pipeline and hands it over with [`PublishHandle::set_source`]. Dropping the handle
    /// unpublishes.
    pub async fn publish(
        &self,
        req: &MediaRequest,
        spec: PublishSpec,
    ) -> Result<PublishHandle, EngineError> {
        valid_name(&req.name)?;
        if req.media_session_id.is_empty() {
            return Err(EngineError::Invalid("MediaSessionId is null".into()));
        }
        let admitted = self.admit(req, Action::Publish, spec.provider).await?;
        let changed;
        let req = if admitted == Admitted::default() {
            req
        } else {
            changed = MediaRequest {
                name: admitted.name.unwrap_or_else(|| req.name.clone()),
                record: admitted.record.unwrap_or(req.record),
                ..req.clone()
            };
            valid_name(&changed.name)?;
            &changed
        };
        let media = {
            let mut reg = self.registry();
            if reg.shutting_down {
                return Err(EngineError::ShuttingDown);
            }
            if reg.sessions.contains_key(&req.media_session_id) {
                return Err(EngineError::MediaSessionInUse);
            }
            if !spec.connected {
                self.check_pending(&reg, req)?;
            }
            let media = match reg.streams.get_mut(&req.name) {
                // The same publisher coming back within the grace period takes its stream over;
                // anyone else is refused until the grace ends, so viewers never silently watch a
                // different publisher.
                Some(entry)
                    if entry.publisher.starts_with("orphan:")
                        && req.resume_token.is_some()
                        && entry.resume_token == req.resume_token =>
                {
                    entry.publisher = req.media_session_id.clone();
                    entry.media.next_generation();
                    tracing::info!(stream = %crate::redact::Escaped(&req.name), viewers = entry.viewers.len(), "publisher resumed its stream");
                    entry.media.clone()
                }
                Some(entry) => {
                    if entry.publisher.starts_with("orphan:") {
                        tracing::warn!(stream = %crate::redact::Escaped(&req.name), "publish refused: the stream waits for its own publisher to come back");
                    }
                    return Err(EngineError::NameInUse);
                }
                None => {
                    let media = StreamMedia::new(
                        &req.name,
                        spec.video,
                        spec.audio,
                        spec.may_reorder,
                        self.inner.limits,
                        self.inner.pipelines.clone(),
                    );
                    if spec.complete {
                        media.tracks_complete();
                    }
                    reg.streams.insert(
                        req.name.clone(),
                        StreamEntry {
                            media: media.clone(),
                            publisher: req.media_session_id.clone(),
                            viewers: Default::default(),
                            resume_token: spec
                                .resumable
                                .then(|| req.resume_token.clone())
                                .flatten(),
                        },
                    );
                    media
                }
            };
            let mut info = StreamInfo::new(req, true, &media, spec.provider);
            if spec.connected {
                info.status = StreamStatus::Publishing;
            }
            reg.sessions.insert(
                req.media_session_id.clone(),
                SessionEntry {
                    info,
                    events: req.events.clone(),
                    client: req.client,
                    login: req.login.clone(),
                },
            );
            media
        };
        if spec.connected {
            self.emit(EngineEvent::Published {
                name: req.name.clone(),
                media_session_id: req.media_session_id.clone(),
                provider: spec.provider,
            });
        }
        tracing::info!(stream = %crate::redact::Escaped(&req.name), media_session = %req.media_session_id, provider = spec.provider, "publishing");
        Ok(PublishHandle {
            engine: self.clone(),
            media_session_id: req.media_session_id.clone(),
            media,
            source: None,
        })
    }

    /// Plays stream `req.name`: admission, then (when nobody publishes the name) the resolvers,
    /// then the viewer is registered. The handle gives the stream's media to the output, which
    /// the protocol builds and hands over with [`PlayHandle::set_output`]. A viewer that is not
    /// `connected` yet is PENDING until [`Engine::connected`].
    pub async fn play(
        &self,
        req: &MediaRequest,
        provider: &'static str,
        connected: bool,
    ) -> Result<PlayHandle, EngineError> {
        if req.media_session_id.is_empty() {
            return Err(EngineError::Invalid("MediaSessionId is null".into()));
        }
        valid_name(&req.name).map_err(|_| EngineError::StreamNotFound)?;
        let admitted = self.admit(req, Action::Play, provider).await?;
        let changed;
        let req = match admitted.name {
            Some(name) => {
                valid_name(&name).map_err(|_| EngineError::StreamNotFound)?;
                changed = MediaRequest {
                    name,
                    ..req.clone()
                };
                &changed
            }
            None => req,
        };
        let known = self.registry().streams.contains_key(&req.name);
        if !known && !self.resolve(&req.name).await? {
            return Err(EngineError::StreamNotFound);
        }
        let status = if connected {
            StreamStatus::Playing
        } else {
            StreamStatus::Pending
        };
        let media = self.register_viewer(req, provider, status)?;
        let handle = PlayHandle {
            engine: self.clone(),
            media_session_id: req.media_session_id.clone(),
            media,
            output: None,
        };
        // A source that learns its tracks late (a demuxer) is waited for, but not forever.
        handle.media.wait_tracks(TRACKS_TIMEOUT).await;
        if connected {
            self.emit(EngineEvent::Playing {
                name: req.name.clone(),
                media_session_id: req.media_session_id.clone(),
                provider,
            });
        }
        Ok(handle)
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
                login: req.login.clone(),
            },
        );
        Ok(media)
    }

    /// Refuses one more negotiation from a client that has its fill pending: each holds a
    /// pipeline, a media port and perhaps a stream name until it connects or times out.
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

    /// A PENDING media session is connected: it becomes PUBLISHING or PLAYING, its owner is told,
    /// and the event goes out.
    pub fn connected(&self, msid: &str) {
        let done = {
            let mut reg = self.registry();
            match reg.sessions.get_mut(msid) {
                Some(s) if s.info.status == StreamStatus::Pending => {
                    s.info.status = if s.info.published {
                        StreamStatus::Publishing
                    } else {
                        StreamStatus::Playing
                    };
                    Some((
                        s.events.clone(),
                        s.info.published,
                        s.info.name.clone(),
                        s.info.media_provider,
                    ))
                }
                _ => None,
            }
        };
        let Some((tx, published, name, provider)) = done else {
            return;
        };
        notify(&tx, msid, MediaEvent::Connected);
        let media_session_id = msid.to_owned();
        self.emit(if published {
            EngineEvent::Published {
                name,
                media_session_id,
                provider,
            }
        } else {
            EngineEvent::Playing {
                name,
                media_session_id,
                provider,
            }
        });
    }

    /// A media session failed: its status is FAILED and its owner is told why (WCS wording).
    pub fn failed(&self, msid: &str, info: &str) {
        let found = {
            let mut reg = self.registry();
            reg.sessions.get_mut(msid).map(|s| {
                s.info.status = StreamStatus::Failed;
                (s.events.clone(), s.info.name.clone())
            })
        };
        if let Some((tx, name)) = found {
            notify(&tx, msid, MediaEvent::Failed(info.to_owned()));
            self.emit(EngineEvent::Failed {
                name,
                media_session_id: msid.to_owned(),
                info: info.to_owned(),
            });
        }
    }

    /// Fails the media session with `info` if it is still PENDING after `timeout`: a
    /// negotiation that never connects gives its name (and its port) back.
    pub fn fail_if_pending_after(&self, msid: &str, timeout: Duration, info: &'static str) {
        let weak = Arc::downgrade(&self.inner);
        let msid = msid.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let Some(inner) = weak.upgrade() else { return };
            let engine = Engine { inner };
            if engine.status(&msid) == Some(StreamStatus::Pending) {
                engine.failed(&msid, info);
            }
        });
    }
}
