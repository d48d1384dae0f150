//! The call history: connections, streams (who, when, how long, over what), rooms as calls (from
//! first join to last leave) with each participant's join and leave, recordings (file, duration,
//! which call) and hook outcomes. Kept in SQLite under the data directory by default, or in
//! PostgreSQL when `history.database_url` names one, through the same code ([`store`]). One task
//! writes, in the order things happened; REST reads.

pub mod store;

use crate::engine::{Engine, EngineEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use store::{Bind, Store};
use tokio::sync::{broadcast::error::RecvError, mpsc, watch};

/// The `[history]` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// `postgres://user:password@host/db` or `sqlite://path`; unset: `DATA_DIR/history.db`.
    pub database_url: Option<String>,
    /// Keep no history at all.
    pub disabled: bool,
}

/// Something the engine's events do not carry, told by the part of the server that knows it.
#[derive(Debug, Clone)]
pub enum Note {
    /// A signaling or RTMP connection was established.
    Connected {
        /// Its id.
        session_id: String,
        /// Its application.
        app_key: String,
        /// Its login.
        login: String,
        /// Its address.
        client: String,
    },
    /// It ended.
    Disconnected {
        /// Its id.
        session_id: String,
    },
    /// A login joined a room.
    Joined {
        /// The room.
        room: String,
        /// Who.
        login: String,
        /// Their connection.
        session_id: String,
    },
    /// A login left a room.
    Left {
        /// The room.
        room: String,
        /// Who.
        login: String,
        /// Their connection.
        session_id: String,
    },
    /// A REST hook was delivered.
    Hook(crate::hooks::Delivery),
}

/// How many notes may wait for the writer before new ones are dropped (and a warning logged).
const BACKLOG: usize = 8192;

/// The history: a writer fed by notes and engine events, and the store REST reads.
pub struct History {
    tx: mpsc::Sender<(i64, Note)>,
    store: Store,
}

/// Now, in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl History {
    /// Opens the history the configuration names (or none, when disabled) and starts its writer.
    pub async fn open(
        cfg: &HistoryConfig,
        data_dir: &Path,
        engine: Engine,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<Option<Arc<History>>> {
        if cfg.disabled {
            return Ok(None);
        }
        let url = match &cfg.database_url {
            Some(u) => u.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("history.db").display()
            ),
        };
        let store = Store::open(&url).await.map_err(|e| {
            anyhow::anyhow!(
                "opening the history database {}: {e}",
                crate::redact::url(&url)
            )
        })?;
        store.close_dangling().await?;
        let (tx, rx) = mpsc::channel(BACKLOG);
        let h = Arc::new(History {
            tx,
            store: store.clone(),
        });
        tokio::spawn(Writer::default().run(store, rx, engine, stop));
        tracing::info!(database = %crate::redact::url(&url), "call history open");
        Ok(Some(h))
    }

    /// Records a note (never waits: when the writer is this far behind, the note is dropped).
    pub fn note(&self, note: Note) {
        match self.tx.try_send((now_ms(), note)) {
            Ok(()) => {}
            // The writer has stopped (the server is shutting down): nothing to warn about.
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::debug!("call history closed; a late note was dropped")
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!("call history is behind; a note was dropped")
            }
        }
    }

    /// The store, for queries.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// The writer's view of what is open.
#[derive(Default)]
struct Writer {
    /// Room → its open call.
    calls: HashMap<String, String>,
    /// (room, login, connection) → participant row.
    present: HashMap<(String, String, String), String>,
    /// Connection → login.
    logins: HashMap<String, String>,
    /// Media session → the call its stream belongs to.
    streams: HashMap<String, Option<String>>,
    /// Media session → (when its recording started, the call it belongs to).
    recording: HashMap<String, (i64, Option<String>)>,
}

