//! Files as streams. `vod://FILE` plays a file of the media folder (or `records/FILE`, or
//! `s3/BUCKET/KEY`) from its start for one viewer: admission gives each such play a stream of
//! its own (`vod://FILE#ID`), made on demand and stopped once its viewer has gone. `vod-live://FILE`
//! is one shared live broadcast that every viewer joins where it is, started by
//! `/rest-api/vod/startup` (with `loop`) or by the first play of the name. [`paths`] decides
//! which file a name means and refuses anything that would leave its folder; [`source`] plays it.
//!
//! S3 objects are read through a presigned URL (SigV4, by `rusty-s3`), so the HTTP source reads
//! them with range requests as the demuxer asks, never whole first.

pub mod paths;
pub mod source;

use crate::engine::admission::{Action, Admission, AdmissionRequest, Admitted, BoxFuture};
use crate::engine::{
    Engine, EngineError, MediaEvent, MediaRequest, PublishSpec, Resolver, StreamMedia,
    MAILBOX_CAPACITY,
};
use crate::protocols::supervised::{end, Current, PipelineSource, SupervisedJob};
use crate::sync::lock;
use paths::{FileError, Mode, Target};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use source::{Ended, Location};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The engine's job kind for files played as streams.
pub const KIND: &str = "vod";

/// VOD settings (`[vod]`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VodConfig {
    /// The media folder; `media/` under the data directory when unset.
    pub media_dir: Option<PathBuf>,
    /// S3-compatible storage for `vod://s3/BUCKET/KEY`.
    pub s3: Option<S3Config>,
}

/// An S3-compatible store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Its endpoint, `https://s3.eu-west-1.amazonaws.com` or a MinIO's `http://host:9000`.
    pub endpoint: String,
    /// Its region.
    #[serde(default = "default_region")]
    pub region: String,
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: String,
    /// Buckets at `endpoint/BUCKET` (MinIO, most S3-compatible stores) rather than
    /// `BUCKET.endpoint`.
    #[serde(default = "yes")]
    pub path_style: bool,
    /// The buckets that may be played; empty for any.
    #[serde(default)]
    pub buckets: Vec<String>,
}

fn default_region() -> String {
    "us-east-1".into()
}

fn yes() -> bool {
    true
}

/// Why a file cannot be played.
#[derive(Debug, thiserror::Error)]
pub enum VodError {
    /// Not a `vod://` or `vod-live://` URI.
    #[error("Vod has wrong format")]
    BadUri,
    /// Missing, outside its folder, or not a container we play.
    #[error(transparent)]
    File(#[from] FileError),
    /// The engine refused (name in use...).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<VodError> for EngineError {
    fn from(e: VodError) -> Self {
        match e {
            VodError::Engine(e) => e,
            other => EngineError::Invalid(other.to_string()),
        }
    }
}

/// How long a personal VOD stream waits for its viewer, and then goes on without one.
const NO_VIEWER_FOR: Duration = Duration::from_secs(3);

/// How long a start waits for the file's tracks.
const START_WAIT: Duration = Duration::from_secs(10);

/// Where the file behind `name` (a `vod://` URI's path) is read from.
fn locate(engine: &Engine, name: &str) -> Result<Location, VodError> {
    let cfg = engine.config();
    let media = cfg
        .vod
        .media_dir
        .clone()
        .unwrap_or_else(|| cfg.data_dir.join("media"));
    match paths::resolve(&media, &cfg.record_dir(), name)? {
        Target::File(p) => Ok(Location::File(p)),
        Target::S3 { bucket, key } => {
            let s3 = cfg
                .vod
                .s3
                .as_ref()
                .ok_or(FileError::NotFound("no S3 store configured"))?;
            if !s3.buckets.is_empty() && !s3.buckets.contains(&bucket) {
                return Err(FileError::NotFound("bucket not allowed").into());
            }
            let ext = key.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
            if !ext.is_some_and(|e| paths::CONTAINERS.contains(&e.as_str())) {
                return Err(FileError::WrongFormat.into());
            }
            Ok(Location::Http(presign(s3, &bucket, &key)?))
        }
    }
}

/// A presigned GET URL for an object, good for a day (a long show, looped).
fn presign(s3: &S3Config, bucket: &str, key: &str) -> Result<String, FileError> {
    use rusty_s3::S3Action;
    let endpoint =
        url::Url::parse(&s3.endpoint).map_err(|_| FileError::NotFound("bad S3 endpoint"))?;
    let style = if s3.path_style {
        rusty_s3::UrlStyle::Path
    } else {
        rusty_s3::UrlStyle::VirtualHost
    };
    let b = rusty_s3::Bucket::new(endpoint, style, bucket.to_owned(), s3.region.clone())
        .map_err(|_| FileError::NotFound("bad S3 bucket"))?;
    let creds = rusty_s3::Credentials::new(s3.access_key.clone(), s3.secret_key.clone());
    Ok(b.get_object(Some(&creds), key)
        .sign(Duration::from_secs(24 * 3600))
        .to_string())
}

/// Asks for an object's first byte: a missing object (or one we may not read) is "File not
/// found" before any pipeline is made for it.
async fn object_exists(url: &str) -> Result<(), VodError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|_| FileError::NotFound("no HTTP client"))?;
    let r = client
        .get(url)
        .header("range", "bytes=0-0")
        .send()
        .await
        .map_err(|_| FileError::NotFound("S3 store unreachable"))?;
    if r.status().is_success() {
        Ok(())
    } else {
        Err(FileError::NotFound("no such object").into())
    }
}

