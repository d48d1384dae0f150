//! The `history` group: calls (rooms from first join to last leave, with participants,
//! recordings and the site's results) and streams, from the call history. Times are ISO 8601 UTC.

use super::{body, ApiError};
use crate::history::store::CallFilter;
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/rest-api/history/calls/find_all", post(calls).get(calls))
        .route("/rest-api/history/calls/find", post(call))
        .route("/rest-api/history/calls/set_results", post(set_results))
        .route(
            "/rest-api/history/streams/find_all",
            post(streams).get(streams),
        )
}

fn history(state: &AppState) -> Result<&crate::history::History, ApiError> {
    state
        .history
        .as_deref()
        .ok_or_else(|| ApiError::Unavailable("The call history is disabled".into()))
}

fn db(e: sqlx::Error) -> ApiError {
    ApiError::Internal(format!("history database: {e}"))
}

/// An ISO 8601 time (`2026-12-03T09:00:00Z`, with or without fractions and offsets) as ms.
fn time_ms(field: &str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    let Some(t) = v else { return Ok(None) };
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .map(|d| Some((d.unix_timestamp_nanos() / 1_000_000) as i64))
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "{field} must be an ISO 8601 time such as 2026-12-03T09:00:00Z"
            ))
        })
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CallsReq {
    room: Option<String>,
    login: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn calls(State(state): State<AppState>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let r: CallsReq = body(&bytes)?;
    let f = CallFilter {
        room: r.room,
        login: r.login,
        from: time_ms("from", &r.from)?,
        to: time_ms("to", &r.to)?,
        limit: r.limit.unwrap_or(50).clamp(1, 1000),
        offset: r.offset.unwrap_or(0).max(0),
    };
    let calls = history(&state)?.store().calls(&f).await.map_err(db)?;
    Ok(Json(Value::Array(calls)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Id {
    id: String,
}

async fn call(State(state): State<AppState>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let r: Id = body(&bytes)?;
    history(&state)?
        .store()
        .call(&r.id)
        .await
        .map_err(db)?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("Call not found".into()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Results {
    id: String,
    results: Value,
}

/// The largest results object kept with a call.
const MAX_RESULTS: usize = 64 * 1024;

async fn set_results(State(state): State<AppState>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let r: Results = body(&bytes)?;
    if !r.results.is_object() {
        return Err(ApiError::BadRequest("results must be a JSON object".into()));
    }
    if r.results.to_string().len() > MAX_RESULTS {
        return Err(ApiError::BadRequest(format!(
            "results must be at most {MAX_RESULTS} bytes"
        )));
    }
    let store = history(&state)?.store();
    if !store.set_results(&r.id, &r.results).await.map_err(db)? {
        return Err(ApiError::NotFound("Call not found".into()));
    }
    Ok(Json(json!({ "id": r.id, "results": r.results })))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StreamsReq {
    name: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<i64>,
}

async fn streams(State(state): State<AppState>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let r: StreamsReq = body(&bytes)?;
    let rows = history(&state)?
        .store()
        .streams(
            r.name.as_deref(),
            time_ms("from", &r.from)?,
            time_ms("to", &r.to)?,
            r.limit.unwrap_or(100).clamp(1, 1000),
        )
        .await
        .map_err(db)?;
    Ok(Json(Value::Array(rows)))
}
