//! Pipeline fragments (`pipelines/`) and encoder presets (`presets/`) are data. Defaults are built
//! into the binary; a directory given in the configuration may override any of them. Everything is
//! checked at start-up against the installed GStreamer elements, so a typo or a missing plugin stops
//! the server with a clear message.

use super::media::Codec;
use anyhow::Context;
use gst::prelude::*;
use serde::Deserialize;
use std::collections::BTreeMap;

/// An encoder profile: the factory, its properties as launch-syntax strings, and an optional
/// fragment placed after it (a parser).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// Element factory name.
    pub factory: String,
    /// Launch fragment linked after the encoder.
    #[serde(default)]
    pub after: Option<String>,
    /// Properties, set with `set_property_from_str`.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

fn decode_fragment(codec: Codec) -> &'static str {
    match codec {
        Codec::H264 => include_str!("../../pipelines/decode/h264.gst"),
        Codec::H265 => include_str!("../../pipelines/decode/h265.gst"),
        Codec::Vp8 => include_str!("../../pipelines/decode/vp8.gst"),
        Codec::Opus => include_str!("../../pipelines/decode/opus.gst"),
        Codec::Aac => include_str!("../../pipelines/decode/aac.gst"),
    }
}

fn preset_text(codec: Codec) -> &'static str {
    match codec {
        Codec::H264 => include_str!("../../presets/h264.toml"),
        Codec::H265 => include_str!("../../presets/h265.toml"),
        Codec::Vp8 => include_str!("../../presets/vp8.toml"),
        Codec::Opus => include_str!("../../presets/opus.toml"),
        Codec::Aac => include_str!("../../presets/aac.toml"),
    }
}

/// The encoder preset for `codec`.
pub fn preset(codec: Codec) -> anyhow::Result<Preset> {
    toml::from_str(preset_text(codec)).with_context(|| format!("presets/{}.toml", codec.slug()))
}

/// A bin that decodes `codec` to raw media (ghost pads `sink` and `src`).
pub fn decoder(codec: Codec) -> anyhow::Result<gst::Bin> {
    gst::parse::bin_from_description(decode_fragment(codec).trim(), true)
        .with_context(|| format!("pipelines/decode/{}.gst", codec.slug()))
}

/// What turns raw audio into the engine's Opus: converted, resampled to 48 kHz (as WebRTC carries
/// it, and the AAC bridged from it), encoded per the Opus preset. For sources whose sound comes
/// in a codec no output takes (G.711 from cameras, MP3 from files).
pub fn raw_to_opus() -> anyhow::Result<Vec<gst::Element>> {
    let make = |f: &str| gst::ElementFactory::make(f).build();
    Ok(vec![
        make("audioconvert")?,
        make("audioresample")?,
        gst::ElementFactory::make("capsfilter")
            .property(
                "caps",
                gst::Caps::builder("audio/x-raw")
                    .field("rate", 48_000i32)
                    .build(),
            )
            .build()?,
        encoder(Codec::Opus)?.upcast(),
    ])
}

/// A bin that decodes MP3 (which RTMP publishers may send; it is taken as AAC) to raw audio.
pub fn mp3_decoder() -> anyhow::Result<gst::Bin> {
    gst::parse::bin_from_description(include_str!("../../pipelines/decode/mp3.gst").trim(), true)
        .context("pipelines/decode/mp3.gst")
}

/// A bin that encodes raw media to `codec` per its preset (ghost pads `sink` and `src`).
pub fn encoder(codec: Codec) -> anyhow::Result<gst::Bin> {
    let p = preset(codec)?;
    let bin = gst::Bin::new();
    let enc = gst::ElementFactory::make(&p.factory)
        .name("encoder")
        .build()
        .with_context(|| format!("presets/{}.toml: element {:?}", codec.slug(), p.factory))?;
    for (k, v) in &p.properties {
        if enc.find_property(k).is_none() {
            anyhow::bail!(
                "presets/{}.toml: {} has no property {k:?}",
                codec.slug(),
                p.factory
            );
        }
        enc.set_property_from_str(k, v);
    }
    bin.add(&enc)?;
    let mut last = enc.clone();
    if let Some(after) = &p.after {
        let tail = gst::parse::bin_from_description(after, true)
            .with_context(|| format!("presets/{}.toml: after = {after:?}", codec.slug()))?;
        bin.add(&tail)?;
        enc.link(&tail)?;
        last = tail.upcast();
    }
    let sink = enc.static_pad("sink").context("encoder has no sink pad")?;
    let src = last
        .static_pad("src")
        .context("encoder chain has no src pad")?;
    bin.add_pad(&gst::GhostPad::with_target(&sink)?)?;
    bin.add_pad(&gst::GhostPad::with_target(&src)?)?;
    Ok(bin)
}

