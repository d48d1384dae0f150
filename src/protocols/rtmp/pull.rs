//! Streams pulled from other RTMP servers (`/rest-api/pull/rtmp/*`): each pull is a job of the
//! engine whose source is an ingest fed by GStreamer's `rtmp2src`; the stream is a stream like any
//! other. A pull that fails (unreachable server, stream gone) or whose stream is terminated ends
//! its job.

use super::ingest::FlvSource;
use crate::engine::{
    Engine, EngineError, MediaEvent, MediaNotice, MediaRequest, PublishHandle, MAILBOX_CAPACITY,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// The engine's job kind for RTMP pulls.
pub const KIND: &str = "pull-rtmp";

/// Why a pull was refused.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// Not an rtmp:// or rtmps:// URL.
    #[error("uri must be an rtmp:// or rtmps:// URL")]
    BadUri,
    /// The same URI is pulled already.
    #[error("{0} is already pulled")]
    AlreadyPulled(String),
    /// The engine refused (name in use...).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What keeps a pull running: its stream's publish handle, ended deliberately (no reconnect
/// grace) when the job stops.
struct PullJob(Option<PublishHandle>);

impl Drop for PullJob {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.unpublish();
        }
    }
}

/// Starts pulling `uri` as `local` (the URI itself when no name is given, as WCS does).
pub async fn start(engine: &Engine, uri: &str, local: Option<&str>) -> Result<String, PullError> {
    let lower = uri.to_ascii_lowercase();
    if !(lower.starts_with("rtmp://") || lower.starts_with("rtmps://")) || uri.len() > 2048 {
        return Err(PullError::BadUri);
    }
    if engine.jobs(Some(KIND)).iter().any(|j| j.info["uri"] == uri) {
        return Err(PullError::AlreadyPulled(crate::redact::url(uri)));
    }
    let name = local.filter(|n| !n.is_empty()).unwrap_or(uri).to_owned();
    let (tx, rx) = mpsc::channel::<MediaNotice>(MAILBOX_CAPACITY);
    let msid = uuid::Uuid::new_v4().to_string();
    let req = MediaRequest {
        session_id: format!("pull-{msid}"),
        app_key: "pull".into(),
        media_session_id: msid.clone(),
        name: name.clone(),
        sdp: String::new(),
        record: false,
        custom: json!({ "uri": uri }),
        events: tx,
        client: None,
        // Nobody else resumes a pulled stream.
        login: String::new(),
        resume_token: None,
    };
    let (handle, _ingest) = super::stream::publish(engine, req, FlvSource::Pull(uri)).await?;
    let info = json!({
        "localMediaSessionId": msid, "localStreamName": name, "uri": uri,
        "status": "PROCESSED_LOCAL", "hasAudio": true, "hasVideo": true, "record": false,
    });
    let id = engine.start_job(KIND, &name, info, Box::new(PullJob(Some(handle))));
    follow(engine, id, name.clone(), rx);
    tracing::info!(uri = %crate::redact::url(uri), stream = %crate::redact::Escaped(&name), "pulling RTMP stream");
    Ok(name)
}

/// Ends the job when its stream fails or is stopped.
fn follow(engine: &Engine, id: String, name: String, mut rx: mpsc::Receiver<MediaNotice>) {
    let weak = engine.downgrade();
    tokio::spawn(async move {
        while let Some(n) = rx.recv().await {
            if let MediaEvent::Failed(why) | MediaEvent::Stop(why) = &n.event {
                tracing::info!(stream = %crate::redact::Escaped(&name), "RTMP pull ended: {why}");
                if let Some(engine) = weak.upgrade() {
                    drop(engine.stop_job(&id));
                }
                break;
            }
        }
    });
}

/// Every pull, WCS-shaped.
pub fn list(engine: &Engine) -> Vec<Value> {
    engine
        .jobs(Some(KIND))
        .into_iter()
        .map(|j| j.info)
        .collect()
}

/// Stops the pulls matching `uri` or `local`; returns how many.
pub fn terminate(engine: &Engine, uri: Option<&str>, local: Option<&str>) -> usize {
    let ids: Vec<String> = engine
        .jobs(Some(KIND))
        .into_iter()
        .filter(|j| uri.is_some_and(|u| j.info["uri"] == u) || local.is_some_and(|l| j.name == l))
        .map(|j| j.id)
        .collect();
    for id in &ids {
        drop(engine.stop_job(id));
    }
    ids.len()
}
