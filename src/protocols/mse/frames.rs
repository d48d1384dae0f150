//! The WCS Web SDK's MSE media framing, as pure functions: each frame is `[type: 9 video | 8
//! audio][timestamp: i32 BE, ms][size: i32 BE]` and a body. A video body is an FLV AVC tag body
//! (`0x17`/`0x27`, AVCPacketType, 3-byte composition time, then the AVCDecoderConfigurationRecord
//! or length-prefixed NAL units); an audio body is an FLV AAC body without its first byte
//! (AACPacketType 0 = AudioSpecificConfig, 1 = a raw frame). The SDK's demuxer cuts fragments at
//! configuration records, so the record goes out again before every keyframe; it reads nothing after
//! the PPS list, so the record's High-profile extension is cut; it would misread any other tag, so
//! script data and other codecs are left out.

use crate::protocols::rtmp::flv::{Tag, TAG_AUDIO, TAG_VIDEO};

/// Frame type of video.
pub const VIDEO: u8 = 9;
/// Frame type of audio.
pub const AUDIO: u8 = 8;

/// Turns a stream's FLV tags into MSE frames, in order, keeping what must be repeated.
///
/// The SDK lines its buffers up at the start: it looks for audio within a few tens of
/// milliseconds of the first keyframe. A bridged (re-encoded) picture reaches the feed later than
/// the sound of the same moment, so until the start the last second of audio is held, and the
/// start (at a keyframe) sends the configurations, the keyframe and the held audio from the
/// keyframe's time on.
#[derive(Debug, Default)]
pub struct Framer {
    /// Whether the stream has sound to line up with.
    expect_audio: bool,
    /// The latest AVC configuration, as a frame body ready to send.
    video_config: Option<Vec<u8>>,
    /// The latest AudioSpecificConfig, as a frame body.
    audio_config: Option<Vec<u8>>,
    /// Audio before the start: (timestamp, body).
    held: std::collections::VecDeque<(u32, Vec<u8>)>,
    /// The first keyframe has gone out.
    started: bool,
}

/// How much audio is held before the start, in milliseconds.
const HOLD_MS: u32 = 2000;

fn push_frame(out: &mut Vec<u8>, kind: u8, ts: u32, body: &[u8]) {
    out.push(kind);
    out.extend_from_slice(&(ts as i32).to_be_bytes());
    out.extend_from_slice(&(body.len() as i32).to_be_bytes());
    out.extend_from_slice(body);
}

/// An AVC sequence header body (`0x17 0x00 cts avcC`) cut right after the PPS list; `None` when it
/// is not a well-formed one.
pub fn trim_avc_config(body: &[u8]) -> Option<Vec<u8>> {
    let rec = body.get(5..)?;
    // version, profile, compatibility, level, length size, then the SPS count.
    let mut pos = 5;
    let sps = usize::from(*rec.get(pos)? & 0x1F);
    pos += 1;
    for _ in 0..sps {
        let n = usize::from(u16::from_be_bytes([*rec.get(pos)?, *rec.get(pos + 1)?]));
        pos += 2 + n;
    }
    let pps = usize::from(*rec.get(pos)?);
    pos += 1;
    for _ in 0..pps {
        let n = usize::from(u16::from_be_bytes([*rec.get(pos)?, *rec.get(pos + 1)?]));
        pos += 2 + n;
    }
    if pos > rec.len() || sps == 0 {
        return None;
    }
    Some(body[..5 + pos].to_vec())
}

impl Framer {
    /// A framer for a stream with (`has_audio`) or without sound.
    pub fn new(has_audio: bool) -> Self {
        Self {
            expect_audio: has_audio,
            ..Self::default()
        }
    }

