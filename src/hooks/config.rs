//! The `[hooks]` section: which back end each application (`appKey`) calls, which methods it is
//! called for, and how calls are made (timeout, signature, retries, keep-alives).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// One application's back end: a URL, or a URL with the methods it is called for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AppConfig {
    /// `defaultApp = "http://backend/rest"`: every method.
    Url(String),
    /// `myApp = { url = "…", methods = ["connect", "publishStream"] }`.
    Full {
        /// The base URL; hooks go to `<url>/<method>`.
        url: String,
        /// The methods this application is called for; empty means all.
        #[serde(default)]
        methods: Vec<String>,
    },
}

impl AppConfig {
    /// The base URL.
    pub fn url(&self) -> &str {
        match self {
            AppConfig::Url(u) | AppConfig::Full { url: u, .. } => u,
        }
    }

    /// Whether this application is called for `method`.
    pub fn calls(&self, method: &str) -> bool {
        match self {
            AppConfig::Url(_) => true,
            AppConfig::Full { methods, .. } => {
                methods.is_empty() || methods.iter().any(|m| m == method)
            }
        }
    }
}

/// REST hook settings. With no application configured no hook is called and everyone is admitted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HooksConfig {
    /// Every hook off (WCS's `disable_rest_requests`).
    pub disabled: bool,
    /// Seconds a back end has to answer (WCS's `rest_request_timeout`).
    #[serde(with = "crate::config::secs")]
    pub timeout: Duration,
    /// Sign each call with `Authorization: WCS <HMAC-MD5 of the body>` (`rest_hook_send_hash`).
    pub send_hash: bool,
    /// The signature's key (`rest_hook_secret_key`).
    pub secret_key: String,
    /// How many times an event that could not be delivered is tried again (1 s, 2 s, 4 s, … apart,
    /// at most 30 s). Decisions are never retried: the client is waiting.
    pub retries: u32,
    /// Seconds between `StreamKeepAliveEvent`s for each publisher and viewer; 0 = none. A 403 to
    /// one, under `restOnError: FAIL`, stops that stream.
    #[serde(with = "crate::config::secs")]
    pub keep_alive_interval: Duration,
    /// Deliveries kept for `/rest-api/hooks/log`.
    pub log_size: usize,
    /// The application clients without one of their own belong to: WHIP and WHEP, RTSP players
    /// and publishers, HLS players.
    pub whip_app: String,
    /// Back ends by application key: `defaultApp`, `roomApp`, `flashStreamingApp` (RTMP), and any
    /// of your own.
    pub apps: BTreeMap<String, AppConfig>,
}

impl Default for HooksConfig {
    fn default() -> Self {
        Self {
            disabled: false,
            timeout: Duration::from_secs(15),
            send_hash: false,
            secret_key: String::new(),
            retries: 5,
            keep_alive_interval: Duration::ZERO,
            log_size: 1000,
            whip_app: "defaultApp".into(),
            apps: BTreeMap::new(),
        }
    }
}
