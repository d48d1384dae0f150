//! Snapshots with real GStreamer: a live encoder feeds a producer, [`snapshot`] decodes its
//! cached GOP and encodes the last picture. Shows the picture is the stream's current one (not
//! the keyframe's) at the stream's size, both image formats and both video codecs, the errors,
//! that nothing keeps running between captures, and how long a 720p capture takes.

mod ops_support;

use gst::prelude::*;
use ops_support::{init, Picture, Source};
use std::time::{Duration, Instant};
use streamgate::engine::media::Codec;
use streamgate::engine::pipeline::{flush_reaper, PipelineCounter};
use streamgate::engine::producer::Producer;
use streamgate::ops::snapshot::{snapshot, Image, ImageFormat, SnapshotError};

const GREEN: u32 = 0xff00ff00;
const RED: u32 = 0xffff0000;
const BLUE: u32 = 0xff0000ff;

/// An encoded image decoded back to packed RGB: (width, height, stride, pixels).
fn decode(img: &Image) -> (usize, usize, usize, Vec<u8>) {
    let dec = match img.format {
        ImageFormat::Png => "pngdec",
        ImageFormat::Jpeg => "jpegdec",
    };
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src caps={} ! {dec} ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink",
        img.format.mime()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    src.push_buffer(gst::Buffer::from_slice(img.data.clone()))
        .unwrap();
    src.end_of_stream().unwrap();
    let sample = sink
        .try_pull_sample(gst::ClockTime::from_seconds(5))
        .expect("the image decodes");
    pipeline.set_state(gst::State::Null).unwrap();
    let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
    let map = sample.buffer().unwrap().map_readable().unwrap();
    (
        info.width() as usize,
        info.height() as usize,
        info.stride()[0] as usize,
        map.as_slice().to_vec(),
    )
}

fn pixel(d: &(usize, usize, usize, Vec<u8>), x: usize, y: usize) -> [u8; 3] {
    let o = y * d.2 + x * 3;
    [d.3[o], d.3[o + 1], d.3[o + 2]]
}

/// Every 8th pixel has the colour `want` (0xRRGGBB), within what a lossy encoder leaves.
fn assert_all(d: &(usize, usize, usize, Vec<u8>), want: u32, what: &str) {
    let w = [(want >> 16) as u8, (want >> 8) as u8, want as u8];
    for y in (0..d.1).step_by(8) {
        for x in (0..d.0).step_by(8) {
            let p = pixel(d, x, y);
            let close = p.iter().zip(w).all(|(a, b)| a.abs_diff(b) <= 60);
            assert!(close, "{what}: pixel ({x},{y}) is {p:?}, want {w:?}");
        }
    }
}

/// Waits until the cached GOP holds more than its keyframe.
fn wait_gop(video: &Producer, frames: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while video.cached_gop().is_none_or(|(_, b)| b.len() < frames) {
        assert!(Instant::now() < deadline, "no GOP of {frames} frames");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn png_is_the_current_picture_at_the_stream_size() {
    let src = Source::start(Some(Codec::H264), None, (320, 240), Picture::Solid(GREEN));
    let video = src.video.clone().unwrap();
    wait_gop(&video, 3);
    // Red from now on, inside the same GOP (2 s, no scene-cut keyframes): the keyframe is green,
    // the current picture red.
    src.set_color(RED);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, gop) = video.cached_gop().unwrap();
    let counter = PipelineCounter::default();
    let img = snapshot(&video, ImageFormat::Png, &counter).await.unwrap();
    assert_eq!((img.width, img.height), (320, 240));
    assert!(img.data.starts_with(b"\x89PNG"), "a PNG file");
    let d = decode(&img);
    assert_eq!((d.0, d.1), (320, 240));
    eprintln!(
        "# decoded a GOP of {} frames; first pixel {:?}",
        gop.len(),
        pixel(&d, 0, 0)
    );
    if gop.len() > 5 {
        assert_all(&d, RED & 0xffffff, "the current picture");
    }
    assert!(flush_reaper(Duration::from_secs(5)));
    assert_eq!(counter.get(), 0, "nothing stays running after a snapshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jpeg_of_vp8() {
    let src = Source::start(Some(Codec::Vp8), None, (320, 240), Picture::Solid(BLUE));
    let video = src.video.clone().unwrap();
    wait_gop(&video, 3);
    let img = snapshot(&video, ImageFormat::Jpeg, &PipelineCounter::default())
        .await
        .unwrap();
    assert_eq!((img.width, img.height), (320, 240));
    assert!(img.data.starts_with(&[0xff, 0xd8]), "a JPEG file");
    assert_all(&decode(&img), BLUE & 0xffffff, "a blue stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_video_and_no_picture_yet() {
    init();
    let counter = PipelineCounter::default();
    let idle = Producer::new(Codec::H264, ops_support::limits());
    let err = snapshot(&idle, ImageFormat::Png, &counter)
        .await
        .unwrap_err();
    assert_eq!(err, SnapshotError::NoPicture);
    assert_eq!(err.to_string(), "no picture yet");
    let audio = Producer::new(Codec::Opus, ops_support::limits());
    let err = snapshot(&audio, ImageFormat::Png, &counter)
        .await
        .unwrap_err();
    assert_eq!(err, SnapshotError::NoVideo);
    assert_eq!(err.to_string(), "no video");
    assert_eq!(counter.get(), 0);
}

/// 20 captures of a 720p stream one after the other: median and p90 printed; SMPTE bars where
/// they belong; no pipeline left between captures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_720p() {
    let src = Source::start(Some(Codec::H264), None, (1280, 720), Picture::Pattern);
    let video = src.video.clone().unwrap();
    wait_gop(&video, 1);
    let counter = PipelineCounter::default();
    let mut times = Vec::new();
    let mut gops = Vec::new();
    let mut last = None;
    for _ in 0..20 {
        gops.push(video.cached_gop().map_or(0, |(_, b)| b.len()));
        let t = Instant::now();
        let img = snapshot(&video, ImageFormat::Png, &counter).await.unwrap();
        times.push(t.elapsed());
        assert_eq!((img.width, img.height), (1280, 720));
        last = Some(img);
        // Between captures nothing runs (the reaper may still be stopping the last two).
        assert!(flush_reaper(Duration::from_secs(5)));
        assert_eq!(counter.get(), 0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut sorted = times.clone();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    let p90 = sorted[sorted.len() * 9 / 10];
    eprintln!(
        "# 720p PNG snapshot: median {median:?}, p90 {p90:?}, min {:?}, max {:?}; GOP frames decoded: {gops:?}",
        sorted[0],
        sorted[sorted.len() - 1]
    );
    let d = decode(&last.unwrap());
    // SMPTE bars: the first (75 % white) and the second (yellow) at the top.
    let white = pixel(&d, 1280 / 14, 720 / 4);
    let yellow = pixel(&d, 1280 * 3 / 14, 720 / 4);
    assert!(white.iter().all(|&c| c > 150), "white bar {white:?}");
    assert!(
        yellow[0] > 150 && yellow[1] > 150 && yellow[2] < 80,
        "yellow bar {yellow:?}"
    );
    // Generous bound so a busy machine does not fail; the figures above are what counts.
    assert!(median < Duration::from_secs(2), "median {median:?}");
}
