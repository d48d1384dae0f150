//! Recording with real clients and real files: ffmpeg over RTMP and GStreamer over WebRTC are
//! recorded by REST and by the publisher's `record: true`; ffprobe sees both tracks and the right
//! duration; audio and video are in step in the file (a beep on a flash of the picture, measured);
//! the publisher and the viewers are told; the files are listed and served with ranges; a server
//! killed with `kill -9` leaves a file that plays; path tricks and a full disk are handled.

mod common;

use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use streamgate::client::{self, http, PublishOptions, WcsConnection};
use streamgate::engine::media::Codec;

const T: Duration = Duration::from_secs(20);

/// A black picture that flashes white, and a 1 kHz beep, for the first 100 ms of every second.
const FLASH: &str =
    "color=c=black:s=320x240:r=30,drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='lt(mod(t\\,1)\\,0.1)'";
const BEEP: &str =
    "sine=frequency=1000:sample_rate=48000,volume=volume=0:enable='gte(mod(t\\,1)\\,0.1)'";

/// An MP4 of `seconds` of flashes and beeps (made once per test binary run).
fn flash_file(seconds: u32) -> PathBuf {
    let path = std::env::temp_dir().join(format!("sg-flash-{}-{seconds}.mp4", std::process::id()));
    if !path.exists() {
        let ok = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(["-f", "lavfi", "-i", FLASH, "-f", "lavfi", "-i", BEEP])
            .args([
                "-t",
                &seconds.to_string(),
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
            ])
            .args(["-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac"])
            .arg(&path)
            .status()
            .expect("ffmpeg runs");
        assert!(ok.success());
    }
    path
}

/// An ffmpeg RTMP publisher of live flashes and beeps.
fn ffmpeg_flashes(url: &str, seconds: u32) -> std::process::Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", FLASH, "-f", "lavfi", "-i", BEEP])
        .args([
            "-t",
            &seconds.to_string(),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ])
        .args([
            "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv", url,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg runs")
}

/// The codecs of a file's streams and its duration, as ffprobe reads them.
fn ffprobe(path: &Path) -> (Vec<String>, f64) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name:format=duration",
        ])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let codecs = v["streams"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["codec_name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let duration = v["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    (codecs, duration)
}

/// Per-frame values of one ffprobe lavfi tag, as (time, value).
fn lavfi_series(graph: &str, tag: &str) -> Vec<(f64, f64)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-f", "lavfi", "-i", graph])
        .args(["-show_entries", &format!("frame=pts_time:frame_tags={tag}")])
        .args(["-of", "csv=p=0"])
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (t, v) = l.split_once(',')?;
            let v = if v.contains("inf") {
                -200.0
            } else {
                v.parse().ok()?
            };
            Some((t.parse().ok()?, v))
        })
        .collect()
}

/// Times at which a series rises above `level`.
fn onsets(series: &[(f64, f64)], level: f64) -> Vec<f64> {
    series
        .windows(2)
        .filter(|w| w[0].1 <= level && w[1].1 > level)
        .map(|w| w[1].0)
        .collect()
}

/// For each flash in the file, the time from the nearest beep to it (positive: video late).
fn av_offsets(path: &Path) -> Vec<f64> {
    let p = path.to_string_lossy();
    let video = onsets(
        &lavfi_series(&format!("movie={p},signalstats"), "lavfi.signalstats.YAVG"),
        128.0,
    );
    let audio_series = lavfi_series(
        &format!("amovie={p},astats=metadata=1:reset=1"),
        "lavfi.astats.Overall.RMS_level",
    );
    let audio = onsets(&audio_series, -30.0);
    // A flash after the audio track ends (the tracks of a stopped recording end a few frames
    // apart) has no beep to compare with.
    let audio_end = audio_series.last().map(|(t, _)| *t).unwrap_or(0.0);
    video
        .iter()
        .filter(|v| **v + 0.1 < audio_end)
        .filter_map(|v| {
            audio
                .iter()
                .map(|a| v - a)
                .min_by(|x, y| x.abs().total_cmp(&y.abs()))
        })
        .collect()
}

