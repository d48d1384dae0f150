//! Hooks at the engine's admission point and on its event feed. [`HookAdmission`] asks
//! `publishStream`, `playStream`, `playHLS` or `playRTSP` for every publish and play, whatever the
//! protocol, and applies what the back end overwrote (a new stream name, recording on). [`run`]
//! turns the engine's events into `StreamStatusEvent`, `RecordingStatusEvent` and periodic
//! `StreamKeepAliveEvent`s, each with the body the media session was admitted with.

use super::Hooks;
use crate::engine::{
    Action, Admission, AdmissionRequest, Admitted, BoxFuture, Engine, EngineError, EngineEvent,
};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// What a media session's events carry, from its admission on.
#[derive(Debug, Clone)]
pub(crate) struct MediaCtx {
    session_id: String,
    app_key: String,
    body: Value,
    admitted: Instant,
    recording: Option<(String, Instant)>,
}

/// The hook named for a request.
fn method_of(req: &AdmissionRequest) -> &'static str {
    match (req.action, req.provider) {
        (Action::Publish, _) => "publishStream",
        (Action::Play, "HLS") => "playHLS",
        (Action::Play, "RTSP") => "playRTSP",
        (Action::Play, _) => "playStream",
    }
}

/// The body of a stream hook, in the shape of WCS's `StreamStatusEvent`.
fn body_of(hooks: &Hooks, req: &AdmissionRequest) -> Value {
    let published = req.action == Action::Publish;
    json!({
        "nodeId": hooks.node_id(),
        "appKey": req.app_key,
        "sessionId": req.session_id,
        "mediaSessionId": req.media_session_id,
        "name": req.name,
        "published": published,
        "status": "PENDING",
        "record": req.record,
        "mediaType": if published { "publish" } else { "play" },
        "mediaProvider": req.provider,
        "login": req.login,
        "custom": req.custom,
        "sdp": req.sdp,
        "createDate": crate::history::now_ms(),
    })
}

/// Every publish and play asks the back end of the client's application.
pub struct HookAdmission(pub Arc<Hooks>);

impl Admission for HookAdmission {
    fn admit(&self, req: AdmissionRequest) -> BoxFuture<Result<Admitted, EngineError>> {
        let hooks = self.0.clone();
        Box::pin(async move {
            let method = method_of(&req);
            let app = req.app_key.clone();
            let body = body_of(&hooks, &req);
            let decided = hooks
                .decide(&req.session_id, &app, method, body)
                .await
                .map_err(EngineError::Denied)?;
            let mut out = Admitted::default();
            if let Some(n) = decided.get("name").and_then(Value::as_str) {
                if n != req.name {
                    out.name = Some(n.to_owned());
                }
            }
            if req.action == Action::Publish {
                if let Some(r) = decided.get("record").and_then(Value::as_bool) {
                    if r != req.record {
                        out.record = Some(r);
                    }
                }
            }
            if hooks.calls(&app, "StreamStatusEvent")
                || hooks.calls(&app, "RecordingStatusEvent")
                || hooks.calls(&app, "StreamKeepAliveEvent")
            {
                let mut body = decided;
                if let Some(o) = body.as_object_mut() {
                    o.remove("sdp");
                }
                super::lock(&hooks.media).insert(
                    req.media_session_id.clone(),
                    MediaCtx {
                        session_id: req.session_id,
                        app_key: app,
                        body,
                        admitted: Instant::now(),
                        recording: None,
                    },
                );
            }
            Ok(out)
        })
    }
}

/// The media session's current description, over the one it was admitted with.
fn current(engine: &Engine, msid: &str, base: &Value) -> Value {
    let mut body = base.clone();
    if let Some(info) = engine.find(None, Some(msid), None).into_iter().next() {
        if let (Some(o), Ok(Value::Object(now))) =
            (body.as_object_mut(), serde_json::to_value(info))
        {
            for (k, v) in now {
                o.insert(k, v);
            }
        }
    }
    body
}

fn with(mut body: Value, fields: Value) -> Value {
    if let (Some(o), Value::Object(f)) = (body.as_object_mut(), fields) {
        for (k, v) in f {
            o.insert(k, v);
        }
    }
    body
}

/// Delivers the engine's events to the back ends until the server stops.
pub async fn run(hooks: Arc<Hooks>, engine: Engine, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut events = engine.subscribe();
    let every = hooks.config().keep_alive_interval;
    let mut tick = tokio::time::interval(if every.is_zero() {
        Duration::from_secs(30)
    } else {
        every
    });
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ev) => on_event(&hooks, &engine, ev),
                Err(RecvError::Lagged(n)) => tracing::warn!(missed = n, "REST hooks fell behind the engine's events"),
                Err(RecvError::Closed) => return,
            },
            _ = tick.tick() => tick_sessions(&hooks, &engine, !every.is_zero()),
            changed = stop.changed() => if changed.is_err() || *stop.borrow() {
                // The last events (every stream ending) still go out.
                while let Ok(ev) = events.try_recv() {
                    on_event(&hooks, &engine, ev);
                }
                return;
            },
        }
    }
}

