//! REST hooks: the server asks the customer's back end before it lets a client connect, publish or
//! play, and tells it what happened afterwards, in WCS's names and bodies (`POST <app URL>/<hook>`).
//! A back end allows with 200 (echoing the body, or changing the fields the connection's
//! `restClientConfig` lets it overwrite) and refuses with any other status; the refused client's
//! `info` is the answer's `reason` or the HTTP reason phrase. Decisions (`connect`,
//! `publishStream`, `playStream`, …) are made once, while the client waits; events
//! (`StreamStatusEvent`, …) are retried with backoff. Every delivery is kept in a log readable over
//! REST. The admission point and the event feed are in [`admission`]; the rules in [`policy`].

pub mod admission;
pub mod config;
pub mod policy;

use crate::sync::lock;
pub use config::{AppConfig, HooksConfig};
use policy::{ClientConfig, MethodPolicy, OnError, Policy};
use serde::Serialize;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one call to a back end came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 200, with the answer's JSON (the body sent, when the answer is not JSON).
    Allowed(Value),
    /// Any other status, with the reason the client is given.
    Refused(String),
    /// No usable answer (unreachable, timeout): the reason, as an HTTP reason phrase.
    Error(String),
}

/// One delivery, as `/rest-api/hooks/log` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// When it was sent (ISO 8601 UTC).
    pub time: String,
    /// The application.
    pub app_key: String,
    /// The hook.
    pub method: String,
    /// Where it went.
    pub url: String,
    /// The connection it was about.
    pub session_id: String,
    /// 1 for the first try.
    pub attempt: u32,
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// `allowed`, `refused` or `error`.
    pub outcome: &'static str,
    /// Why it was refused or failed.
    pub reason: String,
    /// How long the back end took.
    pub millis: u64,
}

/// The hook client, shared by every protocol.
pub struct Hooks {
    cfg: HooksConfig,
    node_id: String,
    http: reqwest::Client,
    /// `restClientConfig` of each connection, from its connect answer.
    sessions: Mutex<HashMap<String, ClientConfig>>,
    log: Mutex<VecDeque<Delivery>>,
    /// What each media session's events carry (see [`admission`]).
    pub(crate) media: Mutex<HashMap<String, admission::MediaCtx>>,
    /// Told of every delivery (the call history keeps them).
    sink: Mutex<Option<DeliverySink>>,
}

/// Where deliveries go besides the log.
pub type DeliverySink = Box<dyn Fn(Delivery) + Send + Sync>;

/// Now, as ISO 8601 UTC with milliseconds.
pub fn now_iso() -> String {
    iso(time::OffsetDateTime::now_utc())
}

