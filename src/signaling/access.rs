//! Who may do what on a signaling connection, and what the back end hears of it: the connect
//! decision (token, then the `connect` hook), `OnDataEvent` for `sendData`, the events of a
//! connection (`ConnectionStatusEvent`) and of a client's own stop (`unPublishStream`,
//! `stopStream`), and `availableStream`.

use crate::auth::RESTRICTED;
use crate::history::Note;
use crate::server::AppState;
use serde_json::{json, Value};

/// The connect decision for a connection's object: allowed (with what the back end overwrote), or
/// the `info` the client is refused with.
pub async fn connect(
    state: &AppState,
    session_id: &str,
    app_key: &str,
    info: Value,
) -> Result<Value, String> {
    let token = info
        .get("custom")
        .and_then(|c| c.get("token"))
        .and_then(Value::as_str);
    if let Err(e) = state.tokens.bind(session_id, token) {
        tracing::info!(session = %session_id, "connection refused: {e}");
        return Err(RESTRICTED.into());
    }
    let mut body = info;
    if let Some(o) = body.as_object_mut() {
        // The session's own credentials stay here.
        o.remove("authToken");
        o.remove("status");
    }
    state
        .hooks
        .connect(session_id, app_key, body)
        .await
        .inspect_err(|reason| {
            state.tokens.forget(session_id);
            tracing::info!(session = %session_id, %reason, "connection refused by the back end");
        })
}

/// Who a connection is, for its events.
pub struct Who<'a> {
    /// The connection.
    pub session_id: &'a str,
    /// Its application.
    pub app_key: &'a str,
    /// Its login.
    pub login: &'a str,
    /// Its address.
    pub client: String,
}

/// A connection was established, failed or ended: the back end and the history hear of it.
pub fn connection_event(state: &AppState, who: &Who<'_>, status: &str, info: Option<&str>) {
    let (session_id, app_key) = (who.session_id, who.app_key);
    if let Some(h) = &state.history {
        match status {
            "ESTABLISHED" => h.note(Note::Connected {
                session_id: session_id.to_owned(),
                app_key: app_key.to_owned(),
                login: who.login.to_owned(),
                client: who.client.clone(),
            }),
            "DISCONNECTED" => h.note(Note::Disconnected {
                session_id: session_id.to_owned(),
            }),
            _ => {}
        }
    }
    let mut body = json!({
        "nodeId": state.node_id,
        "appKey": app_key,
        "sessionId": session_id,
        "login": who.login,
        "status": status,
    });
    if let Some(i) = info {
        body["info"] = json!(i);
    }
    state
        .hooks
        .notify(session_id, app_key, "ConnectionStatusEvent", body);
}

/// A connection ended: its hook policies and token are forgotten once its last events are out.
pub fn forget(state: &AppState, session_id: &str) {
    state.tokens.forget(session_id);
    state.hooks.forget(session_id);
}

/// `sendData`'s decision by the back end (`OnDataEvent`): `Err` carries the refusal.
pub async fn data(
    state: &AppState,
    session_id: &str,
    app_key: &str,
    login: &str,
    operation_id: &str,
    payload: &Value,
) -> Result<(), String> {
    let body = json!({
        "nodeId": state.node_id,
        "appKey": app_key,
        "sessionId": session_id,
        "operationId": operation_id,
        "login": login,
        "payload": payload,
    });
    state
        .hooks
        .decide(session_id, app_key, "OnDataEvent", body)
        .await
        .map(|_| ())
}

/// The client stopped one of its streams (`unPublishStream` or `stopStream`): the back end is told.
pub fn stream_stop(
    state: &AppState,
    session_id: &str,
    app_key: &str,
    method: &str,
    msid: &str,
    name: &str,
) {
    let body = json!({
        "nodeId": state.node_id,
        "appKey": app_key,
        "sessionId": session_id,
        "mediaSessionId": msid,
        "name": name,
    });
    state.hooks.notify(session_id, app_key, method, body);
}

/// The answer to `availableStream {mediaSessionId, name}`: whether the stream can be played now,
/// `status` as the strings the SDK compares with.
pub fn available(state: &AppState, args: &Value) -> Value {
    let name = args.get("name").and_then(Value::as_str).unwrap_or("");
    let id = args.get("mediaSessionId").cloned().unwrap_or(Value::Null);
    let found = !name.is_empty() && state.engine.stream_of(Some(name), None).is_some();
    let mut out = json!({ "id": id, "status": if found { "true" } else { "false" } });
    if !found {
        out["info"] = json!("Stream not found");
    }
    out
}

/// Whether a connection may join `room` with the token it presented.
pub fn may_join(state: &AppState, session_id: &str, room: &str) -> Result<(), String> {
    state.tokens.may_join(session_id, room).map_err(|e| {
        tracing::info!(session = %session_id, room = %crate::redact::Escaped(room), "join refused: {e}");
        RESTRICTED.to_owned()
    })
}

/// The rooms a connection joined and left since `before` (its memberships then): the history
/// hears of each.
pub fn room_changes(state: &AppState, session_id: &str, before: Vec<(String, String)>) {
    let Some(h) = &state.history else { return };
    let after = state.rooms_lock().memberships(session_id);
    for (room, login) in after.iter().filter(|m| !before.contains(m)) {
        h.note(Note::Joined {
            room: room.clone(),
            login: login.clone(),
            session_id: session_id.to_owned(),
        });
    }
    for (room, login) in before.iter().filter(|m| !after.contains(m)) {
        h.note(Note::Left {
            room: room.clone(),
            login: login.clone(),
            session_id: session_id.to_owned(),
        });
    }
}
