//! Which file a VOD URI names, and whether it may be read. A name is a relative path inside the
//! media folder (`vod://lessons/intro.mp4`), or inside the records folder (`vod://records/FILE`),
//! or an object of an S3 bucket (`vod://s3/BUCKET/KEY`). Refused, whatever the file system says:
//! absolute paths, `..` and `.` components, empty components, backslashes, NUL, and `%` (so no
//! encoded form of any of those gets through); a path whose real location (symlinks followed)
//! is outside its folder; anything but a regular file in a container we play.
//!
//! Clients are told only WCS's words ("File not found", "File has wrong format"); why a name was
//! refused goes to the log.

use std::path::{Path, PathBuf};

/// How a file is played.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// From its start for each viewer (`vod://`).
    Vod,
    /// One shared live stream (`vod-live://`).
    Live,
}

/// What a VOD URI names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A file on disk (canonical path).
    File(PathBuf),
    /// An S3 object.
    S3 {
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
    },
}

/// Why a name cannot be played.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// Not a name we accept, outside the folder, or not there (the client is told "File not found").
    #[error("File not found")]
    NotFound(&'static str),
    /// Not a container we play.
    #[error("File has wrong format")]
    WrongFormat,
}

/// Containers a VOD file may be in, by extension.
pub const CONTAINERS: [&str; 6] = ["mp4", "m4v", "mov", "mkv", "webm", "flv"];

/// Splits `vod://NAME` / `vod-live://NAME` into the mode and the name.
pub fn parse(uri: &str) -> Option<(Mode, &str)> {
    if let Some(rest) = uri.strip_prefix("vod-live://") {
        return Some((Mode::Live, rest));
    }
    uri.strip_prefix("vod://").map(|rest| (Mode::Vod, rest))
}

/// Checks a relative name's shape: components of plain characters only.
fn check_name(name: &str) -> Result<Vec<&str>, FileError> {
    if name.is_empty() || name.len() > 1024 {
        return Err(FileError::NotFound("empty or too long"));
    }
    if name.contains(['\\', '\0', '%']) || name.starts_with('~') {
        return Err(FileError::NotFound("backslash, NUL, % or ~"));
    }
    if name.starts_with('/') {
        return Err(FileError::NotFound("absolute path"));
    }
    let parts: Vec<&str> = name.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(FileError::NotFound("empty, . or .. component"));
    }
    if parts.iter().any(|p| p.chars().any(char::is_control)) {
        return Err(FileError::NotFound("control character"));
    }
    Ok(parts)
}

/// Resolves `name` (from a VOD URI) against the media folder `media` and the records folder
/// `records`.
pub fn resolve(media: &Path, records: &Path, name: &str) -> Result<Target, FileError> {
    let parts = check_name(name)?;
    if parts[0] == "s3" {
        if parts.len() < 3 {
            return Err(FileError::NotFound("s3 needs a bucket and a key"));
        }
        return Ok(Target::S3 {
            bucket: parts[1].to_owned(),
            key: parts[2..].join("/"),
        });
    }
    let (root, rest) = if parts[0] == "records" && parts.len() > 1 {
        (records, &parts[1..])
    } else {
        (media, &parts[..])
    };
    let ext = rest
        .last()
        .and_then(|f| f.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());
    if !ext.as_deref().is_some_and(|e| CONTAINERS.contains(&e)) {
        return Err(FileError::WrongFormat);
    }
    let root = root
        .canonicalize()
        .map_err(|_| FileError::NotFound("no such folder"))?;
    let path = rest.iter().fold(root.clone(), |p, c| p.join(c));
    // The real location, every symlink followed, must still be inside the folder.
    let real = path
        .canonicalize()
        .map_err(|_| FileError::NotFound("no such file"))?;
    if !real.starts_with(&root) {
        return Err(FileError::NotFound("outside the folder"));
    }
    if !real.is_file() {
        return Err(FileError::NotFound("not a regular file"));
    }
    Ok(Target::File(real))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs() -> (PathBuf, PathBuf, PathBuf) {
        let base = std::env::temp_dir().join(format!("vod-paths-{}", uuid::Uuid::new_v4()));
        let media = base.join("media");
        let records = base.join("records");
        std::fs::create_dir_all(media.join("lessons")).unwrap();
        std::fs::create_dir_all(&records).unwrap();
        std::fs::write(media.join("lessons/intro.mp4"), b"x").unwrap();
        std::fs::write(records.join("call.mp4"), b"x").unwrap();
        std::fs::write(base.join("secret.mp4"), b"x").unwrap();
        (base, media, records)
    }

    #[test]
    fn names_inside_the_folders_resolve() {
        let (base, media, records) = dirs();
        let ok = resolve(&media, &records, "lessons/intro.mp4").unwrap();
        assert_eq!(
            ok,
            Target::File(media.join("lessons/intro.mp4").canonicalize().unwrap())
        );
        let rec = resolve(&media, &records, "records/call.mp4").unwrap();
        assert_eq!(
            rec,
            Target::File(records.join("call.mp4").canonicalize().unwrap())
        );
        // A symlink that stays inside is fine.
        std::os::unix::fs::symlink(media.join("lessons/intro.mp4"), media.join("alias.mp4"))
            .unwrap();
        assert!(resolve(&media, &records, "alias.mp4").is_ok());
        assert_eq!(
            resolve(&media, &records, "s3/bucket/a/b.mp4").unwrap(),
            Target::S3 {
                bucket: "bucket".into(),
                key: "a/b.mp4".into()
            }
        );
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn escapes_and_tricks_are_refused() {
        let (base, media, records) = dirs();
        std::os::unix::fs::symlink(base.join("secret.mp4"), media.join("out.mp4")).unwrap();
        std::os::unix::fs::symlink(&base, media.join("up")).unwrap();
        for bad in [
            "../secret.mp4",
            "lessons/../../secret.mp4",
            "/etc/passwd.mp4",
            "out.mp4",
            "up/secret.mp4",
            "%2e%2e/secret.mp4",
            "..%2fsecret.mp4",
            "lessons\\..\\..\\secret.mp4",
            "lessons//intro.mp4",
            "./lessons/intro.mp4",
            "~/secret.mp4",
            "lessons/intro.mp4\0.mp4",
            "missing.mp4",
            "records/../secret.mp4",
            "",
        ] {
            let e = resolve(&media, &records, bad).unwrap_err();
            assert!(matches!(e, FileError::NotFound(_)), "{bad:?}: {e:?}");
            assert_eq!(e.to_string(), "File not found");
        }
        // A folder is not a file.
        std::fs::create_dir_all(media.join("dir.mp4")).unwrap();
        assert!(resolve(&media, &records, "dir.mp4").is_err());
        let e = resolve(&media, &records, "lessons/notes.txt").unwrap_err();
        assert_eq!(e, FileError::WrongFormat);
        assert_eq!(e.to_string(), "File has wrong format");
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn uris_parse() {
        assert_eq!(parse("vod://a.mp4"), Some((Mode::Vod, "a.mp4")));
        assert_eq!(parse("vod-live://a.mp4"), Some((Mode::Live, "a.mp4")));
        assert_eq!(parse("rtsp://cam/1"), None);
    }
}
