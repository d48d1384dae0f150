//! The RTSP server: every stream plays at `rtsp://host:8554/NAME` (TCP-interleaved or UDP), and,
//! when `rtsp_publish` is on, an RTSP publisher (`ffmpeg -f rtsp`) ANNOUNCEs and RECORDs a stream
//! at the same URL. gst-rtsp-server does the protocol, on a GLib main context of its own thread;
//! its clients run on a small pool of threads of their own.
//!
//! Mount points are made on demand: a DESCRIBE (or a SETUP without one) passes the engine's
//! admission point as provider `RTSP` (the `playRTSP` hook, tokens from `?token=`), and the
//! client's play handle then makes it a viewer in `/stream/find_all`; the stream's mount is added
//! for its first viewer and removed after its last. An ANNOUNCE is a publish through the same
//! admission. A client refused gets 404 (no such stream), 403 (refused) or 503, and nothing is
//! mounted for it. A stream stopped from outside (REST terminate, its publisher gone) hangs up
//! on its RTSP clients.

use super::ffi::{self, Mounts};
use super::media::{play_factory, record_factory};
use super::tracks;
use crate::engine::{
    Engine, EngineError, MediaEvent, MediaNotice, MediaRequest, PlayHandle, PublishHandle,
    PublishSpec, MAILBOX_CAPACITY,
};
use crate::sync::lock;
use gst_rtsp_server::gst_rtsp::rtsp_message::RTSPMessage;
use gst_rtsp_server::gst_rtsp::{RTSPStatusCode, RTSPUrl};
use gst_rtsp_server::prelude::*;
use gst_rtsp_server::{
    glib, RTSPClient, RTSPContext, RTSPMediaFactory, RTSPMountPoints, RTSPServer,
};
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Threads gst-rtsp-server runs client connections on. Admission (a hook may take its timeout)
/// holds one of them, so there are several; each serves many clients.
const CLIENT_THREADS: i32 = 8;

/// Where a refused ANNOUNCE is pointed, so that its refusal (not a 404) is what the client reads.
const REFUSED: &str = "/.refused";

/// Under which viewers' mounts are (see [`play_mount`]).
const PLAY_PREFIX: &str = "/.play";

