//! Record file names and rotation settings, as pure functions. A file name comes from a WCS
//! template (`{streamName}-{startTime}-{endTime}` by default, times in milliseconds since the
//! epoch) and is sanitised into one bare file name, so no stream name, login or template can place
//! a file outside the records folder. Rotation settings are WCS strings: `20M` (size) or `10m`
//! (duration). The container follows the codecs unless one is forced.
//!
//! Names over a recording's life:
//! - while it is written, `{endTime}` is not known yet and stands as [`INTERIM_END`]
//!   (`cam-1700000000000-recording.mp4`); a recording that never finished (server killed) keeps
//!   that name, and the file still plays;
//! - when it finishes it is renamed with its end time (`cam-1700000000000-1700000060000.mp4`);
//! - with rotation every part gets its own start and end times and a part number after the
//!   template's text: `cam-1700000000000-1700000600000-1.mp4`, `cam-1700000600000-…-2.mp4`;
//! - a name already taken in the folder gets `_2`, `_3`, … before the extension.

use crate::engine::media::Codec;
use std::time::Duration;

/// The template WCS uses when none is configured.
pub const DEFAULT_TEMPLATE: &str = "{streamName}-{startTime}-{endTime}";

/// What `{endTime}` reads while the recording is still being written.
pub const INTERIM_END: &str = "recording";

/// Longest file name written, in bytes (extension and suffixes included); most file systems
/// allow 255, and the rest leaves room for a sidecar's `.json` and a temporary file's suffix.
pub const MAX_NAME_BYTES: usize = 200;

/// What a bad setting looks like.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NamingError {
    /// A rotation setting that is neither a size nor a duration.
    #[error("invalid rotation {0:?}: expected a size like 20M, 500K, 1G or a duration like 30s, 10m, 1h")]
    BadRotation(String),
}

/// The values a template's keys stand for.
#[derive(Debug, Clone, Default)]
pub struct NameFields<'a> {
    /// `{streamName}`.
    pub stream_name: &'a str,
    /// `{startTime}`, milliseconds since the epoch.
    pub start_time_ms: u64,
    /// `{endTime}`; `None` while the recording runs ([`INTERIM_END`] is written instead).
    pub end_time_ms: Option<u64>,
    /// `{mediaSessionId}`.
    pub media_session_id: &'a str,
    /// `{login}`.
    pub login: &'a str,
    /// `{audioCodec}` (empty without audio).
    pub audio_codec: Option<Codec>,
    /// `{videoCodec}` (empty without video).
    pub video_codec: Option<Codec>,
}

/// Replaces the template's keys. Unknown `{keys}` stay as they are (then sanitised like the rest).
pub fn render(template: &str, f: &NameFields<'_>) -> String {
    let end = f
        .end_time_ms
        .map_or_else(|| INTERIM_END.to_owned(), |t| t.to_string());
    let codec = |c: Option<Codec>| c.map(Codec::wcs_name).unwrap_or_default();
    template
        .replace("{streamName}", f.stream_name)
        .replace("{startTime}", &f.start_time_ms.to_string())
        .replace("{endTime}", &end)
        .replace("{mediaSessionId}", f.media_session_id)
        .replace("{login}", f.login)
        .replace("{audioCodec}", codec(f.audio_codec))
        .replace("{videoCodec}", codec(f.video_codec))
}

/// Whether names from `template` change when the recording ends (so the file is renamed).
pub fn has_end_time(template: &str) -> bool {
    template.contains("{endTime}")
}

/// Makes `raw` safe as one file name: path separators, control characters and characters Windows
/// refuses become `_`, runs of dots become `_` (so no `..`), no leading dot or trailing dot/space,
/// at most `max_bytes` bytes (cut at a character boundary), never empty.
pub fn sanitize(raw: &str, max_bytes: usize) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut dots = 0usize;
    for c in raw.chars() {
        if c == '.' {
            dots += 1;
            continue;
        }
        flush_dots(&mut out, dots);
        dots = 0;
        let bad =
            c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|');
        out.push(if bad { '_' } else { c });
    }
    flush_dots(&mut out, dots);
    let trimmed = out
        .trim_start_matches(['.', ' '])
        .trim_end_matches(['.', ' ']);
    let mut s = truncate(trimmed, max_bytes)
        .trim_end_matches(['.', ' '])
        .to_owned();
    if s.is_empty() {
        s = "record".to_owned();
    }
    s
}

/// One dot stays a dot; two or more become `_` so the name never holds `..`.
fn flush_dots(out: &mut String, dots: usize) {
    match dots {
        0 => {}
        1 => out.push('.'),
        _ => out.push('_'),
    }
}

