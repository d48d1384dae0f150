//! The `token` group: signed tokens for publish, play and room join. `mint` is for the site's back
//! end (behind the API key); `invite` lets the holder of an interviewer's token make candidate or
//! observer tokens for the same room, so the interview page can hand out invite links.

use super::{body, ApiError};
use crate::auth::{Claims, Role};
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/rest-api/token/mint", post(mint))
        .route("/rest-api/token/invite", post(invite))
}

/// The longest a token may be made to last: a week.
const MAX_TTL: u64 = 7 * 24 * 3600;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Mint {
    role: Role,
    #[serde(default)]
    login: String,
    room: Option<String>,
    stream: Option<String>,
    /// Seconds.
    ttl: Option<u64>,
}

fn issue(state: &AppState, claims: Claims) -> Result<Json<Value>, ApiError> {
    let token = state
        .tokens
        .mint(claims.clone())
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let expires = time::OffsetDateTime::from_unix_timestamp(claims.exp as i64)
        .map(crate::hooks::iso)
        .unwrap_or_default();
    Ok(Json(json!({
        "token": token,
        "role": claims.role,
        "login": claims.sub,
        "room": claims.room,
        "stream": claims.stream,
        "expiresAt": expires,
    })))
}

fn ttl(secs: Option<u64>) -> Result<Option<Duration>, ApiError> {
    match secs {
        Some(0) => Err(ApiError::BadRequest("ttl must be at least 1 second".into())),
        Some(s) if s > MAX_TTL => Err(ApiError::BadRequest(format!(
            "ttl must be at most {MAX_TTL} seconds"
        ))),
        s => Ok(s.map(Duration::from_secs)),
    }
}

async fn mint(State(state): State<AppState>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let m: Mint = body(&bytes)?;
    let claims = Claims {
        sub: m.login,
        room: m.room,
        role: m.role,
        stream: m.stream,
        exp: state.tokens.expiry(ttl(m.ttl)?),
        iat: 0,
    };
    issue(&state, claims)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Invite {
    /// The interviewer's own token.
    token: String,
    /// `candidate` or `observer`.
    role: Role,
    #[serde(default)]
    login: String,
    ttl: Option<u64>,
}

async fn invite(State(state): State<AppState>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let i: Invite = body(&bytes)?;
    let host = state
        .tokens
        .verify(&i.token)
        .map_err(|e| ApiError::Forbidden(format!("{}: {e}", crate::auth::RESTRICTED)))?;
    if host.role != Role::Interviewer || host.room.is_none() {
        return Err(ApiError::Forbidden(
            "Only an interviewer's room token may invite".into(),
        ));
    }
    if !matches!(i.role, Role::Candidate | Role::Observer) {
        return Err(ApiError::BadRequest(
            "An invite is for a candidate or an observer".into(),
        ));
    }
    // An invite never outlives the token it was made with.
    let exp = state.tokens.expiry(ttl(i.ttl)?).min(host.exp);
    issue(
        &state,
        Claims {
            sub: i.login,
            room: host.room,
            role: i.role,
            stream: None,
            exp,
            iat: 0,
        },
    )
}
