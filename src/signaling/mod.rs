//! WCS-compatible WebSocket signaling on the HTTP port (`/` and `/websocket`). Each connection is a
//! task ([`session`]) that owns its publish and play handles; the [`Sessions`] table lets REST find a
//! connection to list it or send it data.

pub mod access;
pub mod protocol;
pub mod session;

use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Capacity of a connection's outgoing queue. Signaling frames are small and few; a client that lets
/// this many pile up is not reading and is disconnected rather than buffered without bound.
pub const OUTBOX_CAPACITY: usize = 512;

/// What other parts of the server can do to a connection.
#[derive(Debug)]
pub enum Control {
    /// Send a text frame.
    Send(String),
    /// Close the connection (REST terminate).
    Close,
    /// The connection's media transport (the second WebSocket of an MSE player) arrived: binary
    /// media goes to it from now on.
    Transport(mpsc::Sender<axum::extract::ws::Message>),
}

struct Entry {
    info: Value,
    tx: mpsc::Sender<Control>,
}

/// The live signaling connections.
#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<String, Entry>>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub(crate) fn insert(&self, id: &str, info: Value, tx: mpsc::Sender<Control>) {
        self.lock().insert(id.to_owned(), Entry { info, tx });
    }

    pub(crate) fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Number of connections that completed the handshake.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every connection object (as `getUserData` returned it).
    pub fn list(&self) -> Vec<Value> {
        self.lock().values().map(|e| e.info.clone()).collect()
    }

    /// Queues a frame for one connection; false when there is no such connection or it is stuck.
    pub fn send(&self, id: &str, frame: String) -> bool {
        self.lock()
            .get(id)
            .is_some_and(|e| e.tx.try_send(Control::Send(frame)).is_ok())
    }

    /// Hands a media transport to the connection whose `authToken` is `token`; false when none has it.
    pub fn transport(&self, token: &str, tx: mpsc::Sender<axum::extract::ws::Message>) -> bool {
        self.lock()
            .values()
            .find(|e| {
                !token.is_empty() && e.info.get("authToken").and_then(Value::as_str) == Some(token)
            })
            .is_some_and(|e| e.tx.try_send(Control::Transport(tx)).is_ok())
    }

    /// Asks one connection to close.
    pub fn close(&self, id: &str) -> bool {
        self.lock()
            .get(id)
            .is_some_and(|e| e.tx.try_send(Control::Close).is_ok())
    }
}

/// Tells every room when recording of one of its streams starts or stops (`RECORDING` room
/// events), from the engine's event stream. Runs until the server stops.
pub fn room_recording_notices(state: crate::server::AppState) {
    use crate::engine::EngineEvent;
    let mut events = state.engine.subscribe();
    tokio::spawn(async move {
        loop {
            let (name, active, file) = match events.recv().await {
                Ok(EngineEvent::RecordingStarted {
                    name, file_name, ..
                }) => (name, true, file_name),
                Ok(EngineEvent::RecordingStopped {
                    name, file_name, ..
                }) => (name, false, file_name),
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "room notices fell behind the event stream");
                    continue;
                }
                Err(_) => break,
            };
            let deliveries = state.rooms_lock().recording(&name, active, &file);
            for d in deliveries {
                let frame = protocol::frame(
                    "OnDataEvent",
                    serde_json::json!({ "nodeId": state.node_id, "sessionId": d.session_id, "payload": d.payload }),
                );
                state.sessions.send(&d.session_id, frame);
            }
        }
    });
}
