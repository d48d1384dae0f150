//! The timeline of one HLS rendition, kept in memory, and its playlists (RFC 8216 and the LL-HLS
//! additions of its second edition): segments made of parts, a bounded window of them, the init
//! sections they refer to, and the discontinuities where a new init section begins (a publisher
//! that came back, a new publisher of the same name). Pure data: the packager pushes parts in, the
//! HTTP side renders playlists and looks parts up.

use bytes::Bytes;
use std::collections::VecDeque;
use std::fmt::Write;
use std::time::{Duration, SystemTime};

/// One part (LL-HLS partial segment): a `moof`+`mdat` chunk, or all of a TS segment.
#[derive(Clone)]
pub struct Part {
    /// The bytes.
    pub data: Bytes,
    /// Its duration.
    pub duration: Duration,
    /// It starts with a keyframe (decodable on its own).
    pub independent: bool,
}

/// One media segment.
pub struct Segment {
    /// Media sequence number.
    pub msn: u64,
    /// Its parts in order; the segment is their concatenation.
    pub parts: Vec<Part>,
    /// A discontinuity comes before it.
    pub discontinuity: bool,
    /// The init section it needs.
    pub init: u64,
    /// The wall-clock time of its first sample.
    pub date: Option<SystemTime>,
}

impl Segment {
    /// Its duration: the sum of its parts'.
    pub fn duration(&self) -> Duration {
        self.parts.iter().map(|p| p.duration).sum()
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| p.data.len()).sum()
    }

    /// Whether it holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How a timeline is shaped.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Complete segments kept (the playlist's window).
    pub segments: usize,
    /// Segment duration asked of the muxer (a segment ends at the first keyframe after it).
    pub target: Duration,
    /// Part duration asked of the muxer; `None` for a rendition without parts (MPEG-TS).
    pub part_target: Option<Duration>,
}

/// What the HTTP side asks for in a blocking playlist reload (`_HLS_msn`, `_HLS_part`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// The playlist holds what was asked for.
    Yes,
    /// Not yet: wait for more media.
    NotYet,
    /// Too far ahead to wait for (RFC 8216bis 6.2.5.2: more than two segments on): 400.
    TooFar,
}

/// One rendition's timeline.
pub struct Timeline {
    shape: Shape,
    /// Complete segments, oldest first.
    segments: VecDeque<Segment>,
    /// The segment being made (LL-HLS lists its parts).
    open: Option<Segment>,
    next_msn: u64,
    /// Init sections by number, oldest first (only those a kept segment, or the next, needs).
    inits: VecDeque<(u64, Bytes)>,
    next_init: u64,
    /// The next segment begins a discontinuity.
    pending_discontinuity: bool,
    /// Discontinuities that have left the window (`EXT-X-DISCONTINUITY-SEQUENCE`).
    discontinuity_sequence: u64,
    /// Longest segment ever listed, in whole seconds rounded up: the target duration never
    /// shrinks, so players that read it once stay right.
    target_secs: u64,
    /// Longest part ever listed.
    part_target: Duration,
    /// Codecs (RFC 6381) and picture size, for the multivariant playlist.
    pub codecs: Option<String>,
    /// Picture size, when there is a picture.
    pub resolution: Option<(u32, u32)>,
    /// Bits per second at the peak, from the segments seen.
    peak_bps: u64,
}

impl Timeline {
    /// An empty timeline.
    pub fn new(shape: Shape) -> Self {
        Self {
            target_secs: shape.target.as_secs_f64().ceil().max(1.0) as u64,
            part_target: shape.part_target.unwrap_or_default(),
            shape,
            segments: VecDeque::new(),
            open: None,
            next_msn: 0,
            inits: VecDeque::new(),
            next_init: 0,
            pending_discontinuity: false,
            discontinuity_sequence: 0,
            codecs: None,
            resolution: None,
            peak_bps: 0,
        }
    }

    /// Whether it has parts (LL-HLS).
    pub fn has_parts(&self) -> bool {
        self.shape.part_target.is_some()
    }

    /// A new init section: what follows is muxed against it. After the first one, the segment in
    /// progress ends and the next begins with a discontinuity.
    pub fn set_init(&mut self, data: Bytes) {
        if self.next_init > 0 {
            self.close();
            self.pending_discontinuity = true;
        }
        self.inits.push_back((self.next_init, data));
        self.next_init += 1;
        self.trim();
    }