/// A running RTSP server; [`RtspServer::stop`] (or drop) hangs up on its clients.
pub struct RtspServer {
    /// Where it listens.
    pub addr: SocketAddr,
    server: RTSPServer,
    main_loop: glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the clients' handlers share.
struct Shared {
    engine: Engine,
    rt: tokio::runtime::Handle,
    mounts: RTSPMountPoints,
    publish: bool,
    /// Mount path → clients using it.
    paths: Mutex<HashMap<String, Mount>>,
    /// Per client (by object address): what it plays or publishes.
    clients: Mutex<HashMap<usize, ClientState>>,
}

struct Mount {
    users: usize,
}

/// One stream a client plays.
struct Play {
    /// Where its stream is mounted.
    mount: String,
    _handle: PlayHandle,
}

#[derive(Default)]
struct ClientState {
    /// The URL path it DESCRIBEd → what it plays there.
    plays: HashMap<String, Play>,
    /// The stream it publishes, by mount path.
    publish: Option<(String, PublishHandle)>,
    /// Why its ANNOUNCE was refused, answered when gst-rtsp-server signals it.
    refused: Option<RTSPStatusCode>,
}

impl RtspServer {
    /// Starts listening on `addr` (port 0: any free port).
    pub fn start(engine: Engine, addr: SocketAddr, publish: bool) -> anyhow::Result<Self> {
        let ctx = glib::MainContext::new();
        let main_loop = glib::MainLoop::new(Some(&ctx), false);
        let server = RTSPServer::new();
        server.set_address(&addr.ip().to_string());
        server.set_service(&addr.port().to_string());
        if let Some(pool) = server.thread_pool() {
            pool.set_max_threads(CLIENT_THREADS);
        }
        // An ANNOUNCE is admitted when its path is looked up: gst-rtsp-server wants the record
        // mount to exist before it signals the request.
        let cell: Arc<OnceLock<Weak<Shared>>> = Arc::default();
        let hook_cell = cell.clone();
        let mounts = Mounts::new(Box::new(move |ctx, url| {
            let shared = hook_cell.get()?.upgrade()?;
            let request = ctx.request()?;
            match ffi::method(request)? {
                ffi::Method::Announce => shared.on_announce(ctx.client()?, request, url),
                ffi::Method::Describe => {
                    let own = split_url(url).0;
                    let own = own.trim_end_matches('/');
                    lock(&shared.clients)
                        .get(&key(ctx.client()?))
                        .and_then(|c| c.plays.get(own))
                        .map(|p| p.mount.clone())
                }
                ffi::Method::Other => None,
            }
        }));
        let refused = RTSPMediaFactory::new();
        refused.set_launch("( fakesink name=depay0 )");
        refused.set_transport_mode(gst_rtsp_server::RTSPTransportMode::RECORD);
        mounts.add_factory(REFUSED, refused);
        server.set_mount_points(Some(&mounts));
        let shared = Arc::new(Shared {
            engine,
            rt: tokio::runtime::Handle::try_current()?,
            mounts: mounts.upcast(),
            publish,
            paths: Mutex::default(),
            clients: Mutex::default(),
        });
        let _ = cell.set(Arc::downgrade(&shared));
        let s = shared.clone();
        server.connect_client_connected(move |_, client| s.watch(client));
        let id = server
            .attach(Some(&ctx))
            .map_err(|e| anyhow::anyhow!("binding RTSP listener on {addr}: {e}"))?;
        let port = server.bound_port();
        anyhow::ensure!(port > 0, "binding RTSP listener on {addr}");
        let ml = main_loop.clone();
        let thread = std::thread::Builder::new()
            .name("rtsp-server".into())
            .spawn(move || {
                let _source = id;
                ml.run();
            })?;
        Ok(Self {
            addr: SocketAddr::new(addr.ip(), port as u16),
            server,
            main_loop,
            thread: Some(thread),
        })
    }

