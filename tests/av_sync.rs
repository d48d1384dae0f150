//! A stream keeps its timing: audio and video stay in step for a WebRTC viewer of an RTMP stream
//! whose audio goes through a bridge (AAC → Opus) and whose video passes through.
//!
//! (A WebRTC publisher's tracks are lined up by RTCP sender reports, both at the server's ingest and
//! in this GStreamer client, so their relation settles only once the first reports arrive, which
//! takes seconds; a steady-state check for that path needs a client that reports its own sync.)

mod common;

use std::time::Duration;
use streamgate::client::{self, TestPlayer, WcsConnection};
use streamgate::engine::media::Codec;

const T: Duration = Duration::from_secs(20);

/// Median A/V offset over `secs` seconds, sampled every 50 ms (the median shrugs off a sample
/// taken while one decoder was briefly descheduled).
async fn mean_offset(player: &TestPlayer, secs: f64) -> f64 {
    let mut samples = Vec::new();
    let end = tokio::time::Instant::now() + Duration::from_secs_f64(secs);
    while tokio::time::Instant::now() < end {
        if let Some(o) = player.av_offset_ms() {
            samples.push(o);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(samples.len() > 10, "audio and video both decoded");
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

/// (offset at the start, change over 5 s), in milliseconds.
async fn drift(player: &TestPlayer) -> (f64, f64) {
    // Past the start, where jitter buffers and decoders are still settling.
    player.wait_frames(60, T).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let start = mean_offset(player, 1.5).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let end = mean_offset(player, 1.5).await;
    eprintln!("A/V offset: {start:.1} ms at the start, {end:.1} ms 5 s later");
    (start, end - start)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridged_audio_stays_with_its_video() {
    let app = common::start(common::config()).await;
    let (http, rtmp) = (app.http_addr, app.rtmp_addr);
    let encode = [
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "60",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
    ];
    let url = format!("rtmp://{rtmp}/live/bridged");
    let mut publisher = common::ffmpeg_live("320x240", 48000, 60, &encode, &url);
    common::eventually(T, "stream published", || async move {
        common::http(
            http,
            "POST",
            "/rest-api/stream/find",
            r#"{"name":"bridged"}"#,
        )
        .await
        .1
        .contains("\"width\":320")
    })
    .await;
    let mut vc = WcsConnection::connect(&common::ws_url(http)).await.unwrap();
    let player = client::play(
        &mut vc,
        "bridged",
        &[Codec::H264],
        &["127.0.0.1".parse().unwrap()],
    )
    .await
    .unwrap();
    // The bridge adds latency to the audio path (the browser's lip-sync absorbs it); what must not
    // happen is a drift.
    let (_, d) = drift(&player).await;
    assert!(
        d.abs() < 60.0,
        "audio (AAC -> Opus) and video drifted apart by {d:.1} ms in 5 s"
    );
    drop(player);
    let _ = publisher.kill();
    let _ = publisher.wait();
    app.shutdown().await;
}
