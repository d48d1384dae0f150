//! RTSP cameras pulled into streams (`/rest-api/rtsp/*`): each pull is an engine job whose source
//! is an `rtspsrc` ingest (TCP or UDP, credentials from the URL). Its tracks are learned from the
//! camera's SDP: H.264 passes through; AAC and Opus pass through; G.711 (PCMA, PCMU) is decoded
//! once here and encoded to Opus, which the shared bridges then serve as AAC where needed.
//!
//! A camera that drops is dialled again with backoff (1 s doubling to 30 s) while the stream and
//! its viewers stay: the new ingest feeds the same tracks. `find_all` shows the status.

use crate::engine::pipeline::{attach_chain, discard_pad, PipelineGuard};
use crate::engine::producer::{track_sink, Stamping};
use crate::engine::{
    Engine, EngineError, MediaEvent, MediaRequest, PublishSpec, StreamMedia, MAILBOX_CAPACITY,
};
use crate::protocols::supervised::{end, PipelineSource, SupervisedJob};
use crate::sync::lock;
use gst::prelude::*;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// The engine's job kind for RTSP pulls.
pub const KIND: &str = "pull-rtsp";

/// Why a pull was refused.
#[derive(Debug, thiserror::Error)]
pub enum RtspError {
    /// Not an rtsp:// or rtsps:// URL.
    #[error("Rtsp has wrong format")]
    BadUri,
    /// The same URI is pulled already.
    #[error("{0} is already pulled")]
    AlreadyPulled(String),
    /// The engine refused (name in use...).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// TCP (interleaved) or UDP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// RTP interleaved in the RTSP connection.
    Tcp,
    /// RTP over UDP.
    Udp,
}

impl Transport {
    /// From WCS's / a user's spelling; TCP by default (it passes firewalls and loses nothing).
    pub fn parse(s: Option<&str>) -> Option<Self> {
        match s.map(str::to_ascii_lowercase).as_deref() {
            None | Some("tcp") | Some("") => Some(Self::Tcp),
            Some("udp") => Some(Self::Udp),
            _ => None,
        }
    }
}

/// Starts pulling `uri` as `local` (the URI itself when no name is given, as WCS does).
pub async fn start(
    engine: &Engine,
    uri: &str,
    local: Option<&str>,
    transport: Transport,
) -> Result<String, RtspError> {
    let lower = uri.to_ascii_lowercase();
    if !(lower.starts_with("rtsp://") || lower.starts_with("rtsps://"))
        || uri.len() > 2048
        || uri.chars().any(char::is_control)
    {
        return Err(RtspError::BadUri);
    }
    if engine.jobs(Some(KIND)).iter().any(|j| j.info["uri"] == uri) {
        return Err(RtspError::AlreadyPulled(crate::redact::url(uri)));
    }
    let name = local.filter(|n| !n.is_empty()).unwrap_or(uri).to_owned();
    let (tx, rx) = mpsc::channel(MAILBOX_CAPACITY);
    let msid = uuid::Uuid::new_v4().to_string();
    let req = MediaRequest {
        session_id: format!("rtsp-{msid}"),
        app_key: "rtsp".into(),
        media_session_id: msid.clone(),
        name: name.clone(),
        sdp: String::new(),
        record: false,
        custom: json!({ "uri": uri }),
        events: tx,
        client: None,
        login: String::new(),
        resume_token: None,
    };
    let spec = PublishSpec {
        provider: "RTSP",
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
        kind: "rtsp",
        current: current.clone(),
    }));
    let info = json!({
        "localMediaSessionId": msid, "localStreamName": name, "uri": uri,
        "status": "NEW", "transport": format!("{transport:?}").to_uppercase(),
        "hasAudio": false, "hasVideo": false, "reconnects": 0,
    });
    let supervisor = tokio::spawn(supervise(
        engine.downgrade(),
        msid.clone(),
        uri.to_owned(),
        transport,
        media,
        current,
        rx,
    ));
    engine.start_job(
        KIND,
        &name,
        info,
        Box::new(SupervisedJob {
            handle: Some(handle),
            supervisor,
        }),
    );
    tracing::info!(uri = %crate::redact::url(uri), stream = %crate::redact::Escaped(&name), ?transport, "pulling RTSP stream");
    Ok(name)
}

