//! Shared by the ops tests: a live test source that feeds real producers from real encoders (the
//! engine's own presets, as a bridge does), ffprobe/ffmpeg readers for the files written, and a
//! temporary folder per test.
#![allow(dead_code)]

use gst::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use streamgate::engine::media::Codec;
use streamgate::engine::pipeline::{PipelineCounter, PipelineGuard};
use streamgate::engine::producer::{track_sink, Producer, ProducerLimits, Stamping};
use streamgate::engine::templates;

/// Initialises GStreamer once.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| gst::init().expect("GStreamer initialises"));
}

/// Producer limits as the engine's defaults would set them.
pub fn limits() -> ProducerLimits {
    ProducerLimits {
        gop_cache_bytes: 8 << 20,
        consumer_queue_bytes: 4 << 20,
        keyframe_request_interval: Duration::from_millis(200),
    }
}

/// What the test source shows and plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Picture {
    /// videotestsrc's default pattern; a 440 Hz tone.
    Pattern,
    /// Black with a white flash, and silence with a beep, both for the first [`FLASH`] of every
    /// [`PERIOD`] of the source's running time: the same instants in both tracks.
    Flash,
    /// One solid colour (0xAARRGGBB), which tests may change while it runs.
    Solid(u32),
}

/// How often the flash and the beep come.
pub const PERIOD: Duration = Duration::from_secs(2);
/// How long each lasts.
pub const FLASH: Duration = Duration::from_millis(300);

/// A live source: encoders feeding one producer per track.
pub struct Source {
    pub video: Option<Arc<Producer>>,
    pub audio: Option<Arc<Producer>>,
    pub guard: PipelineGuard,
}

impl Source {
    /// Starts a source of `video` and/or `audio` at `width`x`height`, 30 fps.
    pub fn start(
        video: Option<Codec>,
        audio: Option<Codec>,
        size: (u32, u32),
        picture: Picture,
    ) -> Source {
        init();
        let guard = PipelineGuard::new("test-source", &PipelineCounter::default());
        let pipeline = guard.pipeline().clone();
        let stamping = Stamping {
            clock: None,
            dts_is_pts: true,
        };
        let vp = video.map(|codec| {
            let p = Producer::new(codec, limits());
            let (pattern, color) = match picture {
                Picture::Pattern => ("smpte", 0xffffffff),
                Picture::Flash => ("black", 0xffffffff),
                Picture::Solid(c) => ("solid-color", c),
            };
            let src = gst::ElementFactory::make("videotestsrc")
                .name("vsrc")
                .property("is-live", true)
                .property_from_str("pattern", pattern)
                .property("foreground-color", color)
                .build()
                .unwrap();
            if picture == Picture::Flash {
                flash_video(&src);
            }
            let caps = gst::ElementFactory::make("capsfilter")
                .property(
                    "caps",
                    gst::Caps::builder("video/x-raw")
                        .field("format", "I420")
                        .field("width", size.0 as i32)
                        .field("height", size.1 as i32)
                        .field("framerate", gst::Fraction::new(30, 1))
                        .build(),
                )
                .build()
                .unwrap();
            let enc = templates::encoder(codec).unwrap();
            if codec == Codec::H264 {
                // No keyframe on a scene change: a snapshot must decode a whole GOP to the end.
                if let Some(x) = enc.by_name("encoder") {
                    x.set_property("option-string", "scenecut=0");
                }
            }
            let filter = gst::ElementFactory::make("capsfilter")
                .property("caps", codec.caps())
                .build()
                .unwrap();
            let sink = track_sink("vsink", &p, stamping.clone(), 0);
            let chain = [src, caps, enc.upcast(), filter, sink.upcast()];
            pipeline.add_many(&chain).unwrap();
            gst::Element::link_many(&chain).unwrap();
            p
        });
        let ap = audio.map(|codec| {
            let p = Producer::new(codec, limits());
            let src = gst::ElementFactory::make("audiotestsrc")
                .property("is-live", true)
                .property("samplesperbuffer", 480i32)
                .property(
                    "freq",
                    if picture == Picture::Flash {
                        1000.0
                    } else {
                        440.0
                    },
                )
                .property("volume", 0.5)
                .build()
                .unwrap();
            if picture == Picture::Flash {
                beep_audio(&src);
            }
            let caps = gst::ElementFactory::make("capsfilter")
                .property(
                    "caps",
                    gst::Caps::builder("audio/x-raw")
                        .field("format", "S16LE")
                        .field("rate", 48000i32)
                        .field("channels", 1i32)
                        .build(),
                )
                .build()
                .unwrap();
            let conv = gst::ElementFactory::make("audioconvert").build().unwrap();
            let enc = templates::encoder(codec).unwrap();
            let filter = gst::ElementFactory::make("capsfilter")
                .property("caps", codec.caps())
                .build()
                .unwrap();
            let sink = track_sink("asink", &p, stamping.clone(), 0);
            let chain = [src, caps, conv, enc.upcast(), filter, sink.upcast()];
            pipeline.add_many(&chain).unwrap();
            gst::Element::link_many(&chain).unwrap();
            p
        });
        pipeline.set_state(gst::State::Playing).unwrap();
        Source {
            video: vp,
            audio: ap,
            guard,
        }
    }

