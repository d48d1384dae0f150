//! The mixer's pipeline: one compositor for the picture and one audiomixer per audio mix (the
//! full mix, and one "minus one" per MCU participant that leaves out that participant's voice).
//! Both aggregators run live against a live background (a solid colour and silence), so the mix
//! goes on at its own pace with no input at all; an input that is late, stalls or leaves simply
//! misses the frame (`ignore-inactive-pads`, a latency budget), it is never waited for.
//!
//! Each input is a branch fed from the stream's shared decoder (see [`crate::ops::decoded`]):
//! video is scaled into its tile and captioned before the compositor (so captions keep their size
//! whatever the source's), and above a placeholder tile (the name on a plain background) that
//! shows whenever the video is missing, not yet decoded, or muted. Audio is converted once, then a
//! `tee` hands it to every mix that includes it. Branches are added and taken out while the
//! pipeline plays; a branch leaving is locked and stopped before its pads are released, so no
//! element ever pushes into a released pad (which would fail the whole pipeline).

use super::layout::Tile;
use crate::engine::media::Codec;
use crate::engine::pipeline::PipelineGuard;
use crate::engine::producer::{track_sink, Producer, Stamping};
use crate::engine::templates;
use crate::ops::decoded::AUDIO_CAPS;
use anyhow::Context;
use gst::prelude::*;
use std::sync::Arc;

/// The output picture.
#[derive(Debug, Clone, Copy)]
pub struct Picture {
    /// Width in pixels (even).
    pub width: u32,
    /// Height in pixels (even).
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Encoder bitrate.
    pub kbps: u32,
    /// Background colour, 0xAARRGGBB.
    pub background: u32,
}

fn by_name(bin: &gst::Bin, name: &str) -> anyhow::Result<gst::Element> {
    bin.by_name(name)
        .ok_or_else(|| anyhow::anyhow!("mixer fragment has no element {name}"))
}

fn make(factory: &str) -> anyhow::Result<gst::Element> {
    Ok(gst::ElementFactory::make(factory).build()?)
}

/// Stops elements that are leaving the pipeline and takes them out. Locked first, so a state
/// change of the pipeline cannot start them again meanwhile.
fn retire(pipeline: &gst::Pipeline, elements: &[gst::Element]) {
    for e in elements {
        e.set_locked_state(true);
        let _ = e.set_state(gst::State::Null);
    }
    for e in elements {
        let _ = pipeline.remove(e);
    }
}

/// Cuts a branch off an aggregator without waiting on it: the branch's last pad drops whatever it
/// still pushes, then the aggregator's pad is released, which wakes a push blocked in it (the
/// aggregator holds one buffer per pad until its next output). Only then can the branch be
/// stopped: stopping first would wait for that blocked push forever.
fn cut(aggregator: &gst::Element, pad: &gst::Pad) {
    if let Some(peer) = pad.peer() {
        peer.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            |_, _| gst::PadProbeReturn::Drop,
        );
    }
    release(aggregator, pad);
}

fn release(element: &gst::Element, pad: &gst::Pad) {
    if let Some(peer) = pad.peer() {
        let _ = if pad.direction() == gst::PadDirection::Src {
            pad.unlink(&peer)
        } else {
            peer.unlink(pad)
        };
    }
    element.release_request_pad(pad);
}

fn tile_caps(tile: &Tile, fps: Option<u32>) -> gst::Caps {
    let mut b = gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", tile.width.max(2))
        .field("height", tile.height.max(2))
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1));
    if let Some(f) = fps {
        b = b.field("framerate", gst::Fraction::new(f as i32, 1));
    }
    b.build()
}

/// A source of raw media for a branch: samples are pushed in from the decoder's thread.
fn input_appsrc(max_buffers: u64) -> gst_app::AppSrc {
    // Unnamed: GStreamer numbers them, and names must be unique in the pipeline.
    let src = gst_app::AppSrc::builder()
        .format(gst::Format::Time)
        .is_live(true)
        .do_timestamp(false)
        .block(false)
        .build();
    // Raw pictures are big: keep a few, dropping the oldest, so a mixer that falls behind shows
    // the newest frames instead of queueing seconds of them.
    src.set_property("max-buffers", max_buffers);
    src.set_property_from_str("leaky-type", "downstream");
    src
}

