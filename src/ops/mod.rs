//! Operations that consume streams and write files: recording a stream's tracks as they are
//! ([`record`]), taking its current picture ([`snapshot`]), and what both need around them: file
//! names and rotation settings ([`naming`], pure) and describing the records folder ([`listing`]).
//! Each operation reads the stream's producers like any viewer does and runs in its own pipeline,
//! so it can fail without touching the stream.

pub mod listing;
pub mod naming;
pub mod record;
pub mod service;
pub mod snapshot;
