//! One signaling connection: a task that reads the client's frames, owns every publish and play
//! handle the client opened, relays the engine's notices as WCS status events, pings the client and
//! drops it when silent. Whatever way the connection ends (close, error, silence, shutdown), every
//! stream it owned ends with it, because the handles die with the task.

use super::protocol::{self, Incoming, StreamRef, StreamRequest};
use super::{Control, OUTBOX_CAPACITY};
use crate::engine::{
    EngineError, EngineEvent, MediaEvent, MediaNotice, MediaRequest, PlayHandle, PublishHandle,
    StreamInfo, MAILBOX_CAPACITY,
};
use crate::redact::Escaped;
use crate::server::AppState;
use axum::extract::ws::{Message, WebSocket};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;
use tokio::sync::mpsc;

struct Publisher {
    handle: PublishHandle,
    name: String,
    /// The room named in the publish request's `custom.name` (the room API sets it).
    room_hint: Option<String>,
    /// The room the stream was announced in, once PUBLISHING.
    room: Option<String>,
}

struct Player {
    handle: PlayHandle,
    name: String,
    /// An MSE player's sender to the media transport.
    mse: Option<crate::protocols::mse::MsePlayer>,
}

/// Why the connection ended.
#[derive(Debug)]
enum End {
    ClientClosed,
    SocketError(String),
    Silent,
    NotReading,
    Shutdown,
    ClosedByServer,
    /// The connect decision refused it (token or back end).
    Refused(String),
}

struct Conn {
    id: String,
    peer: SocketAddr,
    state: AppState,
    app_key: String,
    login: String,
    established: bool,
    out: mpsc::Sender<Message>,
    events: mpsc::Sender<MediaNotice>,
    publishers: HashMap<String, Publisher>,
    players: HashMap<String, Player>,
    /// The MSE media transport (the SDK's second WebSocket), once it connected.
    transport: Option<mpsc::Sender<Message>>,
    /// Warnings this connection may still write: a client sending garbage gets a `fail` for every
    /// frame, but only a few log lines.
    log: crate::listen::LogBudget,
}

/// How long an ended publisher's final status waits for its recording to be finalised.
const FINALISE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Warnings one connection may write per window.
const WARNINGS_PER_WINDOW: u32 = 5;
/// The window for [`WARNINGS_PER_WINDOW`].
const WARNING_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs one connection to its end.
pub async fn run(socket: WebSocket, state: AppState, peer: SocketAddr) {
    let id = uuid::Uuid::new_v4().to_string();
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(OUTBOX_CAPACITY);
    let (ev_tx, mut ev_rx) = mpsc::channel::<MediaNotice>(MAILBOX_CAPACITY);
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<Control>(OUTBOX_CAPACITY);
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            let close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || close {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut shutdown = state.shutdown.clone();
    let cfg = state.engine.config().signaling.clone();
    let mut conn = Conn {
        id: id.clone(),
        peer,
        state,
        app_key: "defaultApp".into(),
        login: String::new(),
        established: false,
        out: out_tx,
        events: ev_tx,
        publishers: HashMap::new(),
        players: HashMap::new(),
        transport: None,
        log: crate::listen::LogBudget::new(WARNINGS_PER_WINDOW, WARNING_WINDOW),
    };
    tracing::info!(session = %id, %peer, "signaling connection opened");
    // The first ping goes out one interval in, not before the client's handshake.
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + cfg.ping_interval,
        cfg.ping_interval,
    );
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    let end = loop {
        tokio::select! {
            msg = stream.next() => {
                last_heard = Instant::now();
                match msg {
                    None | Some(Ok(Message::Close(_))) => break End::ClientClosed,
                    Some(Err(e)) => break End::SocketError(e.to_string()),
                    Some(Ok(Message::Text(t))) => {
                        if let Err(end) = conn.on_text(&ctl_tx, t.as_str()).await {
                            break end;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        if conn.send(protocol::fail("Binary frames are not supported", None)).is_err() {
                            break End::NotReading;
                        }
                    }
                    Some(Ok(_)) => {} // WebSocket-level ping/pong
                }
            }
            Some(n) = ev_rx.recv() => {
                if let Err(end) = conn.on_notice(n).await {
                    break end;
                }
            }
            Some(c) = ctl_rx.recv() => match c {
                Control::Send(f) => if conn.send(f).is_err() { break End::NotReading },
                Control::Close => break End::ClosedByServer,
                Control::Transport(tx) => conn.on_transport(tx),
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > cfg.idle_timeout {
                    break End::Silent;
                }
                if conn.send(protocol::frame("ping", Value::Null)).is_err() {
                    break End::NotReading;
                }
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break End::Shutdown;
                }
            }
        }
    };
    conn.finish(&end);
    drop(conn);
    // Give the writer a moment to flush the final status frames, then stop it regardless.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), writer).await;
}