fn on_event(hooks: &Arc<Hooks>, engine: &Engine, ev: EngineEvent) {
    let (msid, status, info, end) = match &ev {
        EngineEvent::Published {
            media_session_id, ..
        } => (media_session_id, "PUBLISHING", None, false),
        EngineEvent::Playing {
            media_session_id, ..
        } => (media_session_id, "PLAYING", None, false),
        EngineEvent::Unpublished {
            media_session_id, ..
        } => (media_session_id, "UNPUBLISHED", None, true),
        EngineEvent::Stopped {
            media_session_id, ..
        } => (media_session_id, "STOPPED", None, true),
        EngineEvent::Failed {
            media_session_id,
            info,
            ..
        } => (media_session_id, "FAILED", Some(info.clone()), true),
        EngineEvent::RecordingStarted {
            media_session_id,
            file_name,
            ..
        } => {
            return recording(hooks, engine, media_session_id, file_name, true, None);
        }
        EngineEvent::RecordingStopped {
            media_session_id,
            file_name,
            reason,
            ..
        } => {
            return recording(
                hooks,
                engine,
                media_session_id,
                file_name,
                false,
                reason.clone(),
            );
        }
        _ => return,
    };
    let ctx = {
        let mut media = super::lock(&hooks.media);
        if end {
            media.remove(msid)
        } else {
            media.get(msid).cloned()
        }
    };
    let Some(ctx) = ctx else { return };
    let mut body = current(engine, msid, &ctx.body);
    body = with(body, json!({ "status": status }));
    if let Some(info) = info {
        body = with(body, json!({ "info": info }));
    }
    if !end {
        if let Some(c) = super::lock(&hooks.media).get_mut(msid) {
            c.body = body.clone();
        }
    }
    hooks.notify(&ctx.session_id, &ctx.app_key, "StreamStatusEvent", body);
}

fn recording(
    hooks: &Arc<Hooks>,
    engine: &Engine,
    msid: &str,
    file: &str,
    started: bool,
    reason: Option<String>,
) {
    let ctx = {
        let mut media = super::lock(&hooks.media);
        let Some(c) = media.get_mut(msid) else { return };
        let since = c.recording.take();
        if started {
            c.recording = Some((file.to_owned(), Instant::now()));
        }
        (c.clone(), since)
    };
    let (ctx, since) = ctx;
    let body = current(engine, msid, &ctx.body);
    let status = with(
        body.clone(),
        json!({ "record": started, "recordName": file }),
    );
    hooks.notify(&ctx.session_id, &ctx.app_key, "StreamStatusEvent", status);
    let mut ev = json!({
        "nodeId": hooks.node_id(),
        "appKey": ctx.app_key,
        "sessionId": ctx.session_id,
        "mediaSessionId": msid,
        "name": body.get("name").cloned().unwrap_or(Value::Null),
        "status": if started { "STARTED" } else { "STOPPED" },
        "fileName": file,
    });
    if !started {
        ev["duration"] = json!(since
            .map(|(_, t)| t.elapsed().as_millis() as u64)
            .unwrap_or(0));
        if let Some(r) = reason {
            ev["reason"] = json!(r);
        }
    }
    hooks.notify(&ctx.session_id, &ctx.app_key, "RecordingStatusEvent", ev);
}

/// Keep-alives (when configured), and the forgetting of sessions admitted but never started.
fn tick_sessions(hooks: &Arc<Hooks>, engine: &Engine, keep_alive: bool) {
    let all: Vec<(String, MediaCtx)> = super::lock(&hooks.media)
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (msid, ctx) in all {
        let Some(info) = engine.find(None, Some(&msid), None).into_iter().next() else {
            if ctx.admitted.elapsed() > Duration::from_secs(60) {
                super::lock(&hooks.media).remove(&msid);
            }
            continue;
        };
        let status = serde_json::to_value(info.status).unwrap_or(Value::Null);
        if !keep_alive || !(status == "PUBLISHING" || status == "PLAYING") {
            continue;
        }
        let body = current(engine, &msid, &ctx.body);
        let (hooks, engine) = (hooks.clone(), engine.clone());
        tokio::spawn(async move {
            if !hooks.keep_alive(&ctx.session_id, &ctx.app_key, body).await {
                tracing::info!(media_session = %msid, "stopped: the back end refused a keep-alive");
                engine.terminate(&[msid], "Terminated by keep-alive");
            }
        });
    }
}
