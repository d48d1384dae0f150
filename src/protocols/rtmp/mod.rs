//! The RTMP server: publish to and play from `rtmp://host:1935/<app>/<name>`. The protocol
//! (handshake, chunking, commands) is `rml_rtmp`'s; media goes to the engine (ingest) or comes from
//! the stream's shared RTMP output (playback). Each connection is one task; garbage, half
//! handshakes and silent peers end that connection alone, after a timeout.

pub mod flv;
mod hooks;
pub mod ingest;
pub mod output;
pub mod pull;
pub mod stream;

use crate::engine::{
    EngineError, MediaEvent, MediaNotice, MediaRequest, PlayHandle, PublishHandle, MAILBOX_CAPACITY,
};
use crate::redact::{self, Escaped};
use crate::server::AppState;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A peer must finish the handshake within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts RTMP connections until the server stops.
pub async fn serve(listener: TcpListener, state: AppState) {
    let mut stop = state.shutdown.clone();
    let max = state.engine.config().limits.max_connections_per_ip;
    let per_ip = crate::listen::PerIpLimit::new(max);
    let mut refused_log = crate::listen::LogBudget::new(5, Duration::from_secs(10));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((sock, peer)) => {
                    let Some(slot) = per_ip.admit(peer.ip()) else {
                        if let Some(skipped) = refused_log.allow() {
                            tracing::warn!(%peer, limit = max, skipped, "RTMP connection refused: too many from this address");
                        }
                        continue;
                    };
                    let _ = sock.set_nodelay(true);
                    crate::server::keepalive(&sock);
                    tokio::spawn(connection(sock, peer, state.clone(), slot));
                }
                Err(e) => {
                    tracing::warn!("RTMP accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stopped(&mut stop) => break,
        }
    }
}

/// Resolves once the server is stopping (the watch guard is not held across an await).
pub(crate) async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await.map(|_| ());
}

async fn connection(
    sock: TcpStream,
    peer: SocketAddr,
    state: AppState,
    _slot: crate::listen::Slot,
) {
    match run(sock, peer, state).await {
        Ok(()) => tracing::debug!(%peer, "RTMP connection closed"),
        Err(e) => tracing::info!(%peer, "RTMP connection ended: {e:#}"),
    }
}

async fn handshake(sock: &mut TcpStream) -> anyhow::Result<Vec<u8>> {
    let mut hs = Handshake::new(PeerType::Server);
    let mut buf = vec![0u8; 4096];
    loop {
        let n = sock.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "peer closed during the handshake");
        match hs
            .process_bytes(&buf[..n])
            .map_err(|e| anyhow::anyhow!("bad handshake: {e:?}"))?
        {
            HandshakeProcessResult::InProgress { response_bytes } => {
                sock.write_all(&response_bytes).await?;
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                sock.write_all(&response_bytes).await?;
                return Ok(remaining_bytes);
            }
        }
    }
}

/// `k=v&k2=v2` as a JSON object (later keys win); empty parts are skipped.
pub fn query_params(q: &str) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for kv in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        if k.is_empty() {
            continue;
        }
        m.insert(k.to_owned(), serde_json::Value::String(v.to_owned()));
    }
    serde_json::Value::Object(m)
}

/// Splits `name?query` (the query reaches hooks as `custom` later).
pub fn split_name(key: &str) -> (&str, &str) {
    key.split_once('?').unwrap_or((key, ""))
}

struct Conn {
    state: AppState,
    peer: SocketAddr,
    session_id: String,
    app: String,
    /// Query parameters of the `connect` URL (`rtmp://host/live?k=v/...`), kept for hooks.
    connect_query: String,
    events: mpsc::Sender<MediaNotice>,
    publishing: Option<Publishing>,
    playing: Option<Playing>,
    /// A publish or play request waiting for the engine's admission: the answer goes out once it
    /// is decided, and the connection reads nothing more meanwhile.
    pending: Option<Pending>,
    /// Audio or video arrived since the connection's timer was last moved.
    media_seen: bool,
    /// Set once the connect was allowed: the back end hears when the connection ends.
    connected: Option<hooks::Connected>,
}

struct Publishing {
    handle: PublishHandle,
    ingest: std::sync::Arc<ingest::RtmpIngest>,
    name: String,
}

enum Pending {
    Connect {
        request_id: u32,
    },
    Publish {
        request_id: u32,
        name: String,
        query: String,
    },
    Play {
        request_id: u32,
        stream_id: u32,
        name: String,
        query: String,
    },
}

struct Playing {
    _handle: PlayHandle,
    stream_id: u32,
    feed: output::ViewerFeed,
}