/// The file extensions a recording writes, each with its writer fragment in `pipelines/record/`.
pub const RECORD_CONTAINERS: [&str; 3] = ["mp4", "webm", "mkv"];

/// The image formats a snapshot encodes to, each with its fragment in `pipelines/snapshot/`.
pub const IMAGE_FORMATS: [&str; 2] = ["png", "jpeg"];

fn record_track_fragment(codec: Codec) -> &'static str {
    match codec {
        Codec::H264 => include_str!("../../pipelines/record/h264.gst"),
        Codec::H265 => include_str!("../../pipelines/record/h265.gst"),
        Codec::Vp8 => include_str!("../../pipelines/record/vp8.gst"),
        Codec::Opus => include_str!("../../pipelines/record/opus.gst"),
        Codec::Aac => include_str!("../../pipelines/record/aac.gst"),
    }
}

/// A bin that readies an encoded track of `codec` for a recording's muxer (ghost pads `sink` and
/// `src`).
pub fn record_track(codec: Codec) -> anyhow::Result<gst::Bin> {
    gst::parse::bin_from_description(record_track_fragment(codec).trim(), true)
        .with_context(|| format!("pipelines/record/{}.gst", codec.slug()))
}

/// A bin that writes one recording file: the muxer is named `mux` (its pads are requested by the
/// caller), the file sink `sink`. `extension` is one of [`RECORD_CONTAINERS`].
pub fn record_writer(extension: &str) -> anyhow::Result<gst::Bin> {
    let text = match extension {
        "mp4" => include_str!("../../pipelines/record/mp4.gst"),
        "webm" => include_str!("../../pipelines/record/webm.gst"),
        "mkv" => include_str!("../../pipelines/record/mkv.gst"),
        other => anyhow::bail!("no recording writer for {other:?}"),
    };
    let bin = gst::parse::bin_from_description(text.trim(), false)
        .with_context(|| format!("pipelines/record/{extension}.gst"))?;
    for name in ["mux", "sink"] {
        anyhow::ensure!(
            bin.by_name(name).is_some(),
            "pipelines/record/{extension}.gst: no element named {name:?}"
        );
    }
    Ok(bin)
}

/// The HLS packagers' containers, each with its muxer fragment `pipelines/hls/{name}.gst`.
pub const HLS_CONTAINERS: [&str; 2] = ["fmp4", "ts"];

/// A bin that readies an encoded track of `codec` (H.264 or AAC) for an HLS muxer: the
/// recording's fragment for fMP4 (`pipelines/record/`), `pipelines/hls/ts-h264.gst` for H.264 in
/// MPEG-TS (byte-stream, parameter sets before every keyframe).
pub fn hls_track(container: &str, codec: Codec) -> anyhow::Result<gst::Bin> {
    if container == "ts" && codec == Codec::H264 {
        let text = include_str!("../../pipelines/hls/ts-h264.gst");
        return gst::parse::bin_from_description(text.trim(), true)
            .context("pipelines/hls/ts-h264.gst");
    }
    record_track(codec)
}

/// An HLS packager's muxer (`mux`, its pads requested by the caller) into the app sink `sink`.
/// `container` is one of [`HLS_CONTAINERS`].
pub fn hls_muxer(container: &str) -> anyhow::Result<gst::Bin> {
    let text = match container {
        "fmp4" => include_str!("../../pipelines/hls/fmp4.gst"),
        "ts" => include_str!("../../pipelines/hls/ts.gst"),
        other => anyhow::bail!("no HLS muxer for {other:?}"),
    };
    let bin = gst::parse::bin_from_description(text.trim(), false)
        .with_context(|| format!("pipelines/hls/{container}.gst"))?;
    for name in ["mux", "sink"] {
        anyhow::ensure!(
            bin.by_name(name).is_some(),
            "pipelines/hls/{container}.gst: no element named {name:?}"
        );
    }
    Ok(bin)
}

