//! Server configuration: one TOML file with documented defaults, every value overridable from the
//! command line. The server runs with no file at all; a file only names what differs from the defaults.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default HTTP listener: signaling, REST, pages.
pub const DEFAULT_HTTP: &str = "0.0.0.0:8080";
/// Default RTMP listener.
pub const DEFAULT_RTMP: &str = "0.0.0.0:1935";
/// Default RTSP listener.
pub const DEFAULT_RTSP: &str = "0.0.0.0:8554";
/// Default WebRTC media port range (one port per peer connection with BUNDLE).
pub const DEFAULT_ICE_PORT_MIN: u16 = 31000;
/// Upper end of the default WebRTC media port range.
pub const DEFAULT_ICE_PORT_MAX: u16 = 31999;

/// Errors found while loading or checking the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: toml::de::Error,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole server configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP listener (signaling WebSocket, REST, pages, health, metrics).
    pub http: SocketAddr,
    /// RTMP listener.
    pub rtmp: SocketAddr,
    /// RTMP application name (`rtmp://host/<app>/<stream>`).
    pub rtmp_app: String,
    /// How long an RTMP stream waits for its publisher to come back before its viewers are stopped.
    #[serde(with = "secs")]
    pub rtmp_reconnect_grace: Duration,
    /// Whether only the same source address may resume an RTMP stream during the grace period.
    /// The stream key (with its query) must match in any case; turn this off for encoders behind
    /// NATs that change address on reconnect.
    pub rtmp_resume_same_address: bool,
    /// RTSP listener (every stream plays at `rtsp://host:port/NAME`).
    pub rtsp: SocketAddr,
    /// Whether RTSP clients may publish (ANNOUNCE/RECORD, `ffmpeg -f rtsp`).
    pub rtsp_publish: bool,
    /// Where recordings, media files and the history database live.
    pub data_dir: PathBuf,
    /// Serve the web pages and SDK from this directory instead of the built-in copies.
    pub web_dir: Option<PathBuf>,
    /// WebRTC connectivity.
    pub ice: IceConfig,
    /// WebSocket signaling.
    pub signaling: SignalingConfig,
    /// Fan-out tuning.
    pub engine: EngineConfig,
    /// WHIP/WHEP.
    pub whip: WhipConfig,
    /// The REST API.
    pub rest: RestConfig,
    /// What one client may hold or take: timeouts, connections, negotiation sizes.
    pub limits: LimitsConfig,
    /// Recording.
    pub record: RecordConfig,
    /// Periodic snapshots.
    pub snapshots: SnapshotConfig,
    /// Mixers (MCU).
    pub mixer: MixerConfig,
    /// REST hooks to the customer's back end.
    pub hooks: crate::hooks::HooksConfig,
    /// Signed tokens for publish, play and room join.
    pub auth: crate::auth::AuthConfig,
    /// The call history's database.
    pub history: crate::history::HistoryConfig,
    /// HLS and LL-HLS.
    pub hls: crate::protocols::hls::HlsConfig,
    /// Files played as streams (the media folder, S3).
    pub vod: crate::protocols::vod::VodConfig,
}

/// Recording settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordConfig {
    /// Where recordings go; `records/` under `data_dir` when unset.
    pub dir: Option<PathBuf>,
    /// File name template (WCS keys: `{streamName}`, `{startTime}`, `{endTime}`,
    /// `{mediaSessionId}`, `{login}`, `{audioCodec}`, `{videoCodec}`).
    pub template: String,
    /// Rotation when none is asked for: a size (`20M`) or a duration (`10m`); empty for none.
    pub rotation: String,
    /// `by-codec` (H.264 → MP4, VP8 → WebM) or `matroska` (one .mkv container for everything).
    pub container: String,
}

impl Default for RecordConfig {
    fn default() -> Self {
        Self {
            dir: None,
            template: "{streamName}-{startTime}-{endTime}".into(),
            rotation: String::new(),
            container: "by-codec".into(),
        }
    }
}

/// Periodic snapshots for dashboards: `snapshots/NAME.jpg`, served at `/snapshots/NAME.jpg`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotConfig {
    /// Seconds between two snapshots of a stream; 0 (the default) turns slicing off.
    #[serde(with = "secs")]
    pub interval: Duration,
    /// Which streams: glob patterns on the stream name (`*` for all, `cam-*`).
    pub streams: Vec<String>,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        Self {
            interval: Duration::ZERO,
            streams: vec!["*".into()],
        }
    }
}