    /// The init section numbered `n`.
    pub fn init(&self, n: u64) -> Option<Bytes> {
        self.inits
            .iter()
            .find(|(i, _)| *i == n)
            .map(|(_, d)| d.clone())
    }

    /// Adds a part; `starts_segment` ends the segment in progress first (a fragment starts at a
    /// keyframe). Parts that come before any init section, or a first part that is not
    /// independent, are dropped: nobody could decode them.
    pub fn push_part(&mut self, part: Part, starts_segment: bool, date: Option<SystemTime>) {
        if self.next_init == 0 {
            return;
        }
        if starts_segment || self.open.is_none() {
            self.close();
            if !part.independent {
                return;
            }
            self.open = Some(Segment {
                msn: self.next_msn,
                parts: Vec::new(),
                discontinuity: std::mem::take(&mut self.pending_discontinuity),
                init: self.next_init - 1,
                date,
            });
            self.next_msn += 1;
        }
        if part.duration > self.part_target && self.has_parts() {
            self.part_target = round_up_ms(part.duration);
        }
        if let Some(open) = self.open.as_mut() {
            open.parts.push(part);
        }
    }

    /// Ends the segment in progress, if any (also at the end of a stream).
    pub fn close(&mut self) {
        let Some(seg) = self.open.take() else {
            return;
        };
        if seg.parts.is_empty() {
            self.next_msn = seg.msn;
            return;
        }
        let secs = seg.duration().as_secs_f64();
        self.target_secs = self.target_secs.max(secs.round().max(1.0) as u64);
        if secs > 0.0 {
            self.peak_bps = self.peak_bps.max((seg.len() as f64 * 8.0 / secs) as u64);
        }
        self.segments.push_back(seg);
        self.trim();
    }

    fn trim(&mut self) {
        while self.segments.len() > self.shape.segments {
            if let Some(old) = self.segments.pop_front() {
                // Counted once its segment has left the window, so players can line up
                // discontinuities across reloads.
                if old.discontinuity {
                    self.discontinuity_sequence += 1;
                }
            }
        }
        let oldest_needed = self
            .segments
            .front()
            .or(self.open.as_ref())
            .map(|s| s.init)
            .unwrap_or(self.next_init.saturating_sub(1));
        while self.inits.len() > 1 && self.inits.front().is_some_and(|(i, _)| *i < oldest_needed) {
            self.inits.pop_front();
        }
    }

