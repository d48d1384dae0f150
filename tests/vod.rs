//! Files as streams: `vod://` plays a file from its start for each viewer (the very pictures of
//! the file, compared frame by frame), `vod-live://` is one shared stream that viewers join where
//! it is, looping; MP4, MKV, WebM and FLV; recordings; S3 through a real local S3 server (moto)
//! read with range requests; and the paths and files that are refused.

mod common;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// A clip of `seconds` of a moving test pattern and a tone, in the container `file`'s extension
/// says, with `codecs` (ffmpeg options).
fn clip(file: &Path, seconds: u32, codecs: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-y", "-hide_banner", "-loglevel", "error"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args(codecs)
        .arg(file)
        .status()
        .unwrap();
    assert!(status.success(), "making {}", file.display());
}

const H264_AAC: [&str; 8] = [
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-g",
    "25",
    "-c:a",
    "aac",
];

/// The md5 of every decoded video frame of `url` (or a file) over `seconds`, in order.
fn frames(url: &str, seconds: u32) -> Vec<String> {
    let out = Command::new("timeout")
        .args(["40", "ffmpeg", "-hide_banner", "-loglevel", "error"])
        .args(["-rtsp_transport", "tcp"])
        .args(["-i", url, "-map", "0:v", "-t", &seconds.to_string()])
        .args(["-f", "framemd5", "-"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("0,"))
        .filter_map(|l| l.rsplit(',').next().map(|m| m.trim().to_owned()))
        .collect()
}

fn file_frames(path: &Path, seconds: u32) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(path)
        .args([
            "-map",
            "0:v",
            "-t",
            &seconds.to_string(),
            "-f",
            "framemd5",
            "-",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("0,"))
        .filter_map(|l| l.rsplit(',').next().map(|m| m.trim().to_owned()))
        .collect()
}

/// Frames of each kind ffmpeg decodes from `url` in `seconds`.
fn decoded(url: &str, seconds: u32) -> (usize, usize) {
    common::ffmpeg_frames_with(&["-rtsp_transport", "tcp"], url, seconds)
}

/// The RTSP URL of stream `name` (percent-encoded: VOD names hold `://`).
fn rtsp_url(app: &streamgate::App, name: &str) -> String {
    let enc: String = name
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("rtsp://{}/{enc}", app.rtsp_addr)
}

async fn rest(app: &streamgate::App, path: &str, body: Value) -> (u16, Value) {
    let (code, text) = common::http(app.http_addr, "POST", path, &body.to_string()).await;
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn media_config() -> (streamgate::Config, PathBuf) {
    let mut cfg = common::config();
    let media = cfg.data_dir.join("media");
    std::fs::create_dir_all(&media).unwrap();
    cfg.vod.media_dir = Some(media.clone());
    (cfg, media)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vod_plays_each_viewer_the_file_from_its_start() {
    let (cfg, media) = media_config();
    clip(&media.join("show.mp4"), 6, &H264_AAC);
    let app = common::start(cfg).await;
    let original = file_frames(&media.join("show.mp4"), 2);
    assert!(original.len() >= 45);

    // Two viewers two seconds apart: each sees the file's own pictures from its first.
    let url = rtsp_url(&app, "vod://show.mp4");
    let u = url.clone();
    let first = std::thread::spawn(move || frames(&u, 3));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = frames(&url, 2);
    let first = first.join().unwrap();
    for (who, got) in [("first", &first), ("second", &second)] {
        assert!(got.len() >= 45, "{who} viewer decoded {} frames", got.len());
        assert_eq!(
            got[..20],
            original[..20],
            "{who} viewer starts at the start"
        );
    }
    // Over RTMP as well: the picture's header comes before the first sound, so ffmpeg sees both.
    let (video, audio) =
        common::ffmpeg_frames(&format!("rtmp://{}/live/vod://show.mp4", app.rtmp_addr), 3);
    assert!(
        video >= 60 && audio >= 60,
        "vod:// over RTMP: {video} / {audio}"
    );

    // Personal streams go once their viewers have.
    common::eventually(T, "personal VOD streams end with their viewers", || async {
        app.state().engine.find_all().is_empty()
    })
    .await;
    let c = app.state().engine.counts();
    assert_eq!((c.streams, c.jobs), (0, 0), "{c:?}");

    // Over WCS signaling (WebRTC), by the name a WCS client uses.
    let (_c, player) = common::playing(
        &common::ws_url(app.http_addr),
        "vod://show.mp4",
        &[streamgate::engine::media::Codec::H264],
    )
    .await;
    let stats = player.wait_frames(30, T).await.unwrap();
    assert_eq!(stats.size, Some((320, 240)), "{stats:?}");
    drop(player);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vod_live_is_one_shared_looping_stream() {
    let (cfg, media) = media_config();
    clip(&media.join("loop.mp4"), 4, &H264_AAC);
    let app = common::start(cfg).await;

    let (code, v) = rest(
        &app,
        "/rest-api/vod/startup",
        json!({"uri": "vod-live://loop.mp4", "localStreamName": "channel", "loop": true}),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    let (code, _) = rest(
        &app,
        "/rest-api/vod/startup",
        json!({"uri": "vod-live://loop.mp4", "localStreamName": "channel"}),
    )
    .await;
    assert_eq!(code, 409, "the name is in use");

    // Two viewers, the second a second and a half later: it joins where the stream is, and
    // from then on both see the same pictures.
    let url = rtsp_url(&app, "channel");
    let u = url.clone();
    let a = std::thread::spawn(move || frames(&u, 6));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let b = frames(&url, 3);
    let a = a.join().unwrap();
    assert!(a.len() >= 130, "6 s across the loop: {} frames", a.len());
    let at = a
        .iter()
        .position(|m| *m == b[0])
        .expect("the second viewer's first picture is one the first saw");
    assert!(
        at >= 10,
        "the second viewer joined the stream where it was ({at})"
    );
    let common_len = (a.len() - at).min(b.len());
    assert!(common_len >= 40, "{common_len}");
    assert_eq!(a[at..at + common_len], b[..common_len], "same pictures");

    // It looped (the 4 s file played on past its end); the listing says so.
    let (code, v) = rest(
        &app,
        "/rest-api/vod/find",
        json!({"uri": "vod-live://loop.mp4"}),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert!(v[0]["loops"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v[0]["hasVideo"], true);
    let (video, audio) =
        common::ffmpeg_frames(&format!("rtmp://{}/live/channel", app.rtmp_addr), 3);
    assert!(video >= 60 && audio >= 60, "over RTMP: {video} / {audio}");

    let (code, _) = rest(
        &app,
        "/rest-api/vod/terminate",
        json!({"localStreamName": "channel"}),
    )
    .await;
    assert_eq!(code, 200);
    let (code, v) = rest(&app, "/rest-api/vod/find_all", json!({})).await;
    assert_eq!(code, 404, "{v}");
    assert!(app
        .state()
        .engine
        .stream_of(Some("channel"), None)
        .is_none());

    // Without a loop a VOD live stream ends with its file.
    let (code, _) = rest(
        &app,
        "/rest-api/vod/startup",
        json!({"uri": "vod-live://loop.mp4", "localStreamName": "once"}),
    )
    .await;
    assert_eq!(code, 200);
    common::eventually(T, "the stream ends with its file", || async {
        app.state().engine.stream_of(Some("once"), None).is_none()
    })
    .await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_recordings_and_refusals() {
    let (cfg, media) = media_config();
    let records = cfg.record_dir();
    std::fs::create_dir_all(&records).unwrap();
    clip(&media.join("a.mp4"), 4, &H264_AAC);
    clip(&media.join("a.mkv"), 4, &H264_AAC);
    clip(&media.join("a.flv"), 4, &H264_AAC);
    clip(
        &media.join("a.webm"),
        4,
        &["-c:v", "libvpx", "-deadline", "realtime", "-c:a", "libopus"],
    );
    clip(&records.join("call.mp4"), 4, &H264_AAC);
    std::fs::write(media.join("junk.mp4"), b"this is no movie at all").unwrap();
    std::fs::write(media.join("notes.txt"), b"text").unwrap();
    let outside = media.parent().unwrap().join("secret.mp4");
    std::fs::copy(media.join("a.mp4"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, media.join("link.mp4")).unwrap();
    let app = common::start(cfg).await;

    for name in ["a.mp4", "a.mkv", "a.flv", "a.webm", "records/call.mp4"] {
        let (video, audio) = decoded(&rtsp_url(&app, &format!("vod://{name}")), 2);
        assert!(video >= 35, "{name}: {video} video frames in 2 s");
        assert!(audio >= 35, "{name}: {audio} audio frames in 2 s");
    }

    // REST says WCS's words; RTSP players get 404 or 400.
    for (uri, code, words) in [
        ("vod-live://missing.mp4", 404, "File not found"),
        ("vod-live://notes.txt", 400, "File has wrong format"),
        ("vod-live://junk.mp4", 400, "File has wrong format"),
        ("vod-live://../secret.mp4", 404, "File not found"),
        ("vod-live://%2e%2e/secret.mp4", 404, "File not found"),
        ("vod-live:///etc/passwd.mp4", 404, "File not found"),
        ("vod-live://link.mp4", 404, "File not found"),
        ("vod-live://records/../a.mp4", 404, "File not found"),
        ("vod-live://s3/bucket/a.mp4", 404, "File not found"),
        ("rtsp://elsewhere/a.mp4", 400, "vod-live"),
    ] {
        let body = json!({"uri": uri, "localStreamName": "x"});
        let (c, v) = rest(&app, "/rest-api/vod/startup", body).await;
        assert_eq!(c, code, "{uri}: {v}");
        assert!(v.to_string().contains(words), "{uri}: {v}");
    }
    let refused = Command::new("timeout")
        .args(["20", "ffprobe", "-v", "error"])
        .arg(rtsp_url(&app, "vod://../secret.mp4"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&refused.stderr).contains("404"));
    // Over WCS signaling the viewer is told why.
    let mut c = streamgate::client::WcsConnection::connect(&common::ws_url(app.http_addr))
        .await
        .unwrap();
    let err = streamgate::client::play(
        &mut c,
        "vod://missing.mp4",
        &[streamgate::engine::media::Codec::H264],
        &["127.0.0.1".parse().unwrap()],
    )
    .await
    .err()
    .expect("a missing file does not play");
    assert!(err.to_string().contains("File not found"), "{err}");
    common::eventually(T, "nothing is left of the refusals", || async {
        let c = app.state().engine.counts();
        c.streams == 0 && c.jobs == 0 && c.pipelines == 0
    })
    .await;
    app.shutdown().await;
}

/// A TCP relay in front of the S3 server that counts the range requests sent through it.
async fn counting_proxy(
    upstream: std::net::SocketAddr,
) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ranges = Arc::new(AtomicUsize::new(0));
    let r = ranges.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let r = r.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::spawn(async move {
                    let mut buf = vec![0u8; 16384];
                    while let Ok(n) = cr.read(&mut buf).await {
                        if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        let text = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
                        // The player's own reads (not the server's one-byte existence check).
                        if text.contains("souphttpsrc") {
                            r.fetch_add(text.matches("range: bytes=").count(), Ordering::SeqCst);
                        }
                    }
                });
                let _ = tokio::io::copy(&mut sr, &mut cw).await;
                up.abort();
            });
        }
    });
    (addr, ranges)
}

/// moto's S3 server: on PATH, or where `scripts/deps.sh test` put it.
fn moto_server() -> PathBuf {
    let on_path = Command::new("sh")
        .args(["-c", "command -v moto_server"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    on_path.unwrap_or_else(|| {
        let cache = std::env::var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache"));
        cache.join("streamgate/moto/bin/moto_server")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vod_plays_from_s3_with_range_reads() {
    use rusty_s3::S3Action;
    // A real S3 server (moto's), on a free port of 127.0.0.1.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut moto = Command::new(moto_server())
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server runs (scripts/deps.sh test installs it)");
    let s3: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let http = reqwest::Client::new();
    common::eventually(T, "the S3 server answers", || async {
        http.get(format!("http://{s3}/")).send().await.is_ok()
    })
    .await;
    let creds = rusty_s3::Credentials::new("test-key", "test-secret");
    let bucket = rusty_s3::Bucket::new(
        format!("http://{s3}").parse().unwrap(),
        rusty_s3::UrlStyle::Path,
        "shows",
        "us-east-1",
    )
    .unwrap();
    let r = http
        .put(bucket.create_bucket(&creds).sign(Duration::from_secs(60)))
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{r:?}");
    let dir = std::env::temp_dir().join(format!("s3clip-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    // moov at the end of the file (ffmpeg's default): the demuxer has to seek for it.
    // Over 4 MiB (lossless pictures), so that qtdemux seeks past the media data for the index
    // rather than buffering it all: the seek is a range request.
    clip(
        &dir.join("show.mp4"),
        24,
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-qp",
            "0",
            "-g",
            "25",
            "-c:a",
            "aac",
        ],
    );
    let size = std::fs::metadata(dir.join("show.mp4")).unwrap().len();
    assert!(size > 4 << 20, "{size} bytes");
    let data = std::fs::read(dir.join("show.mp4")).unwrap();
    let r = http
        .put(
            bucket
                .put_object(Some(&creds), "season1/show.mp4")
                .sign(Duration::from_secs(60)),
        )
        .body(data)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{r:?}");

    let (proxy, ranges) = counting_proxy(s3).await;
    let mut cfg = common::config();
    cfg.vod.s3 = Some(streamgate::protocols::vod::S3Config {
        endpoint: format!("http://{proxy}"),
        region: "us-east-1".into(),
        access_key: "test-key".into(),
        secret_key: "test-secret".into(),
        path_style: true,
        buckets: vec!["shows".into()],
    });
    let app = common::start(cfg).await;
    let original = file_frames(&dir.join("show.mp4"), 1);
    let got = frames(&rtsp_url(&app, "vod://s3/shows/season1/show.mp4"), 2);
    assert!(got.len() >= 40, "{} frames from S3", got.len());
    assert_eq!(
        got[..20],
        original[..20],
        "the object's own pictures, from the start"
    );
    assert!(
        ranges.load(Ordering::SeqCst) >= 1,
        "the object was read with range requests"
    );
    // A missing object and a bucket not in the list are "File not found".
    for uri in [
        "vod-live://s3/shows/none.mp4",
        "vod-live://s3/other/show.mp4",
    ] {
        let (code, v) = rest(&app, "/rest-api/vod/startup", json!({"uri": uri})).await;
        assert_eq!(code, 404, "{uri}: {v}");
        assert!(v.to_string().contains("File not found"), "{v}");
    }
    app.shutdown().await;
    let _ = moto.kill();
    let _ = moto.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
