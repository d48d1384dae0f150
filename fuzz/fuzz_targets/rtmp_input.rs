//! Bytes from an RTMP peer: handshake, server session and AMF0, as the RTMP server runs them.
//! The body is `streamgate::fuzzing::rtmp_input`, shared with `tests/fuzz_corpora.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamgate::fuzzing::rtmp_input(data));
