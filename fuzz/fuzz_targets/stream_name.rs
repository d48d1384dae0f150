//! RTMP application names and stream keys: split, query parameters, name validation.
//! The body is `streamgate::fuzzing::stream_name`, shared with `tests/fuzz_corpora.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamgate::fuzzing::stream_name(data));