impl Writer {
    async fn run(
        mut self,
        store: Store,
        mut rx: mpsc::Receiver<(i64, Note)>,
        engine: Engine,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut events = engine.subscribe();
        loop {
            let r = tokio::select! {
                n = rx.recv() => match n {
                    Some((at, note)) => self.on_note(&store, at, note).await,
                    None => return,
                },
                ev = events.recv() => match ev {
                    Ok(ev) => self.on_event(&store, &engine, ev).await,
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "call history fell behind the engine's events");
                        Ok(())
                    }
                    Err(RecvError::Closed) => return,
                },
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        // What is still queued goes in; then everything open is closed as of now.
                        while let Ok((at, note)) = rx.try_recv() {
                            let _ = self.on_note(&store, at, note).await;
                        }
                        while let Ok(ev) = events.try_recv() {
                            let _ = self.on_event(&store, &engine, ev).await;
                        }
                        let _ = self.close_all(&store, now_ms()).await;
                        return;
                    }
                    Ok(())
                }
            };
            if let Err(e) = r {
                tracing::warn!("call history write failed: {e}");
            }
        }
    }

    async fn on_note(&mut self, s: &Store, at: i64, note: Note) -> Result<(), sqlx::Error> {
        match note {
            Note::Connected {
                session_id,
                app_key,
                login,
                client,
            } => {
                self.logins.insert(session_id.clone(), login.clone());
                s.exec(
                    "INSERT INTO connections (session_id, app_key, login, client, started_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                    vec![
                        Bind::Text(session_id),
                        Bind::Text(app_key),
                        Bind::Text(login),
                        Bind::Text(client),
                        Bind::Int(at),
                    ],
                )
                .await?;
            }
            Note::Disconnected { session_id } => {
                self.logins.remove(&session_id);
                s.exec(
                    "UPDATE connections SET ended_at = $1 WHERE session_id = $2",
                    vec![Bind::Int(at), Bind::Text(session_id)],
                )
                .await?;
            }
            Note::Joined {
                room,
                login,
                session_id,
            } => {
                let call = match self.calls.get(&room) {
                    Some(c) => c.clone(),
                    None => {
                        let id = uuid::Uuid::new_v4().to_string();
                        s.exec(
                            "INSERT INTO calls (id, room, started_at) VALUES ($1, $2, $3)",
                            vec![
                                Bind::Text(id.clone()),
                                Bind::Text(room.clone()),
                                Bind::Int(at),
                            ],
                        )
                        .await?;
                        self.calls.insert(room.clone(), id.clone());
                        id
                    }
                };
                let id = uuid::Uuid::new_v4().to_string();
                s.exec(
                    "INSERT INTO participants (id, call_id, login, session_id, joined_at) VALUES ($1, $2, $3, $4, $5)",
                    vec![Bind::Text(id.clone()), Bind::Text(call), Bind::Text(login.clone()), Bind::Text(session_id.clone()), Bind::Int(at)],
                )
                .await?;
                self.present.insert((room, login, session_id), id);
            }
            Note::Left {
                room,
                login,
                session_id,
            } => {
                if let Some(id) = self.present.remove(&(room.clone(), login, session_id)) {
                    s.exec(
                        "UPDATE participants SET left_at = $1 WHERE id = $2",
                        vec![Bind::Int(at), Bind::Text(id)],
                    )
                    .await?;
                }
                if !self.present.keys().any(|(r, _, _)| *r == room) {
                    if let Some(call) = self.calls.remove(&room) {
                        s.exec(
                            "UPDATE calls SET ended_at = $1 WHERE id = $2",
                            vec![Bind::Int(at), Bind::Text(call)],
                        )
                        .await?;
                    }
                }
            }
            Note::Hook(d) => {
                s.exec(
                    "INSERT INTO hook_outcomes (id, at, app_key, method, session_id, status, outcome, reason, millis) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    vec![
                        Bind::Text(uuid::Uuid::new_v4().to_string()),
                        Bind::Int(at),
                        Bind::Text(d.app_key),
                        Bind::Text(d.method),
                        Bind::Text(d.session_id),
                        Bind::MaybeInt(d.status.map(i64::from)),
                        Bind::Text(d.outcome.to_owned()),
                        Bind::Text(d.reason),
                        Bind::Int(d.millis as i64),
                    ],
                )
                .await?;
            }
        }
        Ok(())
    }

    /// The open call a stream belongs to: its room (`custom.name`), its MCU name (`login#room`),
    /// or the room whose interview composite it is.
    fn call_of(&self, name: &str, custom: &Value) -> Option<String> {
        let by_custom = custom.get("name").and_then(Value::as_str);
        let by_mcu = name.rsplit_once('#').map(|(_, r)| r);
        let by_composite = name.strip_suffix("-interview");
        [by_custom, by_mcu, by_composite]
            .into_iter()
            .flatten()
            .find_map(|room| self.calls.get(room).cloned())
    }

    async fn on_event(
        &mut self,
        s: &Store,
        engine: &Engine,
        ev: EngineEvent,
    ) -> Result<(), sqlx::Error> {
        let at = now_ms();
        match ev {
            EngineEvent::Published {
                media_session_id: msid,
                ..
            }
            | EngineEvent::Playing {
                media_session_id: msid,
                ..
            } => {
                let Some(info) = engine.find(None, Some(&msid), None).into_iter().next() else {
                    return Ok(());
                };
                let call = self.call_of(&info.name, &info.custom);
                let login = self
                    .logins
                    .get(&info.session_id)
                    .cloned()
                    .unwrap_or_default();
                self.streams.insert(msid.clone(), call.clone());
                s.exec(
                    "INSERT INTO streams (media_session_id, name, published, app_key, session_id, login, provider, call_id, started_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    vec![
                        Bind::Text(msid),
                        Bind::Text(info.name),
                        Bind::Int(i64::from(info.published)),
                        Bind::Text(info.app_key),
                        Bind::Text(info.session_id),
                        Bind::Text(login),
                        Bind::Text(info.media_provider.to_owned()),
                        Bind::MaybeText(call),
                        Bind::Int(at),
                    ],
                )
                .await?;
            }
            EngineEvent::Unpublished {
                media_session_id: msid,
                ..
            }
            | EngineEvent::Stopped {
                media_session_id: msid,
                ..
            } => self.ended(s, msid, None, at).await?,
            EngineEvent::Failed {
                media_session_id: msid,
                info,
                ..
            } => self.ended(s, msid, Some(info), at).await?,
            EngineEvent::RecordingStarted {
                media_session_id, ..
            } => {
                // The call is taken now: the stream may end before its recording is finalised.
                let call = self.streams.get(&media_session_id).cloned().flatten();
                self.recording.insert(media_session_id, (at, call));
            }
            EngineEvent::RecordingStopped {
                media_session_id,
                file_name,
                name,
                ..
            } => {
                let (started, call) = self
                    .recording
                    .remove(&media_session_id)
                    .unwrap_or((at, None));
                let call = call
                    .or_else(|| self.streams.get(&media_session_id).cloned().flatten())
                    .or_else(|| self.call_of(&name, &Value::Null));
                s.exec(
                    "INSERT INTO recordings (id, call_id, stream_name, file_name, started_at, duration_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    vec![
                        Bind::Text(uuid::Uuid::new_v4().to_string()),
                        Bind::MaybeText(call),
                        Bind::Text(name),
                        Bind::Text(file_name),
                        Bind::Int(started),
                        Bind::Int(at - started),
                    ],
                )
                .await?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn ended(
        &mut self,
        s: &Store,
        msid: String,
        info: Option<String>,
        at: i64,
    ) -> Result<(), sqlx::Error> {
        self.streams.remove(&msid);
        s.exec(
            "UPDATE streams SET ended_at = $1, end_info = $2 WHERE media_session_id = $3 AND ended_at IS NULL",
            vec![Bind::Int(at), Bind::MaybeText(info), Bind::Text(msid)],
        )
        .await?;
        Ok(())
    }

    /// The server stops: every open call, participant and stream ends now.
    async fn close_all(&mut self, s: &Store, at: i64) -> Result<(), sqlx::Error> {
        for (_, id) in self.present.drain() {
            s.exec(
                "UPDATE participants SET left_at = $1 WHERE id = $2",
                vec![Bind::Int(at), Bind::Text(id)],
            )
            .await?;
        }
        for (_, call) in self.calls.drain() {
            s.exec(
                "UPDATE calls SET ended_at = $1 WHERE id = $2",
                vec![Bind::Int(at), Bind::Text(call)],
            )
            .await?;
        }
        s.exec(
            "UPDATE streams SET ended_at = $1, end_info = 'Requested stream shutdown' WHERE ended_at IS NULL",
            vec![Bind::Int(at)],
        )
        .await?;
        s.exec(
            "UPDATE connections SET ended_at = $1 WHERE ended_at IS NULL",
            vec![Bind::Int(at)],
        )
        .await?;
        Ok(())
    }
}
