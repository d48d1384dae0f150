//! A JSON body POSTed to a REST route through the real router; asserts no 5xx.
//! The body is `streamgate::fuzzing::rest_body`, shared with `tests/fuzz_corpora.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamgate::fuzzing::rest_body(data));
