//! HLS and LL-HLS as players see them: ffmpeg, ffprobe and VLC decode RTMP- and WebRTC-published
//! streams over fMP4 and MPEG-TS, on the HTTP port and on WCS's HLS port; the playlists keep the
//! rules of RFC 8216 and LL-HLS across reloads and mark a publisher's reconnect with a
//! discontinuity; bad requests get precise errors, tokens reach admission, and an idle rendition
//! goes away with its pipeline.

mod common;

use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

fn encode() -> Vec<&'static str> {
    // One keyframe a second: segments of the 2 s asked for.
    vec![
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "30",
        "-bf",
        "2",
        "-c:a",
        "aac",
    ]
}

fn rtmp(app: &streamgate::App, name: &str) -> String {
    format!("rtmp://{}/live/{name}", app.rtmp_addr)
}

/// Frames of each kind ffmpeg decodes from `url` in `seconds`.
fn decoded(url: &str, seconds: u32) -> (usize, usize) {
    common::ffmpeg_frames(url, seconds)
}

/// `codec_name` and size of each stream ffprobe sees at `url`.
fn probe(url: &str) -> String {
    let out = Command::new("timeout")
        .args(["30", "ffprobe", "-hide_banner", "-loglevel", "error"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "compact",
        ])
        .arg(url)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Waits for the stream to be published.
async fn published(app: &streamgate::App, name: &str) {
    common::eventually(T, "the stream is published", || async {
        app.state().engine.stream_of(Some(name), None).is_some()
    })
    .await;
}

/// One media playlist, as a validator reads it.
#[derive(Debug, Default)]
struct Playlist {
    target: f64,
    part_target: Option<f64>,
    media_sequence: u64,
    /// (msn, duration, uri, discontinuity before it)
    segments: Vec<(u64, f64, String, bool)>,
    parts: Vec<f64>,
    preload_hint: bool,
    server_control: Option<String>,
}

/// Parses a media playlist and checks the rules of RFC 8216 (4.3.3.1, 4.3.2.1) and LL-HLS
/// (RFC 8216bis 4.4.4.9, 4.4.5.2, 4.4.3.7) that hold within one playlist.
fn validate(text: &str) -> Playlist {
    assert!(text.starts_with("#EXTM3U\n"), "{text}");
    let mut p = Playlist::default();
    let mut duration = None;
    let mut disc = false;
    let mut msn = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            p.target = v.parse().unwrap();
        } else if let Some(v) = line.strip_prefix("#EXT-X-PART-INF:PART-TARGET=") {
            p.part_target = Some(v.parse().unwrap());
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            p.media_sequence = v.parse().unwrap();
            msn = Some(p.media_sequence);
        } else if let Some(v) = line.strip_prefix("#EXT-X-SERVER-CONTROL:") {
            p.server_control = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("#EXT-X-PART:DURATION=") {
            p.parts.push(v.split(',').next().unwrap().parse().unwrap());
        } else if line.starts_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=") {
            p.preload_hint = true;
        } else if line == "#EXT-X-DISCONTINUITY" {
            disc = true;
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            duration = Some(v.trim_end_matches(',').parse::<f64>().unwrap());
        } else if !line.starts_with('#') && !line.is_empty() {
            let d = duration.take().expect("a URI follows its EXTINF");
            let n = msn.expect("EXT-X-MEDIA-SEQUENCE comes before the segments");
            p.segments
                .push((n, d, line.to_string(), std::mem::take(&mut disc)));
            msn = Some(n + 1);
        }
    }
    assert!(p.target >= 1.0, "{text}");
    for (_, d, _, _) in &p.segments {
        // 4.3.3.1: each EXTINF, rounded to the nearest integer, is at most the target duration.
        assert!(
            d.round() <= p.target,
            "segment of {d} s over target {}:\n{text}",
            p.target
        );
    }
    if let Some(pt) = p.part_target {
        for d in &p.parts {
            assert!(
                *d <= pt + 1e-6,
                "part of {d} s over part target {pt}:\n{text}"
            );
        }
        let sc = p
            .server_control
            .as_deref()
            .expect("LL-HLS has server control");
        assert!(sc.contains("CAN-BLOCK-RELOAD=YES"), "{sc}");
        let hold: f64 = sc
            .split(',')
            .find_map(|kv| kv.strip_prefix("PART-HOLD-BACK="))
            .expect("PART-HOLD-BACK")
            .parse()
            .unwrap();
        assert!(
            hold >= 2.0 * pt,
            "PART-HOLD-BACK {hold} under twice PART-TARGET {pt}"
        );
        assert!(p.preload_hint, "{text}");
    }
    p
}

