//! Codecs the engine moves between pipelines, with the caps each one travels in. Every track inside
//! the engine is in one canonical form per codec, so any consumer can take any producer's buffers.

use serde::Serialize;

/// An encoded track's codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Codec {
    /// H.264, Annex B byte-stream, one access unit per buffer, SPS/PPS before every IDR.
    H264,
    /// H.265, Annex B byte-stream, one access unit per buffer, parameter sets before every
    /// keyframe. Cameras send it; outputs that take only H.264 get it through the shared bridge.
    H265,
    /// VP8.
    Vp8,
    /// Opus, 48 kHz.
    Opus,
    /// AAC (raw, with codec_data).
    Aac,
}

impl Codec {
    /// Whether this is a video codec (has keyframes).
    pub fn is_video(self) -> bool {
        matches!(self, Codec::H264 | Codec::H265 | Codec::Vp8)
    }

    /// RTP encoding name as in SDP.
    pub fn rtp_name(self) -> &'static str {
        match self {
            Codec::H264 => "H264",
            Codec::H265 => "H265",
            Codec::Vp8 => "VP8",
            Codec::Opus => "OPUS",
            Codec::Aac => "MPEG4-GENERIC",
        }
    }

    /// RTP clock rate.
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::H264 | Codec::H265 | Codec::Vp8 => 90_000,
            Codec::Opus => 48_000,
            Codec::Aac => 48_000,
        }
    }

    /// Parses an SDP rtpmap encoding name.
    pub fn from_rtp_name(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "H264" => Some(Codec::H264),
            "VP8" => Some(Codec::Vp8),
            "OPUS" => Some(Codec::Opus),
            _ => None,
        }
    }

    /// The name WCS reports in `videoCodec` / `audioCodec`.
    pub fn wcs_name(self) -> &'static str {
        match self {
            Codec::H264 => "H264",
            Codec::H265 => "H265",
            Codec::Vp8 => "VP8",
            Codec::Opus => "opus",
            Codec::Aac => "mpeg4-generic",
        }
    }

    /// The canonical caps of this codec inside the engine.
    pub fn caps(self) -> gst::Caps {
        match self {
            Codec::H264 => gst::Caps::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build(),
            Codec::H265 => gst::Caps::builder("video/x-h265")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build(),
            Codec::Vp8 => gst::Caps::builder("video/x-vp8").build(),
            Codec::Opus => gst::Caps::builder("audio/x-opus").build(),
            Codec::Aac => gst::Caps::builder("audio/mpeg")
                .field("mpegversion", 4i32)
                .field("stream-format", "raw")
                .build(),
        }
    }

    /// Short lowercase name used in file and element names.
    pub fn slug(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
            Codec::Vp8 => "vp8",
            Codec::Opus => "opus",
            Codec::Aac => "aac",
        }
    }
}
