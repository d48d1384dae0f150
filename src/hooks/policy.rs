//! What a back end's answers mean, as pure functions: the per-method `restClientConfig` a connect
//! answer sets (WCS's `restOnError`, `restPolicy`, `restOverwrite`, `restExclude`,
//! `clientExclude`), the reason a refusal gives the client, the fields an OVERWRITE answer may
//! change, and the `Authorization: WCS <HMAC-MD5>` signature. Kept apart from the HTTP calls so
//! each rule is unit-tested.

use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// What happens when the back end cannot be reached, times out or answers garbage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Logged; the action goes on (WCS's default).
    Log,
    /// The action is refused.
    Fail,
}

/// Whether and how a method's answer is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The back end is called and decides, but its answer changes nothing (the default).
    Notify,
    /// Fields listed in `restOverwrite` are taken from the answer.
    Overwrite,
    /// The back end is not called.
    Disable,
}

/// The settings for one hook method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodPolicy {
    /// On an interaction error.
    pub on_error: OnError,
    /// Call, overwrite or skip.
    pub policy: Policy,
    /// Fields the answer may overwrite.
    pub overwrite: Vec<String>,
    /// Fields not sent to the back end.
    pub rest_exclude: Vec<String>,
    /// Fields not sent to the client.
    pub client_exclude: Vec<String>,
}

impl Default for MethodPolicy {
    fn default() -> Self {
        Self {
            on_error: OnError::Log,
            policy: Policy::Notify,
            overwrite: Vec::new(),
            rest_exclude: Vec::new(),
            client_exclude: Vec::new(),
        }
    }
}

/// A connection's `restClientConfig`: a policy per hook name, the default for the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientConfig {
    methods: HashMap<String, MethodPolicy>,
}

fn list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_str)
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl ClientConfig {
    /// Reads `restClientConfig` from a connect answer; anything unreadable keeps the defaults.
    pub fn from_answer(answer: &Value) -> Self {
        let mut methods = HashMap::new();
        if let Some(obj) = answer.get("restClientConfig").and_then(Value::as_object) {
            for (method, cfg) in obj {
                let word = |k: &str| {
                    cfg.get(k)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_ascii_uppercase()
                };
                let policy = MethodPolicy {
                    on_error: if word("restOnError") == "FAIL" {
                        OnError::Fail
                    } else {
                        OnError::Log
                    },
                    policy: match word("restPolicy").as_str() {
                        "OVERWRITE" => Policy::Overwrite,
                        "DISABLE" => Policy::Disable,
                        _ => Policy::Notify,
                    },
                    overwrite: list(cfg.get("restOverwrite")),
                    rest_exclude: list(cfg.get("restExclude")),
                    client_exclude: list(cfg.get("clientExclude")),
                };
                methods.insert(method.clone(), policy);
            }
        }
        Self { methods }
    }

    /// The policy for `method`.
    pub fn method(&self, method: &str) -> MethodPolicy {
        self.methods.get(method).cloned().unwrap_or_default()
    }
}

/// `body` without the fields in `fields` (top level, as WCS's lists name them).
pub fn exclude(body: &Value, fields: &[String]) -> Value {
    match body {
        Value::Object(o) if !fields.is_empty() => Value::Object(
            o.iter()
                .filter(|(k, _)| !fields.iter().any(|f| f == *k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Map<_, _>>(),
        ),
        other => other.clone(),
    }
}

/// `body` with the fields listed in `fields` taken from `answer` (where the answer has them).
pub fn overwrite(body: &Value, answer: &Value, fields: &[String]) -> Value {
    let mut out = body.clone();
    if let (Some(o), Some(a)) = (out.as_object_mut(), answer.as_object()) {
        for f in fields {
            if let Some(v) = a.get(f) {
                o.insert(f.clone(), v.clone());
            }
        }
    }
    out
}

/// The `info` a refused client gets: the `reason` of a `{status, reason}` answer, else the HTTP
/// reason phrase ("Forbidden"), else the status code.
pub fn refusal_reason(status: u16, body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        if let Some(r) = v.get("reason").and_then(Value::as_str) {
            if !r.is_empty() {
                return r.chars().take(256).collect();
            }
        }
    }
    axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("HTTP {status}"))
}

/// The value of `Authorization` for a signed hook: `WCS <hex HMAC-MD5 of the body>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC accepts a key of any length, so this cannot fail.
    let mut mac = match Hmac::<md5::Md5>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("WCS {}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rest_client_config_is_read_per_method_with_defaults_for_the_rest() {
        let c = ClientConfig::from_answer(&json!({"restClientConfig": {
            "publishStream": {"restOnError": "FAIL", "restPolicy": "OVERWRITE",
                              "restOverwrite": "name, record", "restExclude": "sdp",
                              "clientExclude": "custom"},
            "StreamKeepAliveEvent": {"restPolicy": "DISABLE"}}}));
        let p = c.method("publishStream");
        assert_eq!(p.on_error, OnError::Fail);
        assert_eq!(p.policy, Policy::Overwrite);
        assert_eq!(p.overwrite, ["name", "record"]);
        assert_eq!(p.rest_exclude, ["sdp"]);
        assert_eq!(p.client_exclude, ["custom"]);
        assert_eq!(c.method("StreamKeepAliveEvent").policy, Policy::Disable);
        assert_eq!(c.method("playStream"), MethodPolicy::default());
        assert_eq!(
            ClientConfig::from_answer(&json!("garbage")),
            ClientConfig::default()
        );
    }

    #[test]
    fn overwrite_takes_only_listed_fields_and_exclude_drops_them() {
        let body = json!({"name": "a", "record": false, "sdp": "v=0"});
        let answer = json!({"name": "b", "record": true, "sdp": "evil"});
        let out = overwrite(&body, &answer, &["name".into()]);
        assert_eq!(out, json!({"name": "b", "record": false, "sdp": "v=0"}));
        assert_eq!(
            exclude(&body, &["sdp".into()]),
            json!({"name": "a", "record": false})
        );
    }

    #[test]
    fn the_reason_is_the_answers_reason_or_the_status_phrase() {
        assert_eq!(
            refusal_reason(403, r#"{"status":403,"reason":"Wrong credentials"}"#),
            "Wrong credentials"
        );
        assert_eq!(refusal_reason(403, "<html>nope</html>"), "Forbidden");
        assert_eq!(refusal_reason(401, ""), "Unauthorized");
        assert_eq!(refusal_reason(599, ""), "HTTP 599");
    }

    #[test]
    fn the_signature_is_hex_hmac_md5() {
        // RFC 2104's test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "WCS 750c783e6ab0b503eaa86e310a5db738"
        );
    }
}
