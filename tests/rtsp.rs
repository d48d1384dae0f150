//! RTSP pull: a camera made by the test (gst-rtsp-server) is pulled over TCP and over UDP into
//! streams that ffmpeg decodes over RTMP (H.264 passed through, the camera's G.711 as AAC); the
//! camera drops and comes back, and the same stream goes on; WCS's REST answers and errors.

#[path = "common/camera.rs"]
mod camera;
mod common;

use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// Frames of each kind ffmpeg decodes from `url` in `seconds`.
fn decoded(url: &str, seconds: u32) -> (usize, usize) {
    common::ffmpeg_frames(url, seconds)
}

async fn rest(addr: std::net::SocketAddr, path: &str, body: Value) -> (u16, Value) {
    let (code, text) = common::http(addr, "POST", path, &body.to_string()).await;
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn status_of(addr: std::net::SocketAddr, uri: &str) -> Value {
    let (_, v) = rest(addr, "/rest-api/rtsp/find", json!({ "uri": uri })).await;
    v[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_is_pulled_over_tcp_and_udp_and_survives_a_drop() {
    let app = common::start(common::config()).await;
    let http = app.http_addr;
    let cam = camera::Camera::start(0);
    let port = cam.port;
    let uri = cam.url();

    let (code, v) = rest(
        http,
        "/rest-api/rtsp/startup",
        json!({"uri": uri, "localStreamName": "cam1"}),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    let (code, v) = rest(
        http,
        "/rest-api/rtsp/startup",
        json!({"uri": uri, "localStreamName": "cam1b"}),
    )
    .await;
    assert_eq!(code, 409, "the same camera twice: {v}");
    let udp_uri = format!("{uri}?transport=udp");
    let (code, v) = rest(
        http,
        "/rest-api/rtsp/startup",
        json!({"uri": udp_uri, "localStreamName": "cam2", "transport": "udp"}),
    )
    .await;
    assert_eq!(code, 200, "{v}");

    common::eventually(T, "both pulls have their tracks", || async {
        let a = status_of(http, &uri).await;
        let b = status_of(http, &udp_uri).await;
        a["status"] == "PROCESSED_LOCAL"
            && a["hasVideo"] == true
            && a["hasAudio"] == true
            && b["status"] == "PROCESSED_LOCAL"
            && b["hasVideo"] == true
    })
    .await;
    assert_eq!(status_of(http, &udp_uri).await["transport"], "UDP");
    for name in ["cam1", "cam2"] {
        let (video, audio) = decoded(&format!("rtmp://{}/live/{name}", app.rtmp_addr), 3);
        assert!(video >= 45, "{name}: {video} video frames in 3 s");
        assert!(
            audio >= 30,
            "{name}: {audio} audio frames in 3 s (G.711 → Opus → AAC)"
        );
    }

    // An HLS player is watching when the camera goes.
    common::eventually(T, "cam1 plays over HLS", || async {
        let (code, text) = common::http(http, "GET", "/hls/cam1/media.m3u8", "").await;
        code == 200 && text.contains("#EXTINF")
    })
    .await;

    // The camera loses power and comes back on the same port: the stream stays, and plays again.
    drop(cam);
    common::eventually(T, "the pull notices", || async {
        status_of(http, &uri).await["status"] == "RECONNECTING"
    })
    .await;
    assert!(
        app.state().engine.stream_of(Some("cam1"), None).is_some(),
        "the stream is kept"
    );
    let cam = camera::Camera::start(port);
    common::eventually(T, "the pull is back", || async {
        let s = status_of(http, &uri).await;
        s["status"] == "PROCESSED_LOCAL" && s["reconnects"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    let (video, _) = decoded(&format!("rtmp://{}/live/cam1", app.rtmp_addr), 3);
    assert!(
        video >= 45,
        "after the reconnect: {video} video frames in 3 s"
    );
    // The camera's new session is a new timeline: the HLS playlist marks it.
    common::eventually(T, "the HLS playlist marks the reconnect", || async {
        let (_, text) = common::http(http, "GET", "/hls/cam1/media.m3u8", "").await;
        text.contains("#EXT-X-DISCONTINUITY")
    })
    .await;

    // WCS's answers.
    let (code, _) = rest(http, "/rest-api/rtsp/terminate", json!({"uri": uri})).await;
    assert_eq!(code, 200);
    let (code, v) = rest(http, "/rest-api/rtsp/find", json!({"uri": uri})).await;
    assert_eq!((code, v.clone()), (404, v.clone()));
    assert!(v.to_string().contains("RTSP not found"), "{v}");
    common::eventually(T, "the terminated stream is gone", || async {
        app.state().engine.stream_of(Some("cam1"), None).is_none()
    })
    .await;
    let (code, v) = rest(
        http,
        "/rest-api/rtsp/startup",
        json!({"uri": "http://example.invalid/x"}),
    )
    .await;
    assert_eq!(code, 400);
    assert!(v.to_string().contains("Rtsp has wrong format"), "{v}");
    drop(cam);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playing_an_rtsp_url_by_name_pulls_the_camera() {
    let app = common::start(common::config()).await;
    let cam = camera::Camera::start(0);
    let url = common::ws_url(app.http_addr);
    let (_c, player) = common::playing(
        &url,
        &cam.url(),
        &[
            streamgate::engine::media::Codec::H264,
            streamgate::engine::media::Codec::Opus,
        ],
    )
    .await;
    common::eventually(T, "the camera's pictures decode", || async {
        player.stats().frames >= 30 && player.stats().size == Some((320, 240))
    })
    .await;
    assert_eq!(
        status_of(app.http_addr, &cam.url()).await["status"],
        "PROCESSED_LOCAL"
    );
    // A camera nobody answers for: WCS's words, and no pull left behind.
    let mut c = streamgate::client::WcsConnection::connect(&url)
        .await
        .unwrap();
    let lo = ["127.0.0.1".parse().unwrap()];
    let dead = "rtsp://127.0.0.1:9/none";
    let p = streamgate::client::play(&mut c, dead, &[streamgate::engine::media::Codec::H264], &lo)
        .await;
    let info = match p {
        Err(e) => e.to_string(),
        Ok(p) => c
            .wait_status(&p.media_session_id, T)
            .await
            .unwrap()
            .to_string(),
    };
    assert!(info.contains("Failed to connect to rtsp stream"), "{info}");
    let (code, _) = rest(app.http_addr, "/rest-api/rtsp/find", json!({"uri": dead})).await;
    assert_eq!(code, 404);
    // A camera pulled for its viewers is let go a few seconds after the last one leaves.
    drop((_c, player));
    common::eventually(T, "the unwatched camera is let go", || async {
        let (code, _) = rest(
            app.http_addr,
            "/rest-api/rtsp/find",
            json!({"uri": cam.url()}),
        )
        .await;
        code == 404
            && app
                .state()
                .engine
                .stream_of(Some(&cam.url()), None)
                .is_none()
    })
    .await;
    drop(cam);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h265_camera_plays_as_it_is_over_rtsp_and_through_the_bridge_elsewhere() {
    let app = common::start(common::config()).await;
    let cam = camera::Camera::start_with(
        0,
        "x265enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! rtph265pay name=pay0 pt=96",
    );
    let (code, v) = rest(
        app.http_addr,
        "/rest-api/rtsp/startup",
        json!({"uri": cam.url(), "localStreamName": "hevc"}),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    common::eventually(T, "the H.265 camera is up", || async {
        let s = status_of(app.http_addr, &cam.url()).await;
        s["status"] == "PROCESSED_LOCAL" && s["hasVideo"] == true
    })
    .await;
    // RTSP players get the camera's H.265 untouched.
    let out = std::process::Command::new("timeout")
        .args(["20", "ffprobe", "-v", "error", "-rtsp_transport", "tcp"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "compact",
        ])
        .arg(format!("rtsp://{}/hevc", app.rtsp_addr))
        .output()
        .unwrap();
    let streams = String::from_utf8_lossy(&out.stdout);
    assert!(
        streams.contains("codec_name=hevc|width=320|height=240"),
        "{streams}"
    );
    // RTMP takes H.264 only: the shared bridge decodes and encodes once.
    let (video, audio) = decoded(&format!("rtmp://{}/live/hevc", app.rtmp_addr), 3);
    assert!(
        video >= 45,
        "H.265 as H.264 over RTMP: {video} frames in 3 s"
    );
    assert!(audio >= 30, "{audio}");
    drop(cam);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_the_url_answer_basic_and_digest_auth() {
    let app = common::start(common::config()).await;
    for digest in [false, true] {
        let cam = camera::Camera::start_with_auth("admin", "s3cret", digest);
        let with = |cred: &str| cam.url().replace("rtsp://", &format!("rtsp://{cred}@"));
        let (good, bad) = (with("admin:s3cret"), with("admin:wrong"));
        let name = if digest { "digest" } else { "basic" };
        for (uri, local) in [(&good, name.to_owned()), (&bad, format!("{name}-bad"))] {
            let (code, v) = rest(
                app.http_addr,
                "/rest-api/rtsp/startup",
                json!({"uri": uri, "localStreamName": local}),
            )
            .await;
            assert_eq!(code, 200, "{v}");
        }
        common::eventually(T, "the camera lets the right credentials in", || async {
            status_of(app.http_addr, &good).await["hasVideo"] == true
        })
        .await;
        let (video, _) = decoded(&format!("rtmp://{}/live/{name}", app.rtmp_addr), 2);
        assert!(video >= 30, "{name}: {video} frames");
        // The wrong password never gets a picture; the pull keeps trying.
        let s = status_of(app.http_addr, &bad).await;
        assert_eq!(s["hasVideo"], false, "{s}");
        assert_ne!(s["status"], "PROCESSED_LOCAL", "{s}");
        // Listings do not show the password.
        let (_, all) = rest(app.http_addr, "/rest-api/rtsp/find_all", json!({})).await;
        assert!(!all.to_string().contains("s3cret"), "{all}");
        for uri in [&good, &bad] {
            rest(
                app.http_addr,
                "/rest-api/rtsp/terminate",
                json!({"uri": uri}),
            )
            .await;
        }
        drop(cam);
    }
    app.shutdown().await;
}
