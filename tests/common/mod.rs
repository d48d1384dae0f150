//! Shared test helpers: start the real server on 127.0.0.1 with ephemeral ports, read its metrics,
//! and wait on conditions with timeouts (never fixed sleeps).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use streamgate::config::Config;

pub mod backend;

/// Initializes GStreamer and logging once.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        gst::init().expect("GStreamer initializes");
        streamgate::telemetry::init();
    });
}

/// A test configuration: loopback only, short timeouts, a fresh data directory.
pub fn config() -> Config {
    let mut c = Config {
        http: "127.0.0.1:0".parse().unwrap(),
        rtmp: "127.0.0.1:0".parse().unwrap(),
        rtsp: "127.0.0.1:0".parse().unwrap(),
        hls: streamgate::protocols::hls::HlsConfig {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        },
        ..Config::default()
    };
    c.ice.addresses = vec!["127.0.0.1".parse().unwrap()];
    c.ice.connect_timeout = Duration::from_secs(10);
    c.signaling.ping_interval = Duration::from_millis(500);
    c.signaling.idle_timeout = Duration::from_secs(3);
    c.rtmp_reconnect_grace = Duration::from_secs(1);
    let dir: PathBuf =
        std::env::temp_dir().join(format!("streamgate-test-{}", uuid::Uuid::new_v4()));
    c.data_dir = dir;
    c
}

/// Starts the server with `config`.
pub async fn start(config: Config) -> streamgate::App {
    init();
    streamgate::start(config).await.expect("server starts")
}

/// The signaling URL of a server.
pub fn ws_url(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

/// One gauge from `/metrics`.
pub async fn metric(addr: SocketAddr, name: &str) -> f64 {
    let text = http_get(addr, "/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing from:\n{text}"))
}

/// A minimal HTTP/1.1 client (GET), enough for health and metrics.
pub async fn http_get(addr: SocketAddr, path: &str) -> String {
    http(addr, "GET", path, "").await.1
}

/// A minimal HTTP/1.1 request with a JSON body; returns (status, body).
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    http_with(
        addr,
        method,
        path,
        &[("Content-Type", "application/json")],
        body,
    )
    .await
}

/// A minimal HTTP/1.1 request with these headers; returns (status, body).
pub async fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let headers: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).to_string();
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    // Bodies may be chunked; tests only look for substrings and JSON inside.
    (status, dechunk(&body))
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size, after)) = rest.split_once("\r\n") else {
            return body.to_string();
        };
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_string();
        };
        if n == 0 {
            return out;
        }
        if after.len() < n {
            return body.to_string();
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
}

/// Polls `f` until it is true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An ffmpeg publisher of a live test pattern (`size`, 30 fps) and a 440 Hz tone at `audio_rate`,
/// for `seconds`, encoded with `encode` (codec options for both tracks) and sent as FLV to `url`.
pub fn ffmpeg_live(size: &str, audio_rate: u32, seconds: u32, encode: &[&str], url: &str) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={size}:rate=30"),
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("sine=frequency=440:sample_rate={audio_rate}"),
        ])
        .args(["-t", &seconds.to_string()])
        .args(encode)
        .args(["-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg runs")
}

/// Frames of each stream ffmpeg decodes from `url` in `seconds` (framemd5 prints one line per
/// decoded frame): (stream 0, stream 1).
pub fn ffmpeg_frames(url: &str, seconds: u32) -> (usize, usize) {
    ffmpeg_frames_with(&[], url, seconds)
}

/// [`ffmpeg_frames`] with input options (`-rtsp_transport udp`).
pub fn ffmpeg_frames_with(input: &[&str], url: &str, seconds: u32) -> (usize, usize) {
    let out = Command::new("timeout")
        .args(["40", "ffmpeg", "-hide_banner", "-loglevel", "error"])
        .args(input)
        .args(["-i", url])
        .args(["-t", &seconds.to_string(), "-f", "framemd5", "-"])
        .stdin(Stdio::null())
        .output()
        .expect("ffmpeg runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let count = |i: &str| text.lines().filter(|l| l.starts_with(i)).count();
    (count("0,"), count("1,"))
}

/// Connects and publishes a test pattern as `name`; returns once the server says PUBLISHING.
pub async fn publishing(
    url: &str,
    name: &str,
    opts: &streamgate::client::PublishOptions,
) -> (
    streamgate::client::WcsConnection,
    streamgate::client::TestPublisher,
) {
    let mut c = streamgate::client::WcsConnection::connect(url)
        .await
        .unwrap();
    let p = streamgate::client::publish(&mut c, name, opts)
        .await
        .unwrap();
    let st = c
        .wait_status(&p.media_session_id, Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(st["status"], "PUBLISHING", "{st}");
    (c, p)
}

/// Connects and plays `name` over 127.0.0.1 with decoding; returns once the server says PLAYING.
pub async fn playing(
    url: &str,
    name: &str,
    codecs: &[streamgate::engine::media::Codec],
) -> (
    streamgate::client::WcsConnection,
    streamgate::client::TestPlayer,
) {
    let mut c = streamgate::client::WcsConnection::connect(url)
        .await
        .unwrap();
    let lo = ["127.0.0.1".parse().unwrap()];
    let p = streamgate::client::play(&mut c, name, codecs, &lo)
        .await
        .unwrap();
    let st = c
        .wait_status(&p.media_session_id, Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(st["status"], "PLAYING", "{st}");
    (c, p)
}

/// Connects to an RTMP server and completes the handshake as a client; returns the socket and
/// any bytes the server sent after its part of the handshake (the start of the session).
pub async fn rtmp_handshake(addr: SocketAddr) -> (tokio::net::TcpStream, Vec<u8>) {
    use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut hs = Handshake::new(PeerType::Client);
    let c0c1 = hs.generate_outbound_p0_and_p1().expect("C0+C1");
    s.write_all(&c0c1).await.expect("write C0+C1");
    let mut buf = vec![0u8; 8192];
    loop {
        let n = s.read(&mut buf).await.expect("read handshake");
        assert!(n > 0, "server closed during the handshake");
        match hs.process_bytes(&buf[..n]).expect("valid handshake") {
            HandshakeProcessResult::InProgress { response_bytes } => {
                s.write_all(&response_bytes).await.expect("write handshake")
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                s.write_all(&response_bytes).await.expect("write C2");
                return (s, remaining_bytes);
            }
        }
    }
}

/// A browser-like publish offer: valid SDP with ICE credentials and a fingerprint, but no peer
/// behind it, so it negotiates and then never connects.
pub const LONELY_OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n\
a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\n\
a=setup:actpass\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n\
a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\n\
a=setup:actpass\r\na=mid:1\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n";

/// Sends a room command (`sendData {command, options}`) and returns its `DataStatusEvent`.
pub async fn room_command(
    c: &mut streamgate::client::WcsConnection,
    op: &str,
    command: &str,
    options: serde_json::Value,
) -> serde_json::Value {
    c.send(
        "sendData",
        serde_json::json!({"operationId": op, "payload": {"command": command, "options": options}}),
    )
    .await
    .unwrap();
    let f = c
        .wait(Duration::from_secs(15), |f| {
            f["message"] == "DataStatusEvent" && f["data"][0]["operationId"] == op
        })
        .await
        .unwrap();
    f["data"][0].clone()
}
