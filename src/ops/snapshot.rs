//! Snapshots: the stream's current picture as a PNG or JPEG, at the stream's own size, without
//! waiting for the next keyframe. The video producer already keeps the track since its last
//! keyframe; a short-lived pipeline decodes that cached GOP as fast as the CPU allows (non-live
//! appsrc, EOS after the last buffer) and keeps only the last decoded picture, and a second one
//! encodes that single picture. Nothing stays running between snapshots: each capture builds its
//! own two pipelines and drops them when done.
//!
//! The cost is one GOP of decoding per capture, so it grows with the publisher's keyframe
//! interval; for sources that send keyframes only on request (WebRTC) it stays small because the
//! engine asks for one whenever a new viewer joins.

use crate::engine::media::Codec;
use crate::engine::pipeline::{PipelineCounter, PipelineGuard};
use crate::engine::producer::Producer;
use crate::engine::templates;
use anyhow::Context;
use gst::prelude::*;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long one capture (decode and encode together) may take before it is abandoned. A GOP of
/// 10 s of 1080p decodes well within this on a small machine; past it something is wrong.
pub const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(10);

/// The image a snapshot is encoded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageFormat {
    /// PNG (lossless; fast compression level, the picture is the point, not the bytes).
    #[default]
    Png,
    /// JPEG.
    Jpeg,
}

impl ImageFormat {
    /// File extension, which is also the fragment's name in `pipelines/snapshot/`.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpeg",
        }
    }

    /// The MIME type to serve it with.
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
        }
    }
}

/// An encoded picture.
#[derive(Debug, Clone)]
pub struct Image {
    /// The encoded file's bytes.
    pub data: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// What `data` is.
    pub format: ImageFormat,
}

/// Why there is no snapshot.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// The track given is not video.
    #[error("no video")]
    NoVideo,
    /// No keyframe has arrived yet (or the cached GOP outgrew its limit).
    #[error("no picture yet")]
    NoPicture,
    /// Decoding or encoding failed.
    #[error("snapshot failed: {0}")]
    Failed(String),
    /// The capture took longer than [`SNAPSHOT_TIMEOUT`].
    #[error("snapshot timed out")]
    TimedOut,
}

/// The current picture of `video`, encoded as `format`. Blocking GStreamer work runs on tokio's
/// blocking pool, not on the async workers.
pub async fn snapshot(
    video: &Arc<Producer>,
    format: ImageFormat,
    counter: &PipelineCounter,
) -> Result<Image, SnapshotError> {
    let codec = video.codec();
    if !codec.is_video() {
        return Err(SnapshotError::NoVideo);
    }
    let (caps, buffers) = video.cached_gop().ok_or(SnapshotError::NoPicture)?;
    let counter = counter.clone();
    tokio::task::spawn_blocking(move || capture(codec, &caps, buffers, format, &counter))
        .await
        .map_err(|e| SnapshotError::Failed(format!("capture task: {e}")))?
}

/// Decodes `buffers` (a GOP, keyframe first) and encodes the last picture. Blocks.
pub fn capture(
    codec: Codec,
    caps: &gst::Caps,
    buffers: Vec<gst::Buffer>,
    format: ImageFormat,
    counter: &PipelineCounter,
) -> Result<Image, SnapshotError> {
    if buffers.is_empty() {
        return Err(SnapshotError::NoPicture);
    }
    let id = short_id();
    let deadline = std::time::Instant::now() + SNAPSHOT_TIMEOUT;
    let frame = decode_last(
        &format!("snapshot-{id}-decode"),
        codec,
        caps,
        buffers,
        counter,
        deadline,
    )?
    .ok_or(SnapshotError::NoPicture)?;
    encode(
        &format!("snapshot-{id}-encode"),
        &frame,
        format,
        counter,
        deadline,
    )
}

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// Plays the guarded pipeline, feeds `src` with `buffers` and EOS, and waits for the end.
fn run_to_eos(
    guard: &PipelineGuard,
    src: &gst_app::AppSrc,
    buffers: impl IntoIterator<Item = gst::Buffer>,
    deadline: std::time::Instant,
) -> Result<(), SnapshotError> {
    let pipeline = guard.pipeline();
    let failed = |e: &dyn std::fmt::Display| SnapshotError::Failed(e.to_string());
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| bus_error(pipeline).unwrap_or_else(|| failed(&e)))?;
    for b in buffers {
        // A non-live appsrc with no byte limit takes everything at once; the producer's GOP
        // cache limit already bounds how much that is.
        src.push_buffer(b).map_err(|e| failed(&e))?;
    }
    src.end_of_stream().map_err(|e| failed(&e))?;
    let bus = pipeline
        .bus()
        .ok_or_else(|| failed(&"pipeline has no bus"))?;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(left.as_nanos() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        match msg.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => return Ok(()),
            Some(gst::MessageView::Error(e)) => {
                return Err(SnapshotError::Failed(e.error().to_string()))
            }
            Some(_) => continue,
            None => return Err(SnapshotError::TimedOut),
        }
    }
}