/// Checks that successive reloads agree: the window only moves forward, and a segment keeps its
/// URI and duration under its sequence number.
fn check_continuity(seen: &mut BTreeMap<u64, (f64, String)>, last_first: &mut u64, p: &Playlist) {
    assert!(p.media_sequence >= *last_first, "media sequence went back");
    *last_first = p.media_sequence;
    for w in p.segments.windows(2) {
        assert_eq!(w[0].0 + 1, w[1].0, "sequence numbers are continuous");
    }
    for (n, d, uri, _) in &p.segments {
        if let Some((d0, u0)) = seen.get(n) {
            assert_eq!((d0, u0), (d, uri), "segment {n} changed between reloads");
        }
        seen.insert(*n, (*d, uri.clone()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rtmp_stream_plays_over_hls_ll_hls_and_mpeg_ts_in_ffmpeg_and_vlc() {
    let app = common::start(common::config()).await;
    let mut ff = common::ffmpeg_live("640x360", 44100, 120, &encode(), &rtmp(&app, "cam"));
    published(&app, "cam").await;
    let http = app.http_addr;
    let hls = app.hls_addr.expect("the HLS listener");

    // The multivariant playlist names the variant with its codecs and size.
    let (code, text) = common::http(http, "GET", "/hls/cam/index.m3u8", "").await;
    assert_eq!(code, 200, "{text}");
    assert!(
        text.contains("CODECS=\"avc1.") && text.contains("mp4a.40.2"),
        "{text}"
    );
    assert!(text.contains("RESOLUTION=640x360"), "{text}");

    // WCS's spelling on the HLS port, fMP4 and MPEG-TS.
    for url in [
        format!("http://{hls}/cam/cam.m3u8"),
        format!("http://{http}/hls/cam/index.m3u8?format=ts"),
    ] {
        let streams = probe(&url);
        assert!(
            streams.contains("codec_name=h264|width=640|height=360"),
            "{url}: {streams}"
        );
        assert!(streams.contains("codec_name=aac"), "{url}: {streams}");
        let (video, audio) = decoded(&url, 3);
        assert!(video >= 60, "{url}: {video} video frames decoded in 3 s");
        assert!(audio >= 60, "{url}: {audio} audio frames decoded in 3 s");
    }

    // VLC (which will not run as root) reads the playlist and decodes: it transcodes what it
    // decoded into a file, which ffprobe then reads.
    let out = std::env::temp_dir().join(format!("vlc-{}.ts", uuid::Uuid::new_v4()));
    let _ = std::fs::write(&out, b"");
    let mut vlc = Command::new("timeout");
    vlc.arg("40");
    if unsafe_is_root() {
        let _ = Command::new("chown").arg("nobody").arg(&out).status();
        vlc.args(["runuser", "-u", "nobody", "--"]);
    }
    let status = vlc
        .args(["cvlc", "-I", "dummy", "--play-and-exit", "--run-time=4"])
        .arg(format!("http://{http}/hls/cam/index.m3u8"))
        .arg(format!(
            "--sout=#transcode{{vcodec=mp2v,vb=800,acodec=mpga,ab=64}}:std{{access=file,mux=ts,dst={}}}",
            out.display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("cvlc runs");
    assert!(status.success(), "cvlc: {status}");
    let streams = probe(&out.display().to_string());
    assert!(
        streams.contains("codec_name=mpeg2video|width=640|height=360"),
        "VLC decoded: {streams}"
    );
    assert!(streams.contains("codec_name=mp2"), "VLC decoded: {streams}");
    let _ = std::fs::remove_file(&out);

    let _ = ff.kill();
    let _ = ff.wait();
    app.shutdown().await;
}

fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playlists_keep_the_rules_across_reloads_and_mark_a_reconnect() {
    let mut cfg = common::config();
    cfg.rtmp_reconnect_grace = Duration::from_secs(8);
    let app = common::start(cfg).await;
    let http = app.http_addr;
    let url = rtmp(&app, "re");
    let mut ff = common::ffmpeg_live("320x240", 44100, 120, &encode(), &url);
    published(&app, "re").await;

    let mut seen = BTreeMap::new();
    let mut first = 0;
    // Reload as an LL-HLS player does: block for the next part each time.
    let mut next: Option<(u64, usize)> = None;
    let started = Instant::now();
    let mut reloads = 0;
    while started.elapsed() < Duration::from_secs(8) {
        let path = match next {
            Some((m, p)) => format!("/hls/re/media.m3u8?_HLS_msn={m}&_HLS_part={p}"),
            None => "/hls/re/media.m3u8".into(),
        };
        let (code, text) = common::http(http, "GET", &path, "").await;
        assert_eq!(code, 200, "{path}: {text}");
        let p = validate(&text);
        check_continuity(&mut seen, &mut first, &p);
        assert!(p.segments.len() <= 6, "the window holds at most 6 segments");
        // The next part: the one the preload hint names.
        let hint = text
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\""))
            .expect("hint");
        let name = hint.trim_end_matches('"');
        let (m, i) = name
            .rsplit_once('-')
            .unwrap()
            .1
            .trim_end_matches(".m4s")
            .split_once('.')
            .unwrap();
        next = Some((m.parse().unwrap(), i.parse().unwrap()));
        reloads += 1;
    }
    assert!(
        reloads >= 10,
        "blocking reloads returned as parts came: {reloads}"
    );
    // A plain reload (what a classic HLS player does) lists the whole segments too; such players
    // skip the part tags.
    let (_, plain) = common::http(http, "GET", "/hls/re/media.m3u8?format=fmp4", "").await;
    let c = validate(&plain);
    assert!(c.segments.len() >= 2, "{plain}");
    // Memory stays bounded.
    let bytes = common::metric(http, "streamgate_hls_bytes").await;
    assert!(bytes > 0.0 && bytes < 8e6, "{bytes} bytes held");

    // The publisher drops and comes back within the grace: the playlist goes on, with a
    // discontinuity where the new publisher's media begins.
    let _ = ff.kill();
    let _ = ff.wait();
    let mut ff = common::ffmpeg_live("320x240", 44100, 120, &encode(), &url);
    let mut disc_at = None;
    let deadline = Instant::now() + T;
    while disc_at.is_none() {
        assert!(
            Instant::now() < deadline,
            "no discontinuity after the reconnect"
        );
        let (_, text) = common::http(http, "GET", "/hls/re/media.m3u8", "").await;
        let p = validate(&text);
        check_continuity(&mut seen, &mut first, &p);
        disc_at = p.segments.iter().find(|s| s.3).map(|s| s.0);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // What follows the discontinuity decodes: once it is more than three segments back (where a
    // player joining now starts), a new player sees only the new publisher's media.
    let disc_at = disc_at.unwrap_or_default();
    common::eventually(T, "three segments after the discontinuity", || async {
        let (_, text) = common::http(http, "GET", "/hls/re/media.m3u8", "").await;
        validate(&text)
            .segments
            .last()
            .is_some_and(|s| s.0 > disc_at + 3)
    })
    .await;
    let (video, _) = decoded(&format!("http://{http}/hls/re/index.m3u8"), 2);
    assert!(video >= 30, "{video} frames after the reconnect");
    let _ = ff.kill();
    let _ = ff.wait();
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webrtc_stream_with_vp8_and_opus_plays_over_hls() {
    let app = common::start(common::config()).await;
    let opts = streamgate::client::PublishOptions {
        width: 320,
        height: 240,
        codec: streamgate::engine::media::Codec::Vp8,
        audio: true,
        gop: 30,
        ice_addresses: vec!["127.0.0.1".parse().unwrap()],
        ..Default::default()
    };
    let (_c, _p) = common::publishing(&common::ws_url(app.http_addr), "rtc", &opts).await;
    let url = format!("http://{}/hls/rtc/index.m3u8", app.http_addr);
    let streams = probe(&url);
    assert!(
        streams.contains("codec_name=h264|width=320|height=240"),
        "{streams}"
    );
    assert!(streams.contains("codec_name=aac"), "{streams}");
    let (video, audio) = decoded(&url, 3);
    assert!(video >= 45, "{video} video frames in 3 s");
    assert!(audio >= 60, "{audio} audio frames in 3 s");
    app.shutdown().await;
}

/// A gauge from `/metrics`, which needs the API key in this test.
async fn keyed_metric(addr: SocketAddr, name: &str) -> f64 {
    let (_, text) = common::http_with(
        addr,
        "GET",
        "/metrics",
        &[("Authorization", "Bearer key-1")],
        "",
    )
    .await;
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing from:\n{text}"))
}

async fn status_of(addr: SocketAddr, path: &str) -> (u16, String) {
    common::http(addr, "GET", path, "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_precise_errors_tokens_reach_admission_and_idle_renditions_stop() {
    let mut cfg = common::config();
    cfg.hls.idle_timeout = 2.0;
    cfg.rest.api_keys = vec!["key-1".into()];
    cfg.auth.secret = Some("token-secret".into());
    let app = common::start(cfg).await;
    let http = app.http_addr;
    let mint = |body: serde_json::Value| async move {
        let (code, text) = common::http_with(
            http,
            "POST",
            "/rest-api/token/mint",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", "Bearer key-1"),
            ],
            &body.to_string(),
        )
        .await;
        assert_eq!(code, 200, "{text}");
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let publisher = mint(json!({"role": "publisher", "stream": "sec"})).await;
    let pipelines_before = keyed_metric(http, "streamgate_pipelines").await;
    let mut ff = common::ffmpeg_live(
        "320x240",
        44100,
        120,
        &encode(),
        &format!("{}?token={publisher}", rtmp(&app, "sec")),
    );
    published(&app, "sec").await;

    // Without a token, or with a forged one, admission refuses the player.
    let (code, text) = status_of(http, "/hls/sec/index.m3u8").await;
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("Restricted access"), "{text}");
    let (code, _) = status_of(
        http,
        "/hls/sec/index.m3u8?token=eyJhbGciOiJIUzI1NiJ9.e30.AAAA",
    )
    .await;
    assert_eq!(code, 403);
    let viewer = mint(json!({"role": "viewer", "stream": "sec"})).await;
    let (code, text) = status_of(http, &format!("/hls/sec/index.m3u8?token={viewer}")).await;
    assert_eq!(code, 200, "{text}");
    assert!(
        text.contains(&format!("media.m3u8?token={viewer}")),
        "{text}"
    );
    let (_, media) = status_of(http, &format!("/hls/sec/media.m3u8?token={viewer}")).await;
    let seg = media
        .lines()
        .find(|l| l.ends_with(&format!(".m4s?token={viewer}")) && !l.starts_with('#'))
        .expect("segment URIs carry the token")
        .to_owned();
    let (code, _) = status_of(http, &format!("/hls/sec/{seg}")).await;
    assert_eq!(code, 200);
    // The same segment without the token is refused too.
    let bare = seg.split('?').next().unwrap();
    let (code, _) = status_of(http, &format!("/hls/sec/{bare}")).await;
    assert_eq!(code, 403);

    // Names that are not ours, paths that try to leave, bad queries.
    let q = format!("token={viewer}");
    let any_stream = mint(json!({"role": "viewer"})).await;
    for (path, want, says) in [
        (
            format!("/hls/nope/index.m3u8?token={any_stream}"),
            404,
            "Stream not found",
        ),
        (
            format!("/hls/sec/..%2F..%2Fetc%2Fpasswd?{q}"),
            404,
            "Not found",
        ),
        (format!("/hls/sec/00000000-1.m4s?{q}"), 404, "Not found"),
        (
            format!("/hls/sec/index.m3u8?format=flv&{q}"),
            400,
            "Unknown format",
        ),
        (
            format!("/hls/sec/media.m3u8?_HLS_msn=999999&{q}"),
            400,
            "too far ahead",
        ),
        (
            format!("/hls/sec/media.m3u8?_HLS_part=1&{q}"),
            400,
            "needs _HLS_msn",
        ),
        (
            format!("/hls/sec/media.m3u8?_HLS_msn=x&{q}"),
            400,
            "Bad query",
        ),
    ] {
        let (code, text) = status_of(http, &path).await;
        assert_eq!(code, want, "{path}: {text}");
        assert!(text.contains(says), "{path}: {text}");
    }

    // A player that hangs up in the middle of a segment harms nothing.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(http).await.unwrap();
        let req = format!("GET /hls/sec/{seg} HTTP/1.1\r\nHost: x\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf).await.unwrap();
    }
    let (code, _) = status_of(http, &format!("/hls/sec/media.m3u8?{q}")).await;
    assert_eq!(code, 200);

    // Nobody asks any more: the rendition, its player and its pipeline go.
    assert_eq!(keyed_metric(http, "streamgate_hls_renditions").await, 1.0);
    common::eventually(T, "the idle rendition is stopped", || async {
        keyed_metric(http, "streamgate_hls_renditions").await == 0.0
            && keyed_metric(http, "streamgate_hls_players").await == 0.0
    })
    .await;
    common::eventually(T, "its pipeline is gone", || async {
        // The publisher's ingest and RTMP feed stay; the HLS muxer goes.
        keyed_metric(http, "streamgate_pipelines").await <= pipelines_before + 1.0
    })
    .await;
    let _ = ff.kill();
    let _ = ff.wait();
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mse_players_that_never_connect_fail_and_unknown_streams_are_refused() {
    let app = common::start(common::config()).await;
    let mut ff = common::ffmpeg_live("320x240", 44100, 60, &encode(), &rtmp(&app, "m"));
    published(&app, "m").await;
    // The WCS SDK's MSE play, whose second socket (connectMediaTransport) never comes.
    let mut c = streamgate::client::WcsConnection::connect(&common::ws_url(app.http_addr))
        .await
        .unwrap();
    let msid = uuid::Uuid::new_v4().to_string();
    c.send(
        "playStream",
        json!({
            "mediaSessionId": msid,
            "name": "m",
            "mediaProvider": "MSE",
            "sdp": "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 0 RTP/AVP 112\r\na=rtpmap:112 H264/90000\r\nm=audio 0 RTP/AVP 110\r\na=rtpmap:110 mpeg4-generic/48000/2\r\n",
        }),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + T;
    loop {
        assert!(Instant::now() < deadline, "the MSE player stayed PENDING");
        let st = c.wait_status(&msid, T).await.unwrap();
        if st["status"] == "FAILED" {
            assert_eq!(st["info"], "Failed by MSE transport timeout", "{st}");
            break;
        }
    }
    // The first-party MSE socket says why it cannot play.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/mse/nope", app.http_addr))
        .await
        .unwrap();
    use futures::StreamExt;
    let msg = ws.next().await.unwrap().unwrap();
    assert!(msg.to_text().unwrap().contains("Stream not found"), "{msg}");
    let _ = ff.kill();
    let _ = ff.wait();
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audio_only_stream_plays_over_fmp4() {
    let app = common::start(common::config()).await;
    let mut ff = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            "60",
        ])
        .args(["-c:a", "aac", "-f", "flv", &rtmp(&app, "radio")])
        .stdin(Stdio::null())
        .spawn()
        .expect("ffmpeg runs");
    published(&app, "radio").await;
    // (MPEG-TS segments are cut at video keyframes: a stream with sound only gets none.)
    let url = format!("http://{}/hls/radio/index.m3u8", app.http_addr);
    let streams = probe(&url);
    assert!(
        streams.contains("codec_name=aac") && !streams.contains("h264"),
        "{url}: {streams}"
    );
    let (frames, _) = decoded(&url, 3);
    assert!(frames >= 100, "{url}: {frames} audio frames in 3 s");
    let _ = ff.kill();
    let _ = ff.wait();
    app.shutdown().await;
}
