//! The seam between the engine and the protocols: what feeds a stream (a [`Source`]), what consumes
//! it for one viewer (an [`Output`]) and what consumes it once for every user of a format (a
//! [`SharedOutput`]). The engine holds these as trait objects and drops them when the stream, the
//! viewer or the last user ends; it never knows which protocol is behind one.

use std::any::Any;

/// Whatever feeds a stream: a WebRTC or RTMP publisher, a pull from another server; later an RTSP
/// camera, a file, a mixer, a SIP call. The engine keeps it as long as the stream is published and
/// drops it (stopping its pipeline) when the stream ends.
pub trait Source: Send + 'static {
    /// A short word for logs and metrics (`webrtc`, `flv`).
    fn kind(&self) -> &'static str;
}

/// What one viewer consumes, usually a pipeline of its own (a WebRTC viewer's webrtcbin). Kept by
/// the viewer's play handle; dropping it stops that viewer alone.
pub trait Output: Send + 'static {
    /// A short word for logs and metrics.
    fn kind(&self) -> &'static str;
}

/// What is made once per stream and format and shared by every user of it (the FLV feed behind
/// all RTMP viewers, later the fMP4 muxer behind HLS and MSE, the recorder, the snapshotter). Made
/// lazily with [`crate::engine::StreamMedia::shared_output`], dropped with its last user.
pub trait SharedOutput: Any + Send + Sync + 'static {
    /// A short word for logs and metrics (`flv`).
    fn kind(&self) -> &'static str;
    /// Bytes queued for its users and messages dropped for users that fell behind, when it keeps
    /// such figures.
    fn backlog(&self) -> (u64, u64) {
        (0, 0)
    }
}