    /// Hangs up on every client and stops listening.
    pub fn stop(&mut self) {
        self.server
            .client_filter(Some(&mut |_, _| gst_rtsp_server::RTSPFilterResult::Remove));
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The client's identity in our tables.
fn key(client: &RTSPClient) -> usize {
    client.as_ptr() as usize
}

/// The mount path of a request URL: its path without a trailing stream control (`/stream=0`,
/// or `/streamid=0` as ffmpeg names the tracks it announces).
pub fn mount_path(abspath: &str) -> String {
    let path = match abspath.rsplit_once('/') {
        Some((head, last)) if last.contains('=') && !head.is_empty() => head,
        _ => abspath,
    };
    path.trim_end_matches('/').to_owned()
}

/// Where viewers of stream `name` (the one admission let them play, which may not be the one
/// in their URL) are mounted. Not at the URL's path: an RTSP publisher's record mount is there.
/// A DESCRIBE is pointed here (and its Content-Base with it, so the client's SETUP and PLAY
/// follow).
pub fn play_mount(name: &str) -> String {
    let enc = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    format!("{PLAY_PREFIX}/{enc}")
}

/// The stream name a mount path stands for (percent-decoded), if it is one.
pub fn stream_name(path: &str) -> Option<String> {
    let raw = path.strip_prefix('/')?;
    let name = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()?
        .into_owned();
    crate::engine::valid_name(&name).ok()?;
    Some(name)
}

/// The path (`/NAME/stream=0`) and query of a request URL.
fn split_url(url: &RTSPUrl) -> (String, Option<String>) {
    let full = url.request_uri().to_string();
    let after_scheme = full.split_once("://").map_or(full.as_str(), |(_, r)| r);
    let rest = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
    match rest.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (rest.to_owned(), None),
    }
}

/// A `token` in the URL's query, for admission.
fn token(url: &RTSPUrl) -> Option<String> {
    let query = split_url(url).1?;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "token").then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// What a client's play or publish of `name` asks the engine; its events go to `events`.
fn media_request(
    name: &str,
    url: &RTSPUrl,
    client: &RTSPClient,
    events: tokio::sync::mpsc::Sender<MediaNotice>,
) -> MediaRequest {
    let id = uuid::Uuid::new_v4().to_string();
    MediaRequest {
        session_id: format!("rtsp-{id}"),
        app_key: "rtsp".into(),
        media_session_id: id,
        name: name.to_owned(),
        sdp: String::new(),
        record: false,
        custom: token(url).map_or_else(|| json!({}), |t| json!({ "token": t })),
        client: ffi::peer_ip(client),
        login: String::new(),
        resume_token: None,
        events,
    }
}

/// Hangs up on the client when its media session ends (a terminate, its stream gone).
async fn hang_up_at_end(
    client: glib::WeakRef<RTSPClient>,
    mut events: tokio::sync::mpsc::Receiver<MediaNotice>,
) {
    while let Some(n) = events.recv().await {
        if matches!(n.event, MediaEvent::Stop(_) | MediaEvent::Failed(_)) {
            if let Some(c) = client.upgrade() {
                c.close();
            }
            return;
        }
    }
}

fn status_of(e: &EngineError) -> RTSPStatusCode {
    match e {
        EngineError::StreamNotFound => RTSPStatusCode::NotFound,
        EngineError::Invalid(m) if m == "File not found" => RTSPStatusCode::NotFound,
        EngineError::Denied(_) => RTSPStatusCode::Forbidden,
        EngineError::NameInUse => RTSPStatusCode::NotAcceptable,
        EngineError::Unavailable(_) | EngineError::ShuttingDown | EngineError::TooManyPending => {
            RTSPStatusCode::ServiceUnavailable
        }
        EngineError::Internal(_) => RTSPStatusCode::InternalServerError,
        _ => RTSPStatusCode::BadRequest,
    }
}

impl Shared {
    /// Hooks a new client's requests.
    fn watch(self: &Arc<Self>, client: &RTSPClient) {
        let s = self.clone();
        client.connect_pre_describe_request(move |c, ctx| s.on_play(c, ctx));
        let s = self.clone();
        client.connect_pre_setup_request(move |c, ctx| s.on_setup(c, ctx));
        let s = self.clone();
        client.connect_pre_announce_request(move |c, _| {
            lock(&s.clients)
                .get_mut(&key(c))
                .and_then(|st| st.refused.take())
                .unwrap_or(RTSPStatusCode::Ok)
        });
        let s = self.clone();
        client.connect_closed(move |c| s.on_closed(c));
    }

    /// A SETUP: only for what the client DESCRIBEd or ANNOUNCEd.
    fn on_setup(self: &Arc<Self>, client: &RTSPClient, ctx: &RTSPContext) -> RTSPStatusCode {
        let Some(url) = ctx.uri() else {
            return RTSPStatusCode::BadRequest;
        };
        let full = split_url(url).0;
        let under = |p: &str| full == p || full.starts_with(&format!("{p}/"));
        let known = lock(&self.clients).get(&key(client)).is_some_and(|c| {
            c.plays.values().any(|p| under(&p.mount))
                || c.publish.as_ref().is_some_and(|(p, _)| under(p))
        });
        if known {
            return RTSPStatusCode::Ok;
        }
        // A SETUP must follow the client's DESCRIBE (or ANNOUNCE): that is where it is admitted
        // and where it learns the URL its tracks are at.
        RTSPStatusCode::NotFound
    }

