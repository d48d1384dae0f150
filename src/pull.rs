//! Streams pulled from other RTMP servers (`/rest-api/pull/rtmp/*`): each pull is an ingest fed by
//! GStreamer's `rtmp2src` and is a stream like any other. A pull that fails (unreachable server,
//! stream gone) removes itself.

use crate::engine::{
    EngineError, MediaEvent, MediaNotice, MediaRequest, PublishHandle, MAILBOX_CAPACITY,
};
use crate::server::AppState;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

struct Pull {
    uri: String,
    media_session_id: String,
    handle: PublishHandle,
}

/// Live pulls by local stream name.
#[derive(Clone, Default)]
pub struct Pulls {
    inner: Arc<Mutex<BTreeMap<String, Pull>>>,
}

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

impl Pulls {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Pull>> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Starts pulling `uri` as `local` (the URI itself when no name is given, as WCS does).
    pub fn start(
        &self,
        state: &AppState,
        uri: &str,
        local: Option<&str>,
    ) -> Result<String, PullError> {
        let lower = uri.to_ascii_lowercase();
        if !(lower.starts_with("rtmp://") || lower.starts_with("rtmps://")) || uri.len() > 2048 {
            return Err(PullError::BadUri);
        }
        if self.lock().values().any(|p| p.uri == uri) {
            return Err(PullError::AlreadyPulled(uri.to_owned()));
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
            // The server pulls again on its own after a drop; nobody else resumes its stream.
            resume_token: None,
        };
        let handle = state.engine.pull_rtmp(req, uri)?;
        self.lock().insert(
            name.clone(),
            Pull {
                uri: uri.to_owned(),
                media_session_id: msid,
                handle,
            },
        );
        self.follow(name.clone(), rx);
        tracing::info!(%uri, stream = %name, "pulling RTMP stream");
        Ok(name)
    }

    fn follow(&self, name: String, mut rx: mpsc::Receiver<MediaNotice>) {
        let pulls = self.clone();
        tokio::spawn(async move {
            while let Some(n) = rx.recv().await {
                if let MediaEvent::Failed(why) | MediaEvent::Stop(why) = &n.event {
                    tracing::info!(stream = %name, "RTMP pull ended: {why}");
                    let p = pulls.lock().remove(&name);
                    if let Some(p) = p {
                        p.handle.unpublish();
                    }
                    break;
                }
            }
        });
    }

    /// Every pull, WCS-shaped.
    pub fn list(&self) -> Vec<Value> {
        self.lock()
            .iter()
            .map(|(name, p)| json!({ "localMediaSessionId": p.media_session_id, "localStreamName": name, "uri": p.uri, "status": "PROCESSED_LOCAL", "hasAudio": true, "hasVideo": true, "record": false }))
            .collect()
    }

    /// Stops the pulls matching `uri` or `local`; returns how many.
    pub fn terminate(&self, uri: Option<&str>, local: Option<&str>) -> usize {
        let gone: Vec<Pull> = {
            let mut t = self.lock();
            let keys: Vec<String> = t
                .iter()
                .filter(|(n, p)| {
                    uri.is_some_and(|u| u == p.uri) || local.is_some_and(|l| l == n.as_str())
                })
                .map(|(n, _)| n.clone())
                .collect();
            keys.iter().filter_map(|k| t.remove(k)).collect()
        };
        let n = gone.len();
        for p in gone {
            p.handle.unpublish();
        }
        n
    }

    /// Stops every pull (shutdown).
    pub fn clear(&self) {
        let all: Vec<Pull> = std::mem::take(&mut *self.lock()).into_values().collect();
        for p in all {
            p.handle.unpublish();
        }
    }
}
