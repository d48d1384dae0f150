//! The ops as services of the server. Snapshots on request (REST, signaling) and on a schedule
//! (dashboards). Recordings are started and stopped by REST, by a publisher's `record: true`, or
//! by a room's button. Each recording is a job of the engine, and everyone is told when it starts
//! and stops (the engine's `recording_changed`).

use super::naming::{ContainerPolicy, Rotation};
use super::record::{RecordEvent, RecordSpec, Recording};
use super::snapshot::{self, Image, ImageFormat};
use crate::engine::{Engine, EngineError, EngineEvent};
use base64::Engine as _;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The engine's job kind for recordings.
pub const RECORDING: &str = "recording";

/// The current picture of the stream named `name` (or of media session `msid`).
pub async fn snapshot(
    engine: &Engine,
    name: Option<&str>,
    msid: Option<&str>,
    format: ImageFormat,
) -> Result<Image, EngineError> {
    let stream = engine
        .stream_of(name, msid)
        .ok_or(EngineError::StreamNotFound)?;
    let video = stream
        .media
        .video()
        .ok_or_else(|| EngineError::Invalid("The stream has no video".into()))?;
    snapshot::snapshot(&video, format, engine.pipelines())
        .await
        .map_err(|e| match e {
            snapshot::SnapshotError::NoPicture | snapshot::SnapshotError::NoVideo => {
                EngineError::Unavailable(format!("Snapshot taking error: {e}"))
            }
            other => EngineError::Internal(format!("snapshot: {other}")),
        })
}

/// [`snapshot`] as a base64 PNG, as WCS hands it out.
pub async fn snapshot_png(
    engine: &Engine,
    name: Option<&str>,
    msid: Option<&str>,
) -> Result<String, EngineError> {
    let img = snapshot(engine, name, msid, ImageFormat::Png).await?;
    Ok(base64::engine::general_purpose::STANDARD.encode(img.data))
}

/// What a recording is asked for beyond the defaults (WCS's `config`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordOptions {
    /// File name template.
    pub file_template: Option<String>,
    /// Rotation: `20M` or `10m`.
    pub rotation: Option<String>,
}

/// The recording job of the stream with this name or media session, if any.
fn recording_job(engine: &Engine, name: &str) -> Option<crate::engine::JobInfo> {
    engine
        .jobs(Some(RECORDING))
        .into_iter()
        .find(|j| j.name == name)
}

/// Starts recording the stream of media session `msid` (or named `name`); returns the file name.
/// A stream already being recorded gets `AlreadyRecording`.
pub fn start_recording(
    engine: &Engine,
    name: Option<&str>,
    msid: Option<&str>,
    options: &RecordOptions,
) -> Result<String, EngineError> {
    let stream = engine
        .stream_of(name, msid)
        .ok_or(EngineError::StreamNotFound)?;
    if recording_job(engine, &stream.name).is_some() {
        return Err(EngineError::AlreadyRecording);
    }
    let cfg = &engine.config().record;
    let rotation_text = options.rotation.as_deref().unwrap_or(&cfg.rotation);
    let rotation = if rotation_text.trim().is_empty() {
        None
    } else {
        Some(
            rotation_text
                .parse::<Rotation>()
                .map_err(|e| EngineError::Invalid(e.to_string()))?,
        )
    };
    let dir = engine.config().record_dir();
    std::fs::create_dir_all(&dir).map_err(|e| {
        EngineError::Internal(format!("creating records folder {}: {e}", dir.display()))
    })?;
    let spec = RecordSpec {
        dir,
        template: options
            .file_template
            .clone()
            .unwrap_or_else(|| cfg.template.clone()),
        rotation,
        stream_name: stream.name.clone(),
        media_session_id: stream.publisher.clone(),
        login: stream.login.clone(),
        container: if cfg.container == "matroska" {
            ContainerPolicy::Matroska
        } else {
            ContainerPolicy::ByCodec
        },
    };
    // Events come on GStreamer's threads; they reach the engine by its weak handle. The job id is
    // known only once the job exists, so a failure looks it up by stream name.
    let weak = engine.downgrade();
    let stream_name = stream.name.clone();
    let last_file: Arc<Mutex<String>> = Arc::default();
    let last = last_file.clone();
    // Set once the end was announced (a failure), so the job's end does not announce it again.
    let announced = Arc::new(AtomicBool::new(false));
    let told = announced.clone();
    let on_event = move |ev: RecordEvent| {
        let Some(engine) = weak.upgrade() else { return };
        match ev {
            RecordEvent::FileStarted { name } => {
                if let Ok(mut l) = last.lock() {
                    l.clone_from(&name);
                }
                engine.recording_changed(&stream_name, true, &name, None);
            }
            RecordEvent::FileFinished { name, .. } => {
                if let Ok(mut l) = last.lock() {
                    l.clone_from(&name);
                }
            }
            RecordEvent::Failed { reason } => {
                tracing::warn!(stream = %crate::redact::Escaped(&stream_name), "recording stopped: {reason}");
                let file = last.lock().map(|l| l.clone()).unwrap_or_default();
                told.store(true, Ordering::SeqCst);
                if let Some(job) = recording_job(&engine, &stream_name) {
                    // Dropping a failed recording must not block this (streaming) thread.
                    if let Some(keep) = engine.stop_job(&job.id) {
                        std::thread::spawn(move || drop(keep));
                    }
                }
                engine.recording_changed(&stream_name, false, &file, Some(reason));
            }
        }
    };
    let recording = Recording::start(
        spec,
        stream.media.video(),
        stream.media.audio(),
        &engine.limits(),
        engine.pipelines(),
        on_event,
    )
    .map_err(|e| EngineError::Internal(format!("{e:#}")))?;
    let file = recording.current_file();
    let info =
        json!({ "fileName": file, "mediaSessionId": stream.publisher, "streamName": stream.name });
    engine.start_job(
        RECORDING,
        &stream.name,
        info,
        Box::new(RecordingJob {
            recording: Some(recording),
            engine: engine.downgrade(),
            stream: stream.name.clone(),
            last_file,
            announced,
        }),
    );
    tracing::info!(stream = %crate::redact::Escaped(&stream.name), file = %file, "recording started");
    Ok(file)
}