/// Keeps an ingest running: builds one, waits for it to fail, and builds the next after a
/// backoff that grows while the camera stays away.
async fn supervise(
    engine: crate::engine::WeakEngine,
    msid: String,
    uri: String,
    transport: Transport,
    media: Arc<StreamMedia>,
    current: crate::protocols::supervised::Current,
    mut notices: mpsc::Receiver<crate::engine::MediaNotice>,
) {
    let mut backoff = Duration::from_secs(1);
    let mut attempt = 0u64;
    loop {
        let (failed_tx, mut failed_rx) = mpsc::channel::<String>(4);
        if attempt > 0 {
            // The camera's new session does not continue the old one's timeline.
            media.next_generation();
        }
        let built = build(&uri, transport, &media, failed_tx);
        let status = match built {
            Ok(guard) => {
                *lock(&current) = Some(guard);
                "PROCESSED_LOCAL"
            }
            Err(e) => {
                tracing::warn!(uri = %crate::redact::url(&uri), "RTSP ingest not built: {e:#}");
                "FAILED"
            }
        };
        set_info(&engine, &msid, &media, status, attempt);
        let started = tokio::time::Instant::now();
        // The stream stopped from outside (REST terminate, shutdown): the pull ends.
        let stopped = |n: Option<crate::engine::MediaNotice>| {
            n.is_none_or(|n| matches!(n.event, MediaEvent::Stop(_) | MediaEvent::Failed(_)))
        };
        if status != "FAILED" {
            loop {
                tokio::select! {
                    why = failed_rx.recv() => {
                        tracing::info!(uri = %crate::redact::url(&uri), "RTSP camera lost: {}", why.unwrap_or_default());
                        break;
                    }
                    n = notices.recv() => if stopped(n) { return end(&engine, KIND, &msid) },
                }
            }
        }
        lock(&current).take();
        // A connection that lived a while starts the backoff afresh.
        if started.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_secs(1);
        }
        attempt += 1;
        set_info(&engine, &msid, &media, "RECONNECTING", attempt);
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            n = notices.recv() => if stopped(n) { return end(&engine, KIND, &msid) },
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
        if engine.upgrade().is_none() {
            return;
        }
    }
}

fn set_info(
    engine: &crate::engine::WeakEngine,
    msid: &str,
    media: &StreamMedia,
    status: &str,
    reconnects: u64,
) {
    let Some(engine) = engine.upgrade() else {
        return;
    };
    let Some(job) = engine
        .jobs(Some(KIND))
        .into_iter()
        .find(|j| j.info["localMediaSessionId"] == msid)
    else {
        return;
    };
    let mut info = job.info.clone();
    info["status"] = json!(status);
    info["reconnects"] = json!(reconnects);
    info["hasVideo"] = json!(media.video().is_some());
    info["hasAudio"] = json!(media.audio().is_some());
    engine.set_job_info(&job.id, info);
}

/// Builds and starts one ingest of `uri`; `failed` hears of its end (error or EOS).
fn build(
    uri: &str,
    transport: Transport,
    media: &Arc<StreamMedia>,
    failed: mpsc::Sender<String>,
) -> anyhow::Result<PipelineGuard> {
    let mut guard = PipelineGuard::new(&format!("{}-rtsp", media.name()), media.pipelines());
    let pipeline = guard.pipeline().clone();
    let src = gst::ElementFactory::make("rtspsrc")
        .property("location", uri)
        .property("latency", 200u32)
        .property("tcp-timeout", 5_000_000u64)
        .property("timeout", 5_000_000u64)
        .build()?;
    src.set_property_from_str(
        "protocols",
        match transport {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        },
    );
    pipeline.add(&src)?;
    let weak_media = Arc::downgrade(media);
    let weak_pipeline = pipeline.downgrade();
    let eos = failed.clone();
    src.connect_pad_added(move |_, pad| {
        let (Some(media), Some(pipeline)) = (weak_media.upgrade(), weak_pipeline.upgrade()) else {
            return;
        };
        if let Err(e) = link_pad(&pipeline, pad, &media, &eos) {
            tracing::warn!(stream = %crate::redact::Escaped(media.name()), "RTSP track not used: {e:#}");
            let _ = discard_pad(&pipeline, pad);
        }
    });
    let weak_media = Arc::downgrade(media);
    src.connect("no-more-pads", false, move |_| {
        if let Some(m) = weak_media.upgrade() {
            m.tracks_complete();
        }
        None
    });
    let on_error = failed.clone();
    guard.watch_bus(move |e| {
        let _ = on_error.try_send(e.to_string());
    });
    pipeline.set_state(gst::State::Playing)?;
    Ok(guard)
}