/// How a start went.
#[derive(Debug, Clone, PartialEq)]
enum Start {
    Starting,
    Ready,
    Failed(String),
}

/// Starts playing `uri` as stream `name`, looping when asked; `personal`: a one-viewer stream
/// that stops once its viewer has gone. Resolves once the file's tracks are known.
pub async fn start(
    engine: &Engine,
    uri: &str,
    name: &str,
    looped: bool,
    personal: bool,
) -> Result<String, VodError> {
    let (_, path) = paths::parse(uri).ok_or(VodError::BadUri)?;
    let location = locate(engine, path).inspect_err(|e| {
        tracing::info!(uri = %crate::redact::Escaped(uri), "VOD refused: {e} ({e:?})");
    })?;
    if let Location::Http(url) = &location {
        object_exists(url).await?;
    }
    let (tx, rx) = mpsc::channel(MAILBOX_CAPACITY);
    let msid = uuid::Uuid::new_v4().to_string();
    let req = MediaRequest {
        session_id: format!("vod-{msid}"),
        app_key: "vod".into(),
        media_session_id: msid.clone(),
        name: name.to_owned(),
        sdp: String::new(),
        record: false,
        custom: json!({ "uri": uri }),
        events: tx,
        client: None,
        login: String::new(),
        resume_token: None,
    };
    let spec = PublishSpec {
        provider: "VOD",
        video: None,
        audio: None,
        complete: false,
        may_reorder: true,
        connected: true,
        resumable: false,
    };
    let mut handle = engine.publish(&req, spec).await?;
    let media = handle.media().clone();
    let current = Arc::new(Mutex::new(None));
    handle.set_source(Box::new(PipelineSource {
        kind: "file",
        current: current.clone(),
    }));
    let info = json!({
        "localMediaSessionId": msid, "localStreamName": name, "uri": uri,
        "loop": looped, "status": "PROCESSED_LOCAL", "loops": 0,
    });
    let (state_tx, mut state_rx) = watch::channel(Start::Starting);
    let supervisor = tokio::spawn(supervise(Supervision {
        engine: engine.downgrade(),
        msid: msid.clone(),
        location,
        media,
        looped,
        personal,
        current,
        notices: rx,
        state: state_tx,
    }));
    engine.start_job(
        KIND,
        name,
        info,
        Box::new(SupervisedJob {
            handle: Some(handle),
            supervisor,
        }),
    );
    let outcome = tokio::time::timeout(START_WAIT, state_rx.wait_for(|s| *s != Start::Starting))
        .await
        .ok()
        .and_then(|r| r.ok().map(|s| s.clone()));
    match outcome {
        Some(Start::Ready) => {
            tracing::info!(uri = %crate::redact::Escaped(uri), stream = %crate::redact::Escaped(name), looped, personal, "playing file");
            Ok(name.to_owned())
        }
        other => {
            terminate(engine, name);
            let why = match other {
                Some(Start::Failed(w)) => w,
                _ => "no tracks in time".into(),
            };
            tracing::info!(uri = %crate::redact::Escaped(uri), "VOD not started: {why}");
            Err(if why.contains("Not Found") || why.contains("not found") {
                FileError::NotFound("not there").into()
            } else {
                FileError::WrongFormat.into()
            })
        }
    }
}

struct Supervision {
    engine: crate::engine::WeakEngine,
    msid: String,
    location: Location,
    media: Arc<StreamMedia>,
    looped: bool,
    personal: bool,
    current: Current,
    notices: mpsc::Receiver<crate::engine::MediaNotice>,
    state: watch::Sender<Start>,
}

