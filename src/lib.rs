//! streamgate: a media server in Rust that builds and rewires GStreamer pipelines per stream and
//! speaks WCS-compatible WebSocket signaling and REST. See the README for what works today.

#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod api;
pub mod auth;
pub mod bench;
pub mod client;
pub mod config;
pub mod engine;
pub mod fuzzing;
pub mod history;
pub mod hooks;
pub mod listen;
pub mod ops;
pub mod protocols;
pub mod redact;
pub mod rooms;
pub mod server;
pub mod signaling;
pub mod sync;
pub mod telemetry;
pub mod web;

pub use config::Config;
pub use protocols::{rtmp, webrtc};
pub use server::{start, App};
