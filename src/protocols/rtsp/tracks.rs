//! What RTSP carries and how each kind becomes one of the engine's tracks, for cameras pulled
//! ([`super::pull`]) and publishers that ANNOUNCE ([`super::server`]) alike: H.264, AAC and Opus
//! pass through; G.711 (PCMA, PCMU) is decoded once at ingest and encoded to Opus at 48 kHz, so
//! every output (and the shared AAC bridge) takes it like any other stream. The other way, the
//! payloader each engine codec is served with.

use crate::engine::media::Codec;
use crate::engine::templates;

/// How one RTP track enters the engine: its depayloader and what follows it.
pub struct IngestChain {
    /// The engine track it feeds.
    pub codec: Codec,
    /// The depayloader's element factory.
    pub depay: &'static str,
    /// The elements after the depayloader, in order, ending in the track's canonical caps.
    pub rest: Vec<gst::Element>,
}

/// The encoding name of an SDP media (`H264`, `PCMA`), from its rtpmap or, for the static payload
/// types that need none, its number.
pub fn encoding_name(payload: u32, rtpmap: Option<&str>) -> Option<String> {
    if let Some(map) = rtpmap {
        // "96 H264/90000"
        let name = map.split_whitespace().nth(1)?.split('/').next()?;
        return Some(name.to_ascii_uppercase());
    }
    match payload {
        0 => Some("PCMU".into()),
        8 => Some("PCMA".into()),
        _ => None,
    }
}

/// Whether `encoding` can be ingested.
pub fn supported(encoding: &str) -> bool {
    matches!(
        encoding.to_ascii_uppercase().as_str(),
        "H264" | "H265" | "MPEG4-GENERIC" | "OPUS" | "PCMA" | "PCMU"
    )
}

/// The chain for a track of `encoding` (an SDP encoding name).
pub fn ingest_chain(encoding: &str) -> anyhow::Result<IngestChain> {
    let make = |f: &str| gst::ElementFactory::make(f).build();
    let encoding = encoding.to_ascii_uppercase();
    let (codec, depay, mut rest): (Codec, &'static str, Vec<gst::Element>) = match encoding.as_str()
    {
        "H264" => (
            Codec::H264,
            "rtph264depay",
            vec![gst::ElementFactory::make("h264parse")
                .property("config-interval", -1i32)
                .build()?],
        ),
        "H265" => (
            Codec::H265,
            "rtph265depay",
            vec![gst::ElementFactory::make("h265parse")
                .property("config-interval", -1i32)
                .build()?],
        ),
        "MPEG4-GENERIC" => (Codec::Aac, "rtpmp4gdepay", vec![make("aacparse")?]),
        "OPUS" => (Codec::Opus, "rtpopusdepay", vec![]),
        "PCMA" | "PCMU" => {
            let (depay, dec) = if encoding == "PCMA" {
                ("rtppcmadepay", "alawdec")
            } else {
                ("rtppcmudepay", "mulawdec")
            };
            (
                Codec::Opus,
                depay,
                std::iter::once(make(dec)?)
                    .chain(templates::raw_to_opus()?)
                    .collect(),
            )
        }
        other => anyhow::bail!("RTP track {other:?} is not supported"),
    };
    rest.push(
        gst::ElementFactory::make("capsfilter")
            .property("caps", codec.caps())
            .build()?,
    );
    Ok(IngestChain { codec, depay, rest })
}

/// The payloader (a `gst-launch` fragment) an engine codec is served over RTSP with, as stream
/// `index` (gst-rtsp-server finds payloaders by the name `payN`).
pub fn payloader(codec: Codec, index: usize) -> String {
    let (factory, pt, extra) = match codec {
        // Parameter sets with every keyframe: a viewer may join at any of them.
        Codec::H264 => (
            "rtph264pay",
            96,
            "config-interval=-1 aggregate-mode=zero-latency",
        ),
        Codec::H265 => (
            "rtph265pay",
            96,
            "config-interval=-1 aggregate-mode=zero-latency",
        ),
        Codec::Vp8 => ("rtpvp8pay", 96, ""),
        Codec::Opus => ("rtpopuspay", 97, ""),
        Codec::Aac => ("rtpmp4gpay", 97, ""),
    };
    format!("{factory} name=pay{index} pt={pt} {extra}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_from_sdp() {
        assert_eq!(
            encoding_name(96, Some("96 H264/90000")).as_deref(),
            Some("H264")
        );
        assert_eq!(
            encoding_name(97, Some("97 mpeg4-generic/44100/2")).as_deref(),
            Some("MPEG4-GENERIC")
        );
        assert_eq!(encoding_name(8, None).as_deref(), Some("PCMA"));
        assert_eq!(encoding_name(0, None).as_deref(), Some("PCMU"));
        assert_eq!(encoding_name(96, None), None);
        assert_eq!(encoding_name(96, Some("garbage")), None);
        assert!(supported("h264") && supported("PCMU") && supported("H265") && !supported("AV1"));
    }
}
