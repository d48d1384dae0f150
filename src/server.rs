//! Starting and stopping the whole server: the engine, the HTTP listener (signaling, REST, health,
//! metrics) and an orderly shutdown in which every client is told its streams stopped and every
//! pipeline is back at NULL before the process exits.

use crate::config::Config;
use crate::engine::{pipeline, Engine};
use crate::signaling::{self, Sessions};
use anyhow::Context;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tower_http::cors::CorsLayer;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// The engine.
    pub engine: Engine,
    /// Live signaling connections.
    pub sessions: Sessions,
    /// Flips to true when the server stops.
    pub shutdown: watch::Receiver<bool>,
    /// This server's node id in WCS's objects.
    pub node_id: String,
    /// Rooms of the room application.
    pub rooms: Arc<Mutex<crate::rooms::Rooms>>,
    /// REST hooks to the customer's back end.
    pub hooks: Arc<crate::hooks::Hooks>,
    /// Signed tokens.
    pub tokens: Arc<crate::auth::Tokens>,
    /// The call history (none when disabled, and in states made without [`start`]).
    pub history: Option<Arc<crate::history::History>>,
    /// HLS renditions and players.
    pub hls: Arc<crate::protocols::hls::Hls>,
}

impl AppState {
    /// State for a server with `config`, before it listens (also what fuzz targets and tests drive
    /// the router with). `stop` flips to true when the server stops.
    pub fn new(config: Config, node_id: String, stop: watch::Receiver<bool>) -> Self {
        let hooks = crate::hooks::Hooks::new(config.hooks.clone(), node_id.clone());
        let tokens = crate::auth::Tokens::new(config.auth.clone());
        let engine = Engine::new(config);
        // Tokens first (no back end is asked about a request a token already refuses), then hooks.
        engine.set_admission(Arc::new(crate::engine::admission::Chain(vec![
            Arc::new(crate::auth::TokenAdmission(tokens.clone())),
            Arc::new(crate::hooks::admission::HookAdmission(hooks.clone())),
            // Last, so hooks see a VOD name as the viewer asked for it.
            Arc::new(crate::protocols::vod::PersonalVod),
        ])));
        // Names that are camera URLs pull the camera (WCS plays `rtsp://…` by name).
        engine.add_resolver(Arc::new(crate::protocols::rtsp::pull::RtspResolver));
        // vod:// and vod-live:// names play files.
        engine.add_resolver(Arc::new(crate::protocols::vod::VodResolver));
        Self {
            hls: crate::protocols::hls::Hls::new(engine.clone()),
            hooks,
            tokens,
            history: None,
            engine,
            sessions: Sessions::default(),
            shutdown: stop,
            node_id,
            rooms: Default::default(),
        }
    }

    /// The rooms, locked (never held across an await).
    pub fn rooms_lock(&self) -> std::sync::MutexGuard<'_, crate::rooms::Rooms> {
        match self.rooms.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

/// A running server.
pub struct App {
    /// Where the HTTP listener is bound.
    pub http_addr: SocketAddr,
    /// Where the RTMP listener is bound.
    pub rtmp_addr: SocketAddr,
    /// Where the HLS listener is bound, when there is one.
    pub hls_addr: Option<SocketAddr>,
    /// Where the RTSP server listens.
    pub rtsp_addr: SocketAddr,
    rtsp: Option<crate::protocols::rtsp::server::RtspServer>,
    state: AppState,
    stop_tx: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

async fn ws_upgrade(
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    // A plain browser request for `/` gets the interview page; the same path upgrades to signaling.
    let Ok(ws) = ws else {
        return crate::web::file(&state, "index.html").await;
    };
    let max = state.engine.config().signaling.max_message_bytes;
    ws.max_message_size(max)
        .on_upgrade(move |socket| signaling::session::run(socket, state, peer))
}

/// The whole HTTP application. Each group brings its own CORS policy: REST's is restrictive by
/// default (see [`crate::api::router`]), WHIP/WHEP's is open, as players on any page expect.
pub fn router(state: AppState) -> Router {
    let rest = crate::api::router(&state.engine.config().rest);
    Router::new()
        .route("/", get(ws_upgrade))
        .route("/websocket", get(ws_upgrade))
        .merge(rest)
        .merge(crate::webrtc::whip::router().layer(whip_cors()))
        .merge(crate::protocols::hls::http::router())
        .merge(crate::protocols::mse::fmp4::router())
        .merge(crate::web::router())
        .with_state(state)
}

/// CORS for WHIP/WHEP from any page. Headers are listed, not `*`: the wildcard does not cover
/// `Authorization` in the Fetch standard, and WHIP/WHEP tokens travel there.
fn whip_cors() -> CorsLayer {
    use axum::http::header;
    use tower_http::cors::Any;
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(Any)
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::IF_MATCH,
            "x-requested-with".parse().expect("valid header name"),
        ])
        .expose_headers([
            header::LOCATION,
            header::ETAG,
            header::LINK,
            header::WWW_AUTHENTICATE,
            header::ALLOW,
        ])
}

/// TCP keepalive for client connections: a peer that vanished without closing (power loss, a
/// dropped Wi-Fi link) is detected in about a minute instead of holding its socket forever.
pub fn keepalive(sock: &tokio::net::TcpStream) {
    let ka = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(30))
        .with_interval(Duration::from_secs(10))
        .with_retries(3);
    if let Err(e) = socket2::SockRef::from(sock).set_tcp_keepalive(&ka) {
        tracing::debug!("could not enable TCP keepalive: {e}");
    }
}