/// A time as ISO 8601 UTC (`2026-12-03T08:49:29.123Z`).
pub fn iso(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

impl Hooks {
    /// A hook client for `cfg`; `node_id` goes in every body.
    pub fn new(cfg: HooksConfig, node_id: String) -> Arc<Self> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            // A back end is not followed elsewhere: its answer is the decision.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Arc::new(Self {
            cfg,
            node_id,
            http,
            sessions: Mutex::default(),
            log: Mutex::default(),
            media: Mutex::default(),
            sink: Mutex::default(),
        })
    }

    /// This server's node id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The settings.
    pub fn config(&self) -> &HooksConfig {
        &self.cfg
    }

    /// The application a client of `app_key` belongs to for hooks (WHIP and WHEP clients belong
    /// to the configured `whip_app`).
    pub fn app_of<'a>(&'a self, app_key: &'a str) -> &'a str {
        match app_key {
            // Clients that bring no application of their own.
            "whip" | "whep" | "rtsp" | "hls" => &self.cfg.whip_app,
            k => k,
        }
    }

    /// The URL `method` of `app_key` goes to, when that application has a back end for it.
    fn url(&self, app_key: &str, method: &str) -> Option<String> {
        if self.cfg.disabled {
            return None;
        }
        let app = self.cfg.apps.get(self.app_of(app_key))?;
        app.calls(method)
            .then(|| format!("{}/{method}", app.url().trim_end_matches('/')))
    }

    /// Whether `method` of `app_key` would call a back end at all.
    pub fn calls(&self, app_key: &str, method: &str) -> bool {
        self.url(app_key, method).is_some()
    }

    /// The policy a connection's `restClientConfig` sets for `method`.
    pub fn policy(&self, session_id: &str, method: &str) -> MethodPolicy {
        lock(&self.sessions)
            .get(session_id)
            .map(|c| c.method(method))
            .unwrap_or_default()
    }

    /// Forgets a connection that ended.
    pub fn forget(&self, session_id: &str) {
        lock(&self.sessions).remove(session_id);
    }

    /// Hands every delivery to `sink` from now on.
    pub fn on_delivery(&self, sink: DeliverySink) {
        *lock(&self.sink) = Some(sink);
    }

    /// The deliveries kept, oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.log).iter().cloned().collect()
    }

    /// One POST, logged.
    async fn call(
        &self,
        url: &str,
        app_key: &str,
        method: &str,
        session_id: &str,
        body: &Value,
        attempt: u32,
    ) -> Outcome {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let mut req = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if self.cfg.send_hash {
            req = req.header(
                reqwest::header::AUTHORIZATION,
                policy::signature(&self.cfg.secret_key, &bytes),
            );
        }
        let started = Instant::now();
        let (status, outcome) = match req.body(bytes).send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                // A back end's answer is small; a huge one is cut, not buffered whole.
                let text = read_limited(resp, 1 << 20).await;
                if status == 200 {
                    let answer = serde_json::from_str::<Value>(&text)
                        .ok()
                        .filter(Value::is_object)
                        .unwrap_or_else(|| body.clone());
                    (Some(status), Outcome::Allowed(answer))
                } else {
                    (
                        Some(status),
                        Outcome::Refused(policy::refusal_reason(status, &text)),
                    )
                }
            }
            Err(e) => {
                let reason = if e.is_timeout() {
                    "Gateway Timeout"
                } else {
                    "Bad Gateway"
                };
                if e.is_timeout() {
                    tracing::warn!(%url, %method, "REST hook timed out after {:?}", self.cfg.timeout);
                } else {
                    tracing::warn!(%url, %method, "REST hook failed: {e}");
                }
                (None, Outcome::Error(reason.into()))
            }
        };
        let (word, reason) = match &outcome {
            Outcome::Allowed(_) => ("allowed", String::new()),
            Outcome::Refused(r) => ("refused", r.clone()),
            Outcome::Error(r) => ("error", r.clone()),
        };
        let entry = Delivery {
            time: now_iso(),
            app_key: app_key.to_owned(),
            method: method.to_owned(),
            url: url.to_owned(),
            session_id: session_id.to_owned(),
            attempt,
            status,
            outcome: word,
            reason,
            millis: started.elapsed().as_millis() as u64,
        };
        if let Some(sink) = lock(&self.sink).as_ref() {
            sink(entry.clone());
        }
        let mut log = lock(&self.log);
        if log.len() >= self.cfg.log_size.max(1) {
            log.pop_front();
        }
        log.push_back(entry);
        outcome
    }

    /// The connect decision. Allowed: the connection's object, with what the back end may
    /// overwrite, and its `restClientConfig` kept for the connection's later hooks. Refused: the
    /// client's `info`. With no back end, allowed as is.
    pub async fn connect(
        &self,
        session_id: &str,
        app_key: &str,
        body: Value,
    ) -> Result<Value, String> {
        let Some(url) = self.url(app_key, "connect") else {
            return Ok(body);
        };
        match self
            .call(&url, app_key, "connect", session_id, &body, 1)
            .await
        {
            Outcome::Allowed(answer) => {
                let cfg = ClientConfig::from_answer(&answer);
                let mine = cfg.method("connect");
                lock(&self.sessions).insert(session_id.to_owned(), cfg);
                Ok(match mine.policy {
                    Policy::Overwrite => policy::overwrite(&body, &answer, &mine.overwrite),
                    _ => body,
                })
            }
            Outcome::Refused(reason) => Err(reason),
            // Nothing is known of the connection's wishes yet: the default, LOG, applies.
            Outcome::Error(_) => Ok(body),
        }
    }

    /// A decision (`publishStream`, `playStream`, `OnDataEvent`, …): the body as the back end let
    /// it be (overwritten where allowed), or the refusal's reason. Never retried.
    pub async fn decide(
        &self,
        session_id: &str,
        app_key: &str,
        method: &str,
        body: Value,
    ) -> Result<Value, String> {
        let Some(url) = self.url(app_key, method) else {
            return Ok(body);
        };
        let p = self.policy(session_id, method);
        if p.policy == Policy::Disable {
            return Ok(body);
        }
        let sent = policy::exclude(&body, &p.rest_exclude);
        match self.call(&url, app_key, method, session_id, &sent, 1).await {
            Outcome::Allowed(answer) => Ok(match p.policy {
                Policy::Overwrite => policy::overwrite(&body, &answer, &p.overwrite),
                _ => body,
            }),
            Outcome::Refused(reason) => Err(reason),
            Outcome::Error(reason) => match p.on_error {
                OnError::Fail => Err(reason),
                OnError::Log => Ok(body),
            },
        }
    }

    /// An event: delivered in the background, tried again with backoff while the back end cannot
    /// be reached. A refusal is an answer and is not retried.
    pub fn notify(self: &Arc<Self>, session_id: &str, app_key: &str, method: &str, body: Value) {
        let Some(url) = self.url(app_key, method) else {
            return;
        };
        let p = self.policy(session_id, method);
        if p.policy == Policy::Disable {
            return;
        }
        let body = policy::exclude(&body, &p.rest_exclude);
        let (hooks, app_key, method, session_id) = (
            self.clone(),
            app_key.to_owned(),
            method.to_owned(),
            session_id.to_owned(),
        );
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            for attempt in 1..=hooks.cfg.retries + 1 {
                match hooks
                    .call(&url, &app_key, &method, &session_id, &body, attempt)
                    .await
                {
                    Outcome::Error(_) if attempt <= hooks.cfg.retries => {
                        let wait = Duration::from_secs((1u64 << (attempt - 1).min(5)).min(30));
                        tokio::time::sleep(wait).await;
                    }
                    _ => break,
                }
            }
        });
    }

    /// A keep-alive for a media session: false when the back end wants it stopped (a refusal under
    /// `restOnError: FAIL`, as in WCS).
    pub async fn keep_alive(&self, session_id: &str, app_key: &str, body: Value) -> bool {
        let Some(url) = self.url(app_key, "StreamKeepAliveEvent") else {
            return true;
        };
        let p = self.policy(session_id, "StreamKeepAliveEvent");
        if p.policy == Policy::Disable {
            return true;
        }
        let sent = policy::exclude(&body, &p.rest_exclude);
        match self
            .call(&url, app_key, "StreamKeepAliveEvent", session_id, &sent, 1)
            .await
        {
            Outcome::Refused(_) => p.on_error != OnError::Fail,
            _ => true,
        }
    }
}

async fn read_limited(mut resp: reqwest::Response, limit: usize) -> String {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        out.extend_from_slice(&chunk);
        if out.len() >= limit {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_iso_utc_with_milliseconds() {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(1_796_287_769_123_000_000).unwrap();
        assert_eq!(super::iso(t), "2026-12-03T08:49:29.123Z");
    }
}
