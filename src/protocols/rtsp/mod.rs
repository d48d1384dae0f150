//! RTSP: cameras pulled into streams ([`pull`]), and the RTSP server every stream plays from
//! (and RTSP publishers publish to) ([`server`], its mounts in [`media`]). What either side
//! carries is in [`tracks`].

mod ffi;
pub mod media;
pub mod pull;
pub mod server;
pub mod tracks;