/// Links one camera track into the stream.
fn link_pad(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    media: &Arc<StreamMedia>,
    eos: &mpsc::Sender<String>,
) -> anyhow::Result<()> {
    let caps = pad
        .current_caps()
        .ok_or_else(|| anyhow::anyhow!("pad without caps"))?;
    let s = caps
        .structure(0)
        .ok_or_else(|| anyhow::anyhow!("empty caps"))?;
    let encoding = s.get::<&str>("encoding-name").unwrap_or("");
    let super::tracks::IngestChain {
        codec,
        depay,
        mut rest,
    } = super::tracks::ingest_chain(encoding)?;
    let mut chain = vec![gst::ElementFactory::make(depay).build()?];
    chain.append(&mut rest);
    if media
        .track(codec.is_video())
        .is_some_and(|p| p.codec() != codec)
    {
        anyhow::bail!(
            "the stream already has a {} track of another codec",
            if codec.is_video() { "video" } else { "audio" }
        );
    }
    let producer = media.add_track(codec);
    let sink = track_sink(
        &format!("{}-sink-{}", codec.slug(), uuid::Uuid::new_v4().simple()),
        &producer,
        Stamping::default(),
        64,
    );
    // The camera ending its session reaches each track as end of stream: that is a drop too.
    if let Some(sinkpad) = sink.static_pad("sink") {
        let eos = eos.clone();
        sinkpad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            if let Some(gst::PadProbeData::Event(ev)) = &info.data {
                if ev.type_() == gst::EventType::Eos {
                    let _ = eos.try_send("end of stream".into());
                }
            }
            gst::PadProbeReturn::Ok
        });
    }
    chain.push(sink.upcast());
    attach_chain(pipeline, pad, &chain)
}

/// How long a camera pulled for its viewers (played by URL) stays without one.
const UNWATCHED_FOR: Duration = Duration::from_secs(5);

/// Ends a pull made for a play of its URL once nobody has watched it for [`UNWATCHED_FOR`];
/// pulls made over REST stay until terminated.
async fn stop_when_unwatched(engine: crate::engine::WeakEngine, uri: String) {
    let mut alone_since = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Some(engine) = engine.upgrade() else {
            return;
        };
        if !engine.jobs(Some(KIND)).iter().any(|j| j.info["uri"] == uri) {
            return;
        }
        if engine.viewer_count(&uri) > 0 {
            alone_since = tokio::time::Instant::now();
        } else if alone_since.elapsed() > UNWATCHED_FOR {
            tracing::info!(uri = %crate::redact::url(&uri), "RTSP pull without viewers: stopped");
            terminate(&engine, &uri);
            return;
        }
    }
}

/// Every pull, WCS-shaped, with the tracks its camera has now.
pub fn list(engine: &Engine) -> Vec<Value> {
    engine
        .jobs(Some(KIND))
        .into_iter()
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

/// Stops the pulls of `uri`; returns how many.
pub fn terminate(engine: &Engine, uri: &str) -> usize {
    let ids: Vec<String> = engine
        .jobs(Some(KIND))
        .into_iter()
        .filter(|j| j.info["uri"] == uri || j.name == uri)
        .map(|j| j.id)
        .collect();
    for id in &ids {
        drop(engine.stop_job(id));
    }
    ids.len()
}

/// Plays of a name that is an `rtsp://` URL pull that camera (as WCS does): the pull starts on
/// the first play and the play waits until the camera's tracks are known. A camera that cannot
/// be reached fails the play with WCS's "Failed to connect to rtsp stream".
pub struct RtspResolver;

/// How long a play by URL waits for the camera.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

impl crate::engine::admission::Resolver for RtspResolver {
    fn resolve(
        &self,
        engine: &Engine,
        name: &str,
    ) -> Option<crate::engine::admission::BoxFuture<Result<(), EngineError>>> {
        let lower = name.to_ascii_lowercase();
        if !(lower.starts_with("rtsp://") || lower.starts_with("rtsps://")) {
            return None;
        }
        let engine = engine.clone();
        let uri = name.to_owned();
        Some(Box::pin(async move {
            match start(&engine, &uri, None, Transport::Tcp).await {
                Ok(_) => {
                    tokio::spawn(stop_when_unwatched(engine.downgrade(), uri.clone()));
                }
                Err(RtspError::AlreadyPulled(_)) => {}
                Err(RtspError::BadUri) => {
                    return Err(EngineError::Invalid(RtspError::BadUri.to_string()))
                }
                Err(RtspError::Engine(e)) => return Err(e),
            }
            let deadline = tokio::time::Instant::now() + CONNECT_WAIT;
            loop {
                let ready = engine
                    .stream_of(Some(&uri), None)
                    .is_some_and(|s| s.media.video().is_some() || s.media.audio().is_some());
                if ready {
                    return Ok(());
                }
                // The first dial ended without a track (refused, not found): no point waiting.
                let gave_up = engine.jobs(Some(KIND)).iter().any(|j| {
                    j.info["uri"] == uri && j.info["reconnects"].as_u64().unwrap_or(0) > 0
                });
                if gave_up || tokio::time::Instant::now() >= deadline {
                    terminate(&engine, &uri);
                    return Err(EngineError::Unavailable(
                        "Failed to connect to rtsp stream".into(),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }))
    }
}
