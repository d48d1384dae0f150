//! FLV and Annex B bytes through every parser and builder in rtmp::flv, with round trips.
//! The body is `streamgate::fuzzing::flv`, shared with `tests/fuzz_corpora.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamgate::fuzzing::flv(data));
