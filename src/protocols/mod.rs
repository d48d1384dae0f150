//! The protocols, each in a folder of its own: how a stream gets in (a source) and out (an output)
//! over the wire. They speak to the engine only through its seam (publish, play, shared outputs,
//! jobs, events), so adding one is one folder plus a line where listeners and routers are composed.

pub mod hls;
pub mod mse;
pub mod rtmp;
pub mod rtsp;
pub mod supervised;
pub mod vod;
pub mod webrtc;
