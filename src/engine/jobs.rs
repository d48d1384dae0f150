//! What the server owns rather than a client: pulls from other servers, WHIP/WHEP resources,
//! recordings (later pushes, transcoders, mixers). Each is a job of the engine: listed by kind,
//! stopped by id or at shutdown, and its end announced on the event stream. A job is whatever keeps
//! it running (a publish or play handle, a recording); dropping that ends it.

use serde_json::Value;
use std::any::Any;
use std::collections::BTreeMap;

/// One job.
pub(super) struct Job {
    pub(super) kind: &'static str,
    pub(super) name: String,
    /// What REST lists for it.
    pub(super) info: Value,
    /// What keeps it running; dropped when the job ends.
    pub(super) keep: Box<dyn Any + Send>,
}

/// A job as listed.
#[derive(Debug, Clone)]
pub struct JobInfo {
    /// Job id.
    pub id: String,
    /// What kind of job (`pull-rtmp`, `whip`, `whep`, `recording`).
    pub kind: &'static str,
    /// The stream it is about.
    pub name: String,
    /// What it says about itself.
    pub info: Value,
}

/// The engine's jobs by id (ordered, so listings are stable).
#[derive(Default)]
pub(super) struct Jobs {
    pub(super) table: BTreeMap<String, Job>,
}

impl Jobs {
    pub(super) fn list(&self, kind: Option<&str>) -> Vec<JobInfo> {
        self.table
            .iter()
            .filter(|(_, j)| kind.is_none_or(|k| j.kind == k))
            .map(|(id, j)| JobInfo {
                id: id.clone(),
                kind: j.kind,
                name: j.name.clone(),
                info: j.info.clone(),
            })
            .collect()
    }
}
