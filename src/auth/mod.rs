//! Access control without a back end: REST API keys ([`api_key_ok`]) and signed, expiring tokens
//! for publish, play and room join ([`Tokens`]). A token is a JWT (HS256, the server's
//! `auth.secret`) whose claims name the login, the room, the role (interviewer, candidate,
//! observer; publisher or viewer outside rooms), optionally one stream, and the expiry. Clients
//! present it as `custom.token` of the connection or the stream (WCS Web SDK and ours),
//! `?token=` on an RTMP URL, or the bearer token of WHIP/WHEP. Observers and viewers only watch.

use crate::engine::{Action, Admission, AdmissionRequest, Admitted, BoxFuture, EngineError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The `[auth]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The HMAC key tokens are signed with. Unset: no tokens, everyone is admitted (unless hooks
    /// decide otherwise).
    pub secret: Option<String>,
    /// With a secret: clients must present a token to connect, publish, play and join. False
    /// checks only the tokens that are presented.
    pub require_token: bool,
    /// How long a minted token lasts, in seconds, unless the request says otherwise.
    #[serde(with = "crate::config::secs")]
    pub token_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            secret: None,
            require_token: true,
            token_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs an interview: publishes, plays, records, invites.
    Interviewer,
    /// Takes part: publishes and plays.
    Candidate,
    /// Watches only.
    Observer,
    /// Publishes and plays, outside rooms.
    Publisher,
    /// Plays only, outside rooms.
    Viewer,
}

impl Role {
    /// Whether this role may publish.
    pub fn publishes(self) -> bool {
        !matches!(self, Role::Observer | Role::Viewer)
    }
}

/// A token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The login (shown in rooms, recorded in the history).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub: String,
    /// The only room it admits to, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// What it may do.
    pub role: Role,
    /// The only stream it may publish or play, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    #[serde(default)]
    pub iat: u64,
}

/// Why a token was refused (logged; clients are told WCS's "Restricted access").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// None was presented where one is required.
    #[error("no token")]
    Missing,
    /// Bad signature, bad format or expired.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// For another room.
    #[error("the token is for another room")]
    WrongRoom,
    /// For another stream.
    #[error("the token is for another stream")]
    WrongStream,
    /// The role may not publish.
    #[error("the token's role may not publish")]
    WatchOnly,
}

/// WCS's `info` for a refusal on access grounds.
pub const RESTRICTED: &str = "Restricted access";

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Mints and checks tokens, and remembers which connection presented which.
pub struct Tokens {
    cfg: AuthConfig,
    sessions: Mutex<HashMap<String, Claims>>,
}

impl Tokens {
    /// The token authority for `cfg`.
    pub fn new(cfg: AuthConfig) -> Arc<Self> {
        Arc::new(Self {
            cfg,
            sessions: Mutex::default(),
        })
    }

    /// Whether tokens are in use at all (a secret is configured).
    pub fn enabled(&self) -> bool {
        self.cfg.secret.as_deref().is_some_and(|s| !s.is_empty())
    }

    /// Whether a client without a token is refused.
    pub fn required(&self) -> bool {
        self.enabled() && self.cfg.require_token
    }

    fn key(&self) -> &[u8] {
        self.cfg.secret.as_deref().unwrap_or("").as_bytes()
    }

    /// A signed token for `claims` (their `exp` as given, `iat` now). Errors when there is no secret.
    pub fn mint(&self, mut claims: Claims) -> Result<String, TokenError> {
        if !self.enabled() {
            return Err(TokenError::Invalid("the server has no auth.secret".into()));
        }
        claims.iat = now_secs();
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(self.key()),
        )
        .map_err(|e| TokenError::Invalid(e.to_string()))
    }

    /// The expiry for a token that lasts `ttl` (the configured default when `None`).
    pub fn expiry(&self, ttl: Option<Duration>) -> u64 {
        now_secs() + ttl.unwrap_or(self.cfg.token_ttl).as_secs()
    }

    /// The claims of a valid token: right signature, HS256 only, not expired.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if !self.enabled() {
            return Err(TokenError::Invalid("the server has no auth.secret".into()));
        }
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.leeway = 5;
        v.validate_exp = true;
        v.required_spec_claims = ["exp".to_owned()].into_iter().collect();
        jsonwebtoken::decode::<Claims>(
            token,
            &jsonwebtoken::DecodingKey::from_secret(self.key()),
            &v,
        )
        .map(|d| d.claims)
        .map_err(|e| TokenError::Invalid(e.to_string()))
    }

    /// A connection presents `token` (or none): its claims are kept for its later requests.
    pub fn bind(
        &self,
        session_id: &str,
        token: Option<&str>,
    ) -> Result<Option<Claims>, TokenError> {
        if !self.enabled() {
            return Ok(None);
        }
        let claims = match token {
            Some(t) => Some(self.verify(t)?),
            None if self.required() => return Err(TokenError::Missing),
            None => None,
        };
        if let (Some(c), Ok(mut s)) = (&claims, self.sessions.lock()) {
            s.insert(session_id.to_owned(), c.clone());
        }
        Ok(claims)
    }

    /// Forgets a connection that ended.
    pub fn forget(&self, session_id: &str) {
        if let Ok(mut s) = self.sessions.lock() {
            s.remove(session_id);
        }
    }

    /// The claims a connection presented.
    pub fn of(&self, session_id: &str) -> Option<Claims> {
        self.sessions.lock().ok()?.get(session_id).cloned()
    }

    /// Whether a connection may join `room`.
    pub fn may_join(&self, session_id: &str, room: &str) -> Result<(), TokenError> {
        if !self.enabled() {
            return Ok(());
        }
        match self.of(session_id) {
            Some(c) => room_ok(&c, room),
            None if self.required() => Err(TokenError::Missing),
            None => Ok(()),
        }
    }

    /// The decision on one publish or play.
    fn check(&self, req: &AdmissionRequest) -> Result<(), TokenError> {
        // Streams the server makes itself (mixers, pulls, transcodes) were asked for over REST.
        if !self.enabled() || req.client.is_none() {
            return Ok(());
        }
        let presented = token_in(&req.custom);
        let claims = match presented {
            Some(t) => Some(self.verify(&t)?),
            None => self.of(&req.session_id),
        };
        let Some(c) = claims else {
            return if self.required() {
                Err(TokenError::Missing)
            } else {
                Ok(())
            };
        };
        allowed(&c, req.action, &req.name, room_in(&req.custom).as_deref())
    }
}

/// Whether `claims` admit to `room`.
pub fn room_ok(claims: &Claims, room: &str) -> Result<(), TokenError> {
    match &claims.room {
        Some(r) if r != room => Err(TokenError::WrongRoom),
        _ => Ok(()),
    }
}

/// Whether `claims` allow `action` on stream `name` (published in `room`, when it says so).
pub fn allowed(
    claims: &Claims,
    action: Action,
    name: &str,
    room: Option<&str>,
) -> Result<(), TokenError> {
    if action == Action::Publish && !claims.role.publishes() {
        return Err(TokenError::WatchOnly);
    }
    if let Some(s) = &claims.stream {
        if s != name {
            return Err(TokenError::WrongStream);
        }
    }
    if let (Some(want), Some(r)) = (&claims.room, room) {
        if want != r {
            return Err(TokenError::WrongRoom);
        }
    }
    // A room token publishing outside any room: only its MCU name (`login#room`) or a stream
    // whose room is named in `custom` is its own.
    if let (Some(want), None) = (&claims.room, room) {
        if action == Action::Publish && !name.ends_with(&format!("#{want}")) {
            return Err(TokenError::WrongRoom);
        }
    }
    Ok(())
}

