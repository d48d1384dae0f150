//! FLV and RTMP chunk framing, the parts GStreamer does not do for us: wrapping RTMP audio/video
//! messages into an FLV byte stream for `flvdemux`, cutting `flvmux`'s output back into tags, and
//! chunking a tag into RTMP bytes once so that every viewer is sent the very same buffer. Pure
//! functions over bytes, unit-tested.

use bytes::{BufMut, Bytes, BytesMut};

/// FLV tag types (also the RTMP message type ids).
pub const TAG_AUDIO: u8 = 8;
/// Video tag.
pub const TAG_VIDEO: u8 = 9;
/// Script data (onMetaData).
pub const TAG_SCRIPT: u8 = 18;

/// Chunk stream ids used for shared media output; distinct from the ones the session library uses
/// for its own messages (2–6), so its header compression never refers to our chunks.
pub const CSID_VIDEO: u32 = 8;
/// Chunk stream id for audio.
pub const CSID_AUDIO: u32 = 9;
/// Chunk stream id for script data.
pub const CSID_SCRIPT: u32 = 10;

/// The FLV file header (audio and video present) followed by PreviousTagSize0.
pub fn header() -> Bytes {
    Bytes::from_static(&[b'F', b'L', b'V', 1, 0x05, 0, 0, 0, 9, 0, 0, 0, 0])
}

/// One FLV tag with its trailing PreviousTagSize.
pub fn tag(kind: u8, ts_ms: u32, body: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(11 + body.len() + 4);
    let size = body.len() as u32;
    b.put_u8(kind);
    b.put_uint(u64::from(size), 3);
    b.put_uint(u64::from(ts_ms & 0x00FF_FFFF), 3);
    b.put_u8((ts_ms >> 24) as u8);
    b.put_uint(0, 3);
    b.put_slice(body);
    b.put_u32(11 + size);
    b.freeze()
}

/// A parsed FLV tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// Tag type.
    pub kind: u8,
    /// Timestamp in milliseconds.
    pub ts: u32,
    /// Tag body (the RTMP message payload).
    pub body: Bytes,
}

impl Tag {
    /// A video tag that starts a GOP.
    pub fn is_keyframe(&self) -> bool {
        self.kind == TAG_VIDEO && self.body.first().is_some_and(|b| b >> 4 == 1)
    }

    /// A decoder configuration (AVC or HEVC sequence header, AAC AudioSpecificConfig).
    pub fn is_sequence_header(&self) -> bool {
        match self.kind {
            TAG_VIDEO => self.body.len() >= 2 && self.body[0] & 0x0F == 7 && self.body[1] == 0,
            TAG_AUDIO => self.body.len() >= 2 && self.body[0] >> 4 == 10 && self.body[1] == 0,
            _ => false,
        }
    }
}

/// Cuts FLV bytes into tags, skipping an FLV file header. Returns the tags and how many bytes were
/// used (an incomplete tag at the end is left for the next call).
pub fn parse(buf: &[u8]) -> (Vec<Tag>, usize) {
    let mut pos = 0;
    let mut out = Vec::new();
    if buf.len() >= 13 && &buf[..3] == b"FLV" {
        pos = 13;
    }
    while buf.len() >= pos + 11 {
        let kind = buf[pos] & 0x1F;
        let size = (usize::from(buf[pos + 1]) << 16)
            | (usize::from(buf[pos + 2]) << 8)
            | usize::from(buf[pos + 3]);
        let ts = (u32::from(buf[pos + 4]) << 16)
            | (u32::from(buf[pos + 5]) << 8)
            | u32::from(buf[pos + 6])
            | (u32::from(buf[pos + 7]) << 24);
        let end = pos + 11 + size + 4;
        if buf.len() < end {
            break;
        }
        out.push(Tag {
            kind,
            ts,
            body: Bytes::copy_from_slice(&buf[pos + 11..pos + 11 + size]),
        });
        pos = end;
    }
    (out, pos)
}

/// Serialises one RTMP message into chunks: a type-0 header (absolute timestamp, so the bytes do
/// not depend on what this peer was sent before) and type-3 continuation headers.
pub fn chunk(
    csid: u32,
    type_id: u8,
    ts: u32,
    stream_id: u32,
    body: &[u8],
    chunk_size: usize,
) -> Bytes {
    debug_assert!((3..64).contains(&csid));
    let extended = ts >= 0x00FF_FFFF;
    let pieces = body.len().div_ceil(chunk_size).max(1);
    let mut b = BytesMut::with_capacity(body.len() + 16 + pieces * 5);
    b.put_u8(csid as u8); // fmt 0
    b.put_uint(u64::from(if extended { 0x00FF_FFFF } else { ts }), 3);
    b.put_uint(body.len() as u64, 3);
    b.put_u8(type_id);
    b.put_u32_le(stream_id);
    if extended {
        b.put_u32(ts);
    }
    for (i, piece) in body.chunks(chunk_size).enumerate() {
        if i > 0 {
            b.put_u8(0xC0 | csid as u8); // fmt 3
            if extended {
                b.put_u32(ts);
            }
        }
        b.put_slice(piece);
    }
    b.freeze()
}