async fn run(mut sock: TcpStream, peer: SocketAddr, state: AppState) -> anyhow::Result<()> {
    let leftover = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&mut sock))
        .await
        .map_err(|_| anyhow::anyhow!("handshake timed out"))??;
    let mut config = ServerSessionConfig::new();
    config.chunk_size = output::CHUNK_SIZE as u32;
    let (mut session, initial) =
        ServerSession::new(config).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let (ev_tx, mut ev_rx) = mpsc::channel(MAILBOX_CAPACITY);
    let mut conn = Conn {
        state: state.clone(),
        peer,
        session_id: format!("rtmp-{}", uuid::Uuid::new_v4()),
        app: state.engine.config().rtmp_app.clone(),
        connect_query: String::new(),
        events: ev_tx,
        publishing: None,
        playing: None,
        pending: None,
        media_seen: false,
        connected: None,
    };
    let mut out: Vec<u8> = Vec::new();
    conn.apply(&mut session, initial, &mut out).await?;
    if !leftover.is_empty() {
        let r = session
            .handle_input(&leftover)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        conn.apply(&mut session, r, &mut out).await?;
    }
    let mut stop = state.shutdown.clone();
    // Players send only acknowledgements; a publisher's reads are refilled as often as needed, so
    // a small buffer keeps the per-viewer memory low without costing throughput.
    let mut buf = vec![0u8; 8 * 1024];
    let limits = state.engine.config().limits.clone();
    // One timer for the connection. Before publish or play it is the idle limit; while publishing
    // it is moved only by audio and video (a publisher that sends a byte now and then but no media
    // must not hold its name); players are not timed, they only read. It is re-armed at most once a
    // second: re-arming for every message would cost more than the message.
    let idle = tokio::time::sleep(limits.rtmp_idle_timeout);
    tokio::pin!(idle);
    let mut armed_at = tokio::time::Instant::now();
    let mut batch: Vec<output::Media> = Vec::with_capacity(MAX_BATCH);
    loop {
        if !out.is_empty() {
            sock.write_all(&out).await?;
            out.clear();
        }
        tokio::select! {
            r = sock.read(&mut buf) => {
                let n = r?;
                if n == 0 {
                    return Ok(());
                }
                let was_publishing = conn.publishing.is_some();
                let results = session.handle_input(&buf[..n]).map_err(|e| anyhow::anyhow!("protocol error: {e:?}"))?;
                conn.apply(&mut session, results, &mut out).await?;
                if conn.publishing.is_some() && !was_publishing {
                    // From the publish on, the media timeout applies.
                    armed_at = tokio::time::Instant::now();
                    idle.as_mut().reset(armed_at + limits.rtmp_media_timeout);
                } else if conn.publishing.is_some() && conn.media_seen {
                    conn.media_seen = false;
                    let now = tokio::time::Instant::now();
                    if now.duration_since(armed_at) >= Duration::from_secs(1) {
                        armed_at = now;
                        idle.as_mut().reset(now + limits.rtmp_media_timeout);
                    }
                }
            }
            () = &mut idle, if conn.playing.is_none() => {
                if conn.publishing.is_some() {
                    anyhow::bail!("publisher sent no media for {:?}", limits.rtmp_media_timeout);
                }
                anyhow::bail!("no publish or play within {:?}", limits.rtmp_idle_timeout);
            }
            media = async {
                match conn.playing.as_mut() {
                    Some(p) => p.feed.rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                let Some(m) = media else { return Ok(()) };
                let Some(p) = conn.playing.as_mut() else { continue };
                // Whatever else is already queued goes out in the same write.
                batch.push(m);
                while batch.len() < MAX_BATCH {
                    match p.feed.rx.try_recv() {
                        Ok(m) => batch.push(m),
                        Err(_) => break,
                    }
                }
                let stream_id = p.stream_id;
                let queued = p.feed.queued.clone();
                let mut n = 0u64;
                let pieces: Vec<bytes::Bytes> = batch
                    .drain(..)
                    .map(|m| {
                        n += m.chunks.len() as u64;
                        if stream_id == 1 {
                            m.chunks
                        } else {
                            let csid = match m.tag.kind { flv::TAG_VIDEO => flv::CSID_VIDEO, flv::TAG_AUDIO => flv::CSID_AUDIO, _ => flv::CSID_SCRIPT };
                            flv::chunk(csid, m.tag.kind, m.tag.ts, stream_id, &m.tag.body, output::CHUNK_SIZE)
                        }
                    })
                    .collect();
                write_all_vectored(&mut sock, &pieces).await?;
                queued.fetch_sub(n.min(queued.load(Ordering::Relaxed)), Ordering::Relaxed);
            }
            Some(n) = ev_rx.recv() => {
                if let MediaEvent::Stop(why) | MediaEvent::Failed(why) = n.event {
                    tracing::info!(peer = %conn.peer, "RTMP stream ended: {why}");
                    if let Some(p) = conn.publishing.take() {
                        p.handle.unpublish();
                    }
                    return Ok(());
                }
            }
            _ = stopped(&mut stop) => return Ok(()),
        }
    }
}