    /// Changes the solid colour shown (for [`Picture::Solid`]).
    pub fn set_color(&self, argb: u32) {
        let src = self.guard.pipeline().by_name("vsrc").unwrap();
        src.set_property("foreground-color", argb);
    }

    /// Waits until every track has a buffer (and video a cached keyframe).
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let v = self.video.as_ref().is_none_or(|p| p.cached_gop().is_some());
            let a = self.audio.as_ref().is_none_or(|p| p.counters().0 > 0);
            if v && a {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the test source did not start");
    }
}

fn in_flash(t: gst::ClockTime) -> bool {
    Duration::from_nanos(t.nseconds()).as_nanos() % PERIOD.as_nanos() < FLASH.as_nanos()
}

/// Paints whole frames white during the flashes.
fn flash_video(src: &gst::Element) {
    let pad = src.static_pad("src").unwrap();
    pad.add_probe(gst::PadProbeType::BUFFER, |_, info| {
        if let Some(gst::PadProbeData::Buffer(buf)) = &mut info.data {
            if buf.pts().is_some_and(in_flash) {
                let b = buf.make_mut();
                if let Ok(mut map) = b.map_writable() {
                    map.as_mut_slice().fill(0xff);
                }
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// Silences every sample outside the beeps.
fn beep_audio(src: &gst::Element) {
    let pad = src.static_pad("src").unwrap();
    pad.add_probe(gst::PadProbeType::BUFFER, |_, info| {
        if let Some(gst::PadProbeData::Buffer(buf)) = &mut info.data {
            let Some(pts) = buf.pts() else {
                return gst::PadProbeReturn::Ok;
            };
            let b = buf.make_mut();
            if let Ok(mut map) = b.map_writable() {
                for (i, s) in map.as_mut_slice().chunks_mut(2).enumerate() {
                    let t = pts + gst::ClockTime::from_nseconds(i as u64 * 1_000_000_000 / 48_000);
                    if !in_flash(t) {
                        s.fill(0);
                    }
                }
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// A fresh folder under the system's temporary folder.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("streamgate-{tag}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// What ffprobe says about a file.
#[derive(Debug)]
pub struct Probed {
    /// Codec names of the streams, in order.
    pub codecs: Vec<String>,
    /// The container's duration (None when ffprobe reports none).
    pub duration: Option<f64>,
    /// The last packet's end time over all streams (what is really in the file).
    pub last_packet: f64,
}

/// Runs ffprobe on `path`; `None` when it cannot read the file.
pub fn ffprobe(path: &Path) -> Option<Probed> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json", "-show_entries"])
        .arg("stream=codec_name:format=duration:packet=pts_time,duration_time")
        .arg("-show_packets")
        .arg(path)
        .output()
        .expect("ffprobe runs");
    if !out.status.success() {
        eprintln!(
            "ffprobe {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let codecs = v["streams"]
        .as_array()?
        .iter()
        .filter_map(|s| s["codec_name"].as_str().map(str::to_owned))
        .collect();
    let num = |x: &serde_json::Value| x.as_str().and_then(|s| s.parse::<f64>().ok());
    let duration = num(&v["format"]["duration"]);
    let last_packet = v["packets"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| {
                    Some(num(&p["pts_time"])? + num(&p["duration_time"]).unwrap_or(0.0))
                })
                .fold(0.0, f64::max)
        })
        .unwrap_or(0.0);
    Some(Probed {
        codecs,
        duration,
        last_packet,
    })
}

/// `(pts_time, value)` for each frame ffmpeg's `filter` (ending in a metadata print of `key`)
/// passes, for the stream `map` of `path`.
pub fn ffmpeg_metadata(
    path: &Path,
    map: &str,
    filter_flag: &str,
    filter: &str,
    key: &str,
) -> Vec<(f64, f64)> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostats", "-i"])
        .arg(path)
        .args(["-map", map, filter_flag, filter, "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut res = Vec::new();
    let mut t = None;
    for line in text.lines() {
        if let Some(i) = line.find("pts_time:") {
            t = line[i + 9..]
                .split_whitespace()
                .next()
                .and_then(|s| s.parse().ok());
        } else if let Some(v) = line.strip_prefix(&format!("{key}=")) {
            if let Some(t) = t {
                let v = if v == "-inf" {
                    f64::NEG_INFINITY
                } else {
                    v.parse().unwrap_or(f64::NAN)
                };
                res.push((t, v));
            }
        }
    }
    res
}

/// Onsets (times where the value crosses `threshold` upwards) of a series.
pub fn onsets(series: &[(f64, f64)], threshold: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut above = true; // the first rising edge after a low value counts
    for &(t, v) in series {
        let now = v > threshold;
        if now && !above {
            out.push(t);
        }
        above = now;
    }
    out
}
