//! HLS and low-latency HLS for every stream, served from memory. A stream's rendition (fMP4, or
//! MPEG-TS for players that need it) is a [`Channel`]: the timeline of its segments and parts,
//! fed by the stream's shared [`packager::Packager`], started by the first request and dropped
//! when nobody has asked for a while. The channel outlives its stream's publisher, so a player
//! that keeps reloading across a publisher's reconnect sees a discontinuity, not an error.
//!
//! Players are viewers like any other: the first request of a client (its token, or else its
//! address) passes the engine's admission point as provider `HLS` (the `playHLS` hook), and the
//! viewer ends when its requests stop. See [`http`] for the URLs.

pub mod http;
pub mod packager;
pub mod playlist;

use crate::engine::{Engine, EngineError, MediaRequest, PlayHandle, StreamMedia};
use crate::sync::lock;
use packager::Packager;
use playlist::{Names, Shape, Timeline};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// HLS settings (`[hls]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HlsConfig {
    /// Serve HLS at all (`/hls/NAME/index.m3u8` on the HTTP port, and the HLS listener).
    pub enabled: bool,
    /// The HLS listener, WCS's HLS port (`/NAME/NAME.m3u8`); none to serve on the HTTP port only.
    pub listen: Option<SocketAddr>,
    /// Segment duration asked for, in seconds (a segment ends at the first keyframe after it; the
    /// source is asked for keyframes at this pace while the stream is packaged). Classic HLS
    /// players stay three target durations behind the live edge: 1 s segments keep them near 3 s,
    /// 2 s ones near 6 s, for one keyframe per segment.
    pub segment_duration: f64,
    /// LL-HLS part duration, in seconds.
    pub part_duration: f64,
    /// Complete segments kept per rendition (the playlist's window, and its memory bound).
    pub segments: usize,
    /// A rendition nobody has asked for in this many seconds is stopped, and so is a viewer.
    pub idle_timeout: f64,
    /// Package every stream from its publish on, not only on the first request (its playlist is
    /// then ready at once).
    pub always: bool,
    /// The container when the request does not say (`?format=ts` or `?format=fmp4`): `fmp4` or `ts`.
    pub default_format: String,
}

impl Default for HlsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: Some(SocketAddr::from(([0, 0, 0, 0], 8082))),
            segment_duration: 1.0,
            part_duration: 0.3,
            segments: 6,
            idle_timeout: 30.0,
            always: false,
            default_format: "fmp4".into(),
        }
    }
}

impl HlsConfig {
    /// Checks values that serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.5..=30.0).contains(&self.segment_duration) {
            return Err("hls.segment_duration must be between 0.5 and 30 seconds".into());
        }
        if !(0.05..=self.segment_duration).contains(&self.part_duration) {
            return Err("hls.part_duration must be between 0.05 s and the segment duration".into());
        }
        if !(2..=100).contains(&self.segments) {
            return Err("hls.segments must be between 2 and 100".into());
        }
        if !(1.0..=3600.0).contains(&self.idle_timeout) {
            return Err("hls.idle_timeout must be between 1 and 3600 seconds".into());
        }
        Container::parse(&self.default_format)
            .ok_or_else(|| "hls.default_format must be fmp4 or ts".to_string())?;
        Ok(())
    }
}

/// A rendition's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Container {
    /// CMAF-style fragmented MP4, with LL-HLS parts.
    Fmp4,
    /// MPEG-TS, whole segments only.
    Ts,
}

impl Container {
    /// From `fmp4`/`ts` (and `mp4`, `m4s`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "fmp4" | "mp4" | "m4s" | "cmaf" => Some(Self::Fmp4),
            "ts" | "mpegts" => Some(Self::Ts),
            _ => None,
        }
    }

    fn ext(self) -> &'static str {
        match self {
            Self::Fmp4 => "m4s",
            Self::Ts => "ts",
        }
    }

    fn output_kind(self) -> &'static str {
        match self {
            Self::Fmp4 => "hls-fmp4",
            Self::Ts => "hls-ts",
        }
    }
}

/// One rendition of one stream.
pub struct Channel {
    /// The stream's name.
    pub name: String,
    /// How its files are named.
    pub names: Names,
    /// Its segment and part durations.
    pub shape: Shape,
    timeline: Mutex<Timeline>,
    changed: watch::Sender<u64>,
    /// The packager feeding it, and the stream it packages.
    source: Mutex<Option<(Weak<StreamMedia>, Arc<Packager>)>>,
    last_used: Mutex<Instant>,
    /// Requests being answered now (a blocking reload may wait for seconds): never idle then.
    busy: std::sync::atomic::AtomicUsize,
}