/// The token a request carries: `custom.token`, or `?token=` of an RTMP URL.
fn token_in(custom: &Value) -> Option<String> {
    custom
        .get("token")
        .or_else(|| custom.get("params").and_then(|p| p.get("token")))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// The room a stream is published in, as the room application names it in `custom.name`.
fn room_in(custom: &Value) -> Option<String> {
    custom
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Token checks at the admission point.
pub struct TokenAdmission(pub Arc<Tokens>);

impl Admission for TokenAdmission {
    fn admit(&self, req: AdmissionRequest) -> BoxFuture<Result<Admitted, EngineError>> {
        let r = self.0.check(&req);
        Box::pin(async move {
            r.map(|_| Admitted::default()).map_err(|e| {
                tracing::info!(stream = %crate::redact::Escaped(&req.name), provider = req.provider, "refused: {e}");
                EngineError::Denied(RESTRICTED.into())
            })
        })
    }
}

/// Whether `authorization` (the header's value) carries one of `keys`: `Bearer KEY`, or HTTP Basic
/// with KEY as the password (or as `user:password` whole).
pub fn api_key_ok(keys: &[String], authorization: Option<&str>) -> bool {
    use base64::Engine as _;
    let Some(h) = authorization.map(str::trim) else {
        return false;
    };
    let (scheme, value) = h.split_once(' ').unwrap_or((h, ""));
    let value = value.trim();
    let presented: Vec<String> = if scheme.eq_ignore_ascii_case("bearer") {
        vec![value.to_owned()]
    } else if scheme.eq_ignore_ascii_case("basic") {
        match base64::engine::general_purpose::STANDARD
            .decode(value)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
        {
            Some(pair) => {
                let pass = pair
                    .split_once(':')
                    .map(|(_, p)| p.to_owned())
                    .unwrap_or_default();
                vec![pair, pass]
            }
            None => vec![],
        }
    } else {
        vec![]
    };
    keys.iter().filter(|k| !k.is_empty()).any(|k| {
        presented
            .iter()
            .any(|p| constant_eq(p.as_bytes(), k.as_bytes()))
    })
}

/// Compares without leaking, through timing, how much of a key was right.
fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Arc<Tokens> {
        Tokens::new(AuthConfig {
            secret: Some("s3cret".into()),
            ..Default::default()
        })
    }

    fn claims(role: Role, room: Option<&str>, exp: u64) -> Claims {
        Claims {
            sub: "ann".into(),
            room: room.map(str::to_owned),
            role,
            stream: None,
            exp,
            iat: 0,
        }
    }

    #[test]
    fn a_minted_token_verifies_and_a_tampered_or_expired_one_does_not() {
        let t = tokens();
        let c = claims(Role::Candidate, Some("int-1"), t.expiry(None));
        let tok = t.mint(c.clone()).unwrap();
        assert_eq!(t.verify(&tok).unwrap().room.as_deref(), Some("int-1"));
        let other = Tokens::new(AuthConfig {
            secret: Some("other".into()),
            ..Default::default()
        });
        assert!(other.verify(&tok).is_err());
        let expired = t
            .mint(claims(Role::Candidate, None, now_secs() - 60))
            .unwrap();
        assert!(matches!(t.verify(&expired), Err(TokenError::Invalid(_))));
        assert!(t.verify("not.a.token").is_err());
        // An unsigned token ("alg": "none") is never accepted.
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJyb2xlIjoiaW50ZXJ2aWV3ZXIiLCJleHAiOjQxMDI0NDQ4MDB9.";
        assert!(t.verify(none).is_err());
    }

    #[test]
    fn roles_rooms_and_streams_limit_what_a_token_allows() {
        let obs = claims(Role::Observer, Some("r"), 0);
        assert_eq!(
            allowed(&obs, Action::Publish, "x", Some("r")),
            Err(TokenError::WatchOnly)
        );
        assert_eq!(allowed(&obs, Action::Play, "x", Some("r")), Ok(()));
        let cand = claims(Role::Candidate, Some("r"), 0);
        assert_eq!(
            allowed(&cand, Action::Publish, "x", Some("other")),
            Err(TokenError::WrongRoom)
        );
        assert_eq!(allowed(&cand, Action::Publish, "ann#r", None), Ok(()));
        assert_eq!(
            allowed(&cand, Action::Publish, "ann#q", None),
            Err(TokenError::WrongRoom)
        );
        assert_eq!(room_ok(&cand, "r"), Ok(()));
        assert_eq!(room_ok(&cand, "q"), Err(TokenError::WrongRoom));
        let one = Claims {
            stream: Some("cam1".into()),
            ..claims(Role::Viewer, None, 0)
        };
        assert_eq!(
            allowed(&one, Action::Play, "cam2", None),
            Err(TokenError::WrongStream)
        );
        assert_eq!(allowed(&one, Action::Play, "cam1", None), Ok(()));
    }

    #[test]
    fn api_keys_come_as_bearer_or_basic() {
        use base64::Engine as _;
        let keys = vec!["k1".to_owned()];
        assert!(api_key_ok(&keys, Some("Bearer k1")));
        assert!(!api_key_ok(&keys, Some("Bearer k2")));
        let basic = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        assert!(api_key_ok(&keys, Some(&basic("admin:k1"))));
        assert!(!api_key_ok(&keys, Some(&basic("admin:k"))));
        assert!(!api_key_ok(&keys, None));
        assert!(!api_key_ok(&[String::new()], Some("Bearer ")));
    }
}
