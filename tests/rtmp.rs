//! RTMP with real clients: ffmpeg publishes H.264 with B-frames + AAC and ffmpeg plays it back over
//! RTMP (video and audio decoded); the same stream plays over WebRTC through one shared re-encode
//! (no B-frames) and an AAC → Opus bridge; a WebRTC-published stream is read over RTMP with AAC;
//! garbage on the RTMP port and a name in use are refused without disturbing anything.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;
use streamgate::client::{self, PublishOptions, WcsConnection};
use streamgate::engine::media::Codec;

const T: Duration = Duration::from_secs(20);

fn ffmpeg_publish(url: &str, seconds: u32) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        // veryfast keeps B-frames (ultrafast would not): what OBS and x264 usually send.
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "60", "-pix_fmt", "yuv420p",
        ])
        .args(["-c:a", "aac", "-b:a", "96k", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg runs")
}

/// Reads `seconds` of an RTMP stream with ffmpeg; returns (video frames, audio frames, stderr).
async fn ffmpeg_read(url: String, seconds: u32) -> (usize, usize, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-rw_timeout",
                "10000000",
                "-i",
                &url,
                "-t",
                &seconds.to_string(),
                "-f",
                "framemd5",
                "-",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("ffmpeg runs");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let video = text.lines().filter(|l| l.starts_with("0,")).count();
        let audio = text.lines().filter(|l| l.starts_with("1,")).count();
        (
            video,
            audio,
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    })
    .await
    .unwrap()
}