/// Marks a request in progress on a channel (see [`Channel::busy`]).
pub struct Busy<'a>(&'a Channel);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.touch();
        self.0
            .busy
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Channel {
    fn new(name: &str, container: Container, shape: Shape) -> Arc<Self> {
        let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        Arc::new(Self {
            name: name.to_owned(),
            names: Names {
                id,
                ext: container.ext(),
            },
            shape,
            timeline: Mutex::new(Timeline::new(shape)),
            changed: watch::Sender::new(0),
            source: Mutex::new(None),
            last_used: Mutex::new(Instant::now()),
            busy: Default::default(),
        })
    }

    /// Changes the timeline and wakes the requests waiting on it.
    pub fn update(&self, f: impl FnOnce(&mut Timeline)) {
        f(&mut lock(&self.timeline));
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Changes of the timeline, for a reader that follows it.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The timeline, locked (never held across an await).
    pub fn timeline(&self) -> MutexGuard<'_, Timeline> {
        lock(&self.timeline)
    }

    /// Waits until `done` holds of the timeline, or `timeout` passes; returns whether it held.
    pub async fn wait_for(&self, timeout: Duration, done: impl Fn(&Timeline) -> bool) -> bool {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if done(&self.timeline()) {
                return true;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return done(&self.timeline()),
            }
        }
    }

    /// Makes sure `media` feeds this rendition (the stream's packager, shared with every other
    /// rendition user), replacing a packager of an earlier publisher.
    fn feed_from(self: &Arc<Self>, media: &Arc<StreamMedia>, container: Container) {
        let mut src = lock(&self.source);
        if src
            .as_ref()
            .is_some_and(|(m, _)| std::ptr::eq(m.as_ptr(), Arc::as_ptr(media)))
        {
            return;
        }
        let ch = self.clone();
        match media.shared_output(container.output_kind(), |_| Packager::start(media, ch)) {
            Ok(p) => *src = Some((Arc::downgrade(media), p)),
            Err(e) => {
                tracing::warn!(stream = %crate::redact::Escaped(&self.name), "HLS packager not started: {e:#}")
            }
        }
    }

    /// Marks a request in progress until the guard drops.
    pub fn busy(&self) -> Busy<'_> {
        self.busy.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Busy(self)
    }

    fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        if self.busy.load(std::sync::atomic::Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        lock(&self.last_used).elapsed()
    }
}

/// One HLS player, as the engine sees it: a viewer of its stream.
struct Viewer {
    handle: PlayHandle,
    last: Instant,
}

/// The HLS service: renditions by stream and container, and the players watching.
pub struct Hls {
    engine: Engine,
    config: HlsConfig,
    channels: Mutex<HashMap<(String, Container), Arc<Channel>>>,
    viewers: Mutex<HashMap<(String, String), Viewer>>,
}

/// What an HLS request could not get.
#[derive(Debug, thiserror::Error)]
pub enum HlsError {
    /// From the engine: not found, denied, shutting down.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// HLS is turned off.
    #[error("HLS is disabled")]
    Disabled,
}