/// Accepts HTTP connections until the server stops. Each connection is served by hyper with a
/// header-read timeout, an idle timeout and a place under the per-address limit; on shutdown,
/// open connections finish their current request and close.
async fn serve_http(listener: tokio::net::TcpListener, app: Router, state: AppState) {
    let limits = state.engine.config().limits.clone();
    let per_ip = crate::listen::PerIpLimit::new(limits.max_connections_per_ip);
    let mut refused_log = crate::listen::LogBudget::new(5, Duration::from_secs(10));
    let mut stop = state.shutdown.clone();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.http_header_timeout);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors, most likely: back off instead of spinning.
                    tracing::warn!("HTTP accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = crate::rtmp::stopped(&mut stop) => break,
        };
        let Some(slot) = per_ip.admit(peer.ip()) else {
            if let Some(skipped) = refused_log.allow() {
                tracing::warn!(%peer, limit = limits.max_connections_per_ip, skipped, "HTTP connection refused: too many from this address");
            }
            continue;
        };
        let _ = tcp.set_nodelay(true);
        keepalive(&tcp);
        let io = hyper_util::rt::TokioIo::new(crate::listen::IdleTimeout::new(
            tcp,
            limits.http_idle_timeout,
            Some(slot),
        ));
        let app = app.clone();
        let service = hyper::service::service_fn(
            move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                tower::ServiceExt::oneshot(app.clone(), req)
            },
        );
        let conn = builder.serve_connection(io, service).with_upgrades();
        let mut stop = state.shutdown.clone();
        tokio::spawn(async move {
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = crate::rtmp::stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, "HTTP connection ended: {e}");
            }
        });
    }
}

/// Starts the server with `config`; returns once it listens.
pub async fn start(config: Config) -> anyhow::Result<App> {
    config.validate()?;
    crate::engine::templates::validate().context("checking pipelines/ and presets/")?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .with_context(|| format!("binding HTTP listener on {}", config.http))?;
    let http_addr = listener.local_addr()?;
    let rtmp_listener = tokio::net::TcpListener::bind(config.rtmp)
        .await
        .with_context(|| format!("binding RTMP listener on {}", config.rtmp))?;
    let rtmp_addr = rtmp_listener.local_addr()?;
    let hls_listener = match config.hls.listen.filter(|_| config.hls.enabled) {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding HLS listener on {addr}"))?,
        ),
        None => None,
    };
    let hls_addr = hls_listener.as_ref().and_then(|l| l.local_addr().ok());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut state = AppState::new(config, format!("streamgate@{http_addr}"), stop_rx);
    let (history, data_dir) = (
        state.engine.config().history.clone(),
        state.engine.config().data_dir.clone(),
    );
    state.history = crate::history::History::open(
        &history,
        &data_dir,
        state.engine.clone(),
        state.shutdown.clone(),
    )
    .await?;
    if let Some(h) = &state.history {
        let h = h.clone();
        state
            .hooks
            .on_delivery(Box::new(move |d| h.note(crate::history::Note::Hook(d))));
    }
    let rtsp = crate::protocols::rtsp::server::RtspServer::start(
        state.engine.clone(),
        state.engine.config().rtsp,
        state.engine.config().rtsp_publish,
    )?;
    let rtsp_addr = rtsp.addr;
    let server = tokio::spawn(serve_http(listener, router(state.clone()), state.clone()));
    tokio::spawn(crate::rtmp::serve(rtmp_listener, state.clone()));
    if let Some(l) = hls_listener {
        let app = crate::protocols::hls::http::listener_router().with_state(state.clone());
        tokio::spawn(serve_http(l, app, state.clone()));
    }
    state.hls.spawn(state.shutdown.clone());
    // Subscribers of the engine's events: recordings asked for at publish, the rooms' recording
    // notices, periodic snapshots, and MCU rooms.
    crate::ops::service::auto_record(&state.engine);
    signaling::room_recording_notices(state.clone());
    crate::ops::service::slicer(&state.engine);
    if state.engine.config().mixer.auto {
        crate::ops::mixer::auto::spawn(&state.engine);
    }
    tokio::spawn(crate::hooks::admission::run(
        state.hooks.clone(),
        state.engine.clone(),
        state.shutdown.clone(),
    ));
    tracing::info!(%http_addr, %rtmp_addr, %rtsp_addr, hls_addr = ?hls_addr, "streamgate listening");
    Ok(App {
        http_addr,
        rtmp_addr,
        hls_addr,
        rtsp_addr,
        rtsp: Some(rtsp),
        state,
        stop_tx,
        server,
    })
}

impl App {
    /// The shared state (engine, sessions), for tests and embedding.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops the server: clients are told their streams stopped, pipelines go to NULL.
    pub async fn shutdown(mut self) {
        tracing::info!("shutting down");
        self.state.engine.shutdown();
        if let Some(mut r) = self.rtsp.take() {
            // Joins the server's thread: off the runtime's worker.
            let _ = tokio::task::spawn_blocking(move || r.stop()).await;
        }
        let _ = self.stop_tx.send(true);
        // Sessions end their streams and close; wait for them, but not forever.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while !self.state.sessions.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.server).await;
        let _ =
            tokio::task::spawn_blocking(|| pipeline::flush_reaper(Duration::from_secs(2))).await;
        tracing::info!(pipelines = self.state.engine.counts().pipelines, "stopped");
    }
}