/// What keeps a recording running. Ending the job (stop, the stream ending, shutdown) finalises
/// the file off the async workers and tells everyone the recording stopped.
struct RecordingJob {
    recording: Option<Recording>,
    engine: crate::engine::WeakEngine,
    stream: String,
    last_file: Arc<Mutex<String>>,
    announced: Arc<AtomicBool>,
}

impl Drop for RecordingJob {
    fn drop(&mut self) {
        let Some(recording) = self.recording.take() else {
            return;
        };
        let current = recording.current_file();
        let (weak, stream, last) = (
            self.engine.clone(),
            self.stream.clone(),
            self.last_file.clone(),
        );
        let announced = self.announced.clone();
        // Finalising waits for the muxer to write its index: never on an async worker.
        std::thread::spawn(move || {
            let finished = recording.stop();
            let file = match &finished {
                Ok(files) => files.last().map(|f| f.name.clone()),
                Err(e) => {
                    tracing::warn!(stream = %crate::redact::Escaped(&stream), "recording not finalised: {e}");
                    None
                }
            }
            .or_else(|| last.lock().ok().map(|l| l.clone()).filter(|f| !f.is_empty()))
            .unwrap_or(current);
            if let Some(engine) = weak.upgrade().filter(|_| !announced.load(Ordering::SeqCst)) {
                engine.recording_changed(&stream, false, &file, None);
            }
            tracing::info!(stream = %crate::redact::Escaped(&stream), file = %file, "recording finished");
        });
    }
}

/// Stops the recording of the stream of media session `msid` (or named `name`).
pub fn stop_recording(
    engine: &Engine,
    name: Option<&str>,
    msid: Option<&str>,
) -> Result<(), EngineError> {
    let stream = engine
        .stream_of(name, msid)
        .ok_or(EngineError::StreamNotFound)?;
    let job = recording_job(engine, &stream.name).ok_or(EngineError::NotRecording)?;
    drop(engine.stop_job(&job.id));
    Ok(())
}

/// Recordings running now, WCS-shaped: `[{fileName, mediaSessionId}]`.
pub fn recordings(engine: &Engine) -> Vec<Value> {
    engine
        .jobs(Some(RECORDING))
        .into_iter()
        .map(|j| j.info)
        .collect()
}

/// Starts the recording of every stream whose publisher asked for it (`record: true`), once it
/// is published. Runs until the engine goes.
pub fn auto_record(engine: &Engine) {
    let mut events = engine.subscribe();
    let weak = engine.downgrade();
    tokio::spawn(async move {
        loop {
            let ev = match events.recv().await {
                Ok(ev) => ev,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "recording starter fell behind the event stream");
                    continue;
                }
                Err(_) => break,
            };
            let EngineEvent::Published { name, .. } = ev else {
                continue;
            };
            let Some(engine) = weak.upgrade() else { break };
            if engine
                .stream_of(Some(&name), None)
                .is_some_and(|s| s.record_requested)
            {
                if let Err(e) =
                    start_recording(&engine, Some(&name), None, &RecordOptions::default())
                {
                    tracing::warn!(stream = %crate::redact::Escaped(&name), "recording not started: {e}");
                }
            }
        }
    });
}

/// Writes `snapshots/NAME.jpg` for every matching stream each `interval` (when configured). A
/// decoder runs only for each capture.
pub fn slicer(engine: &Engine) {
    let cfg = engine.config().snapshots.clone();
    if cfg.interval.is_zero() {
        return;
    }
    let patterns: Vec<glob::Pattern> = cfg
        .streams
        .iter()
        .filter_map(|p| glob::Pattern::new(p).ok())
        .collect();
    let dir = engine.config().snapshot_dir();
    let weak = engine.downgrade();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(cfg.interval.max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            let Some(engine) = weak.upgrade() else { break };
            let names: Vec<String> = engine
                .find_all()
                .into_iter()
                .filter(|s| s.published && patterns.iter().any(|p| p.matches(&s.name)))
                .map(|s| s.name)
                .collect();
            for name in names {
                match snapshot(&engine, Some(&name), None, ImageFormat::Jpeg).await {
                    Ok(img) => {
                        let file = super::naming::sanitize(&name, 200);
                        let path = dir.join(format!("{file}.jpg"));
                        let dir = dir.clone();
                        let written = tokio::task::spawn_blocking(move || {
                            std::fs::create_dir_all(&dir)?;
                            snapshot::write_atomically(&path, &img.data)
                        })
                        .await;
                        if let Ok(Err(e)) = written {
                            tracing::warn!("snapshot not written: {e}");
                        }
                    }
                    Err(e) => {
                        tracing::debug!(stream = %crate::redact::Escaped(&name), "no snapshot: {e}")
                    }
                }
            }
        }
    });
}