/// Mixers: the defaults of `/rest-api/mixer/startup`, and MCU mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MixerConfig {
    /// MCU mode: publishing `login#room` adds the stream to the mixer `room` (made on first use,
    /// ended after its last input leaves), and each participant may play `room-<login>room`:
    /// everyone's picture, everyone's voice but their own.
    pub auto: bool,
    /// Output picture width.
    pub width: u32,
    /// Output picture height.
    pub height: u32,
    /// Output frames per second.
    pub fps: u32,
    /// Output video bitrate, kbit/s.
    pub kbps: u32,
    /// How long the mix waits for a late input before it goes on without it, in milliseconds.
    pub latency_ms: u64,
    /// Layout when a mixer names none: `grid`, `speaker`, `pip`, `screen`, or a file of
    /// `layout_dir`.
    pub layout: String,
    /// A folder of operators' layout files (`NAME.toml`), looked up before the built-in ones.
    pub layout_dir: Option<PathBuf>,
    /// A stream whose name contains this is a screen share (the `screen` layout's focus).
    pub desktop_marker: String,
}

impl Default for MixerConfig {
    fn default() -> Self {
        Self {
            auto: false,
            width: 1280,
            height: 720,
            fps: 30,
            kbps: 2000,
            latency_ms: 200,
            layout: "grid".into(),
            layout_dir: None,
            desktop_marker: "desktop".into(),
        }
    }
}

/// REST API settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestConfig {
    /// Web origins (`https://admin.example.com`) whose pages may call every REST method. Empty (the
    /// default): pages of any origin may only read (GET); state-changing calls are for back ends and
    /// for pages of origins listed here.
    pub cors_origins: Vec<String>,
    /// API keys. When any is set, every REST method needs one, as `Authorization: Bearer KEY` or
    /// HTTP Basic with KEY as the password (any user name), and answers 401 without it.
    pub api_keys: Vec<String>,
}

/// Limits that keep one careless or hostile client from tying up the server. Each is documented
/// with what happens when it is reached.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// An HTTP client must send a request's headers within this time, or the connection is closed.
    #[serde(with = "secs")]
    pub http_header_timeout: Duration,
    /// An HTTP connection on which nothing is read or written for this long is closed (idle
    /// keep-alive). WebSocket signaling stays busy with pings, so it is not affected.
    #[serde(with = "secs")]
    pub http_idle_timeout: Duration,
    /// An RTMP connection must ask to publish or play within this time after connecting.
    #[serde(with = "secs")]
    pub rtmp_idle_timeout: Duration,
    /// An RTMP publisher that sends no audio or video for this long is dropped, and its stream name
    /// freed (after the reconnect grace). Other bytes (pings, acknowledgements) do not count.
    #[serde(with = "secs")]
    pub rtmp_media_timeout: Duration,
    /// Open connections one IP address may hold on each listener (HTTP, RTMP); 0 means no limit.
    /// Connections past it are closed at once.
    pub max_connections_per_ip: usize,
    /// Largest SDP offer accepted, in bytes (a browser's offer is 3 to 10 KiB).
    pub max_sdp_bytes: usize,
    /// Most m-lines in an offer (a browser sends 2 or 3).
    pub max_media_sections: usize,
    /// WebRTC negotiations one client address may have pending (not yet connected) at once.
    pub max_pending_per_client: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            http_header_timeout: Duration::from_secs(10),
            http_idle_timeout: Duration::from_secs(60),
            rtmp_idle_timeout: Duration::from_secs(10),
            rtmp_media_timeout: Duration::from_secs(10),
            max_connections_per_ip: 512,
            max_sdp_bytes: 64 * 1024,
            max_media_sections: 16,
            max_pending_per_client: 16,
        }
    }
}

/// WHIP and WHEP settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WhipConfig {
    /// When set, WHIP/WHEP requests must carry `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: DEFAULT_HTTP.parse().expect("valid default address"),
            rtmp: DEFAULT_RTMP.parse().expect("valid default address"),
            rtmp_app: "live".into(),
            rtmp_reconnect_grace: Duration::from_secs(10),
            rtmp_resume_same_address: true,
            rtsp: DEFAULT_RTSP.parse().expect("valid default address"),
            rtsp_publish: false,
            data_dir: PathBuf::from("data"),
            web_dir: None,
            ice: IceConfig::default(),
            signaling: SignalingConfig::default(),
            engine: EngineConfig::default(),
            whip: WhipConfig::default(),
            rest: RestConfig::default(),
            limits: LimitsConfig::default(),
            record: RecordConfig::default(),
            snapshots: SnapshotConfig::default(),
            mixer: MixerConfig::default(),
            hooks: Default::default(),
            auth: Default::default(),
            history: Default::default(),
            hls: Default::default(),
            vod: Default::default(),
        }
    }
}

