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
    // veryfast keeps B-frames (ultrafast would not): what OBS and x264 usually send.
    let encode = [
        "-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "60", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "96k",
    ];
    common::ffmpeg_live("640x360", 48000, seconds, &encode, url)
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
    let mut publisher = ffmpeg_publish(&format!("{url}?room=abc&token=t0k"), 30);
    wait_stream(http, "bf").await;
    // Query parameters of the stream URL are kept for the back end (hooks) as `custom`; REST
    // shows them with secrets hidden.
    let (_, body) = common::http(
        http,
        "POST",
        "/rest-api/stream/find",
        r#"{"name":"bf","published":true}"#,
    )
    .await;
    assert!(body.contains(r#""room":"abc""#), "{body}");
    assert!(body.contains(r#""token":"***""#), "{body}");
    assert!(!body.contains("t0k"), "{body}");

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

/// An RTMP player that completes the handshake, asks to play `name`, and then never reads again.
async fn stalled_player(addr: std::net::SocketAddr, name: &str) -> tokio::net::TcpStream {
    use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
    use rml_rtmp::sessions::{
        ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    // A small receive buffer, so the kernel does not hide the stall for long.
    sock.set_recv_buffer_size(16 * 1024).unwrap();
    let mut s = sock.connect(addr).await.unwrap();
    let mut hs = Handshake::new(PeerType::Client);
    s.write_all(&hs.generate_outbound_p0_and_p1().unwrap())
        .await
        .unwrap();
    let mut buf = vec![0u8; 8192];
    let leftover = loop {
        let n = s.read(&mut buf).await.unwrap();
        match hs.process_bytes(&buf[..n]).unwrap() {
            HandshakeProcessResult::InProgress { response_bytes } => {
                s.write_all(&response_bytes).await.unwrap()
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                s.write_all(&response_bytes).await.unwrap();
                break remaining_bytes;
            }
        }
    };
    let (mut session, _) = ClientSession::new(ClientSessionConfig::new()).unwrap();
    let mut pending = vec![session.request_connection("live".into()).unwrap()];
    let mut input = leftover;
    let mut asked_play = false;
    loop {
        for r in pending.drain(..) {
            if let ClientSessionResult::OutboundResponse(p) = r {
                s.write_all(&p.bytes).await.unwrap();
            }
        }
        let results = session.handle_input(&input).unwrap();
        for r in results {
            match r {
                ClientSessionResult::OutboundResponse(p) => s.write_all(&p.bytes).await.unwrap(),
                ClientSessionResult::RaisedEvent(ClientSessionEvent::ConnectionRequestAccepted)
                    if !asked_play =>
                {
                    asked_play = true;
                    pending.push(session.request_playback(name.into()).unwrap());
                }
                ClientSessionResult::RaisedEvent(ClientSessionEvent::PlaybackRequestAccepted) => {
                    return s
                }
                _ => {}
            }
        }
        if !pending.is_empty() {
            input.clear();
            continue;
        }
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "server closed");
        input = buf[..n].to_vec();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_that_stops_reading_is_cut_back_and_harms_no_one() {
    let mut cfg = common::config();
    cfg.engine.consumer_queue_bytes = 256 * 1024;
    let app = common::start(cfg).await;
    let (http, rtmp) = (app.http_addr, app.rtmp_addr);
    let url = format!("rtmp://{rtmp}/live/fast");
    // About 1 MB/s, so a stalled reader fills every kernel buffer within seconds.
    let encode = [
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-b:v",
        "8M",
        "-minrate",
        "8M",
        "-maxrate",
        "8M",
        "-bufsize",
        "1M",
        "-g",
        "30",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
    ];
    let mut publisher = common::ffmpeg_live("640x360", 48000, 60, &encode, &url);
    wait_stream(http, "fast").await;
    let stalled = stalled_player(rtmp, "fast").await;
    // While it stalls, a normal viewer reads the stream at full rate...
    let reader = tokio::spawn(ffmpeg_read(url.clone(), 8));
    // ... and what is queued for the stalled one stays bounded, while messages are skipped for it.
    let mut worst = 0.0f64;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        worst = worst.max(common::metric(http, "streamgate_output_queued_bytes").await);
    }
    let (video, audio, err) = reader.await.unwrap();
    assert!(
        video >= 200 && audio >= 300,
        "the healthy viewer got {video} video and {audio} audio frames in 8 s\n{err}"
    );
    assert!(
        common::metric(http, "streamgate_output_dropped_messages").await > 0.0,
        "the stalled viewer was cut back"
    );
    assert!(
        worst <= 2.0 * 1024.0 * 1024.0,
        "queued for the stalled viewer: {worst} bytes"
    );
    drop(stalled);
    let _ = publisher.kill();
    let _ = publisher.wait();
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mp3_audio_is_taken_as_aac() {
    let app = common::start(common::config()).await;
    let (http, rtmp) = (app.http_addr, app.rtmp_addr);
    let url = format!("rtmp://{rtmp}/live/mp3");
    let encode = [
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "30",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "libmp3lame",
        "-b:a",
        "128k",
    ];
    let mut publisher = common::ffmpeg_live("640x360", 44100, 30, &encode, &url);
    wait_stream(http, "mp3").await;
    let (video, audio, err) = ffmpeg_read(url, 3).await;
    assert!(
        video >= 45 && audio >= 50,
        "{video} video, {audio} audio frames\n{err}"
    );
    assert!(err.contains("Audio: aac"), "MP3 arrives as AAC\n{err}");
    let _ = publisher.kill();
    let _ = publisher.wait();
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_handshake_is_dropped_after_its_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = common::start(common::config()).await;
    let (http, rtmp) = (app.http_addr, app.rtmp_addr);
    // C0 and a third of C1, then nothing.
    let mut half = tokio::net::TcpStream::connect(rtmp).await.unwrap();
    half.write_all(&[3u8; 500]).await.unwrap();
    // Meanwhile the server serves others as usual.
    let url = format!("rtmp://{rtmp}/live/ok");
    let mut publisher = ffmpeg_publish(&url, 30);
    wait_stream(http, "ok").await;
    let (video, _, err) = ffmpeg_read(url, 2).await;
    assert!(video >= 30, "{video} frames\n{err}");
    // The half-open connection is closed by the server (handshake timeout 10 s).
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match half.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a half handshake is not kept open");
    let _ = publisher.kill();
    let _ = publisher.wait();
    app.shutdown().await;
}
