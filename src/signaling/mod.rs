//! WCS-compatible WebSocket signaling on the HTTP port (`/` and `/websocket`). Each connection is a
//! task ([`session`]) that owns its publish and play handles; the [`Sessions`] table lets REST find a
//! connection to list it or send it data.

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

    /// Asks one connection to close.
    pub fn close(&self, id: &str) -> bool {
        self.lock()
            .get(id)
            .is_some_and(|e| e.tx.try_send(Control::Close).is_ok())
    }
}
