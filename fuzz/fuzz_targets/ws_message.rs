//! A WebSocket signaling text frame, as the signaling session parses it.
//! The body is `streamgate::fuzzing::ws_message`, shared with `tests/fuzz_corpora.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamgate::fuzzing::ws_message(data));
