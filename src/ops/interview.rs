//! A room recorded as an interview: one composite file (a mixer of everyone's picture and voice,
//! recorded like any stream), one file per participant, and a JSON sidecar that says who joined
//! and left and when, when each spoke (the chapters), and which files were written and how long
//! they are. It is an engine job (kind `room-recording`, named after the room); the participants'
//! own recordings tell everyone in the room that recording is on, as any recording does.

use super::mixer::{self, Mixer, MixerError, MixerSpec};
use super::{listing, service};
use crate::engine::{Engine, EngineError, EngineEvent};
use crate::sync::lock;
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
    /// Every stream that took part, with its publisher's login (kept after they leave, for the
    /// sidecar).
    logins: std::sync::Mutex<BTreeMap<String, String>>,
}

/// Starting, joining and stopping one at a time: two participants publishing at once into a room
/// that records itself must not start two recordings, nor join one half started.
static GATE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Member {
    /// Members from a room's `(login, stream)` pairs.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Vec<Member> {
        pairs
            .into_iter()
            .map(|(login, stream)| Member { stream, login })
            .collect()
    }
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
    let _gate = GATE.lock().await;
    start_gated(engine, room, members).await
}

async fn start_gated(
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
        logins: std::sync::Mutex::new(
            members
                .iter()
                .map(|m| (m.stream.clone(), m.login.clone()))
                .collect(),
        ),
    };
    let info = json!({ "room": room, "composite": name, "startTime": job.started_ms });
    engine.start_job(KIND, room, info, Box::new(job));
    tracing::info!(room, "room recording started");
    Ok(name)
}

/// A stream published in room `room`: it joins the room's recording if one runs; otherwise, when
/// the room asked to be recorded (`wanted`: joined with `record: true`), the recording
/// starts with the room's `members`.
pub async fn published(
    engine: &Engine,
    room: &str,
    stream: &str,
    wanted: bool,
    members: Vec<Member>,
) {
    let _gate = GATE.lock().await;
    let Some(job) = engine.with_job(KIND, room, |r: &RoomRecording| {
        (r.mixer.clone(), lock(&r.logins).len())
    }) else {
        if wanted {
            if let Err(e) = start_gated(engine, room, members).await {
                tracing::warn!(room, "room recording did not start: {e}");
            }
        }
        return;
    };
    let mixer = job.0;
    let login = members
        .iter()
        .find(|m| m.stream == stream)
        .map(|m| m.login.clone())
        .or_else(|| engine.stream_of(Some(stream), None).map(|s| s.login))
        .unwrap_or_default();
    engine.with_job(KIND, room, |r: &RoomRecording| {
        lock(&r.logins).insert(stream.to_owned(), login.clone())
    });
    let (s, l) = (stream.to_owned(), login);
    let _ = tokio::task::spawn_blocking(move || mixer.add(&s, &l, true, true)).await;
    record(engine, stream);
}

/// Room `room` emptied (its last participant left, or it was ended): its recording, if one runs,
/// stops and its sidecar is written.
pub async fn emptied(engine: &Engine, room: &str) {
    match stop(engine, room).await {
        Ok(_) | Err(MixerError::Engine(EngineError::NotRecording)) => {}
        Err(e) => tracing::warn!(room, "room recording did not stop cleanly: {e}"),
    }
}

/// Stops recording room `room`: the files are finalised and the sidecar written; returns it.
pub async fn stop(engine: &Engine, room: &str) -> Result<Value, MixerError> {
    let _gate = GATE.lock().await;
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
    let logins = std::mem::take(&mut *lock(&job.logins));
    let mut streams: Vec<String> = logins.keys().cloned().collect();
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
    let login_of = |stream: &str| logins.get(stream).cloned().unwrap_or_default();
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

/// The sidecars of past room recordings in `dir`, newest first, each with its own file name
/// (`sidecar`); only room `room`'s when given. What a back end reads to keep its call history.
pub fn recordings(dir: &std::path::Path, room: Option<&str>) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<Value> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.ends_with("-interview.json") || name.starts_with('.') {
                return None;
            }
            let text = std::fs::read_to_string(e.path()).ok()?;
            let mut v: Value = serde_json::from_str(&text).ok()?;
            if room.is_some_and(|r| v["room"].as_str() != Some(r)) {
                return None;
            }
            v["sidecar"] = Value::String(name);
            Some(v)
        })
        .collect();
    out.sort_by_key(|v| std::cmp::Reverse(v["startTime"].as_u64().unwrap_or(0)));
    out
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
