//! The `hooks` group: the delivery log of REST hooks (`/rest-api/hooks/find_all`), newest first,
//! filtered by hook name or outcome.

use super::{body, ApiError};
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/rest-api/hooks/find_all", post(find_all).get(find_all))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Filter {
    method: Option<String>,
    outcome: Option<String>,
    session_id: Option<String>,
    limit: Option<usize>,
}

async fn find_all(State(state): State<AppState>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let f: Filter = body(&bytes)?;
    let mut out: Vec<_> = state
        .hooks
        .deliveries()
        .into_iter()
        .rev()
        .filter(|d| f.method.as_deref().is_none_or(|m| d.method == m))
        .filter(|d| f.outcome.as_deref().is_none_or(|o| d.outcome == o))
        .filter(|d| f.session_id.as_deref().is_none_or(|s| d.session_id == s))
        .collect();
    out.truncate(f.limit.unwrap_or(100));
    Ok(Json(serde_json::to_value(out).unwrap_or(Value::Null)))
}
