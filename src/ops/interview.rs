//! A room recorded as an interview: one composite file (a mixer of everyone's picture and voice,
//! recorded like any stream), one file per participant, and a JSON sidecar that says who joined
//! and left and when, when each spoke (the chapters), and which files were written and how long
//! they are. It is an engine job (kind `room-recording`, named after the room); the participants'
//! own recordings tell everyone in the room that recording is on, as any recording does.

use super::mixer::{self, Mixer, MixerError, MixerSpec};
use super::{listing, service};
use crate::engine::{Engine, EngineError, EngineEvent};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The engine's job kind.
pub const KIND: &str = "room-recording";

/// How long stopping waits for the files to be finalised.
const FINISH_TIMEOUT: Duration = Duration::from_secs(15);

/// A participant's stream.
#[derive(Debug, Clone)]
pub struct Member {
    /// The stream name.
    pub stream: String,
    /// The participant's login (the tile's caption).
    pub login: String,
}

/// What keeps a room recording running.
pub struct RoomRecording {
    room: String,
    mixer: Arc<Mixer>,
    started_ms: u64,
}

/// The composite stream's name for `room`.
pub fn composite_name(room: &str) -> String {
    format!("{room}-interview")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn record(engine: &Engine, stream: &str) {
    match service::start_recording(engine, Some(stream), None, &Default::default()) {
        Ok(_) | Err(EngineError::AlreadyRecording) => {}
        Err(e) => tracing::warn!(stream = %crate::redact::Escaped(stream), "room recording: {e}"),
    }
}

/// Starts recording room `room` with its `members`' streams; returns the composite stream's name.
pub async fn start(
    engine: &Engine,
    room: &str,
    members: Vec<Member>,
) -> Result<String, MixerError> {
    if engine
        .with_job(KIND, room, |_: &RoomRecording| ())
        .is_some()
    {
        return Err(EngineError::AlreadyRecording.into());
    }
    let name = composite_name(room);
    let spec = MixerSpec::defaults(&engine.config().mixer, &name, false)?;
    let mixer = mixer::start(engine, spec).await?;
    for m in &members {
        let (mx, m) = (mixer.clone(), m.clone());
        let added =
            tokio::task::spawn_blocking(move || mx.add(&m.stream, &m.login, true, true)).await;
        if let Ok(Err(e)) = added {
            tracing::warn!(
                room,
                "room recording: a participant's stream was not mixed: {e}"
            );
        }
    }
    record(engine, &name);
    for m in &members {
        record(engine, &m.stream);
    }
    let job = RoomRecording {
        room: room.to_owned(),
        mixer,
        started_ms: now_ms(),
    };
    let info = json!({ "room": room, "composite": name, "startTime": job.started_ms });
    engine.start_job(KIND, room, info, Box::new(job));
    tracing::info!(room, "room recording started");
    Ok(name)
}

/// A stream published in a room being recorded joins the recording.
pub async fn joined(engine: &Engine, room: &str, stream: &str) {
    let Some(mixer) = engine.with_job(KIND, room, |r: &RoomRecording| r.mixer.clone()) else {
        return;
    };
    let member = Member {
        stream: stream.to_owned(),
        login: engine
            .stream_of(Some(stream), None)
            .map(|s| s.login)
            .unwrap_or_default(),
    };
    let m = member.clone();
    let _ = tokio::task::spawn_blocking(move || mixer.add(&m.stream, &m.login, true, true)).await;
    record(engine, &member.stream);
}

/// Stops recording room `room`: the files are finalised and the sidecar written; returns it.
pub async fn stop(engine: &Engine, room: &str, members: &[Member]) -> Result<Value, MixerError> {
    let id = engine
        .jobs(Some(KIND))
        .into_iter()
        .find(|j| j.name == room)
        .map(|j| j.id)
        .ok_or(EngineError::NotRecording)?;
    let job = engine
        .stop_job(&id)
        .and_then(|k| k.downcast::<RoomRecording>().ok())
        .ok_or(EngineError::NotRecording)?;
    let history = job.mixer.history();
    let composite = job.mixer.output().to_owned();
    let mut streams: Vec<String> = members.iter().map(|m| m.stream.clone()).collect();
    for e in history["events"].as_array().into_iter().flatten() {
        if let Some(s) = e["stream"].as_str() {
            if !streams.iter().any(|x| x == s) {
                streams.push(s.to_owned());
            }
        }
    }
    streams.push(composite.clone());
    let mut events = engine.subscribe();
    let mut waiting: Vec<String> = Vec::new();
    for s in &streams {
        if service::stop_recording(engine, Some(s), None).is_ok() {
            waiting.push(s.clone());
        }
    }
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + FINISH_TIMEOUT;
    while files.len() < waiting.len() {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(EngineEvent::RecordingStopped {
                name, file_name, ..
            })) if waiting.contains(&name) => {
                files.insert(name, file_name);
            }
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            _ => break,
        }
    }
    let _ = mixer::terminate(engine, job.mixer.name());
    let dir = engine.config().record_dir();
    let describe = |stream: &str| -> Value {
        let Some(file) = files.get(stream) else {
            return json!({ "stream": stream, "file": null });
        };
        let side: Value = std::fs::read_to_string(listing::sidecar_path(&dir.join(file)))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        json!({ "stream": stream, "file": file, "durationMs": side["duration"], "bytes": side["bytes"] })
    };
    let login_of = |stream: &str| {
        members
            .iter()
            .find(|m| m.stream == stream)
            .map(|m| m.login.clone())
            .unwrap_or_default()
    };
    let participants: Vec<Value> = streams
        .iter()
        .filter(|s| **s != composite)
        .map(|s| {
            let mut d = describe(s);
            d["login"] = json!(login_of(s));
            d
        })
        .collect();
    let chapters: Vec<Value> = history["spoke"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let s = c["stream"].as_str().unwrap_or_default();
            json!({ "login": login_of(s), "stream": s, "start": c["start"], "end": c["end"] })
        })
        .collect();
    let sidecar = json!({
        "room": job.room,
        "startTime": job.started_ms,
        "endTime": now_ms(),
        "composite": describe(&composite),
        "participants": participants,
        "events": history["events"],
        "chapters": chapters,
    });
    let path = dir.join(format!(
        "{}-{}-interview.json",
        sanitize(&job.room),
        job.started_ms
    ));
    let text =
        serde_json::to_vec_pretty(&sidecar).map_err(|e| EngineError::Internal(e.to_string()))?;
    let tmp = path.with_extension("json.part");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| EngineError::Internal(format!("room sidecar: {e}")))?;
    tracing::info!(room = %job.room, files = files.len(), "room recording stopped");
    Ok(sidecar)
}

/// A room name as a file name: what could leave the folder or confuse a shell is replaced.
fn sanitize(room: &str) -> String {
    room.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect()
}
