//! `/health` (200 once the server is ready, 503 while it stops) and Prometheus `/metrics`: the
//! engine's counts (streams, sessions, pipelines, bridges, shared outputs, jobs) and the process's
//! threads, memory and file descriptors, which the leak tests read.

use crate::server::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
}

async fn health(State(state): State<AppState>) -> Response {
    if *state.shutdown.borrow() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
    } else {
        (StatusCode::OK, "ok").into_response()
    }
}

fn proc_status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(field).map(|v| {
                    v.trim()
                        .split(' ')
                        .next()
                        .unwrap_or("0")
                        .parse()
                        .unwrap_or(0)
                })
            })
        })
        .unwrap_or(0)
}

/// Open file descriptors of the process: a leak of sockets or pipes shows here first.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

async fn metrics(State(state): State<AppState>) -> Response {
    let c = state.engine.counts();
    let (hls_renditions, hls_players, hls_bytes) = state.hls.counts();
    let text = format!(
        "# HELP streamgate_streams Streams being published.\n# TYPE streamgate_streams gauge\nstreamgate_streams {}\n\
# HELP streamgate_media_sessions Publishers and viewers.\n# TYPE streamgate_media_sessions gauge\nstreamgate_media_sessions {}\n\
# HELP streamgate_pipelines GStreamer pipelines alive.\n# TYPE streamgate_pipelines gauge\nstreamgate_pipelines {}\n\
# HELP streamgate_bridges Codec bridges running.\n# TYPE streamgate_bridges gauge\nstreamgate_bridges {}\n\
# HELP streamgate_shared_outputs Outputs made once per stream and format (the FLV feed of RTMP viewers).\n# TYPE streamgate_shared_outputs gauge\nstreamgate_shared_outputs {}\n\
# HELP streamgate_output_queued_bytes Bytes queued in shared outputs for their viewers.\n# TYPE streamgate_output_queued_bytes gauge\nstreamgate_output_queued_bytes {}\n\
# HELP streamgate_output_dropped_messages Messages skipped for viewers that fell behind.\n# TYPE streamgate_output_dropped_messages counter\nstreamgate_output_dropped_messages {}\n\
# HELP streamgate_jobs Jobs the server runs (pulls, WHIP/WHEP resources, recordings).\n# TYPE streamgate_jobs gauge\nstreamgate_jobs {}\n\
# HELP streamgate_signaling_sessions Signaling connections past the handshake.\n# TYPE streamgate_signaling_sessions gauge\nstreamgate_signaling_sessions {}\n\
# HELP streamgate_hls_renditions HLS renditions being packaged (a stream in one container).\n# TYPE streamgate_hls_renditions gauge\nstreamgate_hls_renditions {}\n\
# HELP streamgate_hls_players HLS players (by token, or else by address) seen within the idle timeout.\n# TYPE streamgate_hls_players gauge\nstreamgate_hls_players {}\n\
# HELP streamgate_hls_bytes Bytes of segments, parts and init sections held in memory.\n# TYPE streamgate_hls_bytes gauge\nstreamgate_hls_bytes {}\n\
# HELP process_threads Threads of the server process.\n# TYPE process_threads gauge\nprocess_threads {}\n\
# HELP process_resident_memory_bytes Resident memory.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}\n\
# HELP process_open_fds Open file descriptors (sockets, pipes, files).\n# TYPE process_open_fds gauge\nprocess_open_fds {}\n",
        c.streams,
        c.media_sessions,
        c.pipelines,
        c.bridges,
        c.shared_outputs,
        c.output_queued_bytes,
        c.output_dropped_messages,
        c.jobs,
        state.sessions.len(),
        hls_renditions,
        hls_players,
        hls_bytes,
        proc_status("Threads:"),
        proc_status("VmRSS:") * 1024,
        open_fds(),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
