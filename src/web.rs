//! The web pages and the first-party Web SDK. They are built into the binary so the server runs from
//! a single file; `--web-dir DIR` serves them from disk instead (to customise pages, or while
//! developing them). Paths outside the known set are 404, so nothing else on disk is ever exposed.

use crate::server::AppState;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// (path under web/, content type, built-in content)
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../web/index.html"),
    ),
    (
        "publish.html",
        "text/html; charset=utf-8",
        include_str!("../web/publish.html"),
    ),
    (
        "play.html",
        "text/html; charset=utf-8",
        include_str!("../web/play.html"),
    ),
    (
        "history.html",
        "text/html; charset=utf-8",
        include_str!("../web/history.html"),
    ),
    (
        "try.html",
        "text/html; charset=utf-8",
        include_str!("../web/try.html"),
    ),
    (
        "sdk/streamgate.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/sdk/streamgate.js"),
    ),
    (
        "sdk/fallback.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/sdk/fallback.js"),
    ),
    (
        "sdk/streamgate.d.ts",
        "text/plain; charset=utf-8",
        include_str!("../web/sdk/streamgate.d.ts"),
    ),
];

/// Serves one known file, from `--web-dir` when set, else from the binary.
pub async fn file(state: &AppState, path: &str) -> Response {
    let Some((name, ctype, builtin)) = FILES.iter().find(|(n, _, _)| *n == path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let body = match &state.engine.config().web_dir {
        Some(dir) => match tokio::fs::read_to_string(dir.join(name)).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot read {}/{name}: {e}", dir.display());
                return (StatusCode::NOT_FOUND, "not found").into_response();
            }
        },
        None => (*builtin).to_owned(),
    };
    (
        [
            (header::CONTENT_TYPE, *ctype),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn page(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    file(&state, &name).await
}

async fn sdk(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    file(&state, &format!("sdk/{name}")).await
}

/// Routes for pages and the SDK (`/` itself is shared with the signaling upgrade, see `server`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/{name}", get(page))
        .route("/sdk/{name}", get(sdk))
}