/// Plays the file, again at its end when looping; ends the job at its end, at a failure, when
/// the stream is stopped from outside, or (personal) when its viewer has gone.
async fn supervise(mut s: Supervision) {
    let mut start = None;
    let mut loops = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut alone_since = tokio::time::Instant::now();
    loop {
        let (tx, mut rx) = mpsc::channel(4);
        match source::build(&s.location, &s.media, start, tx) {
            Ok(g) => *lock(&s.current) = Some(g),
            Err(e) => {
                let _ = s.state.send(Start::Failed(format!("{e:#}")));
                return end(&s.engine, KIND, &s.msid);
            }
        }
        if loops == 0 {
            let media = s.media.clone();
            tokio::select! {
                _ = media.wait_tracks(START_WAIT) => {
                    let has = media.video().is_some() || media.audio().is_some();
                    let _ = s.state.send(if has { Start::Ready } else {
                        Start::Failed("no playable track".into())
                    });
                    if !has {
                        return end(&s.engine, KIND, &s.msid);
                    }
                }
                e = rx.recv() => {
                    let why = match e {
                        Some(Ended::Error(e)) => e,
                        _ => "ended before any track".into(),
                    };
                    let _ = s.state.send(Start::Failed(why));
                    return end(&s.engine, KIND, &s.msid);
                }
            }
        }
        let ended = loop {
            tokio::select! {
                e = rx.recv() => break e,
                n = s.notices.recv() => {
                    if n.is_none_or(|n| matches!(n.event, MediaEvent::Stop(_) | MediaEvent::Failed(_))) {
                        return end(&s.engine, KIND, &s.msid);
                    }
                }
                _ = tick.tick(), if s.personal => {
                    let Some(engine) = s.engine.upgrade() else { return };
                    if engine.viewer_count(s.media.name()) > 0 {
                        alone_since = tokio::time::Instant::now();
                    } else if alone_since.elapsed() > NO_VIEWER_FOR {
                        tracing::debug!(stream = %crate::redact::Escaped(s.media.name()), "personal VOD without its viewer: stopped");
                        return end(&s.engine, KIND, &s.msid);
                    }
                }
            }
        };
        match ended {
            Some(Ended::Eos(at)) if s.looped => {
                loops += 1;
                start = Some(at);
                if let Some(engine) = s.engine.upgrade() {
                    set_loops(&engine, &s.msid, loops);
                }
            }
            Some(Ended::Error(e)) => {
                tracing::warn!(stream = %crate::redact::Escaped(s.media.name()), "file playback failed: {e}");
                return end(&s.engine, KIND, &s.msid);
            }
            _ => return end(&s.engine, KIND, &s.msid),
        }
    }
}

fn set_loops(engine: &Engine, msid: &str, loops: u64) {
    for j in engine.jobs(Some(KIND)) {
        if j.info["localMediaSessionId"] == msid {
            let mut info = j.info.clone();
            info["loops"] = json!(loops);
            engine.set_job_info(&j.id, info);
        }
    }
}

/// Every file playing as a shared (VOD live) stream, WCS-shaped, with the tracks it has now.
pub fn list(engine: &Engine) -> Vec<Value> {
    engine
        .jobs(Some(KIND))
        .into_iter()
        .filter(|j| {
            j.info["uri"]
                .as_str()
                .is_some_and(|u| u.starts_with("vod-live://"))
        })
        .map(|j| {
            let mut info = j.info;
            if let Some(s) = engine.stream_of(Some(&j.name), None) {
                info["hasVideo"] = json!(s.media.video().is_some());
                info["hasAudio"] = json!(s.media.audio().is_some());
            }
            info
        })
        .collect()
}

/// Stops the file playing as stream `name` (or with that URI); how many stopped.
pub fn terminate(engine: &Engine, name_or_uri: &str) -> usize {
    let ids: Vec<String> = engine
        .jobs(Some(KIND))
        .into_iter()
        .filter(|j| j.name == name_or_uri || j.info["uri"] == name_or_uri)
        .map(|j| j.id)
        .collect();
    ids.iter()
        .filter(|id| engine.stop_job(id).is_some())
        .count()
}

/// Gives every play of a `vod://` name a stream of its own (`vod://FILE#ID`): a VOD plays from
/// its start for each viewer. Last in the admission chain, so hooks see the name as asked.
pub struct PersonalVod;

impl Admission for PersonalVod {
    fn admit(&self, req: AdmissionRequest) -> BoxFuture<Result<Admitted, EngineError>> {
        Box::pin(async move {
            if req.action != Action::Play || !req.name.starts_with("vod://") {
                return Ok(Admitted::default());
            }
            let id: String = req.media_session_id.chars().take(8).collect();
            Ok(Admitted {
                name: Some(format!("{}#{id}", req.name)),
                record: None,
            })
        })
    }
}

/// Starts the file behind a `vod://FILE#ID` or `vod-live://FILE` name being played.
pub struct VodResolver;

impl Resolver for VodResolver {
    fn resolve(&self, engine: &Engine, name: &str) -> Option<BoxFuture<Result<(), EngineError>>> {
        let (mode, _) = paths::parse(name)?;
        let engine = engine.clone();
        let name = name.to_owned();
        Some(Box::pin(async move {
            let uri = match mode {
                // The viewer's own stream: the file is what precedes the last '#'.
                Mode::Vod => name.rsplit_once('#').map_or(name.as_str(), |(u, _)| u),
                Mode::Live => name.as_str(),
            };
            match start(&engine, uri, &name, false, mode == Mode::Vod).await {
                Ok(_) => Ok(()),
                // Another viewer started the same live file a moment before.
                Err(VodError::Engine(EngineError::NameInUse)) => Ok(()),
                Err(e) => Err(e.into()),
            }
        }))
    }
}