fn assert_in_step(path: &Path) {
    let offsets = av_offsets(path);
    eprintln!(
        "A/V offsets in {} (s, video minus audio): {offsets:.3?}",
        path.display()
    );
    assert!(offsets.len() >= 3, "too few flashes found: {offsets:?}");
    let worst = offsets.iter().map(|o| o.abs()).fold(0.0, f64::max);
    assert!(
        worst <= 0.1,
        "audio and video apart by {worst:.3} s: {offsets:?}"
    );
}

async fn rest(addr: SocketAddr, path: &str, body: Value) -> (u16, Value) {
    let (status, text) = common::http(addr, "POST", path, &body.to_string()).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn publisher_msid(addr: SocketAddr, name: &str) -> String {
    let deadline = Instant::now() + T;
    loop {
        let (s, v) = rest(
            addr,
            "/rest-api/stream/find",
            json!({"name": name, "published": true}),
        )
        .await;
        if s == 200 && v[0]["width"] == 320 {
            return v[0]["mediaSessionId"].as_str().unwrap_or("").to_owned();
        }
        assert!(Instant::now() < deadline, "{name} was not published");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the listing shows `file` finished (with a duration).
async fn wait_listed(addr: SocketAddr, stream: &str) -> Value {
    let mut found = Value::Null;
    let deadline = Instant::now() + T;
    while Instant::now() < deadline {
        let listing: Value =
            serde_json::from_str(&common::http_get(addr, "/records/").await).unwrap_or(Value::Null);
        if let Some(f) = listing.as_array().and_then(|a| {
            a.iter()
                .find(|f| f["stream"] == stream && f["duration"].as_f64().unwrap_or(0.0) > 0.0)
        }) {
            found = f.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!found.is_null(), "no finished recording of {stream} listed");
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_records_an_rtmp_stream_in_step_and_serves_it() {
    let cfg = common::config();
    let records = cfg.data_dir.join("records");
    let app = common::start(cfg).await;
    let (addr, rtmp) = (app.http_addr, app.rtmp_addr);
    let mut publisher = ffmpeg_flashes(&format!("rtmp://{rtmp}/live/rec"), 30);
    let msid = publisher_msid(addr, "rec").await;

    let (s, v) = rest(
        addr,
        "/rest-api/stream/startRecording",
        json!({"mediaSessionId": "nope"}),
    )
    .await;
    assert_eq!((s, v["message"].as_str()), (404, Some("Stream not found")));
    let (s, v) = rest(
        addr,
        "/rest-api/stream/startRecording",
        json!({"mediaSessionId": msid}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = rest(
        addr,
        "/rest-api/recorder/startup",
        json!({"mediaSessionId": msid}),
    )
    .await;
    assert_eq!(s, 409, "a second recording of the same stream");
    let (s, v) = rest(addr, "/rest-api/recorder/find_all", json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(v[0]["mediaSessionId"], msid.as_str());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (s, _) = rest(
        addr,
        "/rest-api/stream/stopRecording",
        json!({"mediaSessionId": msid}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = rest(
        addr,
        "/rest-api/recorder/terminate",
        json!({"mediaSessionId": msid}),
    )
    .await;
    assert_eq!(s, 404, "stopping a recording that is not running");

    let listed = wait_listed(addr, "rec").await;
    let name = listed["name"].as_str().unwrap().to_owned();
    let file = records.join(&name);
    let (codecs, duration) = ffprobe(&file);
    assert_eq!(codecs, ["h264", "aac"], "{name}");
    assert!((duration - 5.0).abs() <= 1.0, "duration {duration}");
    assert_in_step(&file);

    // Served with ranges, so a <video> element can seek.
    let a = http::request_with(
        addr,
        "GET",
        &format!("/records/{name}"),
        &[("Range", "bytes=0-99")],
        "",
    )
    .await
    .unwrap();
    assert_eq!(a.status, 206);
    assert_eq!(a.header("content-length"), Some("100"));
    // Path tricks are refused; nothing outside the records folder is served.
    for trick in [
        "..%2F..%2Fetc%2Fpasswd",
        "%2Fetc%2Fpasswd",
        "..",
        ".hidden",
        "a%00b",
    ] {
        let a = http::request(addr, "GET", &format!("/records/{trick}"), None, "")
            .await
            .unwrap();
        assert!(matches!(a.status, 400 | 404), "{trick}: {}", a.status);
        assert!(!a.body.contains("root:"), "{trick}");
    }
    // A file template cannot put a file outside the folder either.
    let (s, v) = rest(
        addr,
        "/rest-api/stream/startRecording",
        json!({"mediaSessionId": msid, "config": {"fileTemplate": "../../escape-{streamName}"}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let written = v["fileName"].as_str().unwrap().to_owned();
    assert!(
        !written.contains('/') && !written.contains(".."),
        "{written}"
    );
    assert!(records.join(&written).exists() || records.read_dir().unwrap().count() > 1);
    let _ = rest(
        addr,
        "/rest-api/stream/stopRecording",
        json!({"mediaSessionId": msid}),
    )
    .await;
    let _ = publisher.kill();
    let _ = publisher.wait();
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webrtc_publisher_asking_to_record_is_recorded_and_everyone_is_told() {
    let cfg = common::config();
    let records = cfg.data_dir.join("records");
    let app = common::start(cfg).await;
    let addr = app.http_addr;
    let url = common::ws_url(addr);
    for (codec, container, video_codec) in
        [(Codec::H264, "mp4", "h264"), (Codec::Vp8, "webm", "vp8")]
    {
        let name = format!("iv-{container}");
        let opts = PublishOptions {
            width: 320,
            height: 240,
            codec,
            record: true,
            media_file: Some(flash_file(20)),
            ..Default::default()
        };
        let mut pc = WcsConnection::connect(&url).await.unwrap();
        let publisher = client::publish(&mut pc, &name, &opts).await.unwrap();
        let msid = publisher.media_session_id.clone();
        // The publisher hears of the recording with the file name (what getRecordInfo() reads).
        let st = pc
            .wait(T, |f| {
                f["message"] == "notifyStreamStatusEvent"
                    && f["data"][0]["record"] == true
                    && f["data"][0]["recordName"].is_string()
            })
            .await
            .unwrap();
        let record_name = st["data"][0]["recordName"].as_str().unwrap().to_owned();
        assert!(
            record_name.ends_with(&format!(".{container}")),
            "{record_name}"
        );
        assert_eq!(st["data"][0]["mediaSessionId"], msid.as_str());
        // A viewer that joins later is told when recording stops.
        let (mut vc, player) = common::playing(&url, &name, &[codec]).await;
        player.wait_frames(10, T).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (s, _) = rest(
            addr,
            "/rest-api/stream/stopRecording",
            json!({"mediaSessionId": msid}),
        )
        .await;
        assert_eq!(s, 200);
        let ev = vc
            .wait(T, |f| {
                f["message"] == "notifyStreamEvent" && f["data"][0]["type"] == "recordingStopped"
            })
            .await
            .unwrap();
        assert!(ev["data"][0]["payload"]["recordName"].is_string());
        let off = pc
            .wait(T, |f| {
                f["message"] == "notifyStreamStatusEvent" && f["data"][0]["record"] == false
            })
            .await
            .unwrap();
        let final_name = off["data"][0]["recordName"].as_str().unwrap().to_owned();
        let listed = wait_listed(addr, &name).await;
        assert_eq!(listed["name"], final_name.as_str());
        let file = records.join(&final_name);
        let (codecs, duration) = ffprobe(&file);
        assert_eq!(codecs, [video_codec, "opus"], "{final_name}");
        assert!((5.0..=8.5).contains(&duration), "duration {duration}");
        assert_in_step(&file);
        drop(player);
        vc.close().await;
        drop(publisher);
        pc.close().await;
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_recording_leaves_a_file_that_plays() {
    common::init();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rport = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data = std::env::temp_dir().join(format!("sg-kill9-{port}"));
    let mut server = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(["serve", "--http", &format!("127.0.0.1:{port}")])
        .args([
            "--rtmp",
            &format!("127.0.0.1:{rport}"),
            "--rtsp",
            "127.0.0.1:0",
        ])
        .args(["--ice-address", "127.0.0.1", "--data-dir"])
        .arg(&data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("binary starts");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    common::eventually(T, "server healthy", || async move {
        tokio::net::TcpStream::connect(addr).await.is_ok()
            && common::http(addr, "GET", "/health", "").await.0 == 200
    })
    .await;
    // A recording starts at the stream's next keyframe: a half-second GOP keeps that wait short.
    let mut publisher = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", FLASH, "-f", "lavfi", "-i", BEEP])
        .args([
            "-t",
            "30",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "15",
        ])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv"])
        .arg(format!("rtmp://127.0.0.1:{rport}/live/crash"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg runs");
    let msid = publisher_msid(addr, "crash").await;
    let (s, v) = rest(
        addr,
        "/rest-api/stream/startRecording",
        json!({"mediaSessionId": msid}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    // No chance to finish anything.
    let _ = server.kill();
    let _ = server.wait();
    let _ = publisher.kill();
    let _ = publisher.wait();
    let files: Vec<PathBuf> = std::fs::read_dir(data.join("records"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "mp4"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let (codecs, duration) = ffprobe(&files[0]);
    eprintln!(
        "after kill -9: {codecs:?}, {duration:.2} s in {}",
        files[0].display()
    );
    assert_eq!(codecs, ["h264", "aac"]);
    assert!(duration >= 4.0, "only {duration} s survived");
    // It decodes to the end.
    let ok = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(&files[0])
        .args(["-f", "null", "-"])
        .status()
        .unwrap();
    assert!(ok.success(), "the file does not decode");
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_recording_not_the_stream() {
    let mut cfg = common::config();
    let dir = cfg.data_dir.join("small");
    std::fs::create_dir_all(&dir).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=200k", "tmpfs"])
        .arg(&dir)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(
            std::env::var("CI").is_err(),
            "mounting a small tmpfs failed in CI"
        );
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    cfg.record.dir = Some(dir.clone());
    let app = common::start(cfg).await;
    let (addr, rtmp) = (app.http_addr, app.rtmp_addr);
    // A busy picture, so the small disk fills within seconds.
    let mut publisher = common::ffmpeg_live(
        "320x240",
        48000,
        40,
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "30",
            "-b:v",
            "2M",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
        ],
        &format!("rtmp://{rtmp}/live/full"),
    );
    let msid = publisher_msid(addr, "full").await;
    let mut events = app.state().engine.subscribe();
    let (s, v) = rest(
        addr,
        "/rest-api/stream/startRecording",
        json!({"mediaSessionId": msid}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // A viewer keeps watching meanwhile.
    let (_vc, player) = common::playing(&common::ws_url(addr), "full", &[Codec::H264]).await;
    let reason = tokio::time::timeout(T, async {
        loop {
            if let Ok(streamgate::engine::EngineEvent::RecordingStopped {
                reason: Some(r), ..
            }) = events.recv().await
            {
                return r;
            }
        }
    })
    .await
    .expect("the recording did not stop on a full disk");
    assert!(reason.contains("No space left"), "{reason}");
    let (s, v) = rest(addr, "/rest-api/recorder/find_all", json!({})).await;
    assert_eq!((s, v), (200, json!([])));
    let before = player.stats().frames;
    let s = player.wait_frames(before + 30, T).await.unwrap();
    assert!(s.frames > before, "the viewer stopped with the recording");
    assert_eq!(find_status(addr, "full").await, 200);
    drop(player);
    let _ = publisher.kill();
    let _ = publisher.wait();
    app.shutdown().await;
    let _ = Command::new("umount").arg(&dir).status();
}

async fn find_status(addr: SocketAddr, name: &str) -> u16 {
    rest(addr, "/rest-api/stream/find", json!({ "name": name }))
        .await
        .0
}

/// Decodes a PNG with ffmpeg: its size and its pixels as grey levels.
fn decode_png(png: &[u8]) -> ((u32, u32), Vec<u8>) {
    let path = std::env::temp_dir().join(format!("sg-snap-{}.png", uuid::Uuid::new_v4()));
    std::fs::write(&path, png).unwrap();
    let (codecs, _) = ffprobe(&path);
    assert_eq!(codecs, ["png"]);
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&probe.stdout);
    let (w, h) = text.trim().split_once(',').unwrap();
    let grey = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .unwrap()
        .stdout;
    let _ = std::fs::remove_file(&path);
    ((w.parse().unwrap(), h.parse().unwrap()), grey)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_show_the_current_picture_of_any_stream() {
    use base64::Engine as _;
    let app = common::start(common::config()).await;
    let (addr, rtmp) = (app.http_addr, app.rtmp_addr);
    let (s, v) = rest(
        addr,
        "/rest-api/stream/snapshot",
        json!({"streamName": "nobody"}),
    )
    .await;
    assert_eq!((s, v["message"].as_str()), (404, Some("Stream not found")));
    // RTMP (H.264) and WebRTC (VP8) streams of flashes: every pixel is black or white.
    let mut publisher = ffmpeg_flashes(&format!("rtmp://{rtmp}/live/snap-rtmp"), 30);
    publisher_msid(addr, "snap-rtmp").await;
    let url = common::ws_url(addr);
    let opts = PublishOptions {
        width: 320,
        height: 240,
        codec: Codec::Vp8,
        media_file: Some(flash_file(20)),
        ..Default::default()
    };
    let (_pc, webrtc) = common::publishing(&url, "snap-webrtc", &opts).await;
    publisher_msid(addr, "snap-webrtc").await;
    for name in ["snap-rtmp", "snap-webrtc"] {
        let started = Instant::now();
        let (s, v) = rest(
            addr,
            "/rest-api/stream/snapshot",
            json!({ "streamName": name }),
        )
        .await;
        assert_eq!(s, 200, "{name}: {v}");
        eprintln!("snapshot of {name} in {:?}", started.elapsed());
        let png = base64::engine::general_purpose::STANDARD
            .decode(v["data"].as_str().unwrap())
            .unwrap();
        let (size, grey) = decode_png(&png);
        assert_eq!(size, (320, 240), "{name}");
        let mid = grey.iter().filter(|g| (40..216).contains(*g)).count();
        assert!(
            mid * 100 < grey.len(),
            "{name}: the picture is not the flash pattern"
        );
    }
    // Over signaling, as the official SDK's stream.snapshot() asks.
    let mut c = WcsConnection::connect(&url).await.unwrap();
    c.send(
        "snapshot",
        json!({"name": "snap-webrtc", "mediaSessionId": "x"}),
    )
    .await
    .unwrap();
    let f = c
        .wait(T, |f| f["message"] == "notifyStreamEvent")
        .await
        .unwrap();
    assert_eq!(f["data"][0]["type"], "snapshotCompleted", "{f}");
    assert!(f["data"][0]["payload"]["snapshot"]
        .as_str()
        .is_some_and(|s| s.len() > 100));
    drop(webrtc);
    let _ = publisher.kill();
    let _ = publisher.wait();
    app.shutdown().await;
}