/// Registers the GStreamer elements built into the binary (`isofmp4mux` from gst-plugins-rs,
/// which Debian's GStreamer 1.22 lacks). Safe to call more than once.
pub fn register_builtin_plugins() -> anyhow::Result<()> {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| gstisobmff::plugin_register_static().map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| anyhow::anyhow!("registering the built-in isobmff plugin: {e}"))
}

/// A bin that encodes one raw video frame to an image (ghost pads `sink` and `src`). `format` is
/// one of [`IMAGE_FORMATS`].
pub fn image_encoder(format: &str) -> anyhow::Result<gst::Bin> {
    let text = match format {
        "png" => include_str!("../../pipelines/snapshot/png.gst"),
        "jpeg" => include_str!("../../pipelines/snapshot/jpeg.gst"),
        other => anyhow::bail!("no image encoder for {other:?}"),
    };
    gst::parse::bin_from_description(text.trim(), true)
        .with_context(|| format!("pipelines/snapshot/{format}.gst"))
}

/// The mixer's fragments (`pipelines/mixer/NAME.gst`).
const MIXER_FRAGMENTS: [(&str, &str); 3] = [
    (
        "video-input",
        include_str!("../../pipelines/mixer/video-input.gst"),
    ),
    (
        "placeholder",
        include_str!("../../pipelines/mixer/placeholder.gst"),
    ),
    (
        "audio-input",
        include_str!("../../pipelines/mixer/audio-input.gst"),
    ),
];

/// Elements the mixer makes itself around its fragments.
const MIXER_ELEMENTS: [&str; 5] = [
    "compositor",
    "audiomixer",
    "videotestsrc",
    "audiotestsrc",
    "tee",
];

/// A mixer fragment by name (`video-input`, `placeholder`, `audio-input`).
pub fn mixer_fragment(name: &str) -> anyhow::Result<gst::Bin> {
    let (_, text) = MIXER_FRAGMENTS
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| anyhow::anyhow!("no mixer fragment {name}"))?;
    let bin = gst::parse::bin_from_description(text.trim(), false)
        .with_context(|| format!("pipelines/mixer/{name}.gst"))?;
    // Ghost pads by hand: the first element's sink and the last one's src (textoverlay's unlinked
    // text pad must not be taken for the input).
    let elements: Vec<gst::Element> = bin.iterate_sorted().into_iter().flatten().collect();
    // Sorted sinks first: the last element comes first.
    let (last, first) = (elements.first(), elements.last());
    for (element, pad, dir) in [(first, "sink", "sink"), (last, "src", "src")] {
        let Some(target) = element.and_then(|e| e.static_pad(pad)) else {
            anyhow::ensure!(
                dir == "sink",
                "pipelines/mixer/{name}.gst: the last element has no src pad"
            );
            continue;
        };
        let ghost = gst::GhostPad::builder_with_target(&target)?
            .name(dir)
            .build();
        bin.add_pad(&ghost)?;
    }
    Ok(bin)
}

/// Builds every fragment and preset once; the first failure explains what is wrong.
pub fn validate() -> anyhow::Result<()> {
    register_builtin_plugins()?;
    for codec in [Codec::H264, Codec::Vp8, Codec::Opus, Codec::Aac] {
        decoder(codec)?;
        encoder(codec)?;
        record_track(codec)?;
    }
    // H.265 is taken from cameras and files (decoded for bridges, recorded as it is); its encoder
    // preset is checked only when a bridge to it is asked for.
    decoder(Codec::H265)?;
    record_track(Codec::H265)?;
    mp3_decoder()?;
    for ext in RECORD_CONTAINERS {
        record_writer(ext)?;
    }
    for format in IMAGE_FORMATS {
        image_encoder(format)?;
    }
    for container in HLS_CONTAINERS {
        hls_muxer(container)?;
        hls_track(container, Codec::H264)?;
    }
    for (name, _) in MIXER_FRAGMENTS {
        mixer_fragment(name)?;
    }
    for factory in MIXER_ELEMENTS {
        anyhow::ensure!(
            gst::ElementFactory::find(factory).is_some(),
            "the mixer needs the GStreamer element {factory}, which is not installed"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn built_in_fragments_and_presets_are_valid() {
        gst::init().unwrap();
        super::validate().unwrap();
    }
}