/// ICE (WebRTC connectivity) settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IceConfig {
    /// STUN servers as `stun://host:port`.
    pub stun_servers: Vec<String>,
    /// TURN servers as `turn://user:password@host:port`.
    pub turn_servers: Vec<String>,
    /// Public address to announce besides the local ones (1:1 NAT, as on cloud VMs).
    pub announce_address: Option<IpAddr>,
    /// Lowest UDP port for media.
    pub port_min: u16,
    /// Highest UDP port for media.
    pub port_max: u16,
    /// The only local addresses candidates are gathered on; empty means every interface.
    pub addresses: Vec<IpAddr>,
    /// How long a peer may take to connect before its stream fails.
    #[serde(with = "secs")]
    pub connect_timeout: Duration,
}

impl Default for IceConfig {
    fn default() -> Self {
        Self {
            stun_servers: Vec::new(),
            turn_servers: Vec::new(),
            announce_address: None,
            port_min: DEFAULT_ICE_PORT_MIN,
            port_max: DEFAULT_ICE_PORT_MAX,
            addresses: Vec::new(),
            connect_timeout: Duration::from_secs(20),
        }
    }
}

/// WebSocket signaling settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignalingConfig {
    /// How often the server pings each client.
    #[serde(with = "secs")]
    pub ping_interval: Duration,
    /// A client that sends nothing (no pong, no message) for this long is disconnected.
    #[serde(with = "secs")]
    pub idle_timeout: Duration,
    /// Largest accepted text frame, in bytes (an SDP offer is a few KiB).
    pub max_message_bytes: usize,
}

impl Default for SignalingConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            max_message_bytes: 256 * 1024,
        }
    }
}

/// Fan-out tuning.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Largest keyframe cache per track; past it the cache is dropped and new viewers wait for a keyframe.
    pub gop_cache_bytes: usize,
    /// Bytes queued for one consumer before it is cut back to the next keyframe.
    pub consumer_queue_bytes: u64,
    /// Least time between two keyframe requests sent to a publisher, in milliseconds.
    pub keyframe_request_interval_ms: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            gop_cache_bytes: 8 * 1024 * 1024,
            consumer_queue_bytes: 4 * 1024 * 1024,
            keyframe_request_interval_ms: 500,
        }
    }
}

impl Config {
    /// Reads a TOML file; missing keys take their defaults.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Sets one value by its path in the file, `KEY=VALUE` (`limits.max_connections_per_ip=64`,
    /// `rest.cors_origins=["https://a.example"]`): what `--set` does, so every setting can come from
    /// the command line or the environment. VALUE is TOML; text that is not TOML is taken as a string.
    pub fn set(&mut self, assignment: &str) -> Result<(), ConfigError> {
        let bad = |why: String| ConfigError::Invalid(format!("--set {assignment:?}: {why}"));
        let (path, raw) = assignment
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=VALUE".into()))?;
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
        let mut root = toml::Table::try_from(&*self).map_err(|e| bad(e.to_string()))?;
        let keys: Vec<&str> = path.trim().split('.').collect();
        let (last, parents) = keys.split_last().ok_or_else(|| bad("empty key".into()))?;
        let mut table = &mut root;
        for k in parents {
            table = table
                .entry(k.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| bad(format!("{k} is not a section")))?;
        }
        table.insert(last.to_string(), value);
        *self = Config::deserialize(root).map_err(|e| bad(e.to_string()))?;
        Ok(())
    }

