//! What a source that the server runs itself (a pulled camera, a file) keeps as an engine job:
//! its publish handle, the task that supervises its pipelines, and the pipeline playing now,
//! which the supervisor replaces (a camera dialled again, a file looped).

use crate::engine::pipeline::PipelineGuard;
use crate::engine::{PublishHandle, Source, WeakEngine};
use std::sync::{Arc, Mutex};

/// The pipeline a supervisor runs now.
pub type Current = Arc<Mutex<Option<PipelineGuard>>>;

/// The stream's source: the pipeline running now; the stream's end drops it.
pub struct PipelineSource {
    /// `rtsp`, `file`.
    pub kind: &'static str,
    /// Held for its drop.
    pub current: Current,
}

impl Source for PipelineSource {
    fn kind(&self) -> &'static str {
        self.kind
    }
}

/// What keeps such a source running; dropping it stops the supervisor and ends the stream.
pub struct SupervisedJob {
    /// The stream's publish handle.
    pub handle: Option<PublishHandle>,
    /// The supervising task.
    pub supervisor: tokio::task::JoinHandle<()>,
}

impl Drop for SupervisedJob {
    fn drop(&mut self) {
        self.supervisor.abort();
        if let Some(h) = self.handle.take() {
            h.unpublish();
        }
    }
}

/// Ends the job of `kind` whose publisher is `msid`, from its own supervisor: the job is dropped
/// on another task, as dropping it aborts the supervisor.
pub fn end(engine: &WeakEngine, kind: &'static str, msid: &str) {
    let Some(engine) = engine.upgrade() else {
        return;
    };
    let ids: Vec<String> = engine
        .jobs(Some(kind))
        .into_iter()
        .filter(|j| j.info["localMediaSessionId"] == msid)
        .map(|j| j.id)
        .collect();
    tokio::spawn(async move {
        for id in ids {
            drop(engine.stop_job(&id));
        }
    });
}