async fn wait_stream(addr: std::net::SocketAddr, name: &'static str) {
    common::eventually(T, "stream published", || async move {
        let (status, body) = common::http(
            addr,
            "POST",
            "/rest-api/stream/find",
            &format!(r#"{{"name":"{name}"}}"#),
        )
        .await;
        status == 200 && body.contains("\"RTMP\"") && body.contains("\"width\":640")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publishes_and_everyone_plays() {
    let app = common::start(common::config()).await;
    let (http, rtmp) = (app.http_addr, app.rtmp_addr);
    let url = format!("rtmp://{rtmp}/live/bf");
    let mut publisher = ffmpeg_publish(&url, 30);
    wait_stream(http, "bf").await;

    // A second publisher of the same name is refused; the first goes on.
    let mut second = ffmpeg_publish(&url, 5);
    let status = tokio::task::spawn_blocking(move || second.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        !status.success(),
        "second publisher of a name in use must fail"
    );

    // Garbage on the RTMP port: that connection is dropped, nothing else notices.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(rtmp).await.unwrap();
        let junk: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let _ = s.write_all(&junk).await;
        let mut buf = [0u8; 4096];
        let closed = tokio::time::timeout(T, async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "the server closes a connection that sends garbage"
        );
    }

    // RTMP playback with ffmpeg: video and audio decode.
    let (video, audio, err) = ffmpeg_read(url.clone(), 3).await;
    assert!(
        video >= 60,
        "RTMP viewer decoded {video} video frames\n{err}"
    );
    assert!(
        audio >= 50,
        "RTMP viewer decoded {audio} audio frames\n{err}"
    );
    assert!(err.contains("640x360"), "{err}");

    // WebRTC playback of the B-frame stream: decoded in order through one shared re-encode, with
    // the AAC bridged to Opus.
    let mut vc = WcsConnection::connect(&common::ws_url(http)).await.unwrap();
    let player = client::play(
        &mut vc,
        "bf",
        &[Codec::H264],
        &["127.0.0.1".parse().unwrap()],
    )
    .await
    .unwrap();
    let s = player.wait_frames(45, T).await.unwrap();
    assert_eq!(s.size, Some((640, 360)));
    common::eventually(T, "audio decoded over WebRTC", || {
        let n = player.stats().audio_buffers;
        async move { n > 20 }
    })
    .await;
    assert_eq!(
        common::metric(http, "streamgate_bridges").await,
        2.0,
        "H.264 re-encode + AAC->Opus"
    );
    drop(player);
    let _ = publisher.kill();
    let _ = publisher.wait();
    common::eventually(T, "everything released", || async move {
        common::metric(http, "streamgate_pipelines").await == 0.0
            && common::metric(http, "streamgate_streams").await == 0.0
    })
    .await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_stream_reads_over_rtmp_with_aac() {
    let app = common::start(common::config()).await;
    let (http, rtmp) = (app.http_addr, app.rtmp_addr);
    let mut pc = WcsConnection::connect(&common::ws_url(http)).await.unwrap();
    for codec in [Codec::H264, Codec::Vp8] {
        let name = format!("cam-{}", codec.slug());
        let opts = PublishOptions {
            width: 320,
            height: 240,
            codec,
            ..Default::default()
        };
        let p = client::publish(&mut pc, &name, &opts).await.unwrap();
        assert_eq!(
            pc.wait_status(&p.media_session_id, T).await.unwrap()["status"],
            "PUBLISHING"
        );
        let (video, audio, err) = ffmpeg_read(format!("rtmp://{rtmp}/live/{name}"), 3).await;
        assert!(video >= 45, "{codec:?}: {video} video frames\n{err}");
        assert!(audio >= 50, "{codec:?}: {audio} audio frames\n{err}");
        assert!(
            err.contains("Audio: aac"),
            "{codec:?}: AAC audio over RTMP\n{err}"
        );
        assert!(
            err.contains("Video: h264"),
            "{codec:?}: H.264 video over RTMP\n{err}"
        );
        drop(p);
    }
    let (_, _, err) = ffmpeg_read(format!("rtmp://{rtmp}/live/nothing-here"), 1).await;
    assert!(
        !err.contains("Video:"),
        "playing an unknown stream fails\n{err}"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_reconnect_within_grace_keeps_viewers() {
    let mut cfg = common::config();
    cfg.rtmp_reconnect_grace = Duration::from_secs(8);
    let app = common::start(cfg).await;
    let (http, rtmp) = (app.http_addr, app.rtmp_addr);
    let url = format!("rtmp://{rtmp}/live/comeback");
    let mut first = ffmpeg_publish(&url, 60);
    wait_stream(http, "comeback").await;
    let mut vc = WcsConnection::connect(&common::ws_url(http)).await.unwrap();
    let player = client::play(
        &mut vc,
        "comeback",
        &[Codec::H264],
        &["127.0.0.1".parse().unwrap()],
    )
    .await
    .unwrap();
    player.wait_frames(20, T).await.unwrap();
    // The encoder dies without unpublishing (network drop, crash) ...
    let _ = first.kill();
    let _ = tokio::task::spawn_blocking(move || first.wait())
        .await
        .unwrap();
    let before = player.stats().frames;
    eprintln!("frames before the reconnect: {before}");
    // ... and comes back under the same name within the grace period.
    let mut second = ffmpeg_publish(&url, 30);
    let s = player.wait_frames(before + 60, T).await.unwrap();
    assert_eq!(s.size, Some((640, 360)));
    // The viewer was never told to stop.
    let told = vc
        .wait(Duration::from_millis(200), |f| {
            f["message"] == "notifyStreamStatusEvent" && f["data"][0]["status"] == "STOPPED"
        })
        .await;
    assert!(told.is_err(), "viewer was stopped: {told:?}");
    let (status, body) = common::http(
        http,
        "POST",
        "/rest-api/stream/find",
        r#"{"name":"comeback","published":true}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let _ = second.kill();
    let _ = second.wait();
    drop(player);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliberate_unpublish_and_rest_terminate_end_at_once() {
    let mut cfg = common::config();
    cfg.rtmp_reconnect_grace = Duration::from_secs(30);
    let app = common::start(cfg).await;
    let (http, rtmp) = (app.http_addr, app.rtmp_addr);
    // ffmpeg reaching its end unpublishes cleanly: the stream goes without waiting for the grace.
    let mut short = ffmpeg_publish(&format!("rtmp://{rtmp}/live/short"), 3);
    wait_stream(http, "short").await;
    let _ = tokio::task::spawn_blocking(move || short.wait())
        .await
        .unwrap();
    common::eventually(
        Duration::from_secs(5),
        "cleanly unpublished stream gone",
        || async move { common::metric(http, "streamgate_streams").await == 0.0 },
    )
    .await;
    // REST terminate ends an RTMP publisher and its stream at once too.
    let mut long = ffmpeg_publish(&format!("rtmp://{rtmp}/live/long"), 60);
    wait_stream(http, "long").await;
    let (status, body) = common::http(
        http,
        "POST",
        "/rest-api/stream/terminate",
        r#"{"name":"long"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    common::eventually(
        Duration::from_secs(5),
        "terminated stream gone",
        || async move { common::metric(http, "streamgate_streams").await == 0.0 },
    )
    .await;
    let _ = long.kill();
    let _ = long.wait();
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_from_another_rtmp_server() {
    // The "other server" is a second streamgate instance with an ffmpeg publisher on it.
    let origin = common::start(common::config()).await;
    let edge = common::start(common::config()).await;
    let (ohttp, ortmp) = (origin.http_addr, origin.rtmp_addr);
    let (ehttp, ertmp) = (edge.http_addr, edge.rtmp_addr);
    let mut publisher = ffmpeg_publish(&format!("rtmp://{ortmp}/live/src"), 60);
    wait_stream(ohttp, "src").await;
    let body = format!(r#"{{"uri":"rtmp://{ortmp}/live/src","localStreamName":"pulled"}}"#);
    let (status, text) = common::http(ehttp, "POST", "/rest-api/pull/rtmp/pull", &body).await;
    assert_eq!(status, 200, "{text}");
    let (status, _) = common::http(ehttp, "POST", "/rest-api/pull/rtmp/pull", &body).await;
    assert_eq!(status, 409, "the same URI twice");
    let (status, _) = common::http(
        ehttp,
        "POST",
        "/rest-api/pull/rtmp/pull",
        r#"{"uri":"http://x/y"}"#,
    )
    .await;
    assert_eq!(status, 400);
    let (video, audio, err) = ffmpeg_read(format!("rtmp://{ertmp}/live/pulled"), 3).await;
    assert!(
        video >= 45 && audio >= 50,
        "pulled stream plays: {video} video, {audio} audio\n{err}"
    );
    let (_, list) = common::http(ehttp, "POST", "/rest-api/pull/rtmp/find_all", "").await;
    assert!(list.contains("\"pulled\""), "{list}");
    let (status, _) = common::http(
        ehttp,
        "POST",
        "/rest-api/pull/rtmp/terminate",
        r#"{"localStreamName":"pulled"}"#,
    )
    .await;
    assert_eq!(status, 200);
    common::eventually(T, "pull stopped", || async move {
        common::metric(ehttp, "streamgate_streams").await == 0.0
            && common::metric(ehttp, "streamgate_pipelines").await == 0.0
    })
    .await;
    let _ = publisher.kill();
    let _ = publisher.wait();
    edge.shutdown().await;
    origin.shutdown().await;
}
