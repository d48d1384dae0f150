//! A stream keeps its timing: audio and video stay in step for a viewer, both when the publisher's
//! tracks pass straight through (WebRTC → WebRTC) and when the audio goes through a bridge
//! (RTMP AAC → WebRTC Opus).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;
use streamgate::client::{self, PublishOptions, TestPlayer, WcsConnection};
use streamgate::engine::media::Codec;

const T: Duration = Duration::from_secs(20);

/// The two tests decode in this process: run one at a time, so a decoder falling behind on a busy
/// machine is not mistaken for the server drifting.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
async fn webrtc_passthrough_keeps_audio_and_video_together() {
    let _one = ONE_AT_A_TIME.lock().await;
    let app = common::start(common::config()).await;
    let url = common::ws_url(app.http_addr);
    let mut pc = WcsConnection::connect(&url).await.unwrap();
    let opts = PublishOptions {
        width: 320,
        height: 240,
        ..Default::default()
    };
    let publisher = client::publish(&mut pc, "sync", &opts).await.unwrap();
    assert_eq!(
        pc.wait_status(&publisher.media_session_id, T)
            .await
            .unwrap()["status"],
        "PUBLISHING"
    );
    let mut vc = WcsConnection::connect(&url).await.unwrap();
    let player = client::play(
        &mut vc,
        "sync",
        &[Codec::H264],
        &["127.0.0.1".parse().unwrap()],
    )
    .await
    .unwrap();
    // The offset itself includes the client's decoding time of each track, which varies with the
    // machine's load; a drift between the tracks shows as a change of it over time.
    let (_, d) = drift(&player).await;
    assert!(
        d.abs() < 60.0,
        "audio and video drifted apart by {d:.1} ms in 5 s"
    );
    drop((player, publisher));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridged_audio_stays_with_its_video() {
    let _one = ONE_AT_A_TIME.lock().await;
    let app = common::start(common::config()).await;
    let (http, rtmp) = (app.http_addr, app.rtmp_addr);
    let mut publisher = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=sample_rate=48000",
        ])
        .args([
            "-t",
            "60",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "60",
            "-pix_fmt",
            "yuv420p",
        ])
        .args([
            "-c:a",
            "aac",
            "-f",
            "flv",
            &format!("rtmp://{rtmp}/live/bridged"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("ffmpeg runs");
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