/// Most messages written to a viewer in one system call.
const MAX_BATCH: usize = 32;

/// Writes every buffer with as few system calls as the socket allows.
async fn write_all_vectored(sock: &mut TcpStream, pieces: &[bytes::Bytes]) -> std::io::Result<()> {
    let mut idx = 0;
    let mut offset = 0;
    while idx < pieces.len() {
        let slices: Vec<std::io::IoSlice<'_>> =
            std::iter::once(std::io::IoSlice::new(&pieces[idx][offset..]))
                .chain(pieces[idx + 1..].iter().map(|b| std::io::IoSlice::new(b)))
                .collect();
        let mut written = sock.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while idx < pieces.len() && written > 0 {
            let left = pieces[idx].len() - offset;
            if written >= left {
                written -= left;
                idx += 1;
                offset = 0;
            } else {
                offset += written;
                written = 0;
            }
        }
    }
    Ok(())
}

impl Conn {
    fn request(&self, name: &str, query: &str) -> MediaRequest {
        MediaRequest {
            session_id: self.session_id.clone(),
            app_key: "flashStreamingApp".into(),
            media_session_id: uuid::Uuid::new_v4().to_string(),
            name: name.to_owned(),
            sdp: String::new(),
            record: false,
            // Query parameters from the connect URL and the stream name reach hooks as `custom`,
            // as WCS does for RTMP encoders.
            custom: serde_json::json!({
                "query": query,
                "connectQuery": self.connect_query,
                "params": query_params(&format!("{}&{}", self.connect_query, query)),
                "peer": self.peer.to_string(),
            }),
            events: self.events.clone(),
            client: Some(self.peer.ip()),
            login: String::new(),
            resume_token: Some(self.resume_token(name, query)),
        }
    }

    /// Who may resume a stream during the reconnect grace: the same stream key and query on the
    /// same application, and (unless configured otherwise) from the same address.
    fn resume_token(&self, name: &str, query: &str) -> String {
        let same_address = self.state.engine.config().rtmp_resume_same_address;
        let ip = if same_address {
            self.peer.ip().to_string()
        } else {
            String::new()
        };
        format!("rtmp|{ip}|{}|{name}?{query}", self.connect_query)
    }

    /// Carries out the session's results; a publish or play request is decided (admission
    /// included) before anything after it is handled.
    async fn apply(
        &mut self,
        session: &mut ServerSession,
        results: Vec<ServerSessionResult>,
        out: &mut Vec<u8>,
    ) -> anyhow::Result<()> {
        let mut queue: std::collections::VecDeque<ServerSessionResult> = results.into();
        while let Some(r) = queue.pop_front() {
            match r {
                ServerSessionResult::OutboundResponse(p) => out.extend_from_slice(&p.bytes),
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
                ServerSessionResult::RaisedEvent(ev) => {
                    let more = self.on_event(session, ev)?;
                    queue.extend(more);
                    if let Some(p) = self.pending.take() {
                        let answer = self.decide(session, p).await?;
                        queue.extend(answer);
                    }
                }
            }
        }
        Ok(())
    }