impl Conn {
    fn who(&self) -> super::access::Who<'_> {
        super::access::Who {
            session_id: &self.id,
            app_key: &self.app_key,
            login: &self.login,
            client: self.peer.to_string(),
        }
    }

    fn send(&self, text: String) -> Result<(), End> {
        self.out
            .try_send(Message::Text(text.into()))
            .map_err(|_| End::NotReading)
    }

    fn status(
        &self,
        info: Option<StreamInfo>,
        base: (&str, &str, bool),
        status: &str,
        text: &str,
    ) -> Result<(), End> {
        let (msid, name, published) = base;
        let mut v = match info {
            Some(i) => serde_json::to_value(i).unwrap_or_else(|_| json!({})),
            None => json!({ "mediaSessionId": msid, "name": name, "published": published }),
        };
        v["status"] = Value::String(status.to_owned());
        if !text.is_empty() {
            v["info"] = Value::String(text.to_owned());
        }
        let hidden = self
            .state
            .hooks
            .policy(&self.id, "StreamStatusEvent")
            .client_exclude;
        let v = crate::hooks::policy::exclude(&v, &hidden);
        self.send(protocol::frame("notifyStreamStatusEvent", v))
    }

    fn info_of(&self, msid: &str) -> Option<StreamInfo> {
        self.state
            .engine
            .find(None, Some(msid), None)
            .into_iter()
            .next()
    }

    async fn on_text(&mut self, ctl: &mpsc::Sender<Control>, text: &str) -> Result<(), End> {
        let msg = match protocol::parse(text) {
            Ok(m) => m,
            Err(e) => {
                if let Some(skipped) = self.log.allow() {
                    tracing::warn!(session = %self.id, peer = %self.peer, skipped, "refused frame: {e}");
                }
                return self.send(protocol::fail(&e.to_string(), e.api_method()));
            }
        };
        match msg {
            Incoming::Connection(obj) => self.on_connection(ctl, obj).await,
            Incoming::PublishStream(r) => self.on_publish(r).await,
            Incoming::PlayStream(r) => self.on_play(r).await,
            Incoming::UnPublishStream(r) => self.on_unpublish(r).await,
            Incoming::StopStream(r) => self.on_stop(r),
            Incoming::SendStreamEvent {
                media_session_id,
                kind,
                payload,
            } => {
                if !self.publishers.contains_key(&media_session_id) {
                    return self.send(protocol::fail("Stream not found", Some("sendStreamEvent")));
                }
                match self
                    .state
                    .engine
                    .stream_event(&media_session_id, &kind, payload)
                {
                    Ok(_) => Ok(()),
                    Err(e) => self.send(protocol::fail(&e.to_string(), Some("sendStreamEvent"))),
                }
            }
            Incoming::SendData {
                operation_id,
                payload,
            } => {
                let is_room_command = payload.get("command").is_some_and(Value::is_string)
                    && (self.app_key == "roomApp" || payload.get("options").is_some());
                if !is_room_command {
                    // The back end decides (`OnDataEvent`); with none, data is accepted as WCS's
                    // default application does.
                    let decided = super::access::data(
                        &self.state,
                        &self.id,
                        &self.app_key,
                        &self.login,
                        &operation_id,
                        &payload,
                    )
                    .await;
                    if let Err(reason) = decided {
                        return self.send(protocol::fail_data(&operation_id, &reason));
                    }
                    return self.send(protocol::frame(
                        "DataStatusEvent",
                        json!({ "operationId": operation_id, "status": "ACCEPTED" }),
                    ));
                }
                if payload.get("command").and_then(Value::as_str) == Some("join") {
                    let room = payload
                        .get("options")
                        .and_then(|o| o.get("name"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if let Err(info) = super::access::may_join(&self.state, &self.id, room) {
                        return self.send(protocol::fail_data(&operation_id, &info));
                    }
                }
                let record = self.state.rooms_lock().record_request(&self.id, &payload);
                if let Some(record) = record {
                    return self.on_room_record(&operation_id, record);
                }
                let before = self.state.rooms_lock().rooms_of(&self.id);
                let memberships = self.state.rooms_lock().memberships(&self.id);
                let result = self
                    .state
                    .rooms_lock()
                    .command(&self.id, &self.login, &payload);
                match result {
                    Ok(deliveries) => {
                        self.send(protocol::frame(
                            "DataStatusEvent",
                            json!({ "operationId": operation_id, "status": "ACCEPTED" }),
                        ))?;
                        self.deliver(deliveries);
                        self.rooms_left(before);
                        super::access::room_changes(&self.state, &self.id, memberships);
                        Ok(())
                    }
                    Err(e) => {
                        if self.log.allow().is_some() {
                            tracing::info!(session = %self.id, login = %Escaped(&self.login), "room command refused: {e}");
                        }
                        self.send(protocol::fail_data(&operation_id, &e.to_string()))
                    }
                }
            }
            Incoming::Snapshot(r) => {
                self.on_snapshot(r);
                Ok(())
            }
            Incoming::Ping => self.send(protocol::frame("pong", Value::Null)),
            Incoming::Pong | Incoming::Quiet => Ok(()),
            Incoming::ConnectMediaTransport(token) => self.on_connect_transport(&token),
            Incoming::AvailableStream(args) => self.send(protocol::frame(
                "availableStream",
                super::access::available(&self.state, &args),
            )),
            Incoming::Unsupported(m) => self.send(protocol::fail(
                &format!("{m} is not supported by this server"),
                Some(&m),
            )),
        }
    }

    /// The room's record button: the room is recorded as an interview (a composite, a file per
    /// participant and a sidecar; see [`crate::ops::interview`]), or its recording stops. The room
    /// hears of each participant's file through its RECORDING events.
    fn on_room_record(
        &mut self,
        operation_id: &str,
        request: Result<(bool, String), crate::rooms::RoomError>,
    ) -> Result<(), End> {
        let (active, room) = match request {
            Ok(r) => r,
            Err(e) => return self.send(protocol::fail_data(operation_id, &e.to_string())),
        };
        let members = self.state.rooms_lock().members(&room).unwrap_or_default();
        let members = crate::ops::interview::Member::from_pairs(members);
        let (engine, out, operation_id) = (
            self.state.engine.clone(),
            self.out.clone(),
            operation_id.to_owned(),
        );
        // Starting builds a mixer and stopping waits for files to be finalised: off the
        // connection's task, answering when done.
        tokio::spawn(async move {
            let result = if active {
                crate::ops::interview::start(&engine, &room, members)
                    .await
                    .map(|_| ())
            } else {
                crate::ops::interview::stop(&engine, &room)
                    .await
                    .map(|_| ())
            };
            let frame = match result {
                Ok(()) => protocol::frame(
                    "DataStatusEvent",
                    json!({ "operationId": operation_id, "status": "ACCEPTED" }),
                ),
                Err(e) => {
                    tracing::info!(room = %Escaped(&room), "room record command refused: {e}");
                    protocol::fail_data(&operation_id, &e.to_string())
                }
            };
            let _ = out.try_send(Message::Text(frame.into()));
        });
        Ok(())
    }

    /// Takes a snapshot off the connection's task (decoding takes a moment) and answers with a
    /// `notifyStreamEvent` of type `snapshotCompleted` (the base64 PNG) or `snapshotFailed`, as
    /// WCS does.
    fn on_snapshot(&self, r: StreamRef) {
        let (engine, out) = (self.state.engine.clone(), self.out.clone());
        tokio::spawn(async move {
            let name = (!r.name.is_empty()).then_some(r.name.as_str());
            let msid = (!r.media_session_id.is_empty()).then_some(r.media_session_id.as_str());
            let frame = match crate::ops::service::snapshot_png(&engine, name, msid).await {
                Ok(png) => {
                    json!({ "mediaSessionId": r.media_session_id, "name": r.name, "type": "snapshotCompleted",
                                   "payload": { "snapshot": png } })
                }
                Err(e) => {
                    json!({ "mediaSessionId": r.media_session_id, "name": r.name, "type": "snapshotFailed",
                                  "payload": { "info": e.to_string() } })
                }
            };
            let _ = out.try_send(Message::Text(
                protocol::frame("notifyStreamEvent", frame).into(),
            ));
        });
    }

    async fn on_connection(&mut self, ctl: &mpsc::Sender<Control>, obj: Value) -> Result<(), End> {
        if self.established {
            return self.send(protocol::fail(
                "Session is already established",
                Some("connection"),
            ));
        }
        let mut info = obj;
        if let Some(k) = info.get("appKey").and_then(Value::as_str) {
            if !k.is_empty() {
                self.app_key = k.to_owned();
            }
        }
        info["appKey"] = Value::String(self.app_key.clone());
        if let Some(l) = info
            .get("custom")
            .and_then(|c| c.get("login"))
            .and_then(Value::as_str)
        {
            self.login = l.to_owned();
        }
        info["sessionId"] = Value::String(self.id.clone());
        info["nodeId"] = Value::String(self.state.node_id.clone());
        if !info.get("authToken").is_some_and(Value::is_string) {
            info["authToken"] = Value::String(self.id.clone());
        }
        // Never echo credentials back or list them over REST.
        if let Some(o) = info.as_object_mut() {
            o.remove("sipPassword");
        }
        let auth_token = info["authToken"].clone();
        let mut info = match super::access::connect(&self.state, &self.id, &self.app_key, info)
            .await
        {
            Ok(i) => i,
            Err(reason) => {
                super::access::connection_event(&self.state, &self.who(), "FAILED", Some(&reason));
                self.send(protocol::fail(&reason, Some("ConnectionStatusEvent")))?;
                return Err(End::Refused(reason));
            }
        };
        // A back end may have overwritten the login (restOverwrite "login" of `connect`).
        if let Some(l) = info.get("login").and_then(Value::as_str) {
            self.login = l.to_owned();
        }
        info["authToken"] = auth_token;
        info["status"] = Value::String("ESTABLISHED".into());
        self.state
            .sessions
            .insert(&self.id, info.clone(), ctl.clone());
        self.established = true;
        tracing::info!(session = %self.id, app_key = %Escaped(&self.app_key), "session established");
        super::access::connection_event(&self.state, &self.who(), "ESTABLISHED", None);
        let hidden = self.state.hooks.policy(&self.id, "connect").client_exclude;
        self.send(protocol::frame(
            "getUserData",
            crate::hooks::policy::exclude(&info, &hidden),
        ))
    }

    fn request(&self, r: &StreamRequest) -> MediaRequest {
        MediaRequest {
            session_id: self.id.clone(),
            app_key: self.app_key.clone(),
            media_session_id: r.media_session_id.clone(),
            name: r.name.clone(),
            sdp: r.sdp.clone(),
            record: r.record,
            custom: r.custom.clone(),
            events: self.events.clone(),
            client: Some(self.peer.ip()),
            login: self.login.clone(),
            resume_token: None,
        }
    }

    fn precheck(&self, r: &StreamRequest) -> Option<EngineError> {
        if !self.established {
            return Some(EngineError::Invalid("Session not ready".into()));
        }
        if r.media_session_id.is_empty() {
            return Some(EngineError::Invalid("MediaSessionId is null".into()));
        }
        if self.publishers.contains_key(&r.media_session_id)
            || self.players.contains_key(&r.media_session_id)
        {
            return Some(EngineError::MediaSessionInUse);
        }
        None
    }

    async fn on_publish(&mut self, mut r: StreamRequest) -> Result<(), End> {
        let base = (r.media_session_id.as_str(), r.name.as_str(), true);
        if let Some(e) = self.precheck(&r) {
            return self.status(None, base, "FAILED", &e.to_string());
        }
        // A room joined with `record: true` records every stream published in it.
        let room = r
            .custom
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if room.is_some_and(|room| self.state.rooms_lock().records(&room)) {
            r.record = true;
        }
        match crate::webrtc::session::publish(&self.state.engine, self.request(&r), "WebRTC").await
        {
            Ok((handle, answer)) => {
                self.send(protocol::set_remote_sdp(&r.media_session_id, &answer))?;
                // The back end may have renamed the stream.
                r.name = handle.name().to_owned();
                let room_hint = r
                    .custom
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.publishers.insert(
                    r.media_session_id.clone(),
                    Publisher {
                        handle,
                        name: r.name.clone(),
                        room_hint,
                        room: None,
                    },
                );
                Ok(())
            }
            Err(e) => {
                if let Some(skipped) = self.log.allow() {
                    tracing::warn!(session = %self.id, stream = %Escaped(&r.name), skipped, "publish refused: {e} {}", detail(&e));
                }
                self.status(None, base, "FAILED", &e.to_string())
            }
        }
    }

    async fn on_play(&mut self, r: StreamRequest) -> Result<(), End> {
        let base = (r.media_session_id.as_str(), r.name.as_str(), false);
        if let Some(e) = self.precheck(&r) {
            return self.status(None, base, "FAILED", &e.to_string());
        }
        if r.media_provider.eq_ignore_ascii_case("MSE") {
            return self.on_play_mse(r).await;
        }
        match crate::webrtc::session::play(&self.state.engine, self.request(&r), "WebRTC").await {
            Ok((handle, answer)) => {
                self.send(protocol::set_remote_sdp(&r.media_session_id, &answer))?;
                let name = handle.name().to_owned();
                self.players.insert(
                    r.media_session_id.clone(),
                    Player {
                        handle,
                        name,
                        mse: None,
                    },
                );
                Ok(())
            }
            Err(e) => {
                if let Some(skipped) = self.log.allow() {
                    tracing::warn!(session = %self.id, stream = %Escaped(&r.name), skipped, "play refused: {e} {}", detail(&e));
                }
                self.status(None, base, "FAILED", &e.to_string())
            }
        }
    }

    /// An MSE player: answered at once; media flows once the SDK's transport socket connects.
    async fn on_play_mse(&mut self, r: StreamRequest) -> Result<(), End> {
        let base = (r.media_session_id.as_str(), r.name.as_str(), false);
        match crate::protocols::mse::play(&self.state.engine, self.request(&r)).await {
            Ok((handle, mut mse, answer)) => {
                self.send(protocol::set_remote_sdp(&r.media_session_id, &answer))?;
                if let Some(tx) = &self.transport {
                    mse.attach(&self.state.engine, tx.clone());
                }
                let name = handle.name().to_owned();
                self.players.insert(
                    r.media_session_id.clone(),
                    Player {
                        handle,
                        name,
                        mse: Some(mse),
                    },
                );
                Ok(())
            }
            Err(e) => {
                if let Some(skipped) = self.log.allow() {
                    tracing::warn!(session = %self.id, stream = %Escaped(&r.name), skipped, "MSE play refused: {e}");
                }
                self.status(None, base, "FAILED", &e.to_string())
            }
        }
    }

    /// The connection's MSE transport arrived: every MSE player waiting for it starts.
    fn on_transport(&mut self, tx: mpsc::Sender<Message>) {
        tracing::info!(session = %self.id, "MSE media transport connected");
        for p in self.players.values_mut() {
            if let Some(m) = p.mse.as_mut().filter(|m| !m.attached()) {
                m.attach(&self.state.engine, tx.clone());
            }
        }
        self.transport = Some(tx);
    }

    /// This socket is an MSE media transport: it is handed to the connection it belongs to and
    /// only carries media (and pings) from now on.
    fn on_connect_transport(&mut self, token: &str) -> Result<(), End> {
        if self.established || !self.state.sessions.transport(token, self.out.clone()) {
            if let Some(skipped) = self.log.allow() {
                tracing::warn!(session = %self.id, peer = %self.peer, skipped, "media transport for an unknown session refused");
            }
            self.send(protocol::fail(
                "Session does not exist",
                Some("connectMediaTransport"),
            ))?;
            return Err(End::Refused("Session does not exist".into()));
        }
        Ok(())
    }

    /// Ends a publisher's stream. When it was being recorded, waits (briefly) for the recording
    /// to be finalised, so the UNPUBLISHED status names the finished file, which is what WCS's
    /// `stream.getRecordInfo()` hands the application to download.
    async fn end_publisher(
        engine: crate::engine::Engine,
        handle: PublishHandle,
        name: &str,
        mut info: Option<StreamInfo>,
    ) -> Option<StreamInfo> {
        let recorded = info.as_ref().is_some_and(|i| i.record);
        let mut events = recorded.then(|| engine.subscribe());
        drop(handle);
        let Some(rx) = events.as_mut() else {
            return info;
        };
        let finished = async {
            loop {
                match rx.recv().await {
                    Ok(EngineEvent::RecordingStopped {
                        name: n, file_name, ..
                    }) if n == name => return Some(file_name),
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return None,
                }
            }
        };
        if let Ok(Some(file)) = tokio::time::timeout(FINALISE_WAIT, finished).await {
            if let Some(i) = info.as_mut() {
                i.record_name = Some(file);
            }
        }
        info
    }

    async fn on_unpublish(&mut self, r: StreamRef) -> Result<(), End> {
        let info = self.info_of(&r.media_session_id);
        match self.publishers.remove(&r.media_session_id) {
            Some(p) => {
                super::access::stream_stop(
                    &self.state,
                    &self.id,
                    &self.app_key,
                    "unPublishStream",
                    &r.media_session_id,
                    &p.name,
                );
                let info =
                    Self::end_publisher(self.state.engine.clone(), p.handle, &p.name, info).await;
                self.status(
                    info,
                    (&r.media_session_id, &p.name, true),
                    "UNPUBLISHED",
                    "",
                )
            }
            None => self.send(protocol::fail("Stream not found", Some("unPublishStream"))),
        }
    }

    fn on_stop(&mut self, r: StreamRef) -> Result<(), End> {
        let info = self.info_of(&r.media_session_id);
        match self.players.remove(&r.media_session_id) {
            Some(p) => {
                super::access::stream_stop(
                    &self.state,
                    &self.id,
                    &self.app_key,
                    "stopStream",
                    &r.media_session_id,
                    &p.name,
                );
                drop(p.handle);
                self.status(info, (&r.media_session_id, &p.name, false), "STOPPED", "")
            }
            None => self.send(protocol::fail("Stream not found", Some("stopStream"))),
        }
    }

    async fn on_notice(&mut self, n: MediaNotice) -> Result<(), End> {
        let msid = n.media_session_id.as_str();
        let published = self.publishers.contains_key(msid);
        let name = match (self.publishers.get(msid), self.players.get(msid)) {
            (Some(p), _) => p.name.clone(),
            (_, Some(p)) => p.name.clone(),
            _ => return Ok(()), // already ended
        };
        let base = (msid, name.as_str(), published);
        match n.event {
            MediaEvent::Connected => {
                let status = if published { "PUBLISHING" } else { "PLAYING" };
                self.status(self.info_of(msid), base, status, "")?;
                self.room_published(msid);
                Ok(())
            }
            MediaEvent::Failed(text) => {
                let info = self.info_of(msid);
                if let Some(p) = self.publishers.get(msid) {
                    self.room_unpublished(p, "FAILED");
                }
                self.end_media(msid);
                tracing::warn!(session = %self.id, stream = %Escaped(&name), "media session failed: {text}");
                self.status(info, base, "FAILED", &text)
            }
            MediaEvent::Stop(text) => {
                let mut info = self.info_of(msid);
                if let Some(p) = self.publishers.get(msid) {
                    self.room_unpublished(p, "UNPUBLISHED");
                }
                if let Some(p) = self.publishers.remove(msid) {
                    info = Self::end_publisher(self.state.engine.clone(), p.handle, &p.name, info)
                        .await;
                }
                self.end_media(msid);
                let status = if published { "UNPUBLISHED" } else { "STOPPED" };
                self.status(info, base, status, &text)
            }
            MediaEvent::Recording { active, file_name } => {
                if published {
                    // WCS tells the publisher with a status event carrying the recording; the
                    // official SDK's `getRecordInfo()` reads `recordName` from it.
                    let mut v = self
                        .info_of(msid)
                        .and_then(|i| serde_json::to_value(i).ok())
                        .unwrap_or_else(|| json!({ "mediaSessionId": msid, "name": name }));
                    v["status"] = Value::String("PUBLISHING".into());
                    v["record"] = Value::Bool(active);
                    v["recordName"] = Value::String(file_name);
                    self.send(protocol::frame("notifyStreamStatusEvent", v))
                } else {
                    let kind = if active {
                        "recordingStarted"
                    } else {
                        "recordingStopped"
                    };
                    self.send(protocol::frame(
                        "notifyStreamEvent",
                        json!({ "mediaSessionId": msid, "type": kind, "payload": { "recordName": file_name, "streamName": name } }),
                    ))
                }
            }
            MediaEvent::StreamEvent { kind, payload } => self.send(protocol::frame(
                "notifyStreamEvent",
                json!({ "mediaSessionId": msid, "type": kind, "payload": payload }),
            )),
        }
    }

    /// Sends room events to their connections (this one included).
    fn deliver(&self, deliveries: Vec<crate::rooms::Delivery>) {
        for d in deliveries {
            let frame = protocol::frame(
                "OnDataEvent",
                json!({ "nodeId": self.state.node_id, "sessionId": d.session_id, "payload": d.payload }),
            );
            if !self.state.sessions.send(&d.session_id, frame) {
                tracing::debug!(session = %d.session_id, "room event not delivered (connection gone or stuck)");
            }
        }
    }

    /// A publisher is up: announce it in its room, if it belongs to one this connection is in.
    fn room_published(&mut self, msid: &str) {
        let Some(p) = self.publishers.get(msid) else {
            return;
        };
        let Some(hint) = p.room_hint.clone() else {
            return;
        };
        let name = p.name.clone();
        let (room, deliveries) = self.state.rooms_lock().published(&self.id, &hint, &name);
        if let Some(room) = &room {
            // A room being recorded as an interview takes the newcomer in; a room joined with
            // `record: true` starts its recording with its first stream.
            let rooms = self.state.rooms_lock();
            let (record, members) = (rooms.records(room), rooms.members(room).unwrap_or_default());
            drop(rooms);
            let members = crate::ops::interview::Member::from_pairs(members);
            let (engine, room, name) = (self.state.engine.clone(), room.clone(), name.clone());
            tokio::spawn(async move {
                crate::ops::interview::published(&engine, &room, &name, record, members).await
            });
        }
        if let Some(p) = self.publishers.get_mut(msid) {
            p.room = room;
        }
        self.deliver(deliveries);
    }

    /// Rooms this connection was in (`before`) that are now empty end their recordings.
    fn rooms_left(&self, before: Vec<String>) {
        for room in before {
            if !self.state.rooms_lock().exists(&room) {
                let engine = self.state.engine.clone();
                tokio::spawn(async move { crate::ops::interview::emptied(&engine, &room).await });
            }
        }
    }

    fn room_unpublished(&self, p: &Publisher, status: &str) {
        if let Some(room) = &p.room {
            let d = self
                .state
                .rooms_lock()
                .unpublished(&self.id, room, &p.name, status);
            self.deliver(d);
        }
    }

    fn end_media(&mut self, msid: &str) {
        self.publishers.remove(msid);
        self.players.remove(msid);
    }

    /// Ends every stream of the connection and tells the client where it can still hear it.
    fn finish(&mut self, end: &End) {
        let text = match end {
            End::Shutdown => "Requested stream shutdown",
            End::ClosedByServer => "Stopped by rest /terminate",
            _ => "Stopped by session disconnect",
        };
        if let End::SocketError(e) = end {
            tracing::debug!(session = %self.id, "socket error: {e}");
        }
        if let End::Refused(reason) = end {
            tracing::debug!(session = %self.id, %reason, "connection refused");
        }
        let tell = matches!(end, End::Shutdown | End::ClosedByServer);
        let pubs: Vec<(String, Publisher)> = self.publishers.drain().collect();
        let plays: Vec<(String, Player)> = self.players.drain().collect();
        for (msid, p) in pubs {
            let info = self.info_of(&msid);
            self.room_unpublished(&p, "UNPUBLISHED");
            drop(p.handle);
            if tell {
                let _ = self.status(info, (&msid, &p.name, true), "UNPUBLISHED", text);
            }
        }
        for (msid, p) in plays {
            let info = self.info_of(&msid);
            drop(p.handle);
            if tell {
                let _ = self.status(info, (&msid, &p.name, false), "STOPPED", text);
            }
        }
        if tell || matches!(end, End::Refused(_)) {
            let _ = self.out.try_send(Message::Close(None));
        }
        if let Some(t) = self.transport.take() {
            let _ = t.try_send(Message::Close(None));
        }
        let before = self.state.rooms_lock().rooms_of(&self.id);
        let memberships = self.state.rooms_lock().memberships(&self.id);
        let left = self.state.rooms_lock().disconnected(&self.id);
        self.deliver(left);
        self.rooms_left(before);
        super::access::room_changes(&self.state, &self.id, memberships);
        self.state.sessions.remove(&self.id);
        if self.established {
            super::access::connection_event(&self.state, &self.who(), "DISCONNECTED", None);
        }
        super::access::forget(&self.state, &self.id);
        tracing::info!(session = %self.id, peer = %self.peer, reason = ?end, "signaling connection closed");
    }
}

fn detail(e: &EngineError) -> String {
    match e {
        EngineError::Internal(d) => d.clone(),
        _ => String::new(),
    }
}
