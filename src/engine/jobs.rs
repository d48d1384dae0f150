//! What the server owns rather than a client: pulls from other servers, WHIP/WHEP resources,
//! recordings (later pushes, transcoders, mixers). Each is a job of the engine: listed by kind,
//! stopped by id or at shutdown, and its end announced on the event stream. A job is whatever keeps
//! it running (a publish or play handle, a recording); dropping that ends it.

use super::{Engine, EngineEvent};
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

impl Engine {
    pub(super) fn jobs_lock(&self) -> std::sync::MutexGuard<'_, Jobs> {
        match self.inner.jobs.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Takes over a job: `keep` is whatever keeps it running, `info` what listings show. Returns
    /// its id. The job runs until [`Engine::stop_job`], [`Engine::stop_jobs_of`] or shutdown.
    pub fn start_job(
        &self,
        kind: &'static str,
        name: &str,
        info: Value,
        keep: Box<dyn Any + Send>,
    ) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        self.jobs_lock().table.insert(
            id.clone(),
            Job {
                kind,
                name: name.to_owned(),
                info,
                keep,
            },
        );
        self.emit(EngineEvent::JobStarted {
            id: id.clone(),
            kind,
            name: name.to_owned(),
        });
        id
    }

    /// The jobs of a kind (all of them with `None`).
    pub fn jobs(&self, kind: Option<&str>) -> Vec<JobInfo> {
        self.jobs_lock().list(kind)
    }

    /// Runs `f` on what keeps the job of `kind` named `name` running, when that is a `K` (an
    /// operation reaching its own state: a mixer adding an input).
    pub fn with_job<K: 'static, R>(
        &self,
        kind: &str,
        name: &str,
        f: impl FnOnce(&K) -> R,
    ) -> Option<R> {
        let jobs = self.jobs_lock();
        let job = jobs
            .table
            .values()
            .find(|j| j.kind == kind && j.name == name)?;
        job.keep.downcast_ref::<K>().map(f)
    }

    /// Replaces what listings show for job `id`.
    pub fn set_job_info(&self, id: &str, info: Value) {
        if let Some(j) = self.jobs_lock().table.get_mut(id) {
            j.info = info;
        }
    }

    /// Ends a job; returns what kept it running (dropped by the caller, or by this call when
    /// unused), or `None` when there is no such job.
    pub fn stop_job(&self, id: &str) -> Option<Box<dyn Any + Send>> {
        let job = self.jobs_lock().table.remove(id)?;
        self.emit(EngineEvent::JobStopped {
            id: id.to_owned(),
            kind: job.kind,
            name: job.name,
        });
        Some(job.keep)
    }

    /// Ends every job of `kind` about stream `name`; returns how many.
    pub fn stop_jobs_of(&self, name: &str, kind: &str) -> usize {
        let ids: Vec<String> = self
            .jobs_lock()
            .table
            .iter()
            .filter(|(_, j)| j.kind == kind && j.name == name)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &ids {
            drop(self.stop_job(id));
        }
        ids.len()
    }

    /// Ends every job (shutdown).
    pub fn stop_all_jobs(&self) {
        let ids: Vec<String> = self.jobs_lock().table.keys().cloned().collect();
        for id in ids {
            drop(self.stop_job(&id));
        }
    }
}
