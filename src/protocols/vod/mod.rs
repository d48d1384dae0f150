//! Files as streams: `vod://FILE` plays a file of the media folder from its start for one viewer,
//! `vod-live://FILE` is one shared live broadcast of it. [`paths`] turns what a client names into a
//! file under the media (or records) folder, and refuses anything that would leave it.

pub mod paths;