/// One tile of the picture: a branch into a compositor pad.
pub struct TileBranch {
    elements: Vec<gst::Element>,
    size: gst::Element,
    caption: gst::Element,
    pad: gst::Pad,
    fps: Option<u32>,
    /// Set for a video branch: where decoded pictures are pushed.
    pub appsrc: Option<gst_app::AppSrc>,
}

impl TileBranch {
    /// Moves and resizes the tile; `None` hides it.
    pub fn place(&self, tile: Option<&Tile>) {
        match tile {
            Some(t) => {
                self.size.set_property("caps", tile_caps(t, self.fps));
                self.pad.set_property("xpos", t.x);
                self.pad.set_property("ypos", t.y);
                self.pad.set_property("zorder", t.zorder);
                self.pad.set_property("alpha", 1.0f64);
            }
            None => self.pad.set_property("alpha", 0.0f64),
        }
    }

    /// Shows or hides the tile in place.
    pub fn set_visible(&self, visible: bool) {
        self.pad
            .set_property("alpha", if visible { 1.0f64 } else { 0.0 });
    }

    /// The caption.
    pub fn set_caption(&self, text: &str) {
        self.caption.set_property("text", text);
    }
}

/// One input's audio: converted once, then split to the mixes that include it.
pub struct AudioBranch {
    elements: Vec<gst::Element>,
    tee: gst::Element,
    volume: gst::Element,
    /// Where decoded samples are pushed.
    pub appsrc: gst_app::AppSrc,
    /// Links into mixes: (mix id, tee pad, queue, mixer pad).
    links: Vec<(u64, gst::Pad, gst::Element, gst::Pad)>,
}

impl AudioBranch {
    /// Mutes or unmutes the input in every mix.
    pub fn set_muted(&self, muted: bool) {
        self.volume.set_property("mute", muted);
    }

    /// The pad after muting, where levels are measured.
    pub fn level_pad(&self) -> Option<gst::Pad> {
        self.volume.static_pad("src")
    }
}

/// One audio mix: silence, the inputs it includes, an encoder into a producer.
pub struct AudioMix {
    /// Its id (0 is the full mix).
    pub id: u64,
    mixer: gst::Element,
    elements: Vec<gst::Element>,
}

/// The pipeline and its fixed parts.
pub struct Graph {
    guard: Option<PipelineGuard>,
    pipeline: gst::Pipeline,
    compositor: Option<gst::Element>,
    picture: Picture,
    mixes: Vec<AudioMix>,
    next_mix: u64,
}

impl Graph {
    /// Builds the pipeline with a picture (into `video`) and the full audio mix (into `audio`),
    /// either of which may be absent, and starts it.
    pub fn start(
        mut guard: PipelineGuard,
        picture: Picture,
        latency: gst::ClockTime,
        video: Option<&Arc<Producer>>,
        audio: Option<&Arc<Producer>>,
    ) -> anyhow::Result<Graph> {
        let pipeline = guard.pipeline().clone();
        let mut graph = Graph {
            guard: None,
            pipeline: pipeline.clone(),
            compositor: None,
            picture,
            mixes: Vec::new(),
            next_mix: 0,
        };
        if let Some(producer) = video {
            graph.compositor = Some(graph.build_picture(producer, latency)?);
        }
        if let Some(producer) = audio {
            graph.add_mix(producer, latency)?;
        }
        let name = pipeline.name().to_string();
        guard.watch_bus(move |e| tracing::warn!(pipeline = %name, "mixer pipeline error: {e}"));
        pipeline.set_state(gst::State::Playing)?;
        graph.guard = Some(guard);
        Ok(graph)
    }

    fn stamping() -> Stamping {
        Stamping {
            clock: None,
            dts_is_pts: true,
        }
    }

