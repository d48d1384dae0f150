//! An SDP offer, as the engine analyzes it before building a WebRTC pipeline.
//! The body is `streamgate::fuzzing::sdp_offer`, shared with `tests/fuzz_corpora.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamgate::fuzzing::sdp_offer(data));