    /// Asks the engine to publish or play, and answers the client.
    async fn decide(
        &mut self,
        session: &mut ServerSession,
        pending: Pending,
    ) -> anyhow::Result<Vec<ServerSessionResult>> {
        let err = |e| anyhow::anyhow!("{e:?}");
        let engine = self.state.engine.clone();
        match pending {
            Pending::Connect { request_id } => {
                match hooks::connect(
                    &self.state,
                    &self.session_id,
                    self.peer,
                    &self.connect_query,
                )
                .await
                {
                    Ok(()) => {
                        self.connected = Some(hooks::Connected {
                            state: self.state.clone(),
                            session_id: self.session_id.clone(),
                        });
                        session.accept_request(request_id).map_err(err)
                    }
                    Err(reason) => {
                        tracing::info!(peer = %self.peer, %reason, "RTMP connect refused by the back end");
                        session
                            .reject_request(request_id, "NetConnection.Connect.Rejected", &reason)
                            .map_err(err)
                    }
                }
            }
            Pending::Publish {
                request_id,
                name,
                query,
            } => {
                let req = self.request(&name, &query);
                match stream::publish(&engine, req, ingest::FlvSource::Push).await {
                    Ok((handle, ingest)) => {
                        self.publishing = Some(Publishing {
                            handle,
                            ingest,
                            name,
                        });
                        session.accept_request(request_id).map_err(err)
                    }
                    Err(e) => {
                        tracing::info!(peer = %self.peer, stream = %Escaped(&name), "RTMP publish refused: {e}");
                        let code = match e {
                            EngineError::NameInUse => "NetStream.Publish.BadName",
                            EngineError::Denied(_) => "NetStream.Publish.Rejected",
                            _ => "NetStream.Publish.Failed",
                        };
                        session
                            .reject_request(request_id, code, &e.to_string())
                            .map_err(err)
                    }
                }
            }
            Pending::Play {
                request_id,
                stream_id,
                name,
                query,
            } => {
                let req = self.request(&name, &query);
                match stream::play(&engine, req).await {
                    Ok((handle, feed)) => {
                        self.playing = Some(Playing {
                            _handle: handle,
                            stream_id,
                            feed,
                        });
                        session.accept_request(request_id).map_err(err)
                    }
                    Err(e) => {
                        tracing::info!(peer = %self.peer, stream = %Escaped(&name), "RTMP play refused: {e}");
                        let code = match e {
                            EngineError::StreamNotFound => "NetStream.Play.StreamNotFound",
                            EngineError::Denied(_) => "NetStream.Play.Rejected",
                            _ => "NetStream.Play.Failed",
                        };
                        session
                            .reject_request(request_id, code, &e.to_string())
                            .map_err(err)
                    }
                }
            }
        }
    }

    fn on_event(
        &mut self,
        session: &mut ServerSession,
        ev: ServerSessionEvent,
    ) -> anyhow::Result<Vec<ServerSessionResult>> {
        let err = |e| anyhow::anyhow!("{e:?}");
        Ok(match ev {
            ServerSessionEvent::ConnectionRequested {
                request_id,
                app_name,
            } => {
                let (app, query) = split_name(&app_name);
                self.connect_query = query.to_owned();
                if app == self.app {
                    // Decided once the back end answers (`decide`).
                    self.pending = Some(Pending::Connect { request_id });
                    Vec::new()
                } else {
                    tracing::info!(peer = %self.peer, app = %Escaped(&redact::url(&app_name)), "RTMP connect to an unknown application refused");
                    session
                        .reject_request(
                            request_id,
                            "NetConnection.Connect.Rejected",
                            &format!("Unknown application {:?}", redact::url(&app_name)),
                        )
                        .map_err(err)?
                }
            }
            ServerSessionEvent::PublishStreamRequested {
                request_id,
                stream_key,
                ..
            } => {
                let (name, query) = split_name(&stream_key);
                if self.publishing.is_some() {
                    return session
                        .reject_request(
                            request_id,
                            "NetStream.Publish.BadName",
                            "Already publishing on this connection",
                        )
                        .map_err(err);
                }
                self.pending = Some(Pending::Publish {
                    request_id,
                    name: name.to_owned(),
                    query: query.to_owned(),
                });
                Vec::new()
            }
            ServerSessionEvent::VideoDataReceived {
                data, timestamp, ..
            } => {
                if let Some(p) = &self.publishing {
                    p.ingest.push(flv::TAG_VIDEO, timestamp.value, &data);
                    self.media_seen = true;
                }
                Vec::new()
            }
            ServerSessionEvent::AudioDataReceived {
                data, timestamp, ..
            } => {
                if let Some(p) = &self.publishing {
                    p.ingest.push(flv::TAG_AUDIO, timestamp.value, &data);
                    self.media_seen = true;
                }
                Vec::new()
            }
            ServerSessionEvent::PublishStreamFinished { .. } => {
                // A deliberate stop (OBS "Stop Streaming", ffmpeg at its end): no grace period.
                if let Some(p) = self.publishing.take() {
                    tracing::info!(peer = %self.peer, stream = %Escaped(&p.name), "RTMP publisher finished");
                    p.handle.unpublish();
                }
                Vec::new()
            }
            ServerSessionEvent::PlayStreamRequested {
                request_id,
                stream_key,
                stream_id,
                ..
            } => {
                let (name, query) = split_name(&stream_key);
                self.pending = Some(Pending::Play {
                    request_id,
                    stream_id,
                    name: name.to_owned(),
                    query: query.to_owned(),
                });
                Vec::new()
            }
            ServerSessionEvent::PlayStreamFinished { .. } => {
                self.playing = None;
                Vec::new()
            }
            _ => Vec::new(),
        })
    }
}