fn bus_error(pipeline: &gst::Pipeline) -> Option<SnapshotError> {
    let msg = pipeline
        .bus()?
        .timed_pop_filtered(gst::ClockTime::ZERO, &[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(e) => Some(SnapshotError::Failed(e.error().to_string())),
        _ => None,
    }
}

/// The last raw picture decoded from `buffers`, or `None` when nothing decoded.
fn decode_last(
    name: &str,
    codec: Codec,
    caps: &gst::Caps,
    buffers: Vec<gst::Buffer>,
    counter: &PipelineCounter,
    deadline: std::time::Instant,
) -> Result<Option<gst::Sample>, SnapshotError> {
    let build = || -> anyhow::Result<(PipelineGuard, gst_app::AppSrc, gst_app::AppSink)> {
        let guard = PipelineGuard::new(name, counter);
        let src = gst_app::AppSrc::builder()
            .name("src")
            .caps(caps)
            .format(gst::Format::Time)
            .is_live(false)
            .max_bytes(0)
            .build();
        let dec = templates::decoder(codec)?;
        // Holds one picture: each new one replaces the last, so after EOS the queue holds the
        // stream's current picture and nothing else is kept.
        let sink = gst_app::AppSink::builder()
            .name("sink")
            .sync(false)
            .max_buffers(1)
            .drop(true)
            // Nobody pulls before the end: EOS must not wait for the queue to be emptied.
            .wait_on_eos(false)
            .enable_last_sample(false)
            .build();
        let chain: [&gst::Element; 3] = [src.upcast_ref(), dec.upcast_ref(), sink.upcast_ref()];
        guard.pipeline().add_many(chain)?;
        gst::Element::link_many(chain).context("linking the snapshot decoder")?;
        Ok((guard, src, sink))
    };
    let (guard, src, sink) = build().map_err(|e| SnapshotError::Failed(format!("{e:#}")))?;
    run_to_eos(&guard, &src, buffers, deadline)?;
    Ok(sink.try_pull_sample(gst::ClockTime::ZERO))
}

/// Encodes one raw picture.
fn encode(
    name: &str,
    frame: &gst::Sample,
    format: ImageFormat,
    counter: &PipelineCounter,
    deadline: std::time::Instant,
) -> Result<Image, SnapshotError> {
    let failed = |e: &dyn std::fmt::Display| SnapshotError::Failed(e.to_string());
    let caps = frame
        .caps_owned()
        .ok_or_else(|| failed(&"picture without caps"))?;
    let info = gst_video::VideoInfo::from_caps(&caps).map_err(|e| failed(&e))?;
    let buffer = frame
        .buffer_owned()
        .ok_or_else(|| failed(&"picture without buffer"))?;
    let build = || -> anyhow::Result<(PipelineGuard, gst_app::AppSrc, gst_app::AppSink)> {
        let guard = PipelineGuard::new(name, counter);
        let src = gst_app::AppSrc::builder()
            .name("src")
            .caps(&caps)
            .format(gst::Format::Time)
            .is_live(false)
            .build();
        let enc = templates::image_encoder(format.extension())?;
        let sink = gst_app::AppSink::builder()
            .name("sink")
            .sync(false)
            .wait_on_eos(false)
            .enable_last_sample(false)
            .build();
        let chain: [&gst::Element; 3] = [src.upcast_ref(), enc.upcast_ref(), sink.upcast_ref()];
        guard.pipeline().add_many(chain)?;
        gst::Element::link_many(chain).context("linking the image encoder")?;
        Ok((guard, src, sink))
    };
    let (guard, src, sink) = build().map_err(|e| SnapshotError::Failed(format!("{e:#}")))?;
    run_to_eos(&guard, &src, [buffer], deadline)?;
    let sample = sink
        .try_pull_sample(gst::ClockTime::ZERO)
        .ok_or_else(|| failed(&"the encoder gave no image"))?;
    let out = sample
        .buffer()
        .ok_or_else(|| failed(&"image without buffer"))?
        .map_readable()
        .map_err(|e| failed(&e))?;
    Ok(Image {
        data: out.as_slice().to_vec(),
        width: info.width(),
        height: info.height(),
        format,
    })
}

/// Writes `bytes` to `path` so that readers see the old file or the new one, never a part: a
/// temporary file in the same folder (hidden, so listings skip it), flushed to disk, then renamed
/// over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other(format!("{} is not a file path", path.display())))?;
    let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), short_id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomically_replaces_whole_files() {
        let dir = std::env::temp_dir().join(format!("snapshot-unit-{}", short_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("slice.png");
        write_atomically(&p, b"first").unwrap();
        write_atomically(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
        assert!(write_atomically(&dir.join("missing/x.png"), b"x").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn empty_gop_is_no_picture() {
        gst::init().unwrap();
        let r = capture(
            Codec::H264,
            &Codec::H264.caps(),
            Vec::new(),
            ImageFormat::Png,
            &PipelineCounter::default(),
        );
        assert_eq!(r.unwrap_err(), SnapshotError::NoPicture);
    }
}
