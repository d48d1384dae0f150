//! The handles front ends hold: a publish handle keeps a stream alive with its source, a play
//! handle a viewer with its output. Dropping one undoes what it stands for.

use super::seam::{Output, Source};
use super::{Engine, StreamMedia};
use std::sync::Arc;

/// Keeps a published stream alive; dropping it unpublishes the stream and tells its viewers.
pub struct PublishHandle {
    pub(super) engine: Engine,
    pub(super) media_session_id: String,
    pub(super) media: Arc<StreamMedia>,
    pub(super) source: Option<Box<dyn Source>>,
}

impl PublishHandle {
    /// The stream's name (admission may have changed the one asked for).
    pub fn name(&self) -> &str {
        self.media.name()
    }

    /// The media session id.
    pub fn media_session_id(&self) -> &str {
        &self.media_session_id
    }

    /// The stream's media: the producers the source feeds.
    pub fn media(&self) -> &Arc<StreamMedia> {
        &self.media
    }

    /// The engine it belongs to.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Hands the running source over: it lives as long as the stream.
    pub fn set_source(&mut self, source: Box<dyn Source>) {
        self.source = Some(source);
    }

    /// Ends the stream now, for a deliberate stop (the client unpublished, REST terminate): no
    /// reconnect grace period, viewers are told at once.
    pub fn unpublish(mut self) {
        self.engine.remove_publisher(&self.media_session_id, false);
        self.source.take();
    }
}

impl Drop for PublishHandle {
    /// Dropped without [`PublishHandle::unpublish`]: the publisher went away (a resumable stream
    /// then waits for it during the grace period).
    fn drop(&mut self) {
        self.engine.remove_publisher(&self.media_session_id, true);
        self.source.take();
    }
}

/// Keeps a viewer alive; dropping it detaches the viewer and stops its output.
pub struct PlayHandle {
    pub(super) engine: Engine,
    pub(super) media_session_id: String,
    pub(super) media: Arc<StreamMedia>,
    pub(super) output: Option<Box<dyn Output>>,
}

impl PlayHandle {
    /// The name of the stream played (admission may have changed the one asked for).
    pub fn name(&self) -> &str {
        self.media.name()
    }

    /// The media session id.
    pub fn media_session_id(&self) -> &str {
        &self.media_session_id
    }

    /// The stream's media: the producers (and shared outputs) the viewer's output takes from.
    pub fn media(&self) -> &Arc<StreamMedia> {
        &self.media
    }

    /// The engine it belongs to.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Hands the viewer's running output over: it lives as long as the viewer.
    pub fn set_output(&mut self, output: Box<dyn Output>) {
        self.output = Some(output);
    }
}

impl Drop for PlayHandle {
    fn drop(&mut self) {
        self.engine.remove_viewer(&self.media_session_id);
        self.output.take();
    }
}