    /// The folder recordings go to.
    pub fn record_dir(&self) -> PathBuf {
        self.record
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("records"))
    }

    /// The folder periodic snapshots go to.
    pub fn snapshot_dir(&self) -> PathBuf {
        self.data_dir.join("snapshots")
    }

    /// Checks values that serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.hls.validate().map_err(ConfigError::Invalid)?;
        if self.ice.port_min == 0 || self.ice.port_min > self.ice.port_max {
            return Err(ConfigError::Invalid(format!(
                "ice.port_min ({}) must be non-zero and not above ice.port_max ({})",
                self.ice.port_min, self.ice.port_max
            )));
        }
        for s in &self.ice.stun_servers {
            if !s.starts_with("stun://") {
                return Err(ConfigError::Invalid(format!(
                    "STUN server {s:?} must look like stun://host:port"
                )));
            }
        }
        for s in &self.ice.turn_servers {
            if !(s.starts_with("turn://") || s.starts_with("turns://")) {
                return Err(ConfigError::Invalid(format!(
                    "TURN server {s:?} must look like turn://user:password@host:port"
                )));
            }
        }
        if self.rtmp_app.is_empty() || self.rtmp_app.contains('/') {
            return Err(ConfigError::Invalid(format!(
                "rtmp_app {:?} must be a non-empty name without '/'",
                self.rtmp_app
            )));
        }
        if self.signaling.ping_interval.is_zero() || self.signaling.idle_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "signaling.ping_interval and signaling.idle_timeout must be above zero".into(),
            ));
        }
        let l = &self.limits;
        if l.http_header_timeout.is_zero()
            || l.http_idle_timeout.is_zero()
            || l.rtmp_idle_timeout.is_zero()
            || l.rtmp_media_timeout.is_zero()
        {
            return Err(ConfigError::Invalid(
                "limits: timeouts must be above zero".into(),
            ));
        }
        if l.max_sdp_bytes < 1024 || l.max_media_sections == 0 || l.max_pending_per_client == 0 {
            return Err(ConfigError::Invalid(
                "limits: max_sdp_bytes must be at least 1024, max_media_sections and max_pending_per_client above zero".into(),
            ));
        }
        if !["by-codec", "matroska"].contains(&self.record.container.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "record.container {:?} must be \"by-codec\" or \"matroska\"",
                self.record.container
            )));
        }
        let m = &self.mixer;
        if !(16..=3840).contains(&m.width)
            || !(16..=2160).contains(&m.height)
            || m.width % 2 != 0
            || m.height % 2 != 0
            || !(1..=60).contains(&m.fps)
            || m.kbps == 0
        {
            return Err(ConfigError::Invalid(
                "mixer: width and height must be even, 16..3840 x 16..2160; fps 1..60; kbps above zero".into(),
            ));
        }
        for p in &self.snapshots.streams {
            glob::Pattern::new(p).map_err(|e| {
                ConfigError::Invalid(format!("snapshots.streams: {p:?} is not a pattern: {e}"))
            })?;
        }
        for o in &self.rest.cors_origins {
            if o == "*" || !(o.starts_with("http://") || o.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "rest.cors_origins: {o:?} must be an origin such as https://admin.example.com"
                )));
            }
        }
        Ok(())
    }
}

/// Durations are written as (fractional) seconds in the file.
pub(crate) mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.http.port(), 8080);
        assert_eq!(c.rtmp.port(), 1935);
        assert_eq!(c.ice.port_min, DEFAULT_ICE_PORT_MIN);
        c.validate().unwrap();
    }

    #[test]
    fn partial_file_overrides_only_what_it_names() {
        let c = Config::from_toml(
            "http = \"127.0.0.1:9000\"\n[ice]\naddresses = [\"127.0.0.1\"]\nconnect_timeout = 2.5\n",
        )
        .unwrap();
        assert_eq!(c.http.port(), 9000);
        assert_eq!(
            c.ice.addresses,
            vec!["127.0.0.1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(c.ice.connect_timeout, Duration::from_millis(2500));
        assert_eq!(c.signaling.ping_interval, Duration::from_secs(5));
    }

    #[test]
    fn set_overrides_one_value_by_path() {
        let mut c = Config::default();
        c.set("limits.max_connections_per_ip=64").unwrap();
        c.set("limits.http_idle_timeout=2.5").unwrap();
        c.set(r#"rest.cors_origins=["https://a.example"]"#).unwrap();
        c.set("rtmp_app=broadcast").unwrap();
        assert_eq!(c.limits.max_connections_per_ip, 64);
        assert_eq!(c.limits.http_idle_timeout, Duration::from_millis(2500));
        assert_eq!(c.rest.cors_origins, vec!["https://a.example".to_string()]);
        assert_eq!(c.rtmp_app, "broadcast");
        assert!(c.set("limits.no_such_limit=1").is_err());
        assert!(c.set("limits.max_connections_per_ip=lots").is_err());
        assert!(c.set("no equals sign").is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(Config::from_toml("htpp = \"x\"").is_err());
    }

    #[test]
    fn bad_port_range_is_refused() {
        let mut c = Config::default();
        c.ice.port_min = 40000;
        c.ice.port_max = 30000;
        assert!(c.validate().is_err());
        c.ice.port_min = 30000;
        c.ice.stun_servers = vec!["example.org:3478".into()];
        assert!(c.validate().is_err());
    }
}

#[cfg(test)]
mod example_file {
    #[test]
    fn example_config_parses_and_matches_defaults() {
        let c = super::Config::from_toml(include_str!("../config/example.toml")).unwrap();
        c.validate().unwrap();
        let d = super::Config::default();
        assert_eq!(c.http, d.http);
        assert_eq!(c.ice.port_min, d.ice.port_min);
        assert_eq!(c.engine.gop_cache_bytes, d.engine.gop_cache_bytes);
        assert_eq!(c.signaling.idle_timeout, d.signaling.idle_timeout);
        assert_eq!(c.rtsp_publish, d.rtsp_publish);
        assert_eq!(c.vod.media_dir, d.vod.media_dir);
    }
}