impl Hls {
    /// The service for `engine`.
    pub fn new(engine: Engine) -> Arc<Self> {
        let config = engine.config().hls.clone();
        Arc::new(Self {
            engine,
            config,
            channels: Mutex::default(),
            viewers: Mutex::default(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &HlsConfig {
        &self.config
    }

    fn shape(&self, container: Container) -> Shape {
        Shape {
            segments: self.config.segments,
            target: Duration::from_secs_f64(self.config.segment_duration),
            part_target: (container == Container::Fmp4)
                .then(|| Duration::from_secs_f64(self.config.part_duration)),
        }
    }

    /// The default container.
    pub fn default_container(&self) -> Container {
        Container::parse(&self.config.default_format).unwrap_or(Container::Fmp4)
    }

    /// The rendition of stream `name` for a player (`client`, `token`): the player is admitted
    /// on its first request (and again once its stream was published anew), the rendition made
    /// when missing and fed from the stream when it is published. A rendition whose stream is
    /// gone stays while players ask for it, so they ride over a publisher's reconnect.
    pub async fn channel(
        &self,
        name: &str,
        container: Container,
        client: IpAddr,
        token: Option<&str>,
    ) -> Result<Arc<Channel>, HlsError> {
        if !self.config.enabled {
            return Err(HlsError::Disabled);
        }
        crate::engine::valid_name(name).map_err(|_| EngineError::StreamNotFound)?;
        let key = (
            name.to_owned(),
            token.map_or_else(|| client.to_string(), str::to_owned),
        );
        let current = self.engine.stream_of(Some(name), None).map(|s| s.media);
        let media = {
            let mut viewers = lock(&self.viewers);
            match viewers.get_mut(&key) {
                Some(v)
                    if current
                        .as_ref()
                        .is_some_and(|m| Arc::ptr_eq(m, v.handle.media())) =>
                {
                    v.last = Instant::now();
                    Some(v.handle.media().clone())
                }
                _ => {
                    viewers.remove(&key);
                    None
                }
            }
        };
        let media = match (media, current) {
            (Some(m), _) => Some(m),
            (None, Some(_)) => Some(self.admit(key, name, client, token).await?),
            (None, None) => {
                // Not published now: a rendition players already follow goes on; otherwise the
                // name goes through admission like any play (a resolver may make it).
                if !lock(&self.channels).contains_key(&(name.to_owned(), container)) {
                    Some(self.admit(key, name, client, token).await?)
                } else {
                    None
                }
            }
        };
        Ok(self.rendition(name, container, media.as_ref()))
    }

    /// The fMP4 rendition of a stream a viewer was admitted to elsewhere (an MSE player), fed from
    /// `media`.
    pub fn rendition_of(&self, name: &str, media: &Arc<StreamMedia>) -> Arc<Channel> {
        self.rendition(name, Container::Fmp4, Some(media))
    }

    /// The rendition of `name` in `container`, made when missing, marked as used, and fed from
    /// `media` when given.
    fn rendition(
        &self,
        name: &str,
        container: Container,
        media: Option<&Arc<StreamMedia>>,
    ) -> Arc<Channel> {
        let channel = lock(&self.channels)
            .entry((name.to_owned(), container))
            .or_insert_with(|| Channel::new(name, container, self.shape(container)))
            .clone();
        channel.touch();
        if let Some(m) = media {
            channel.feed_from(m, container);
        }
        channel
    }

    /// Admits a new player; returns its stream's media.
    async fn admit(
        &self,
        key: (String, String),
        name: &str,
        client: IpAddr,
        token: Option<&str>,
    ) -> Result<Arc<StreamMedia>, HlsError> {
        let id = uuid::Uuid::new_v4().to_string();
        // Nothing reads a player's events: it learns of a stopped stream from its playlist.
        let (events, _) = tokio::sync::mpsc::channel(1);
        let req = MediaRequest {
            session_id: format!("hls-{id}"),
            app_key: "hls".into(),
            media_session_id: id,
            name: name.to_owned(),
            sdp: String::new(),
            record: false,
            custom: token.map_or_else(
                || serde_json::json!({}),
                |t| serde_json::json!({ "token": t }),
            ),
            client: Some(client),
            login: String::new(),
            resume_token: None,
            events,
        };
        let handle = self.engine.play(&req, "HLS", true).await?;
        let media = handle.media().clone();
        // A rename by admission (a hook's OVERWRITE) keeps the player under the name it asked for.
        lock(&self.viewers).insert(
            key,
            Viewer {
                handle,
                last: Instant::now(),
            },
        );
        Ok(media)
    }

    /// Starts packaging a stream that was just published (with `always`).
    fn prepare(&self, name: &str) {
        let Some(stream) = self.engine.stream_of(Some(name), None) else {
            return;
        };
        self.rendition(name, self.default_container(), Some(&stream.media));
    }

    /// Drops players and renditions nobody has asked for within the idle timeout.
    fn reap(&self) {
        let idle = Duration::from_secs_f64(self.config.idle_timeout);
        let gone: Vec<Viewer> = {
            let mut viewers = lock(&self.viewers);
            let keys: Vec<_> = viewers
                .iter()
                .filter(|(_, v)| v.last.elapsed() > idle)
                .map(|(k, _)| k.clone())
                .collect();
            keys.iter().filter_map(|k| viewers.remove(k)).collect()
        };
        drop(gone);
        let always = self.config.always;
        let engine = &self.engine;
        let gone: Vec<Arc<Channel>> = {
            let mut channels = lock(&self.channels);
            let keys: Vec<_> = channels
                .iter()
                .filter(|((name, _), c)| {
                    c.idle_for() > idle && !(always && engine.stream_of(Some(name), None).is_some())
                })
                .map(|(k, _)| k.clone())
                .collect();
            keys.iter().filter_map(|k| channels.remove(k)).collect()
        };
        for c in gone {
            tracing::debug!(stream = %crate::redact::Escaped(&c.name), "HLS rendition stopped: idle");
            lock(&c.source).take();
        }
    }

    /// Renditions and players now, and the bytes held (for metrics and leak checks).
    pub fn counts(&self) -> (usize, usize, usize) {
        let channels = lock(&self.channels);
        let bytes = channels.values().map(|c| c.timeline().bytes()).sum();
        (channels.len(), lock(&self.viewers).len(), bytes)
    }

    /// Runs the idle reaper (and, with `always`, starts packaging at each publish) until `stop`.
    pub fn spawn(self: &Arc<Self>, mut stop: watch::Receiver<bool>) {
        let me = Arc::downgrade(self);
        let mut events = self.engine.subscribe();
        let always = self.config.always;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let Some(hls) = me.upgrade() else { break };
                        hls.reap();
                    }
                    ev = events.recv() => match ev {
                        Ok(crate::engine::EngineEvent::Published { name, .. }) if always => {
                            let Some(hls) = me.upgrade() else { break };
                            hls.prepare(&name);
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                        _ => {}
                    },
                    _ = crate::rtmp::stopped(&mut stop) => break,
                }
            }
            if let Some(hls) = me.upgrade() {
                lock(&hls.viewers).clear();
                let channels: Vec<_> = lock(&hls.channels).drain().map(|(_, c)| c).collect();
                for c in channels {
                    lock(&c.source).take();
                }
            }
        });
    }
}