    fn build_picture(
        &self,
        producer: &Arc<Producer>,
        latency: gst::ClockTime,
    ) -> anyhow::Result<gst::Element> {
        let p = self.picture;
        let compositor = gst::ElementFactory::make("compositor")
            .name("mix")
            .property_from_str("background", "black")
            // Live from the start, told so: its first latency query can fail (inputs are still
            // being plugged in), and a non-live aggregator then waits for every input, or takes
            // a first timeout that comes before even the background's first buffer (every pad
            // "inactive") for the end of all inputs, and never produces anything.
            .property("force-live", true)
            // An input that has sent nothing yet is not waited for.
            .property("ignore-inactive-pads", true)
            .property("latency", latency.nseconds())
            // Inputs are plugged in while it plays: without this, an input whose latency was
            // never queried is judged by the first inputs' (none: the live background's) and
            // its buffers count as late and are dropped.
            .property("min-upstream-latency", latency.nseconds())
            .build()?;
        let full = Tile {
            x: 0,
            y: 0,
            width: p.width as i32,
            height: p.height as i32,
            zorder: 0,
        };
        // The background, live: it sets the pace, and the mix runs with no input at all.
        let bg = gst::ElementFactory::make("videotestsrc")
            .name("background")
            .property("is-live", true)
            .property_from_str("pattern", "solid-color")
            .property("foreground-color", p.background)
            .build()?;
        let bg_caps = gst::ElementFactory::make("capsfilter")
            .property("caps", tile_caps(&full, Some(p.fps)))
            .build()?;
        let out_caps = gst::ElementFactory::make("capsfilter")
            .property("caps", tile_caps(&full, Some(p.fps)))
            .build()?;
        let queue = gst::ElementFactory::make("queue")
            .property("max-size-buffers", 3u32)
            .property_from_str("leaky", "downstream")
            .build()?;
        let enc = templates::encoder(Codec::H264)?;
        set_bitrate(&enc, p.kbps);
        let sink = track_sink("video-out", producer, Self::stamping(), 0);
        // The stream's caps (H.264 byte-stream, as every consumer of a stream expects it), not
        // whatever the encoder would pick.
        let enc_caps = gst::ElementFactory::make("capsfilter")
            .property("caps", Codec::H264.caps())
            .build()?;
        let chain: Vec<gst::Element> = vec![
            compositor.clone(),
            out_caps,
            queue,
            enc.clone().upcast(),
            enc_caps,
            sink.clone().upcast(),
        ];
        self.pipeline.add_many([&bg, &bg_caps])?;
        self.pipeline.add_many(&chain)?;
        gst::Element::link_many(&chain)?;
        bg.link(&bg_caps)?;
        let pad = compositor
            .request_pad_simple("sink_%u")
            .context("compositor pad")?;
        bg_caps
            .static_pad("src")
            .context("capsfilter pad")?
            .link(&pad)?;
        pad.set_property("zorder", 0u32);
        // Keyframe requests from viewers go to the encoder, which honours them. Not for all
        // headers: the encoder would push them ahead of the keyframe as a buffer without time,
        // and the parser after it would give the whole keyframe no time either, so recorders
        // could not place it; the parser repeats SPS/PPS before every keyframe anyway.
        let weak = enc.downgrade();
        producer.set_keyframe_requester(move || {
            if let Some(enc) = weak.upgrade() {
                let ev = gst_video::UpstreamForceKeyUnitEvent::builder()
                    .all_headers(false)
                    .build();
                if let Some(pad) = enc.static_pad("src") {
                    pad.send_event(ev);
                }
            }
        });
        Ok(compositor)
    }