fn truncate(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The file name for one part: the rendered template, `-{part}` when rotating, `_{n}` when the
/// name is taken (`dedup` ≥ 2), then `.{ext}`; sanitised and at most [`MAX_NAME_BYTES`].
pub fn file_name(
    template: &str,
    f: &NameFields<'_>,
    part: Option<u32>,
    dedup: u32,
    ext: &str,
) -> String {
    let mut suffix = String::new();
    if let Some(p) = part {
        suffix.push_str(&format!("-{p}"));
    }
    if dedup >= 2 {
        suffix.push_str(&format!("_{dedup}"));
    }
    let ext = sanitize(ext, 16);
    let room = MAX_NAME_BYTES.saturating_sub(suffix.len() + ext.len() + 1);
    format!("{}{suffix}.{ext}", sanitize(&render(template, f), room))
}

/// When a recording starts a new part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// After about this many bytes of media (container overhead not counted).
    Size(u64),
    /// After this much media time.
    Duration(Duration),
}

impl std::str::FromStr for Rotation {
    type Err = NamingError;

    /// `500K`, `20M`, `1G` (also lower-case `k`, `g`; powers of 1024) are sizes; `30s`, `10m`, `1h`
    /// are durations. Upper-case `M` is megabytes, lower-case `m` minutes, as in WCS.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || NamingError::BadRotation(s.to_owned());
        let t = s.trim();
        let unit = t.chars().last().ok_or_else(bad)?;
        let digits = &t[..t.len() - unit.len_utf8()];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: u64 = digits.parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(bad());
        }
        let scaled = |mul: u64| n.checked_mul(mul).ok_or_else(bad);
        Ok(match unit {
            'K' | 'k' => Rotation::Size(scaled(1 << 10)?),
            'M' => Rotation::Size(scaled(1 << 20)?),
            'G' | 'g' => Rotation::Size(scaled(1 << 30)?),
            's' => Rotation::Duration(Duration::from_secs(n)),
            'm' => Rotation::Duration(Duration::from_secs(scaled(60)?)),
            'h' => Rotation::Duration(Duration::from_secs(scaled(3600)?)),
            _ => return Err(bad()),
        })
    }
}

impl Rotation {
    /// Whether a part that holds `bytes` over `elapsed` of media is due to end.
    pub fn is_due(self, bytes: u64, elapsed: Duration) -> bool {
        match self {
            Rotation::Size(max) => bytes >= max,
            Rotation::Duration(max) => elapsed >= max,
        }
    }
}

/// Which container holds a recording when the codecs choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContainerPolicy {
    /// H.264 (with AAC or Opus) and AAC alone → MP4; VP8 (with Opus) and Opus alone → WebM;
    /// anything else → Matroska.
    #[default]
    ByCodec,
    /// Matroska for everything.
    Matroska,
}

/// A recording's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// Fragmented MP4.
    Mp4,
    /// WebM (Matroska restricted to VP8/VP9/AV1 and Opus/Vorbis).
    Webm,
    /// Matroska.
    Matroska,
}

impl Container {
    /// The file extension, which is also the name of the muxer fragment.
    pub fn extension(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4",
            Container::Webm => "webm",
            Container::Matroska => "mkv",
        }
    }
}

/// The container for a recording of these tracks.
pub fn choose_container(
    policy: ContainerPolicy,
    video: Option<Codec>,
    audio: Option<Codec>,
) -> Container {
    if policy == ContainerPolicy::Matroska {
        return Container::Matroska;
    }
    match (video, audio) {
        (Some(Codec::H264), None | Some(Codec::Aac | Codec::Opus)) => Container::Mp4,
        (None, Some(Codec::Aac)) => Container::Mp4,
        (Some(Codec::Vp8), None | Some(Codec::Opus)) | (None, Some(Codec::Opus)) => Container::Webm,
        _ => Container::Matroska,
    }
}

/// What a name made from [`DEFAULT_TEMPLATE`] tells: stream, start time, end time (when it is not
/// [`INTERIM_END`]) and part number. Used for files without a sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedName {
    /// The stream name (sanitised, as in the file name).
    pub stream: String,
    /// Start time, milliseconds since the epoch.
    pub start_time_ms: u64,
    /// End time, when the recording finished.
    pub end_time_ms: Option<u64>,
    /// Part number, when the recording rotated.
    pub part: Option<u32>,
}