    /// Complete segments in the window.
    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter()
    }

    /// The complete segment numbered `msn`.
    pub fn segment(&self, msn: u64) -> Option<&Segment> {
        self.segments.iter().find(|s| s.msn == msn)
    }

    /// Part `index` of segment `msn` (complete or in progress).
    pub fn part(&self, msn: u64, index: usize) -> Option<Bytes> {
        self.segments
            .iter()
            .chain(self.open.as_ref())
            .find(|s| s.msn == msn)
            .and_then(|s| s.parts.get(index))
            .map(|p| p.data.clone())
    }

    /// The next part to come: (msn, index). A request for it waits until it exists.
    pub fn next_part(&self) -> (u64, usize) {
        match &self.open {
            Some(s) => (s.msn, s.parts.len()),
            None => (self.next_msn, 0),
        }
    }

    /// Where a live player starts: the first part of the newest segment (it starts at a keyframe).
    pub fn live_point(&self) -> Option<(u64, usize)> {
        match &self.open {
            Some(o) if !o.parts.is_empty() => Some((o.msn, 0)),
            _ => self.segments.back().map(|s| (s.msn, 0)),
        }
    }

    /// The parts from (msn, index) on, each with its segment number, index and init section; `None`
    /// when that point has left the window (a reader that fell behind starts again at
    /// [`Self::live_point`]).
    pub fn parts_since(&self, msn: u64, index: usize) -> Option<Vec<(u64, usize, u64, Bytes)>> {
        let first = self.segments.front().or(self.open.as_ref())?.msn;
        if msn < first {
            return None;
        }
        let mut out = Vec::new();
        for s in self.segments.iter().chain(self.open.as_ref()) {
            if s.msn < msn {
                continue;
            }
            let from = if s.msn == msn { index } else { 0 };
            for (i, p) in s.parts.iter().enumerate().skip(from) {
                out.push((s.msn, i, s.init, p.data.clone()));
            }
        }
        Some(out)
    }

    /// Whether a part that does not exist yet may still come: at most a few parts ahead.
    pub fn part_may_come(&self, msn: u64, index: usize) -> bool {
        let (m, i) = self.next_part();
        (msn == m && index >= i && index < i + 4) || (msn == m + 1 && index < 2)
    }

    /// Bytes held (segments, the one in progress, init sections).
    pub fn bytes(&self) -> usize {
        self.segments
            .iter()
            .chain(self.open.as_ref())
            .map(Segment::len)
            .sum::<usize>()
            + self.inits.iter().map(|(_, d)| d.len()).sum::<usize>()
    }

    /// Whether the playlist can be served: at least one complete segment.
    pub fn is_playable(&self) -> bool {
        !self.segments.is_empty()
    }

    /// Peak bit rate seen, for `BANDWIDTH`.
    pub fn bandwidth(&self) -> u64 {
        self.peak_bps.max(100_000)
    }

    /// Whether a blocking reload for segment `msn` (and part `part`) can be answered.
    pub fn ready(&self, msn: u64, part: Option<usize>) -> Ready {
        let last_complete = self.segments.back().map(|s| s.msn);
        let done = |m: u64| last_complete.is_some_and(|l| l >= m);
        let answer = match part {
            None => done(msn),
            Some(p) => {
                done(msn)
                    || self
                        .open
                        .as_ref()
                        .is_some_and(|o| o.msn > msn || (o.msn == msn && o.parts.len() > p))
            }
        };
        if answer {
            Ready::Yes
        } else if msn > self.next_msn + 2 {
            Ready::TooFar
        } else {
            Ready::NotYet
        }
    }

    /// The media playlist. `ll` lists parts, preload hints and server control (LL-HLS); `names`
    /// spells the URIs; `query` is appended to every URI (a token the player was given).
    pub fn render(&self, ll: bool, names: &Names, query: &str) -> String {
        let ll = ll && self.has_parts();
        let q = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        let mut out = String::with_capacity(2048);
        out.push_str("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n");
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", self.target_secs);
        if ll {
            let part = self.part_target.as_secs_f64();
            let _ = writeln!(
                out,
                "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3},HOLD-BACK={:.3}",
                part * 3.0,
                self.target_secs as f64 * 3.0
            );
            let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={part:.3}");
        }
        let first = self
            .segments
            .front()
            .map(|s| s.msn)
            .unwrap_or(self.next_msn);
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first}");
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(
                out,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_sequence
            );
        }
        // Parts are listed for the last segments only (RFC 8216bis 4.4.4.9: those within three
        // target durations of the end), as players need no more.
        let keep_parts_from = {
            let mut acc = Duration::ZERO;
            let limit = Duration::from_secs(self.target_secs * 3);
            let mut from = u64::MAX;
            for s in self.segments.iter().rev() {
                if acc >= limit {
                    break;
                }
                acc += s.duration();
                from = s.msn;
            }
            from
        };
        let mut init = None;
        let listed = self
            .segments
            .iter()
            .chain(if ll { self.open.as_ref() } else { None });
        for s in listed {
            if s.discontinuity && s.msn != first {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if init != Some(s.init) && names.ext != "ts" {
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}{q}\"", names.init(s.init));
                init = Some(s.init);
            }
            if let Some(d) = s.date {
                let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", rfc3339(d));
            }
            let complete = self.open.as_ref().is_none_or(|o| o.msn != s.msn);
            if ll && (s.msn >= keep_parts_from || !complete) {
                for (i, p) in s.parts.iter().enumerate() {
                    let _ = write!(
                        out,
                        "#EXT-X-PART:DURATION={:.5},URI=\"{}{q}\"",
                        p.duration.as_secs_f64(),
                        names.part(s.msn, i)
                    );
                    out.push_str(if p.independent {
                        ",INDEPENDENT=YES\n"
                    } else {
                        "\n"
                    });
                }
            }
            if complete {
                let _ = writeln!(
                    out,
                    "#EXTINF:{:.5},\n{}{q}",
                    s.duration().as_secs_f64(),
                    names.segment(s.msn)
                );
            }
        }
        if ll && !self.segments.is_empty() {
            let (m, i) = self.next_part();
            let _ = writeln!(
                out,
                "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}{q}\"",
                names.part(m, i)
            );
        }
        out
    }
}

fn round_up_ms(d: Duration) -> Duration {
    Duration::from_millis((d.as_micros() as u64).div_ceil(1000))
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn rfc3339(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.millisecond()
    )
}

