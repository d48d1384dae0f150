//! RTSP: cameras pulled into streams ([`pull`]); the RTSP server comes next.

pub mod pull;