    /// Adds an audio mix into `producer` (Opus); returns its id. Inputs are linked by the caller.
    pub fn add_mix(
        &mut self,
        producer: &Arc<Producer>,
        latency: gst::ClockTime,
    ) -> anyhow::Result<u64> {
        let id = self.next_mix;
        self.next_mix += 1;
        let mixer = gst::ElementFactory::make("audiomixer")
            // As the compositor: see there.
            .property("force-live", true)
            .property("ignore-inactive-pads", true)
            .property("latency", latency.nseconds())
            // Inputs are plugged in while it plays: without this, an input whose latency was
            // never queried is judged by the first inputs' (none: the live background's) and
            // its buffers count as late and are dropped.
            .property("min-upstream-latency", latency.nseconds())
            .build()?;
        let silence = gst::ElementFactory::make("audiotestsrc")
            .property("is-live", true)
            .property_from_str("wave", "silence")
            // 20 ms per buffer, Opus's frame size.
            .property("samplesperbuffer", 960i32)
            .build()?;
        let caps = gst::ElementFactory::make("capsfilter")
            .property("caps", AUDIO_CAPS.parse::<gst::Caps>()?)
            .build()?;
        let convert = make("audioconvert")?;
        let enc = templates::encoder(Codec::Opus)?;
        let sink = track_sink(&format!("audio-out-{id}"), producer, Self::stamping(), 0);
        let enc_caps = gst::ElementFactory::make("capsfilter")
            .property("caps", Codec::Opus.caps())
            .build()?;
        let chain: Vec<gst::Element> = vec![
            mixer.clone(),
            convert,
            enc.upcast(),
            enc_caps,
            sink.upcast(),
        ];
        self.pipeline.add_many([&silence, &caps])?;
        self.pipeline.add_many(&chain)?;
        gst::Element::link_many(&chain)?;
        silence.link(&caps)?;
        let pad = mixer.request_pad_simple("sink_%u").context("mixer pad")?;
        caps.static_pad("src")
            .context("capsfilter pad")?
            .link(&pad)?;
        let mut elements = vec![silence, caps];
        elements.extend(chain);
        if self.guard.is_some() {
            for e in &elements {
                e.sync_state_with_parent()?;
            }
        }
        self.mixes.push(AudioMix {
            id,
            mixer,
            elements,
        });
        Ok(id)
    }

    /// Stops and takes out mix `id` (a minus-one whose participant left); links into it must be
    /// taken out first with [`Graph::unlink_audio`].
    pub fn remove_mix(&mut self, id: u64) {
        if let Some(pos) = self.mixes.iter().position(|m| m.id == id) {
            let mix = self.mixes.remove(pos);
            retire(&self.pipeline, &mix.elements);
        }
    }

    /// The ids of the mixes.
    pub fn mix_ids(&self) -> Vec<u64> {
        self.mixes.iter().map(|m| m.id).collect()
    }

    /// Whether the picture is made.
    pub fn has_picture(&self) -> bool {
        self.compositor.is_some()
    }

    fn add_tile(
        &self,
        bin: gst::Bin,
        appsrc: Option<gst_app::AppSrc>,
        fps: Option<u32>,
        caption: &str,
    ) -> anyhow::Result<TileBranch> {
        let compositor = self
            .compositor
            .as_ref()
            .context("the mixer makes no picture")?;
        let size = by_name(&bin, "size")?;
        let caption_el = by_name(&bin, "caption")?;
        caption_el.set_property("text", caption);
        let hidden = Tile {
            x: 0,
            y: 0,
            width: 16,
            height: 16,
            zorder: 1,
        };
        size.set_property("caps", tile_caps(&hidden, fps));
        let mut elements: Vec<gst::Element> = Vec::new();
        if let Some(src) = &appsrc {
            elements.push(src.clone().upcast());
        }
        elements.push(bin.clone().upcast());
        self.pipeline.add_many(&elements)?;
        if let Some(src) = &appsrc {
            src.link(&bin)?;
        }
        let pad = compositor
            .request_pad_simple("sink_%u")
            .context("compositor pad")?;
        pad.set_property("alpha", 0.0f64);
        bin.static_pad("src")
            .context("tile has no src")?
            .link(&pad)?;
        for e in &elements {
            e.sync_state_with_parent()?;
        }
        Ok(TileBranch {
            elements,
            size,
            caption: caption_el,
            pad,
            fps,
            appsrc,
        })
    }

    /// A tile showing an input's video.
    pub fn add_video(&self, caption: &str) -> anyhow::Result<TileBranch> {
        let bin = templates::mixer_fragment("video-input")?;
        self.add_tile(bin, Some(input_appsrc(3)), None, caption)
    }