/// How a rendition's URIs are spelled. Every name carries the timeline's id, so a segment name is
/// never reused for other bytes (a timeline started afresh gets a new id), and a CDN may cache
/// segments for as long as it likes.
#[derive(Debug, Clone)]
pub struct Names {
    /// The timeline's id.
    pub id: String,
    /// Segment extension: `m4s` or `ts`.
    pub ext: &'static str,
}

/// A file a playlist names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum File {
    /// An init section.
    Init(u64),
    /// A whole segment.
    Segment(u64),
    /// A part of a segment.
    Part(u64, usize),
}

impl Names {
    /// The init section's name.
    pub fn init(&self, n: u64) -> String {
        format!("{}-init-{n}.mp4", self.id)
    }

    /// A segment's name.
    pub fn segment(&self, msn: u64) -> String {
        format!("{}-{msn}.{}", self.id, self.ext)
    }

    /// A part's name.
    pub fn part(&self, msn: u64, i: usize) -> String {
        format!("{}-{msn}.{i}.{}", self.id, self.ext)
    }

    /// Reads a file name back; anything else (another timeline's id, a path) is `None`.
    pub fn parse(&self, file: &str) -> Option<File> {
        let rest = file.strip_prefix(&self.id)?.strip_prefix('-')?;
        if let Some(n) = rest
            .strip_prefix("init-")
            .and_then(|r| r.strip_suffix(".mp4"))
        {
            return number(n).map(File::Init);
        }
        let stem = rest.strip_suffix(self.ext)?.strip_suffix('.')?;
        match stem.split_once('.') {
            None => number(stem).map(File::Segment),
            Some((m, i)) => Some(File::Part(number(m)?, number(i)? as usize)),
        }
    }
}