    /// A DESCRIBE: admits the viewer and mounts its stream.
    fn on_play(self: &Arc<Self>, client: &RTSPClient, ctx: &RTSPContext) -> RTSPStatusCode {
        let Some(url) = ctx.uri() else {
            return RTSPStatusCode::BadRequest;
        };
        let own = split_url(url).0;
        let own = own.trim_end_matches('/').to_owned();
        let Some(name) = stream_name(&own) else {
            return RTSPStatusCode::NotFound;
        };
        if lock(&self.clients)
            .get(&key(client))
            .is_some_and(|c| c.plays.contains_key(&own))
        {
            return RTSPStatusCode::Ok; // a second DESCRIBE
        }
        let (tx, rx) = tokio::sync::mpsc::channel(MAILBOX_CAPACITY);
        let req = media_request(&name, url, client, tx);
        let engine = self.engine.clone();
        let handle = match self
            .rt
            .block_on(async move { engine.play(&req, "RTSP", true).await })
        {
            Ok(h) => h,
            Err(e) => {
                tracing::info!(stream = %crate::redact::Escaped(&name), "RTSP play refused: {e}");
                return status_of(&e);
            }
        };
        // Mounted under the admitted stream's name: a personal VOD or a back end's rename gets
        // a media of its own, and viewers of one stream share theirs.
        let path = play_mount(handle.name());
        if !self.mount(&path, || Ok(play_factory(handle.media(), self.rt.clone()))) {
            return RTSPStatusCode::InternalServerError;
        }
        tracing::info!(stream = %crate::redact::Escaped(&name), peer = ?ffi::peer_ip(client), "RTSP viewer");
        lock(&self.clients)
            .entry(key(client))
            .or_default()
            .plays
            .insert(
                own,
                Play {
                    mount: path,
                    _handle: handle,
                },
            );
        self.rt.spawn(hang_up_at_end(client.downgrade(), rx));
        RTSPStatusCode::Ok
    }

    /// An ANNOUNCE: the SDP's media become the tracks of a stream published through admission.
    /// Returns the mount path the request is to use: `None` for its own (admitted, mounted),
    /// [`REFUSED`] with the refusal kept for the client.
    fn on_announce(
        self: &Arc<Self>,
        client: &RTSPClient,
        request: &RTSPMessage,
        url: &RTSPUrl,
    ) -> Option<String> {
        let path = mount_path(&split_url(url).0);
        if lock(&self.clients)
            .get(&key(client))
            .is_some_and(|c| c.publish.as_ref().is_some_and(|(p, _)| *p == path))
        {
            return None; // looked up again for the same request
        }
        match self.admit_publish(client, request, url, &path) {
            Ok(()) => None,
            Err(status) => {
                lock(&self.clients).entry(key(client)).or_default().refused = Some(status);
                Some(REFUSED.to_owned())
            }
        }
    }

    fn admit_publish(
        self: &Arc<Self>,
        client: &RTSPClient,
        request: &RTSPMessage,
        url: &RTSPUrl,
        path: &str,
    ) -> Result<(), RTSPStatusCode> {
        if !self.publish {
            return Err(RTSPStatusCode::MethodNotAllowed);
        }
        let Some(name) = stream_name(path) else {
            return Err(RTSPStatusCode::BadRequest);
        };
        if lock(&self.clients)
            .get(&key(client))
            .is_some_and(|c| c.publish.is_some())
        {
            return Err(RTSPStatusCode::MethodNotValidInThisState);
        }
        let Some(encodings) = ffi::body(request)
            .and_then(|b| gst_rtsp_server::gst_sdp::SDPMessage::parse_buffer(&b).ok())
            .map(|sdp| announced(&sdp))
        else {
            return Err(RTSPStatusCode::BadRequest);
        };
        let encodings = encodings.map_err(|e| {
            tracing::info!(stream = %crate::redact::Escaped(&name), "RTSP publish refused: {e}");
            RTSPStatusCode::UnsupportedMediaType
        })?;
        let codec_of = |video: bool| {
            encodings
                .iter()
                .filter_map(|e| tracks::ingest_chain(e).ok().map(|c| c.codec))
                .find(|c| c.is_video() == video)
        };
        let spec = PublishSpec {
            provider: "RTSP",
            video: codec_of(true),
            audio: codec_of(false),
            complete: true,
            may_reorder: true,
            connected: true,
            resumable: false,
        };
        let (tx, rx) = tokio::sync::mpsc::channel(MAILBOX_CAPACITY);
        let req = media_request(&name, url, client, tx);
        let engine = self.engine.clone();
        let handle = match self
            .rt
            .block_on(async move { engine.publish(&req, spec).await })
        {
            Ok(h) => h,
            Err(e) => {
                tracing::info!(stream = %crate::redact::Escaped(&name), "RTSP publish refused: {e}");
                return Err(status_of(&e));
            }
        };
        let media = handle.media().clone();
        if !self.mount(path, || record_factory(&media, encodings.clone())) {
            return Err(RTSPStatusCode::InternalServerError);
        }
        tracing::info!(stream = %crate::redact::Escaped(&name), ?encodings, "RTSP publisher");
        lock(&self.clients).entry(key(client)).or_default().publish =
            Some((path.to_owned(), handle));
        self.rt.spawn(hang_up_at_end(client.downgrade(), rx));
        Ok(())
    }

