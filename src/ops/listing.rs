//! What the records folder holds, without demuxing anything. Each record file `NAME` has a small
//! JSON sidecar `NAME.json` next to it, written when the file starts and rewritten when it
//! finishes (stream, media session, login, codecs, container, part, start time, and at the finish
//! end time and duration). [`probe`] reads it; a file without one (copied in by hand, or a sidecar
//! lost) is described from its name when that has the default template's shape. A recording that
//! never finished (server killed) still has its start-time sidecar, with no end time.

use super::naming;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The sidecar's content. Times are milliseconds since the epoch, as in WCS.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Sidecar {
    /// The record file's name (the sidecar is `{file}.json`).
    pub file: String,
    /// The recorded stream.
    pub stream: String,
    /// The publisher's media session.
    pub media_session_id: String,
    /// The publisher's login.
    pub login: String,
    /// `mp4`, `webm` or `mkv`.
    pub container: String,
    /// WCS codec names.
    pub video_codec: Option<String>,
    /// WCS codec names.
    pub audio_codec: Option<String>,
    /// Part number when the recording rotates.
    pub part: Option<u32>,
    /// When the file started.
    pub start_time: u64,
    /// When it ended; absent while it is written (or when it never finished).
    pub end_time: Option<u64>,
    /// Media duration in milliseconds, at the finish.
    pub duration: Option<u64>,
    /// Media bytes written, at the finish.
    pub bytes: Option<u64>,
}

/// The sidecar path of a record file.
pub fn sidecar_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

/// Writes a sidecar next to its file (atomically: readers never see half of one).
pub fn write_sidecar(file: &Path, sidecar: &Sidecar) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(sidecar).map_err(std::io::Error::other)?;
    super::snapshot::write_atomically(&sidecar_path(file), &json)
}

fn read_sidecar(file: &Path) -> Option<Sidecar> {
    let text = std::fs::read(sidecar_path(file)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// One record file, for a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    /// File name in the records folder.
    pub name: String,
    /// Size on disk in bytes.
    pub size: u64,
    /// Media duration, when the recording finished.
    pub duration: Option<Duration>,
    /// The recorded stream, from the sidecar or the name.
    pub stream: Option<String>,
    /// Start time, milliseconds since the epoch.
    pub start_time: Option<u64>,
    /// End time, when the recording finished.
    pub end_time: Option<u64>,
    /// Whether the recording finished cleanly (a crashed one is still playable, up to about the
    /// last second written).
    pub complete: bool,
}

/// Describes the record file at `path`; `None` when it is not a readable regular file.
pub fn probe(path: &Path) -> Option<FileInfo> {
    let meta = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
    let name = path.file_name()?.to_string_lossy().into_owned();
    if let Some(s) = read_sidecar(path) {
        return Some(FileInfo {
            name,
            size: meta.len(),
            duration: s.duration.map(Duration::from_millis),
            stream: Some(s.stream),
            start_time: Some(s.start_time),
            end_time: s.end_time,
            complete: s.end_time.is_some(),
        });
    }
    let parsed = naming::parse_default_name(&name);
    let duration = parsed.as_ref().and_then(|p| {
        p.end_time_ms
            .map(|e| Duration::from_millis(e.saturating_sub(p.start_time_ms)))
    });
    Some(FileInfo {
        size: meta.len(),
        duration,
        stream: parsed.as_ref().map(|p| p.stream.clone()),
        start_time: parsed.as_ref().map(|p| p.start_time_ms),
        end_time: parsed.as_ref().and_then(|p| p.end_time_ms),
        complete: parsed.as_ref().is_some_and(|p| p.end_time_ms.is_some()),
        name,
    })
}

/// Every record file in `dir` (sidecars and hidden temporary files left out), oldest first.
pub fn list(dir: &Path) -> Vec<FileInfo> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<FileInfo> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            !n.starts_with('.') && !n.ends_with(".json")
        })
        .filter_map(|e| probe(&e.path()))
        .collect();
    out.sort_by(|a, b| a.start_time.cmp(&b.start_time).then(a.name.cmp(&b.name)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_prefers_the_sidecar_and_falls_back_to_the_name() {
        let dir = std::env::temp_dir().join(format!("listing-unit-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("cam-1700000000000-1700000004000.mp4");
        std::fs::write(&a, b"0123456789").unwrap();
        let b = dir.join("whatever.webm");
        std::fs::write(&b, b"01234").unwrap();
        write_sidecar(
            &b,
            &Sidecar {
                file: "whatever.webm".into(),
                stream: "s1".into(),
                start_time: 1_600_000_000_000,
                end_time: Some(1_600_000_002_500),
                duration: Some(2_400),
                ..Default::default()
            },
        )
        .unwrap();
        let crashed = dir.join("cam-1700000009000-recording.mp4");
        std::fs::write(&crashed, b"x").unwrap();

        let info = probe(&a).unwrap();
        assert_eq!(info.size, 10);
        assert_eq!(info.stream.as_deref(), Some("cam"));
        assert_eq!(info.duration, Some(Duration::from_secs(4)));
        assert!(info.complete);
        let info = probe(&b).unwrap();
        assert_eq!(info.stream.as_deref(), Some("s1"));
        assert_eq!(info.duration, Some(Duration::from_millis(2_400)));
        let info = probe(&crashed).unwrap();
        assert!(!info.complete);
        assert_eq!(info.duration, None);
        assert!(probe(&dir.join("missing.mp4")).is_none());
        assert!(probe(&dir).is_none(), "a folder is not a record");

        let names: Vec<_> = list(&dir).into_iter().map(|i| i.name).collect();
        assert_eq!(
            names,
            [
                "whatever.webm",
                "cam-1700000000000-1700000004000.mp4",
                "cam-1700000009000-recording.mp4"
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