/// The NAL units of an Annex B access unit (start codes removed).
pub fn nal_units(au: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut start: Option<usize> = None;
    while i + 3 <= au.len() {
        if au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1 {
            if let Some(s) = start {
                // A four-byte start code leaves a zero at the end of the previous unit.
                let mut end = i;
                if end > s && au[end - 1] == 0 {
                    end -= 1;
                }
                out.push(&au[s..end]);
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        if s < au.len() {
            out.push(&au[s..]);
        }
    }
    out
}

/// An AVC video tag body carrying an AVCDecoderConfigurationRecord.
pub fn avc_sequence_header(sps: &[u8], pps: &[u8]) -> Option<Vec<u8>> {
    if sps.len() < 4 || pps.is_empty() {
        return None;
    }
    let mut b = vec![0x17, 0, 0, 0, 0, 1, sps[1], sps[2], sps[3], 0xFF, 0xE1];
    b.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    b.extend_from_slice(sps);
    b.push(1);
    b.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    b.extend_from_slice(pps);
    Some(b)
}

/// An AVC video tag body with length-prefixed NAL units; `cts_ms` is presentation minus decode time.
pub fn avc_frame(nals: &[&[u8]], keyframe: bool, cts_ms: i32) -> Vec<u8> {
    let size: usize = nals.iter().map(|n| n.len() + 4).sum();
    let mut b = Vec::with_capacity(5 + size);
    b.push(if keyframe { 0x17 } else { 0x27 });
    b.push(1);
    b.extend_from_slice(&cts_ms.to_be_bytes()[1..]);
    for n in nals {
        b.extend_from_slice(&(n.len() as u32).to_be_bytes());
        b.extend_from_slice(n);
    }
    b
}

/// AAC tag bodies: the sequence header carries the AudioSpecificConfig, frames carry raw AAC.
pub fn aac_body(payload: &[u8], sequence_header: bool) -> Vec<u8> {
    // 0xAF: AAC, 44 kHz, 16-bit, stereo — the fixed value FLV requires for AAC.
    let mut b = Vec::with_capacity(2 + payload.len());
    b.push(0xAF);
    b.push(if sequence_header { 0 } else { 1 });
    b.extend_from_slice(payload);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annexb_to_avc() {
        let au = [
            0, 0, 0, 1, 0x67, 0x42, 0xE0, 0x1F, 9, 0, 0, 1, 0x68, 0xCE, 0, 0, 0, 1, 0x65, 1, 2, 3,
        ];
        let n = nal_units(&au);
        assert_eq!(
            n,
            vec![
                &[0x67, 0x42, 0xE0, 0x1F, 9][..],
                &[0x68, 0xCE][..],
                &[0x65, 1, 2, 3][..]
            ]
        );
        let seq = avc_sequence_header(n[0], n[1]).unwrap();
        assert_eq!(
            &seq[..11],
            &[0x17, 0, 0, 0, 0, 1, 0x42, 0xE0, 0x1F, 0xFF, 0xE1]
        );
        let f = avc_frame(&n[2..], true, -33);
        assert_eq!(&f[..5], &[0x17, 1, 0xFF, 0xFF, 0xDF]);
        assert_eq!(&f[5..9], &[0, 0, 0, 4]);
        assert_eq!(aac_body(&[0x11, 0x90], true), vec![0xAF, 0, 0x11, 0x90]);
    }

    #[test]
    fn tags_round_trip() {
        let mut stream = header().to_vec();
        stream.extend_from_slice(&tag(TAG_VIDEO, 40, &[0x17, 0, 0, 0, 0, 1, 2]));
        stream.extend_from_slice(&tag(TAG_AUDIO, 0x0100_0001, &[0xAF, 1, 9]));
        let partial = tag(TAG_VIDEO, 80, &[0x27, 1, 0, 0, 0, 5]);
        stream.extend_from_slice(&partial[..5]);
        let (tags, used) = parse(&stream);
        assert_eq!(tags.len(), 2);
        assert!(tags[0].is_keyframe() && tags[0].is_sequence_header());
        assert_eq!(tags[1].ts, 0x0100_0001, "extended timestamp byte");
        assert!(!tags[1].is_sequence_header());
        assert_eq!(used, stream.len() - 5);
    }

    #[test]
    fn chunks_with_type3_continuations() {
        let body: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let c = chunk(CSID_VIDEO, TAG_VIDEO, 1000, 1, &body, 128);
        // 12-byte header, 300 bytes body, two 1-byte continuation headers.
        assert_eq!(c.len(), 12 + 300 + 2);
        assert_eq!(c[0], 8);
        assert_eq!(&c[1..4], &[0, 0x03, 0xE8]);
        assert_eq!(&c[4..7], &[0, 0x01, 0x2C]);
        assert_eq!(c[7], TAG_VIDEO);
        assert_eq!(&c[8..12], &[1, 0, 0, 0]);
        assert_eq!(c[12 + 128], 0xC8);
        assert_eq!(c[12 + 128 + 1 + 128], 0xC8);
        let ext = chunk(CSID_AUDIO, TAG_AUDIO, 0x0100_0000, 1, &body[..200], 128);
        assert_eq!(
            ext.len(),
            12 + 4 + 200 + 1 + 4,
            "extended timestamp repeated after type-3"
        );
    }
}
