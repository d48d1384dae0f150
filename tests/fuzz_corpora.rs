//! Replays every input in `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through the
//! same entry points the libFuzzer targets call (`streamgate::fuzzing`), so CI keeps what fuzzing
//! found without cargo-fuzz or a nightly toolchain. A panic names the input that caused it.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::Path;
use streamgate::fuzzing;

/// Runs `entry` on every stored input of `target`; fails if there are none.
fn replay(target: &str, entry: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs = Vec::new();
    for kind in ["corpus", "regressions"] {
        let Ok(dir) = std::fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        inputs.extend(dir.map(|e| e.expect("readable directory").path()));
    }
    inputs.sort();
    assert!(!inputs.is_empty(), "no stored inputs for {target}");
    for path in &inputs {
        let data = std::fs::read(path).expect("readable input");
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| entry(&data))) {
            eprintln!("{target}: {} fails", path.display());
            resume_unwind(panic);
        }
    }
}

#[test]
fn ws_message() {
    replay("ws_message", fuzzing::ws_message);
}

#[test]
fn sdp_offer() {
    replay("sdp_offer", fuzzing::sdp_offer);
}

#[test]
fn rtmp_input() {
    replay("rtmp_input", fuzzing::rtmp_input);
}

#[test]
fn flv() {
    replay("flv", fuzzing::flv);
}

#[test]
fn rest_body() {
    replay("rest_body", fuzzing::rest_body);
}

#[test]
fn stream_name() {
    replay("stream_name", fuzzing::stream_name);
}
