//! Operations that consume streams: recording a stream's tracks as they are ([`record`]), taking
//! its current picture ([`snapshot`]), mixing streams into a new one ([`mixer`], fed by each
//! stream's shared decoder, [`decoded`]), and what they need around them: file names and rotation
//! settings ([`naming`], pure) and describing the records folder ([`listing`]).
//! Each operation reads the stream's producers like any viewer does and runs in its own pipeline,
//! so it can fail without touching the stream.

pub mod decoded;
pub mod interview;
pub mod listing;
pub mod mixer;
pub mod naming;
pub mod record;
pub mod service;
pub mod snapshot;