    /// A placeholder tile: the caption on a plain background.
    pub fn add_placeholder(&self, caption: &str) -> anyhow::Result<TileBranch> {
        let bin = templates::mixer_fragment("placeholder")?;
        self.add_tile(bin, None, Some(self.picture.fps), caption)
    }

    /// Takes a tile out.
    pub fn remove_tile(&self, tile: TileBranch) {
        if let Some(c) = &self.compositor {
            cut(c, &tile.pad);
        }
        retire(&self.pipeline, &tile.elements);
    }

    /// An input's audio branch, not yet in any mix.
    pub fn add_audio(&self) -> anyhow::Result<AudioBranch> {
        let bin = templates::mixer_fragment("audio-input")?;
        let volume = by_name(&bin, "volume")?;
        let appsrc = input_appsrc(25);
        let tee = gst::ElementFactory::make("tee")
            .property("allow-not-linked", true)
            .build()?;
        let elements: Vec<gst::Element> = vec![appsrc.clone().upcast(), bin.upcast(), tee.clone()];
        self.pipeline.add_many(&elements)?;
        gst::Element::link_many(&elements)?;
        for e in &elements {
            e.sync_state_with_parent()?;
        }
        Ok(AudioBranch {
            elements,
            tee,
            volume,
            appsrc,
            links: Vec::new(),
        })
    }

    /// Includes `branch` in mix `id`.
    pub fn link_audio(&self, branch: &mut AudioBranch, id: u64) -> anyhow::Result<()> {
        let mix = self
            .mixes
            .iter()
            .find(|m| m.id == id)
            .context("no such mix")?;
        let queue = gst::ElementFactory::make("queue")
            .property("max-size-time", 300_000_000u64)
            .property("max-size-buffers", 0u32)
            .property("max-size-bytes", 0u32)
            .property_from_str("leaky", "downstream")
            .build()?;
        self.pipeline.add(&queue)?;
        let tee_pad = branch.tee.request_pad_simple("src_%u").context("tee pad")?;
        let mix_pad = mix
            .mixer
            .request_pad_simple("sink_%u")
            .context("mixer pad")?;
        queue
            .static_pad("src")
            .context("queue pad")?
            .link(&mix_pad)?;
        queue.sync_state_with_parent()?;
        tee_pad.link(&queue.static_pad("sink").context("queue pad")?)?;
        branch.links.push((id, tee_pad, queue, mix_pad));
        Ok(())
    }

    /// Takes `branch` out of mix `id`.
    pub fn unlink_audio(&self, branch: &mut AudioBranch, id: u64) {
        let Some(mix) = self.mixes.iter().find(|m| m.id == id) else {
            return;
        };
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut branch.links)
            .into_iter()
            .partition(|l| l.0 == id);
        branch.links = kept;
        for (_, tee_pad, queue, mix_pad) in gone {
            // The tee stops pushing into the queue first: it handles a released pad mid-stream.
            release(&branch.tee, &tee_pad);
            cut(&mix.mixer, &mix_pad);
            retire(&self.pipeline, std::slice::from_ref(&queue));
        }
    }

    /// Takes an input's audio out of every mix and the pipeline.
    pub fn remove_audio(&self, mut branch: AudioBranch) {
        for id in self.mix_ids() {
            self.unlink_audio(&mut branch, id);
        }
        retire(&self.pipeline, &branch.elements);
    }

    /// The output picture.
    pub fn picture(&self) -> Picture {
        self.picture
    }

    /// Stops the pipeline (on the reaper thread).
    pub fn stop(&mut self) {
        drop(self.guard.take());
    }
}

/// Sets the encoder's bitrate in kbit/s when it has such a property (x264enc's `bitrate`).
fn set_bitrate(enc: &gst::Bin, kbps: u32) {
    for e in enc.iterate_elements().into_iter().flatten() {
        if let Some(spec) = e.find_property("bitrate") {
            if spec.value_type() == u32::static_type() {
                e.set_property("bitrate", kbps);
            }
        }
    }
}