    /// Mounts a factory at `path` for one more user (made by `make` for the first).
    fn mount(
        &self,
        path: &str,
        make: impl FnOnce() -> anyhow::Result<gst_rtsp_server::RTSPMediaFactory>,
    ) -> bool {
        let mut paths = lock(&self.paths);
        if let Some(m) = paths.get_mut(path) {
            m.users += 1;
            return true;
        }
        match make() {
            Ok(f) => {
                self.mounts.add_factory(path, f);
                paths.insert(path.to_owned(), Mount { users: 1 });
                true
            }
            Err(e) => {
                tracing::warn!("RTSP mount not made: {e:#}");
                false
            }
        }
    }

    fn unmount(&self, path: &str) {
        let mut paths = lock(&self.paths);
        if let Some(m) = paths.get_mut(path) {
            m.users = m.users.saturating_sub(1);
            if m.users == 0 {
                paths.remove(path);
                self.mounts.remove_factory(path);
            }
        }
    }

    /// A client left: its viewers and its publish end, and its mounts go with their last user.
    fn on_closed(&self, client: &RTSPClient) {
        let Some(state) = lock(&self.clients).remove(&key(client)) else {
            return;
        };
        for play in state.plays.values() {
            self.unmount(&play.mount);
        }
        if let Some((path, handle)) = state.publish {
            self.unmount(&path);
            handle.unpublish();
        }
        drop(state.plays);
    }
}

/// The encoding names of an announced SDP's media; any it cannot take refuses the publish.
fn announced(sdp: &gst_rtsp_server::gst_sdp::SDPMessageRef) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let (mut video, mut audio) = (false, false);
    for m in sdp.medias() {
        let payload = m
            .format(0)
            .and_then(|f| f.parse::<u32>().ok())
            .ok_or_else(|| anyhow::anyhow!("media without a payload type"))?;
        let encoding = tracks::encoding_name(payload, m.attribute_val("rtpmap"))
            .ok_or_else(|| anyhow::anyhow!("media with payload type {payload} and no rtpmap"))?;
        anyhow::ensure!(tracks::supported(&encoding), "{encoding} is not supported");
        let is_video = encoding == "H264" || encoding == "H265";
        let seen = if is_video { &mut video } else { &mut audio };
        anyhow::ensure!(!*seen, "more than one {} track", m.media().unwrap_or("?"));
        *seen = true;
        out.push(encoding);
    }
    anyhow::ensure!(!out.is_empty(), "no media");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_names() {
        assert_eq!(mount_path("/cam"), "/cam");
        assert_eq!(mount_path("/cam/stream=0"), "/cam");
        assert_eq!(mount_path("/cam/"), "/cam");
        assert_eq!(mount_path("/cam/streamid=1"), "/cam");
        assert_eq!(stream_name("/cam").as_deref(), Some("cam"));
        assert_eq!(stream_name("/my%20cam").as_deref(), Some("my cam"));
        assert_eq!(stream_name("/"), None);
        assert_eq!(stream_name("/a%00b"), None);
        assert_eq!(stream_name("cam"), None);
    }

    #[test]
    fn announced_media() {
        gst::init().unwrap();
        let sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\n\
                   m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
                   m=audio 0 RTP/AVP 8\r\n";
        let msg = gst_rtsp_server::gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes()).unwrap();
        assert_eq!(announced(&msg).unwrap(), vec!["H264", "PCMA"]);
        let bad = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\n\
                   m=video 0 RTP/AVP 96\r\na=rtpmap:96 AV1/90000\r\n";
        let msg = gst_rtsp_server::gst_sdp::SDPMessage::parse_buffer(bad.as_bytes()).unwrap();
        assert!(announced(&msg).is_err());
    }
}