/// Reads `stream-START-END[-PART][_DEDUP].ext` back (the default template's shape).
pub fn parse_default_name(file_name: &str) -> Option<ParsedName> {
    let stem = file_name.rsplit_once('.').map_or(file_name, |(s, _)| s);
    // A dedup suffix holds no information worth keeping.
    let stem = match stem.rsplit_once('_') {
        Some((s, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => s,
        _ => stem,
    };
    let is_num = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    // Milliseconds since the epoch have 13 digits for centuries; 10 leaves room for tests.
    let is_time = |s: &str| s.len() >= 10 && is_num(s);
    let is_end = |s: &str| s == INTERIM_END || is_time(s);
    let mut tokens: Vec<&str> = stem.split('-').collect();
    let mut part = None;
    if let [.., start, end, p] = tokens.as_slice() {
        if p.len() < 10 && is_num(p) && is_time(start) && is_end(end) {
            part = p.parse().ok();
            tokens.pop();
        }
    }
    let (end, start, stream) = match tokens.as_slice() {
        [stream @ .., start, end] if !stream.is_empty() => (*end, *start, stream.join("-")),
        _ => return None,
    };
    if !is_time(start) || !is_end(end) || stream.is_empty() {
        return None;
    }
    Some(ParsedName {
        stream,
        start_time_ms: start.parse().ok()?,
        end_time_ms: if end == INTERIM_END {
            None
        } else {
            Some(end.parse().ok()?)
        },
        part,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Component, Path};

    fn fields(stream: &str) -> NameFields<'_> {
        NameFields {
            stream_name: stream,
            start_time_ms: 1_700_000_000_000,
            end_time_ms: Some(1_700_000_005_000),
            media_session_id: "ms-1",
            login: "alice",
            audio_codec: Some(Codec::Opus),
            video_codec: Some(Codec::H264),
        }
    }

    /// A bare, harmless file name: one normal path component, no dot tricks, not too long.
    fn assert_bare(name: &str) {
        let comps: Vec<_> = Path::new(name).components().collect();
        assert_eq!(comps.len(), 1, "{name:?} is one component");
        assert!(
            matches!(comps[0], Component::Normal(_)),
            "{name:?} is a normal name"
        );
        assert!(!name.contains('/') && !name.contains('\\'), "{name:?}");
        assert!(!name.contains(".."), "{name:?}");
        assert!(!name.starts_with('.'), "{name:?}");
        assert!(!name.chars().any(char::is_control), "{name:?}");
        assert!(name.len() <= MAX_NAME_BYTES, "{} bytes", name.len());
    }

    #[test]
    fn default_template_renders_like_wcs() {
        let f = fields("cam");
        assert_eq!(
            file_name(DEFAULT_TEMPLATE, &f, None, 0, "mp4"),
            "cam-1700000000000-1700000005000.mp4"
        );
        let running = NameFields {
            end_time_ms: None,
            ..fields("cam")
        };
        assert_eq!(
            file_name(DEFAULT_TEMPLATE, &running, None, 0, "mp4"),
            "cam-1700000000000-recording.mp4"
        );
        assert_eq!(
            file_name(DEFAULT_TEMPLATE, &f, Some(2), 0, "webm"),
            "cam-1700000000000-1700000005000-2.webm"
        );
        assert_eq!(
            file_name(DEFAULT_TEMPLATE, &f, Some(2), 3, "webm"),
            "cam-1700000000000-1700000005000-2_3.webm"
        );
    }

    #[test]
    fn every_key_is_replaced() {
        let t = "{login}_{mediaSessionId}_{videoCodec}_{audioCodec}_{streamName}_{unknown}";
        assert_eq!(render(t, &fields("s")), "alice_ms-1_H264_opus_s_{unknown}");
        let no_audio = NameFields {
            audio_codec: None,
            ..fields("s")
        };
        assert_eq!(render("{audioCodec}x", &no_audio), "x");
        assert!(has_end_time(DEFAULT_TEMPLATE));
        assert!(!has_end_time("{streamName}-{startTime}"));
    }

    #[test]
    fn path_tricks_stay_in_the_folder() {
        for evil in [
            "../../etc/passwd",
            "/abs",
            "a/../../b",
            "..",
            ".",
            ".hidden",
            "a\\..\\b",
            "nul\0byte",
            "tab\tnew\nline",
            "...",
            "x/..",
            " . ",
            "",
        ] {
            let name = file_name(DEFAULT_TEMPLATE, &fields(evil), None, 0, "mp4");
            assert_bare(&name);
            assert!(name.ends_with(".mp4"), "{name:?}");
            let bare = sanitize(evil, MAX_NAME_BYTES);
            assert_bare(&bare);
        }
        assert_eq!(sanitize("../../etc/passwd", 200), "____etc_passwd");
        assert_eq!(sanitize("/abs", 200), "_abs");
        assert_eq!(sanitize("nul\0byte", 200), "nul_byte");
        assert_eq!(sanitize("", 200), "record");
        assert_eq!(sanitize("a.b", 200), "a.b", "a single dot is fine");
        // Templates are sanitised too, not only the values.
        let name = file_name("../{streamName}/x", &fields("s"), None, 0, "mp4");
        assert_bare(&name);
    }

    #[test]
    fn long_names_are_cut_at_a_character_boundary() {
        let long = "é".repeat(300);
        let name = file_name(DEFAULT_TEMPLATE, &fields(&long), Some(12), 2, "mp4");
        assert_bare(&name);
        assert!(
            name.ends_with("-12_2.mp4"),
            "suffixes survive the cut: {name}"
        );
        let plain = "x".repeat(1000);
        assert!(file_name("{streamName}", &fields(&plain), None, 0, "mkv").len() <= MAX_NAME_BYTES);
    }

    #[test]
    fn rotation_settings() {
        assert_eq!("20M".parse(), Ok(Rotation::Size(20 << 20)));
        assert_eq!("500K".parse(), Ok(Rotation::Size(500 << 10)));
        assert_eq!("500k".parse(), Ok(Rotation::Size(500 << 10)));
        assert_eq!("1G".parse(), Ok(Rotation::Size(1 << 30)));
        assert_eq!(
            "10m".parse(),
            Ok(Rotation::Duration(Duration::from_secs(600)))
        );
        assert_eq!(
            "30s".parse(),
            Ok(Rotation::Duration(Duration::from_secs(30)))
        );
        assert_eq!(
            " 1h ".parse(),
            Ok(Rotation::Duration(Duration::from_secs(3600)))
        );
        for bad in [
            "",
            "M",
            "10",
            "10x",
            "-5m",
            "1.5M",
            "0s",
            "abc",
            "10 m",
            "99999999999999999999G",
            "ms",
            "5mm",
        ] {
            assert!(bad.parse::<Rotation>().is_err(), "{bad:?} is refused");
        }
        let r = Rotation::Size(100);
        assert!(!r.is_due(99, Duration::from_secs(1000)));
        assert!(r.is_due(100, Duration::ZERO));
        let d = Rotation::Duration(Duration::from_secs(2));
        assert!(!d.is_due(u64::MAX, Duration::from_millis(1999)));
        assert!(d.is_due(0, Duration::from_secs(2)));
    }

    #[test]
    fn containers_follow_the_codecs() {
        use Codec::*;
        let by = ContainerPolicy::ByCodec;
        assert_eq!(choose_container(by, Some(H264), Some(Aac)), Container::Mp4);
        assert_eq!(choose_container(by, Some(H264), Some(Opus)), Container::Mp4);
        assert_eq!(choose_container(by, Some(H264), None), Container::Mp4);
        assert_eq!(choose_container(by, None, Some(Aac)), Container::Mp4);
        assert_eq!(choose_container(by, Some(Vp8), Some(Opus)), Container::Webm);
        assert_eq!(choose_container(by, Some(Vp8), None), Container::Webm);
        assert_eq!(choose_container(by, None, Some(Opus)), Container::Webm);
        assert_eq!(
            choose_container(by, Some(Vp8), Some(Aac)),
            Container::Matroska
        );
        let mkv = ContainerPolicy::Matroska;
        assert_eq!(
            choose_container(mkv, Some(H264), Some(Aac)),
            Container::Matroska
        );
        assert_eq!(Container::Matroska.extension(), "mkv");
    }

    #[test]
    fn default_names_parse_back() {
        let p = parse_default_name("cam-1700000000000-1700000005000.mp4").unwrap();
        assert_eq!(p.stream, "cam");
        assert_eq!(p.start_time_ms, 1_700_000_000_000);
        assert_eq!(p.end_time_ms, Some(1_700_000_005_000));
        assert_eq!(p.part, None);
        let p = parse_default_name("my-cam-1700000000000-recording-3.webm").unwrap();
        assert_eq!(p.stream, "my-cam");
        assert_eq!(p.end_time_ms, None);
        assert_eq!(p.part, Some(3));
        let p = parse_default_name("a-b-c-1700000000000-1700000005000_2.mkv").unwrap();
        assert_eq!(p.stream, "a-b-c");
        assert!(parse_default_name("holiday.mp4").is_none());
        assert!(parse_default_name("x-12-34.mp4").is_none());
    }
}