/// A decimal number of at most 18 digits (no sign, no spaces).
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The multivariant playlist naming one variant.
pub fn multivariant(media_uri: &str, t: &Timeline) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", t.bandwidth());
    if let Some(c) = &t.codecs {
        let _ = write!(out, ",CODECS=\"{c}\"");
    }
    if let Some((w, h)) = t.resolution {
        let _ = write!(out, ",RESOLUTION={w}x{h}");
    }
    let _ = writeln!(out, "\n{media_uri}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Shape {
        Shape {
            segments: 3,
            target: Duration::from_secs(2),
            part_target: Some(Duration::from_millis(500)),
        }
    }

    fn part(ms: u64, independent: bool) -> Part {
        Part {
            data: Bytes::from(vec![0u8; 10]),
            duration: Duration::from_millis(ms),
            independent,
        }
    }

    fn names() -> Names {
        Names {
            id: "ab12".into(),
            ext: "m4s",
        }
    }

    /// Feeds `segments` segments of four 500 ms parts.
    fn fill(t: &mut Timeline, segments: usize) {
        for _ in 0..segments {
            for i in 0..4 {
                t.push_part(part(500, i == 0), i == 0, None);
            }
        }
    }

    #[test]
    fn parts_before_an_init_or_a_keyframe_are_dropped() {
        let mut t = Timeline::new(shape());
        t.push_part(part(500, true), true, None);
        assert_eq!(t.next_part(), (0, 0));
        t.set_init(Bytes::from_static(b"init"));
        t.push_part(part(500, false), false, None);
        assert_eq!(t.next_part(), (0, 0));
        t.push_part(part(500, true), true, None);
        assert_eq!(t.next_part(), (0, 1));
    }

    #[test]
    fn window_is_bounded_and_sequence_numbers_continue() {
        let mut t = Timeline::new(shape());
        t.set_init(Bytes::from_static(b"init"));
        fill(&mut t, 10);
        t.close();
        let msns: Vec<u64> = t.segments().map(|s| s.msn).collect();
        assert_eq!(msns, vec![7, 8, 9]);
        let text = t.render(false, &names(), "");
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:7\n"), "{text}");
        assert_eq!(text.matches("#EXTINF:2.00000,").count(), 3);
        assert!(t.bytes() <= 3 * 40 + 4);
    }

    #[test]
    fn ll_playlist_has_parts_hint_and_server_control() {
        let mut t = Timeline::new(shape());
        t.set_init(Bytes::from_static(b"init"));
        fill(&mut t, 2);
        t.push_part(part(500, true), true, None);
        let text = t.render(true, &names(), "token=x");
        assert!(text.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500"));
        assert!(text.contains("#EXT-X-PART-INF:PART-TARGET=0.500\n"));
        assert!(text.contains("#EXT-X-MAP:URI=\"ab12-init-0.mp4?token=x\"\n"));
        assert!(
            text.contains("URI=\"ab12-2.0.m4s?token=x\",INDEPENDENT=YES\n"),
            "{text}"
        );
        assert!(text.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"ab12-2.1.m4s?token=x\"\n"));
        // The segment in progress has parts but no EXTINF yet.
        assert!(!text.contains("ab12-2.m4s"));
        // Classic HLS of the same timeline: whole segments only.
        let classic = t.render(false, &names(), "");
        assert!(!classic.contains("EXT-X-PART") && !classic.contains("PRELOAD"));
    }

    #[test]
    fn a_new_init_section_is_a_discontinuity() {
        let mut t = Timeline::new(shape());
        t.set_init(Bytes::from_static(b"a"));
        fill(&mut t, 2);
        t.set_init(Bytes::from_static(b"b"));
        fill(&mut t, 1);
        t.close();
        let text = t.render(false, &names(), "");
        let disc = text.find("#EXT-X-DISCONTINUITY\n").expect("discontinuity");
        let map1 = text.find("ab12-init-1.mp4").expect("second map");
        assert!(disc < map1);
        assert_eq!(t.init(0).as_deref(), Some(&b"a"[..]));
        // Once the old segments leave the window, so do their init and their discontinuity.
        fill(&mut t, 3);
        t.close();
        let text = t.render(false, &names(), "");
        assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{text}");
        assert!(!text.contains("#EXT-X-DISCONTINUITY\n"));
        assert!(t.init(0).is_none());
    }

    #[test]
    fn target_duration_covers_every_segment() {
        let mut t = Timeline::new(shape());
        t.set_init(Bytes::from_static(b"a"));
        for i in 0..9 {
            t.push_part(part(500, i == 0), i == 0, None);
        }
        t.close();
        let text = t.render(false, &names(), "");
        assert!(text.contains("#EXT-X-TARGETDURATION:5\n"), "{text}");
    }

    #[test]
    fn a_reader_follows_parts_and_restarts_when_it_falls_behind() {
        let mut t = Timeline::new(shape());
        t.set_init(Bytes::from_static(b"a"));
        fill(&mut t, 2);
        t.push_part(part(500, true), true, None);
        assert_eq!(t.live_point(), Some((2, 0)));
        let got = t.parts_since(1, 2).unwrap();
        let at: Vec<(u64, usize)> = got.iter().map(|p| (p.0, p.1)).collect();
        assert_eq!(at, vec![(1, 2), (1, 3), (2, 0)]);
        fill(&mut t, 5);
        assert!(t.parts_since(1, 2).is_none());
    }

    #[test]
    fn blocking_reload_readiness() {
        let mut t = Timeline::new(shape());
        t.set_init(Bytes::from_static(b"a"));
        fill(&mut t, 1);
        t.push_part(part(500, true), true, None);
        assert_eq!(t.ready(0, None), Ready::Yes);
        assert_eq!(t.ready(1, Some(0)), Ready::Yes);
        assert_eq!(t.ready(1, Some(1)), Ready::NotYet);
        assert_eq!(t.ready(1, None), Ready::NotYet);
        assert_eq!(t.ready(9, None), Ready::TooFar);
    }

    #[test]
    fn names_round_trip_and_refuse_others() {
        let n = names();
        assert_eq!(n.parse(&n.init(3)), Some(File::Init(3)));
        assert_eq!(n.parse(&n.segment(12)), Some(File::Segment(12)));
        assert_eq!(n.parse(&n.part(12, 4)), Some(File::Part(12, 4)));
        for bad in [
            "zz99-1.m4s",
            "ab12-1.ts",
            "ab12-../1.m4s",
            "ab12--1.m4s",
            "ab12-1.2.3.m4s",
            "ab12-%2e.m4s",
            "ab12-99999999999999999999.m4s",
        ] {
            assert_eq!(n.parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn multivariant_lists_codecs_and_size() {
        let mut t = Timeline::new(shape());
        t.codecs = Some("avc1.42c01f,mp4a.40.2".into());
        t.resolution = Some((640, 360));
        let text = multivariant("media.m3u8", &t);
        assert!(text.contains("CODECS=\"avc1.42c01f,mp4a.40.2\",RESOLUTION=640x360\nmedia.m3u8\n"));
    }
}