    /// Appends the frames `tag` makes (none, one, or the start: configurations, a keyframe and
    /// held audio) to `out`.
    pub fn push(&mut self, tag: &Tag, out: &mut Vec<u8>) {
        let b = &tag.body;
        match tag.kind {
            TAG_VIDEO if b.len() >= 5 && b[0] & 0x0F == 7 => match (b[0] >> 4, b[1]) {
                (1, 0) => {
                    if let Some(cfg) = trim_avc_config(b) {
                        self.video_config = Some(cfg);
                    }
                }
                (1, 1) => self.keyframe(tag.ts, b, out),
                (2, 1) if self.started => push_frame(out, VIDEO, tag.ts, b),
                _ => {}
            },
            // AAC only (sound format 10); the first byte (format, rate, size, channels) is not sent.
            TAG_AUDIO if b.len() >= 2 && b[0] >> 4 == 10 => match b[1] {
                0 => {
                    self.audio_config = Some(b[1..].to_vec());
                    if self.started {
                        push_frame(out, AUDIO, tag.ts, &b[1..]);
                    }
                }
                1 if self.started => push_frame(out, AUDIO, tag.ts, &b[1..]),
                1 => {
                    self.held.push_back((tag.ts, b[1..].to_vec()));
                    while self
                        .held
                        .front()
                        .is_some_and(|(t, _)| tag.ts.saturating_sub(*t) > HOLD_MS)
                    {
                        self.held.pop_front();
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }

    fn keyframe(&mut self, ts: u32, body: &[u8], out: &mut Vec<u8>) {
        let Some(cfg) = &self.video_config else {
            return;
        };
        if self.started {
            push_frame(out, VIDEO, ts, cfg);
            push_frame(out, VIDEO, ts, body);
            return;
        }
        // Start here only once the sound has reached this moment (or there is none to wait for).
        // The held sound must cover the keyframe's moment: begin at or before it, and reach it.
        let covered = match (self.held.front(), self.held.back()) {
            (Some((first, _)), Some((last, _))) => *first <= ts + 30 && *last + 50 >= ts,
            _ => false,
        };
        if self.expect_audio && (self.audio_config.is_none() || !covered) {
            return;
        }
        if let Some(a) = &self.audio_config {
            push_frame(out, AUDIO, ts, a);
        }
        push_frame(out, VIDEO, ts, cfg);
        push_frame(out, VIDEO, ts, body);
        for (t, a) in self.held.drain(..).filter(|(t, _)| *t + 30 >= ts) {
            push_frame(out, AUDIO, t, &a);
        }
        self.started = true;
    }

    /// Whether the start is still waited for.
    pub fn waiting(&self) -> bool {
        !self.started
    }
}

/// The answer to the SDK's placeholder offer: the same m-lines in the same order, each with a
/// non-zero port when the stream has that kind of media and port 0 (rejected) when not: the port
/// is all the SDK reads.
pub fn answer(offer: &str, has_video: bool, has_audio: bool) -> String {
    let mut sdp =
        String::from("v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n");
    let mut kinds: Vec<&str> = offer
        .lines()
        .filter_map(|l| l.strip_prefix("m="))
        .filter_map(|l| l.split(' ').next())
        .collect();
    if kinds.is_empty() {
        kinds = vec!["video", "audio"];
    }
    for kind in kinds {
        let (present, line) = match kind {
            "video" => (has_video, "RTP/AVP 112\r\na=rtpmap:112 H264/90000"),
            "audio" => (
                has_audio,
                "RTP/AVP 108\r\na=rtpmap:108 mpeg4-generic/48000/2",
            ),
            _ => (false, "RTP/AVP 0"),
        };
        let port = if present { 9 } else { 0 };
        sdp.push_str(&format!("m={kind} {port} {line}\r\na=sendonly\r\n"));
    }
    sdp
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn tag(kind: u8, ts: u32, body: &[u8]) -> Tag {
        Tag {
            kind,
            ts,
            body: Bytes::copy_from_slice(body),
        }
    }

    /// A High-profile sequence header with one SPS, one PPS and the 4-byte extension after them.
    const AVC_HIGH: &[u8] = &[
        0x17, 0, 0, 0, 0, // keyframe + AVC, sequence header, cts 0
        1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 3, 0x67, 0x64, 0x1F, 1, 0, 2, 0x68,
        0xEE, // avcC to the PPS
        0xFD, 0xF8, 0xF8, 0, // chroma format, bit depths, no SPS extensions
    ];

    #[test]
    fn the_avc_record_is_cut_after_its_pps_and_sent_before_every_keyframe() {
        let mut f = Framer::new(false);
        let mut out = Vec::new();
        f.push(
            &tag(TAG_VIDEO, 0, &[0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41]),
            &mut out,
        );
        assert!(
            out.is_empty(),
            "nothing before a configuration and a keyframe"
        );
        f.push(&tag(TAG_VIDEO, 40, AVC_HIGH), &mut out);
        assert!(out.is_empty(), "the configuration waits for its keyframe");
        let key = [0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65];
        f.push(&tag(TAG_VIDEO, 40, &key), &mut out);
        let cfg_len = AVC_HIGH.len() - 4;
        assert_eq!(out[0], VIDEO);
        assert_eq!(&out[1..5], &40i32.to_be_bytes());
        assert_eq!(&out[5..9], &(cfg_len as i32).to_be_bytes());
        assert_eq!(&out[9..9 + cfg_len], &AVC_HIGH[..cfg_len]);
        let rest = &out[9 + cfg_len..];
        assert_eq!(rest[0], VIDEO);
        assert_eq!(&rest[5..9], &(key.len() as i32).to_be_bytes());
        assert_eq!(&rest[9..], &key);
        out.clear();
        f.push(
            &tag(TAG_VIDEO, 73, &[0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41]),
            &mut out,
        );
        assert_eq!(out.len(), 9 + 10);
        out.clear();
        f.push(&tag(TAG_VIDEO, 2040, &key), &mut out);
        assert_eq!(
            out.len(),
            2 * 9 + cfg_len + key.len(),
            "the record again before the next keyframe"
        );
    }

    #[test]
    fn aac_goes_without_its_first_byte_and_other_tags_not_at_all() {
        let mut f = Framer::new(true);
        let mut out = Vec::new();
        f.push(&tag(TAG_AUDIO, 0, &[0xAF, 0, 0x12, 0x10]), &mut out);
        f.push(&tag(TAG_AUDIO, 23, &[0xAF, 1, 0x21, 0x10]), &mut out);
        assert!(out.is_empty(), "sound waits for the picture's start");
        f.push(&tag(TAG_VIDEO, 10, AVC_HIGH), &mut out);
        f.push(
            &tag(TAG_VIDEO, 10, &[0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65]),
            &mut out,
        );
        // The start: ASC, AVC record, keyframe, then the held audio from the keyframe on.
        assert_eq!(&out[..12], [AUDIO, 0, 0, 0, 10, 0, 0, 0, 3, 0, 0x12, 0x10]);
        assert_eq!(
            &out[out.len() - 12..],
            [AUDIO, 0, 0, 0, 23, 0, 0, 0, 3, 1, 0x21, 0x10]
        );
        out.clear();
        f.push(&tag(TAG_AUDIO, 46, &[0xAF, 1, 0x21, 0x10]), &mut out);
        assert_eq!(out, [AUDIO, 0, 0, 0, 46, 0, 0, 0, 3, 1, 0x21, 0x10]);
        out.clear();
        f.push(&tag(18, 0, b"\x02\x00\x0aonMetaData"), &mut out);
        f.push(&tag(TAG_AUDIO, 0, &[0x2F, 0xFF]), &mut out); // MP3
        f.push(&tag(TAG_VIDEO, 0, &[0x1C, 0, 0, 0, 0]), &mut out); // HEVC (12)
        assert!(out.is_empty());
        assert!(
            trim_avc_config(&[0x17, 0, 0, 0, 0, 1, 0x64]).is_none(),
            "truncated records are refused"
        );
    }

    #[test]
    fn the_answer_rejects_only_what_the_stream_lacks() {
        let offer = "v=0\r\nm=video 0 RTP/AVP 112\r\na=recvonly\r\nm=audio 0 RTP/AVP 108 96\r\na=recvonly\r\n";
        let a = answer(offer, true, false);
        let ports: Vec<&str> = a
            .lines()
            .filter(|l| l.starts_with("m="))
            .map(|l| l.split(' ').nth(1).unwrap())
            .collect();
        assert_eq!(ports, ["9", "0"]);
        assert!(a.find("m=video").unwrap() < a.find("m=audio").unwrap());
    }
}
